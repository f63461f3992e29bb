"""The company configuration item (docs/contracts.md, "Company configuration item"): the one shape
`config validate`, `config put` and the function take, its published JSON Schema, strict
validation with every error in one round, and documents that are not JSON objects."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from export_preflight import cli
from export_preflight.configuration import MAX_ITEM_BYTES, validate_item
from export_preflight.connectors import CONNECTORS
from export_preflight.models import CompanyConfigurationItem

ROOT = Path(__file__).resolve().parents[2]
COMPANY = "11111111-1111-4111-8111-111111111111"
PREFIX = "export-preflight/"


def readme_example() -> dict[str, Any]:
    """The JSON block of the "Company configuration item" section (docs/contracts.md), as written there."""
    contracts = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = contracts[contracts.index("\n## Company configuration item\n") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block is not None
    document: dict[str, Any] = json.loads(block.group(1))
    return document


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, content: dict[str, Any] | str | bytes) -> str:
    path = tmp_path / "company.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def changed(**fields: Any) -> dict[str, Any]:
    """The documented example with fields of its ``configuration`` changed (``mappings`` merged)."""
    document = readme_example()
    mappings = fields.pop("mappings", None)
    document["configuration"].update(fields)
    if mappings is not None:
        document["configuration"]["mappings"].update(mappings)
    return document


# ---------------------------------------------------------------- the documented shape, the schema


def test_the_readme_example_is_a_valid_item_without_warnings(tmp_path):
    code, out, _ = run("config", "validate", write(tmp_path, readme_example()))
    assert (code, out) == (0, f"{tmp_path / 'company.json'}: valid configuration of company {COMPANY}\n")

    report = validate_item(readme_example(), secrets_prefix=PREFIX)
    assert report.accepted and report.warnings == []
    assert report.configuration is not None and report.configuration.mappings.expense_account == "5820"


def test_the_flattened_shape_is_refused():
    example = readme_example()
    flattened = {"companyId": example["companyId"], **example["configuration"]}
    report = validate_item(flattened, secrets_prefix=PREFIX)
    assert not report.accepted
    assert "configuration: required" in [str(f) for f in report.errors]
    assert "accountingSystem: unknown field" in [str(f) for f in report.errors]


def test_config_schema_prints_the_models_json_schema_and_the_readme_example_validates_against_it():
    code, out, _ = run("config", "schema")
    schema = json.loads(out)

    systems = schema["$defs"]["ConfigurationFields"]["properties"]["accountingSystem"]
    assert code == 0 and systems["anyOf"][0]["enum"] == sorted(CONNECTORS)
    model_schema = CompanyConfigurationItem.model_json_schema()
    systems["anyOf"] = model_schema["$defs"]["ConfigurationFields"]["properties"]["accountingSystem"]["anyOf"]
    assert schema == model_schema  # the model's, but for the list of systems
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(readme_example())
    # ...and it is strict as the model is: unknown fields and coerced values are refused.
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid(changed(vendorBookkeepingEnabled="yes"))
    assert not validator.is_valid(changed(mappings={"expenseAcount": 1}))
    assert not validator.is_valid({**readme_example(), "extra": 1})
    assert not validator.is_valid(changed(accountingSystem="sage"))


# ---------------------------------------------------------------- strict, per system, one round


@pytest.mark.parametrize(
    ("document", "path", "says"),
    [
        (changed(vendorBookkeepingEnabled="yes"), "configuration.vendorBookkeepingEnabled", "true or false"),
        (changed(exportReceipts=1), "configuration.exportReceipts", "true or false"),
        (changed(mappings={"expenseAcount": 5820}), "configuration.mappings.expenseAcount", "unknown field"),
        (changed(mappings={"journal": 1.5}), "configuration.mappings.journal", "text or a whole number"),
        (changed(mappings={"vatCodes": [True]}), "configuration.mappings.vatCodes[0]", "text or a whole number"),
        (changed(accountingCompanyRef="10000a"), "configuration.accountingCompanyRef", "must be a number"),
        (
            changed(
                accountingSystem="fortnox",
                accountingCompanyRef="12345",
                accountingCredentialsSecretId=f"{PREFIX}fortnox/{COMPANY}",
                mappings={"journal": "A", "vatCodes": []},
            ),
            "configuration.accountingCompanyRef",
            "organisation number",
        ),
        (
            changed(
                accountingSystem="quickbooks",
                accountingCompanyRef="realm-abc",
                accountingCredentialsSecretId=f"{PREFIX}quickbooks/{COMPANY}",
                mappings={"vatCodes": []},
            ),
            "configuration.accountingCompanyRef",
            "realmId (digits only)",
        ),
        (
            changed(pleoCredentialsSecretId=f"other-stack/pleo/{COMPANY}"),
            "configuration.pleoCredentialsSecretId",
            f"{PREFIX}pleo/{COMPANY}",
        ),
        (
            changed(accountingCredentialsSecretId=f"{PREFIX}economic/22222222-2222-4222-8222-222222222222"),
            "configuration.accountingCredentialsSecretId",
            f"{PREFIX}economic/{COMPANY}",
        ),
        ({**readme_example(), "companyId": "AAAAAAAA-1111-4111-8111-111111111111"}, "companyId", "lower-case UUID"),
        ({**readme_example(), "version": "3"}, "version", "whole number"),
        ({**readme_example(), "etag": "x"}, "etag", "unknown field"),
    ],
)
def test_each_error_names_its_field_by_json_path(tmp_path, document, path, says):
    code, out, _ = run("config", "validate", write(tmp_path, document))
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith(f"error: {path}: ")]
    assert len(lines) == 1 and says in lines[0], out


def test_accepted_systems_shapes_pass():
    fortnox = changed(
        accountingSystem="fortnox",
        accountingCompanyRef="556677-8899",
        accountingCredentialsSecretId=f"{PREFIX}fortnox/{COMPANY}",
        mappings={"journal": "A", "vatCodes": ["I"]},
    )
    quickbooks = changed(
        accountingSystem="quickbooks",
        accountingCompanyRef="9130350000000001",
        accountingCredentialsSecretId=f"{PREFIX}quickbooks/{COMPANY}",
        mappings={"journal": None, "vatCodes": [3]},
    )
    for document in (fortnox, quickbooks):
        report = validate_item(document, secrets_prefix=PREFIX)
        assert report.accepted, report.errors


def test_every_error_is_reported_in_one_round(tmp_path):
    document = changed(
        vendorBookkeepingEnabled="yes",  # a type error the model refuses...
        accountingCompanyRef="AGR-1",  # ...and value errors it could only find once the rest parsed
        pleoCredentialsSecretId="someone-else/pleo/x",
        mappings={"expenseAcount": 5820, "contraAccount": "68-00"},
    )
    document["unknown"] = True

    code, out, _ = run("config", "validate", write(tmp_path, document))

    errors = sorted(line.split(": ")[1] for line in out.splitlines() if line.startswith("error: "))
    assert code == 2
    assert errors == sorted(
        [
            "configuration.vendorBookkeepingEnabled",
            "configuration.mappings.expenseAcount",
            "unknown",
            "configuration.accountingCompanyRef",
            "configuration.mappings.contraAccount",
            "configuration.pleoCredentialsSecretId",
        ]
    )


def test_the_secret_prefix_is_the_stacks(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRETS_PREFIX", "team-a/")
    from export_preflight.process import reset

    reset()
    try:
        code, out, _ = run("config", "validate", write(tmp_path, readme_example()))
    finally:
        monkeypatch.delenv("SECRETS_PREFIX")
        reset()
    assert code == 2
    assert "error: configuration.pleoCredentialsSecretId: must name this company's own secret, team-a/pleo/" in out


# ---------------------------------------------------------------- size and what is not an object


def test_an_item_over_dynamodbs_400_kb_is_an_error_not_transient_trouble(tmp_path):
    slightly = changed(displayName=None, mappings={"vatCodes": ["I25"] * (MAX_ITEM_BYTES // 6)})
    code, out, _ = run("config", "put", write(tmp_path, slightly))
    assert code == 2 and "error: (document): " in out and "400 KB" in out and "nothing was written" in out

    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(changed(displayName="x" * 14_000_000)))
    code, out, err = run("config", "put", str(huge))
    assert code == 2 and "transient" not in out + err
    assert out.splitlines()[0].startswith(f"error: {huge}: larger than ") and "400 KB" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{'companyId': 1}", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"companyId": ' + "9" * 5000 + "}", "more than 4300 digits"),
        ("[1, 2]", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        ('{"companyId": NaN}', "NaN is not JSON"),
        ('{"companyId": "a", "companyId": "b"}', "appears twice"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("", "not JSON"),
    ],
)
def test_a_document_that_is_not_a_json_object_is_one_line_and_exit_2(tmp_path, content, says):
    for command in ("validate", "put"):
        code, out, err = run("config", command, write(tmp_path, content))
        lines = out.splitlines()
        assert code == 2 and says in lines[0] and err == "", (out, err)
        assert len(lines) == (1 if command == "validate" else 2)


def test_validation_does_not_change_the_document():
    document = changed(vendorBookkeepingEnabled="yes")
    before = copy.deepcopy(document)
    validate_item(document, secrets_prefix=PREFIX)
    assert document == before
