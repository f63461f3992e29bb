"""The connector conformance harness: what a connector must provide to be tested, and how
the suite builds it.

Every connector runs the same behaviours (``test_conformance.py``) against its simulator,
a real HTTP server on 127.0.0.1. A connector joins by adding ONE ``ConnectorUnderTest``
entry to ``CONNECTORS_UNDER_TEST`` in ``table.py``: its registered ``ConnectorSpec``, a
simulator factory, a ``seed`` hook that sets up one company with the asked-for ``Traits``
(and returns the configuration document, the secrets and the connector settings), the
first call ``authenticate()`` makes (for fault injection), refs for the ledger states, the
token endpoint if it uses OAuth, and, only where a behaviour cannot exist for that
system, a one-line justification in ``not_applicable``.

Connectors are built through the real path: ``SPEC.create(ConnectorEnvironment(...),
config, False)`` with the spec's own settings class and base URLs, pooled clients from
``export_preflight.http.new_client``, an in-memory credentials store (``SecretVault``,
which is also the OAuth token store) and the real ``OAuthTokens`` lifecycle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from export_preflight.connectors import AccountingConnector, ConnectorEnvironment, ConnectorSpec
from export_preflight.errors import CredentialsMissing, CredentialsUnreadable
from export_preflight.http import new_client
from export_preflight.models import Capability, CompanyConfiguration, TokenSet
from export_preflight.oauth import OAuthTokens
from sandbox.simulators.base import SimulatorServer
from tests.unit.fakes import MemoryJournal, MemoryLease

ModelT = TypeVar("ModelT", bound=BaseModel)

# ------------------------------------------------------------------ behaviours

CAPABILITIES = tuple(Capability)
BEHAVIOURS: frozenset[str] = frozenset(
    {
        "authentication_accepted",
        "authentication_rejected",
        "grant_revoked",
        "wrong_company",
        "permissions_granted",
        "permissions_missing",
        *(f"capability_supported[{c.value}]" for c in CAPABILITIES),
        *(f"capability_not_supported[{c.value}]" for c in CAPABILITIES),
        *(f"account[{state}]" for state in ("active", "unusable", "unknown")),
        *(f"tax_code[{state}]" for state in ("active", "inactive", "unknown")),
        *(
            f"fault[{kind}]"
            for kind in (
                "429_retry_after",
                "429_without_retry_after",
                "503",
                "timeout",
                "reset",
                "html_200",
                "redirect_302",
                "404",
                "409",
                "429_retry_after_not_a_time",
                "gzip_bomb",
                "trickle",
            )
        ),
    }
)
"""Every behaviour id the suite knows; ``not_applicable`` keys must be among them."""


# ------------------------------------------------------------------ what a row provides


@dataclass(frozen=True)
class Traits:
    """What the seeded company looks like.

    - ``credentials``: ``accepted``; ``rejected`` (the stored credentials are not ones the
      system issued); ``revoked`` (they were, but the customer revoked the grant);
    - ``company``: ``configured``, or ``other`` (the credentials reach another company than
      the configured one);
    - ``permissions``: ``granted``, or ``missing`` (a role/scope journal entries need is not);
    - ``unsupported``: a capability the company cannot take (``None``: all supported).
    """

    credentials: Literal["accepted", "rejected", "revoked"] = "accepted"
    company: Literal["configured", "other"] = "configured"
    permissions: Literal["granted", "missing"] = "granted"
    unsupported: Capability | None = None


@dataclass(frozen=True)
class Seeded:
    """What ``seed`` returns: the company configuration document (as stored), every secret
    by id (JSON documents: the customer's credentials, our client credentials, ...) and the
    keyword arguments for ``spec.settings(...)`` (base URLs pointing at the simulator)."""

    configuration: Mapping[str, Any]
    secrets: Mapping[str, Mapping[str, Any]]
    settings: Mapping[str, Any]

    def secret_values(self) -> list[str]:
        """Every credential string seeded, to assert none reaches an error message."""
        return [
            value
            for document in self.secrets.values()
            for value in document.values()
            if isinstance(value, str) and len(value) >= 8
        ]


@dataclass(frozen=True)
class Ledger:
    """Refs that exist in every seeded company in the named state (``unknown`` ones do not exist)."""

    active_account: str
    unusable_account: str
    """Barred, archived, blocked: exists but cannot be posted to."""
    unknown_account: str
    active_tax_code: str
    inactive_tax_code: str
    unknown_tax_code: str


@dataclass(frozen=True)
class ConnectorUnderTest:
    """One row of the conformance table: everything the suite needs to test one connector."""

    spec: ConnectorSpec
    """The registered spec (``export_preflight.connectors.CONNECTORS[system]``)."""
    simulator: Callable[[], SimulatorServer]
    """A new, not yet started simulator (started once per module, ``reset()`` between tests)."""
    seed: Callable[[SimulatorServer, Traits], Seeded]
    """Seed one company with ``Traits`` into the (reset) simulator."""
    first_call: tuple[str, str]
    """(method, full-match path regex) of the first request ``authenticate()`` sends."""
    ledger: Ledger
    token_endpoint: str | None = None
    """Path regex of the OAuth token endpoint on the simulator; ``None``: static credentials."""
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    """Behaviour id -> one-line reason why it cannot exist for this system (reported as skipped)."""

    @property
    def system(self) -> str:
        return self.spec.system_id

    def __str__(self) -> str:
        return self.system


def skip_unless_applicable(row: ConnectorUnderTest, behaviour: str) -> None:
    """Skip the running test when ``row`` declares ``behaviour`` not applicable."""
    assert behaviour in BEHAVIOURS, f"unknown behaviour id {behaviour!r}"
    reason = row.not_applicable.get(behaviour)
    if reason is not None:
        pytest.skip(f"{row.system}: {behaviour} not applicable: {reason}")


# ------------------------------------------------------------------ in-memory ports


class SecretVault:
    """``CredentialLoader`` and OAuth ``TokenStore`` over a dict of JSON documents, with the
    semantics of ``export_preflight.aws.Credentials`` (missing -> ``CredentialsMissing``,
    not the model -> ``CredentialsUnreadable``)."""

    def __init__(self, secrets: Mapping[str, Mapping[str, Any]]) -> None:
        self._values = {secret_id: json.dumps(dict(document)) for secret_id, document in secrets.items()}
        self.writes: list[str] = []

    def load(self, secret_id: str, model: type[ModelT], *, refresh: bool = False) -> ModelT:
        raw = self._values.get(secret_id)
        if raw is None:
            raise CredentialsMissing(secret_id)
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            raise CredentialsUnreadable(secret_id) from None

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet:
        return self.load(secret_id, TokenSet, refresh=fresh)

    def write(self, secret_id: str, tokens: TokenSet) -> None:
        self._values[secret_id] = tokens.to_secret()
        self.writes.append(secret_id)


# ------------------------------------------------------------------ building connectors


@dataclass
class Built:
    """One connector built for one seeded company."""

    connector: AccountingConnector
    config: CompanyConfiguration
    seeded: Seeded
    vault: SecretVault


class Harness:
    """One test's view of a row and its running simulator: seed, build, inject faults."""

    def __init__(self, row: ConnectorUnderTest, server: SimulatorServer) -> None:
        self.row = row
        self.server = server
        self._clients: list[httpx.Client] = []

    def build(self, traits: Traits | None = None, *, timeout_seconds: float = 5.0) -> Built:
        """Seed a company with ``traits`` (default: healthy) and build its connector through
        ``SPEC.create``."""
        spec = self.row.spec
        seeded = self.row.seed(self.server, traits or Traits())
        settings = spec.settings(**seeded.settings)
        http = {name: self._client(url, timeout_seconds) for name, url in spec.base_urls(settings).items()}
        vault = SecretVault(seeded.secrets)
        environment = ConnectorEnvironment(
            settings=settings,
            http=http,
            credentials=vault,
            tokens=OAuthTokens(vault, MemoryLease(), MemoryJournal(), wait_seconds=2.0),
        )
        config = CompanyConfiguration.model_validate(
            {"companyId": str(uuid.uuid4()), "accountingSystem": spec.system_id, **seeded.configuration}
        )
        return Built(spec.create(environment, config, False), config, seeded, vault)

    def inject_on_first_call(self, **fault: Any) -> Any:
        """Make the first request ``authenticate()`` sends misbehave (see ``SimulatorServer.inject``)."""
        method, path = self.row.first_call
        return self.server.inject(method, path, **fault)

    def token_requests(self) -> int:
        """Requests the OAuth token endpoint received (0 for static credentials)."""
        if self.row.token_endpoint is None:
            return 0
        return len(self.server.requests_to("POST", self.row.token_endpoint))

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def _client(self, url: str, timeout_seconds: float) -> httpx.Client:
        assert url.startswith("http://127.0.0.1:"), f"only loopback simulators here, not {url}"
        client = new_client(url, timeout_seconds=timeout_seconds)
        self._clients.append(client)
        return client


def contains_any(text: str, needles: Iterable[str]) -> list[str]:
    return [needle for needle in needles if needle and needle in text]
