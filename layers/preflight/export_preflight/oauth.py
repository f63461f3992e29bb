"""OAuth credential lifecycle: access tokens refreshed before they expire (and on a
401), refresh tokens rotated exactly once, and a rotated token set never lost.

Xero, Pleo and Fortnox rotate the refresh token on every refresh, and presenting a used
one can revoke the whole grant. So, per credential:

- only one refresh runs at a time across all containers (a lease, see ``Lease``), and
  every holder stays inside its lease: each step under it has a total deadline (the
  token call; each lease, journal, KMS and token-store call on its own short-timeout
  client), the token call starts only when the lease still outlasts it and the journal
  write after it, and a store write only when the lease and the invocation have time for
  it (the arithmetic is asserted below);
- whoever holds the lease re-reads the stored tokens first (another container may
  have refreshed meanwhile) and refreshes only if they are still the old ones;
- the provider's answer goes to a write-ahead journal (``TokenJournal``: a second
  durable place, encrypted on the client with a customer-managed KMS key) before anything
  else, then to the token store with retries while the lease is held (ownership checked
  first); the journal entry is forgotten once the store has the set. A set the store never
  took is recovered from the journal by the next refresh, before it calls the provider;
- a refresh never rotates on top of a set the store has not accepted: a recovered set
  that still cannot be saved is used while its access token is valid, and after that the
  refresh fails (``TokenStoreRefused`` when the store refuses for good: our set-up
  problem, ``integration_unusable``) until the store takes it. The journal holds one
  answer per credential, so it always replaces the stored refresh token: however long
  the store refuses, no spent refresh token is ever presented;
- an answer that does not fully parse (e.g. ``expires_in: null``) still yields the new
  refresh token; a refresh answered ``invalid_grant`` re-reads the store once (someone
  may have rotated meanwhile) before the grant is declared revoked;
- everyone else waits for the stored tokens to change, then uses them;
- the operator CLI never refreshes (``OAuthTokens(refreshes=False)``): it runs on a
  laptop's clock, can be interrupted at any moment and flushes no metrics, so it uses a
  stored access token while it is valid and otherwise reports the check as unknown.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from .errors import (
    AccountingSystemError,
    AwsUnavailable,
    CredentialsMissing,
    CredentialsUnreadable,
    IntegrationMisconfigured,
    TokenStoreRefused,
    TransientError,
)
from .http import Answer, RemoteErrors, fetch_within
from .models import ClientCredentials, FailureReasonType, TokenSet
from .observability import count, logger

# Time budgets, in seconds. Every AWS call under a lease (lease, journal, KMS, token store)
# goes through a client of its own with one attempt and short timeouts (aws/clients.py
# ``TOKEN_CLIENT_CONFIG``: connect 1 s + read 2 s), so each takes at most AWS_CALL_SECONDS.
AWS_CALL_SECONDS = 3.0
TOKEN_CALL_SECONDS = 8.0  # the token call, all of it
READ_SECONDS = 3 * AWS_CALL_SECONDS  # under the lease: the store, the journal and the journal's KMS Decrypt
JOURNAL_WRITE_SECONDS = 2 * AWS_CALL_SECONDS  # KMS Encrypt, then PutItem
SAVE_SECONDS = 8.0  # store writes with retries; an attempt starts only with AWS_CALL_SECONDS of it left
LEASE_SECONDS = 45
# The lease counts from just before its PutItem (a whole second early: DynamoDB compares whole
# seconds). A spent refresh token is safe once the journal holds the answer (the next holder
# recovers it), so acquiring, reading, the token call and the journal write fit in one lease:
SPENT_TOKEN_SAFE_SECONDS = 1 + AWS_CALL_SECONDS + READ_SECONDS + TOKEN_CALL_SECONDS + JOURNAL_WRITE_SECONDS  # 27
# A recovery renews the lease, saves the journalled set and forgets it, then may refresh:
RECOVER_THEN_REFRESH_SECONDS = (
    1 + AWS_CALL_SECONDS + SAVE_SECONDS + AWS_CALL_SECONDS + TOKEN_CALL_SECONDS + JOURNAL_WRITE_SECONDS
)  # 29
# The save renews the lease first, then writes the store and forgets the journal entry:
SAVE_UNDER_LEASE_SECONDS = 1 + AWS_CALL_SECONDS + SAVE_SECONDS + AWS_CALL_SECONDS  # 15
assert max(SPENT_TOKEN_SAFE_SECONDS, RECOVER_THEN_REFRESH_SECONDS, SAVE_UNDER_LEASE_SECONDS) < LEASE_SECONDS, (
    "every holder must stay inside its lease"
)
# The token call is started only with this long left in the lease (checked, not assumed):
TOKEN_CALL_LEASE_SECONDS = TOKEN_CALL_SECONDS + JOURNAL_WRITE_SECONDS
# ... and in the invocation: the token call, the journal write, the lease renewal and one store
# write (more store attempts only while time is left: the journal holds the set meanwhile).
REFRESH_BUDGET_SECONDS = TOKEN_CALL_SECONDS + JOURNAL_WRITE_SECONDS + 2 * AWS_CALL_SECONDS  # 20
SHORTEST_FUNCTION_TIMEOUT_SECONDS = 30  # template.yaml, Mappings: Timeouts (Preflight; Readiness is 60)
assert REFRESH_BUDGET_SECONDS < SHORTEST_FUNCTION_TIMEOUT_SECONDS, "a refresh must fit in one invocation"
# Used when an answer's expires_in is missing or nonsense: short, so the token is renewed soon.
FALLBACK_EXPIRES_IN = 300
# For token sets stored without ``refreshedAt``: access tokens live at most this long.
ASSUMED_ACCESS_LIFETIME_SECONDS = 3600
OAUTH_ERRORS = ("invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "unsupported_grant_type")


class TokenStore(Protocol):
    """Where token sets live (Secrets Manager in production)."""

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet: ...

    def write(self, secret_id: str, tokens: TokenSet) -> None: ...


class Lease(Protocol):
    """A short exclusive lease per credential (a DynamoDB conditional write in production)."""

    def acquire(self, name: str, owner: str, seconds: int) -> bool: ...

    def renew(self, name: str, owner: str, seconds: int) -> bool:
        """Extend the lease if ``owner`` still holds it (or it lapsed and nobody took it)."""
        ...

    def release(self, name: str, owner: str) -> None: ...


@dataclass(frozen=True)
class JournalEntry:
    """A provider's raw answer, kept until the token store has the set it yields."""

    answer: str
    received_at: float
    replaces: str  # fingerprint of the refresh token this answer replaced


class TokenJournal(Protocol):
    """The second durable, encrypted place for a rotated token set (DynamoDB in production)."""

    def keep(self, secret_id: str, entry: JournalEntry) -> None: ...

    def recall(self, secret_id: str) -> JournalEntry | None: ...

    def forget(self, secret_id: str, entry: JournalEntry) -> None: ...


class GrantRevoked(AccountingSystemError):
    """The provider refused the refresh token (``invalid_grant``): the user must reconnect."""


def fingerprint(tokens: TokenSet) -> str:
    """Which refresh token a set holds, without holding it."""
    return hashlib.sha256(tokens.refresh_token.get_secret_value().encode()).hexdigest()[:32]


class TokenEndpoint:
    """``POST {token_url}`` with ``grant_type=refresh_token`` and HTTP Basic client auth.

    ``errors`` says how this remote system's transient errors are reported (Pleo's token endpoint
    is not an accounting system)."""

    def __init__(
        self,
        http: httpx.Client,
        path: str,
        client: Callable[[], ClientCredentials],
        system: str,
        *,
        errors: RemoteErrors,
    ) -> None:
        self._errors = errors
        self._http = http
        self._path = path
        self._client = client
        self.system = system

    extra_headers: dict[str, str] = {}  # noqa: RUF012 - read only; a provider's subclass sets its own
    """Headers a provider wants on every token request (QuickBooks: ask for the hard expiry)."""

    def refresh(self, tokens: TokenSet) -> Answer:
        """The provider's answer to one refresh (a 200 may still be unusable: see ``parse_answer``)."""
        client = self._client_credentials()
        answer = fetch_within(
            self._http,
            "POST",
            self._path,
            deadline_seconds=TOKEN_CALL_SECONDS,
            remote=f"{self.system} token endpoint",
            what="refreshing the access token",
            errors=self._errors,
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token.get_secret_value()},
            auth=(client.client_id, client.client_secret.get_secret_value()),
            headers={"Accept": "application/json", **self.extra_headers},
        )
        if 200 <= answer.status_code < 300:
            return answer
        error = str(_json(answer.content).get("error", ""))
        if answer.status_code in (400, 401) and error == "invalid_grant":
            raise GrantRevoked(
                f"{self.system} no longer accepts the integration's authorisation (the connection was "
                f"revoked or expired). Reconnect {self.system} in the integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        known = error if error in OAUTH_ERRORS else "an unexpected error"
        raise AccountingSystemError(
            f"{self.system} refused to renew the integration's access ({answer.status_code}, {known}). "
            f"Reconnect {self.system} in the integration settings; if that does not help, contact support.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )

    def unusable_answer(self, what: str) -> TransientError:
        """A 200 we cannot use: this remote system's fault (retried)."""
        return self._errors.error(f"{self.system} token endpoint answered {what}", reason_type=self._errors.unreachable)

    def _client_credentials(self) -> ClientCredentials:
        try:
            return self._client()
        except (CredentialsMissing, CredentialsUnreadable) as error:
            state = "missing" if isinstance(error, CredentialsMissing) else "unreadable"
            logger.error(
                "the integration's OAuth client secret is unusable", extra={"system": self.system, "state": state}
            )
            raise IntegrationMisconfigured(
                f"the integration's {self.system} OAuth client credentials are {state}"
            ) from None


def parse_answer(answer: str, previous: TokenSet, received_at: float) -> tuple[TokenSet, bool]:
    """The token set an answer yields, and whether its access token is usable.

    Lenient on purpose: the provider has already spent ``previous``'s refresh token, so
    whatever the answer holds is kept. No ``refresh_token``: the old one stays (a provider
    that does not rotate). No usable ``expires_in``: a short lifetime. No access token: the
    set is kept with an expired one, so the next use refreshes with the new refresh token.
    """
    body = _json(answer.encode())
    access, refresh = body.get("access_token"), body.get("refresh_token")
    usable = isinstance(access, str) and bool(access)
    access_token = SecretStr(access) if isinstance(access, str) and access else previous.access_token
    expires_in = body.get("expires_in")
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or not 0 < expires_in < 10**7:
        if usable:
            logger.warning("the token endpoint's answer has no usable expires_in; assuming a short lifetime")
        expires_in = FALLBACK_EXPIRES_IN
    scope = body.get("scope")
    hard_in = body.get("x_refresh_token_hard_expires_in")
    hard_expires_at = previous.hard_expires_at  # the grant's end does not move with a new refresh token
    if isinstance(hard_in, int | float) and not isinstance(hard_in, bool) and 0 <= hard_in < 10**10:
        hard_expires_at = received_at + float(hard_in)
    return (
        TokenSet(
            access_token=access_token,
            refresh_token=SecretStr(refresh) if isinstance(refresh, str) and refresh else previous.refresh_token,
            expires_at=received_at + float(expires_in) if usable else 0.0,
            scope=scope if isinstance(scope, str) else previous.scope,
            refreshed_at=received_at,
            hard_expires_at=hard_expires_at,
        ),
        usable,
    )


@dataclass
class _Holding:
    """A lease this refresh holds: its owner id and when it lapses at the latest (our clock)."""

    owner: str
    until: float

    def left(self, now: float) -> float:
        return self.until - now


class OAuthTokens:
    """Hands out valid access tokens for OAuth credentials stored under a secret id.

    ``time_left`` is the invocation's remaining time in seconds (a refresh is not started
    without time for it, nor a store write); ``refreshes=False`` (the operator CLI) never
    takes a lease or calls a token endpoint: a stored access token is used while valid,
    otherwise ``RefreshNotHere`` says where tokens are renewed. ``lease_seconds`` exists for
    tests only.
    """

    def __init__(
        self,
        store: TokenStore,
        lease: Lease,
        journal: TokenJournal,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = 10.0,
        time_left: Callable[[], float] = lambda: math.inf,
        lease_seconds: int = LEASE_SECONDS,
        refreshes: bool = True,
    ) -> None:
        self._store = store
        self._lease = lease
        self._journal = journal
        self._clock = clock
        self._sleep = sleep
        self._wait_seconds = wait_seconds
        self._time_left = time_left
        self._lease_seconds = lease_seconds
        self._refreshes = refreshes

    def current(self, secret_id: str, endpoint: TokenEndpoint) -> TokenSet:
        """A token set whose access token is not about to expire."""
        tokens = self._store.read(secret_id, fresh=False)
        if tokens.fresh(self._clock()):
            return tokens
        if not self._refreshes and tokens.fresh(self._clock(), skew=0):
            return tokens  # still valid: the CLI uses it to the end
        return self.refresh(secret_id, endpoint, rejected=tokens)

    def refresh(self, secret_id: str, endpoint: TokenEndpoint, *, rejected: TokenSet) -> TokenSet:
        """Replace ``rejected`` (expired, or answered 401) — once, whoever asks."""
        if not self._refreshes:
            raise RefreshNotHere(
                f"the stored {endpoint.system} access token has expired or was refused, and the operator CLI "
                "never renews tokens (a second renewal beside the deployed functions can cost the company's "
                "grant): run the check through the deployed readiness function (docs/operations.md, "
                "'Operator CLI'), or wait for the next sweep"
            )
        owner = uuid.uuid4().hex
        deadline = self._clock() + self._wait_seconds
        while True:
            started = self._clock()
            if self._lease.acquire(secret_id, owner, self._lease_seconds):
                holding = _Holding(owner, started - 1 + self._lease_seconds)
                try:
                    return self._refresh_holding_lease(secret_id, endpoint, rejected, holding)
                finally:
                    self._lease.release(secret_id, owner)
            stored = self._store.read(secret_id, fresh=True)
            if _replaced(stored, rejected) and stored.fresh(self._clock(), skew=0):
                return stored
            if self._clock() >= deadline:
                raise TransientError("another refresh of the same credentials did not finish in time")
            self._sleep(0.1)

    # ------------------------------------------------------------ under the lease

    def _refresh_holding_lease(
        self, secret_id: str, endpoint: TokenEndpoint, rejected: TokenSet, holding: _Holding
    ) -> TokenSet:
        stored, unsaved = self._recover(secret_id, holding)
        if _replaced(stored, rejected) and stored.fresh(self._clock(), skew=0):
            return stored  # someone else refreshed (or a journalled set was recovered)
        if unsaved is not None:
            # Never rotate on top of a set the store has not taken: the journal keeps one answer,
            # and the next one would replace the only copy of this set's refresh token.
            raise _not_stored(endpoint, unsaved)
        if self._time_left() < REFRESH_BUDGET_SECONDS:
            raise TransientError("too little time left in this invocation to refresh the access token safely")
        if holding.left(self._clock()) < TOKEN_CALL_LEASE_SECONDS:
            raise TransientError("too little time left in the credential lease to refresh the access token safely")
        try:
            answer = endpoint.refresh(stored)
        except GrantRevoked:
            again = self._store.read(secret_id, fresh=True)
            if fingerprint(again) != fingerprint(stored):
                logger.info("the refresh token was rotated meanwhile; using the stored one")
                return again
            raise
        entry = JournalEntry(answer.content.decode(errors="replace"), self._clock(), fingerprint(stored))
        journalled = self._keep(secret_id, entry)
        tokens, usable = parse_answer(entry.answer, stored, entry.received_at)
        if tokens.refresh_token.get_secret_value() == stored.refresh_token.get_secret_value() and not usable:
            # Nothing new came back (an empty or foreign 200): keep the journal entry out of the way.
            if journalled:
                self._journal.forget(secret_id, entry)
            raise endpoint.unusable_answer("without tokens")
        self._save(secret_id, tokens, entry, holding, journalled=journalled)
        if not usable:
            raise endpoint.unusable_answer("without an access token")
        return tokens

    def _recover(self, secret_id: str, holding: _Holding) -> tuple[TokenSet, TransientError | None]:
        """The stored set, after saving a journalled one the store never took; and why that
        recovered set is still not saved (None when it is, or when there was none)."""
        stored = self._store.read(secret_id, fresh=True)
        entry = self._journal.recall(secret_id)
        if entry is None:
            return stored, None
        if entry.replaces != fingerprint(stored):
            self._journal.forget(secret_id, entry)  # the store moved on since: a stale entry
            return stored, None
        tokens, _ = parse_answer(entry.answer, stored, entry.received_at)
        logger.warning("recovering a rotated token set from the journal", extra={"secret_id": secret_id})
        return tokens, self._save(secret_id, tokens, entry, holding, journalled=True)

    def _keep(self, secret_id: str, entry: JournalEntry) -> bool:
        try:
            self._journal.keep(secret_id, entry)
        except TransientError as error:
            logger.warning("could not journal a rotated token set", extra={"error": str(error)})
            return False
        return True

    def _save(
        self, secret_id: str, tokens: TokenSet, entry: JournalEntry, holding: _Holding, *, journalled: bool
    ) -> TransientError | None:
        """Write the set while the lease is ours, retrying with backoff within ``SAVE_SECONDS``
        (each attempt only with time for it left in the invocation and the lease); forget the
        journal entry once the store has it. Returns why the set is not saved (None: saved)."""
        started = self._clock()
        try:
            ours = self._lease.renew(secret_id, holding.owner, self._lease_seconds)
        except TransientError as error:  # unknown: as if taken over (the spent token is never kept)
            logger.warning("could not renew the credential lease", extra={"error": str(error)})
            ours = False
        if ours:
            holding.until = started - 1 + self._lease_seconds
        else:
            logger.warning("the credential lease is not ours any more; saving the new set anyway")
        give_up_at = self._clock() + SAVE_SECONDS
        delay = 0.2
        while True:
            try:
                self._time_to_write(holding if ours else None)
                self._store.write(secret_id, tokens)
                break
            except TransientError as error:
                refused = isinstance(error, TokenStoreRefused)
                if (
                    refused
                    or isinstance(error, _NoTimeToWrite)
                    or self._clock() + delay + AWS_CALL_SECONDS > give_up_at
                ):
                    journalled = journalled or self._keep(secret_id, entry)
                    logger.error(
                        "a rotated token set could not be saved to the token store",
                        extra={"secret_id": secret_id, "error": str(error), "journalled": journalled},
                    )
                    count("TokenSetUnsaved")
                    if refused:
                        count("TokenStoreRefused")
                    return error
                self._sleep(delay)
                delay = min(delay * 2, 3.0)
        if journalled:
            try:
                self._journal.forget(secret_id, entry)
            except TransientError as error:  # harmless: a stale entry is recognised and dropped later
                logger.warning("could not clear the token journal", extra={"error": str(error)})
        return None

    def _time_to_write(self, holding: _Holding | None) -> None:
        """Raise ``_NoTimeToWrite`` unless one store write fits in the invocation (and in the
        lease, while it is ours): a write cut off by a timeout would leave its outcome unknown."""
        if self._time_left() < AWS_CALL_SECONDS:
            raise _NoTimeToWrite("too little time left in this invocation to write the token store")
        if holding is not None and holding.left(self._clock()) < AWS_CALL_SECONDS:
            raise _NoTimeToWrite("too little time left in the credential lease to write the token store")


class RefreshNotHere(TransientError):
    """This process does not renew OAuth tokens (the operator CLI): the check is unknown."""


class _NoTimeToWrite(TransientError):
    """No time left for one more token-store write (the set stays in the journal)."""


def _not_stored(endpoint: TokenEndpoint, why: TransientError) -> TransientError:
    """Why a refresh cannot go on: the last renewed set is not in the token store yet."""
    if isinstance(why, TokenStoreRefused):
        return TokenStoreRefused(
            f"the integration cannot store the company's {endpoint.system} credentials (the token store refuses "
            "the renewed ones); our operators are alerted"
        )
    return AwsUnavailable(
        f"the company's renewed {endpoint.system} credentials are not stored yet, and they are not renewed again "
        f"until they are ({why})"
    )


class OAuthBearer(httpx.Auth):
    """The one bearer-token auth of every OAuth provider (Pleo, Xero, the next ones): each
    request carries a token from the leased lifecycle (refreshed when about to expire); a
    401 refreshes it once (exactly once across containers) and the request is sent once
    more. ``refusal`` tells a 401 that is not about the token (e.g. Xero's
    ``AuthorizationUnsuccessful``, a missing scope), which must not trigger a refresh."""

    requires_response_body = True  # ``refusal`` may read the 401's body

    def __init__(
        self,
        tokens: OAuthTokens,
        secret_id: str,
        endpoint: TokenEndpoint,
        *,
        refusal: Callable[[httpx.Response], bool] = lambda response: False,
    ) -> None:
        self._tokens = tokens
        self._secret_id = secret_id
        self._endpoint = endpoint
        self._refusal = refusal
        self._current: TokenSet | None = None

    def current(self) -> TokenSet:
        """The token set in use (read, and refreshed if due, on first use)."""
        if self._current is None or not self._current.fresh(time.time()):
            self._current = self._tokens.current(self._secret_id, self._endpoint)
        return self._current

    def last_refreshed_at(self) -> float:
        """When the refresh token was last used: recorded with the set, or else estimated
        on the early side from the access token's expiry (no provider issues them for
        longer than an hour)."""
        tokens = self.current()
        if tokens.refreshed_at is not None:
            return tokens.refreshed_at
        return tokens.expires_at - ASSUMED_ACCESS_LIFETIME_SECONDS

    def hard_expires_at(self) -> float | None:
        """When the grant ends whatever its use (a provider's cap on a connection's life), if known."""
        return self.current().hard_expires_at

    def renew(self) -> TokenSet:
        """Refresh now, whatever the access token's expiry (keeps an idle grant alive),
        through the same leased lifecycle; once across containers."""
        self._current = self._tokens.refresh(self._secret_id, self._endpoint, rejected=self.current())
        return self._current

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self.current()
        request.headers["Authorization"] = f"Bearer {used.access_token.get_secret_value()}"
        response = yield request
        if response.status_code == 401 and not self._refusal(response):
            self._current = self._tokens.refresh(self._secret_id, self._endpoint, rejected=used)
            request.headers["Authorization"] = f"Bearer {self._current.access_token.get_secret_value()}"
            yield request


def _replaced(stored: TokenSet, rejected: TokenSet) -> bool:
    return stored.access_token.get_secret_value() != rejected.access_token.get_secret_value()


def _json(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}
