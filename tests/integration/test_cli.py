"""The operator CLI against the local world (moto + simulators): every command, its
output on stdout, progress and errors on stderr, and its exit code."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from export_preflight import cli
from export_preflight.aws import DynamoDBReadinessLog
from export_preflight.settings import get_settings
from sandbox import scenarios
from tests.integration.conftest import ready_jobs

pytestmark = pytest.mark.integration


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def recorded() -> dict[str, str]:
    return {r.company_id: r.status for r in DynamoDBReadinessLog(get_settings()).all()}


def economic_company(sandbox, slug: str, number: int, **traits):
    return sandbox.add_company("economic", slug, agreement_number=number, **traits)


# ---------------------------------------------------------------- check


def test_check_a_ready_company_prints_one_line_per_check_and_exits_0(sandbox):
    company = economic_company(sandbox, "nordlys", 400001)

    code, out, _ = run("check", company.company_id)

    assert code == 0
    assert out.splitlines()[0] == f"company {company.company_id} (nordlys), economic: READY"
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["PASS", name]
        for name in (
            "connection_settings",
            "authentication",
            "company_context",
            "permissions",
            "bookkeeping_mode",
            "mappings_complete",
            "capabilities",
            "mapped_accounts",
            "mapped_tax_codes",
        )
    ]
    assert recorded() == {company.company_id: "ready"}
    assert sandbox.pleo.events == [] and ready_jobs(sandbox) == []


def test_check_a_company_that_is_not_ready_names_the_reason_type_and_exits_1(sandbox):
    company = economic_company(
        sandbox,
        "barred",
        400002,
        configuration={"mappings": {"journal": 1, "expenseAccount": 9999, "contraAccount": 6800}},
    )

    code, out, _ = run("check", company.company_id, "--json")

    assert code == 1
    (document,) = json.loads(out)  # --json: always a list, keys as docs/operations.md ("Operator CLI") documents them
    assert document["status"] == "not_ready"
    assert [(p["check"], p["reasonType"]) for p in document["problems"]] == [
        ("mapped_accounts", "invalid_configuration")
    ]
    assert "9999" in document["problems"][0]["reason"]


def test_check_with_an_unreachable_system_says_unknown_and_exits_3(sandbox):
    company = economic_company(sandbox, "down", 400003)
    sandbox.economic.inject("GET", "/self", status=503, times=None)

    code, out, _ = run("check", company.company_id, "--no-record")

    assert code == 3
    assert "UNKNOWN" in out.splitlines()[0]
    assert any(line.split()[:2] == ["????", "authentication"] for line in out.splitlines())
    assert recorded() == {}  # --no-record


def test_check_all_shows_progress_on_stderr_and_exits_with_the_worst_status(sandbox):
    economic_company(sandbox, "ready-one", 400004)
    economic_company(sandbox, "revoked", 400005, grant_token="grant-that-was-revoked")

    code, out, err = run("check", "--all")

    assert code == 1
    first, second = sorted(recorded())
    assert [line for line in err.splitlines() if line.startswith("[")] == [
        f"[1/2] checking {first}",
        f"[2/2] checking {second}",
    ]
    assert out.count(": READY") == 1 and out.count(": NOT READY") == 1


def test_check_needs_company_ids_or_all(sandbox):
    code, _, err = run("check")
    assert code == 2 and "--all" in err


def test_the_cli_never_renews_an_oauth_token_so_it_cannot_cost_a_grant(sandbox):
    """The CLI runs on a laptop's clock (a lease is compared on the caller's clock), can be
    interrupted between a token call and the journal write, and flushes no metrics: it
    never calls a token endpoint nor takes a credential lease. An expired access token
    makes the check unknown (exit 3) and says where tokens are renewed."""
    company = sandbox.add_company("xero", "xero-laptop", expired_token=True)
    secret = company.configuration["accountingCredentialsSecretId"]
    before = sandbox.aws.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
    job = sandbox.add_job(company)

    code, out, _ = run("check", company.company_id, "--no-record")
    assert code == 3 and "UNKNOWN" in out.splitlines()[0]
    assert "readiness function" in out
    code, _, err = run("job", job["id"], "--company", company.company_id, "--dry-run")
    assert code == 3 and "readiness function" in err

    assert sandbox.xero.token_calls == 0 and not company.grant.revoked
    assert sandbox.aws.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"] == before
    locks = sandbox.aws.client("dynamodb").scan(TableName=sandbox.resources.credential_lock_table)["Items"]
    assert locks == []  # no lease taken, nothing journalled
    # the deployed function (here: the real handler) still renews it
    sandbox.enqueue_job(job)
    sandbox.poller().drain()
    assert sandbox.xero.token_calls == 1 and [h["jobId"] for h in ready_jobs(sandbox)] == [job["id"]]


# ---------------------------------------------------------------- job


def test_job_dry_run_decides_without_posting_or_handing_on(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)

    code, out, _ = run("job", seeded.job_id, "--company", seeded.company_id, "--dry-run")

    assert code == 1
    assert out.splitlines()[0].endswith("would be failed early")
    assert "invalid_configuration" in out.splitlines()[1]
    assert sandbox.pleo.events == [] and sandbox.pleo.job(seeded.job_id)["status"] == "in_progress"


def test_job_without_dry_run_fails_the_job_early_in_pleo(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)

    code, out, _ = run("job", seeded.job_id, "--company", seeded.company_id)

    assert code == 1 and out.splitlines()[0].endswith("failed early")
    assert sandbox.pleo.job(seeded.job_id)["status"] == "failed"
    assert len(sandbox.pleo.events) == 1


def test_job_hands_a_healthy_job_on_once(sandbox):
    (seeded,) = scenarios.passes(sandbox)

    code, out, _ = run("job", seeded.job_id, "--company", seeded.company_id, "--json")
    again, _, _ = run("job", seeded.job_id, "--company", seeded.company_id)

    assert (code, again) == (0, 0)
    assert [d["outcome"] for d in json.loads(out)] == ["handed_off"]
    assert [job["jobId"] for job in ready_jobs(sandbox)] == [seeded.job_id]  # once: the decision log


# ---------------------------------------------------------------- rerun


def test_rerun_finds_the_company_in_the_decision_record_and_decides_again(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    sandbox.poller().drain()
    assert len(ready_jobs(sandbox)) == 1

    code, out, _ = run("rerun", seeded.job_id)
    sandbox.poller().drain()

    assert code == 0 and "decision record removed (was handed_off)" in out
    assert [job["jobId"] for job in ready_jobs(sandbox)] == [seeded.job_id]


def test_rerun_refuses_a_job_that_is_no_longer_in_progress(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)
    sandbox.poller().drain()  # failed early

    code, _, err = run("rerun", seeded.job_id)

    assert code == 1 and "refused" in err and "failed" in err
    assert sandbox.queue_bodies(sandbox.resources.claimed_jobs_queue_url) == []


def test_rerun_of_an_undecided_job_needs_its_company(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    sandbox.queue_bodies(sandbox.resources.claimed_jobs_queue_url)  # never decided

    code, _, err = run("rerun", seeded.job_id)
    assert code == 2 and "--company" in err

    code, _, _ = run("rerun", seeded.job_id, "--company", seeded.company_id)
    assert code == 0 and len(sandbox.queue_bodies(sandbox.resources.claimed_jobs_queue_url)) == 1


# ---------------------------------------------------------------- config


def document(sandbox, **changes) -> dict:
    """The company's configuration item, shaped as in docs/contracts.md ("Company configuration
    item"): ``companyId`` and its ``configuration`` map."""
    company = economic_company(sandbox, "configured", 400010)
    fields = {**company.configuration, **changes}
    return {"companyId": fields.pop("companyId"), "configuration": fields}


def named(item: dict, display_name: str) -> dict:
    return {**item, "configuration": {**item["configuration"], "displayName": display_name}}


def write(tmp_path: Path, content: dict | str) -> str:
    path = tmp_path / "company.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_config_validate_accepts_a_complete_document(sandbox, tmp_path):
    code, out, _ = run("config", "validate", write(tmp_path, document(sandbox)))
    assert code == 0 and "valid configuration of company" in out and "warning" not in out


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        (
            {"mappings": {"journal": 1, "expenseAcount": 5820, "contraAccount": 6800}},
            "configuration.mappings.expenseAcount: unknown field",
        ),
        (
            {"mappings": {"journal": 1, "expenseAccount": "58-20", "contraAccount": 6800}},
            "configuration.mappings.expenseAccount: must be a number",
        ),
        ({"accountingSystem": "sage"}, "configuration.accountingSystem: 'sage' is not supported"),
        ({"companyId": "not-a-uuid"}, "companyId:"),
        ({"vendorBookkeepingEnabled": "perhaps"}, "configuration.vendorBookkeepingEnabled:"),
    ],
)
def test_config_validate_names_the_field_in_error(sandbox, tmp_path, changes, named):
    code, out, _ = run("config", "validate", write(tmp_path, document(sandbox, **changes)))
    assert code == 2
    assert any(line.startswith(f"error: {named}") for line in out.splitlines()), out


def test_config_validate_warns_about_what_keeps_a_company_from_being_ready(sandbox, tmp_path):
    code, out, _ = run("config", "validate", write(tmp_path, document(sandbox, mappings={"journal": 1})))
    assert code == 0
    assert "warning: configuration.mappings.expenseAccount: default expense account (expenseAccount) is not set" in out


def test_config_validate_refuses_what_is_not_json(tmp_path):
    code, out, _ = run("config", "validate", write(tmp_path, "{'companyId': 1}"))
    assert code == 2 and "not JSON" in out


def test_config_put_stores_the_item_and_the_company_can_be_checked(sandbox, tmp_path):
    changed = document(sandbox, displayName="renamed")
    assert changed["configuration"]["displayName"] == "renamed"

    code, out, _ = run("config", "put", write(tmp_path, changed))
    checked, check_out, _ = run("check", changed["companyId"])

    assert code == 0 and "stored the configuration" in out
    assert checked == 0 and "(renamed)" in check_out.splitlines()[0]


def test_config_put_of_an_invalid_document_writes_nothing(sandbox, tmp_path):
    original = document(sandbox)
    broken = {**original, "configuration": {**original["configuration"], "displayName": "x", "mappings": {"jornal": 1}}}
    code, out, _ = run("config", "put", write(tmp_path, broken))
    _, check_out, _ = run("check", original["companyId"])

    assert code == 2 and "nothing was written" in out
    assert "(configured)" in check_out.splitlines()[0]


def test_config_put_is_refused_when_the_stored_configuration_changed_since_its_version(sandbox, tmp_path):
    original = document(sandbox)
    company_id = original["companyId"]
    code, out, _ = run("config", "get", company_id)
    based_on = json.loads(out)
    assert code == 0 and based_on == {**original, "version": 0}

    # Two operators start from the same read; the first put wins...
    first, out, _ = run("config", "put", write(tmp_path, named(based_on, "first")))
    assert first == 0 and "as version 1" in out
    # ...the second, based on the stale read, is refused and writes nothing.
    second, _, err = run("config", "put", write(tmp_path, named(based_on, "second")))
    assert second == 1 and "refused" in err and "at version 1" in err and "based on version 0" in err

    code, out, _ = run("config", "get", company_id)
    current = json.loads(out)
    assert current["version"] == 1 and current["configuration"]["displayName"] == "first"
    item = sandbox.aws.client("dynamodb").get_item(
        TableName=sandbox.resources.company_config_table, Key={"companyId": {"S": company_id}}
    )["Item"]
    assert item["version"] == {"N": "1"} and "version" not in item["configuration"]["M"]

    # A put based on the current version goes through, as the next version.
    third, out, _ = run("config", "put", write(tmp_path, named(current, "third")))
    assert third == 0 and "as version 2" in out
    # A document without a version is a new company's: refused for a versioned one.
    fourth, _, err = run("config", "put", write(tmp_path, named(original, "blind")))
    assert fourth == 1 and "based on version 0" in err


def test_config_get_of_an_unknown_company_says_so(sandbox):
    code, out, err = run("config", "get", "99999999-9999-4999-8999-999999999999")
    assert code == 1 and out == "" and "no configuration item" in err


# ---------------------------------------------------------------- readiness


def test_readiness_lists_every_company_not_ready_first(sandbox):
    ready = economic_company(sandbox, "ready-one", 400020)
    revoked = economic_company(sandbox, "revoked", 400021, grant_token="grant-that-was-revoked")
    sandbox.sweep()

    code, out, _ = run("readiness")
    as_json = json.loads(run("readiness", "--json")[1])

    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["company", "name", "system", "readiness"]
    assert lines[1].startswith(revoked.company_id) and "accounting_system_authentication_failure" in lines[1]
    assert lines[2].startswith(ready.company_id) and " ready " in lines[2]
    assert lines[-1] == "1 ready, 1 not ready, 0 unknown"
    assert [r["status"] for r in as_json] == ["not_ready", "ready"]


def test_readiness_before_any_sweep_says_so(sandbox):
    code, out, _ = run("readiness")
    assert code == 0 and "no readiness recorded yet" in out


def test_the_command_is_installed():
    command = Path(sys.executable).parent / "export-preflight"
    answer = subprocess.run(  # noqa: S603 - our own installed command
        [str(command), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert answer.returncode == 0 and "readiness" in answer.stdout
