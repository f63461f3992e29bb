"""One claimed job, end to end: re-read it, load its configuration and credentials,
run the checks, then fail it early in Pleo or hand it on. Free of Lambda glue."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import httpx

from .checks import CHECKS, CheckReport, Connection, PreflightContext, run_checks
from .connectors import CONNECTORS, ConnectorEnvironment
from .connectors.base import CredentialLoader
from .errors import CredentialsMissing, CredentialsUnreadable, TransientError, UnprocessableMessage
from .models import (
    CheckOutcome,
    ClaimedJobMessage,
    CompanyConfiguration,
    Decision,
    ExportJob,
    FailureReasonType,
    PleoCredentials,
)
from .models import FailureReasonType as Reason
from .oauth import OAuthTokens, TokenEndpoint
from .observability import logger
from .pleo import PleoAuthorization, PleoClient
from .sanitize import sanitize_reason


class ConfigurationSource(Protocol):
    def get(self, company_id: UUID) -> CompanyConfiguration | None: ...


class CredentialSource(CredentialLoader, Protocol):
    def pleo(self, secret_id: str, *, refresh: bool = False) -> PleoCredentials: ...


class HandOff(Protocol):
    def hand_off(self, payload: dict[str, object]) -> str: ...


@dataclass(frozen=True)
class Attempt:
    """Where this delivery stands in the retry budget."""

    receive_count: int = 1
    max_receive_count: int = 5
    next_retry_in_seconds: int = 0

    @property
    def is_last_delivery(self) -> bool:
        return self.receive_count >= self.max_receive_count

    def is_last_for(self, job: ExportJob) -> bool:
        """Last chance: no delivery left, or the job would expire before the next one."""
        expires_first = job.expires_in is not None and job.expires_in <= self.next_retry_in_seconds
        return self.is_last_delivery or expires_first


class PreflightService:
    """Decides one claimed job. Transient trouble raises ``TransientError`` (retry)."""

    def __init__(
        self,
        *,
        configurations: ConfigurationSource,
        credentials: CredentialSource,
        hand_off: HandOff,
        pleo_http: httpx.Client,
        pleo_oauth: tuple[OAuthTokens, TokenEndpoint] | None = None,
        connectors: ConnectorEnvironment,
        executor: Executor | None,
    ) -> None:
        self._configurations = configurations
        self._credentials = credentials
        self._hand_off = hand_off
        self._pleo_http = pleo_http
        self._pleo_oauth = pleo_oauth
        self._connectors = connectors
        self._executor = executor

    def decide(self, message: ClaimedJobMessage, *, attempt: Attempt) -> Decision:
        """Run preflight for one message. On the last attempt (see ``Attempt.is_last_for``),
        transient accounting-system trouble fails the job with the most precise reason
        instead of leaving it ``in_progress`` until it expires."""
        config = self._configurations.get(message.company_id)
        if config is None or not config.pleo_credentials_secret_id:
            raise UnprocessableMessage(
                f"no configuration with Pleo credentials for company {message.company_id}: the job "
                "cannot be read or failed; add the company configuration item, then redrive",
                kind="unknown_company",
            )
        connection = self._connect(config)
        if connection.connector is not None and self._executor is not None:
            # Read-only and needed by every in-progress job: start it while Pleo answers.
            connection.prefetched = self._executor.submit(connection.connector.authenticate)
        pleo, job = self._read_job(config.pleo_credentials_secret_id, message.job_id)
        if job is None:
            logger.warning("export job not found in Pleo", extra={"job_id": str(message.job_id)})
            return Decision(
                outcome="skipped",
                job_id=str(message.job_id),
                company_id=str(message.company_id),
                reason="job not found in Pleo",
            )
        if not job.in_progress:
            logger.info("job is no longer in progress; leaving it alone", extra={"job_status": job.status})
            return Decision(
                outcome="skipped",
                job_id=str(job.id),
                company_id=str(job.company_id),
                job_status=job.status,
                reason=f"job is {job.status}",
            )

        report = self._run_checks(message, job, config, connection)
        failures = report.failures
        if not failures and report.errors:
            if not attempt.is_last_for(job):
                raise report.errors[0]
            failures = [_give_up(report.errors[0])]
        if failures:
            reason_type, reason = summarize(failures)
            confirmed = pleo.fail_job(job.id, reason_type, reason)
            if confirmed.failure_reason_type not in (None, reason_type.value):
                # Our event met a 422: the job had been failed meanwhile (e.g. expired).
                return Decision(
                    outcome="skipped",
                    job_id=str(job.id),
                    company_id=str(job.company_id),
                    job_status=confirmed.status,
                    reason=f"job was failed meanwhile ({confirmed.failure_reason_type})",
                )
            return Decision(
                outcome="failed_early",
                job_id=str(job.id),
                company_id=str(job.company_id),
                reason_type=reason_type,
                reason=sanitize_reason(reason),
                job_status=confirmed.status,
                checks=list(report.outcomes),
            )
        self._hand_off.hand_off(
            {
                "jobId": str(job.id),
                "companyId": str(job.company_id),
                "accountingSystem": config.accounting_system,
                "accountingCompanyRef": config.accounting_company_ref,
                "vendorBasedBookkeeping": job.vendor_based_bookkeeping,
                "checks": {o.check: o.facts for o in report.outcomes},
            }
        )
        return Decision(
            outcome="handed_off",
            job_id=str(job.id),
            company_id=str(job.company_id),
            job_status=job.status,
            checks=list(report.outcomes),
        )

    # ------------------------------------------------------------ steps

    def _read_job(self, secret_id: str, job_id: UUID) -> tuple[PleoClient, ExportJob | None]:
        """Read the job; on rejected credentials, re-read the secret once (it may have been rotated)."""
        pleo = self._pleo(secret_id)
        try:
            return pleo, pleo.get_job(job_id)
        except UnprocessableMessage as error:
            if error.kind != "pleo_credentials_rejected":
                raise
        pleo = self._pleo(secret_id, refresh=True)
        return pleo, pleo.get_job(job_id)

    def _pleo(self, secret_id: str, *, refresh: bool = False) -> PleoClient:
        try:
            credentials = self._credentials.pleo(secret_id, refresh=refresh)
            return PleoClient(
                self._pleo_http, PleoAuthorization(credentials, secret_id=secret_id, oauth=self._pleo_oauth)
            )
        except (CredentialsMissing, CredentialsUnreadable) as error:
            state = "missing" if isinstance(error, CredentialsMissing) else "unreadable"
            raise UnprocessableMessage(
                f"the company's Pleo credentials secret is {state}: the job cannot be read or failed; "
                "fix the secret, then redrive",
                kind="pleo_credentials_unusable",
            ) from None

    def _run_checks(
        self, message: ClaimedJobMessage, job: ExportJob, config: CompanyConfiguration, connection: Connection
    ) -> CheckReport:
        ctx = PreflightContext(message=message, job=job, config=config, connection=connection)
        report = run_checks(ctx, CHECKS, self._executor)
        spec = CONNECTORS.get(config.accounting_system or "")
        if spec is not None and spec.reread_on_rejection and _credentials_rejected(report):
            # The cached secret may be stale (rotated since): re-read it once and re-run.
            ctx = PreflightContext(
                message=message, job=job, config=config, connection=self._connect(config, refresh=True)
            )
            report = run_checks(ctx, CHECKS, self._executor)
        return report

    def _connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        system = config.accounting_system
        spec = CONNECTORS.get(system or "")
        if not system or not config.accounting_company_ref or not config.accounting_credentials_secret_id:
            missing = [
                label
                for label, value in (
                    ("accounting system (accountingSystem)", system),
                    ("accounting company (accountingCompanyRef)", config.accounting_company_ref),
                    ("accounting credentials (accountingCredentialsSecretId)", config.accounting_credentials_secret_id),
                )
                if not value
            ]
            return Connection(
                None,
                CheckOutcome.failed(
                    "connection_settings",
                    Reason.MISSING_CONFIGURATION,
                    f"No accounting system is connected for this company: {', '.join(missing)} not set. "
                    "Connect the accounting system in the integration settings, then export again.",
                ),
            )
        if spec is None:
            return Connection(
                None,
                CheckOutcome.failed(
                    "connection_settings",
                    Reason.INVALID_CONFIGURATION,
                    f"The integration does not support the accounting system {system!r} configured for this "
                    f"company (supported: {', '.join(sorted(CONNECTORS))}). Correct the accounting system in "
                    "the integration settings, then export again.",
                ),
            )
        try:
            connector = spec.create(self._connectors, config, refresh)
        except CredentialsMissing:
            return Connection(
                None,
                CheckOutcome.failed(
                    "connection_settings",
                    Reason.MISSING_CONFIGURATION,
                    f"The {spec.display_name} credentials for this company are not set up. Connect "
                    f"{spec.display_name} in the integration settings, then export again.",
                ),
            )
        except CredentialsUnreadable:
            logger.error(
                "accounting credentials secret is unreadable",
                extra={"secret_id": config.accounting_credentials_secret_id},
            )
            return Connection(
                None,
                CheckOutcome.failed(
                    "connection_settings",
                    Reason.INVALID_CONFIGURATION,
                    f"The stored {spec.display_name} credentials for this company are unreadable. Reconnect "
                    f"{spec.display_name} in the integration settings, then export again.",
                ),
            )
        return Connection(connector)


def _credentials_rejected(report: CheckReport) -> bool:
    return any(
        f.check == "authentication" and f.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
        for f in report.failures
    )


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
