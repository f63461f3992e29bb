"""Accounting-system connectors, side by side behind one protocol.

Adding a system is one module with a ``SPEC`` plus one line in ``CONNECTORS`` here. A
connector's module is imported when its spec is first asked for, so a cold start pays
only for the systems its companies use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .base import (
    AccountingConnector,
    ConnectionProfile,
    ConnectorEnvironment,
    ConnectorSpec,
    LedgerEntry,
    Support,
)


class _Connectors(Mapping[str, ConnectorSpec]):
    """The registered connectors by system id (``accountingSystem``), each module imported
    on first use."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = modules
        self._specs: dict[str, ConnectorSpec] = {}

    def __getitem__(self, system: str) -> ConnectorSpec:
        spec = self._specs.get(system)
        if spec is None:
            module = importlib.import_module(f"{__name__}.{self._modules[system]}")  # KeyError: not registered
            spec = self._specs[system] = module.SPEC
            assert spec.system_id == system, f"{module.__name__}.SPEC is registered as {system!r}"
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


# system id -> module of this package that defines its SPEC
CONNECTORS: Mapping[str, ConnectorSpec] = _Connectors(
    {
        "economic": "economic",
        "xero": "xero",
        "fortnox": "fortnox",
        "quickbooks": "quickbooks",
        "businesscentral": "businesscentral",
    }
)

__all__ = [
    "CONNECTORS",
    "AccountingConnector",
    "ConnectionProfile",
    "ConnectorEnvironment",
    "ConnectorSpec",
    "LedgerEntry",
    "Support",
]
