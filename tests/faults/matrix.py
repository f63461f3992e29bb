"""The fault matrix as data: one row per fault, what it does to a claimed job, and
what the system promises to end with (docs/checks.md, "Outcomes and guarantees").

``SCENARIOS`` drives ``test_fault_matrix.py`` and renders ``docs/reliability.md``
(``python -m tests.faults.render``), so the suite and its documentation cannot drift.

Every row seeds one e-conomic company ("acme") and one claimed job (unless the row is
about a message without one), injects its fault — into the Pleo or e-conomic
simulator, or at the AWS SDK boundary (``aws_faults``) — and lists the expected end:

- the job's final state in the Pleo simulator (``n/a`` when the message has no job);
- failed events Pleo accepted (0 or 1) and hand-offs on the ready-jobs queue (0 or 1);
- how the message ends: ``deleted`` (decided on the first delivery), ``retried`` (N
  deliveries reported as batch item failures, then decided and deleted),
  ``dlq-rejected`` (moved to the DLQ by the function at once, with ``rejectKind``) or
  ``dlq-redriven`` (moved to the DLQ by SQS after ``maxReceiveCount`` deliveries).
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from export_preflight.connectors import CONNECTORS
from sandbox import scenarios
from sandbox.aws import MAX_RECEIVE_COUNT, Resources
from sandbox.lambda_context import LocalLambdaContext
from sandbox.poller import PollReport
from sandbox.world import Company, Sandbox

from .aws_faults import AWS_FAULTS

JOB_PATH = r"/v3/export-jobs/[0-9a-fA-F-]+"
EVENTS_PATH = r"/v3/export-job-events"
SLUG = "acme"
AGREEMENT = 100001
BARRED_ACCOUNT = 9999  # in the simulator's default chart of accounts: fails mapped_accounts

# The function's settings for every row: a timeout is a delay of TIMEOUT_DELAY_SECONDS
# against an HTTP timeout of HTTP_TIMEOUT_SECONDS; retries come back at once (the sandbox sets
# the backoff to 0 and the claimed queue's visibility to 1 s). The timeout leaves room for a
# loaded machine (three test processes on two cores): at 0.5 s, answers that were not
# delayed at all timed out now and then, and rows went another way.
HTTP_TIMEOUT_SECONDS = 2.0
TIMEOUT_DELAY_SECONDS = HTTP_TIMEOUT_SECONDS + 1.0
SETTINGS = {"HTTP_TIMEOUT_SECONDS": str(HTTP_TIMEOUT_SECONDS)}

DELETED, RETRIED, DLQ_REJECTED, DLQ_REDRIVEN = "deleted", "retried", "dlq-rejected", "dlq-redriven"
MESSAGE_ENDS = (DELETED, RETRIED, DLQ_REJECTED, DLQ_REDRIVEN)


# ---------------------------------------------------------------- the data types


@dataclass(frozen=True)
class Seeded:
    """What a row's setup put in the world: the job (if any) and the exact message bodies."""

    job_id: str | None
    company_id: str | None
    bodies: tuple[str, ...]


@dataclass(frozen=True)
class Expected:
    """The promised end state of one row (see the module docstring)."""

    job: str  # in_progress | failed | completed | n/a
    reason_type: str | None = None  # the job's failureReasonType when it ends failed
    events: int = 0
    hand_offs: int = 0
    message_end: str = DELETED
    retries: int | range = 0  # failed deliveries before the decision (a range: it depends on timing)
    reject_kind: str | None = None
    messages: int = 1

    def __post_init__(self) -> None:
        assert self.message_end in MESSAGE_ENDS, self.message_end
        assert self.events in (0, 1) and self.hand_offs in (0, 1) and self.events + self.hand_offs <= 1
        assert (self.message_end == DLQ_REJECTED) == (self.reject_kind is not None)
        if self.message_end == RETRIED:
            assert isinstance(self.retries, int) and 0 < self.retries < MAX_RECEIVE_COUNT
        if self.message_end == DLQ_REDRIVEN:
            assert self.retries == MAX_RECEIVE_COUNT
        if self.hand_offs:
            assert self.job == "in_progress", "a job is handed on only while it is in progress"

    @property
    def job_text(self) -> str:
        return f"{self.job} (`{self.reason_type}`)" if self.reason_type else self.job

    @property
    def message_end_text(self) -> str:
        many = f" (each of {self.messages})" if self.messages > 1 else ""
        if self.message_end == DELETED and isinstance(self.retries, range):
            low, high = self.retries.start, self.retries.stop - 1
            return f"deleted{many}, after {low}–{high} retried deliveries"
        if self.message_end == DELETED:
            return f"deleted{many}"
        if self.message_end == RETRIED:
            return f"retried ×{self.retries}, then deleted{many}"
        if self.message_end == DLQ_REJECTED:
            after = f", after {_deliveries(self.retries)} retried" if self.retries else ""
            return f"dlq-rejected (`{self.reject_kind}`){many}{after}"
        return f"dlq-redriven after {MAX_RECEIVE_COUNT} deliveries{many}"


def _deliveries(count: int | range) -> str:
    return f"{count} delivery" if count == 1 else f"{count} deliveries"


Setup = Callable[[Sandbox], Seeded]
Drive = Callable[[Sandbox], PollReport]
Verify = Callable[[Sandbox, Seeded], None]


@dataclass(frozen=True)
class FaultScenario:
    name: str
    description: str
    setup: Setup
    expected: Expected
    drive: Drive | None = None  # None: one drain of the claimed-jobs queue (``drain``)
    xfail: str | None = None  # a promise the system breaks today: why (strict xfail)
    verify: Verify | None = None  # what else the row promises (checked after the common assertions)


# ---------------------------------------------------------------- expectations


def handed_on(retries: int = 0) -> Expected:
    return Expected("in_progress", hand_offs=1, message_end=RETRIED if retries else DELETED, retries=retries)


def failed_early(reason_type: str, retries: int = 0) -> Expected:
    return Expected("failed", reason_type, events=1, message_end=RETRIED if retries else DELETED, retries=retries)


def left_alone(job: str, reason_type: str | None = None) -> Expected:
    return Expected(job, reason_type)


def rejected(kind: str, job: str = "n/a") -> Expected:
    return Expected(job, message_end=DLQ_REJECTED, reject_kind=kind)


def redriven(job: str = "in_progress", reason_type: str | None = None, events: int = 0) -> Expected:
    return Expected(job, reason_type, events=events, message_end=DLQ_REDRIVEN, retries=MAX_RECEIVE_COUNT)


# ---------------------------------------------------------------- seeding


def add_company(sandbox: Sandbox, **company: Any) -> Company:
    return sandbox.add_company("economic", SLUG, agreement_number=AGREEMENT, **company)


def enqueue(sandbox: Sandbox, body: dict[str, Any] | str) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    sandbox.enqueue(text)
    return text


def claimed(sandbox: Sandbox, *, job: dict[str, Any] | None = None, copies: int = 1, **company: Any) -> Seeded:
    """One company, one claimed job, ``copies`` identical messages for it."""
    seeded_company = add_company(sandbox, **company)
    seeded_job = sandbox.add_job(seeded_company, **(job or {}))
    body = {"jobId": seeded_job["id"], "companyId": seeded_company.company_id}
    bodies = tuple(enqueue(sandbox, body) for _ in range(copies))
    return Seeded(seeded_job["id"], seeded_company.company_id, bodies)


def passing(sandbox: Sandbox) -> Seeded:
    """A job every check passes: handed on."""
    return claimed(sandbox)


def failing(sandbox: Sandbox) -> Seeded:
    """A job a check fails (the mapped expense account is barred): failed early, invalid_configuration."""
    return claimed(
        sandbox,
        configuration={"mappings": {"journal": 1, "expenseAccount": BARRED_ACCOUNT, "contraAccount": 6800}},
    )


def from_scenario(seeder: scenarios.Seeder) -> Setup:
    """A seeder of the local run's default (``sandbox.scenarios``) as a row's setup."""

    def setup(sandbox: Sandbox) -> Seeded:
        (seeded,) = seeder(sandbox)
        assert seeded.job_id and seeded.company_id
        return Seeded(
            seeded.job_id,
            seeded.company_id,
            (json.dumps({"jobId": seeded.job_id, "companyId": seeded.company_id}),),
        )

    setup.__name__ = seeder.__name__
    return setup


# ---------------------------------------------------------------- faults


# How each kind of HTTP trouble is injected into a simulator.
HTTP_FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "429-retry-after": ("429 with `Retry-After: 1`", {"status": 429, "headers": {"Retry-After": "1"}}),
    "429": ("429 without `Retry-After`", {"status": 429}),
    "5xx": ("503", {"status": 503}),
    "timeout": (
        f"no answer within the timeout (answers after {TIMEOUT_DELAY_SECONDS:g} s)",
        {"delay": TIMEOUT_DELAY_SECONDS},
    ),
    "disconnect": ("connection closed without an answer", {"disconnect": True}),
}


def after_failed_event(sandbox: Sandbox) -> Callable[[Any], bool]:
    """``when=`` for the verification read: only once Pleo accepted a failed event."""
    return lambda _request: bool(sandbox.pleo.events)


def pleo_fault(
    base: Setup, method: str, path: str, *, verification: bool = False, times: int | None = 1, **fault: Any
) -> Setup:
    def setup(sandbox: Sandbox) -> Seeded:
        seeded = base(sandbox)
        when = after_failed_event(sandbox) if verification else None
        sandbox.pleo.inject(method, path, times=times, when=when, **fault)
        return seeded

    return setup


def economic_fault(path: str, *, times: int | None = 1, base: Setup = passing, **fault: Any) -> Setup:
    def setup(sandbox: Sandbox) -> Seeded:
        seeded = base(sandbox)
        sandbox.economic.inject("GET", path, times=times, **fault)
        return seeded

    return setup


def secret_id(sandbox: Sandbox, which: str) -> str:
    key = {"pleo": "pleoCredentialsSecretId", "accounting": "accountingCredentialsSecretId"}[which]
    return str(sandbox.companies[SLUG].configuration[key])


# AWS calls a row can break: the operation, and which of its calls (by parameters).
AWS_TARGETS: dict[str, tuple[str, Callable[[Sandbox], Callable[[Any], bool]]]] = {
    "pleo-secret": ("GetSecretValue", lambda sb: _param("SecretId", secret_id(sb, "pleo"))),
    "accounting-secret": ("GetSecretValue", lambda sb: _param("SecretId", secret_id(sb, "accounting"))),
    "config": ("GetItem", lambda sb: _param("TableName", _resources(sb).company_config_table)),
    "ready-queue": ("SendMessage", lambda sb: _param("QueueUrl", _resources(sb).ready_jobs_queue_url)),
    "dlq": ("SendMessage", lambda sb: _param("QueueUrl", _resources(sb).claimed_jobs_dlq_url)),
    "decision-read": ("GetItem", lambda sb: _param("TableName", _resources(sb).decisions_table)),
    "decision-claim": ("PutItem", lambda sb: _param("TableName", _resources(sb).decisions_table)),
    "decision-update": ("UpdateItem", lambda sb: _param("TableName", _resources(sb).decisions_table)),
}


def _param(name: str, value: str) -> Callable[[Any], bool]:
    return lambda params: params.get(name) == value


def _resources(sandbox: Sandbox) -> Resources:
    assert sandbox.resources is not None
    return sandbox.resources


def aws_fault(target: str, kind: str, *, times: int | None = 1, base: Setup = passing) -> Setup:
    """Break the ``AWS_TARGETS[target]`` call ``times`` times with ``aws_faults.ERRORS[kind]``."""

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = base(sandbox)
        operation, when = AWS_TARGETS[target]
        AWS_FAULTS.inject(operation, kind, times=times, when=when(sandbox))
        return seeded

    return setup


AWS_KINDS: dict[str, str] = {
    "throttled": "`ThrottlingException`",
    "5xx": "`InternalServerError` (500)",
    "timeout": "read timeout (`ReadTimeoutError`)",
    "connection": "connection error (`EndpointConnectionError`)",
}


# ---------------------------------------------------------------- special setups


def job_in_state(status: str) -> Setup:
    return lambda sandbox: claimed(sandbox, job={"status": status})


def expired_job(sandbox: Sandbox) -> Seeded:
    seeded = passing(sandbox)
    assert seeded.job_id
    sandbox.pleo.expire_job(seeded.job_id)
    return seeded


def unknown_job(sandbox: Sandbox) -> Seeded:
    company = add_company(sandbox)
    job_id = str(uuid.uuid4())
    body = enqueue(sandbox, {"jobId": job_id, "companyId": company.company_id})
    return Seeded(job_id, company.company_id, (body,))


def unconfigured_company(sandbox: Sandbox) -> Seeded:
    """Pleo knows the company and its job; we have no configuration item for it."""
    company_id = str(uuid.uuid4())
    job = sandbox.pleo.add_job(company_id=company_id)
    body = enqueue(sandbox, {"jobId": job["id"], "companyId": company_id})
    return Seeded(job["id"], company_id, (body,))


def configuration_item(sandbox: Sandbox, configuration: Any) -> None:
    """Overwrite acme's configuration item's ``configuration`` attribute as is."""
    assert sandbox.resources is not None
    sandbox.aws.client("dynamodb").put_item(
        TableName=sandbox.resources.company_config_table,
        Item={"companyId": {"S": sandbox.companies[SLUG].company_id}, "configuration": configuration},
    )


def malformed_configuration(sandbox: Sandbox) -> Seeded:
    seeded = passing(sandbox)
    configuration_item(sandbox, {"S": '{"accountingSystem": "economic", '})
    return seeded


def without_pleo_secret_id(sandbox: Sandbox) -> Seeded:
    return claimed(sandbox, configuration={"pleoCredentialsSecretId": ""})


def overwrite_secret(which: str, value: str | None) -> Setup:
    """Replace acme's Pleo or accounting secret with ``value`` (``{token}`` becomes a fresh
    secret-looking token, registered as a secret so the leak check covers it), or delete it
    (``None``), after seeding."""

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = passing(sandbox)
        secrets = sandbox.aws.client("secretsmanager")
        name = secret_id(sandbox, which)
        if value is None:
            secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        else:
            token = f"unreadable-{uuid.uuid4().hex}"
            sandbox.companies[SLUG].secrets[f"unreadable-{which}"] = token
            secrets.put_secret_value(SecretId=name, SecretString=value.format(token=token))
        return seeded

    return setup


def accounting_secret_never_stored(sandbox: Sandbox) -> Seeded:
    return claimed(sandbox, store_accounting_secret=False)


def duplicates(base_copies: Callable[..., Seeded], **company: Any) -> Setup:
    return lambda sandbox: base_copies(sandbox, copies=3, **company)


def failing_copies(sandbox: Sandbox, *, copies: int) -> Seeded:
    return claimed(
        sandbox,
        copies=copies,
        configuration={"mappings": {"journal": 1, "expenseAccount": BARRED_ACCOUNT, "contraAccount": 6800}},
    )


def passing_copies(sandbox: Sandbox, *, copies: int) -> Seeded:
    return claimed(sandbox, copies=copies)


def event_422_job_already_failed(sandbox: Sandbox) -> Seeded:
    """The job expires between our read and our event: the event gets 422, the job reads failed."""
    seeded = failing(sandbox)
    assert seeded.job_id
    in_progress = {**sandbox.pleo.job(seeded.job_id)}
    sandbox.pleo.expire_job(seeded.job_id)
    sandbox.pleo.inject("GET", JOB_PATH, status=200, json={"data": in_progress}, times=1)
    sandbox.pleo.inject(
        "POST",
        EVENTS_PATH,
        status=422,
        json={"type": "INVALID_EXPORT_JOB_STATUS_CHANGE", "message": "Export Job status change failed"},
        times=1,
    )
    return seeded


def event_422_job_still_in_progress(sandbox: Sandbox) -> Seeded:
    """A 422 although the job is still in progress: the re-read shows it, so the record is retried."""
    seeded = failing(sandbox)
    sandbox.pleo.inject(
        "POST",
        EVENTS_PATH,
        status=422,
        json={"type": "INVALID_EXPORT_JOB_STATUS_CHANGE", "message": "Export Job status change failed"},
        times=1,
    )
    return seeded


def verification_reads_in_progress(times: int | None) -> Setup:
    """After our accepted event, Pleo's read still shows ``in_progress`` (a stale replica)."""

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = failing(sandbox)
        assert seeded.job_id
        stale = {**sandbox.pleo.job(seeded.job_id)}
        sandbox.pleo.inject(
            "GET", JOB_PATH, status=200, json={"data": stale}, times=times, when=after_failed_event(sandbox)
        )
        return seeded

    return setup


def economic_down_job_expiring(sandbox: Sandbox) -> Seeded:
    """e-conomic is down and the job expires before the next delivery could come."""
    seeded = claimed(sandbox, job={"expires_in": 0})
    sandbox.economic.inject("GET", "/self", status=503, times=None)
    return seeded


def malformed(body: str) -> Setup:
    return lambda sandbox: Seeded(None, None, (enqueue(sandbox, body),))


OVERSIZED = json.dumps({"jobId": str(uuid.UUID(int=1)), "companyId": str(uuid.UUID(int=2)), "padding": "x" * 16_500})


# ---------------------------------------------------------------- driving


def drain(sandbox: Sandbox) -> PollReport:
    """Poll like the SQS event source until the claimed-jobs queue stays empty."""
    return sandbox.poller().drain(max_seconds=60, idle_rounds=2, pause=0.05)


def near_deadline_then_drain(sandbox: Sandbox) -> PollReport:
    """One invocation with 1 s left (less than ``DEADLINE_MARGIN_MS``), then a normal drain.

    The first invocation must report the record as a batch item failure without having
    asked anything of anyone; the record is then decided by the next delivery.
    """
    assert sandbox.resources is not None
    sqs = sandbox.aws.client("sqs")
    queue_url = sandbox.resources.claimed_jobs_queue_url
    (message,) = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])[
        "Messages"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message["Attributes"],
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": "eu-west-1",
    }
    response = sandbox.app.lambda_handler({"Records": [record]}, LocalLambdaContext(timeout_ms=1000))
    assert response == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert sandbox.pleo.requests == [] and sandbox.economic.requests == [], "nothing may be started near the deadline"
    ready = sqs.get_queue_attributes(
        QueueUrl=sandbox.resources.ready_jobs_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert ready == "0"
    first = PollReport(invocations=1, records=1, failures=1, batch_sizes=[1])
    return merged(first, drain(sandbox))


def merged(*reports: PollReport) -> PollReport:
    total = PollReport()
    for report in reports:
        total.invocations += report.invocations
        total.records += report.records
        total.deleted += report.deleted
        total.failures += report.failures
        total.batch_sizes += report.batch_sizes
    return total


def one_hand_off_attempt(sandbox: Sandbox, seeded: Seeded) -> None:
    sends = AWS_FAULTS.made("SendMessage", _param("QueueUrl", _resources(sandbox).ready_jobs_queue_url))
    assert sends == 1, f"{sends} hand-off attempts for one decided job"


def one_failed_event_posted(sandbox: Sandbox, seeded: Seeded) -> None:
    """Concurrent deliveries of one job: one of them acts, the others wait for it (not only
    "Pleo accepted one event": a second post would meet a 422 and look the same)."""
    posts = [r for r in sandbox.pleo.requests if r.method == "POST" and r.path == EVENTS_PATH]
    assert len(posts) == 1, f"{len(posts)} failed events posted for one decided job"


# ---------------------------------------------------------------- the table


def _pleo_rows() -> list[FaultScenario]:
    calls = (
        # name, what, method, path, base, verification, expectation for a transient fault
        ("pleo-read", "Pleo `GET /v3/export-jobs/{id}` (reading the job)", "GET", JOB_PATH, passing, False, handed_on),
        (
            "pleo-event",
            "Pleo `POST /v3/export-job-events` (the failed event)",
            "POST",
            EVENTS_PATH,
            failing,
            False,
            lambda retries: failed_early("invalid_configuration", retries),
        ),
        (
            "pleo-verify",
            "Pleo `GET /v3/export-jobs/{id}` after our accepted event (verification)",
            "GET",
            JOB_PATH,
            failing,
            True,
            lambda retries: failed_early("invalid_configuration", retries),
        ),
    )
    rows = []
    for prefix, what, method, path, base, verification, expect in calls:
        for kind, (label, fault) in HTTP_FAULTS.items():
            times = 2 if kind == "5xx" else 1
            rows.append(
                FaultScenario(
                    f"{prefix}-{kind}",
                    f"{what}: {label}, {'twice' if times == 2 else 'once'}",
                    pleo_fault(base, method, path, verification=verification, times=times, **fault),
                    expect(times),
                )
            )
    return rows


ECONOMIC_ENDPOINTS = {
    "self": ("/self", "authentication"),
    "journals": ("/journals", "journal capabilities"),
    "accounts": ("/accounts", "mapped accounts"),
    "vat-accounts": ("/vat-accounts", "mapped VAT codes"),
}


def _gzip_zeros(megabytes: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    return b"".join([*(packer.compress(bytes(1_000_000)) for _ in range(megabytes)), packer.flush()])


# An accounting system's trouble beyond HTTP_FAULTS: answers it should not give, answers too
# big or too slow to read (every answer is read within a byte cap and a total deadline).
ACCOUNTING_HTTP_FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "302": (
        "302 to another host (never followed)",
        {"status": 302, "headers": {"Location": "https://collector.example.test/steal"}},
    ),
    "409": ("409", {"status": 409}),
    "retry-after-soon": ("429 with `Retry-After: soon` (ignored)", {"status": 429, "headers": {"Retry-After": "soon"}}),
    "gzip-bomb": (
        "100 KB of gzip that inflate to 100 MB (cut at the 4 MB cap)",
        {
            "status": 200,
            "raw": _gzip_zeros(100),
            "headers": {"Content-Encoding": "gzip"},
        },
    ),
    "trickle": (
        "an answer trickled one byte every 50 ms (cut at the deadline)",
        {"status": 200, "raw": b"{" + b" " * 198 + b"}", "trickle": 0.05},
    ),
}


def _economic_rows() -> list[FaultScenario]:
    rows = []
    for name, (path, purpose) in ECONOMIC_ENDPOINTS.items():
        for kind, (label, fault) in HTTP_FAULTS.items():
            rows.append(
                FaultScenario(
                    f"economic-{name}-{kind}",
                    f"e-conomic `GET {path}` ({purpose}): {label}, once",
                    economic_fault(path, times=1, **fault),
                    handed_on(retries=1),
                )
            )
    for kind, (label, fault) in ACCOUNTING_HTTP_FAULTS.items():
        rows.append(
            FaultScenario(
                f"economic-accounts-{kind}",
                f"e-conomic `GET /accounts` (mapped accounts): {label}, once",
                economic_fault("/accounts", times=1, **fault),
                handed_on(retries=1),
            )
        )
    return rows


def _aws_rows() -> list[FaultScenario]:
    rows = []
    targets = {
        "accounting-secret": "Secrets Manager `GetSecretValue` of the e-conomic secret",
        "pleo-secret": "Secrets Manager `GetSecretValue` of the Pleo secret",
        "config": "DynamoDB `GetItem` of the company configuration",
    }
    for target, what in targets.items():
        for kind, label in AWS_KINDS.items():
            times = 2 if kind == "5xx" else 1
            rows.append(
                FaultScenario(
                    f"{target}-{kind}",
                    f"{what}: {label}, {'twice' if times == 2 else 'once'}",
                    aws_fault(target, kind, times=times),
                    handed_on(retries=times),
                )
            )
    return rows


EXHAUSTED = [
    FaultScenario(
        "economic-self-5xx-persistent",
        "e-conomic `GET /self`: 503 on every delivery",
        economic_fault("/self", times=None, status=503),
        failed_early("accounting_system_unreachable", retries=MAX_RECEIVE_COUNT - 1),
    ),
    FaultScenario(
        "economic-accounts-429-persistent",
        "e-conomic `GET /accounts`: 429 on every delivery",
        economic_fault("/accounts", times=None, status=429, headers={"Retry-After": "1"}),
        failed_early("accounting_system_rate_limit", retries=MAX_RECEIVE_COUNT - 1),
    ),
    FaultScenario(
        "economic-vat-accounts-timeout-persistent",
        "e-conomic `GET /vat-accounts`: no answer within the timeout on every delivery",
        economic_fault("/vat-accounts", times=None, delay=TIMEOUT_DELAY_SECONDS),
        failed_early("accounting_system_timeout", retries=MAX_RECEIVE_COUNT - 1),
    ),
    FaultScenario(
        "economic-journals-disconnect-persistent",
        "e-conomic `GET /journals`: connection closed on every delivery",
        economic_fault("/journals", times=None, disconnect=True),
        failed_early("accounting_system_unreachable", retries=MAX_RECEIVE_COUNT - 1),
    ),
    FaultScenario(
        "economic-down-job-expiring",
        "e-conomic `GET /self`: 503, and the job expires before a next delivery (`expiresIn: 0`)",
        economic_down_job_expiring,
        failed_early("accounting_system_unreachable"),
    ),
    FaultScenario(
        "pleo-read-5xx-persistent",
        "Pleo `GET /v3/export-jobs/{id}`: 503 on every delivery",
        pleo_fault(passing, "GET", JOB_PATH, times=None, status=503),
        redriven(),
    ),
    FaultScenario(
        "pleo-event-5xx-persistent",
        "Pleo `POST /v3/export-job-events`: 503 on every delivery",
        pleo_fault(failing, "POST", EVENTS_PATH, times=None, status=503),
        redriven(),
    ),
    FaultScenario(
        "pleo-verify-stale-persistent",
        "Pleo keeps reading the job `in_progress` after our accepted event (every later read)",
        verification_reads_in_progress(times=None),
        redriven("failed", "invalid_configuration", events=1),
    ),
    FaultScenario(
        "accounting-secret-throttled-persistent",
        "Secrets Manager `GetSecretValue` of the e-conomic secret: `ThrottlingException` on every delivery",
        aws_fault("accounting-secret", "throttled", times=None),
        redriven(),
    ),
    FaultScenario(
        "config-throttled-persistent",
        "DynamoDB `GetItem` of the company configuration: `ThrottlingException` on every delivery",
        aws_fault("config", "throttled", times=None),
        redriven(),
    ),
]

SIDE_EFFECTS = [
    FaultScenario(
        "ready-queue-throttled",
        "SQS `SendMessage` of the hand-off to the ready-jobs queue: `ThrottlingException`, once",
        aws_fault("ready-queue", "throttled"),
        handed_on(retries=1),
    ),
    FaultScenario(
        "ready-queue-applied-then-timeout",
        "SQS `SendMessage` of the hand-off: the message lands on the ready-jobs queue, but the answer times out (once)",
        aws_fault("ready-queue", "applied-then-timeout"),
        handed_on(retries=1),
    ),
    FaultScenario(
        "dlq-send-throttled",
        "SQS `SendMessage` of a malformed message to the DLQ: `ThrottlingException`, once",
        aws_fault("dlq", "throttled", base=malformed("this is not json")),
        Expected("n/a", message_end=DLQ_REJECTED, reject_kind="malformed_message", retries=1),
    ),
    FaultScenario(
        "decision-read-throttled",
        "DynamoDB `GetItem` of the job's decision record (read first, for a job decided before): "
        "`ThrottlingException`, once; the claim still guards the decision",
        aws_fault("decision-read", "throttled"),
        handed_on(),
    ),
    FaultScenario(
        "decision-claim-throttled",
        "DynamoDB `PutItem` claiming the job's decision before acting: `ThrottlingException`, once",
        aws_fault("decision-claim", "throttled"),
        handed_on(retries=1),
    ),
    FaultScenario(
        "decision-claim-applied-then-timeout",
        "DynamoDB `PutItem` claiming the decision: the record is written, but the answer times out (once); "
        "the next delivery finishes the recorded decision",
        aws_fault("decision-claim", "applied-then-timeout"),
        handed_on(retries=1),
    ),
    FaultScenario(
        "decision-settle-throttled",
        "DynamoDB `UpdateItem` marking the decision acted on after the hand-off: `ThrottlingException`, once "
        "(logged; the job is handed on, the record stays `acting`)",
        aws_fault("decision-update", "throttled"),
        handed_on(),
    ),
]

PLEO_ANSWERS = [
    FaultScenario(
        "pleo-event-422-job-already-failed",
        "Pleo answers our failed event 422: the job expired meanwhile (it read `in_progress` first)",
        event_422_job_already_failed,
        left_alone("failed", "job_expired"),
    ),
    FaultScenario(
        "pleo-event-422-job-in-progress",
        "Pleo answers our failed event 422 once, yet the job still reads `in_progress`",
        event_422_job_still_in_progress,
        failed_early("invalid_configuration", retries=1),
    ),
    FaultScenario(
        "pleo-verify-stale",
        "Pleo reads the job `in_progress` once after our accepted event",
        verification_reads_in_progress(times=1),
        failed_early("invalid_configuration", retries=1),
    ),
]

JOB_STATES = [
    FaultScenario(
        "job-expired", "The job expired before preflight read it", expired_job, left_alone("failed", "job_expired")
    ),
    FaultScenario(
        "job-already-failed", "The job is already `failed` when read", job_in_state("failed"), left_alone("failed")
    ),
    FaultScenario(
        "job-already-completed",
        "The job is already `completed` when read",
        job_in_state("completed"),
        left_alone("completed"),
    ),
    FaultScenario(
        "job-unknown",
        "Pleo answers 404 for the message's job on every delivery (the company is configured): a job just "
        "claimed may not be readable yet, so the 404 is believed from the third delivery on",
        unknown_job,
        Expected("n/a", message_end=RETRIED, retries=2),
    ),
    FaultScenario(
        "job-readable-after-404",
        "Pleo answers 404 for the message's job once (just claimed, not readable yet), then reads it",
        pleo_fault(passing, "GET", JOB_PATH, times=1, status=404, json={"type": "NOT_FOUND", "message": "not found"}),
        handed_on(retries=1),
    ),
    FaultScenario(
        "company-mismatch",
        "The message's `companyId` is not the job's (routed to the wrong company); the job's company is configured",
        from_scenario(scenarios.routed_to_wrong_company),
        handed_on(),
    ),
]

CONFIGURATION = [
    FaultScenario(
        "configuration-missing",
        "No configuration item for the message's company (Pleo has the job)",
        unconfigured_company,
        rejected("unknown_company", job="in_progress"),
    ),
    FaultScenario(
        "configuration-without-pleo-secret",
        "The configuration item has no `pleoCredentialsSecretId`",
        without_pleo_secret_id,
        rejected("unknown_company", job="in_progress"),
    ),
    FaultScenario(
        "configuration-malformed",
        "The configuration item's `configuration` is a truncated JSON string",
        malformed_configuration,
        rejected("malformed_company_configuration", job="in_progress"),
    ),
    FaultScenario(
        "configuration-incomplete",
        "The configuration maps no expense or contra account",
        from_scenario(scenarios.incomplete_mappings),
        failed_early("missing_configuration"),
    ),
    FaultScenario(
        "accounting-secret-missing",
        "The e-conomic secret does not exist (`ResourceNotFoundException`)",
        accounting_secret_never_stored,
        failed_early("missing_configuration"),
    ),
    FaultScenario(
        "accounting-secret-not-json",
        "The e-conomic secret is not JSON",
        overwrite_secret("accounting", "appSecretToken={token}; not JSON"),
        failed_early("invalid_configuration"),
    ),
    FaultScenario(
        "pleo-secret-missing",
        "The Pleo secret was deleted (`ResourceNotFoundException`)",
        overwrite_secret("pleo", None),
        rejected("pleo_credentials_unusable", job="in_progress"),
    ),
    FaultScenario(
        "pleo-secret-not-json",
        "The Pleo secret is not JSON",
        overwrite_secret("pleo", "apiKey: {token} (not JSON)"),
        rejected("pleo_credentials_unusable", job="in_progress"),
    ),
]

DELIVERY = [
    FaultScenario(
        "duplicate-x3-handed-on",
        "The same message three times, enqueued before the first delivery (a job that passes)",
        duplicates(passing_copies),
        Expected("in_progress", hand_offs=1, messages=3, retries=range(0, 3)),
        verify=one_hand_off_attempt,
    ),
    FaultScenario(
        "duplicate-x3-failed",
        "The same message three times, enqueued before the first delivery (a job that fails a check)",
        duplicates(failing_copies),
        Expected("failed", "invalid_configuration", events=1, messages=3, retries=range(0, 3)),
        verify=one_failed_event_posted,
    ),
    FaultScenario(
        "lambda-near-deadline",
        "Delivered to an invocation with 1 s left (less than `DEADLINE_MARGIN_MS`)",
        passing,
        handed_on(retries=1),
        drive=near_deadline_then_drain,
    ),
]

MALFORMED = [
    FaultScenario(f"malformed-{name}", description, malformed(body), rejected("malformed_message"))
    for name, description, body in (
        ("not-json", "Message body is not JSON", "this is not json"),
        ("empty", "Message body is blank (SQS does not allow an empty one)", " "),
        ("json-array", "Message body is a JSON array", json.dumps([{"jobId": str(uuid.UUID(int=1))}])),
        ("missing-job-id", "Message without `jobId`", json.dumps({"companyId": str(uuid.UUID(int=2))})),
        (
            "non-uuid-job-id",
            "`jobId` is not a UUID",
            json.dumps({"jobId": "job-42", "companyId": str(uuid.UUID(int=2))}),
        ),
        (
            "company-id-wrong-type",
            "`companyId` is a number",
            json.dumps({"jobId": str(uuid.UUID(int=1)), "companyId": 12345}),
        ),
        ("oversized", "Message body over 16 KiB (valid ids plus padding)", OVERSIZED),
    )
]


# ---------------------------------------------------------------- hardening: the worst faults

# The OAuth systems and what their company needs to be seeded (each row runs for each).
OAUTH_SYSTEMS: dict[str, dict[str, Any]] = {
    "xero": {},
    "fortnox": {"organisation_number": "556677-0001"},
    "quickbooks": {},
}
OAUTH_NAMES = {"xero": "Xero", "fortnox": "Fortnox", "quickbooks": "QuickBooks"}


def _oauth_slug(system: str) -> str:
    return f"acme-{system}"


def oauth_claimed(system: str) -> Setup:
    """One company on ``system`` whose access token has expired (the first call refreshes it), one job."""

    def setup(sandbox: Sandbox) -> Seeded:
        company = sandbox.add_company(system, _oauth_slug(system), expired_token=True, **OAUTH_SYSTEMS[system])
        job = sandbox.add_job(company)
        body = enqueue(sandbox, {"jobId": job["id"], "companyId": company.company_id})
        return Seeded(job["id"], company.company_id, (body,))

    return setup


def _token_secret(sandbox: Sandbox, system: str) -> str:
    return str(sandbox.companies[_oauth_slug(system)].configuration["accountingCredentialsSecretId"])


def token_save_throttled(system: str, times: int) -> Setup:
    def setup(sandbox: Sandbox) -> Seeded:
        seeded = oauth_claimed(system)(sandbox)
        secret = _token_secret(sandbox, system)
        AWS_FAULTS.inject("PutSecretValue", "throttled", times=times, when=_param("SecretId", secret))
        return seeded

    return setup


def token_save_refused(system: str) -> Setup:
    """Secrets Manager refuses every ``PutSecretValue`` of the company's token set (the secret
    lacks the tag our role's policy asks for)."""

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = oauth_claimed(system)(sandbox)
        secret = _token_secret(sandbox, system)
        AWS_FAULTS.inject("PutSecretValue", "access-denied", times=None, when=_param("SecretId", secret))
        return seeded

    return setup


def token_answer_quirk(system: str, quirk: dict[str, Any]) -> Setup:
    def setup(sandbox: Sandbox) -> Seeded:
        seeded = oauth_claimed(system)(sandbox)
        sandbox.accounting[system].next_token_answer_quirk = quirk  # type: ignore[attr-defined]
        return seeded

    return setup


def without_client_secret(system: str) -> Setup:
    def setup(sandbox: Sandbox) -> Seeded:
        seeded = oauth_claimed(system)(sandbox)
        secret_id = sandbox.environment()[CONNECTORS[system].variables()["client_credentials_secret_id"]]
        sandbox.aws.client("secretsmanager").delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        return seeded

    return setup


def _stored_refresh_token(sandbox: Sandbox, system: str) -> str:
    secret = _token_secret(sandbox, system)
    value = sandbox.aws.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
    return str(json.loads(value)["refreshToken"])


def _journal(sandbox: Sandbox, system: str) -> dict[str, Any] | None:
    item = sandbox.aws.client("dynamodb").get_item(
        TableName=_resources(sandbox).credential_lock_table,
        Key={"lockId": {"S": f"journal#{_token_secret(sandbox, system)}"}},
    )
    return item.get("Item")


def token_saved_after_retries(system: str) -> Verify:
    def verify(sandbox: Sandbox, seeded: Seeded) -> None:
        grant = sandbox.companies[_oauth_slug(system)].grant
        assert grant is not None and not grant.revoked
        assert sandbox.accounting[system].token_calls == 1, "one token call per rotation"  # type: ignore[attr-defined]
        assert _stored_refresh_token(sandbox, system) == grant.refresh_token, (
            "the rotated token reached Secrets Manager"
        )
        assert _journal(sandbox, system) is None

    return verify


def token_kept_in_the_journal(system: str) -> Verify:
    def verify(sandbox: Sandbox, seeded: Seeded) -> None:
        grant = sandbox.companies[_oauth_slug(system)].grant
        assert grant is not None and not grant.revoked
        assert sandbox.accounting[system].token_calls == 1, "one token call per rotation"  # type: ignore[attr-defined]
        journal = _journal(sandbox, system)
        assert journal is not None and "answer" not in journal, "the journal holds no plaintext answer"
        opened = sandbox.aws.client("kms").decrypt(
            CiphertextBlob=journal["sealedAnswer"]["B"], EncryptionContext={"secretId": _token_secret(sandbox, system)}
        )["Plaintext"]
        assert grant.refresh_token in opened.decode(), "the set waits in the journal"
        assert grant.refresh_token.encode() not in journal["sealedAnswer"]["B"]
        assert _stored_refresh_token(sandbox, system) != grant.refresh_token

    return verify


def _oauth_rows() -> list[FaultScenario]:
    rows = []
    for system, name in OAUTH_NAMES.items():
        rows += [
            FaultScenario(
                f"{system}-token-save-throttled-x2",
                f"Secrets Manager `PutSecretValue` of a rotated {name} token set: `ThrottlingException` twice in a row",
                token_save_throttled(system, 2),
                handed_on(),
                verify=token_saved_after_retries(system),
            ),
            FaultScenario(
                f"{system}-token-save-throttled-x10",
                f"Secrets Manager `PutSecretValue` of a rotated {name} token set: `ThrottlingException` ten times "
                "in a row (the set waits in the token journal; the next refresh recovers it)",
                token_save_throttled(system, 10),
                handed_on(),
                verify=token_kept_in_the_journal(system),
            ),
            FaultScenario(
                f"{system}-token-save-refused",
                f"Secrets Manager refuses `PutSecretValue` of a rotated {name} token set: `AccessDeniedException` "
                "on every write (the job goes on with the journalled set; `TokenStoreRefused` alarm; no rotation "
                "on top of it until the store takes it)",
                token_save_refused(system),
                handed_on(),
                verify=token_kept_in_the_journal(system),
            ),
            FaultScenario(
                f"{system}-token-answer-malformed",
                f"{name}'s token endpoint rotates the tokens but answers `expires_in: null`",
                token_answer_quirk(system, {"expires_in": None}),
                handed_on(),
                verify=token_saved_after_retries(system),
            ),
            FaultScenario(
                f"{system}-client-secret-missing",
                f"Our {name} OAuth client secret is missing when a token must be refreshed (every delivery)",
                without_client_secret(system),
                failed_early("integration_unusable", retries=MAX_RECEIVE_COUNT - 1),
            ),
        ]
    return rows


# ---------------------------------------------------------------- Business Central: Entra ID and OData

BC_TOKEN_PATH = r"/[^/]+/oauth2/v2\.0/token"  # POST {login}/{tenantId}/oauth2/v2.0/token
BC_ACCOUNTS_PATH = r"/v2\.0/.*/accounts"  # GET .../api/v2.0/companies({id})/accounts
# What Business Central answers while an environment is being upgraded (facts.yaml retry-after-502-503).
BC_UNAVAILABLE = {
    "status": 503,
    "headers": {"Retry-After": "1"},
    "json": {"error": {"code": "ServiceUnavailable", "message": "The environment is being updated."}},
}


def businesscentral_fault(method: str, path: str, *, times: int | None = 1, **fault: Any) -> Setup:
    """A Business Central company every check passes (``make run``'s), with ``fault`` on its
    tenant's token endpoint or its API."""
    base = from_scenario(scenarios.businesscentral_passes)

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = base(sandbox)
        sandbox.accounting["businesscentral"].inject(method, path, times=times, **fault)
        return seeded

    return setup


def nothing_written_to_businesscentral(sandbox: Sandbox, seeded: Seeded) -> None:
    """Business Central is only read; the one POST is Entra ID's token request."""
    requests = sandbox.accounting["businesscentral"].requests
    assert requests, "the row reached Business Central"
    token = re.compile(BC_TOKEN_PATH)
    written = [f"{r.method} {r.path}" for r in requests if r.method != "GET" and not token.fullmatch(r.path)]
    assert written == [], "nothing is ever written to Business Central"


def _businesscentral_rows() -> list[FaultScenario]:
    token, accounts = ("POST", BC_TOKEN_PATH), ("GET", BC_ACCOUNTS_PATH)
    rows = [
        FaultScenario(
            "businesscentral-token-5xx",
            "Microsoft Entra ID's token endpoint (client credentials): 503, once",
            businesscentral_fault(*token, status=503),
            handed_on(retries=1),
        ),
        FaultScenario(
            "businesscentral-token-disconnect",
            "Microsoft Entra ID's token endpoint: connection closed without an answer, once",
            businesscentral_fault(*token, disconnect=True),
            handed_on(retries=1),
        ),
        FaultScenario(
            "businesscentral-token-5xx-persistent",
            "Microsoft Entra ID's token endpoint: 503 on every delivery",
            businesscentral_fault(*token, times=None, status=503),
            failed_early("accounting_system_unreachable", retries=MAX_RECEIVE_COUNT - 1),
        ),
        FaultScenario(
            "businesscentral-accounts-429-retry-after",
            "Business Central `GET .../accounts`: 429 with `Retry-After: 1` (over the 6,000 requests per "
            "5 minutes, or the queue of 95 full), once",
            businesscentral_fault(*accounts, status=429, headers={"Retry-After": "1"}),
            handed_on(retries=1),
        ),
        FaultScenario(
            "businesscentral-accounts-504",
            "Business Central `GET .../accounts`: 504 Gateway Timeout, once",
            businesscentral_fault(*accounts, status=504),
            handed_on(retries=1),
        ),
        FaultScenario(
            "businesscentral-upgrade-503-persistent",
            "Business Central `GET .../accounts`: 503 with `Retry-After` and an OData error (an environment "
            "being upgraded) on every delivery",
            businesscentral_fault(*accounts, times=None, **BC_UNAVAILABLE),
            failed_early("accounting_system_unreachable", retries=MAX_RECEIVE_COUNT - 1),
        ),
        FaultScenario(
            "businesscentral-accounts-429-persistent",
            "Business Central `GET .../accounts`: 429 on every delivery",
            businesscentral_fault(*accounts, times=None, status=429, headers={"Retry-After": "1"}),
            failed_early("accounting_system_rate_limit", retries=MAX_RECEIVE_COUNT - 1),
        ),
    ]
    return [replace(row, verify=nothing_written_to_businesscentral) for row in rows]


def redriven_later(sandbox: Sandbox) -> PollReport:
    """Decide, then the same message comes back: a DLQ redrive days later, after SQS's
    5-minute deduplication window (the decision record answers: nothing is done again)."""
    first = drain(sandbox)
    for body in _REDRIVE_BODIES:
        enqueue(sandbox, body)
    return merged(first, drain(sandbox))


_REDRIVE_BODIES: list[str] = []


def decided_then_redriven(base: Setup) -> Setup:
    """``base``; the same body comes back later (see ``redriven_later``)."""

    def setup(sandbox: Sandbox) -> Seeded:
        seeded = base(sandbox)
        _REDRIVE_BODIES[:] = list(seeded.bodies)
        return Seeded(seeded.job_id, seeded.company_id, seeded.bodies * 2)

    return setup


def routed_from_unconfigured_company(sandbox: Sandbox) -> Seeded:
    scenarios.routed_from_unconfigured_company(sandbox)
    company = sandbox.companies["misrouted-foreign"]
    (job,) = [j for j in sandbox.pleo.jobs() if j["companyId"] != company.company_id]
    return Seeded(job["id"], job["companyId"], (json.dumps({"jobId": job["id"], "companyId": company.company_id}),))


def idle_job_economic_down(sandbox: Sandbox) -> Seeded:
    """e-conomic is down and the job's last action was ``expiresIn`` seconds ago: it expires
    before any next delivery, although ``expiresIn`` alone still reads 3600."""
    seeded = claimed(sandbox, job={"expires_in": 3600, "idle_seconds": 3600})
    sandbox.economic.inject("GET", "/self", status=503, times=None)
    return seeded


def bad_reference(configuration: dict[str, Any]) -> Setup:
    return lambda sandbox: claimed(sandbox, configuration=configuration)


HTML = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"
CONTROL_CHARACTERS = json.dumps({"jobId": "\x00\x1b[31m-not-a-uuid", "companyId": str(uuid.UUID(int=2))})
# What SQS accepts in a message attribute value (as in a body): API reference, SendMessage.
_SQS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]+")


def reject_attributes_sqs_accepts(sandbox: Sandbox, seeded: Seeded) -> None:
    dlq = _resources(sandbox).claimed_jobs_dlq_url
    sent = [p for op, p in AWS_FAULTS.calls if op == "SendMessage" and p.get("QueueUrl") == dlq]
    assert sent, "the message was moved to the DLQ"
    for params in sent:
        for name, value in params["MessageAttributes"].items():
            text = value["StringValue"]
            assert _SQS_TEXT.fullmatch(text) and len(text) <= 256, f"{name}: {text!r}"


def decision_never_released(sandbox: Sandbox, seeded: Seeded) -> None:
    table = _resources(sandbox).decisions_table
    updates = [p for op, p in AWS_FAULTS.calls if op == "UpdateItem" and p.get("TableName") == table]
    released = [p for p in updates if ":released" in p.get("ExpressionAttributeValues", {})]
    assert released == [], "a hand-off whose outcome was unknown released its decision"


NESTED = "[" * 5000 + "]" * 5000
HUGE_INTEGER = '{"jobId": ' + "9" * 5000 + ', "companyId": "' + str(uuid.UUID(int=2)) + '"}'

HARDENING = [
    FaultScenario(
        "handed-on-then-redriven-later",
        "A job was handed on; the same message comes back (a DLQ redrive days later, after the ready "
        "queue's deduplication window)",
        decided_then_redriven(passing),
        Expected("in_progress", hand_offs=1, messages=2),
        drive=redriven_later,
        verify=one_hand_off_attempt,
    ),
    FaultScenario(
        "failed-then-redriven-later",
        "A job failed early; the same message comes back (a DLQ redrive days later)",
        decided_then_redriven(failing),
        Expected("failed", "invalid_configuration", events=1, messages=2),
        drive=redriven_later,
    ),
    FaultScenario(
        "pleo-read-html-200",
        "Pleo answers `GET /v3/export-jobs/{id}` with an HTML page and status 200, once",
        pleo_fault(passing, "GET", JOB_PATH, times=1, status=200, raw=HTML, headers={"Content-Type": "text/html"}),
        handed_on(retries=1),
    ),
    FaultScenario(
        "pleo-read-403",
        "Pleo answers 403 when the job is read (the credentials do not cover this job)",
        pleo_fault(passing, "GET", JOB_PATH, times=None, status=403, json={"type": "FORBIDDEN", "message": "no"}),
        rejected("pleo_job_not_covered", job="in_progress"),
    ),
    FaultScenario(
        "economic-accounts-html-200-persistent",
        "e-conomic answers `GET /accounts` with an HTML page and status 200 on every delivery",
        economic_fault("/accounts", times=None, status=200, raw=HTML, headers={"Content-Type": "text/html"}),
        failed_early("accounting_system_unreachable", retries=MAX_RECEIVE_COUNT - 1),
    ),
    FaultScenario(
        "economic-self-wrong-shape",
        "e-conomic answers `GET /self` with a JSON array instead of an object, once",
        economic_fault("/self", times=1, status=200, json=[{"agreementNumber": AGREEMENT}]),
        handed_on(retries=1),
    ),
    FaultScenario(
        "company-mismatch-unconfigured",
        "The message's `companyId` is not the job's, and the job's company has no configuration",
        routed_from_unconfigured_company,
        rejected("company_mismatch", job="in_progress"),
    ),
    FaultScenario(
        "economic-down-idle-job",
        "e-conomic `GET /self`: 503, and the job's last action was `expiresIn` seconds ago "
        "(`lastUpdatedAt` + `expiresIn` is now)",
        idle_job_economic_down,
        failed_early("accounting_system_unreachable"),
    ),
    FaultScenario(
        "configuration-company-ref-not-printable",
        "The configured e-conomic agreement number holds a line break (`100\\n001`)",
        bad_reference({"accountingCompanyRef": "100\n001"}),
        failed_early("invalid_configuration"),
    ),
    FaultScenario(
        "configuration-account-not-ascii-digits",
        "A mapped e-conomic account number has full-width digits (`５８２０`)",
        bad_reference({"mappings": {"journal": 1, "expenseAccount": "５８２０", "contraAccount": 6800}}),
        failed_early("invalid_configuration"),
    ),
    FaultScenario(
        "malformed-deep-nesting",
        "Message body is JSON nested 5,000 levels deep",
        malformed(NESTED),
        rejected("malformed_message"),
    ),
    FaultScenario(
        "malformed-huge-integer",
        "Message body holds a 5,000-digit integer",
        malformed(HUGE_INTEGER),
        rejected("malformed_message"),
    ),
    FaultScenario(
        "malformed-control-characters",
        "`jobId` holds control characters (`\\u0000`, an escape sequence) that the validation error quotes: "
        "the `rejectReason` SQS is sent carries only characters SQS accepts",
        malformed(CONTROL_CHARACTERS),
        rejected("malformed_message"),
        verify=reject_attributes_sqs_accepts,
    ),
    FaultScenario(
        "ready-queue-5xx",
        "SQS `SendMessage` of the hand-off: `InternalServerError` (500), once: the outcome is unknown, so the "
        "decision is kept (not released) and re-sent under the same deduplication id",
        aws_fault("ready-queue", "5xx"),
        handed_on(retries=1),
        verify=decision_never_released,
    ),
]


SCENARIOS: tuple[FaultScenario, ...] = (
    *_pleo_rows(),
    *PLEO_ANSWERS,
    *_economic_rows(),
    *_aws_rows(),
    *SIDE_EFFECTS,
    *EXHAUSTED,
    *JOB_STATES,
    *CONFIGURATION,
    *DELIVERY,
    *MALFORMED,
    *HARDENING,
    *_oauth_rows(),
    *_businesscentral_rows(),
)

assert len({s.name for s in SCENARIOS}) == len(SCENARIOS), "scenario names must be unique"
