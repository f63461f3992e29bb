"""The plumbing of an accounting system reached with the OAuth 2.0 client-credentials grant
(RFC 6749 section 4.4), declared once per system: the sibling of ``oauth_system.OAuthSystem``
for systems where the *customer* registers an app and hands us its client id and secret
(Business Central through Microsoft Entra ID).

What differs from ``OAuthSystem``: there is no refresh token, so nothing is leased, journalled
or written back; the company's own secret holds the app's ``{"clientId", "clientSecret"}``
(``models.ClientCredentials``), and there is no app-wide client secret of ours. An access
token is asked for with the app's id and secret, kept in process memory per (tenant, client id,
secret) until shortly before it expires, and one token request serves every concurrent caller.

A system states what differs (its id, name, settings prefix, default base URLs, the token path
with ``{tenant}``, the scope, which tenant a company is in, how a refused token request reads)
and gets its settings class, its HTTP clients' base URLs and its factory from here.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast
from urllib.parse import quote

import httpx
from pydantic import HttpUrl, SecretStr

from ..errors import AccountingSystemError, AccountingSystemUnavailable, TransientError
from ..http import Answer, fetch_within
from ..models import ClientCredentials, CompanyConfiguration, FailureReasonType
from ..oauth import TOKEN_CALL_SECONDS
from ..observability import logger
from ..process import PROCESS
from ..settings import ConnectorSettings
from .base import ACCOUNTING_ERRORS, SYSTEM_FAULT_STATUSES, AccountingConnector, ConnectorEnvironment, ConnectorSpec
from .oauth_system import TokenService, TokenServiceSystem

# A cached token is used until this long before it expires (at most half its life).
EXPIRY_MARGIN_SECONDS = 300
# An answer without a usable expires_in: the token is used this long at most.
FALLBACK_EXPIRES_IN = 300
# A 401 on a token younger than this is not retried with a new token (it was just issued: a
# new one would be refused the same way).
FRESH_TOKEN_SECONDS = 60


@dataclass(frozen=True)
class AccessToken:
    """One access token and when we stop using it (epoch seconds, our clock)."""

    value: SecretStr
    use_until: float
    issued_at: float


@dataclass(frozen=True)
class TokenRefusal:
    """A token request the provider answered with an error: the status and the decoded body's
    ``error`` and ``error_codes`` (never its free text: it is not for machines)."""

    status_code: int
    error: str
    codes: tuple[int, ...]


RefusalReader = Callable[[TokenRefusal, str], AccountingSystemError | TransientError]
"""The exception for a refused token request of the company in the given tenant."""


def _generic_refusal(refusal: TokenRefusal, tenant: str) -> AccountingSystemError:
    return AccountingSystemError(
        f"The token service refused the app's client credentials ({refusal.status_code}, "
        f"{refusal.error or 'an unexpected error'}). Check the app's client id and secret in the company's "
        "credentials, then export again.",
        reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
    )


class _TokenCache:
    """Access tokens by (tenant, client id, secret fingerprint), with one lock per key so that
    concurrent callers share one token request. Kept by ``PROCESS`` (a container's life)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._locks: dict[tuple[str, ...], threading.Lock] = {}

    def lock(self, key: tuple[str, ...]) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, ...], now: float) -> AccessToken | None:
        token = self._tokens.get(key)
        return token if token is not None and token.use_until > now else None

    def put(self, key: tuple[str, ...], token: AccessToken) -> None:
        self._tokens[key] = token

    def drop(self, key: tuple[str, ...], token: AccessToken) -> None:
        with self._lock:
            if self._tokens.get(key) is token:
                del self._tokens[key]


def token_cache() -> _TokenCache:
    return PROCESS.once("client-credentials/tokens", _TokenCache)


class ClientCredentialsGrant(httpx.Auth):
    """Bearer auth from the client-credentials grant of one app in one tenant. Each request
    carries the cached token (a new one when it is about to expire); a 401 on a token that was
    not just issued drops it and sends the request once more with a new one."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        path: str,
        scope: str,
        tenant: str,
        credentials: ClientCredentials,
        system: str,
        refused: RefusalReader = _generic_refusal,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._path = path.format(tenant=quote(tenant, safe=""))
        self._scope = scope
        self.tenant = tenant
        self.client_id = credentials.client_id
        self._secret = credentials.client_secret
        self._system = system
        self._refused = refused
        self._clock = clock
        fingerprint = hashlib.sha256(credentials.client_secret.get_secret_value().encode()).hexdigest()[:32]
        self._key = (system, tenant.lower(), credentials.client_id, fingerprint)

    def token(self) -> AccessToken:
        """A token not about to expire: the cached one, else a new one (one request per key)."""
        cache = token_cache()
        token = cache.get(self._key, self._clock())
        if token is not None:
            return token
        with cache.lock(self._key):
            token = cache.get(self._key, self._clock())
            if token is None:
                token = self._request()
                cache.put(self._key, token)
            return token

    def drop(self, token: AccessToken) -> None:
        token_cache().drop(self._key, token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
        response = yield request
        if response.status_code == 401 and self._clock() - token.issued_at > FRESH_TOKEN_SECONDS:
            self.drop(token)
            token = self.token()
            request.headers["Authorization"] = f"Bearer {token.value.get_secret_value()}"
            yield request

    def _request(self) -> AccessToken:
        remote = f"{self._system} token service"
        what = "getting an access token"
        sent_at = self._clock()
        answer = fetch_within(
            self._http,
            "POST",
            self._path,
            deadline_seconds=TOKEN_CALL_SECONDS,
            remote=remote,
            what=what,
            errors=ACCOUNTING_ERRORS,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret.get_secret_value(),
                "scope": self._scope,
            },
            headers={"Accept": "application/json"},
        )
        status = answer.status_code
        if 300 <= status < 400 or status in SYSTEM_FAULT_STATUSES:
            kind = "a redirect, which we do not follow" if status < 400 else "an unexpected answer"
            raise AccountingSystemUnavailable(
                f"{remote} answered {status} ({kind}) while {what}",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
            )
        body = _json_object(answer)
        if not 200 <= status < 300:
            refusal = _refusal(status, body)
            logger.warning(
                "the token service refused a client-credentials request",
                extra={"system": self._system, "status": status, "error": refusal.error, "codes": refusal.codes},
            )
            raise self._refused(refusal, self.tenant)
        access = body.get("access_token") if body is not None else None
        if body is None or not isinstance(access, str) or not access:
            raise AccountingSystemUnavailable(
                f"{remote} answered with something that is not an access token while {what}",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
            )
        expires_in = body.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():  # some services send it as text
            expires_in = int(expires_in)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or not 0 < expires_in < 10**7:
            expires_in = FALLBACK_EXPIRES_IN
        margin = min(EXPIRY_MARGIN_SECONDS, expires_in / 2)
        return AccessToken(SecretStr(access), use_until=sent_at + expires_in - margin, issued_at=sent_at)


def _json_object(answer: Answer) -> dict[str, Any] | None:
    try:
        body = json.loads(answer.content)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _refusal(status: int, body: dict[str, Any] | None) -> TokenRefusal:
    body = body or {}
    error = body.get("error")
    codes = body.get("error_codes")
    return TokenRefusal(
        status,
        error if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,64}", error) else "",
        tuple(c for c in codes if isinstance(c, int) and not isinstance(c, bool)) if isinstance(codes, list) else (),
    )


# ---------------------------------------------------------------- the system's declaration


class ClientCredentialsSettings(ConnectorSettings):
    """What every client-credentials system's settings hold besides its token service's base URL."""

    api_base_url: HttpUrl


ConnectorFactory = Callable[[httpx.Client, ClientCredentialsGrant, CompanyConfiguration], AccountingConnector]
"""Builds the connector from its API client, the company's grant and its configuration."""


@dataclass(frozen=True)
class ClientCredentialsSystem(TokenServiceSystem):
    """An accounting system reached with the client-credentials grant of the customer's app.

    Its settings are ``<PREFIX>API_BASE_URL`` and ``<PREFIX><ROLE>_BASE_URL`` (the token
    service); its HTTP clients are ``<system_id>`` (the API) and ``<system_id>-<role>``. The
    token path may name ``{tenant}``: ``tenant_of`` reads it from the company's configuration.
    """

    system_id: str
    display_name: str
    env_prefix: str
    api_base_url: str
    token_service: TokenService
    scope: str
    tenant_of: Callable[[CompanyConfiguration], str]
    refused: RefusalReader = field(default=_generic_refusal)

    @cached_property
    def settings(self) -> type[ClientCredentialsSettings]:
        """The system's ``ConnectorSettings`` class (one per system)."""
        return cast(type[ClientCredentialsSettings], self.settings_class(ClientCredentialsSettings))

    def grant(self, env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> ClientCredentialsGrant:
        """The company's grant: its app's id and secret (read now: ``CredentialsMissing`` /
        ``CredentialsUnreadable`` when unusable; re-read with ``refresh``)."""
        assert config.accounting_credentials_secret_id is not None
        credentials = env.credentials.load(config.accounting_credentials_secret_id, ClientCredentials, refresh=refresh)
        return ClientCredentialsGrant(
            env.http[self.token_client],
            path=self.token_service.path,
            scope=self.scope,
            tenant=self.tenant_of(config),
            credentials=credentials,
            system=self.display_name,
            refused=self.refused,
        )

    def spec(self, connector: ConnectorFactory, **spec: Any) -> ConnectorSpec:
        """The system's ``ConnectorSpec``: ``connector`` builds it from the API client, the grant and
        the configuration; ``spec`` is the rest (mappings, company ref rule, ...). The company's
        secret holds ``ClientCredentials``; a rejection re-reads it once (it may have been rotated)."""

        def create(env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> AccountingConnector:
            return connector(env.http[self.api_client], self.grant(env, config, refresh), config)

        return self.connector_spec(create, credentials=ClientCredentials, reread_on_rejection=True, **spec)
