"""OAuth token lifecycle: proactive refresh, one refresh across concurrent callers,
rotation persisted before use, never a refresh token presented twice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.errors import TransientError
from export_preflight.models import ClientCredentials, FailureReasonType, TokenSet
from export_preflight.oauth import GrantRevoked, OAuthTokens, TokenEndpoint

IDENTITY = "https://identity.example.test"
SECRET = "export-preflight/xero/acme"


class MemoryStore:
    """TokenStore port fake; counts reads that bypass the cache."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        self.writes: list[TokenSet] = []
        self._lock = threading.Lock()

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet:
        with self._lock:
            return self.tokens

    def write(self, secret_id: str, tokens: TokenSet) -> None:
        with self._lock:
            self.tokens = tokens
            self.writes.append(tokens)


class MemoryLease:
    """Lease port fake with the same semantics as the DynamoDB conditional write."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str, owner: str, seconds: int) -> bool:
        with self._lock:
            if name in self._owners:
                return False
            self._owners[name] = owner
            return True

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            if self._owners.get(name) == owner:
                del self._owners[name]


def tokens(access: str, refresh: str, expires_at: float, scope: str = "accounting.settings") -> TokenSet:
    return TokenSet(
        access_token=SecretStr(access), refresh_token=SecretStr(refresh), expires_at=expires_at, scope=scope
    )


@pytest.fixture
def identity():
    with respx.mock(base_url=IDENTITY, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def endpoint():
    with httpx.Client(base_url=IDENTITY) as http:
        yield TokenEndpoint(
            http, "/connect/token", lambda: ClientCredentials(clientId="cid", clientSecret=SecretStr("csecret")), "Xero"
        )


def rotating_token_endpoint(identity, *, delay: float = 0.0):
    """A token endpoint that rotates both tokens and refuses a refresh token seen before."""
    seen: list[str] = []
    lock = threading.Lock()

    def answer(request: httpx.Request) -> httpx.Response:
        presented = parse_qs(request.content.decode())["refresh_token"][0]
        time.sleep(delay)
        with lock:
            if presented in seen:
                return httpx.Response(400, json={"error": "invalid_grant"})
            seen.append(presented)
            n = len(seen)
        return httpx.Response(
            200,
            json={
                "access_token": f"access-{n}",
                "refresh_token": f"refresh-{n}",
                "expires_in": 1800,
                "token_type": "Bearer",
                "scope": "accounting.settings offline_access",
            },
        )

    route = identity.post("/connect/token").mock(side_effect=answer)
    return route, seen


def test_a_fresh_token_is_used_without_refreshing(identity, endpoint):
    route, _ = rotating_token_endpoint(identity)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() + 1500))
    assert OAuthTokens(store, MemoryLease()).current(SECRET, endpoint).access_token.get_secret_value() == "access-0"
    assert route.call_count == 0


def test_a_token_close_to_expiry_is_refreshed_and_persisted_first(identity, endpoint):
    route, seen = rotating_token_endpoint(identity)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() + 30))
    renewed = OAuthTokens(store, MemoryLease()).current(SECRET, endpoint)
    assert renewed.access_token.get_secret_value() == "access-1"
    assert [t.refresh_token.get_secret_value() for t in store.writes] == ["refresh-1"]
    assert seen == ["refresh-0"]
    request = route.calls.last.request
    assert request.headers["Authorization"] == httpx.BasicAuth("cid", "csecret")._auth_header
    assert "grant_type=refresh_token" in request.content.decode()


def test_concurrent_callers_cause_exactly_one_refresh(identity, endpoint):
    route, seen = rotating_token_endpoint(identity, delay=0.2)  # a slow endpoint widens the race
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    manager = OAuthTokens(store, MemoryLease())
    start = threading.Barrier(8)

    def caller(_: int) -> str:
        start.wait()
        return manager.current(SECRET, endpoint).access_token.get_secret_value()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(caller, range(8)))
    assert route.call_count == 1
    assert seen == ["refresh-0"]  # no refresh token presented twice
    assert results == ["access-1"] * 8
    assert len(store.writes) == 1


def test_a_401_with_a_token_someone_else_already_replaced_does_not_refresh_again(identity, endpoint):
    route, _ = rotating_token_endpoint(identity)
    old = tokens("access-0", "refresh-0", time.time() + 1500)
    store = MemoryStore(tokens("access-1", "refresh-1", time.time() + 1800))  # rotated by another container
    renewed = OAuthTokens(store, MemoryLease()).refresh(SECRET, endpoint, rejected=old)
    assert renewed.access_token.get_secret_value() == "access-1" and route.call_count == 0


def test_invalid_grant_asks_the_user_to_reconnect(identity, endpoint):
    identity.post("/connect/token").respond(400, json={"error": "invalid_grant"})
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    with pytest.raises(GrantRevoked) as raised:
        OAuthTokens(store, MemoryLease()).current(SECRET, endpoint)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "Reconnect Xero" in str(raised.value) and "refresh-0" not in str(raised.value)
    assert store.writes == []


def test_a_token_endpoint_outage_is_transient(identity, endpoint):
    identity.post("/connect/token").respond(503)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    with pytest.raises(TransientError):
        OAuthTokens(store, MemoryLease()).current(SECRET, endpoint)


def test_waiting_for_a_stuck_refresh_gives_up_as_transient(endpoint):
    lease = MemoryLease()
    lease.acquire(SECRET, "someone-else", 30)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    manager = OAuthTokens(store, lease, wait_seconds=0.3)
    with pytest.raises(TransientError, match="did not finish in time"):
        manager.current(SECRET, endpoint)


def test_scopes_come_from_the_jwt_claim_when_there_is_one():
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"scope": ["accounting.settings", "offline_access"]}).encode())
    jwt = f"eyJhbGciOiJub25lIn0.{payload.decode().rstrip('=')}.sig"
    assert tokens(jwt, "r", 0, scope="other").scopes() == {"accounting.settings", "offline_access"}
    assert tokens("opaque", "r", 0, scope="a b").scopes() == {"a", "b"}
