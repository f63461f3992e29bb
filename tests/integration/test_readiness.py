"""The readiness sweep end to end: the scheduled fan-out, the real readiness function on
the readiness queue (moto), the readiness table, metrics, retries and the DLQ; and the
readiness record a job's preflight leaves."""

from __future__ import annotations

import contextlib
import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from export_preflight.aws import DynamoDBReadinessLog
from export_preflight.models import Readiness
from export_preflight.settings import get_settings
from sandbox import scenarios
from sandbox.lambda_context import LocalLambdaContext
from sandbox.readiness import DEMO, seed_demo
from tests.integration.conftest import emf_metrics

pytestmark = pytest.mark.integration


def recorded(sandbox) -> dict[str, Readiness]:
    return {r.display_name or r.company_id: r for r in DynamoDBReadinessLog(get_settings()).all()}


def test_the_sweep_checks_every_company_and_records_what_each_seeding_expects(sandbox):
    seed_demo(sandbox)
    emitted = io.StringIO()
    with contextlib.redirect_stdout(emitted):
        started = sandbox.sweep()

    assert started["companies"] == started["sent"] == len(DEMO)
    found = recorded(sandbox)
    assert {c.slug: (found[c.slug].status, found[c.slug].reason_type) for c in DEMO} == {
        c.slug: (c.expected, c.reason_type) for c in DEMO
    }
    assert all(r.source == "sweep" for r in found.values())
    assert sandbox.pleo.events == [] and sandbox.queue_bodies(sandbox.resources.ready_jobs_queue_url) == []

    metrics = [m for m in emf_metrics(emitted.getvalue()) if "ReadinessResult" in m]
    by_result = {(m["accountingSystem"], m["readiness"]) for m in metrics}
    assert ("xero", "ready") in by_result and ("economic", "unknown") in by_result
    not_ready = [m for m in emf_metrics(emitted.getvalue()) if "NotReadyReason" in m]
    assert {(m["accountingSystem"], m["reasonType"]) for m in not_ready} >= {
        ("fortnox", "authorization_failure"),
        ("economic", "missing_configuration"),
    }
    for document in emf_metrics(emitted.getvalue()):  # bounded dimensions only, never ids
        dimensions = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
        assert not {"company_id", "companyId", "job_id", "jobId"} & set(dimensions)


def test_a_grant_that_would_lapse_before_the_next_sweep_is_refreshed_once(sandbox):
    seed_demo(sandbox)
    calls_before = sandbox.xero.token_calls
    sandbox.sweep()

    idle = recorded(sandbox)["xero-idle-grant"]
    assert idle.grant_renewed and idle.status == "ready"
    assert idle.grant_lapses_at is not None
    assert idle.grant_lapses_at > datetime.now(UTC) + timedelta(days=59)
    assert sandbox.xero.token_calls == calls_before + 1  # only the idle grant was refreshed
    assert not recorded(sandbox)["xero-thames"].grant_renewed


def test_a_malformed_readiness_message_goes_to_the_readiness_dlq_and_the_rest_is_checked(sandbox):
    company = sandbox.add_company("economic", "nordlys", agreement_number=300001)
    sqs = sandbox.aws.client("sqs")
    for body in ("not json", json.dumps({"companyId": "not-a-uuid"}), json.dumps({"companyId": company.company_id})):
        sqs.send_message(QueueUrl=sandbox.resources.readiness_queue_url, MessageBody=body)

    sandbox.readiness_poller().drain()

    dead = sandbox.queue_bodies(sandbox.resources.readiness_dlq_url)
    assert sorted(m["body"] for m in dead) == sorted(["not json", json.dumps({"companyId": "not-a-uuid"})])
    assert {m["attributes"]["rejectKind"] for m in dead} == {"malformed_message"}
    assert recorded(sandbox)["nordlys"].status == "ready"


def test_a_deleted_company_is_reported_not_recorded(sandbox):
    sqs = sandbox.aws.client("sqs")
    sqs.send_message(
        QueueUrl=sandbox.resources.readiness_queue_url,
        MessageBody=json.dumps({"companyId": "55555555-5555-4555-8555-555555555555"}),
    )
    sandbox.readiness_poller().drain()
    assert recorded(sandbox) == {} and sandbox.queue_bodies(sandbox.resources.readiness_dlq_url) == []


def test_a_jobs_preflight_updates_its_companys_readiness(sandbox):
    (seeded,) = scenarios.barred_account(sandbox)
    sandbox.poller().drain()

    (readiness,) = recorded(sandbox).values()
    assert (readiness.source, readiness.job_id, readiness.status) == ("job", seeded.job_id, "not_ready")
    assert readiness.reason_type == "invalid_configuration"
    assert sandbox.pleo.job(seeded.job_id)["failureReason"] == readiness.problems[0].reason


def test_an_older_result_never_overwrites_a_newer_one(sandbox):
    log = DynamoDBReadinessLog(get_settings())
    now = datetime.now(UTC)
    # the service's own records (a CLI record is replaced by any later one: test_readiness_truth.py)
    newer = Readiness(company_id="c1", status="not_ready", checked_at=now, source="sweep")
    older = Readiness(company_id="c1", status="ready", checked_at=now - timedelta(minutes=5), source="job")

    log.record(newer)
    log.record(older)

    assert [r.status for r in log.all()] == ["not_ready"]


def test_the_sweep_spreads_companies_over_the_window(sandbox):
    for number in range(3):
        sandbox.add_company("economic", f"spread-{number}", agreement_number=310000 + number)
    sandbox.reset_handler_caches()
    import os

    os.environ["READINESS_SPREAD_SECONDS"] = "30"
    try:
        sandbox.reset_handler_caches()
        started = sandbox.readiness_app.sweep_handler({}, LocalLambdaContext(timeout_ms=60_000))
    finally:
        os.environ["READINESS_SPREAD_SECONDS"] = "0"
        sandbox.reset_handler_caches()
    assert started["sent"] == 3
    sqs = sandbox.aws.client("sqs")
    visible = sqs.receive_message(QueueUrl=sandbox.resources.readiness_queue_url, MaxNumberOfMessages=10)
    assert len(visible.get("Messages", [])) == 1  # delays 0, 10 and 20 s: only the first is visible
    time.sleep(0)
