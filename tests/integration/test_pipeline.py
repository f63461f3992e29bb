"""The real handler, end to end: SQS-shaped batches from moto, the Pleo and e-conomic
simulators, DynamoDB configuration, Secrets Manager credentials, idempotency."""

from __future__ import annotations

import json
import uuid

import pytest

from sandbox import scenarios
from tests.integration.conftest import dead_letters, emf_metrics, ready_jobs

pytestmark = pytest.mark.integration

FAILURE_SCENARIOS = [
    scenarios.revoked_grant,
    scenarios.sales_role,
    scenarios.wrong_agreement,
    scenarios.vendor_mode_off,
    scenarios.incomplete_mappings,
    scenarios.not_connected,
    scenarios.restricted_journal,
    scenarios.barred_account,
    scenarios.unknown_vat_code,
]


def test_a_healthy_job_is_handed_on_without_any_event(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    report = sandbox.poller().drain()
    assert report.records == 1 and report.deleted == 1
    assert sandbox.pleo.events == []
    assert sandbox.pleo.job(seeded.job_id)["status"] == "in_progress"
    (handed,) = ready_jobs(sandbox)
    assert handed["jobId"] == seeded.job_id and handed["companyId"] == seeded.company_id
    assert handed["accountingSystem"] == "economic" and handed["accountingCompanyRef"] == "100001"
    assert handed["checks"]["company_context"] == {"verified": True, "companyRef": "100001"}
    assert dead_letters(sandbox) == []


def test_a_vendor_job_passes_when_vendor_bookkeeping_is_set_up(sandbox):
    scenarios.vendor_passes(sandbox)
    sandbox.poller().drain()
    (handed,) = ready_jobs(sandbox)
    assert handed["vendorBasedBookkeeping"] is True and handed["checks"]["bookkeeping_mode"] == {"mode": "vendor"}


@pytest.mark.parametrize("seeder", FAILURE_SCENARIOS, ids=lambda s: s.__name__)
def test_each_failure_fails_the_job_early_with_its_reason_type(sandbox, seeder, capsys):
    (seeded,) = seeder(sandbox)
    report = sandbox.poller().drain()
    assert report.failures == 0  # a check failure is a business result: the record succeeds
    job = sandbox.pleo.job(seeded.job_id)
    assert job["status"] == "failed"
    assert job["failureReasonType"] == seeded.expected_reason_type
    assert "export again" in job["failureReason"] or "Reconnect" in job["failureReason"]
    assert [e["jobId"] for e in sandbox.pleo.events] == [seeded.job_id]
    assert ready_jobs(sandbox) == []
    # nothing was ever written to the accounting system
    assert {r.method for r in sandbox.economic.requests} <= {"GET"}
    out, _ = capsys.readouterr()
    outcomes = [m for m in emf_metrics(out) if "PreflightOutcome" in m]
    assert [(m["outcome"], m["reasonType"]) for m in outcomes] == [("failed_early", seeded.expected_reason_type)]


def test_nothing_after_a_failed_authentication_is_asked(sandbox):
    scenarios.revoked_grant(sandbox)
    sandbox.poller().drain()
    # one retry with the secret re-read (it may have been rotated), and nothing else
    assert [r.path for r in sandbox.economic.requests] == ["/self", "/self"]


def test_transient_accounting_trouble_is_retried_then_passes(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    sandbox.economic.inject("GET", "/self", status=503, times=1)
    report = sandbox.poller().drain()
    assert report.failures == 1 and report.deleted == 1
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    assert sandbox.pleo.events == []


def test_persistent_accounting_outage_fails_the_job_on_the_last_attempt(sandbox):
    (seeded,) = scenarios.economic_down(sandbox)
    report = sandbox.poller().drain()
    assert report.failures == 4 and report.deleted == 1  # receives 1-4 retried, the 5th decides
    job = sandbox.pleo.job(seeded.job_id)
    assert (job["status"], job["failureReasonType"]) == ("failed", "accounting_system_unreachable")
    assert len(sandbox.pleo.events) == 1 and dead_letters(sandbox) == []


def test_duplicate_messages_hand_a_job_on_once(sandbox):
    (seeded,) = scenarios.duplicate_delivery(sandbox)
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]


def test_duplicate_messages_for_a_failing_job_post_one_event(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)
    job = sandbox.pleo.job(seeded.job_id)
    sandbox.enqueue_job(job)
    sandbox.enqueue_job(job)
    sandbox.poller().drain()
    assert [e["jobId"] for e in sandbox.pleo.events] == [seeded.job_id]


def test_a_job_that_is_no_longer_in_progress_is_left_alone(sandbox):
    scenarios.already_failed(sandbox)
    sandbox.poller().drain()
    assert sandbox.pleo.events == [] and ready_jobs(sandbox) == []
    # at most the read-only authentication probe started while the job was being read
    assert {r.path for r in sandbox.economic.requests} <= {"/self"}


def test_malformed_messages_go_straight_to_the_dlq_with_the_reason(sandbox, capsys):
    scenarios.passes(sandbox)
    scenarios.malformed(sandbox)
    report = sandbox.poller().drain()
    assert report.failures == 0  # no retries burnt, and the good message in the batch went through
    dead = dead_letters(sandbox)
    assert "this is not json" in [d["body"] for d in dead]
    assert {d["attributes"]["rejectKind"] for d in dead} == {"malformed_message"}
    assert any("jobId" in d["attributes"]["rejectReason"] for d in dead)
    assert len(ready_jobs(sandbox)) == 1
    out, _ = capsys.readouterr()
    assert "message moved to the dead-letter queue" in out
    values = [m["MalformedMessage"] for m in emf_metrics(out) if "MalformedMessage" in m]
    assert sum(v if isinstance(v, int | float) else sum(v) for v in values) == 2


def test_a_company_without_configuration_is_dead_lettered(sandbox):
    scenarios.unknown_company(sandbox)
    sandbox.poller().drain()
    (dead,) = dead_letters(sandbox)
    assert dead["attributes"]["rejectKind"] == "unknown_company"


def test_a_422_on_the_failed_event_counts_when_the_job_already_failed(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)
    # another worker failed the job between our read and our event
    sandbox.pleo.inject(
        "POST",
        "/v3/export-job-events",
        status=422,
        json={"type": "INVALID_EXPORT_JOB_STATUS_CHANGE", "message": "Export Job status change failed"},
    )
    sandbox.pleo.expire_job(seeded.job_id)
    sandbox.pleo.inject(
        "GET",
        f"/v3/export-jobs/{seeded.job_id}",
        status=200,
        times=1,
        json={"data": {**sandbox.pleo.job(seeded.job_id), "status": "in_progress", "failureReasonType": None}},
    )
    report = sandbox.poller().drain()
    assert report.failures == 0
    assert sandbox.pleo.job(seeded.job_id)["status"] == "failed"


def test_pleo_outage_is_retried_not_dropped(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)
    sandbox.pleo.inject("POST", "/v3/export-job-events", status=503, times=2)
    report = sandbox.poller().drain()
    assert report.failures == 2
    assert sandbox.pleo.job(seeded.job_id)["failureReasonType"] == "invalid_configuration"
    assert len(sandbox.pleo.events) == 1


def test_rotated_pleo_key_is_picked_up_after_a_401(sandbox):
    (seeded,) = scenarios.passes(sandbox)
    company = sandbox.companies["nordlys"]
    sandbox.poller().drain()  # warms the secret cache
    new_key = f"pleo-key-rotated-{uuid.uuid4().hex}"
    sandbox.pleo.revoke(company.secrets["pleo"])
    sandbox.pleo.add_api_key(new_key, [company.company_id])
    company.secrets["rotated"] = new_key
    sandbox.aws.client("secretsmanager").put_secret_value(
        SecretId=company.configuration["pleoCredentialsSecretId"], SecretString=json.dumps({"apiKey": new_key})
    )
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)
    sandbox.poller().drain()
    assert {h["jobId"] for h in ready_jobs(sandbox)} == {seeded.job_id, job["id"]}
