"""The ports the service depends on: small interfaces, implemented by adapters (``pleo``,
``connectors``, ``aws``) that only ``runtime`` wires together, and by in-memory fakes in
the unit tests."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol
from uuid import UUID

from .connectors.base import JOURNAL_MAPPINGS, AccountingConnector, ConnectionProfile
from .errors import TransientError
from .models import CheckOutcome, CompanyConfiguration, Decision, ExportJob, FailureReasonType, Readiness


class ConfigurationSource(Protocol):
    def get(self, company_id: UUID) -> CompanyConfiguration | None: ...


class PleoJobs(Protocol):
    """One company's view of Pleo: read a job, fail it and confirm."""

    def get_job(self, job_id: UUID) -> ExportJob | None:
        """The job, or None when Pleo does not know it."""
        ...

    def fail_job(self, job_id: UUID, reason_type: FailureReasonType, reason: str) -> ExportJob:
        """Post ``failed`` and return the job as re-read afterwards."""
        ...


class PleoAccess(Protocol):
    def for_company(self, secret_id: str, *, refresh: bool = False) -> PleoJobs:
        """Pleo with the credentials under ``secret_id`` (``refresh``: re-read the secret).
        Raises ``UnprocessableMessage`` when they are missing or unreadable."""
        ...


@dataclass(frozen=True)
class Requirements:
    """What the connected system needs configured: (attribute, label) pairs of mappings,
    and the configuration fields it wants as numbers."""

    mappings: tuple[tuple[str, str], ...] = JOURNAL_MAPPINGS
    vendor_mappings: tuple[tuple[str, str], ...] = ()
    numeric_fields: frozenset[str] = frozenset()


@dataclass
class Connection:
    """The accounting-system connection set up for one job, or why there is none.

    ``prefetched`` is an authentication already under way (started while the job was
    being read from Pleo, to take one round trip off the critical path).
    """

    connector: AccountingConnector | None
    problem: CheckOutcome | None = None
    prefetched: Future[ConnectionProfile] | None = None
    requirements: Requirements = field(default_factory=Requirements)
    # Our own side cannot build this connector now (e.g. its settings are invalid): the
    # ``connection_settings`` check raises it, so it is retried like transient trouble.
    unavailable: TransientError | None = None
    # Re-read the secret and re-run once when the credentials are rejected (static
    # credentials may have been rotated meanwhile; OAuth connectors re-read under their lease).
    reread_on_rejection: bool = False
    # OAuth: seconds a refresh token may go unused before it lapses (see ConnectorSpec).
    refresh_token_idle_seconds: float | None = None

    def authenticate(self) -> ConnectionProfile:
        assert self.connector is not None
        if self.prefetched is not None:
            return self.prefetched.result()
        return self.connector.authenticate()


class ConnectorFactory(Protocol):
    def connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        """The connection for this configuration (``refresh``: re-read its secret)."""
        ...


class SecretValues(Protocol):
    def known_values(self, secret_ids: list[str]) -> list[str]:
        """The values held by these secrets, to redact them from anything we send."""
        ...


class HandOff(Protocol):
    def hand_off(self, payload: dict[str, object], *, deduplication_id: str) -> str: ...


class RecordedDecision(NamedTuple):
    """A job's decision record: the decision, its state (``acting``, ``done``, ``released``),
    when it was claimed (epoch seconds), the re-run token it was made under (None: the
    original message), which names its hand-off's deduplication id, and until when the
    delivery acting on it may still be running (epoch seconds; 0: none is)."""

    decision: Decision
    state: str
    claimed_at: float
    rerun: str | None = None
    busy_until: float = 0.0


class DecisionLog(Protocol):
    """The durable record of each job's decision (kept longer than a message can live).

    It is the one exactly-once mechanism: ``settled`` gives a decided job's record to a later
    delivery (a duplicate, a redrive) before anything is decided again; ``claim`` records a
    decision (with the delivering message's re-run token) before it is acted on, with the end
    of the acting delivery's invocation (``busy_until``), or returns the job's existing record;
    ``take_over`` makes a later delivery the one finishing a record whose acting delivery
    ended, and ``free`` ends this delivery's hold early (it raised); ``settle`` marks it acted
    on; ``release`` gives up a claim whose action certainly did not happen."""

    def settled(self, job_id: str) -> RecordedDecision | None: ...

    def claim(self, decision: Decision, *, rerun: str | None, busy_until: float) -> RecordedDecision | None: ...

    def take_over(self, job_id: str, *, seen: RecordedDecision, busy_until: float) -> bool: ...

    def free(self, job_id: str, *, busy_until: float) -> None: ...

    def settle(self, job_id: str) -> None: ...

    def release(self, job_id: str) -> None: ...


class ReadinessLog(Protocol):
    """The last known readiness of each company (the readiness table)."""

    def record(self, readiness: Readiness) -> None:
        """Store it, unless the company has a record checked later (an older result never
        overwrites a newer one). A record from the CLI (``source == "cli"``, an operator's
        clock) never outranks the service's own: any later record replaces it."""
        ...

    def last(self, company_id: str) -> Readiness | None:
        """The company's last recorded readiness, if any."""
        ...

    def forget(self, company_id: str) -> bool:
        """Remove the company's record (its configuration is gone)."""
        ...
