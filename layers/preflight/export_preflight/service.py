"""One claimed job, end to end: load the company's configuration (it names the Pleo
credentials), re-read the job from Pleo, run the checks, record the decision, then fail
the job early in Pleo or hand it on (a ``ReadyJob``). A company's readiness (the same
checks without a job, and what a job's checks showed) is readiness.py's; ``check_company``
hands it on. Free of Lambda glue and of adapters: it sees the ports of ``ports.py`` only."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime
from functools import partial
from typing import Literal, TypeAlias, TypeVar, cast
from uuid import UUID

from .company_checks import ONLY_ATTEMPT, Attempt, CompanyChecks, blame_accounting_system, redact
from .concurrency import side_by_side
from .engine import CheckReport
from .errors import (
    DecisionBusy,
    HandOffNotSent,
    PleoUnavailable,
    TransientError,
    UnprocessableMessage,
)
from .models import (
    CheckOutcome,
    ClaimedJobMessage,
    CompanyConfiguration,
    Decision,
    ExportJob,
    FailureReasonType,
    Readiness,
    ReadyJob,
)
from .observability import count, logger
from .ports import (
    ConfigurationSource,
    Connection,
    ConnectorFactory,
    DecisionLog,
    HandOff,
    PleoAccess,
    PleoJobs,
    ReadinessLog,
    SecretValues,
)
from .readiness import CompanyReadiness
from .sanitize import sanitize_reason
from .settings import DEFAULT_SECRETS_PREFIX

T = TypeVar("T")
# The first steps of a decision: the job's configuration, Pleo for its company, the job and
# the accounting connection; or the decision to leave the job alone.
Prepared: TypeAlias = Decision | tuple[CompanyConfiguration, PleoJobs, ExportJob, Connection]
# A hand-off may be re-sent only while SQS still deduplicates it (5 minutes, with margin).
HAND_OFF_RESEND_SECONDS = 240
# How long a delivery that claimed a decision may still be acting on it when its invocation's
# end is not known (outside Lambda): the function's timeout.
ACTING_SECONDS = 30
# A re-run may not remove a decision still ``acting`` younger than this: a delivery may yet
# finish it (re-send its hand-off within HAND_OFF_RESEND_SECONDS, and take up to one
# function timeout, 30 s, doing so).
RERUN_WAIT_SECONDS = HAND_OFF_RESEND_SECONDS + 30
# Pleo answered 404 for the job. A job we were just asked to check may not be readable yet
# (the claim stage saw it a moment ago): the 404 is believed from this delivery on (or on the
# last one), earlier ones are retried.
JOB_NOT_FOUND = "job not found in Pleo"
NOT_FOUND_BELIEVED_FROM_DELIVERY = 3


class PreflightService:
    """Decides one claimed job. Transient trouble raises ``TransientError`` (retry)."""

    def __init__(
        self,
        *,
        configurations: ConfigurationSource,
        pleo: PleoAccess,
        connectors: ConnectorFactory,
        secrets: SecretValues,
        hand_off: HandOff,
        decisions: DecisionLog,
        readiness: ReadinessLog,
        executor: Executor | None,
        clock: Callable[[], float] = time.time,
        secrets_prefix: str = DEFAULT_SECRETS_PREFIX,
    ) -> None:
        self._configurations = configurations
        self._pleo = pleo
        self._checks = CompanyChecks(
            connectors=connectors, secrets=secrets, executor=executor, secrets_prefix=secrets_prefix
        )
        self._hand_off = hand_off
        self._decisions = decisions
        self._readiness = CompanyReadiness(
            configurations=configurations,
            checks=self._checks,
            readiness=readiness,
            clock=clock,
            secrets_prefix=secrets_prefix,
        )
        self._executor = executor
        self._clock = clock
        # Credentials secrets are named <prefix><system>/<companyId> (docs/contracts.md, "Secrets").
        self._secrets_prefix = secrets_prefix

    def start_reading(self, message: ClaimedJobMessage) -> Future[Prepared] | None:
        """Start the read-only first steps of ``decide`` (the job's decision record,
        configuration, the job from Pleo, authentication) now, e.g. while the handler logs;
        hand the result to ``decide``. Nothing is written by these steps. None without an
        executor."""
        if self._executor is None:
            return None
        return self._executor.submit(contextvars.copy_context().run, self._prepare, message)

    def decide(
        self,
        message: ClaimedJobMessage,
        *,
        attempt: Attempt,
        prepared: Future[Prepared] | None = None,
        pending: list[Future[None]] | None = None,
    ) -> Decision:
        """Run preflight for one message. On the last attempt (see ``Attempt.is_last_for``),
        transient accounting-system trouble fails the job with the most precise reason
        instead of leaving it ``in_progress`` until it expires. The job read from Pleo is
        the source of truth: it is decided in its own company's context, whatever the
        message says.

        ``prepared``: the first steps, started by ``start_reading``. ``pending``: when given,
        the writes that follow the action (marking the decision acted on, the readiness
        record) are left running there for the caller to wait for, so they overlap its own
        (e.g. its report); otherwise they are waited for here.

        Exactly once: a job whose decision was acted on before (a duplicate delivery, a redrive
        days later) gets that decision back, before anything is decided again; a decision is
        recorded before it is acted on, by one delivery at a time (``_claim``)."""
        ready = prepared.result() if prepared is not None else self._prepare(message)
        if isinstance(ready, Decision):
            if ready.reason == JOB_NOT_FOUND and not (
                attempt.receive_count >= NOT_FOUND_BELIEVED_FROM_DELIVERY or attempt.is_last_delivery
            ):
                raise PleoUnavailable(
                    f"Pleo does not know job {message.job_id} (404) on delivery {attempt.receive_count}; a job "
                    f"just claimed may not be readable yet: retried, believed from delivery "
                    f"{NOT_FOUND_BELIEVED_FROM_DELIVERY}"
                )
            return ready
        config, pleo, job, connection = ready
        report = self._checks.run(job, config, connection)
        failures = report.failures
        if not failures and report.errors:
            if not attempt.is_last_for(job, datetime.fromtimestamp(self._clock(), UTC)):
                raise blame_accounting_system(report.errors[0], config)
            failures = [_give_up(report.errors[0])]
        # The company's readiness, as this job found it: built and stored while the decision
        # is acted on (off the job's critical path).
        waits: list[Future[None]] = [] if pending is None else pending
        self._submit(self._readiness.record_job, (config, report, connection, str(job.id)), waits)
        try:
            return self._act(message, job, config, pleo, report, failures, waits, attempt)
        finally:
            if pending is None:
                for wait in waits:
                    wait.result()

    def _prepare(self, message: ClaimedJobMessage) -> Prepared:
        """The job's decision if it was acted on before (read alongside the rest: it costs the
        first decision nothing); otherwise ``_read``'s."""
        settled = self._background(self._settled, str(message.job_id))
        try:
            prepared = self._read(message)
        except Exception:
            if (recorded := settled.result()) is not None:  # decided before: what fails now does not matter
                return recorded
            raise
        recorded = settled.result()
        return prepared if recorded is None else recorded

    def _settled(self, job_id: str) -> Decision | None:
        try:
            recorded = self._decisions.settled(job_id)
        except TransientError as error:  # the claim still guards the decision
            logger.info("could not read the job's decision record first", extra={"error": str(error)})
            return None
        if recorded is None:
            return None
        logger.info(
            "the job was decided before; not deciding again",
            extra={"outcome": recorded.decision.outcome, "decided_at": recorded.claimed_at},
        )
        return recorded.decision

    def _background(self, work: Callable[[str], T], argument: str) -> Future[T]:
        """``work(argument)`` started in the background, or done now without an executor."""
        if self._executor is not None:
            return self._executor.submit(contextvars.copy_context().run, work, argument)
        done: Future[T] = Future()
        done.set_result(work(argument))
        return done

    def _read(self, message: ClaimedJobMessage) -> Prepared:
        """The job as Pleo has it, in its own company's context, with that company's
        configuration and accounting connection; or the decision to leave it alone."""
        config = self._configuration(message.company_id, message)
        pleo, job, connection = self._job_and_connection(config, message.job_id)
        if job is not None and job.company_id != message.company_id:
            logger.warning(
                "the message's companyId is not the job's; deciding in the job's company",
                extra={"message_company_id": str(message.company_id), "job_company_id": str(job.company_id)},
            )
            count("CompanyMismatch")
            logger.thread_safe_append_keys(company_id=str(job.company_id))
            config = self._configuration(job.company_id, message)
            pleo, job, connection = self._job_and_connection(config, message.job_id)
        if job is None:
            logger.warning("export job not found in Pleo", extra={"job_id": str(message.job_id)})
            return Decision(
                outcome="skipped",
                job_id=str(message.job_id),
                company_id=str(message.company_id),
                reason=JOB_NOT_FOUND,
                accounting_system=config.accounting_system,
            )
        if not job.in_progress:
            logger.info("job is no longer in progress; leaving it alone", extra={"job_status": job.status})
            return self._skipped(job, job.status, f"job is {job.status}", config)
        return config, pleo, job, connection

    def _act(
        self,
        message: ClaimedJobMessage,
        job: ExportJob,
        config: CompanyConfiguration,
        pleo: PleoJobs,
        report: CheckReport,
        failures: list[CheckOutcome],
        waits: list[Future[None]],
        attempt: Attempt,
    ) -> Decision:
        intended = self._intended(job, config, report, failures)
        busy_until = attempt.busy_until if attempt.busy_until is not None else self._clock() + ACTING_SECONDS
        decision, act, rerun = self._claim(intended, message.rerun, busy_until)
        if not act:
            return decision
        try:
            if decision.outcome == "failed_early":
                decided = self._fail(pleo, job, decision, config)
            else:
                # ``decision is intended``: this delivery claimed it; otherwise it finishes one an
                # earlier delivery recorded, whose own send may have landed.
                decided = self._hand_on(job, config, decision, rerun, first_send=decision is intended)
        except BaseException:
            # Not finished: the next delivery may finish it at once (not only after busy_until).
            self._decisions.free(str(job.id), busy_until=busy_until)
            raise
        self._submit(self._settle, (str(job.id), busy_until), waits)
        return decided

    def preview(self, message: ClaimedJobMessage) -> Decision:
        """What ``decide`` would decide for the job now, without acting on it: nothing is
        recorded, posted to Pleo or handed on (the CLI's ``job --dry-run``). Transient
        trouble raises ``TransientError``."""
        prepared = self._prepare(message)
        if isinstance(prepared, Decision):
            return prepared
        config, _, job, connection = prepared
        report = self._checks.run(job, config, connection)
        if not report.failures and report.errors:
            raise blame_accounting_system(report.errors[0], config)
        return self._intended(job, config, report, report.failures)

    def read_job(self, company_id: UUID, job_id: UUID) -> ExportJob | None:
        """The job as Pleo has it, read with its company's credentials (the CLI's ``rerun``)."""
        config = self._configuration(company_id, ClaimedJobMessage(jobId=job_id, companyId=company_id))
        return self._read_job(config.pleo_credentials_secret_id or "", job_id)[1]

    # ------------------------------------------------------------ a company's readiness (readiness.py)

    def check_company(
        self,
        company_id: UUID,
        *,
        attempt: Attempt = ONLY_ATTEMPT,
        source: Literal["sweep", "cli"] = "cli",
        keep_alive_seconds: float | None = None,
        record: bool = True,
    ) -> Readiness:
        """A company's readiness without a job, a dry run: nothing is written to Pleo or handed
        on (``CompanyReadiness.check``, readiness.py)."""
        return self._readiness.check(
            company_id, attempt=attempt, source=source, keep_alive_seconds=keep_alive_seconds, record=record
        )

    def _submit(self, work: Callable[[T], None], argument: T, waits: list[Future[None]]) -> None:
        """Run ``work`` in the background (into ``waits``), or now without an executor."""
        if self._executor is None:
            work(argument)
        else:
            waits.append(self._executor.submit(contextvars.copy_context().run, work, argument))

    def _intended(
        self, job: ExportJob, config: CompanyConfiguration, report: CheckReport, failures: list[CheckOutcome]
    ) -> Decision:
        # Every outcome redacted (reasons and facts): the decision record, the hand-off's
        # ``checks`` and the CLI show these, never the raw ones.
        secrets = self._checks.secret_values(config)
        checks = [redact(outcome, secrets) for outcome in report.outcomes]
        if failures:
            reason_type, reason = summarize(failures)
            intended = Decision(
                outcome="failed_early",
                job_id=str(job.id),
                company_id=str(job.company_id),
                reason_type=reason_type,
                reason=sanitize_reason(reason, secrets),
                accounting_system=config.accounting_system,
                checks=checks,
            )
        else:
            intended = Decision(
                outcome="handed_off",
                job_id=str(job.id),
                company_id=str(job.company_id),
                job_status=job.status,
                accounting_system=config.accounting_system,
                checks=checks,
            )
        return intended

    def _claim(self, intended: Decision, rerun: str | None, busy_until: float) -> tuple[Decision, bool, str | None]:
        """The decision to act on: ours, or the one a previous delivery recorded and did not
        finish acting on; with False when the job was decided and acted on before (a
        duplicate or a redrive): then the recorded decision stands and nothing is done again.
        And the re-run token the decision was made under: finishing a recorded decision
        re-sends its hand-off under the deduplication id it was first sent with, whichever
        message (the original or a re-run's) delivers the job now.

        One delivery acts at a time: while the delivery acting on a record may still be
        running (until its ``busy_until``, the end of its invocation, unless it freed the
        record on an error), another one raises ``DecisionBusy`` and is retried."""
        try:
            existing = self._decisions.claim(intended, rerun=rerun, busy_until=busy_until)
        except TransientError:
            # The record may have been written (an answer that timed out): not held by us.
            self._decisions.free(str(intended.job_id), busy_until=busy_until)
            raise
        if existing is None:
            return intended, True, rerun
        decision, state, claimed_at, rerun, held_until = existing
        now = self._clock()
        if state == "acting" and now < held_until:
            raise DecisionBusy(str(intended.job_id), held_until - now)
        if state == "done":
            logger.info(
                "the job was decided before; not acting again",
                extra={"outcome": decision.outcome, "decided_at": claimed_at},
            )
            return decision, False, rerun
        age = self._clock() - claimed_at
        if decision.outcome == "handed_off" and age > HAND_OFF_RESEND_SECONDS:
            raise UnprocessableMessage(
                f"the job was decided {int(age)} s ago (handed on) but whether the hand-off reached the ready-jobs "
                "queue is unknown, and re-sending it now could hand it on twice: check the next stage for this "
                "job; if it never arrived, re-run preflight for it (docs/checks.md, 'Re-running one job')",
                kind="hand_off_unknown",
            )
        if not self._decisions.take_over(str(intended.job_id), seen=existing, busy_until=busy_until):
            raise DecisionBusy(str(intended.job_id), ACTING_SECONDS)  # another delivery took it first
        logger.info("finishing a decision a previous delivery recorded", extra={"outcome": decision.outcome})
        return decision, True, rerun

    def _fail(self, pleo: PleoJobs, job: ExportJob, decision: Decision, config: CompanyConfiguration) -> Decision:
        assert decision.reason_type is not None and decision.reason is not None
        confirmed = pleo.fail_job(job.id, decision.reason_type, decision.reason)
        if confirmed.failure_reason_type not in (None, decision.reason_type.value):
            # Our event met a 422: the job had been failed meanwhile (e.g. expired).
            return self._skipped(
                confirmed, confirmed.status, f"job was failed meanwhile ({confirmed.failure_reason_type})", config
            )
        return decision.model_copy(update={"job_status": confirmed.status})

    def _hand_on(
        self, job: ExportJob, config: CompanyConfiguration, decision: Decision, rerun: str | None, *, first_send: bool
    ) -> Decision:
        ready = ReadyJob(
            job_id=job.id,
            company_id=job.company_id,
            accounting_system=config.accounting_system,
            accounting_company_ref=config.accounting_company_ref,
            vendor_based_bookkeeping=job.vendor_based_bookkeeping,
            checks={o.check: o.facts for o in decision.checks},
        )
        try:
            self._hand_off.hand_off(ready.message(), deduplication_id=hand_off_deduplication_id(str(job.id), rerun))
        except HandOffNotSent:
            # SQS refused this one attempt: nothing was enqueued by it. Released (the next delivery
            # decides afresh) only when it was the decision's first send; a re-send finishing an
            # earlier delivery's decision proves nothing about that delivery's send, which may
            # have landed: the record stays (re-sent within the window, else hand_off_unknown).
            if first_send:
                self._decisions.release(str(job.id))
            raise
        return decision

    def _settle(self, held: tuple[str, float]) -> None:
        job_id, busy_until = held
        try:
            self._decisions.settle(job_id)
        except TransientError as error:
            # Acted on but not marked: a redelivery finishes it (failed: Pleo reads failed;
            # handed on: re-sent only within SQS's deduplication window, else sent to the DLQ),
            # at once rather than after this invocation has ended.
            logger.warning("could not mark the decision as acted on", extra={"error": str(error)})
            self._decisions.free(job_id, busy_until=busy_until)

    @staticmethod
    def _skipped(job: ExportJob, status: str, reason: str, config: CompanyConfiguration) -> Decision:
        return Decision(
            outcome="skipped",
            job_id=str(job.id),
            company_id=str(job.company_id),
            job_status=status,
            reason=reason,
            accounting_system=config.accounting_system,
        )

    def _configuration(self, company_id: UUID, message: ClaimedJobMessage) -> CompanyConfiguration:
        config = self._configurations.get(company_id)
        if config is not None and config.pleo_credentials_secret_id:
            problem = config.secret_id_problem("pleoCredentialsSecretId", self._secrets_prefix)
            if problem is not None:  # another company's secret, maybe: never read it
                raise UnprocessableMessage(
                    f"the configuration of company {company_id} is invalid: {problem}. Nothing was read with it "
                    "and nothing was done to the job; correct the configuration item, then redrive",
                    kind="invalid_configuration",
                )
            return config
        if company_id == message.company_id:
            raise UnprocessableMessage(
                f"no configuration with Pleo credentials for company {company_id}: the job "
                "cannot be read or failed; add the company configuration item, then redrive",
                kind="unknown_company",
            )
        raise UnprocessableMessage(
            f"the message names company {message.company_id}, but job {message.job_id} belongs to company "
            f"{company_id}, which has no configuration with Pleo credentials: nothing was done to the job; fix "
            "the claimer's routing or add that company's configuration item, then redrive",
            kind="company_mismatch",
        )

    def _job_and_connection(
        self, config: CompanyConfiguration, job_id: UUID
    ) -> tuple[PleoJobs, ExportJob | None, Connection]:
        """The job from Pleo and the company's accounting connection, read side by side: each
        begins with its own secret, so when neither is cached (a cold start, a company whose
        secrets' cache time has passed) the two reads take one round trip, not two. When both
        fail, the connection's error is raised, as when the connection came first."""
        secret_id = config.pleo_credentials_secret_id or ""
        connection, job_read = side_by_side(
            partial(self._connect_early, config), partial(self._read_job, secret_id, job_id), pool=self._executor
        )
        pleo, job = cast("tuple[PleoJobs, ExportJob | None]", job_read)
        return pleo, job, cast(Connection, connection)

    def _connect_early(self, config: CompanyConfiguration) -> Connection:
        connection = self._checks.connect(config)
        if connection.connector is not None and self._executor is not None:
            # Read-only and needed by every in-progress job: start it while Pleo answers.
            connection.prefetched = self._executor.submit(connection.connector.authenticate)
        return connection

    # ------------------------------------------------------------ steps

    def _read_job(self, secret_id: str, job_id: UUID) -> tuple[PleoJobs, ExportJob | None]:
        """Read the job; on rejected credentials, re-read the secret once (it may have been rotated)."""
        pleo = self._pleo.for_company(secret_id)
        try:
            return pleo, pleo.get_job(job_id)
        except UnprocessableMessage as error:
            if error.kind != "pleo_credentials_rejected":
                raise
        pleo = self._pleo.for_company(secret_id, refresh=True)
        return pleo, pleo.get_job(job_id)


def hand_off_deduplication_id(job_id: str, rerun: str | None) -> str:
    """The ready queue's MessageDeduplicationId of a decision's hand-off: the job id, or
    ``<job id>.<re-run token>`` for a decision made under a re-run."""
    return f"{job_id}.{rerun}" if rerun else job_id


def summarize(failures: list[CheckOutcome]) -> tuple[FailureReasonType, str]:
    """The first failure's type, and every failure's reason, most important first."""
    primary = failures[0]
    assert primary.reason_type is not None and primary.reason is not None
    reason = primary.reason
    others = list(dict.fromkeys(f.reason for f in failures[1:] if f.reason and f.reason != primary.reason))
    if others:
        reason = f"{reason} Also: {' '.join(others)}"
    return primary.reason_type, reason


def _give_up(error: TransientError) -> CheckOutcome:
    return CheckOutcome.failed(
        "retries_exhausted",
        error.reason_type,
        f"Preflight could not finish after several attempts: {error}. Nothing was exported; "
        "export again later, and contact support if this keeps happening.",
    )
