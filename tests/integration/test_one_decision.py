"""One decision per job, one hand-off per decision (docs/checks.md, "Outcomes and guarantees"):
against moto and the simulators, through the real handler.

- a decision finished by another message than the one that made it re-sends its hand-off
  under the deduplication id it was made under (a re-run's, ``JOB.<token>``);
- the hand-off is sent without the SDK's retries, and a decision is released only when
  its first send was refused, never after an attempt whose outcome is unknown;
- ``rerun`` refuses while a decision is still being acted on (a conditional delete).
"""

from __future__ import annotations

import json
import time
from uuid import UUID

import pytest
from botocore.awsrequest import AWSResponse
from botocore.endpoint import Endpoint
from botocore.exceptions import ReadTimeoutError

from export_preflight import cli
from export_preflight.aws import DynamoDBDecisionLog
from export_preflight.errors import DecisionInFlight
from export_preflight.models import Decision
from export_preflight.service import RERUN_WAIT_SECONDS
from export_preflight.settings import get_settings
from tests.integration.conftest import ready_jobs

pytestmark = pytest.mark.integration


def _company_and_job(sandbox):
    company = sandbox.add_company("economic", "nordlys", agreement_number=100001)
    return company, sandbox.add_job(company)


def _record(sandbox, job_id: str) -> dict:
    return sandbox.aws.client("dynamodb").get_item(
        TableName=sandbox.resources.decisions_table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
    )["Item"]


def test_a_rerun_decision_finished_by_the_original_message_hands_the_job_off_once(sandbox, aws_faults):
    _, job = _company_and_job(sandbox)
    decisions = sandbox.resources.decisions_table
    # The re-run's delivery hands the job off (JOB.r1) but cannot mark its decision done.
    aws_faults.inject("UpdateItem", "throttled", times=1, when=lambda p: p.get("TableName") == decisions)
    sandbox.enqueue_job(job, rerun="r1")
    sandbox.poller().drain()
    assert _record(sandbox, job["id"])["state"]["S"] == "acting"

    # Then the original message is delivered (a late duplicate, a redrive): it finishes that
    # decision, re-sending under JOB.r1, which the ready queue deduplicates.
    sandbox.enqueue_job(job)
    sandbox.poller().drain()

    assert [h["jobId"] for h in ready_jobs(sandbox)] == [job["id"]]
    sent = [
        p["MessageDeduplicationId"]
        for op, p in aws_faults.calls
        if op == "SendMessage" and p.get("QueueUrl") == sandbox.resources.ready_jobs_queue_url
    ]
    assert sent == [f"{job['id']}.r1", f"{job['id']}.r1"]
    assert _record(sandbox, job["id"])["state"]["S"] == "done"


class _Throttled:
    """An SQS error answer (400, RequestThrottled) in the JSON protocol."""

    def stream(self, **_):
        yield json.dumps({"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Rate exceeded"}).encode()


def test_a_hand_off_whose_first_attempt_timed_out_is_never_declared_not_sent(sandbox, monkeypatch):
    """SQS takes the hand-off but the answer times out; the next attempts are refused
    (throttled). The job was handed on: it must not be decided afresh (here it would now
    fail: e-conomic starts refusing our token after the first attempt)."""
    _, job = _company_and_job(sandbox)
    ready_url = sandbox.resources.ready_jobs_queue_url
    attempts: list[int] = []
    original = Endpoint._send

    def send(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if target != "AmazonSQS.SendMessage" or ready_url not in body:
            return original(self, request)
        attempts.append(1)
        if len(attempts) == 1:
            original(self, request)  # SQS takes the message...
            raise ReadTimeoutError(endpoint_url=request.url)  # ...but its answer never comes
        if len(attempts) <= 3:
            return AWSResponse(request.url, 400, {"x-amzn-query-error": "RequestThrottled;Sender"}, _Throttled())
        return original(self, request)

    monkeypatch.setattr(Endpoint, "_send", send)
    sandbox.economic.inject(
        "GET", "/self", status=401, json={"message": "Unauthorized"}, times=None, when=lambda _: bool(attempts)
    )
    sandbox.enqueue_job(job)
    report = sandbox.poller().drain()

    assert len(attempts) == report.failures + 1, "one SendMessage attempt per delivery: no SDK retries"
    assert sandbox.pleo.events == [] and sandbox.pleo.job(job["id"])["status"] == "in_progress"
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [job["id"]]
    assert _record(sandbox, job["id"])["state"]["S"] == "done"


def test_rerun_refuses_while_a_decision_is_being_acted_on(sandbox):
    company, job = _company_and_job(sandbox)
    log = DynamoDBDecisionLog(get_settings())
    log.claim(
        Decision(outcome="handed_off", job_id=job["id"], company_id=company.company_id),
        rerun=None,
        busy_until=time.time() + 30,
    )

    with pytest.raises(DecisionInFlight):
        log.forget(job["id"], in_flight_seconds=RERUN_WAIT_SECONDS)
    out, err = __import__("io").StringIO(), __import__("io").StringIO()
    code = cli.main(["rerun", job["id"]], out=out, err=err)

    assert code == 1 and "refused" in err.getvalue() and "still being acted on" in err.getvalue()
    assert _record(sandbox, job["id"])["state"]["S"] == "acting"
    assert sandbox.queue_bodies(sandbox.resources.claimed_jobs_queue_url) == []


def test_rerun_removes_a_decision_once_acted_on_or_too_old_to_be_finished(sandbox):
    company, job = _company_and_job(sandbox)
    log = DynamoDBDecisionLog(get_settings())
    decision = Decision(outcome="handed_off", job_id=job["id"], company_id=company.company_id)
    log.claim(decision, rerun=None, busy_until=time.time() + 30)
    log.settle(job["id"])
    log.forget(job["id"], in_flight_seconds=RERUN_WAIT_SECONDS)  # done: removed
    assert log.recorded(job["id"]) is None

    # acting, but claimed longer ago than any delivery could still finish it
    sandbox.aws.client("dynamodb").put_item(
        TableName=sandbox.resources.decisions_table,
        Item={
            "jobId": {"S": job["id"]},
            "decision": {"S": decision.model_dump_json()},
            "state": {"S": "acting"},
            "claimedAt": {"N": repr(time.time() - RERUN_WAIT_SECONDS - 1)},
        },
    )
    log.forget(job["id"], in_flight_seconds=RERUN_WAIT_SECONDS)
    assert log.recorded(job["id"]) is None
    assert UUID(job["id"])
