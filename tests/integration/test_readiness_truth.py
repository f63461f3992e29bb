"""What is stored and shown stays true and safe (issue 17, item 7), against moto and the
simulators: redacted outcomes in the decisions and readiness tables and the CLI's output; a
CLI clock running ahead cannot pin a readiness record; a removed configuration takes its
readiness record with it; a configuration cannot point at another company's secrets."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from export_preflight import cli
from export_preflight.aws import CLIENTS, DynamoDBReadinessLog
from export_preflight.models import Readiness
from export_preflight.settings import get_settings
from tests.integration.conftest import dead_letters, ready_jobs

pytestmark = pytest.mark.integration


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def table_items(sandbox, table: str) -> list[dict[str, Any]]:
    return sandbox.aws.client("dynamodb").scan(TableName=table)["Items"]


def recorded() -> dict[str, Readiness]:
    return {r.company_id: r for r in DynamoDBReadinessLog(get_settings()).all()}


def reconfigure(sandbox, company, **changes: Any) -> None:
    config = {**company.configuration, **changes}
    sandbox.aws.put_company_configuration(sandbox.resources, config)
    company.configuration.update(changes)


# ---------------------------------------------------------------- a. every outcome redacted


def test_a_secret_echoed_in_a_checks_reason_is_neither_stored_nor_printed(sandbox):
    company = sandbox.add_company("xero", "echoed")
    secret = company.secrets["pleo"]  # the company's Pleo API key, pasted as an account code
    reconfigure(sandbox, company, mappings={**company.configuration["mappings"], "expenseAccount": secret})
    job = sandbox.add_job(company)

    shown = [run("check", company.company_id), run("check", company.company_id, "--json")]
    shown += [run("job", job["id"], "--company", company.company_id, "--dry-run", *flag) for flag in ((), ("--json",))]
    sandbox.enqueue_job(job)
    sandbox.poller().drain()

    assert [code for code, _, _ in shown] == [1, 1, 1, 1]
    assert "[redacted]" in shown[0][1]  # the mapped_accounts line names the account, redacted
    for _, out, err in shown:
        assert secret not in out and secret not in err
    assert sandbox.pleo.job(job["id"])["status"] == "failed"
    decisions = table_items(sandbox, sandbox.resources.decisions_table)
    readiness = table_items(sandbox, sandbox.resources.readiness_table)
    assert decisions and readiness
    assert secret not in json.dumps(decisions) and secret not in json.dumps(readiness)


# ---------------------------------------------------------------- b. readiness stays true


def test_a_cli_clock_running_a_day_ahead_does_not_pin_the_readiness_record(sandbox):
    log = DynamoDBReadinessLog(get_settings())
    now = datetime.now(UTC)
    log.record(Readiness(company_id="c1", status="not_ready", checked_at=now + timedelta(days=1), source="cli"))

    log.record(Readiness(company_id="c1", status="ready", checked_at=now, source="sweep"))

    (found,) = log.all()
    assert (found.status, found.source) == ("ready", "sweep")


def test_a_cli_record_replaces_another_cli_record_but_never_a_later_service_record(sandbox):
    log = DynamoDBReadinessLog(get_settings())
    now = datetime.now(UTC)
    log.record(Readiness(company_id="c1", status="not_ready", checked_at=now + timedelta(days=1), source="cli"))
    log.record(Readiness(company_id="c1", status="unknown", checked_at=now, source="cli"))
    assert [r.status for r in log.all()] == ["unknown"]

    log.record(Readiness(company_id="c1", status="ready", checked_at=now + timedelta(minutes=1), source="job"))
    log.record(Readiness(company_id="c1", status="not_ready", checked_at=now, source="cli"))  # older
    log.record(Readiness(company_id="c1", status="not_ready", checked_at=now, source="sweep"))  # older
    assert [r.status for r in log.all()] == ["ready"]


def test_a_removed_configuration_takes_its_readiness_record_with_it(sandbox):
    kept = sandbox.add_company("economic", "kept", agreement_number=500001)
    removed = sandbox.add_company("economic", "removed", agreement_number=500002)
    sandbox.sweep()
    assert set(recorded()) == {kept.company_id, removed.company_id}

    sandbox.aws.client("dynamodb").delete_item(
        TableName=sandbox.resources.company_config_table, Key={"companyId": {"S": removed.company_id}}
    )
    _, listing, _ = run("readiness")
    _, listed_json, _ = run("readiness", "--json")

    assert kept.company_id in listing and removed.company_id not in listing
    assert [r["companyId"] for r in json.loads(listed_json)] == [kept.company_id]

    sandbox.sweep()
    assert set(recorded()) == {kept.company_id}


def test_checking_a_company_without_configuration_removes_its_record(sandbox):
    company = sandbox.add_company("economic", "gone", agreement_number=500003)
    assert run("check", company.company_id)[0] == 0
    sandbox.aws.client("dynamodb").delete_item(
        TableName=sandbox.resources.company_config_table, Key={"companyId": {"S": company.company_id}}
    )
    sandbox.reset_handler_caches()  # a new CLI run (configuration is cached for CONFIG_CACHE_SECONDS)

    code, out, _ = run("check", company.company_id)

    assert code == 1 and "missing_configuration" in out
    assert recorded() == {}


# ---------------------------------------------------------------- c. each company's own secrets


@pytest.fixture
def secrets_read():
    """The SecretIds the service's own Secrets Manager client asks for."""
    asked: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        asked.append(str(params.get("SecretId")))

    events = CLIENTS.client("secretsmanager").meta.events
    events.register("provide-client-params.secrets-manager.GetSecretValue", note)
    yield asked
    events.unregister("provide-client-params.secrets-manager.GetSecretValue", note)


def test_a_configuration_naming_another_companys_accounting_secret_fails_without_reading_it(sandbox, secrets_read):
    victim = sandbox.add_company("xero", "victim")
    company = sandbox.add_company("xero", "borrower")
    foreign = victim.configuration["accountingCredentialsSecretId"]
    reconfigure(sandbox, company, accountingCredentialsSecretId=foreign)
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)

    sandbox.poller().drain()

    failed = sandbox.pleo.job(job["id"])
    assert (failed["status"], failed["failureReasonType"]) == ("failed", "invalid_configuration")
    assert "accountingCredentialsSecretId" in failed["failureReason"]
    assert f"export-preflight/xero/{company.company_id}" in failed["failureReason"]
    assert foreign not in secrets_read and ready_jobs(sandbox) == []


def test_a_configuration_naming_another_companys_pleo_secret_goes_to_the_dlq_unread(sandbox, secrets_read):
    victim = sandbox.add_company("economic", "victim-pleo", agreement_number=500004)
    company = sandbox.add_company("economic", "borrower-pleo", agreement_number=500005)
    foreign = victim.configuration["pleoCredentialsSecretId"]
    reconfigure(sandbox, company, pleoCredentialsSecretId=foreign)
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)

    sandbox.poller().drain()

    (dead,) = dead_letters(sandbox)
    assert dead["attributes"]["rejectKind"] == "invalid_configuration"
    assert "pleoCredentialsSecretId" in dead["attributes"]["rejectReason"]
    assert foreign not in secrets_read
    assert sandbox.pleo.events == [] and sandbox.pleo.job(job["id"])["status"] == "in_progress"

    code, out, _ = run("check", company.company_id)
    assert code == 1 and "pleoCredentialsSecretId" in out and foreign not in secrets_read


def test_config_validate_refuses_a_secret_id_that_is_not_the_companys_own(sandbox, tmp_path):
    victim = sandbox.add_company("economic", "victim-doc", agreement_number=500006)
    company = sandbox.add_company("economic", "doc", agreement_number=500007)
    configuration = {k: v for k, v in company.configuration.items() if k != "companyId"}
    configuration["accountingCredentialsSecretId"] = "export-preflight/economic/doc"
    configuration["pleoCredentialsSecretId"] = victim.configuration["pleoCredentialsSecretId"]
    path = tmp_path / "company.json"
    path.write_text(json.dumps({"companyId": company.company_id, "configuration": configuration}))

    code, out, _ = run("config", "put", str(path))

    assert code == 2
    assert "error: configuration.pleoCredentialsSecretId: must name this company's own secret" in out
    assert f"export-preflight/economic/{company.company_id}" in out
    assert "nothing was written" in out
