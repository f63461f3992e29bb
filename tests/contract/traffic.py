"""Every exchange a connector has with its simulator, for the vendor contract tests.

``connector_traffic(system)`` drives one connector through every call the preflight makes
(authenticate, every permission, every capability, account and tax-code look-ups in each
state) for a healthy company and for each unhealthy trait the conformance table seeds, and
returns what its simulator recorded: each request the connector sent and each answer the
simulator gave it. The vendor contract tests validate both sides against the vendor's own
published description (``tests/contract/vendors/<system>/``).

Injected faults (429s, HTML bodies) are left out: they are our own trouble, not the vendor's
described behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.models import Capability
from sandbox.simulators.base import Exchange
from tests.connectors.conformance import Built, ConnectorUnderTest, Harness, Traits
from tests.connectors.table import CONNECTORS_UNDER_TEST

TRAITS: tuple[Traits, ...] = (
    Traits(),
    Traits(credentials="rejected"),
    Traits(credentials="revoked"),
    Traits(company="other"),
    Traits(permissions="missing"),
    *(Traits(unsupported=capability) for capability in Capability),
)


def row_for(system: str) -> ConnectorUnderTest:
    return next(row for row in CONNECTORS_UNDER_TEST if row.system == system)


def drive(built: Built, row: ConnectorUnderTest) -> None:
    """Every call the preflight makes, each allowed to fail the way a preflight check would."""
    connector = built.connector
    ledger = row.ledger
    try:
        profile = connector.authenticate()
    except (AccountingSystemError, AccountingSystemUnavailable):
        return
    calls: list[Callable[[], object]] = [
        lambda: connector.missing_permissions(profile, set(Capability)),
        *(lambda c=capability: connector.supports(profile, c) for capability in Capability),
        lambda: connector.accounts([ledger.active_account, ledger.unusable_account, ledger.unknown_account]),
        lambda: connector.tax_codes([ledger.active_tax_code, ledger.inactive_tax_code, ledger.unknown_tax_code]),
    ]
    for call in calls:
        try:
            call()
        except (AccountingSystemError, AccountingSystemUnavailable):
            continue


def record(row: ConnectorUnderTest, traits: Iterable[Traits] = TRAITS) -> list[Exchange]:
    """Run ``drive`` for each of ``traits`` against a fresh simulator; every exchange it saw."""
    server = row.simulator().start()
    try:
        exchanges: list[Exchange] = []
        for trait in traits:
            server.reset()
            harness = Harness(row, server)
            try:
                drive(harness.build(trait), row)
            finally:
                harness.close()
            exchanges.extend(exchange for exchange in server.exchanges if not exchange.injected)
        return exchanges
    finally:
        server.stop()


@cache
def connector_traffic(system: str) -> tuple[Exchange, ...]:
    """The recorded traffic of ``system``'s connector (computed once per test session)."""
    return tuple(record(row_for(system)))
