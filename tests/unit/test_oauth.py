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

from export_preflight.connectors.base import ACCOUNTING_ERRORS
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
            errors=ACCOUNTING_ERRORS,
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
        # once Secrets Manager takes writes again, the next container recovers it before it
        # would call the provider
        store.failures.clear()
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
    clock = FakeClock()
    route, _seen = rotating_token_endpoint(identity)
    route.side_effect = _after(lambda: setattr(clock, "now", clock.now + 21), route.side_effect)  # a frozen process
    store, lease = MemoryStore(stale()), MemoryLease(clock)
    renewed = manager(store, lease, clock=clock, sleep=clock.sleep, lease_seconds=20).current(SECRET, endpoint)
    assert lease.renewals == [True]  # ownership checked (and the lapsed lease taken back) before the write
    assert renewed.access_token.get_secret_value() == "access-1"
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and route.call_count == 1


def _after(first, answer):
    def answering(request):
        first()
        return answer(request)

    return answering


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


def test_a_lease_renewal_that_fails_still_saves_the_answer(identity, endpoint):
    """Lease calls get one short attempt: a throttled renewal after the token call must not
    keep the new set from the store (the spent refresh token is never kept)."""
    _route, seen = rotating_token_endpoint(identity)
    store = MemoryStore(stale())

    class Throttled(MemoryLease):
        def renew(self, name, owner, seconds):
            raise AwsUnavailable("DynamoDB PutItem on the credential lock table failed (ThrottlingException)")

    manager(store, Throttled()).current(SECRET, endpoint)
    assert store.tokens.refresh_token.get_secret_value() == "refresh-1" and seen == ["refresh-0"]


def test_the_lease_outlives_a_bounded_refresh():
    from export_preflight import oauth

    call, token, save = oauth.AWS_CALL_SECONDS, oauth.TOKEN_CALL_SECONDS, oauth.SAVE_SECONDS
    # acquire, read the store and the journal (and decrypt it), call the provider, journal the answer
    assert 1 + call + 3 * call + token + 2 * call < oauth.LEASE_SECONDS
    # renew, save a recovered set, forget its entry, then refresh
    assert 1 + call + save + call + token + 2 * call < oauth.LEASE_SECONDS
    assert token + 2 * call <= oauth.TOKEN_CALL_LEASE_SECONDS
    assert oauth.REFRESH_BUDGET_SECONDS < 30  # the preflight function's timeout


def test_lease_journal_kms_and_store_calls_have_short_timeouts_and_one_attempt(monkeypatch):
    from export_preflight import aws, oauth
    from export_preflight.settings import Settings

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = aws.TOKEN_CLIENT_CONFIG
    assert config.retries["total_max_attempts"] == 1
    assert config.connect_timeout + config.read_timeout <= oauth.AWS_CALL_SECONDS
    settings = Settings()
    for client in (aws.DynamoDBLease(settings)._dynamodb, aws.DynamoDBTokenJournal(settings)._dynamodb):
        assert client is aws.token_client("dynamodb") is not aws.CLIENTS.client("dynamodb")
        assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (1, 2)
        assert client.meta.config.retries["total_max_attempts"] == 1
    # the functions' other calls keep the shared client (3 attempts of connect 3 s + read 5 s)
    assert aws.CLIENTS.client("dynamodb").meta.config.read_timeout == 5


def test_the_token_call_starts_only_while_the_lease_outlasts_it_and_the_journal_write(identity, endpoint):
    from export_preflight import oauth

    route, _ = rotating_token_endpoint(identity)
    store = MemoryStore(stale())
    short = int(oauth.TOKEN_CALL_LEASE_SECONDS)  # the lease counts a second short: DynamoDB compares whole seconds
    with pytest.raises(TransientError, match="credential lease"):
        manager(store, lease_seconds=short).current(SECRET, endpoint)
    assert route.call_count == 0 and store.writes == []


def test_a_store_write_starts_only_with_time_for_it(identity, endpoint):
    """The token call ends with too little of the invocation left for a store write: the set
    waits in the journal (a write cut off by the timeout would leave its outcome unknown)."""
    clock = FakeClock()
    started = clock.now
    route, seen = rotating_token_endpoint(identity)
    route.side_effect = _after(lambda: setattr(clock, "now", clock.now + 18.5), route.side_effect)
    store, journal = MemoryStore(stale()), MemoryJournal()
    time_left = lambda: 21.0 - (clock.now - started)  # noqa: E731
    renewed = manager(store, journal=journal, clock=clock, sleep=clock.sleep, time_left=time_left).current(
        SECRET, endpoint
    )
    assert renewed.access_token.get_secret_value() == "access-1"
    assert store.failed_writes == 0 and store.writes == []  # not even tried
    assert SECRET in journal.entries and seen == ["refresh-0"]


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


def test_an_html_200_is_the_token_endpoints_fault(identity, endpoint):
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


def test_a_store_that_refuses_for_hours_never_makes_us_present_a_spent_refresh_token(identity, endpoint, monkeypatch):
    """Secrets Manager refuses every PutSecretValue (AccessDenied: the secret lacks the tag our
    policy asks for). Jobs go on with the journalled set while its access token is valid, then
    fail as our set-up problem; no refresh happens on top of the unsaved set, so the journal
    always holds the one answer that replaced the stored refresh token."""
    from export_preflight import oauth
    from export_preflight.errors import TokenStoreRefused

    counted: list[str] = []
    monkeypatch.setattr(oauth, "count", counted.append)
    _route, seen = rotating_token_endpoint(identity)
    store, journal, clock = MemoryStore(stale()), MemoryJournal(), FakeClock()
    store.fail_next(10_000, TokenStoreRefused("Secrets Manager refused PutSecretValue (AccessDeniedException)"))
    tokens_manager = manager(store, journal=journal, clock=clock, sleep=clock.sleep)

    first = tokens_manager.current(SECRET, endpoint)  # rotation 1: journalled, refused, used
    assert first.access_token.get_secret_value() == "access-1"
    assert store.failed_writes == 1, "a refusal is not retried"
    assert counted == ["TokenSetUnsaved", "TokenStoreRefused"]
    assert tokens_manager.current(SECRET, endpoint) == first  # a later job, still valid: recovered, used
    # three hours of jobs, hourly: the journalled set's access token has expired
    for _ in range(3):
        clock.now += 3600
        with pytest.raises(TokenStoreRefused) as raised:
            tokens_manager.current(SECRET, endpoint)
        assert raised.value.reason_type is FailureReasonType.INTEGRATION_UNUSABLE
        assert "cannot store the company's Xero credentials" in str(raised.value)
        with pytest.raises(TokenStoreRefused):  # a 401 on it neither
            tokens_manager.refresh(SECRET, endpoint, rejected=first)
    assert seen == ["refresh-0"]  # each refresh token presented at most once
    assert "TokenStoreRefused" in counted[2:]
    assert store.tokens.refresh_token.get_secret_value() == "refresh-0"
    assert '"refresh-1"' in journal.entries[SECRET].answer

    # the store heals: the next job saves the journalled set first, then refreshes from it
    store.failures.clear()
    renewed = tokens_manager.current(SECRET, endpoint)
    assert renewed.access_token.get_secret_value() == "access-2"
    assert seen == ["refresh-0", "refresh-1"]
    assert [t.refresh_token.get_secret_value() for t in store.writes] == ["refresh-1", "refresh-2"]
    assert journal.entries == {}


def test_a_store_that_throttles_for_long_does_not_get_a_rotation_on_top_of_the_unsaved_set(identity, endpoint):
    _route, seen = rotating_token_endpoint(identity)
    store, journal, clock = MemoryStore(stale()), MemoryJournal(), FakeClock()
    store.fail_next(10_000)  # ThrottlingException, every time
    tokens_manager = manager(store, journal=journal, clock=clock, sleep=clock.sleep)
    tokens_manager.current(SECRET, endpoint)
    clock.now += 3600
    with pytest.raises(AwsUnavailable, match="not stored yet"):
        tokens_manager.current(SECRET, endpoint)
    assert seen == ["refresh-0"] and SECRET in journal.entries


def test_the_operator_cli_never_takes_a_lease_nor_calls_the_token_endpoint(identity, endpoint):
    from export_preflight.oauth import RefreshNotHere

    class WatchedLease(MemoryLease):
        acquired: list[str] = []  # noqa: RUF012

        def acquire(self, name, owner, seconds):
            self.acquired.append(name)
            return super().acquire(name, owner, seconds)

    route, _ = rotating_token_endpoint(identity)
    store, lease = MemoryStore(stale()), WatchedLease()
    cli_tokens = manager(store, lease, refreshes=False)
    with pytest.raises(RefreshNotHere) as raised:
        cli_tokens.current(SECRET, endpoint)  # expired
    assert "readiness function" in str(raised.value) and "refresh-0" not in str(raised.value)
    store.tokens = tokens("access-0", "refresh-0", time.time() + 60)  # valid for a minute: used to its end
    assert cli_tokens.current(SECRET, endpoint).access_token.get_secret_value() == "access-0"
    with pytest.raises(RefreshNotHere):
        cli_tokens.refresh(SECRET, endpoint, rejected=store.tokens)  # answered 401
    assert route.call_count == 0 and lease.acquired == [] and store.writes == []


def test_a_missing_oauth_client_secret_is_our_setup_problem(identity):
    from export_preflight.errors import CredentialsMissing, IntegrationMisconfigured

    def missing():
        raise CredentialsMissing("export-preflight/xero/client")

    with httpx.Client(base_url=IDENTITY) as http:
        endpoint = TokenEndpoint(http, "/connect/token", missing, "Xero", errors=ACCOUNTING_ERRORS)
        with pytest.raises(IntegrationMisconfigured) as raised:
            manager(MemoryStore(stale())).current(SECRET, endpoint)
    assert raised.value.reason_type is FailureReasonType.INTEGRATION_UNUSABLE


def test_a_trickling_token_endpoint_is_cut_at_the_total_deadline():
    import socket

    from export_preflight.connectors.base import ACCOUNTING_ERRORS
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
            http, "POST", "/token", deadline_seconds=1.0, remote="X", what="refreshing", errors=ACCOUNTING_ERRORS
        )
    elapsed = time.monotonic() - started
    stop.set()
    server.close()
    assert elapsed < 1.6  # per-read timeouts alone would wait for all 1,000 bytes (~100 s)
