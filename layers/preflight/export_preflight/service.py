"""One claimed job, end to end: load the company's configuration (it names the Pleo
credentials), re-read the job from Pleo, run the checks, record the decision, then fail
the job early in Pleo or hand it on. And the same checks without a job (``check_company``,
a dry run: nothing is written to Pleo or handed on), for the readiness sweep and the
operator CLI. Free of Lambda glue and of adapters: it sees the ports of ``ports.py`` only."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, TypeVar
from uuid import UUID

from .checks import CHECKS, CheckReport, PreflightContext, run_checks
from .errors import (
    AccountingSystemError,
    AccountingSystemUnavailable,
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
    JobStatus,
    Readiness,
)
from .models import FailureReasonType as Reason
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
from .sanitize import sanitize_reason
from .settings import DEFAULT_SECRETS_PREFIX

T = TypeVar("T")
# The first steps of a decision: the job's configuration, Pleo for its company, the job and
# the accounting connection; or the decision to leave the job alone.
Prepared: TypeAlias = Decision | tuple[CompanyConfiguration, PleoJobs, ExportJob, Connection]
CHECK_ORDER = {check.name: index for index, check in enumerate(CHECKS)}
# Checks whose verdict depends on whether the job books vendors (``PreflightContext.vendor_job``:
# the scopes, capabilities, accounts and mappings it needs): a journal-only job's pass says
# nothing about the vendor side the sweep checks for a company with vendor bookkeeping.
VENDOR_SCOPED_CHECKS = frozenset({"permissions", "capabilities", "mapped_accounts", "mappings_complete"})
# A hand-off may be re-sent only while SQS still deduplicates it (5 minutes, with margin).
HAND_OFF_RESEND_SECONDS = 240
# A re-run may not remove a decision still ``acting`` younger than this: a delivery may yet
# finish it (re-send its hand-off within HAND_OFF_RESEND_SECONDS, and take up to one
# function timeout, 30 s, doing so).
RERUN_WAIT_SECONDS = HAND_OFF_RESEND_SECONDS + 30
# Pleo answered 404 for the job. A job we were just asked to check may not be readable yet
# (the claim stage saw it a moment ago): the 404 is believed from this delivery on (or on the
# last one), earlier ones are retried.
JOB_NOT_FOUND = "job not found in Pleo"
NOT_FOUND_BELIEVED_FROM_DELIVERY = 3


@dataclass(frozen=True)
class Attempt:
    """Where this delivery stands in the retry budget."""

    receive_count: int = 1
    max_receive_count: int = 5
    next_retry_in_seconds: int = 0

    @property
    def is_last_delivery(self) -> bool:
        return self.receive_count >= self.max_receive_count

    def is_last_for(self, job: ExportJob, now: datetime) -> bool:
        """Last chance: no delivery left, or the job would expire before the next one."""
        left = job.seconds_left(now)
        return self.is_last_delivery or (left is not None and left <= self.next_retry_in_seconds)


# A run with no retry to come (the CLI): whatever is unfinished is reported as such.
ONLY_ATTEMPT = Attempt(receive_count=1, max_receive_count=1)
# A job's readiness record is not written again within this time when nothing changed.
JOB_READINESS_UNCHANGED_SECONDS = 600
# Stands for the job in a dry run (no job): never sent anywhere.
NO_JOB = UUID(int=0)
GRANT_END_NOTICE_SECONDS = 90 * 86400
"""A grant's hard end (a provider's cap on one connection's life) is announced this long before."""


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
        self._connectors = connectors
        self._secrets = secrets
        self._hand_off = hand_off
        self._decisions = decisions
        self._readiness = readiness
        # company id -> (what its last job-recorded readiness said, when): see _record_job_readiness
        self._recorded: dict[str, tuple[object, float]] = {}
        self._executor = executor
        self._clock = clock
        # Credentials secrets are named <prefix><system>/<companyId> (README, "Secrets").
        self._secrets_prefix = secrets_prefix

    def prepare_soon(self, message: ClaimedJobMessage) -> Future[Prepared] | None:
        """Start the read-only first steps of ``decide`` (configuration, the job from Pleo,
        authentication) now, e.g. while the idempotency record is written; hand the result
        to ``decide``. Nothing is written by these steps. None without an executor."""
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

        ``prepared``: the first steps, started by ``prepare_soon``. ``pending``: when given,
        the writes that follow the action (marking the decision acted on, the readiness
        record) are left running there for the caller to wait for, so they overlap its own
        (e.g. the idempotency record's completion); otherwise they are waited for here."""
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
        report = self._run_checks(job, config, connection)
        failures = report.failures
        if not failures and report.errors:
            if not attempt.is_last_for(job, datetime.fromtimestamp(self._clock(), UTC)):
                raise _with_party(report.errors[0], config)
            failures = [_give_up(report.errors[0])]
        # The company's readiness, as this job found it: built and stored while the decision
        # is acted on (off the job's critical path).
        waits: list[Future[None]] = [] if pending is None else pending
        self._submit(self._record_job_readiness, (config, report, connection, str(job.id)), waits)
        try:
            return self._act(message, job, config, pleo, report, failures, waits)
        finally:
            if pending is None:
                for wait in waits:
                    wait.result()

    def _prepare(self, message: ClaimedJobMessage) -> Prepared:
        """The job as Pleo has it, in its own company's context, with that company's
        configuration and accounting connection; or the decision to leave it alone."""
        config = self._configuration(message.company_id, message)
        connection = self._connect_early(config)
        pleo, job = self._read_job(config.pleo_credentials_secret_id or "", message.job_id)
        if job is not None and job.company_id != message.company_id:
            logger.warning(
                "the message's companyId is not the job's; deciding in the job's company",
                extra={"message_company_id": str(message.company_id), "job_company_id": str(job.company_id)},
            )
            count("CompanyMismatch")
            logger.thread_safe_append_keys(company_id=str(job.company_id))
            config = self._configuration(job.company_id, message)
            connection = self._connect_early(config)
            pleo, job = self._read_job(config.pleo_credentials_secret_id or "", message.job_id)
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
    ) -> Decision:
        intended = self._intended(job, config, report, failures)
        decision, act, rerun = self._claim(intended, message.rerun)
        if not act:
            return decision
        if decision.outcome == "failed_early":
            decided = self._fail(pleo, job, decision, config)
        else:
            # ``decision is intended``: this delivery claimed it; otherwise it finishes one an
            # earlier delivery recorded, whose own send may have landed.
            decided = self._hand_on(job, config, decision, rerun, first_send=decision is intended)
        self._submit(self._settle, str(job.id), waits)
        return decided

    def preview(self, message: ClaimedJobMessage) -> Decision:
        """What ``decide`` would decide for the job now, without acting on it: nothing is
        recorded, posted to Pleo or handed on (the CLI's ``job --dry-run``). Transient
        trouble raises ``TransientError``."""
        prepared = self._prepare(message)
        if isinstance(prepared, Decision):
            return prepared
        config, _, job, connection = prepared
        report = self._run_checks(job, config, connection)
        if not report.failures and report.errors:
            raise _with_party(report.errors[0], config)
        return self._intended(job, config, report, report.failures)

    def read_job(self, company_id: UUID, job_id: UUID) -> ExportJob | None:
        """The job as Pleo has it, read with its company's credentials (the CLI's ``rerun``)."""
        config = self._configuration(company_id, ClaimedJobMessage(jobId=job_id, companyId=company_id))
        return self._read_job(config.pleo_credentials_secret_id or "", job_id)[1]

    # ------------------------------------------------------------ readiness (no job)

    def check_company(
        self,
        company_id: UUID,
        *,
        attempt: Attempt = ONLY_ATTEMPT,
        source: Literal["sweep", "cli"] = "cli",
        keep_alive_seconds: float | None = None,
        record: bool = True,
    ) -> Readiness:
        """Every check for a company, without a job (a dry run): nothing is written to Pleo
        or handed on. What a job would bring comes from the configuration: vendor
        bookkeeping is checked when the company has it enabled ("if a job needs it"),
        receipts when it exports them. Same checks, reason types and texts as for a job.

        Transient trouble raises ``TransientError`` unless this is the last attempt; then
        the readiness is ``unknown``. ``keep_alive_seconds``: refresh an OAuth grant that
        would lapse from disuse within that time. ``record``: store the result."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            config = self._configurations.get(company_id)
        except UnprocessableMessage as error:  # a malformed item: the company is not ready
            readiness = _configuration_problem(company_id, Reason.INVALID_CONFIGURATION, error.reason, now, source)
            if record:
                self._record_readiness(readiness)
            return readiness
        if config is None:
            if record:  # the company was removed: its last readiness is no longer true
                self._forget_readiness(company_id)
            return _configuration_problem(
                company_id,
                Reason.MISSING_CONFIGURATION,
                f"No integration configuration exists for company {company_id}",
                now,
                source,
            )
        problem = config.secret_id_problem("pleoCredentialsSecretId", self._secrets_prefix)
        if problem is not None:  # never read another company's secret
            readiness = _configuration_problem(
                company_id, Reason.INVALID_CONFIGURATION, f"the configuration is invalid: {problem}", now, source
            )
            if record:
                self._record_readiness(readiness)
            return readiness
        job = ExportJob(
            id=NO_JOB,
            company_id=company_id,
            status=JobStatus.IN_PROGRESS,
            vendor_based_bookkeeping=config.vendor_bookkeeping_enabled,
        )
        connection = self._connect(config)
        report = self._run_checks(job, config, connection)
        if report.errors and not report.failures and not attempt.is_last_delivery:
            raise _with_party(report.errors[0], config)
        readiness = self._readiness_of(config, report, connection, source=source, keep_alive=keep_alive_seconds)
        if record:
            self._record_readiness(readiness)
        return readiness

    def _readiness_of(
        self,
        config: CompanyConfiguration,
        report: CheckReport,
        connection: Connection,
        *,
        source: Literal["sweep", "job", "cli"],
        keep_alive: float | None,
        job_id: str | None = None,
    ) -> Readiness:
        secrets = self._secret_values(config)
        unfinished = [
            CheckOutcome.failed(name, error.reason_type, f"could not finish: {error}")
            for name, error in zip(report.unfinished, report.errors, strict=True)
        ]
        # every outcome redacted (reasons and facts) before it is stored or shown
        checks = [redact(outcome, secrets) for outcome in (*report.outcomes, *unfinished)]
        problems = [outcome for outcome in checks if outcome.status == "failed"]  # failures, then unfinished
        lapses_at, renewed, ends_at = self._grant_lapse(connection, report, keep_alive)
        notices = [
            notice
            for outcome in report.outcomes
            if outcome.status == "passed"
            for notice in outcome.facts.get("notices", ())
        ]
        if ends_at is not None and ends_at.timestamp() - self._clock() < GRANT_END_NOTICE_SECONDS:
            system = connection.connector.display_name if connection.connector else config.accounting_system
            day = ends_at.date().isoformat()
            notices.insert(
                0,
                f"The {system} connection ends for good on {day}: {system} limits how long one connection lasts, "
                f"and using it cannot extend that. Reconnect {system} in the integration settings before {day}.",
            )
        return Readiness(
            company_id=str(config.company_id),
            status="not_ready" if report.failures else "unknown" if unfinished else "ready",
            accounting_system=config.accounting_system,
            display_name=config.display_name,
            problems=problems,
            # every check in order; an unfinished one as its problem
            checks=sorted(checks, key=lambda o: CHECK_ORDER.get(o.check, len(CHECK_ORDER))),
            checked_at=datetime.fromtimestamp(self._clock(), UTC),
            source=source,
            job_id=job_id,
            grant_lapses_at=lapses_at,
            grant_renewed=renewed,
            grant_ends_at=ends_at,
            notices=[sanitize_reason(notice, secrets) for notice in notices],
        )

    def _grant_lapse(
        self, connection: Connection, report: CheckReport, keep_alive: float | None
    ) -> tuple[datetime | None, bool, datetime | None]:
        """When the connection's OAuth grant would lapse (from disuse, or at its hard end if that
        comes first), whether it was renewed, and its hard end. Renewed first when the lapse
        from disuse is within ``keep_alive`` seconds (the sweep keeps grants alive until the
        next one); never to pass the hard end, which no refresh extends."""
        grant = connection.connector.grant if connection.connector is not None else None
        idle = connection.refresh_token_idle_seconds
        if grant is None or idle is None or not report.passed("authentication"):
            return None, False, None
        renewed = False
        try:
            ends = grant.hard_expires_at()
            lapses = grant.last_refreshed_at() + idle
            if keep_alive is not None and lapses - self._clock() < keep_alive and (ends is None or ends > lapses):
                logger.info("refreshing an OAuth grant before it lapses from disuse", extra={"lapses_at": lapses})
                grant.renew()
                renewed = True
                lapses = grant.last_refreshed_at() + idle
                ends = grant.hard_expires_at()
        except (TransientError, AccountingSystemError) as error:
            logger.warning(
                "could not keep the OAuth grant alive; the next sweep tries again", extra={"error": str(error)}
            )
            return None, renewed, None
        ends_at = datetime.fromtimestamp(ends, UTC) if ends is not None else None
        return datetime.fromtimestamp(min(lapses, ends if ends is not None else lapses), UTC), renewed, ends_at

    def _record_job_readiness(self, found: tuple[CompanyConfiguration, CheckReport, Connection, str]) -> None:
        """Record what a job found, unless this container recorded the same for the company
        within ``JOB_READINESS_UNCHANGED_SECONDS`` (a busy company's jobs would otherwise
        each write the same record).

        A job changes only what it checked: a journal-only job of a company with vendor
        bookkeeping enabled did not look at the vendor side (bills, the payables account,
        their scopes), so its record is merged with the company's last one (see
        ``_merged_with_last``)."""
        config, report, connection, job_id = found
        try:
            readiness = self._readiness_of(config, report, connection, source="job", job_id=job_id, keep_alive=None)
            same = (readiness.status, tuple((p.check, p.reason_type, p.reason) for p in readiness.problems))
            last = self._recorded.get(readiness.company_id)
            now = self._clock()
            if last is not None and last[0] == same and now - last[1] < JOB_READINESS_UNCHANGED_SECONDS:
                return
            if config.vendor_bookkeeping_enabled and _journal_only(report):
                readiness = self._merged_with_last(readiness)
        except Exception as error:  # the readiness record must never cost a decision
            logger.warning("could not record the company's readiness", extra={"error": str(error)})
            return
        self._record_readiness(readiness)
        self._recorded[readiness.company_id] = (same, now)

    def _merged_with_last(self, readiness: Readiness) -> Readiness:
        """A narrower job's readiness merged with the company's last record: a scope-dependent
        check (``VENDOR_SCOPED_CHECKS``) the job passed keeps the last record's failure (the
        job could not see it: e.g. the missing bills scope); everything else is the job's.
        A failure kept this way is cleared by the next sweep or ``check``, which look at the
        company's full scope."""
        last = self._readiness.last(readiness.company_id)
        if last is None:
            return readiness
        kept = {
            c.check: c
            for c in last.checks
            if c.status == "failed" and c.check in VENDOR_SCOPED_CHECKS and not _unfinished(c)
        }
        checks = [kept.get(c.check, c) if c.status == "passed" else c for c in readiness.checks]
        if checks == readiness.checks:
            return readiness
        failed = [c for c in checks if c.status == "failed" and not _unfinished(c)]
        unfinished = [c for c in checks if c.status == "failed" and _unfinished(c)]
        return readiness.model_copy(
            update={
                "checks": checks,
                "problems": [*failed, *unfinished],
                "status": "not_ready" if failed else "unknown" if unfinished else "ready",
            }
        )

    def _forget_readiness(self, company_id: UUID) -> None:
        try:
            self._readiness.forget(str(company_id))
        except Exception as error:  # best effort: the sweep removes it too
            logger.warning("could not remove the company's readiness", extra={"error": str(error)})

    def _record_readiness(self, readiness: Readiness) -> None:
        try:
            self._readiness.record(readiness)
        except Exception as error:  # the readiness record must never cost a decision
            logger.warning("could not record the company's readiness", extra={"error": str(error)})

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
        secrets = self._secret_values(config)
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

    def _claim(self, intended: Decision, rerun: str | None) -> tuple[Decision, bool, str | None]:
        """The decision to act on: ours, or the one a previous delivery recorded and may not
        have finished acting on; with False when the job was decided and acted on before (a
        duplicate or a redrive): then the recorded decision stands and nothing is done again.
        And the re-run token the decision was made under: finishing a recorded decision
        re-sends its hand-off under the deduplication id it was first sent with, whichever
        message (the original or a re-run's) delivers the job now."""
        existing = self._decisions.claim(intended, rerun=rerun)
        if existing is None:
            return intended, True, rerun
        decision, state, claimed_at, rerun = existing
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
                "job; if it never arrived, re-run preflight for it (README, 'Re-running one job')",
                kind="hand_off_unknown",
            )
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
        payload: dict[str, object] = {
            "jobId": str(job.id),
            "companyId": str(job.company_id),
            "accountingSystem": config.accounting_system,
            "accountingCompanyRef": config.accounting_company_ref,
            "vendorBasedBookkeeping": job.vendor_based_bookkeeping,
            "checks": {o.check: o.facts for o in decision.checks},
        }
        try:
            self._hand_off.hand_off(payload, deduplication_id=hand_off_deduplication_id(str(job.id), rerun))
        except HandOffNotSent:
            # SQS refused this one attempt: nothing was enqueued by it. Released (the next delivery
            # decides afresh) only when it was the decision's first send; a re-send finishing an
            # earlier delivery's decision proves nothing about that delivery's send, which may
            # have landed: the record stays (re-sent within the window, else hand_off_unknown).
            if first_send:
                self._decisions.release(str(job.id))
            raise
        return decision

    def _settle(self, job_id: str) -> None:
        try:
            self._decisions.settle(job_id)
        except TransientError as error:
            # Acted on but not marked: a redelivery finishes it (failed: Pleo reads failed;
            # handed on: re-sent only within SQS's deduplication window, else sent to the DLQ).
            logger.warning("could not mark the decision as acted on", extra={"error": str(error)})

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

    def _connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        """The accounting connection, unless the configuration names a credentials secret
        that is not this company's own: then ``connection_settings`` fails with
        ``invalid_configuration`` and the secret is never read."""
        problem = config.secret_id_problem("accountingCredentialsSecretId", self._secrets_prefix)
        if problem is None:
            return self._connectors.connect(config, refresh=refresh)
        return Connection(
            None,
            CheckOutcome.failed(
                "connection_settings",
                Reason.INVALID_CONFIGURATION,
                f"The integration settings for this company are invalid: {problem}. Correct the company "
                "configuration, then export again.",
            ),
        )

    def _secret_values(self, config: CompanyConfiguration) -> list[str]:
        """The company's known secret values, to redact them: only from secrets that are its own."""
        fields = (
            ("pleoCredentialsSecretId", config.pleo_credentials_secret_id),
            ("accountingCredentialsSecretId", config.accounting_credentials_secret_id),
        )
        return self._secrets.known_values(
            [i for f, i in fields if i and config.secret_id_problem(f, self._secrets_prefix) is None]  # type: ignore[arg-type]
        )

    def _connect_early(self, config: CompanyConfiguration) -> Connection:
        connection = self._connect(config)
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

    def _run_checks(self, job: ExportJob, config: CompanyConfiguration, connection: Connection) -> CheckReport:
        ctx = PreflightContext(job=job, config=config, connection=connection)
        report = run_checks(ctx, CHECKS, self._executor)
        if connection.reread_on_rejection and _credentials_rejected(report):
            # The cached secret may be stale (rotated since): re-read it once and re-run.
            ctx = PreflightContext(job=job, config=config, connection=self._connect(config, refresh=True))
            report = run_checks(ctx, CHECKS, self._executor)
        return report


def hand_off_deduplication_id(job_id: str, rerun: str | None) -> str:
    """The ready queue's MessageDeduplicationId of a decision's hand-off: the job id, or
    ``<job id>.<re-run token>`` for a decision made under a re-run."""
    return f"{job_id}.{rerun}" if rerun else job_id


def _credentials_rejected(report: CheckReport) -> bool:
    return any(
        f.check == "authentication" and f.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
        for f in report.failures
    )


def _journal_only(report: CheckReport) -> bool:
    """The checks ran for a journal-only job (not the vendor side)."""
    return any(o.check == "bookkeeping_mode" and o.facts.get("mode") == "journal" for o in report.outcomes)


def _unfinished(outcome: CheckOutcome) -> bool:
    return (outcome.reason or "").startswith("could not finish")


def redact(outcome: CheckOutcome, secrets: list[str]) -> CheckOutcome:
    """The outcome as it may be stored or shown: its reason and every string in its facts
    sanitised (``sanitize_reason``, with the company's known secret values)."""
    reason = sanitize_reason(outcome.reason, secrets) if outcome.reason is not None else None
    return outcome.model_copy(update={"reason": reason, "facts": _redact_fact(outcome.facts, secrets)})


def _redact_fact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return sanitize_reason(value, secrets)
    if isinstance(value, dict):
        return {key: _redact_fact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_fact(item, secrets) for item in value]
    return value


def summarize(failures: list[CheckOutcome]) -> tuple[FailureReasonType, str]:
    """The first failure's type, and every failure's reason, most important first."""
    primary = failures[0]
    assert primary.reason_type is not None and primary.reason is not None
    reason = primary.reason
    others = list(dict.fromkeys(f.reason for f in failures[1:] if f.reason and f.reason != primary.reason))
    if others:
        reason = f"{reason} Also: {' '.join(others)}"
    return primary.reason_type, reason


def _configuration_problem(
    company_id: UUID, reason_type: FailureReasonType, problem: str, now: datetime, source: Literal["sweep", "cli"]
) -> Readiness:
    return Readiness(
        company_id=str(company_id),
        status="not_ready",
        problems=[
            CheckOutcome.failed(
                "configuration",
                reason_type,
                f"{problem[0].upper()}{problem[1:]}. Correct the company configuration item "
                "(export-preflight config validate, then config put), then check again.",
            )
        ],
        checked_at=now,
        source=source,
    )


def _with_party(error: TransientError, config: CompanyConfiguration) -> TransientError:
    """Name the company's accounting system as the party in trouble (for metrics)."""
    if isinstance(error, AccountingSystemUnavailable) and config.accounting_system:
        error.party = config.accounting_system
    return error


def _give_up(error: TransientError) -> CheckOutcome:
    return CheckOutcome.failed(
        "retries_exhausted",
        error.reason_type,
        f"Preflight could not finish after several attempts: {error}. Nothing was exported; "
        "export again later, and contact support if this keeps happening.",
    )
