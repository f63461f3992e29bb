"""`export-preflight company add`: a company's credentials secrets (named as the function
accepts them, token sets tagged so the function may store rotated tokens), its
configuration item through the versioned put, then its readiness: against moto and the
simulators. Secret material comes from files or stdin, never from argv or the output."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from export_preflight import cli, observability  # noqa: F401 (its logger made at import, outside a test's capture)
from export_preflight.settings import get_settings

pytestmark = pytest.mark.integration

TAG = {"Key": "export-preflight:secret-kind", "Value": "oauth-token-set"}


def run(*argv: str, stdin: str | None = None, monkeypatch: Any = None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def unconfigured(sandbox: Any, system: str, slug: str) -> tuple[Any, dict[str, str]]:
    """A company whose Pleo and accounting sides exist (seeded simulators) but which has no
    secrets and no configuration item yet: what an operator starts from. Returns the
    company and its secrets' values as they were seeded (what the customer's consent gave)."""
    company = sandbox.add_company(system, slug)
    secrets = sandbox.aws.client("secretsmanager")
    values = {}
    for field in ("pleoCredentialsSecretId", "accountingCredentialsSecretId"):
        name = company.configuration[field]
        values[field] = secrets.get_secret_value(SecretId=name)["SecretString"]
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    sandbox.aws.client("dynamodb").delete_item(
        TableName=sandbox.resources.company_config_table, Key={"companyId": {"S": company.company_id}}
    )
    return company, values


def files(tmp_path: Path, company: Any, values: dict[str, str]) -> tuple[str, str, str]:
    """The configuration item (without the secret ids: `company add` fills them in) and the
    two credentials files."""
    fields = {
        k: v
        for k, v in company.configuration.items()
        if k not in ("companyId", "pleoCredentialsSecretId", "accountingCredentialsSecretId")
    }
    config = tmp_path / "item.json"
    config.write_text(json.dumps({"companyId": company.company_id, "configuration": fields}))
    pleo = tmp_path / "pleo.json"
    pleo.write_text(values["pleoCredentialsSecretId"])
    accounting = tmp_path / "accounting.json"
    accounting.write_text(values["accountingCredentialsSecretId"])
    return str(config), str(pleo), str(accounting)


def tags(sandbox: Any, name: str) -> list[dict[str, str]]:
    return sandbox.aws.client("secretsmanager").describe_secret(SecretId=name).get("Tags", [])


def test_company_add_creates_tagged_secrets_and_the_item_then_says_ready(sandbox, tmp_path):
    company, values = unconfigured(sandbox, "xero", "onboard-xero")
    config, pleo, accounting = files(tmp_path, company, values)
    prefix = get_settings().secrets_prefix
    argv = ("company", "add", "--company-id", company.company_id, "--system", "xero", "--config", config)

    code, out, _ = run(*argv, "--credentials", accounting, "--pleo-credentials", pleo)

    assert code == 0, out
    pleo_secret, xero_secret = f"{prefix}pleo/{company.company_id}", f"{prefix}xero/{company.company_id}"
    assert f"created the secret {pleo_secret} (Pleo credentials)\n" in out
    assert f"created the secret {xero_secret} (Xero credentials) and the tag " in out
    assert "stored the configuration of company" in out and "as version 1" in out
    assert "READY" in out and "PASS authentication" in out
    # The token set carries the tag the function's PutSecretValue needs; the API key does not.
    assert TAG in tags(sandbox, xero_secret) and tags(sandbox, pleo_secret) == []
    # The item has the shape of docs/contracts.md ("Company configuration item") with the names
    # the rule fixes, and the readiness is recorded.
    got, stored, _ = run("config", "get", company.company_id)
    assert got == 0
    item = json.loads(stored)
    assert item["version"] == 1 and item["configuration"]["accountingCredentialsSecretId"] == xero_secret
    assert item["configuration"]["pleoCredentialsSecretId"] == pleo_secret
    _, readiness, _ = run("readiness")
    assert company.company_id in readiness

    # Run again: nothing is overwritten unasked.
    again, out, err = run(*argv, "--credentials", accounting)
    assert again == 1 and "exists already" in err and "configured already" in err and "nothing was written" in out


def test_company_add_reads_the_secret_from_stdin_and_says_what_is_missing(sandbox, tmp_path, monkeypatch):
    company, values = unconfigured(sandbox, "economic", "onboard-economic")
    config, _, _ = files(tmp_path, company, values)

    code, out, _ = run(
        "company",
        "add",
        "--company-id",
        company.company_id,
        "--system",
        "economic",
        "--config",
        config,
        "--credentials",
        "-",
        stdin=values["accountingCredentialsSecretId"],
        monkeypatch=monkeypatch,
    )

    # e-conomic's static token pair is no token set: no tag. The Pleo secret was not given.
    prefix = get_settings().secrets_prefix
    assert f"created the secret {prefix}economic/{company.company_id} (" in out and "and the tag" not in out
    assert "Tags" not in sandbox.aws.client("secretsmanager").describe_secret(
        SecretId=f"{prefix}economic/{company.company_id}"
    ) or not tags(sandbox, f"{prefix}economic/{company.company_id}")
    assert f"note: the secret {prefix}pleo/{company.company_id} (Pleo credentials) does not exist yet" in out
    # (readiness is the accounting side's: a job is read with the Pleo secret once it exists)
    assert code == 0 and ": READY" in out


def test_company_add_refuses_a_bad_document_or_credentials_file_and_writes_nothing(sandbox, tmp_path):
    company, values = unconfigured(sandbox, "xero", "onboard-refused")
    config, _, accounting = files(tmp_path, company, values)
    bad_config = tmp_path / "bad.json"
    bad_config.write_text(json.dumps({"companyId": company.company_id, "configuration": {"exportReceipts": "yes"}}))
    not_a_token_set = tmp_path / "wrong.json"
    not_a_token_set.write_text(json.dumps({"apiKey": "pleo-looking-key-1234"}))
    base = ("company", "add", "--company-id", company.company_id, "--system", "xero")

    code, out, _ = run(*base, "--config", str(bad_config), "--credentials", accounting)
    assert code == 2 and "error: configuration.exportReceipts: " in out and "nothing was written" in out

    code, out, _ = run(*base, "--config", config, "--credentials", str(not_a_token_set))
    assert code == 2 and "error: --credentials: not the credentials this secret holds" in out
    assert "pleo-looking-key-1234" not in out

    # Secret material given where a file is expected is never echoed back.
    code, out, err = run(*base, "--config", config, "--credentials", values["accountingCredentialsSecretId"])
    assert code == 2 and "error: --credentials: cannot read it" in out
    assert values["accountingCredentialsSecretId"] not in out + err

    secrets = sandbox.aws.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in secrets if company.company_id in s["Name"]]
    got, _, _ = run("config", "get", company.company_id)
    assert got == 1
