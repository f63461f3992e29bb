"""A company's readiness: every check without a job (``check``, a dry run for the readiness
sweep and the operator CLI: nothing is written to Pleo or handed on), and the readiness a
job's checks showed (``record_job``); OAuth grants kept alive before they lapse from disuse.
Free of Lambda glue and of adapters: it sees the ports of ``ports.py`` only."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from .checks import CHECKS
from .company_checks import ONLY_ATTEMPT, Attempt, CompanyChecks, blame_accounting_system, is_unfinished, redact
from .engine import CheckReport
from .errors import AccountingSystemError, TransientError, UnprocessableMessage
from .models import CheckOutcome, CompanyConfiguration, ExportJob, FailureReasonType, JobStatus, Readiness
from .models import FailureReasonType as Reason
from .observability import logger
from .ports import ConfigurationSource, Connection, ReadinessLog
from .sanitize import sanitize_reason
from .settings import DEFAULT_SECRETS_PREFIX

CHECK_ORDER = {check.name: index for index, check in enumerate(CHECKS)}
# Checks whose verdict depends on whether the job books vendors (``PreflightContext.vendor_job``:
# the scopes, capabilities, accounts and mappings it needs): a journal-only job's pass says
# nothing about the vendor side the sweep checks for a company with vendor bookkeeping.
VENDOR_SCOPED_CHECKS = frozenset({"permissions", "capabilities", "mapped_accounts", "mappings_complete"})
# A job's readiness record is not written again within this time when nothing changed.
JOB_READINESS_UNCHANGED_SECONDS = 600
# Stands for the job in a dry run (no job): never sent anywhere.
NO_JOB = UUID(int=0)
GRANT_END_NOTICE_SECONDS = 90 * 86400
"""A grant's hard end (a provider's cap on one connection's life) is announced this long before."""


class CompanyReadiness:
    """Whether a company could export now, and its last known readiness kept true."""

    def __init__(
        self,
        *,
        configurations: ConfigurationSource,
        checks: CompanyChecks,
        readiness: ReadinessLog,
        clock: Callable[[], float] = time.time,
        secrets_prefix: str = DEFAULT_SECRETS_PREFIX,
    ) -> None:
        self._configurations = configurations
        self._checks = checks
        self._readiness = readiness
        # company id -> (what its last job-recorded readiness said, when): see record_job
        self._recorded: dict[str, tuple[object, float]] = {}
        self._clock = clock
        self._secrets_prefix = secrets_prefix

    def check(
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
                self._record(readiness)
            return readiness
        if config is None:
            if record:  # the company was removed: its last readiness is no longer true
                self._forget(company_id)
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
                self._record(readiness)
            return readiness
        job = ExportJob(
            id=NO_JOB,
            company_id=company_id,
            status=JobStatus.IN_PROGRESS,
            vendor_based_bookkeeping=config.vendor_bookkeeping_enabled,
        )
        connection = self._checks.connect(config)
        report = self._checks.run(job, config, connection)
        if report.errors and not report.failures and not attempt.is_last_delivery:
            raise blame_accounting_system(report.errors[0], config)
        readiness = self._readiness_of(config, report, connection, source=source, keep_alive=keep_alive_seconds)
        if record:
            self._record(readiness)
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
        secrets = self._checks.secret_values(config)
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

    def record_job(self, found: tuple[CompanyConfiguration, CheckReport, Connection, str]) -> None:
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
        self._record(readiness)
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
            if c.status == "failed" and c.check in VENDOR_SCOPED_CHECKS and not is_unfinished(c)
        }
        checks = [kept.get(c.check, c) if c.status == "passed" else c for c in readiness.checks]
        if checks == readiness.checks:
            return readiness
        failed = [c for c in checks if c.status == "failed" and not is_unfinished(c)]
        unfinished = [c for c in checks if c.status == "failed" and is_unfinished(c)]
        return readiness.model_copy(
            update={
                "checks": checks,
                "problems": [*failed, *unfinished],
                "status": "not_ready" if failed else "unknown" if unfinished else "ready",
            }
        )

    def _forget(self, company_id: UUID) -> None:
        try:
            self._readiness.forget(str(company_id))
        except Exception as error:  # best effort: the sweep removes it too
            logger.warning("could not remove the company's readiness", extra={"error": str(error)})

    def _record(self, readiness: Readiness) -> None:
        try:
            self._readiness.record(readiness)
        except Exception as error:  # the readiness record must never cost a decision
            logger.warning("could not record the company's readiness", extra={"error": str(error)})


def _journal_only(report: CheckReport) -> bool:
    """The checks ran for a journal-only job (not the vendor side)."""
    return any(o.check == "bookkeeping_mode" and o.facts.get("mode") == "journal" for o in report.outcomes)


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
