"""The operator CLI finds its stack (``--stack NAME`` / ``EXPORT_PREFLIGHT_STACK``: the
CloudFormation Outputs are its settings), and whatever keeps it from the stack (no Region,
no credentials, no stack, a missing table, access denied) is a set-up error: exit 2, one
line naming the fix, never "try again later", never "no configuration for company", no
traceback from any thread."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from export_preflight import cli
from export_preflight.aws import AwsClients  # imported with the tests: the service's log handler on pytest's stream
from tests.faults.aws_faults import AwsFaults

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).parent / "export-preflight")
# Loopback only: a port nothing listens on, for any AWS call that would be made anyway.
NOWHERE = "http://127.0.0.1:9"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def bare_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The process environment without any AWS set-up (nor this machine's ~/.aws)."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "EXPORT_PREFLIGHT_STACK"}
    for name in ("COMPANY_CONFIG_TABLE", "READINESS_TABLE", "DECISIONS_TABLE", "CREDENTIAL_LOCK_TABLE"):
        kept.pop(name, None)
    return {
        **kept,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance metadata service
        "AWS_ENDPOINT_URL": NOWHERE,
        **extra,
    }


def cli_process(tmp_path: Path, *argv: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own installed command
        [COMMAND, *argv],
        env=bare_environment(tmp_path, **environment),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def assert_set_up_error(code: int, err: str, *names_the_fix: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "Exception in thread" not in err
    assert "try again" not in err and "No integration configuration" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fix in names_the_fix:
        assert fix in lines[0], lines[0]


# ---------------------------------------------------------------- no Region, no credentials, no stack


def test_without_a_region_the_cli_says_to_set_aws_region(tmp_path):
    # The functions' settings are given: only the Region is missing (before: a NoRegionError
    # traceback from the runtime's background thread, then "transient trouble", exit 3).
    answer = cli_process(
        tmp_path, "readiness", COMPANY_CONFIG_TABLE="config", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"
    )
    assert_set_up_error(answer.returncode, answer.stderr, "no AWS Region", "AWS_REGION")
    assert answer.stdout == ""


def test_aws_region_alone_is_enough_for_the_region(tmp_path):
    """docs/operations.md says AWS_REGION; boto3 reads only AWS_DEFAULT_REGION: the CLI takes either."""
    answer = cli_process(tmp_path, "readiness", COMPANY_CONFIG_TABLE="config", AWS_REGION="eu-west-1")
    assert_set_up_error(answer.returncode, answer.stderr, "no AWS credentials", "AWS_PROFILE")


def test_without_credentials_the_cli_says_how_to_get_them(tmp_path):
    answer = cli_process(tmp_path, "--stack", "export-preflight-staging", "readiness", AWS_REGION="eu-west-1")
    assert_set_up_error(answer.returncode, answer.stderr, "no AWS credentials", "AWS_PROFILE")


def test_without_a_stack_the_cli_asks_for_one_instead_of_guessing_table_names(tmp_path):
    answer = cli_process(
        tmp_path, "readiness", "--json", AWS_REGION="eu-west-1", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"
    )
    assert_set_up_error(answer.returncode, answer.stderr, "--stack NAME", "EXPORT_PREFLIGHT_STACK")
    (document,) = json.loads(answer.stdout)
    assert document["exitCode"] == 2 and "--stack NAME" in document["error"]


# ---------------------------------------------------------------- --stack against the local world's CloudFormation


def create_stack(sandbox, name: str, **outputs: str) -> None:
    template = {
        "Resources": {"Anchor": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-anchor"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    sandbox.aws.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def stack_outputs_of(sandbox) -> dict[str, str]:
    resources = sandbox.resources
    return {
        "CompanyConfigTableName": resources.company_config_table,
        "ReadinessTableName": resources.readiness_table,
        "JobDecisionsTableName": resources.decisions_table,
        "CredentialLockTableName": resources.credential_lock_table,
        "ClaimedJobsQueueUrl": resources.claimed_jobs_queue_url,
        "ReadyJobsQueueUrl": resources.ready_jobs_queue_url,
        "SecretsPrefix": "export-preflight/",
    }


def test_the_stack_outputs_name_the_tables_whatever_the_environment_says(sandbox, monkeypatch):
    company = sandbox.add_company("economic", "stacked", agreement_number=410001)
    create_stack(sandbox, "export-preflight-local", **stack_outputs_of(sandbox))
    # The environment names tables this stack does not have: the stack's Outputs win.
    monkeypatch.setenv("COMPANY_CONFIG_TABLE", "export-preflight-company-config-elsewhere")
    monkeypatch.setenv("READINESS_TABLE", "export-preflight-readiness-elsewhere")
    sandbox.reset_handler_caches()

    code, out, err = run("check", company.company_id, "--stack", "export-preflight-local")
    assert code == 0, err
    assert out.splitlines()[0] == f"company {company.company_id} (stacked), economic: READY"

    monkeypatch.setenv("EXPORT_PREFLIGHT_STACK", "export-preflight-local")
    code, out, _ = run("readiness", "--json")
    assert code == 0 and [r["companyId"] for r in json.loads(out)] == [company.company_id]
    # and the environment is as it was: the stack's settings lasted one command
    assert os.environ["COMPANY_CONFIG_TABLE"] == "export-preflight-company-config-elsewhere"


def test_a_stack_that_does_not_exist_is_a_set_up_error(sandbox):
    code, out, err = run("--stack", "export-preflight-nowhere", "readiness")
    assert_set_up_error(code, err, "no stack 'export-preflight-nowhere'", "AWS_REGION")
    assert out == ""


def test_a_stack_without_our_outputs_is_a_set_up_error(sandbox):
    create_stack(sandbox, "someone-elses-stack", Something="else")
    code, _, err = run("readiness", "--stack", "someone-elses-stack")
    assert_set_up_error(code, err, "no CompanyConfigTableName output")


# ---------------------------------------------------------------- a missing table, access denied


def test_a_missing_configuration_table_is_not_a_missing_company(sandbox, monkeypatch, tmp_path):
    company = sandbox.add_company("economic", "tableless", agreement_number=410002)
    document = json.loads(run("config", "get", company.company_id)[1])  # as `config put` takes it
    monkeypatch.setenv("COMPANY_CONFIG_TABLE", "export-preflight-company-config-missing")
    sandbox.reset_handler_caches()

    code, out, err = run("check", company.company_id)
    assert_set_up_error(code, err, "does not exist", "--stack NAME")
    assert "export-preflight-company-config-missing" in err and out == ""

    code, _, err = run("readiness")
    assert_set_up_error(code, err, "does not exist", "--stack NAME")

    path = tmp_path / "company.json"
    path.write_text(json.dumps(document))
    code, out, err = run("config", "put", str(path))
    assert code == 2 and "does not exist" in err and "try again" not in err, out + err


def test_access_denied_is_a_set_up_error_naming_the_profile(sandbox, monkeypatch):
    faults = AwsFaults()
    faults.install(monkeypatch)
    faults.inject("Scan", "access-denied", times=None)

    code, out, err = run("readiness", "--json")

    assert_set_up_error(code, err, "AccessDeniedException", "AWS_PROFILE")
    (document,) = json.loads(out)
    assert document["exitCode"] == 2 and "AccessDeniedException" in document["error"]


def test_an_aws_client_that_cannot_be_built_prints_nothing_from_its_thread(monkeypatch, capsys):
    """The runtime builds the SQS client in a background thread; without a Region that
    build fails: quietly there, reported where the client is used."""
    import threading

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    hooked: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    before = set(threading.enumerate())

    AwsClients().build_soon("sqs")
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=10)

    assert hooked == [] and capsys.readouterr().err == ""
