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

from export_preflight.connectors.base import ACCOUNTING_TROUBLE
from export_preflight.errors import AwsUnavailable, TransientError
from export_preflight.models import ClientCredentials, FailureReasonType, TokenSet
from export_preflight.oauth import GrantRevoked, JournalEntry, OAuthTokens, TokenEndpoint
from tests.unit.fakes import MemoryJournal, MemoryLease

IDENTITY = "https://identity.example.test"
SECRET = "export-preflight/xero/acme"


class MemoryStore:
    """TokenStore port fake. ``failures`` makes the next N writes fail as throttled
    (``AwsUnavailable``), or with any exception given instead of a count."""

    def __init__(self, tokens: TokenSet) -> None:
        self.tokens = tokens
        self.writes: list[TokenSet] = []
        self.failed_writes = 0
        self.failures: list[BaseException] = []
        self._lock = threading.Lock()

    def fail_next(self, times: int, error: BaseException | None = None) -> None:
        self.failures = [error or AwsUnavailable("Secrets Manager PutSecretValue failed (ThrottlingException)")] * times

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet:
        with self._lock:
            return self.tokens

    def write(self, secret_id: str, tokens: TokenSet) -> None:
        with self._lock:
            if self.failures:
                self.failed_writes += 1
                raise self.failures.pop(0)
            self.tokens = tokens
            self.writes.append(tokens)


def manager(store: MemoryStore, lease: MemoryLease | None = None, journal: MemoryJournal | None = None, **kw):
    return OAuthTokens(store, lease or MemoryLease(), journal if journal is not None else MemoryJournal(), **kw)


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
            http,
            "/connect/token",
            lambda: ClientCredentials(clientId="cid", clientSecret=SecretStr("csecret")),
            "Xero",
            trouble=ACCOUNTING_TROUBLE,
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
    assert manager(store).current(SECRET, endpoint).access_token.get_secret_value() == "access-0"
    assert route.call_count == 0


def test_a_token_close_to_expiry_is_refreshed_and_persisted_first(identity, endpoint):
    route, seen = rotating_token_endpoint(identity)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() + 30))
    renewed = manager(store).current(SECRET, endpoint)
    assert renewed.access_token.get_secret_value() == "access-1"
    assert [t.refresh_token.get_secret_value() for t in store.writes] == ["refresh-1"]
    assert seen == ["refresh-0"]
    request = route.calls.last.request
    assert request.headers["Authorization"] == httpx.BasicAuth("cid", "csecret")._auth_header
    assert "grant_type=refresh_token" in request.content.decode()


def test_concurrent_callers_cause_exactly_one_refresh(identity, endpoint):
    route, seen = rotating_token_endpoint(identity, delay=0.2)  # a slow endpoint widens the race
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    tokens_manager = manager(store)
    start = threading.Barrier(8)

    def caller(_: int) -> str:
        start.wait()
        return tokens_manager.current(SECRET, endpoint).access_token.get_secret_value()

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
    renewed = manager(store).refresh(SECRET, endpoint, rejected=old)
    assert renewed.access_token.get_secret_value() == "access-1" and route.call_count == 0


def test_invalid_grant_asks_the_user_to_reconnect(identity, endpoint):
    identity.post("/connect/token").respond(400, json={"error": "invalid_grant"})
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    with pytest.raises(GrantRevoked) as raised:
        manager(store).current(SECRET, endpoint)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "Reconnect Xero" in str(raised.value) and "refresh-0" not in str(raised.value)
    assert store.writes == []


def test_a_token_endpoint_outage_is_transient(identity, endpoint):
    identity.post("/connect/token").respond(503)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    with pytest.raises(TransientError):
        manager(store).current(SECRET, endpoint)


def test_waiting_for_a_stuck_refresh_gives_up_as_transient(endpoint):
    lease = MemoryLease()
    lease.acquire(SECRET, "someone-else", 30)
    store = MemoryStore(tokens("access-0", "refresh-0", time.time() - 5))
    with pytest.raises(TransientError, match="did not finish in time"):
        manager(store, lease, wait_seconds=0.3).current(SECRET, endpoint)


def test_scopes_come_from_the_jwt_claim_when_there_is_one():
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"scope": ["accounting.settings", "offline_access"]}).encode())
    jwt = f"eyJhbGciOiJub25lIn0.{payload.decode().rstrip('=')}.sig"
    assert tokens(jwt, "r", 0, scope="other").scopes() == {"accounting.settings", "offline_access"}
    assert tokens("opaque", "r", 0, scope="a b").scopes() == {"a", "b"}


# ---------------------------------------------------------------- a rotated token set is never lost


class FakeClock:
    """Time that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def stale(store_refresh: str = "refresh-0") -> TokenSet:
    return tokens("access-0", store_refresh, time.time() - 5)


@pytest.mark.parametrize("throttled", [2, 10])
def test_put_secret_value_throttled_in_a_row_loses_nothing(identity, endpoint, throttled):
    route, seen = rotating_token_endpoint(identity)
    store, journal, clock = MemoryStore(stale()), MemoryJournal(), FakeClock()
    store.fail_next(throttled)
    first = manager(store, journal=journal, clock=clock, sleep=clock.sleep).current(SECRET, endpoint)
    assert first.access_token.get_secret_value() == "access-1"  # this job goes on with the new set
    if throttled == 2:  # retried with backoff while the lease is held
        assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and journal.entries == {}
    else:  # retries spent within the save deadline: the set waits in the journal
        assert store.tokens.refresh_token.get_secret_value() == "refresh-0"
        assert SECRET in journal.entries
        # the next container recovers it before it would call the provider
        recovered = manager(store, journal=journal).current(SECRET, endpoint)
        assert recovered.access_token.get_secret_value() == "access-1"
        assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and journal.entries == {}
    assert route.call_count == 1 and seen == ["refresh-0"]
    # and the grant still works: the next rotation presents the new refresh token
    store.tokens = tokens("access-1", "refresh-1", time.time() - 5)
    manager(store, journal=journal).current(SECRET, endpoint)
    assert seen == ["refresh-0", "refresh-1"]


class Killed(BaseException):
    """The Lambda runtime stopping the process (a timeout) — nothing catches it."""


def test_a_kill_between_the_answer_and_the_write_loses_nothing(identity, endpoint):
    route, seen = rotating_token_endpoint(identity)
    store, journal = MemoryStore(stale()), MemoryJournal()
    store.fail_next(1, Killed())
    with pytest.raises(Killed):
        manager(store, journal=journal).current(SECRET, endpoint)
    assert store.tokens.refresh_token.get_secret_value() == "refresh-0"  # the store never got it
    renewed = manager(store, journal=journal).current(SECRET, endpoint)
    assert renewed.access_token.get_secret_value() == "access-1"
    assert route.call_count == 1 and seen == ["refresh-0"]
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and journal.entries == {}


def test_a_lease_that_lapses_during_a_slow_token_endpoint_is_checked_before_the_write(identity, endpoint):
    route, _seen = rotating_token_endpoint(identity, delay=1.2)
    store, lease = MemoryStore(stale()), MemoryLease()
    renewed = manager(store, lease, lease_seconds=1).current(SECRET, endpoint)
    assert lease.renewals == [True]  # ownership checked (and the lapsed lease taken back) before the write
    assert renewed.access_token.get_secret_value() == "access-1"
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and route.call_count == 1


def test_a_lease_taken_over_meanwhile_still_saves_the_answer(identity, endpoint):
    _route, _ = rotating_token_endpoint(identity)
    store = MemoryStore(stale())

    class TakenOver(MemoryLease):
        def renew(self, name, owner, seconds):
            self.renewals.append(False)
            return False

    lease = TakenOver()
    manager(store, lease).current(SECRET, endpoint)
    assert lease.renewals == [False]
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1"  # the spent token is never kept


def test_the_lease_outlives_a_bounded_refresh():
    from export_preflight import oauth

    assert oauth.LEASE_SECONDS > oauth.TOKEN_CALL_SECONDS + oauth.SAVE_SECONDS + oauth.READ_SECONDS


def test_no_refresh_starts_without_time_for_all_of_it(identity, endpoint):
    route, _ = rotating_token_endpoint(identity)
    store = MemoryStore(stale())
    with pytest.raises(TransientError, match="too little time"):
        manager(store, time_left=lambda: 12.0).current(SECRET, endpoint)
    assert route.call_count == 0 and store.writes == []


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": None},
        {"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": "soon"},
        {"access_token": "access-1", "refresh_token": "refresh-1"},
    ],
)
def test_a_malformed_200_still_keeps_the_new_refresh_token(identity, endpoint, answer):
    route = identity.post("/connect/token").respond(200, json=answer)
    store = MemoryStore(stale())
    renewed = manager(store).current(SECRET, endpoint)
    assert renewed.access_token.get_secret_value() == "access-1"
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1"
    assert 0 < store.tokens.expires_at - time.time() <= 300  # a short, safe lifetime
    assert route.call_count == 1


def test_an_answer_without_an_access_token_keeps_the_refresh_token_and_is_retried(identity, endpoint):
    identity.post("/connect/token").respond(200, json={"refresh_token": "refresh-1"})
    store = MemoryStore(stale())
    with pytest.raises(TransientError):
        manager(store).current(SECRET, endpoint)
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and not store.tokens.fresh(time.time())


def test_an_html_200_is_the_token_endpoints_trouble(identity, endpoint):
    identity.post("/connect/token").respond(200, text="<html>maintenance</html>")
    store, journal = MemoryStore(stale()), MemoryJournal()
    with pytest.raises(TransientError) as raised:
        manager(store, journal=journal).current(SECRET, endpoint)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    assert store.writes == [] and journal.entries == {}


def test_invalid_grant_rereads_the_store_once_before_declaring_the_grant_revoked(identity, endpoint):
    store = MemoryStore(stale())

    def rotated_meanwhile(request):
        store.tokens = tokens("access-9", "refresh-9", time.time() + 1800)  # another container won
        return httpx.Response(400, json={"error": "invalid_grant"})

    identity.post("/connect/token").mock(side_effect=rotated_meanwhile)
    assert manager(store).current(SECRET, endpoint).access_token.get_secret_value() == "access-9"


def test_a_stale_journal_entry_is_dropped_not_replayed(identity, endpoint):
    _route, seen = rotating_token_endpoint(identity)
    store, journal = MemoryStore(stale("refresh-5")), MemoryJournal()
    journal.keep(SECRET, JournalEntry('{"access_token": "a-old", "refresh_token": "r-old"}', time.time(), "other"))
    manager(store, journal=journal).current(SECRET, endpoint)
    assert seen == ["refresh-5"] and journal.entries == {}
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1"


def test_a_missing_oauth_client_secret_is_our_setup_problem(identity):
    from export_preflight.errors import CredentialsMissing, IntegrationMisconfigured

    def missing():
        raise CredentialsMissing("export-preflight/xero/client")

    with httpx.Client(base_url=IDENTITY) as http:
        endpoint = TokenEndpoint(http, "/connect/token", missing, "Xero", trouble=ACCOUNTING_TROUBLE)
        with pytest.raises(IntegrationMisconfigured) as raised:
            manager(MemoryStore(stale())).current(SECRET, endpoint)
    assert raised.value.reason_type is FailureReasonType.INTEGRATION_UNUSABLE


def test_a_trickling_token_endpoint_is_cut_at_the_total_deadline():
    import socket

    from export_preflight.connectors.base import ACCOUNTING_TROUBLE
    from export_preflight.http import fetch_within

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()

    def trickle():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            try:
                connection.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        connection.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.getsockname()[1]}") as http, pytest.raises(TransientError):
        fetch_within(
            http, "POST", "/token", deadline_seconds=1.0, party="X", what="refreshing", trouble=ACCOUNTING_TROUBLE
        )
    elapsed = time.monotonic() - started
    stop.set()
    server.close()
    assert elapsed < 1.6  # per-read timeouts alone would wait for all 1,000 bytes (~100 s)
