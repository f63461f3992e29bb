"""The fault matrix: every row of ``matrix.SCENARIOS`` through the real handler.

For each row: seed, inject the fault, drain the claimed-jobs queue like the SQS event
source, then check that the job ended in exactly one decision, the message is
accounted for, and no secret left its box:

- the job's final state in the Pleo simulator, the failed events Pleo accepted and the
  hand-offs on the ready-jobs queue are the row's;
- how the message ends is the row's, the claimed-jobs queue is empty, and every message
  was either deleted after a decision or is in the DLQ (with ``rejectKind`` when the
  function put it there) — a job is never left ``in_progress`` with its message gone;
- no seeded secret value occurs in a log line, an EMF metric, a queue message, or any
  part of a request to Pleo or e-conomic except the auth headers where it belongs;
- every request to Pleo matches the OpenAPI description, nothing is written to e-conomic.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.aws import MAX_RECEIVE_COUNT
from sandbox.poller import PollReport
from sandbox.world import Sandbox
from tests.contract.openapi import validate_simulated_pleo_request

from .matrix import DELETED, DLQ_REDRIVEN, DLQ_REJECTED, RETRIED, SCENARIOS, FaultScenario, Seeded, drain, passing
from .render import DOC, render

pytestmark = pytest.mark.integration


def _params() -> list[Any]:
    return [
        pytest.param(s, id=s.name, marks=[pytest.mark.xfail(strict=True, reason=s.xfail)] if s.xfail else [])
        for s in SCENARIOS
    ]


@pytest.mark.parametrize("scenario", _params())
def test_fault(world: Sandbox, scenario: FaultScenario, capsys: pytest.CaptureFixture[str], caplog) -> None:
    seeded = scenario.setup(world)
    report = (scenario.drive or drain)(world)
    seen = observe(world, seeded, report)
    out, err = capsys.readouterr()
    expected = scenario.expected

    # What the row promises.
    assert seen.job == (expected.job, expected.reason_type), f"the job's final state in Pleo; {_deliveries(caplog)}"
    assert len(seen.events) == expected.events, f"failed events Pleo accepted: {seen.events}"
    assert len(seen.hand_offs) == expected.hand_offs, f"hand-offs: {[h['jobId'] for h in seen.hand_offs]}"
    if isinstance(expected.retries, range):  # how many deliveries are retried first depends on timing
        assert seen.message_end in (DELETED, RETRIED) and report.failures in expected.retries, (
            f"how the message ended ({report})"
        )
    else:
        assert seen.message_end == expected.message_end, f"how the message ended ({report})"
        assert report.failures == expected.retries, f"failed deliveries ({report})"
    assert seen.reject_kinds == ([expected.reject_kind] * expected.messages if expected.reject_kind else [])

    # What every row promises.
    assert_one_decision(seen, seeded)
    assert_messages_accounted_for(seen, seeded, report, expected.messages)
    assert_outcomes_counted(out, seen, expected.messages)
    assert_no_secret_left_its_box(world, seen, texts={"stdout": out, "stderr": err, "log records": _records(caplog)})
    for request in world.pleo.requests:
        validate_simulated_pleo_request(request)
    assert {r.method for r in world.economic.requests} <= {"GET"}, "nothing is ever written to e-conomic"
    if scenario.verify is not None:
        scenario.verify(world, seeded)


def test_reliability_doc_is_current() -> None:
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == render(), (
        f"{DOC.relative_to(DOC.parents[1])} does not match the fault matrix: run `python -m tests.faults.render`"
    )


def test_the_leak_check_finds_what_it_looks_for(world: Sandbox) -> None:
    """The leak check is not vacuous: a secret outside its box is found, in any form,
    and only the auth headers where it belongs are exempt."""
    seeded = passing(world)
    drain(world)
    seen = observe(world, seeded, PollReport())
    company = world.companies["acme"]
    assert secret_leaks(world, seen, {"stdout": "nothing to see"}) == []
    logged = json.dumps({"message": "oops", "token": company.secrets["grant"]})
    basic = base64.b64encode(f"{company.secrets['pleo']}:".encode()).decode()
    assert secret_leaks(world, seen, {"stdout": logged, "stderr": f"Authorization: Basic {basic}"}) == [
        "stderr: acme.pleo",
        "stdout: acme.grant",
    ]
    # the e-conomic tokens were sent (in their headers, which are exempt)
    assert any("X-AgreementGrantToken" in r.headers for r in world.economic.requests)


def test_the_matrix_covers_what_it_must() -> None:
    assert len(SCENARIOS) >= 30
    message_ends = {s.expected.message_end for s in SCENARIOS}
    assert message_ends == {DELETED, RETRIED, DLQ_REJECTED, DLQ_REDRIVEN}


# ---------------------------------------------------------------- observing


@dataclass
class Seen:
    job: tuple[str, str | None]
    events: list[dict[str, Any]]
    hand_offs: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    claimed_left: int
    message_end: str
    reject_kinds: list[str]


def observe(sandbox: Sandbox, seeded: Seeded, report: PollReport) -> Seen:
    assert sandbox.resources is not None
    job: tuple[str, str | None] = ("n/a", None)
    if seeded.job_id and seeded.job_id in {j["id"] for j in sandbox.pleo.jobs()}:
        found = sandbox.pleo.job(seeded.job_id)
        job = (found["status"], found["failureReasonType"])
    hand_offs = [json.loads(m["body"]) for m in sandbox.queue_bodies(sandbox.resources.ready_jobs_queue_url)]
    dead = sandbox.queue_bodies(sandbox.resources.claimed_jobs_dlq_url)
    kinds = [d["attributes"]["rejectKind"] for d in dead if "rejectKind" in d["attributes"]]
    redriven = [d for d in dead if "rejectKind" not in d["attributes"]]
    if redriven:
        message_end = DLQ_REDRIVEN
    elif kinds:
        message_end = DLQ_REJECTED
    else:
        message_end = RETRIED if report.failures else DELETED
    attributes = sandbox.aws.client("sqs").get_queue_attributes(
        QueueUrl=sandbox.resources.claimed_jobs_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    left = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return Seen(job, sandbox.pleo.events, hand_offs, dead, left, message_end, kinds)


def assert_one_decision(seen: Seen, seeded: Seeded) -> None:
    """At most one failed event, at most one hand-off, never both, and always for this job;
    a job still ``in_progress`` whose message was deleted must have been handed on."""
    assert len(seen.events) + len(seen.hand_offs) <= 1, "more than one decision for one job"
    for event in seen.events:
        assert (event["jobId"], event["event"]) == (seeded.job_id, "failed")
        assert seen.job == ("failed", event["failureReasonType"]), "the job reads what we posted"
        assert event["failureReason"], "a failed event says why"
    for hand_off in seen.hand_offs:
        assert (hand_off["jobId"], hand_off["companyId"]) == (seeded.job_id, seeded.company_id)
        assert seen.job[0] == "in_progress"
    if seen.job[0] == "in_progress" and seen.message_end in (DELETED, RETRIED):
        assert seen.hand_offs, "a job was left in_progress with its message deleted"


def assert_messages_accounted_for(seen: Seen, seeded: Seeded, report: PollReport, messages: int) -> None:
    assert len(seeded.bodies) == messages
    assert seen.claimed_left == 0, "a message is stuck on the claimed-jobs queue"
    in_dlq = len(seen.dead_letters)
    if seen.message_end == DLQ_REDRIVEN:
        assert report.failures == MAX_RECEIVE_COUNT * messages and report.deleted == 0
    else:
        # deleted by the poller after the function succeeded for it (decided, or moved to the DLQ)
        assert report.deleted == messages, report
    if seen.message_end in (DLQ_REJECTED, DLQ_REDRIVEN):
        assert sorted(d["body"] for d in seen.dead_letters) == sorted(seeded.bodies), (
            "the DLQ holds the message as sent"
        )
        for letter in seen.dead_letters:
            if seen.message_end == DLQ_REJECTED:
                assert letter["attributes"].get("rejectReason"), "a rejected message says why"
    else:
        assert in_dlq == 0, seen.dead_letters


def assert_outcomes_counted(out: str, seen: Seen, messages: int) -> None:
    """One ``PreflightOutcome`` per message the function finished with (none for a redriven one)."""
    outcomes = []
    for document in emf_documents(out):
        if "PreflightOutcome" in document:
            value = document["PreflightOutcome"]
            outcomes += [document["outcome"]] * int(sum(value) if isinstance(value, list) else value)
    assert len(outcomes) == (0 if seen.message_end == DLQ_REDRIVEN else messages), outcomes
    if seen.message_end == DLQ_REJECTED:
        assert set(outcomes) == {"rejected"}
    if seen.hand_offs:
        assert set(outcomes) == {"handed_off"}


def emf_documents(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{") and '"_aws"' in line]


# ---------------------------------------------------------------- secrets


def assert_no_secret_left_its_box(sandbox: Sandbox, seen: Seen, texts: dict[str, str]) -> None:
    found = secret_leaks(sandbox, seen, texts)
    assert found == [], f"secrets outside their box: {found}"


def _forms(value: str) -> set[str]:
    """The ways a secret can travel: as is, base64 (e.g. inside Basic auth)."""
    return {value, base64.b64encode(value.encode()).decode(), base64.b64encode(f"{value}:".encode()).decode()}


def secret_leaks(sandbox: Sandbox, seen: Seen, texts: dict[str, str]) -> list[str]:
    """Where a seeded secret occurs outside its place, as ``where: which secret`` (never the value)."""
    labels: dict[str, str] = {}
    for company in sandbox.companies.values():
        for kind, value in company.secrets.items():
            if value:
                labels[value] = f"{company.slug}.{kind}"
    for label, value in sandbox.app_secrets.items():
        labels[value] = label
    for index, value in enumerate(sandbox.secret_values()):
        labels.setdefault(value, f"secret #{index}")
    # A credential may travel only in the headers its protocol puts it in (each simulator says which).
    credentials = set(labels)

    places: list[tuple[str, str, set[str]]] = []
    for name, text in texts.items():
        for line in text.splitlines():
            where = "EMF metric" if '"_aws"' in line else name
            places.append((where, line, set()))
    for server, simulator in (("pleo", sandbox.pleo), *sandbox.accounting.items()):
        for request in simulator.requests:
            what = f"{server} {request.method} {request.path}"
            query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
            places.append((f"{what} URL", f"{request.path}?{query}", set()))
            if request.path not in simulator.credential_paths:  # e.g. the refresh token in a token request
                places.append((f"{what} body", request.body.decode(errors="replace"), set()))
            for header, value in request.headers.raw_items():
                permitted = credentials if header.lower() in simulator.credential_headers else set()
                places.append((f"{what} header {header}", value, permitted))
    for hand_off in seen.hand_offs:
        places.append(("ready-jobs message", json.dumps(hand_off), set()))
    for letter in seen.dead_letters:
        places.append(("DLQ message", json.dumps(letter), set()))

    leaks = []
    for where, text, permitted in places:
        for value, label in labels.items():
            if value in permitted:
                continue
            if any(form in text for form in _forms(value)):
                leaks.append(f"{where}: {label}")
    return sorted(set(leaks))


def _deliveries(caplog) -> str:
    """What each delivery logged at WARNING or above, in one line each: why a row went
    another way (a slow machine's timeout, say) is in the assertion itself."""
    lines = [
        f"{record.levelname} {record.getMessage()} {getattr(record, 'error', '')}".strip()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name == "export-preflight"
    ]
    return "what the deliveries logged:\n" + "\n".join(lines or ["(nothing at WARNING or above)"])


def _records(caplog) -> str:
    return "\n".join(
        json.dumps({k: str(v) for k, v in record.__dict__.items() if k not in ("args",)}) for record in caplog.records
    )
