"""The faults whose consequences are worst, end to end: a rotated refresh token is never
lost, nothing fails silently, one decision per job even after a redrive or a re-run, and
no secret reaches a failure reason."""

from __future__ import annotations

import json

import pytest

from export_preflight.aws import DynamoDBDecisionLog, Queues
from export_preflight.rerun import rerun
from export_preflight.settings import get_settings
from sandbox import scenarios
from tests.integration.conftest import dead_letters, emf_metrics, ready_jobs, stored_tokens

pytestmark = pytest.mark.integration


def test_a_token_set_secrets_manager_refused_is_recovered_and_the_grant_keeps_working(sandbox, aws_faults):
    company = sandbox.add_company("xero", "xero-journal", expired_token=True)
    secret = company.configuration["accountingCredentialsSecretId"]
    aws_faults.inject("PutSecretValue", "throttled", times=10, when=lambda p: p.get("SecretId") == secret)
    first = sandbox.add_job(company)
    sandbox.enqueue_job(first)
    sandbox.poller().drain()
    assert sandbox.xero.token_calls == 1
    assert stored_tokens(sandbox, company)["refreshToken"] != company.grant.refresh_token  # Secrets Manager refused it

    # The next job, after the access token lapsed: the journalled set is saved first, then
    # the refresh presents the *new* refresh token (a replay would revoke the grant).
    sandbox.xero.expire_access_token(company.grant)
    second = sandbox.add_job(company)
    sandbox.enqueue_job(second)
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [first["id"], second["id"]]
    assert not company.grant.revoked and sandbox.xero.token_calls == 2
    assert stored_tokens(sandbox, company)["refreshToken"] == company.grant.refresh_token


def _break_once(monkeypatch, cls: type, name: str, error: Exception) -> None:
    """``cls.name`` raises ``error`` on its first call, then works as before."""
    original = getattr(cls, name)
    calls = []

    def broken_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, broken_once)


def test_an_unexpected_error_is_logged_with_the_job_and_traceback_counted_and_backed_off(sandbox, monkeypatch, capsys):
    from export_preflight.company_checks import CompanyChecks

    (seeded,) = scenarios.passes(sandbox)
    _break_once(monkeypatch, CompanyChecks, "run", ZeroDivisionError("a bug nobody planned for"))
    report = sandbox.poller().drain()
    assert report.failures == 1 and [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    out, _ = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith('{"level"')]
    (error,) = [line for line in lines if line["level"] == "ERROR"]
    assert error["correlation_id"] == seeded.job_id and "ZeroDivisionError" in error["exception"]
    assert any(m.get("UnexpectedError") for m in emf_metrics(out))


def _log_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"level"')]


def test_a_retried_record_is_logged_once_at_its_level_not_again_by_the_batch_processor(sandbox, capsys):
    (seeded,) = scenarios.passes(sandbox)
    sandbox.economic.inject("GET", "/self", times=1, status=503)
    report = sandbox.poller().drain()
    assert report.failures == 1 and [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    lines = _log_lines(capsys.readouterr().out)
    (retried,) = [line for line in lines if line["level"] == "WARNING"]
    assert retried["message"] == "transient trouble; the message will be retried" and "exception" not in retried
    assert not [line for line in lines if "Record processing exception" in line["message"]]


def test_an_error_outside_the_error_handling_is_still_logged_with_its_traceback(sandbox, monkeypatch, capsys):
    from export_preflight.settings import Settings

    (seeded,) = scenarios.passes(sandbox)
    _break_once(monkeypatch, Settings, "retry_delay", RuntimeError("a bug before the error handling"))
    report = sandbox.poller().drain()
    assert report.failures == 1 and [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    (logged,) = [line for line in _log_lines(capsys.readouterr().out) if line["level"] == "WARNING"]
    assert logged["message"] == "Record processing exception; skipping this record"
    assert "RuntimeError: a bug before the error handling" in logged["exception"]


def test_a_redrive_of_a_decided_job_is_a_no_op_and_a_rerun_decides_again(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    body = json.dumps({"jobId": seeded.job_id, "companyId": seeded.company_id})
    sandbox.poller().drain()
    assert len(ready_jobs(sandbox)) == 1

    # A redrive (days later): the decision log answers.
    sandbox.enqueue(body)
    sandbox.poller().drain()
    assert ready_jobs(sandbox) == [] and dead_letters(sandbox) == []

    # The documented re-run path: a new decision, handed on again (a new deduplication id).
    settings = get_settings()
    done = rerun(
        __import__("uuid").UUID(seeded.job_id),
        __import__("uuid").UUID(seeded.company_id),
        decisions=DynamoDBDecisionLog(settings),
        queue=Queues(settings),
    )
    sandbox.poller().drain()
    (handed,) = ready_jobs(sandbox)
    assert handed["jobId"] == seeded.job_id and done.token


def test_a_secret_pasted_into_a_configuration_field_never_reaches_the_failure_reason(sandbox):
    company = sandbox.add_company("xero", "xero-pasted")
    refresh = company.secrets["refresh"]
    configuration = {**company.configuration, "accountingCompanyRef": refresh}
    sandbox.aws.put_company_configuration(sandbox.resources, configuration)
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)
    sandbox.poller().drain()
    failed = sandbox.pleo.job(job["id"])
    assert failed["status"] == "failed" and failed["failureReasonType"] == "invalid_configuration"
    assert refresh not in failed["failureReason"] and "[redacted]" in failed["failureReason"]


def test_invalid_settings_of_one_connector_affect_only_its_companies(session_sandbox, capsys):
    session_sandbox.reset(
        settings={"XERO_API_BASE_URL": "https://api.xero.example/?tenant=1", "MAX_RECEIVE_COUNT": "1"}
    )
    (economic,) = scenarios.passes(session_sandbox)
    (xero,) = scenarios.xero_passes(session_sandbox)
    session_sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(session_sandbox)] == [economic.job_id]
    failed = session_sandbox.pleo.job(xero.job_id)  # its one delivery was its last: integration_unusable
    assert (failed["status"], failed["failureReasonType"]) == ("failed", "integration_unusable")
    out, _ = capsys.readouterr()
    (line,) = [json.loads(x) for x in out.splitlines() if "a connector's settings are invalid" in x]
    assert line["level"] == "ERROR" and line["system"] == "xero" and line["fields"] == ["XERO_API_BASE_URL"]
    session_sandbox.reset(settings={})
