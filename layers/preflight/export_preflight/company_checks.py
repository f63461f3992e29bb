"""What deciding a job (service.py) and computing a company's readiness (readiness.py) share:
where a delivery stands in its retry budget (``Attempt``), and a company's checks
(``CompanyChecks``): its accounting connection, the checks run over it, and its own secret
values, with which every outcome stored or shown is redacted (``redact``)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .checks import CHECKS, PreflightContext
from .engine import CheckReport, run_checks
from .errors import AccountingSystemUnavailable, TransientError
from .models import CheckOutcome, CompanyConfiguration, ExportJob
from .models import FailureReasonType as Reason
from .ports import Connection, ConnectorFactory, SecretValues
from .sanitize import sanitize_reason
from .settings import DEFAULT_SECRETS_PREFIX


@dataclass(frozen=True)
class Attempt:
    """Where this delivery stands in the retry budget."""

    receive_count: int = 1
    max_receive_count: int = 5
    next_retry_in_seconds: int = 0
    # When this delivery's invocation ends (epoch seconds; None: not known): until then it
    # holds the decision it claims, and no other delivery acts on it.
    busy_until: float | None = None

    @property
    def is_last_delivery(self) -> bool:
        return self.receive_count >= self.max_receive_count

    def is_last_for(self, job: ExportJob, now: datetime) -> bool:
        """Last chance: no delivery left, or the job would expire before the next one."""
        left = job.seconds_left(now)
        return self.is_last_delivery or (left is not None and left <= self.next_retry_in_seconds)


# A run with no retry to come (the CLI): whatever is unfinished is reported as such.
ONLY_ATTEMPT = Attempt(receive_count=1, max_receive_count=1)


class CompanyChecks:
    """The checks for one company's configuration: its accounting connection (never with a
    credentials secret that is not the company's own), the checks run over it, and the
    company's known secret values."""

    def __init__(
        self,
        *,
        connectors: ConnectorFactory,
        secrets: SecretValues,
        executor: Executor | None,
        secrets_prefix: str = DEFAULT_SECRETS_PREFIX,
    ) -> None:
        self._connectors = connectors
        self._secrets = secrets
        self._executor = executor
        # Credentials secrets are named <prefix><system>/<companyId> (docs/contracts.md, "Secrets").
        self._secrets_prefix = secrets_prefix

    def connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
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

    def run(self, job: ExportJob, config: CompanyConfiguration, connection: Connection) -> CheckReport:
        """Every check for ``job`` in the company's context."""
        ctx = PreflightContext(job=job, config=config, connection=connection)
        report = run_checks(ctx, CHECKS, self._executor)
        if connection.reread_on_rejection and _credentials_rejected(report):
            # The cached secret may be stale (rotated since): re-read it once and re-run.
            ctx = PreflightContext(job=job, config=config, connection=self.connect(config, refresh=True))
            report = run_checks(ctx, CHECKS, self._executor)
        return report

    def secret_values(self, config: CompanyConfiguration) -> list[str]:
        """The company's known secret values, to redact them: only from secrets that are its own."""
        fields = (
            ("pleoCredentialsSecretId", config.pleo_credentials_secret_id),
            ("accountingCredentialsSecretId", config.accounting_credentials_secret_id),
        )
        return self._secrets.known_values(
            [i for f, i in fields if i and config.secret_id_problem(f, self._secrets_prefix) is None]  # type: ignore[arg-type]
        )


def _credentials_rejected(report: CheckReport) -> bool:
    return any(
        f.check == "authentication" and f.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
        for f in report.failures
    )


def is_unfinished(outcome: CheckOutcome) -> bool:
    """The outcome stands for a check that could not finish (transient trouble)."""
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


def blame_accounting_system(error: TransientError, config: CompanyConfiguration) -> TransientError:
    """Name the company's accounting system as the remote system at fault (for metrics)."""
    if isinstance(error, AccountingSystemUnavailable) and config.accounting_system:
        error.remote = config.accounting_system
    return error
