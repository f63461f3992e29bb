"""Every decision branch of ``PreflightService``, with in-memory fakes of its ports
(no HTTP, no AWS): skipped, failed early, handed off, the last-attempt rule, credential
re-read, a 422 met meanwhile, the message's word against the job's, and the decision log."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from export_preflight.errors import (
    AccountingSystemError,
    AccountingSystemUnavailable,
    AwsUnavailable,
    DecisionBusy,
    HandOffNotSent,
    PleoUnavailable,
    UnprocessableMessage,
)
from export_preflight.models import (
    ClaimedJobMessage,
    CompanyConfiguration,
    Decision,
    ExportJob,
    FailureReasonType,
    Readiness,
)
from export_preflight.ports import Connection, RecordedDecision
from export_preflight.service import HAND_OFF_RESEND_SECONDS, Attempt, PreflightService
from tests.unit.fakes import COMPANY, ECONOMIC_REQUIREMENTS, JOB, FakeConnector, configuration, job

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
OTHER_COMPANY = uuid.UUID("33333333-3333-4333-8333-333333333333")


@dataclass
class FakePleo:
    """PleoAccess and PleoJobs at once: one job store, credentials by secret id."""

    jobs: dict[UUID, ExportJob] = field(default_factory=dict)
    rejected_secrets: set[str] = field(default_factory=set)  # answer 401 until re-read
    events: list[tuple[UUID, str, str]] = field(default_factory=list)
    answer_422_with: str | None = None  # the job was failed meanwhile with this type
    secrets_used: list[tuple[str, bool]] = field(default_factory=list)

    def for_company(self, secret_id: str, *, refresh: bool = False) -> FakePleo:
        self.secrets_used.append((secret_id, refresh))
        if secret_id in self.rejected_secrets and not refresh:
            return _Rejecting()  # type: ignore[return-value]
        return self

    def get_job(self, job_id: UUID) -> ExportJob | None:
        return self.jobs.get(job_id)

    def fail_job(self, job_id: UUID, reason_type: FailureReasonType, reason: str) -> ExportJob:
        current = self.jobs[job_id]
        if self.answer_422_with:
            failed = current.model_copy(update={"status": "failed", "failure_reason_type": self.answer_422_with})
        else:
            self.events.append((job_id, reason_type.value, reason))
            failed = current.model_copy(update={"status": "failed", "failure_reason_type": reason_type.value})
        self.jobs[job_id] = failed
        return failed


class _Rejecting:
    def get_job(self, job_id: UUID) -> ExportJob | None:
        raise UnprocessableMessage("Pleo rejected our credentials (401)", kind="pleo_credentials_rejected")


@dataclass
class FakeConnectors:
    connector: FakeConnector = field(default_factory=FakeConnector)
    fresh_connector: FakeConnector | None = None  # what a re-read of the secret yields
    reread_on_rejection: bool = True
    connects: list[tuple[str, bool]] = field(default_factory=list)
    idle_seconds: float | None = None  # an OAuth grant's refresh token lapses after this long unused

    def connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        self.connects.append((str(config.company_id), refresh))
        connector = self.fresh_connector if refresh and self.fresh_connector else self.connector
        return Connection(
            connector,
            requirements=ECONOMIC_REQUIREMENTS,
            reread_on_rejection=self.reread_on_rejection,
            refresh_token_idle_seconds=self.idle_seconds,
        )


@dataclass
class FakeHandOff:
    sent: list[tuple[dict[str, object], str]] = field(default_factory=list)
    refuse: bool = False

    def hand_off(self, payload: dict[str, object], *, deduplication_id: str) -> str:
        if self.refuse:
            raise HandOffNotSent("SQS SendMessage failed (ThrottlingException)")
        self.sent.append((payload, deduplication_id))
        return "message-1"


@dataclass
class MemoryDecisionLog:
    # job id -> (decision, state, claimed at[, re-run token[, busy until]])
    records: dict[str, tuple] = field(default_factory=dict)
    clock: float = NOW.timestamp()
    freed: list[str] = field(default_factory=list)

    def settled(self, job_id: str) -> RecordedDecision | None:
        existing = self.records.get(job_id)
        return RecordedDecision(*existing) if existing and existing[1] == "done" else None

    def claim(self, decision: Decision, *, rerun: str | None, busy_until: float) -> RecordedDecision | None:
        existing = self.records.get(str(decision.job_id))
        if existing and existing[1] != "released":
            return RecordedDecision(*existing)
        self.records[str(decision.job_id)] = (decision, "acting", self.clock, rerun, busy_until)
        return None

    def take_over(self, job_id: str, *, seen: RecordedDecision, busy_until: float) -> bool:
        current = RecordedDecision(*self.records[job_id])
        if current.state != "acting" or current.busy_until != seen.busy_until:
            return False
        self.records[job_id] = current._replace(busy_until=busy_until)
        return True

    def free(self, job_id: str, *, busy_until: float) -> None:
        current = RecordedDecision(*self.records[job_id]) if job_id in self.records else None
        if current and current.state == "acting" and current.busy_until == busy_until:
            self.records[job_id] = current._replace(busy_until=0.0)
            self.freed.append(job_id)

    def settle(self, job_id: str) -> None:
        self.records[job_id] = RecordedDecision(*self.records[job_id])._replace(state="done")

    def release(self, job_id: str) -> None:
        self.records[job_id] = RecordedDecision(*self.records[job_id])._replace(state="released")


@dataclass
class MemoryReadinessLog:
    records: dict[str, Readiness] = field(default_factory=dict)
    broken: bool = False

    def record(self, readiness: Readiness) -> None:
        if self.broken:
            raise AwsUnavailable("DynamoDB PutItem on the readiness table failed (ThrottlingException)")
        self.records[readiness.company_id] = readiness

    def last(self, company_id: str) -> Readiness | None:
        return self.records.get(company_id)

    def forget(self, company_id: str) -> bool:
        return self.records.pop(company_id, None) is not None


class FakeSecrets:
    def known_values(self, secret_ids: list[str]) -> list[str]:
        return ["pasted-secret-value"]


@dataclass
class World:
    configurations: dict[UUID, CompanyConfiguration] = field(default_factory=lambda: {COMPANY: configuration()})
    pleo: FakePleo = field(default_factory=lambda: FakePleo(jobs={JOB: job(lastUpdatedAt=NOW.isoformat())}))
    connectors: FakeConnectors = field(default_factory=FakeConnectors)
    hand_off: FakeHandOff = field(default_factory=FakeHandOff)
    decisions: MemoryDecisionLog = field(default_factory=MemoryDecisionLog)
    readiness: MemoryReadinessLog = field(default_factory=MemoryReadinessLog)

    def get(self, company_id: UUID) -> CompanyConfiguration | None:
        return self.configurations.get(company_id)

    executor: Executor | None = None

    def service(self) -> PreflightService:
        return PreflightService(
            configurations=self,
            pleo=self.pleo,
            connectors=self.connectors,
            secrets=FakeSecrets(),
            hand_off=self.hand_off,
            decisions=self.decisions,
            readiness=self.readiness,
            executor=self.executor,
            clock=lambda: self.decisions.clock,
        )

    def decide(self, *, company: UUID = COMPANY, attempt: Attempt | None = None, rerun: str | None = None) -> Decision:
        message = ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(company), "rerun": rerun})
        return self.service().decide(message, attempt=attempt or Attempt())


@pytest.fixture
def world() -> World:
    return World()


def test_a_healthy_job_is_handed_on_once_and_recorded(world):
    decision = world.decide()
    assert decision.outcome == "handed_off"
    ((payload, dedup),) = world.hand_off.sent
    assert payload["jobId"] == str(JOB) and dedup == str(JOB) and world.pleo.events == []
    assert world.decisions.records[str(JOB)][1] == "done"


def test_a_failed_check_fails_the_job_early_with_a_sanitised_reason(world):
    world.configurations[COMPANY] = configuration(mappings={"journal": 1, "expenseAccount": 5820})
    decision = world.decide()
    assert (decision.outcome, decision.reason_type) == ("failed_early", FailureReasonType.MISSING_CONFIGURATION)
    ((job_id, reason_type, _),) = world.pleo.events
    assert (job_id, reason_type) == (JOB, "missing_configuration") and world.hand_off.sent == []
    assert decision.job_status == "failed"


def test_known_secret_values_never_reach_the_reason(world):
    world.connectors.connector.auth_error = AccountingSystemError(
        "the token pasted-secret-value was refused",
        reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
    )
    world.connectors.reread_on_rejection = False
    world.decide()
    ((_, _, reason),) = world.pleo.events
    assert "pasted-secret-value" not in reason and "[redacted]" in reason


@pytest.mark.parametrize(
    ("jobs", "why"), [({}, "job not found in Pleo"), ({JOB: job(status="completed")}, "completed")]
)
def test_a_job_that_is_gone_or_finished_is_skipped(world, jobs, why):
    world.pleo.jobs = jobs
    decision = world.decide(attempt=Attempt(receive_count=3))
    assert decision.outcome == "skipped" and why in (decision.reason or "")
    assert world.pleo.events == [] and world.hand_off.sent == [] and world.decisions.records == {}


def test_a_404_for_a_job_just_claimed_is_retried_before_it_is_believed(world):
    world.pleo.jobs = {}
    for delivery in (1, 2):
        with pytest.raises(PleoUnavailable, match="404"):
            world.decide(attempt=Attempt(receive_count=delivery))
    assert world.decide(attempt=Attempt(receive_count=3)).outcome == "skipped"
    # a last delivery believes it at once (nothing is left to retry with)
    assert world.decide(attempt=Attempt(receive_count=1, max_receive_count=1)).outcome == "skipped"
    assert world.decisions.records == {} and world.pleo.events == [] and world.hand_off.sent == []


def test_a_404_then_the_job_is_readable_hands_it_on(world):
    existing = world.pleo.jobs
    world.pleo.jobs = {}
    with pytest.raises(PleoUnavailable):
        world.decide(attempt=Attempt(receive_count=1))
    world.pleo.jobs = existing
    assert world.decide(attempt=Attempt(receive_count=2)).outcome == "handed_off"


def test_an_unknown_company_goes_to_the_dlq(world):
    world.configurations.clear()
    with pytest.raises(UnprocessableMessage) as raised:
        world.decide()
    assert raised.value.kind == "unknown_company"


def test_transient_trouble_is_retried_while_deliveries_and_time_are_left(world):
    world.connectors.connector.auth_error = AccountingSystemUnavailable("e-conomic answered 503")
    with pytest.raises(AccountingSystemUnavailable):
        world.decide(attempt=Attempt(receive_count=2, max_receive_count=5, next_retry_in_seconds=30))
    assert world.pleo.events == []


def test_the_last_delivery_fails_the_job_with_the_precise_reason(world):
    world.connectors.connector.auth_error = AccountingSystemUnavailable(
        "e-conomic timed out", reason_type=FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT
    )
    decision = world.decide(attempt=Attempt(receive_count=5, max_receive_count=5))
    assert decision.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT


def test_a_job_expiring_before_the_next_delivery_is_its_last_attempt(world):
    idle = (NOW - timedelta(seconds=3600 - 20)).isoformat()  # 20 s left by lastUpdatedAt
    world.pleo.jobs[JOB] = job(lastUpdatedAt=idle, expiresIn=3600)
    world.connectors.connector.auth_error = AccountingSystemUnavailable("e-conomic answered 503")
    decision = world.decide(attempt=Attempt(receive_count=1, max_receive_count=5, next_retry_in_seconds=30))
    assert decision.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE


def test_rejected_accounting_credentials_are_reread_once(world):
    world.connectors.connector.auth_error = AccountingSystemError(
        "rejected", reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    )
    world.connectors.fresh_connector = FakeConnector()  # the rotated secret works
    assert world.decide().outcome == "handed_off"
    assert [refresh for _, refresh in world.connectors.connects] == [False, True]


def test_rejected_pleo_credentials_are_reread_once(world):
    world.pleo.rejected_secrets.add(f"export-preflight/pleo/{COMPANY}")
    assert world.decide().outcome == "handed_off"
    assert [refresh for _, refresh in world.pleo.secrets_used] == [False, True]


def test_a_422_on_a_job_failed_meanwhile_is_recorded_as_skipped(world):
    world.configurations[COMPANY] = configuration(mappings={"journal": 1})
    world.pleo.answer_422_with = "job_expired"
    decision = world.decide()
    assert decision.outcome == "skipped" and "job_expired" in (decision.reason or "")


def test_a_message_naming_another_company_is_decided_in_the_jobs_own_company(world):
    world.configurations[OTHER_COMPANY] = configuration(companyId=str(OTHER_COMPANY))
    decision = world.decide(company=OTHER_COMPANY)  # the job belongs to COMPANY
    assert decision.outcome == "handed_off" and decision.company_id == str(COMPANY)
    assert [company for company, _ in world.connectors.connects][-1] == str(COMPANY)


def test_a_message_whose_job_belongs_to_an_unconfigured_company_touches_nothing(world):
    world.configurations[OTHER_COMPANY] = configuration(companyId=str(OTHER_COMPANY))
    del world.configurations[COMPANY]
    with pytest.raises(UnprocessableMessage) as raised:
        world.decide(company=OTHER_COMPANY)
    assert raised.value.kind == "company_mismatch"
    assert world.pleo.events == [] and world.hand_off.sent == []


def test_a_job_decided_before_is_not_acted_on_again(world):
    world.decide()
    again = world.decide()
    assert again.outcome == "handed_off" and len(world.hand_off.sent) == 1


def test_a_recorded_hand_off_not_yet_settled_is_resent_within_the_deduplication_window(world):
    world.decisions.records[str(JOB)] = (Decision(outcome="handed_off", job_id=str(JOB)), "acting", NOW.timestamp())
    world.decisions.clock += HAND_OFF_RESEND_SECONDS - 1
    assert world.decide().outcome == "handed_off"
    assert len(world.hand_off.sent) == 1 and world.decisions.records[str(JOB)][1] == "done"


def test_an_unsettled_hand_off_older_than_the_window_goes_to_the_dlq_not_out_again(world):
    world.decisions.records[str(JOB)] = (Decision(outcome="handed_off", job_id=str(JOB)), "acting", NOW.timestamp())
    world.decisions.clock += HAND_OFF_RESEND_SECONDS + 1
    with pytest.raises(UnprocessableMessage) as raised:
        world.decide()
    assert raised.value.kind == "hand_off_unknown" and world.hand_off.sent == []


def test_the_recorded_decision_wins_over_a_new_one(world):
    recorded = Decision(outcome="handed_off", job_id=str(JOB))
    world.decisions.records[str(JOB)] = (recorded, "done", NOW.timestamp())
    world.configurations[COMPANY] = configuration(mappings={"journal": 1})  # would fail today
    assert world.decide().outcome == "handed_off" and world.pleo.events == []


def test_a_hand_off_sqs_refused_releases_the_claim(world):
    world.hand_off.refuse = True
    with pytest.raises(HandOffNotSent):
        world.decide()
    assert world.decisions.records[str(JOB)][1] == "released"
    world.hand_off.refuse = False
    assert world.decide().outcome == "handed_off" and len(world.hand_off.sent) == 1


def test_a_refused_re_send_of_an_earlier_deliverys_hand_off_keeps_the_record(world):
    """The earlier delivery's send had an unknown outcome (it may have landed): SQS refusing
    the re-send proves nothing about it, so the decision is not released (a fresh decision
    could fail a job that was handed on)."""
    world.decisions.records[str(JOB)] = (Decision(outcome="handed_off", job_id=str(JOB)), "acting", NOW.timestamp())
    world.hand_off.refuse = True
    with pytest.raises(HandOffNotSent):
        world.decide()
    assert world.decisions.records[str(JOB)][1] == "acting"


def test_finishing_a_hand_off_reuses_the_deduplication_id_it_was_made_under(world):
    """A re-run's decision stopped before it settled; then the *original* message is delivered
    (a duplicate, a redrive): the hand-off is re-sent as JOB.r1, the id SQS deduplicates
    against, never as JOB (a second hand-off the ready queue would take)."""
    world.decisions.records[str(JOB)] = (
        Decision(outcome="handed_off", job_id=str(JOB)),
        "acting",
        NOW.timestamp(),
        "r1",
    )
    world.decisions.clock += 10
    assert world.decide(rerun=None).outcome == "handed_off"
    assert [dedup for _, dedup in world.hand_off.sent] == [f"{JOB}.r1"]
    # and the other way round: a re-run's message finishing the original decision
    world.decisions.records[str(JOB)] = (
        Decision(outcome="handed_off", job_id=str(JOB)),
        "acting",
        world.decisions.clock,
    )
    world.decide(rerun="r2")
    assert [dedup for _, dedup in world.hand_off.sent] == [f"{JOB}.r1", str(JOB)]


def test_a_rerun_hands_off_under_its_own_deduplication_id(world):
    world.decide(rerun="r1")
    assert world.hand_off.sent[0][1] == f"{JOB}.r1"


# ---------------------------------------------------------------- exactly once: the decision log alone


def test_a_concurrent_duplicate_does_not_act_while_the_claiming_delivery_may_be_running(world):
    """Two deliveries of one job at once: the second finds the first's claim, held until the
    end of the first's invocation, and is retried then (nothing posted, nothing sent)."""
    busy_until = NOW.timestamp() + 20
    world.decisions.records[str(JOB)] = (
        Decision(outcome="handed_off", job_id=str(JOB)),
        "acting",
        NOW.timestamp(),
        None,
        busy_until,
    )
    with pytest.raises(DecisionBusy) as raised:
        world.decide()
    assert raised.value.retry_after == 20
    assert world.hand_off.sent == [] and world.pleo.events == []


def test_a_claim_whose_delivery_ended_is_taken_over_and_finished(world):
    busy_until = NOW.timestamp() + 20
    world.decisions.records[str(JOB)] = (
        Decision(outcome="handed_off", job_id=str(JOB)),
        "acting",
        NOW.timestamp(),
        None,
        busy_until,
    )
    world.decisions.clock += 21  # the first delivery's invocation is over (a crash, a timeout)
    assert world.decide(attempt=Attempt(busy_until=world.decisions.clock + 30)).outcome == "handed_off"
    assert len(world.hand_off.sent) == 1 and world.decisions.records[str(JOB)][1] == "done"


def test_a_delivery_that_raises_while_acting_frees_its_claim_for_the_next_one(world):
    world.connectors.connector.auth_error = None
    world.configurations[COMPANY] = configuration(mappings={"journal": 1, "expenseAccount": 5820})  # fails early
    world.pleo.fail_job = _raise_pleo_unavailable  # type: ignore[method-assign]
    with pytest.raises(PleoUnavailable):
        world.decide(attempt=Attempt(busy_until=NOW.timestamp() + 25))
    assert world.decisions.freed == [str(JOB)]
    record = RecordedDecision(*world.decisions.records[str(JOB)])
    assert (record.state, record.busy_until) == ("acting", 0.0)


def test_a_decided_job_gets_its_decision_back_without_anything_being_read(world):
    """A duplicate or a redrive days later: the recorded decision, before Pleo, the
    configuration or the accounting system is asked anything."""
    recorded = Decision(
        outcome="failed_early", job_id=str(JOB), reason="earlier", reason_type=FailureReasonType.MISSING_CONFIGURATION
    )
    world.decisions.records[str(JOB)] = (recorded, "done", NOW.timestamp())
    world.pleo.get_job = _raise_pleo_unavailable  # type: ignore[method-assign]  # Pleo down: does not matter
    assert world.decide() == recorded
    assert world.pleo.events == [] and world.hand_off.sent == []


def test_reading_the_decision_record_first_failing_leaves_the_claim_to_guard(world):
    def broken(job_id: str) -> RecordedDecision | None:
        raise AwsUnavailable("DynamoDB GetItem on the job decisions table failed (ThrottlingException)")

    world.decisions.settled = broken  # type: ignore[method-assign]
    world.decisions.records[str(JOB)] = (Decision(outcome="handed_off", job_id=str(JOB)), "done", NOW.timestamp())
    assert world.decide().outcome == "handed_off" and world.hand_off.sent == []


def _raise_pleo_unavailable(*_: object, **__: object) -> None:
    raise PleoUnavailable("Pleo answered 503")


# ---------------------------------------------------------------- reads side by side (with an executor)


@pytest.fixture
def pooled(world):
    with ThreadPoolExecutor(max_workers=8) as pool:
        world.executor = pool
        yield world


def _meeting(world: World, parties: int = 2) -> threading.Barrier:
    """Pleo's credentials and the accounting connection each wait, when first asked for, until
    the other is being asked for too: read one after the other, the barrier breaks."""
    barrier = threading.Barrier(parties, timeout=2)
    for port, name in ((world.pleo, "for_company"), (world.connectors, "connect")):
        original = getattr(port, name)

        def meet(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            barrier.wait()
            return _original(*args, **kwargs)

        setattr(port, name, meet)
    return barrier


def test_the_pleo_job_and_the_accounting_connection_are_read_side_by_side(pooled):
    """Each begins with its own secret: when neither is cached, one round trip instead of two."""
    _meeting(pooled)
    assert pooled.decide().outcome == "handed_off"


def test_when_both_reads_fail_the_connections_error_is_raised_after_the_job_read_ended(pooled):
    ended = threading.Event()

    def pleo_down(*_: object, **__: object) -> None:
        try:
            time.sleep(0.1)  # answers after the connection has failed
            raise PleoUnavailable("Pleo answered 503")
        finally:
            ended.set()

    def no_secret(config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        raise AwsUnavailable("Secrets Manager GetSecretValue failed (ThrottlingException)")

    pooled.pleo.get_job = pleo_down  # type: ignore[method-assign]
    pooled.connectors.connect = no_secret  # type: ignore[method-assign]
    with pytest.raises(AwsUnavailable):
        pooled.decide()
    assert ended.is_set()  # nothing of the job's is still running once it has failed
    assert pooled.pleo.events == [] and pooled.hand_off.sent == [] and pooled.decisions.records == {}


def test_without_an_executor_the_connection_is_read_first(world):
    order: list[str] = []
    connect, for_company = world.connectors.connect, world.pleo.for_company
    world.connectors.connect = lambda config, **kw: (order.append("connection"), connect(config, **kw))[1]  # type: ignore[method-assign]
    world.pleo.for_company = lambda secret, **kw: (order.append("pleo"), for_company(secret, **kw))[1]  # type: ignore[method-assign]
    assert world.decide().outcome == "handed_off"
    assert order == ["connection", "pleo"]
