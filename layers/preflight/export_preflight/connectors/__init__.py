"""Accounting-system connectors, side by side behind one protocol.

Adding a system is one module with a ``SPEC`` plus one line here.
"""

from __future__ import annotations

from .base import (
    AccountingConnector,
    ConnectionProfile,
    ConnectorEnvironment,
    ConnectorSpec,
    LedgerEntry,
    Support,
)
from .economic import SPEC as ECONOMIC
from .fortnox import SPEC as FORTNOX
from .quickbooks import SPEC as QUICKBOOKS
from .xero import SPEC as XERO

CONNECTORS: dict[str, ConnectorSpec] = {spec.system_id: spec for spec in (ECONOMIC, XERO, FORTNOX, QUICKBOOKS)}

__all__ = [
    "CONNECTORS",
    "AccountingConnector",
    "ConnectionProfile",
    "ConnectorEnvironment",
    "ConnectorSpec",
    "LedgerEntry",
    "Support",
]
