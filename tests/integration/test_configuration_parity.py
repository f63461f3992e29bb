"""What `config validate` accepts is what the function accepts, and what it refuses the
function refuses too: both run ``configuration.validate_item`` on the same item shape
(docs/contracts.md, "Company configuration item"). The function reads the stored item through
``CompanyConfigurations.get``; a value it parses but an accounting system would refuse is
reported by the checks as ``invalid_configuration`` before any secret is read."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from boto3.dynamodb.types import TypeSerializer

from export_preflight import cli
from export_preflight.aws import CompanyConfigurations
from export_preflight.configuration import validate_item
from export_preflight.errors import UnprocessableMessage
from export_preflight.settings import get_settings

pytestmark = pytest.mark.integration


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def item_of(company: Any, **changes: Any) -> dict[str, Any]:
    fields = {**company.configuration, **changes}
    return {"companyId": fields.pop("companyId"), "configuration": fields}


def store_raw(sandbox: Any, document: dict[str, Any]) -> None:
    """Write the item as anything but the CLI might (the console, a script): unvalidated."""
    sandbox.aws.client("dynamodb").put_item(
        TableName=sandbox.resources.company_config_table,
        Item={
            "companyId": {"S": document["companyId"]},
            "configuration": TypeSerializer().serialize(
                json.loads(json.dumps(document["configuration"]), parse_float=Decimal)
            ),
        },
    )


OTHER = "22222222-2222-4222-8222-222222222222"

# (system, changes to the seeded configuration, refused by the model (True) or by a check (False))
CASES = [
    ("economic", {}, None),
    ("economic", {"mappings": {"journal": 1, "expenseAccount": 5820, "contraAccount": 6800}}, None),
    ("economic", {"vendorBookkeepingEnabled": "yes"}, True),
    ("economic", {"exportRecipts": True}, True),
    ("economic", {"mappings": {"journal": 1.5, "expenseAccount": 5820, "contraAccount": 6800}}, True),
    ("economic", {"accountingCompanyRef": "10000a"}, False),
    ("economic", {"accountingSystem": "sage"}, False),
    ("fortnox", {"accountingCompanyRef": "12345"}, False),
    ("quickbooks", {"accountingCompanyRef": "realm-abc"}, False),
    ("economic", {"pleoCredentialsSecretId": f"export-preflight/pleo/{OTHER}"}, False),
]


@pytest.mark.parametrize(("system", "changes", "by_model"), CASES)
def test_the_function_accepts_and_refuses_what_config_validate_does(sandbox, tmp_path, system, changes, by_model):
    company = sandbox.add_company(system, f"parity-{system}-{CASES.index((system, changes, by_model))}")
    document = item_of(company, **changes)
    if "accountingCredentialsSecretId" not in changes and changes.get("accountingSystem") == "sage":
        document["configuration"]["accountingCredentialsSecretId"] = company.configuration[
            "accountingCredentialsSecretId"
        ]
    path = tmp_path / "item.json"
    path.write_text(json.dumps(document))
    validated, out, _ = run("config", "validate", str(path))
    store_raw(sandbox, document)

    report = validate_item(document, secrets_prefix=get_settings().secrets_prefix)
    try:
        read = CompanyConfigurations(get_settings()).get(UUID(document["companyId"]))
    except UnprocessableMessage as error:
        read, refusal = None, error

    if by_model is None:  # accepted by both, as the same configuration
        assert validated == 0, out
        assert read is not None and read == report.configuration
        return
    assert validated == 2 and "error: " in out
    if by_model:  # refused by the model: the function cannot read the item at all
        assert read is None and refusal.kind == "malformed_company_configuration"
        assert all(f.path in refusal.reason for f in report.structure)
    # ...and either way the company is not ready: invalid_configuration, naming the field
    checked, check_out, _ = run("check", "--no-record", document["companyId"])
    assert checked == 1 and "invalid_configuration" in check_out, check_out
    field = report.errors[0].path.removeprefix("configuration.").split(".")[0].split("[")[0]
    assert field in check_out or "not supported" in check_out or "not a" in check_out, check_out
