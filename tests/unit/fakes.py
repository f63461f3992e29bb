"""Fakes at the port boundary (connector, configuration, credentials, hand-off)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from export_preflight.checks import Connection, PreflightContext
from export_preflight.connectors import ConnectionProfile, LedgerEntry, Support
from export_preflight.connectors.economic import SPEC as ECONOMIC
from export_preflight.models import Capability, CompanyConfiguration, ExportJob
from export_preflight.oauth import JournalEntry
from export_preflight.ports import Requirements

# What the e-conomic connector declares: the configuration shape these fakes use.
ECONOMIC_REQUIREMENTS = Requirements(ECONOMIC.required_mappings, ECONOMIC.vendor_mappings, ECONOMIC.numeric_fields)
COMPANY = uuid.UUID("11111111-1111-4111-8111-111111111111")
JOB = uuid.UUID("22222222-2222-4222-8222-222222222222")


@dataclass
class FakeConnector:
    display_name: str = "Fakebooks"
    where_to_fix: str = "Fakebooks settings"
    permission_advice: str | None = None
    profile: ConnectionProfile = field(
        default_factory=lambda: ConnectionProfile("AGR-1", "Acme ApS", frozenset({"SuperUser"}))
    )
    auth_error: Exception | None = None
    unsupported: dict[Capability, str] = field(default_factory=dict)
    ungranted: dict[Capability, str] = field(default_factory=dict)  # capability -> missing scope
    accounts_known: dict[str, LedgerEntry] = field(
        default_factory=lambda: {
            "5820": LedgerEntry("5820", "Office", True),
            "6800": LedgerEntry("6800", "Bank", True),
            "7000": LedgerEntry("7000", "Payables", True),
        }
    )
    tax_known: dict[str, LedgerEntry] = field(default_factory=lambda: {"I25": LedgerEntry("I25", "Input VAT", True)})
    calls: list[str] = field(default_factory=list)
    grant: Any = None  # an OAuth grant (FakeGrant), or None: static credentials

    def authenticate(self) -> ConnectionProfile:
        self.calls.append("authenticate")
        if self.auth_error:
            raise self.auth_error
        return self.profile

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        missing = [scope for capability, scope in self.ungranted.items() if capability in needs]
        return missing + ([] if profile.permissions & {"SuperUser", "Bookkeeping"} else ["the Bookkeeping role"])

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability in self.unsupported:
            return Support(False, self.unsupported[capability])
        return Support(True)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        self.calls.append("accounts")
        return {ref: self.accounts_known.get(ref) for ref in refs}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        self.calls.append("tax_codes")
        return {code: self.tax_known.get(code) for code in codes}


@dataclass
class FakeGrant:
    """An OAuth grant: when its refresh token was last used, and renewals."""

    refreshed_at: float
    clock: float
    renewals: int = 0
    error: Exception | None = None
    ends_at: float | None = None

    def last_refreshed_at(self) -> float:
        return self.refreshed_at

    def hard_expires_at(self) -> float | None:
        return self.ends_at

    def renew(self) -> None:
        if self.error:
            raise self.error
        self.renewals += 1
        self.refreshed_at = self.clock


def configuration(**overrides: object) -> CompanyConfiguration:
    document: dict[str, object] = {
        "companyId": str(COMPANY),
        # the company's own (docs/contracts.md, "Secrets")
        "pleoCredentialsSecretId": f"export-preflight/pleo/{COMPANY}",
        "accountingSystem": "economic",
        "accountingCompanyRef": "AGR-1",
        "accountingCredentialsSecretId": f"export-preflight/economic/{COMPANY}",
        "vendorBookkeepingEnabled": True,
        "mappings": {
            "journal": 1,
            "expenseAccount": 5820,
            "contraAccount": 6800,
            "vatCodes": ["I25"],
            "vendorPayablesAccount": 7000,
        },
    }
    document.update(overrides)
    company = document["companyId"]
    # Each company's own secrets (docs/contracts.md, "Secrets"), unless a test names others.
    if "pleoCredentialsSecretId" not in overrides:
        document["pleoCredentialsSecretId"] = f"export-preflight/pleo/{company}"
    if "accountingCredentialsSecretId" not in overrides:
        document["accountingCredentialsSecretId"] = f"export-preflight/{document.get('accountingSystem')}/{company}"
    return CompanyConfiguration.model_validate(document)


def job(**overrides: object) -> ExportJob:
    document: dict[str, object] = {
        "id": str(JOB),
        "companyId": str(COMPANY),
        "status": "in_progress",
        "createdAt": "2026-11-23T10:00:00Z",
        "expiresIn": 3600,
        "isInteractive": True,
        "numberOfItems": 3,
        "vendorBasedBookkeeping": False,
    }
    document.update(overrides)
    return ExportJob.model_validate(document)


def context(
    *,
    connector: FakeConnector | None = None,
    config: CompanyConfiguration | None = None,
    export_job: ExportJob | None = None,
    connection: Connection | None = None,
) -> PreflightContext:
    return PreflightContext(
        job=export_job or job(),
        config=config or configuration(),
        connection=connection or Connection(connector or FakeConnector(), requirements=ECONOMIC_REQUIREMENTS),
    )


# ---------------------------------------------------------------- OAuth lifecycle ports


class MemoryLease:
    """Lease port fake with the same semantics as the DynamoDB conditional write
    (a lease lapses after its seconds, by ``clock``)."""

    def __init__(self, clock=time.time) -> None:
        self._owners: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.renewals: list[bool] = []

    def acquire(self, name: str, owner: str, seconds: int) -> bool:
        with self._lock:
            held = self._owners.get(name)
            if held and held[1] > self._clock():
                return False
            self._owners[name] = (owner, self._clock() + seconds)
            return True

    def renew(self, name: str, owner: str, seconds: int) -> bool:
        with self._lock:
            held = self._owners.get(name)
            ours = held is None or held[0] == owner or held[1] <= self._clock()
            if ours:
                self._owners[name] = (owner, self._clock() + seconds)
            self.renewals.append(ours)
            return ours

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._owners.get(name, ("", 0))[0] == owner:
                del self._owners[name]


class MemoryJournal:
    """TokenJournal port fake."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}

    def keep(self, secret_id: str, entry: JournalEntry) -> None:
        self.entries[secret_id] = entry

    def recall(self, secret_id: str) -> JournalEntry | None:
        return self.entries.get(secret_id)

    def forget(self, secret_id: str, entry: JournalEntry) -> None:
        if self.entries.get(secret_id) == entry:
            del self.entries[secret_id]
