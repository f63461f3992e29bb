"""The accounting-system simulators of the local world, side by side behind one shape:
the sandbox (``sandbox/world.py``), ``make run`` and the tests iterate over
``accounting_simulators()`` instead of naming each system. A new system adds one simulator
module, named as its system id, that exports an ``AccountingSimulator`` as ``SIMULATOR``."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from export_preflight.connectors import CONNECTORS

from .base import SimulatorServer

if TYPE_CHECKING:
    from ..world import Sandbox


@dataclass(frozen=True)
class AccountingSeed:
    """What seeding one company's accounting side produced."""

    company_ref: str  # accountingCompanyRef
    secret_id: str  # accountingCredentialsSecretId
    mappings: dict[str, Any]  # a complete, valid mapping for this system
    secrets: dict[str, str] = field(default_factory=dict)  # credential values, by kind (for the leak checks)
    handle: Any = None  # the simulator's own object for the company (e.g. a Xero grant)


@dataclass(frozen=True)
class AccountingSimulator:
    """How the sandbox runs and seeds one accounting system's simulator.

    - ``create(latency)`` makes the server;
    - ``settings(server)``: the connector's settings that point it at the server, by field
      name (``api_base_url``...); ``environment(server)`` names them as the connector declares;
    - ``prepare(sandbox, server)`` seeds what every run needs (e.g. our OAuth app) and
      returns the secret values it created, by label;
    - ``seed(sandbox, server, slug, company_id=..., **traits)`` seeds one company's accounting
      side; its credentials secret is ``export-preflight/<system>/<company_id>`` (docs/contracts.md, "Secrets").
    """

    system: str
    create: Callable[[float], SimulatorServer]
    settings: Callable[[Any], dict[str, str]]
    seed: Callable[..., AccountingSeed]
    prepare: Callable[[Sandbox, Any], dict[str, str]] = lambda sandbox, server: {}

    def environment(self, server: Any) -> dict[str, str]:
        """The function's environment variables that point the connector at ``server``."""
        return CONNECTORS[self.system].environment(**self.settings(server))


def seed_oauth_app(sandbox: Sandbox, simulator: Any, *, client_id: str, secret_id: str, label: str) -> dict[str, str]:
    """``prepare`` of an OAuth system: our app at the provider, and its client credentials in
    Secrets Manager under ``secret_id``; returns the client secret under ``label``."""
    client_secret = f"{label.replace(' ', '-')}-{uuid.uuid4().hex}"
    simulator.add_app(client_id, client_secret)
    sandbox.aws.put_secret(secret_id, {"clientId": client_id, "clientSecret": client_secret})
    return {label: client_secret}


def store_token_set(sandbox: Sandbox, secret_id: str, grant: Any) -> None:
    """A grant's tokens as the company's token-set secret (tagged so the function may rotate it)."""
    sandbox.aws.put_secret(
        secret_id,
        {
            "accessToken": grant.access_token,
            "refreshToken": grant.refresh_token,
            "expiresAt": grant.expires_at,
            "scope": grant.scope,
        },
        token_set=True,
    )


def accounting_simulators() -> tuple[AccountingSimulator, ...]:
    """One simulator per registered connector: the ``SIMULATOR`` of ``simulators/<system>.py``."""
    simulators = tuple(importlib.import_module(f"{__package__}.{system}").SIMULATOR for system in CONNECTORS)
    for simulator, system in zip(simulators, CONNECTORS, strict=True):
        assert isinstance(simulator, AccountingSimulator) and simulator.system == system, f"simulators/{system}.py"
    return simulators
