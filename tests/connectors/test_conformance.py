"""Connector conformance: the same behaviours, run against every connector and its simulator.

Each test is parametrized over ``CONNECTORS_UNDER_TEST`` (``table.py``); each row's
simulator is a real HTTP server on 127.0.0.1, started once per module and ``reset()``
before every test. **A new connector joins with one entry in that table** (its spec, its
simulator, a seed hook, the path of its first call, ledger refs, and one-line reasons for
any behaviour that cannot exist for it); ``test_table_covers_every_registered_connector``
fails until that entry exists. Rows that declare a behaviour not applicable are reported
as skipped with their reason.
"""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from export_preflight.checks import PreflightContext, company_context
from export_preflight.connectors import CONNECTORS, ConnectionProfile
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.models import Capability, CheckOutcome, ExportJob, FailureReasonType
from export_preflight.oauth import GrantRevoked
from export_preflight.ports import Connection
from sandbox.simulators.base import SimulatorServer

from .conformance import (
    BEHAVIOURS,
    CAPABILITIES,
    Built,
    ConnectorUnderTest,
    Harness,
    Traits,
    contains_any,
    skip_unless_applicable,
)
from .table import CONNECTORS_UNDER_TEST

Reason = FailureReasonType


@dataclass
class Running:
    row: ConnectorUnderTest
    server: SimulatorServer


@pytest.fixture(scope="module", params=CONNECTORS_UNDER_TEST, ids=str)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    row: ConnectorUnderTest = request.param
    server = row.simulator().start()
    try:
        yield Running(row, server)
    finally:
        server.stop()


@pytest.fixture
def world(running: Running) -> Iterator[Harness]:
    running.server.reset()
    harness = Harness(running.row, running.server)
    try:
        yield harness
    finally:
        harness.close()
        running.server.reset()


def company_context_outcome(built: Built, profile: ConnectionProfile) -> CheckOutcome:
    """What the ``company_context`` check makes of this profile."""
    job = ExportJob.model_validate(
        {"id": str(uuid.uuid4()), "companyId": str(built.config.company_id), "status": "in_progress"}
    )
    return company_context(PreflightContext(job, built.config, Connection(built.connector), profile=profile))


def assert_no_secrets(world: Harness, built: Built, error: BaseException) -> None:
    leaked = contains_any(str(error), built.seeded.secret_values())
    assert not leaked, f"{world.row.system}: a credential reached the error message"


# ------------------------------------------------------------------ the table itself


def test_table_covers_every_registered_connector() -> None:
    assert set(CONNECTORS) == {row.system for row in CONNECTORS_UNDER_TEST}
    assert len(CONNECTORS_UNDER_TEST) == len(CONNECTORS), "one row per connector"
    for row in CONNECTORS_UNDER_TEST:
        assert row.spec is CONNECTORS[row.system], f"{row.system}: test the registered spec"


@pytest.mark.parametrize("row", CONNECTORS_UNDER_TEST, ids=str)
def test_not_applicable_rows_name_known_behaviours_with_a_reason(row: ConnectorUnderTest) -> None:
    unknown = set(row.not_applicable) - BEHAVIOURS
    assert not unknown, f"{row.system}: not_applicable names unknown behaviours {sorted(unknown)}"
    for behaviour, reason in row.not_applicable.items():
        assert reason.strip() and "\n" not in reason, f"{row.system}: {behaviour} needs a one-line reason"


# ------------------------------------------------------------------ authentication


def test_authentication_accepted(world: Harness) -> None:
    skip_unless_applicable(world.row, "authentication_accepted")
    built = world.build()
    profile = built.connector.authenticate()
    assert profile.company_ref == built.config.accounting_company_ref
    assert isinstance(profile.permissions, frozenset)
    outcome = company_context_outcome(built, profile)
    assert outcome.status == "passed" and outcome.facts["verified"] is True


def test_authentication_rejected(world: Harness) -> None:
    skip_unless_applicable(world.row, "authentication_rejected")
    built = world.build(Traits(credentials="rejected"))
    with pytest.raises(AccountingSystemError) as raised:
        built.connector.authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert_no_secrets(world, built, raised.value)


def test_grant_revoked(world: Harness) -> None:
    skip_unless_applicable(world.row, "grant_revoked")
    built = world.build(Traits(credentials="revoked"))
    with pytest.raises(AccountingSystemError) as raised:
        built.connector.authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert_no_secrets(world, built, raised.value)
    if world.row.token_endpoint is not None:  # OAuth: one refresh, answered invalid_grant
        assert isinstance(raised.value, GrantRevoked)
        assert world.token_requests() == 1
        assert built.vault.writes == [], "a refused refresh must not overwrite the stored tokens"


def test_wrong_company(world: Harness) -> None:
    """The common contract ``checks.company_context`` relies on: ``authenticate()`` returns a
    profile naming the company the credentials do reach (not the configured one, not None),
    and the check fails it as an invalid configuration."""
    skip_unless_applicable(world.row, "wrong_company")
    built = world.build(Traits(company="other"))
    profile = built.connector.authenticate()
    assert profile.company_ref is not None
    assert profile.company_ref != built.config.accounting_company_ref
    outcome = company_context_outcome(built, profile)
    assert outcome.status == "failed" and outcome.reason_type is Reason.INVALID_CONFIGURATION
    assert profile.company_ref in (outcome.reason or "")


# ------------------------------------------------------------------ permissions


def test_permissions_granted(world: Harness) -> None:
    skip_unless_applicable(world.row, "permissions_granted")
    built = world.build()
    profile = built.connector.authenticate()
    assert built.connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY}) == []
    assert built.connector.missing_permissions(profile, set(CAPABILITIES)) == []


def test_permissions_missing(world: Harness) -> None:
    skip_unless_applicable(world.row, "permissions_missing")
    built = world.build(Traits(permissions="missing"))
    profile = built.connector.authenticate()
    missing = built.connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY})
    assert missing and all(isinstance(item, str) and item for item in missing)


# ------------------------------------------------------------------ capabilities


@pytest.mark.parametrize("capability", CAPABILITIES, ids=str)
def test_capability_supported(world: Harness, capability: Capability) -> None:
    skip_unless_applicable(world.row, f"capability_supported[{capability.value}]")
    built = world.build()
    profile = built.connector.authenticate()
    support = built.connector.supports(profile, capability)
    assert support.supported, support.detail


@pytest.mark.parametrize("capability", CAPABILITIES, ids=str)
def test_capability_not_supported(world: Harness, capability: Capability) -> None:
    skip_unless_applicable(world.row, f"capability_not_supported[{capability.value}]")
    built = world.build(Traits(unsupported=capability))
    profile = built.connector.authenticate()
    support = built.connector.supports(profile, capability)
    assert not support.supported
    assert support.detail.strip(), "an unsupported capability must say why (actionable)"
    others = [c for c in CAPABILITIES if c is not capability]
    assert all(built.connector.supports(profile, c).supported for c in others), "only the one capability is off"


# ------------------------------------------------------------------ ledger


@pytest.mark.parametrize("state", ["active", "unusable", "unknown"])
def test_account(world: Harness, state: str) -> None:
    skip_unless_applicable(world.row, f"account[{state}]")
    ledger = world.row.ledger
    ref = {"active": ledger.active_account, "unusable": ledger.unusable_account, "unknown": ledger.unknown_account}[
        state
    ]
    built = world.build()
    found = built.connector.accounts([ref])
    assert set(found) == {ref}
    entry = found[ref]
    if state == "unknown":
        assert entry is None
        return
    assert entry is not None and entry.ref == ref
    if state == "active":
        assert entry.usable and not entry.problem
    else:
        assert not entry.usable and entry.problem.strip()


@pytest.mark.parametrize("state", ["active", "inactive", "unknown"])
def test_tax_code(world: Harness, state: str) -> None:
    skip_unless_applicable(world.row, f"tax_code[{state}]")
    ledger = world.row.ledger
    code = {"active": ledger.active_tax_code, "inactive": ledger.inactive_tax_code, "unknown": ledger.unknown_tax_code}[
        state
    ]
    built = world.build()
    found = built.connector.tax_codes([code])
    assert set(found) == {code}
    entry = found[code]
    if state == "unknown":
        assert entry is None
        return
    assert entry is not None and entry.ref == code
    if state == "active":
        assert entry.usable and not entry.problem
    else:
        assert not entry.usable and entry.problem.strip()


def test_lookups_are_batched_per_kind(world: Harness) -> None:
    """Mixed states in one call: every ref answered, in its own state (states the row declares
    not applicable are left out)."""
    ledger = world.row.ledger
    built = world.build()

    def applicable(kind: str, *cases: tuple[str, str, bool | None]) -> dict[str, bool | None]:
        return {ref: usable for state, ref, usable in cases if f"{kind}[{state}]" not in world.row.not_applicable}

    expected_accounts = applicable(
        "account",
        ("active", ledger.active_account, True),
        ("unusable", ledger.unusable_account, False),
        ("unknown", ledger.unknown_account, None),
    )
    expected_taxes = applicable(
        "tax_code",
        ("active", ledger.active_tax_code, True),
        ("inactive", ledger.inactive_tax_code, False),
        ("unknown", ledger.unknown_tax_code, None),
    )
    accounts = built.connector.accounts(list(expected_accounts))
    taxes = built.connector.tax_codes(list(expected_taxes))
    assert {ref: None if e is None else e.usable for ref, e in accounts.items()} == expected_accounts
    assert {code: None if e is None else e.usable for code, e in taxes.items()} == expected_taxes


# ------------------------------------------------------------------ remote faults

CLIENT_TIMEOUT = 0.5
HTML = b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>Maintenance</body></html>"
PYTHON_INTERNALS = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Traceback|Expecting value|line \d+ column \d+")


def gzip_bomb(inflated: int = 100_000_000) -> bytes:
    """About 100 KB of gzip that inflate to ``inflated`` bytes of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    zeros = bytes(1_000_000)
    return b"".join([*(packer.compress(zeros) for _ in range(inflated // len(zeros))), packer.flush()])


@dataclass(frozen=True)
class Fault:
    injection: dict[str, Any]  # what the simulator answers instead
    reason: FailureReasonType
    retry_after: float | None = None


FAULTS: dict[str, Fault] = {
    "429_retry_after": Fault({"status": 429, "headers": {"Retry-After": "7"}}, Reason.ACCOUNTING_SYSTEM_RATE_LIMIT, 7),
    "429_without_retry_after": Fault({"status": 429}, Reason.ACCOUNTING_SYSTEM_RATE_LIMIT),
    "503": Fault({"status": 503}, Reason.ACCOUNTING_SYSTEM_UNREACHABLE),
    "timeout": Fault({"delay": CLIENT_TIMEOUT * 2}, Reason.ACCOUNTING_SYSTEM_TIMEOUT),
    "reset": Fault({"disconnect": True}, Reason.ACCOUNTING_SYSTEM_UNREACHABLE),
    "html_200": Fault(
        {"status": 200, "raw": HTML, "headers": {"Content-Type": "text/html; charset=utf-8"}},
        Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
    ),
    # Not followed (it would take our credentials to the host it names): the system's fault.
    "redirect_302": Fault(
        {"status": 302, "headers": {"Location": "https://collector.example.test/steal"}},
        Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
    ),
    "404": Fault({"status": 404}, Reason.ACCOUNTING_SYSTEM_UNREACHABLE),
    "409": Fault({"status": 409}, Reason.ACCOUNTING_SYSTEM_UNREACHABLE),
    "429_retry_after_not_a_time": Fault(
        {"status": 429, "headers": {"Retry-After": "soon"}}, Reason.ACCOUNTING_SYSTEM_RATE_LIMIT
    ),
    "gzip_bomb": Fault(
        {"status": 200, "raw": gzip_bomb(), "headers": {"Content-Encoding": "gzip"}},
        Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
    ),
    # One byte every 50 ms: each read is quick, the whole answer would take seconds.
    "trickle": Fault(
        {"status": 200, "raw": b"{" + b" " * 100 + b"}", "trickle": 0.05}, Reason.ACCOUNTING_SYSTEM_TIMEOUT
    ),
}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_remote_fault_on_the_first_call(world: Harness, kind: str) -> None:
    skip_unless_applicable(world.row, f"fault[{kind}]")
    remote_fault = FAULTS[kind]
    built = world.build(timeout_seconds=CLIENT_TIMEOUT)
    fault = world.inject_on_first_call(**remote_fault.injection)
    with pytest.raises(AccountingSystemUnavailable) as raised:
        built.connector.authenticate()
    error = raised.value
    assert fault.hits == 1, f"{world.row.system}: first_call does not name the first request authenticate() sends"
    assert error.reason_type is remote_fault.reason
    assert error.retry_after == remote_fault.retry_after
    message = str(error)
    assert not PYTHON_INTERNALS.search(message), f"{world.row.system}: {message!r} names Python internals"
    assert "<html" not in message.lower() and "Maintenance" not in message
    assert_no_secrets(world, built, error)
    assert world.token_requests() == 0, "a remote fault is not a reason to refresh the token"
