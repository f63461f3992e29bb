"""OAuth credential lifecycle: access tokens refreshed before they expire (and on a
401), refresh tokens rotated exactly once.

Xero and Pleo both rotate the refresh token on every refresh, and presenting a used
one can revoke the whole grant. So, per credential:

- only one refresh runs at a time across all containers (a lease, see ``Lease``);
- whoever holds the lease re-reads the stored tokens first (another container may
  have refreshed meanwhile) and refreshes only if they are still the old ones;
- the new pair is persisted before it is used, and the lease released after that;
- everyone else waits for the stored tokens to change, then uses them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from .errors import AccountingSystemError, TransientError
from .http import Trouble, send
from .models import ClientCredentials, FailureReasonType, TokenSet

LEASE_SECONDS = 30
TOKEN_ENDPOINT_TROUBLE = Trouble(
    error=TransientError,
    timeout=FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT,
    unreachable=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
    rate_limit=FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
)


class TokenStore(Protocol):
    """Where token sets live (Secrets Manager in production)."""

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet: ...

    def write(self, secret_id: str, tokens: TokenSet) -> None: ...


class Lease(Protocol):
    """A short exclusive lease per credential (a DynamoDB conditional write in production)."""

    def acquire(self, name: str, owner: str, seconds: int) -> bool: ...

    def release(self, name: str, owner: str) -> None: ...


class GrantRevoked(AccountingSystemError):
    """The provider refused the refresh token (``invalid_grant``): the user must reconnect."""


class TokenEndpoint:
    """``POST {token_url}`` with ``grant_type=refresh_token`` and HTTP Basic client auth."""

    def __init__(
        self,
        http: httpx.Client,
        path: str,
        client: Callable[[], ClientCredentials],
        system: str,
        trouble: Trouble = TOKEN_ENDPOINT_TROUBLE,
    ) -> None:
        self._trouble = trouble
        self._http = http
        self._path = path
        self._client = client
        self._system = system

    def refresh(self, tokens: TokenSet, now: float) -> TokenSet:
        client = self._client()
        response = send(
            self._http,
            "POST",
            self._path,
            party=f"{self._system} token endpoint",
            what="refreshing the access token",
            trouble=self._trouble,
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()},
            auth=(client.client_id, client.client_secret.get_secret_value()),
            headers={"Accept": "application/json"},
        )
        body = _json(response)
        if response.status_code in (400, 401) and body.get("error") in ("invalid_grant", "unauthorized_client"):
            raise GrantRevoked(
                f"{self._system} no longer accepts the integration's authorisation (the connection was "
                f"revoked or expired). Reconnect {self._system} in the integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if not response.is_success or "access_token" not in body or "refresh_token" not in body:
            raise AccountingSystemError(
                f"{self._system} token endpoint refused the refresh ({response.status_code} "
                f"{str(body.get('error', ''))[:40]}). Check the integration's {self._system} app credentials.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        return TokenSet(
            access_token=SecretStr(body["access_token"]),
            refresh_token=SecretStr(body["refresh_token"]),
            expires_at=now + float(body.get("expires_in", 1800)),
            scope=body.get("scope"),
        )


class OAuthTokens:
    """Hands out valid access tokens for OAuth credentials stored under a secret id."""

    def __init__(
        self,
        store: TokenStore,
        lease: Lease,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._lease = lease
        self._clock = clock
        self._sleep = sleep
        self._wait_seconds = wait_seconds

    def current(self, secret_id: str, endpoint: TokenEndpoint) -> TokenSet:
        """A token set whose access token is not about to expire."""
        tokens = self._store.read(secret_id, fresh=False)
        if tokens.fresh(self._clock()):
            return tokens
        return self.refresh(secret_id, endpoint, rejected=tokens)

    def refresh(self, secret_id: str, endpoint: TokenEndpoint, *, rejected: TokenSet) -> TokenSet:
        """Replace ``rejected`` (expired, or answered 401) — once, whoever asks."""
        owner = uuid.uuid4().hex
        deadline = self._clock() + self._wait_seconds
        while True:
            if self._lease.acquire(secret_id, owner, LEASE_SECONDS):
                try:
                    stored = self._store.read(secret_id, fresh=True)
                    if _replaced(stored, rejected):
                        return stored  # someone else refreshed while we were getting here
                    renewed = endpoint.refresh(stored, self._clock())
                    self._store.write(secret_id, renewed)  # persisted before anyone uses it
                    return renewed
                finally:
                    self._lease.release(secret_id, owner)
            stored = self._store.read(secret_id, fresh=True)
            if _replaced(stored, rejected) and stored.fresh(self._clock(), skew=0):
                return stored
            if self._clock() >= deadline:
                raise TransientError("another refresh of the same credentials did not finish in time")
            self._sleep(0.1)


def _replaced(stored: TokenSet, rejected: TokenSet) -> bool:
    return stored.access_token.get_secret_value() != rejected.access_token.get_secret_value()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
