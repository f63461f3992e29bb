"""Simulator of Xero's identity service and Accounting API (read side), both on one server.

Point ``XERO_IDENTITY_BASE_URL`` and ``XERO_API_BASE_URL`` at the same ``base_url``:
``POST /connect/token`` (identity.xero.com), ``GET /connections`` and ``GET /api.xro/2.0/``
``Organisation``, ``Organisation/Actions``, ``Accounts`` and ``TaxRates`` (api.xero.com): what
the connector calls. Collections are served whole (no ``where``/``order``/paging: the connector
sends no query parameters). Paths match case-insensitively, as Xero's do.

Verified (XeroAPI/Xero-OpenAPI ``xero_accounting.yaml`` / ``xero-identity.yaml``, the recorded
cassettes of XeroAPI/xero-python, captured bodies quoted in SDK issues). Every answer the
connector gets is validated against an extract of Xero's description by
``tests/contract/test_xero_contract.py`` (closed objects, Xero's enums; see
``tests/contract/vendors/xero/SOURCE.md`` and ``facts.yaml``):

- envelopes ``{Id, Status: "OK", ProviderName, DateTimeUTC: "/Date(ms)/", <Collection>: [...]}``;
  ``Organisation/Actions`` is ``{..., Actions: [{Name, Status: ALLOWED | NOT-ALLOWED}]}`` (not
  nested under ``Organisation``); the 13 action names of the spec's example (``DEFAULT_ACTIONS``);
- ``Organisation.OrganisationID`` equals the connection's ``tenantId`` (xero-python cassettes);
- ``/connections`` items ``{id, authEventId, tenantId, tenantType, tenantName, createdDateUtc,
  updatedDateUtc}`` with .NET-style timestamps (``2020-03-18T21:20:07.7179250``), ``?authEventId=``;
- token response ``{id_token, access_token, expires_in: 1800, token_type: "Bearer",
  refresh_token, scope: "<space separated>"}``; a refused refresh is 400 with exactly
  ``{"error":"invalid_grant"}``; bad client credentials give ``{"error":"invalid_client"}``;
  both client_secret_basic and client_secret_post are accepted (xero-python posts the secret);
- problem-details errors ``{Type: null, Title, Status, Detail, Instance, Extensions: {}}``:
  401 ``TokenExpired: token expired at MM/dd/yyyy HH:mm:ss``; 401 ``AuthorizationUnsuccessful``
  for an endpoint whose scope was not granted; 403 ``Forbidden`` / ``AuthenticationUnsuccessful``
  for a missing ``xero-tenant-id`` header or a tenant the token is not connected to;
- scopes per endpoint (spec ``security``): every endpoint served here needs
  ``accounting.settings`` or ``accounting.settings.read``;
- the access token's claims (``nbf, exp, iss, aud, client_id, sub, auth_time, xero_userid,
  global_session_id, jti, authentication_event_id, scope``) and ``scope`` being a JSON *list*
  (Xero's decoded-token example, seen through a verbatim copy in another IdentityServer's docs
  [3rd-party]; ``scope_claim="string"`` gives a space-separated string instead); refresh tokens
  exist only with ``offline_access``; access tokens live 30 min, refresh tokens 60 days unused;
- ``X-DayLimit-Remaining`` / ``X-MinLimit-Remaining`` / ``X-AppMinLimit-Remaining`` on Accounting
  answers; 429 carries ``Retry-After`` and ``X-Rate-Limit-Problem`` (``minute`` / ``day``, as
  pyxero branches on); limits 60/min and 5,000/day per tenant, 10,000/min per app.

Assumed (marked SIMULATOR CHOICE where it matters): the status of ``invalid_client`` (401 here,
as RFC 6749 requires for HTTP Basic; IdentityServer, which Xero runs, may answer 400 — see
``invalid_client_status``); the check order tenant-then-scope; unknown/revoked access tokens
getting 401 ``AuthenticationUnsuccessful``; the 429 body; UK ``ReportTaxType`` values.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs

from .base import Fault, OAuthProvider, SimRequest, SimResponse, SimulatorServer
from .registry import AccountingSeed, AccountingSimulator, seed_oauth_app, store_token_set

__all__ = [
    "ACCESS_TOKEN_TTL",
    "DEFAULT_ACTIONS",
    "REFRESH_TOKEN_TTL",
    "SETTINGS_SCOPES",
    "App",
    "Grant",
    "Organisation",
    "XeroSimulator",
    "account",
    "default_accounts",
    "default_actions",
    "default_tax_rates",
    "tax_rate",
]

ACCESS_TOKEN_TTL = 1800
REFRESH_TOKEN_TTL = 60 * 86400
"""Xero: a refresh token expires after 60 days unused."""
MINUTE_LIMIT = 60
DAY_LIMIT = 5000
APP_MINUTE_LIMIT = 10_000
ISSUER = "https://identity.xero.com"

SETTINGS_SCOPES = frozenset({"accounting.settings", "accounting.settings.read"})
"""Any one of these opens every endpoint served here (GET only, so ``.read`` suffices)."""

DEFAULT_ACTIONS: tuple[str, ...] = (
    "CreateApprovedInvoice",
    "CreateDraftPurchaseOrder",
    "CreateApprovedBill",
    "AttachFilesIntoInvoice",
    "UseMulticurrency",
    "CreateDraftInvoice",
    "CreateRepeatingInvoice",
    "CreateRepeatingBill",
    "CreateSentQuote",
    "CreateInvoicePayment",
    "CreateApprovedPurchaseOrder",
    "CreateDraftQuote",
    "CreateDraftBill",
)
"""The action names of the spec's ``getOrganisationActions`` example, in its order. No
manual-journal action appears there; add one per organisation if a test needs it."""

# AccountType -> Class (Xero derives Class from Type; read-only in the API).
_ACCOUNT_CLASS = {
    "BANK": "ASSET",
    "CURRENT": "ASSET",
    "FIXED": "ASSET",
    "INVENTORY": "ASSET",
    "NONCURRENT": "ASSET",
    "PREPAYMENT": "ASSET",
    "CURRLIAB": "LIABILITY",
    "LIABILITY": "LIABILITY",
    "TERMLIAB": "LIABILITY",
    "PAYG": "LIABILITY",
    "EQUITY": "EQUITY",
    "DEPRECIATN": "EXPENSE",
    "DIRECTCOSTS": "EXPENSE",
    "EXPENSE": "EXPENSE",
    "OVERHEADS": "EXPENSE",
    "OTHERINCOME": "REVENUE",
    "REVENUE": "REVENUE",
    "SALES": "REVENUE",
}


# ------------------------------------------------------------------ time formats


def _ms_date(epoch: float, *, offset: bool = False) -> str:
    """Xero's WCF date: ``/Date(1552404447003)/`` (``+0000`` suffix on record timestamps)."""
    return f"/Date({int(epoch * 1000)}{'+0000' if offset else ''})/"


def _net_datetime(epoch: float) -> str:
    """``2020-03-18T21:20:07.7179250`` (seven fractional digits, no zone), as /connections writes."""
    whole = int(epoch)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((epoch - whole) * 1e7):07d}"


def _date_ms(iso_date: str) -> str:
    """``2026-03-31`` -> ``/Date(1774915200000+0000)/``."""
    return _ms_date(calendar.timegm(time.strptime(iso_date, "%Y-%m-%d")), offset=True)


# ------------------------------------------------------------------ seeded data


def account(
    code: str,
    name: str,
    type_: str,
    *,
    tax_type: str = "NONE",
    status: str = "ACTIVE",
    system_account: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``Account`` as GET /Accounts returns it. ``extra`` adds or overrides fields
    (e.g. ``BankAccountType="CREDITCARD"``); ``SystemAccount`` is present only when set."""
    item: dict[str, Any] = {
        "AccountID": str(uuid.uuid4()),
        "Code": code,
        "Name": name,
        "Status": status,
        "Type": type_,
        "TaxType": tax_type,
        "Class": _ACCOUNT_CLASS.get(type_, "EXPENSE"),
        "EnablePaymentsToAccount": False,
        "ShowInExpenseClaims": type_ in ("EXPENSE", "OVERHEADS", "DIRECTCOSTS"),
        "HasAttachments": False,
        "AddToWatchlist": False,
        "UpdatedDateUTC": _ms_date(1_700_000_000, offset=True),
    }
    if system_account:
        item["SystemAccount"] = system_account
    item.update(extra)
    return item


def default_accounts() -> list[dict[str, Any]]:
    """A UK chart: 090 bank, 200 sales, 400/429/433/477 expenses, 499 ARCHIVED expense,
    610 "Pleo Card" (BANK, CREDITCARD), 800 payables (system CREDITORS), 820 VAT (system GST).

    In Xero's stock UK chart 610 is Accounts Receivable (from memory, not verified); here it is
    the card account, and receivables are left out.
    """
    bank = {"BankAccountType": "BANK", "CurrencyCode": "GBP"}
    return [
        account("090", "Business Bank Account", "BANK", BankAccountNumber="20304012345678", **bank),
        account("200", "Sales", "REVENUE", tax_type="OUTPUT2"),
        account("400", "Advertising", "EXPENSE", tax_type="INPUT2"),
        account("429", "General Expenses", "EXPENSE", tax_type="INPUT2"),
        account("433", "Insurance", "EXPENSE", tax_type="EXEMPTINPUT"),
        account("477", "Wages and Salaries", "EXPENSE"),
        account("499", "Old Expenses", "EXPENSE", tax_type="INPUT2", status="ARCHIVED"),
        account(
            "610", "Pleo Card", "BANK", BankAccountNumber="PLEO0001", BankAccountType="CREDITCARD", CurrencyCode="GBP"
        ),
        account("800", "Accounts Payable", "CURRLIAB", system_account="CREDITORS"),
        account("820", "VAT", "CURRLIAB", system_account="GST"),
    ]


def tax_rate(
    tax_type: str,
    name: str,
    rate: float,
    *,
    status: str = "ACTIVE",
    report_tax_type: str | None = None,
    expenses: bool = True,
    revenue: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One ``TaxRate`` (one VAT component) as GET /TaxRates returns it. ``ReportTaxType`` is one
    of Xero's report tax types (an enum in xero_accounting.yaml), never the rate's own
    ``TaxType`` by default: a custom rate ``TAX002`` reports as ``INPUT`` (usable on expenses)
    or ``OUTPUT``; pass ``report_tax_type`` for anything else."""
    item: dict[str, Any] = {
        "Name": name,
        "TaxType": tax_type,
        "ReportTaxType": report_tax_type or ("INPUT" if expenses else "OUTPUT"),
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": expenses,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": revenue,
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
        "Status": status,
        "TaxComponents": [{"Name": "VAT", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
    }
    item.update(extra)
    return item


def default_tax_rates() -> list[dict[str, Any]]:
    """UK VAT: INPUT2 20% on expenses, OUTPUT2 20% on income, INPUT (legacy 17.5%, still
    ACTIVE as system rates are), ZERORATEDINPUT, EXEMPTINPUT, NONE, and a DELETED custom
    rate TAX001. TaxType/Name pairs from XeroPHP's UK enum [3rd-party]."""
    return [
        tax_rate("INPUT2", "20% (VAT on Expenses)", 20.0, report_tax_type="INPUT"),
        tax_rate("OUTPUT2", "20% (VAT on Income)", 20.0, report_tax_type="OUTPUT", expenses=False, revenue=True),
        tax_rate("INPUT", "17.5% (VAT on Expenses)", 17.5, report_tax_type="INPUT"),
        tax_rate("ZERORATEDINPUT", "Zero Rated Expenses", 0.0, report_tax_type="ZERORATEDINPUT"),
        tax_rate("EXEMPTINPUT", "Exempt Expenses", 0.0, report_tax_type="EXEMPTINPUT"),
        tax_rate("NONE", "No VAT", 0.0, report_tax_type="NONE", revenue=True),
        tax_rate("TAX001", "Old Custom Rate", 12.5, status="DELETED", report_tax_type="INPUT"),
    ]


def default_actions() -> dict[str, str]:
    """Every ``DEFAULT_ACTIONS`` name ALLOWED."""
    return dict.fromkeys(DEFAULT_ACTIONS, "ALLOWED")


# ------------------------------------------------------------------ state


@dataclass(frozen=True)
class App:
    """Our OAuth client at Xero."""

    client_id: str
    client_secret: str
    name: str = "Pleo Export Preflight"
    """Shown as ``ProviderName`` in Accounting API envelopes."""


@dataclass
class Organisation:
    """One Xero organisation (tenant). Mutate freely between requests, e.g.
    ``org.actions["CreateApprovedBill"] = "NOT-ALLOWED"`` or ``org.account("429")["Status"] = "ARCHIVED"``."""

    tenant_id: str
    name: str
    short_code: str
    country: str = "GB"
    base_currency: str = "GBP"
    is_demo: bool = False
    accounts: list[dict[str, Any]] = field(default_factory=default_accounts)
    tax_rates: list[dict[str, Any]] = field(default_factory=default_tax_rates)
    actions: dict[str, str] = field(default_factory=default_actions)
    """Action name -> ``ALLOWED`` / ``NOT-ALLOWED``, served in this order."""
    legal_name: str | None = None
    tax_number: str = "GB123456789"
    period_lock_date: str | None = None
    """``YYYY-MM-DD``; served as ``PeriodLockDate`` only when set."""
    end_of_year_lock_date: str | None = None
    financial_year_end_day: int = 31
    financial_year_end_month: int = 3
    organisation_status: str = "ACTIVE"
    edition_class: str | None = None
    """``Class`` of the subscription; ``None``: DEMO for demo companies, else PREMIUM."""
    created_at: float = 1_600_000_000.0

    def account(self, code: str) -> dict[str, Any] | None:
        """The seeded account with this code (the live dict), or ``None``."""
        return next((a for a in self.accounts if a.get("Code") == code), None)

    def tax_rate(self, tax_type: str) -> dict[str, Any] | None:
        """The seeded tax rate with this TaxType (the live dict), or ``None``."""
        return next((t for t in self.tax_rates if t.get("TaxType") == tax_type), None)


@dataclass
class Grant:
    """A user's consent for our app over some organisations, with its current tokens.
    The simulator updates ``access_token``/``refresh_token``/``expires_at`` on every refresh.
    Tokens are secrets: never log them."""

    client_id: str
    tenant_ids: list[str]
    scopes: tuple[str, ...]
    access_token: str
    refresh_token: str | None
    """``None`` unless ``offline_access`` was granted (Xero issues no refresh token then)."""
    expires_at: float
    """Epoch seconds (simulator clock) when ``access_token`` expires."""
    auth_event_id: str
    user_id: str
    """``xero_userid`` claim."""
    id_token: str | None = None
    revoked: bool = False
    revoked_reason: str | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = 0.0
    connections: dict[str, tuple[str, float]] = field(default_factory=dict)
    """tenant id (lower case) -> (connection id, connected at)."""
    previous_refresh_token: str | None = None
    last_token_response: dict[str, Any] | None = None

    @property
    def scope(self) -> str:
        """Granted scopes, space separated (as the token endpoint answers)."""
        return " ".join(self.scopes)


@dataclass
class _AccessToken:
    grant: Grant
    expires_at: float


@dataclass
class _RefreshToken:
    grant: Grant
    expires_at: float
    used_at: float | None = None


# ------------------------------------------------------------------ helpers


def _looks_like_guid(value: str) -> bool:
    return len(value) == 36 and value.count("-") == 4


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: Mapping[str, Any]) -> str:
    """A JWT-shaped token. The signature is random bytes: nothing can verify it, so a client
    may read claims but must not trust them (nor should it trust Xero's without the JWKS)."""
    header = {"alg": "RS256", "kid": "SIMULATED", "typ": "JWT"}
    return ".".join(
        (
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(dict(claims), separators=(",", ":")).encode()),
            _b64url(secrets.token_bytes(32)),
        )
    )


def _problem(status: int, title: str, detail: str) -> SimResponse:
    return SimResponse(
        status,
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": str(uuid.uuid4()),
            "Extensions": {},
        },
    )


def _oauth_error(status: int, error: str) -> SimResponse:
    return SimResponse(status, {"error": error}, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _bearer(request: SimRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


_ACCOUNTING = re.compile(r"(?i)/api\.xro/2\.0/.*")


# ------------------------------------------------------------------ simulator


class XeroSimulator(OAuthProvider, SimulatorServer):
    """Xero identity (token, connections) and Accounting API reads.

    Seed with ``add_app``, ``add_organisation`` and ``grant``; then the client refreshes at
    ``POST /connect/token`` and calls ``/connections`` and ``/api.xro/2.0/...`` with
    ``Authorization: Bearer`` and ``xero-tenant-id``.

    - ``refresh_grace_seconds`` (default 0): how long the *previous* refresh token still works
      after a rotation. Xero allows 30 minutes (1800). The default 0 makes any reuse of a
      rotated refresh token a replay at once: answered ``invalid_grant`` and the whole grant
      revoked, as Pleo's own OAuth does. A client that only passes against Xero's grace period
      has a refresh race (two workers refreshing one credential) that will eventually lose the
      connection; tests should catch that, not hide it. Within a grace period the previous
      token gets the latest token set again (SIMULATOR CHOICE; nothing rotates).
    - ``scope_claim``: ``"list"`` (Xero's shape) or ``"string"`` (space separated) for the
      access token's ``scope`` claim.
    - ``enforce_rate_limits``: answer 429 once a tenant's minute/day or the app's minute budget
      is spent (headers are always sent). ``inject_rate_limit`` forces one instead.
    - ``invalid_client_status``: status of ``{"error":"invalid_client"}`` (401 per RFC 6749 for
      HTTP Basic; set 400 to mimic IdentityServer's default).
    - ``clock``: epoch seconds; ``advance(seconds)`` moves the simulator's time forward.
    """

    token_path = "/connect/token"
    credential_paths = frozenset({token_path})
    credential_headers = frozenset({"authorization"})

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        refresh_grace_seconds: float = 0.0,
        scope_claim: Literal["list", "string"] = "list",
        invalid_client_status: int = 401,
        enforce_rate_limits: bool = False,
        minute_limit: int = MINUTE_LIMIT,
        day_limit: int = DAY_LIMIT,
        app_minute_limit: int = APP_MINUTE_LIMIT,
    ) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        """Seconds since the epoch; replace to control token expiry (``advance`` adds to it)."""
        self.refresh_grace_seconds = refresh_grace_seconds
        self.scope_claim = scope_claim
        self.invalid_client_status = invalid_client_status
        self.next_token_answer_quirk: dict[str, Any] = {}  # see OAuthProvider
        self.enforce_rate_limits = enforce_rate_limits
        self.minute_limit = minute_limit
        self.day_limit = day_limit
        self.app_minute_limit = app_minute_limit
        self._offset = 0.0
        self._apps: dict[str, App] = {}
        self._orgs: dict[str, Organisation] = {}
        self._grants: list[Grant] = []
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._tenant_usage: dict[str, list[float]] = {}  # tenant -> [minute start, minute n, day start, day n]
        self._app_usage: dict[str, list[float]] = {}  # client id -> [minute start, minute n]
        self.route("POST", r"(?i)/connect/token", self._token)
        self.route("GET", r"(?i)/connections", self._connections)
        self.route("GET", r"(?i)/api\.xro/2\.0/Organisation", self._organisation)
        self.route("GET", r"(?i)/api\.xro/2\.0/Organisation/Actions", self._actions)
        for resource in ("Accounts", "TaxRates"):
            self.route("GET", rf"(?i)/api\.xro/2\.0/{resource}", self._collection_handler(resource))

    # ------------------------------------------------------------ clock

    def now(self) -> float:
        """The simulator's time: ``clock()`` plus everything ``advance`` added."""
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's time forward (e.g. ``advance(1801)`` expires access tokens)."""
        with self.lock:
            self._offset += seconds

    # ------------------------------------------------------------ seeding

    def add_app(self, client_id: str, client_secret: str, *, name: str = "Pleo Export Preflight") -> App:
        """Register our OAuth client (HTTP Basic or form credentials at the token endpoint)."""
        app = App(client_id, client_secret, name)
        with self.lock:
            self._apps[client_id] = app
        return app

    def add_organisation(
        self,
        *,
        tenant_id: str | None = None,
        name: str,
        short_code: str | None = None,
        country: str = "GB",
        base_currency: str = "GBP",
        is_demo: bool = False,
        accounts: list[dict[str, Any]] | None = None,
        tax_rates: list[dict[str, Any]] | None = None,
        actions: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> Organisation:
        """Create an organisation and return it (mutable). ``None`` data sets mean the UK
        defaults (``default_*``); pass ``[]`` for none. ``actions`` overrides or adds to the
        default ALLOWED actions. ``settings`` sets other ``Organisation`` fields
        (``period_lock_date="2026-03-31"``, ``edition_class="STARTER"``...)."""
        organisation = Organisation(
            tenant_id=str(tenant_id or uuid.uuid4()),
            name=name,
            short_code=short_code or "!" + secrets.token_urlsafe(4)[:5],
            country=country,
            base_currency=base_currency,
            is_demo=is_demo,
            **settings,
        )
        if accounts is not None:
            organisation.accounts = accounts
        if tax_rates is not None:
            organisation.tax_rates = tax_rates
        if actions is not None:
            organisation.actions.update(actions)
        with self.lock:
            self._orgs[organisation.tenant_id.lower()] = organisation
        return organisation

    def organisation(self, tenant_id: str) -> Organisation:
        """The organisation with this tenant id (``KeyError`` if none)."""
        with self.lock:
            return self._orgs[tenant_id.lower()]

    def grant(
        self,
        *,
        client_id: str,
        tenant_ids: Iterable[str],
        scopes: Iterable[str] | str,
        access_ttl: float = ACCESS_TOKEN_TTL,
        user_id: str | None = None,
    ) -> Grant:
        """A user consents to our app for these organisations: returns the Grant with its first
        token set (as the authorization-code exchange would give). Scopes may be a list or a
        space-separated string; ``offline_access`` is needed for a refresh token, ``openid``
        for an id token."""
        names = scopes.split() if isinstance(scopes, str) else list(scopes)
        tenants = [str(t) for t in tenant_ids]
        with self.lock:
            if client_id not in self._apps:
                raise ValueError(f"unknown client_id {client_id!r}; call add_app() first")
            unknown = [t for t in tenants if t.lower() not in self._orgs]
            if unknown:
                raise ValueError(f"unknown tenant ids {unknown}; call add_organisation() first")
            now = self.now()
            grant = Grant(
                client_id=client_id,
                tenant_ids=tenants,
                scopes=tuple(dict.fromkeys(names)),
                access_token="",
                refresh_token=None,
                expires_at=now,
                auth_event_id=str(uuid.uuid4()),
                user_id=user_id or str(uuid.uuid4()),
                created_at=now,
                connections={t.lower(): (str(uuid.uuid4()), now) for t in tenants},
            )
            self._grants.append(grant)
            self._issue(grant, access_ttl)
        return grant

    def revoke_grant(self, grant: Grant, reason: str = "revoked by the user") -> None:
        """The user disconnects our app: every token of the grant stops working."""
        with self.lock:
            grant.revoked = True
            grant.revoked_reason = reason

    def disconnect(self, grant: Grant, tenant_id: str) -> None:
        """The user removes one organisation from the connection (in Xero's UI or with
        ``DELETE /connections/{id}``, which is not served: the connector never disconnects)."""
        with self.lock:
            grant.connections.pop(tenant_id.lower(), None)
            grant.tenant_ids = [t for t in grant.tenant_ids if t.lower() != tenant_id.lower()]

    def expire_access_token(self, grant: Grant) -> None:
        """Make the grant's current access token expired now (its refresh token is untouched)."""
        with self.lock:
            record = self._access.get(grant.access_token)
            if record is not None:
                record.expires_at = self.now() - 1
            grant.expires_at = self.now() - 1

    def inject_rate_limit(
        self,
        problem: Literal["minute", "day", "appminute"] = "minute",
        *,
        retry_after: int = 60,
        tenant_id: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Answer the next ``times`` Accounting calls (of one tenant, if given) with 429,
        ``Retry-After`` and ``X-Rate-Limit-Problem``. ``appminute`` is an assumed value."""
        remaining = {"minute": "X-MinLimit-Remaining", "day": "X-DayLimit-Remaining"}.get(
            problem, "X-AppMinLimit-Remaining"
        )
        headers = {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem, remaining: "0"}
        when = None
        if tenant_id is not None:
            wanted = tenant_id.lower()

            def when(request: SimRequest) -> bool:
                return request.headers.get("xero-tenant-id", "").lower() == wanted

        return self.inject("*", _ACCOUNTING.pattern, status=429, headers=headers, times=times, when=when)

    def reset(self) -> None:
        """Drop apps, organisations, grants, tokens, rate counters, the clock offset, recorded
        requests and faults."""
        with self.lock:
            super().reset()
            self._apps.clear()
            self._orgs.clear()
            self._grants.clear()
            self._access.clear()
            self._refresh.clear()
            self._tenant_usage.clear()
            self._app_usage.clear()
            self._offset = 0.0
            self.next_token_answer_quirk = {}

    # ------------------------------------------------------------ tokens

    def _issue(self, grant: Grant, access_ttl: float = ACCESS_TOKEN_TTL) -> dict[str, Any]:
        """Mint a new token set for the grant (caller holds the lock) and return the token response."""
        now = self.now()
        expires_at = now + access_ttl
        scope_claim: Any = list(grant.scopes) if self.scope_claim == "list" else grant.scope
        access = _jwt(
            {
                "nbf": int(now),
                "exp": int(expires_at),
                "iss": ISSUER,
                "aud": f"{ISSUER}/resources",
                "client_id": grant.client_id,
                "sub": uuid.UUID(grant.user_id).hex if _looks_like_guid(grant.user_id) else grant.user_id,
                "auth_time": int(grant.created_at),
                "xero_userid": grant.user_id,
                "global_session_id": grant.session_id,
                "jti": uuid.uuid4().hex,
                "authentication_event_id": grant.auth_event_id,
                "scope": scope_claim,
            }
        )
        self._access[access] = _AccessToken(grant, expires_at)
        grant.access_token = access
        grant.expires_at = expires_at
        if "offline_access" in grant.scopes:
            refresh = secrets.token_hex(32)
            self._refresh[refresh] = _RefreshToken(grant, now + REFRESH_TOKEN_TTL)
            grant.refresh_token = refresh
        if "openid" in grant.scopes:
            grant.id_token = _jwt(
                {
                    "nbf": int(now),
                    "exp": int(now + 300),
                    "iss": ISSUER,
                    "aud": grant.client_id,
                    "iat": int(now),
                    "auth_time": int(grant.created_at),
                    "xero_userid": grant.user_id,
                    "global_session_id": grant.session_id,
                    "sid": grant.session_id,
                    "sub": grant.user_id,
                }
            )
        response: dict[str, Any] = {}
        if grant.id_token:
            response["id_token"] = grant.id_token
        response.update(access_token=access, expires_in=int(access_ttl), token_type="Bearer")
        if grant.refresh_token:
            response["refresh_token"] = grant.refresh_token
        response["scope"] = grant.scope
        grant.last_token_response = response
        return response

    def _client(self, request: SimRequest, form: dict[str, list[str]]) -> App | None:
        """The app authenticated by HTTP Basic (client_secret_basic) or by form fields
        (client_secret_post); ``None`` when the credentials are missing or wrong."""
        client_id = secret = ""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
        else:
            client_id = (form.get("client_id") or [""])[0]
            secret = (form.get("client_secret") or [""])[0]
        with self.lock:
            app = self._apps.get(client_id)
        if app is None or not secrets.compare_digest(app.client_secret.encode(), secret.encode()):
            return None
        return app

    def _token(self, request: SimRequest) -> SimResponse:
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        app = self._client(request, form)
        if app is None:
            return _oauth_error(self.invalid_client_status, "invalid_client")
        grant_type = (form.get("grant_type") or [""])[0]
        if grant_type != "refresh_token":
            # SIMULATOR CHOICE: only refresh is simulated; grant() stands in for the code exchange.
            return _oauth_error(400, "unsupported_grant_type")
        presented = (form.get("refresh_token") or [""])[0]
        if not presented:
            return _oauth_error(400, "invalid_request")
        with self.lock:
            now = self.now()
            record = self._refresh.get(presented)
            if record is None or record.grant.client_id != app.client_id or record.grant.revoked:
                return _oauth_error(400, "invalid_grant")
            grant = record.grant
            if record.used_at is not None:
                in_grace = (
                    presented == grant.previous_refresh_token and now - record.used_at < self.refresh_grace_seconds
                )
                if in_grace and grant.last_token_response is not None:
                    return SimResponse(200, dict(grant.last_token_response), headers={"Cache-Control": "no-store"})
                grant.revoked = True
                grant.revoked_reason = "refresh token replayed"
                return _oauth_error(400, "invalid_grant")
            if now >= record.expires_at:
                return _oauth_error(400, "invalid_grant")
            record.used_at = now
            grant.previous_refresh_token = presented
            body = self._token_answer(self._issue(grant))
        return SimResponse(200, dict(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ------------------------------------------------------------ auth

    def _authenticate(self, request: SimRequest) -> tuple[Grant | None, SimResponse | None]:
        token = _bearer(request)
        with self.lock:
            record = self._access.get(token) if token else None
            if record is None or record.grant.revoked:
                return None, _problem(401, "Unauthorized", "AuthenticationUnsuccessful")
            if self.now() >= record.expires_at:
                stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime(record.expires_at))
                return None, _problem(401, "Unauthorized", f"TokenExpired: token expired at {stamp}")
            return record.grant, None

    def _authorise(self, request: SimRequest) -> tuple[tuple[Grant, Organisation] | None, SimResponse | None]:
        grant, denied = self._authenticate(request)
        if denied:
            return None, denied
        assert grant is not None
        tenant = request.headers.get("xero-tenant-id", "").strip().lower()
        with self.lock:
            organisation = self._orgs.get(tenant)
            if not tenant or organisation is None or tenant not in grant.connections:
                return None, _problem(403, "Forbidden", "AuthenticationUnsuccessful")
            if not SETTINGS_SCOPES & set(grant.scopes):
                return None, _problem(401, "Unauthorized", "AuthorizationUnsuccessful")
            limited = self._consume(grant.client_id, tenant)
        if limited:
            return None, limited
        return (grant, organisation), None

    def _consume(self, client_id: str, tenant: str) -> SimResponse | None:
        """Count one call against the tenant's minute/day and the app's minute budget (lock held)."""
        now = self.now()
        usage = self._tenant_usage.setdefault(tenant, [now, 0, now, 0])
        if now - usage[0] >= 60:
            usage[0], usage[1] = now, 0
        if now - usage[2] >= 86400:
            usage[2], usage[3] = now, 0
        app = self._app_usage.setdefault(client_id, [now, 0])
        if now - app[0] >= 60:
            app[0], app[1] = now, 0
        if self.enforce_rate_limits:
            for problem, used, limit, started, window in (
                ("day", usage[3], self.day_limit, usage[2], 86400),
                ("minute", usage[1], self.minute_limit, usage[0], 60),
                ("appminute", app[1], self.app_minute_limit, app[0], 60),
            ):
                if used >= limit:
                    retry_after = max(1, int(started + window - now + 0.999))
                    response = _problem(429, "Too Many Requests", f"The {problem} rate limit was exceeded")
                    response.headers = {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem}
                    return response
        usage[1] += 1
        usage[3] += 1
        app[1] += 1
        return None

    def _remaining(self, client_id: str | None, tenant: str) -> dict[str, str]:
        with self.lock:
            usage = self._tenant_usage.get(tenant, [0.0, 0, 0.0, 0])
            app = self._app_usage.get(client_id or "", [0.0, 0])
            return {
                "X-DayLimit-Remaining": str(max(0, self.day_limit - int(usage[3]))),
                "X-MinLimit-Remaining": str(max(0, self.minute_limit - int(usage[1]))),
                "X-AppMinLimit-Remaining": str(max(0, self.app_minute_limit - int(app[1]))),
            }

    # ------------------------------------------------------------ response shaping

    def unknown_route(self, request: SimRequest, *, path_known: bool) -> SimResponse:
        # SIMULATOR CHOICE: Xero's 404/405 bodies for unknown resources were not found.
        if path_known:
            return _problem(405, "Method Not Allowed", f"The {request.method} method is not supported here")
        return _problem(404, "Not Found", "The resource you're looking for cannot be found")

    def decorate(self, request: SimRequest, response: SimResponse) -> SimResponse:
        """Rate-limit headers on every Accounting API answer (injected ones included)."""
        if _ACCOUNTING.fullmatch(request.path):
            token = self._access.get(_bearer(request))
            client_id = token.grant.client_id if token else None
            tenant = request.headers.get("xero-tenant-id", "").strip().lower()
            response.headers = {**self._remaining(client_id, tenant), **(response.headers or {})}
        return response

    def _envelope(self, grant: Grant, key: str, items: Any) -> SimResponse:
        correlation = str(uuid.uuid4())
        with self.lock:
            app = self._apps.get(grant.client_id)
        body: dict[str, Any] = {
            "Id": correlation,
            "Status": "OK",
            "ProviderName": app.name if app else grant.client_id,
            "DateTimeUTC": _ms_date(self.now()),
        }
        body[key] = items
        return SimResponse(200, body, headers={"Xero-Correlation-Id": correlation})

    # ------------------------------------------------------------ identity handlers

    def _connections(self, request: SimRequest) -> SimResponse:
        grant, denied = self._authenticate(request)
        if denied:
            return denied
        assert grant is not None
        wanted = request.param("authEventId")
        with self.lock:
            if wanted and wanted.lower() != grant.auth_event_id.lower():
                return SimResponse(200, [])
            items = []
            for tenant, (connection_id, connected_at) in grant.connections.items():
                organisation = self._orgs.get(tenant)
                if organisation is None:
                    continue
                items.append(
                    {
                        "id": connection_id,
                        "authEventId": grant.auth_event_id,
                        "tenantId": organisation.tenant_id,
                        "tenantType": "ORGANISATION",
                        "tenantName": organisation.name,
                        "createdDateUtc": _net_datetime(connected_at),
                        "updatedDateUtc": _net_datetime(connected_at),
                    }
                )
        return SimResponse(200, items)

    # ------------------------------------------------------------ accounting handlers

    def _organisation(self, request: SimRequest) -> SimResponse:
        context, denied = self._authorise(request)
        if denied:
            return denied
        assert context is not None
        grant, organisation = context
        return self._envelope(grant, "Organisations", [self._render_organisation(organisation)])

    def _actions(self, request: SimRequest) -> SimResponse:
        context, denied = self._authorise(request)
        if denied:
            return denied
        assert context is not None
        grant, organisation = context
        with self.lock:
            actions = [{"Name": name, "Status": status} for name, status in organisation.actions.items()]
        return self._envelope(grant, "Actions", actions)

    def _collection_handler(self, resource: str) -> Callable[[SimRequest], SimResponse]:
        def handler(request: SimRequest) -> SimResponse:
            context, denied = self._authorise(request)
            if denied:
                return denied
            assert context is not None
            grant, organisation = context
            with self.lock:
                data = organisation.accounts if resource == "Accounts" else organisation.tax_rates
                items = copy.deepcopy(data)
            return self._envelope(grant, resource, items)

        return handler

    def _render_organisation(self, organisation: Organisation) -> dict[str, Any]:
        version = {"GB": "UK", "AU": "AU", "NZ": "NZ", "US": "US"}.get(organisation.country, "GLOBAL")
        body: dict[str, Any] = {
            "Name": organisation.name,
            "LegalName": organisation.legal_name or organisation.name,
            "PaysTax": True,
            "Version": version,
            "OrganisationType": "COMPANY",
            "BaseCurrency": organisation.base_currency,
            "CountryCode": organisation.country,
            "IsDemoCompany": organisation.is_demo,
            "OrganisationStatus": organisation.organisation_status,
            "TaxNumber": organisation.tax_number,
            "FinancialYearEndDay": organisation.financial_year_end_day,
            "FinancialYearEndMonth": organisation.financial_year_end_month,
            "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
        }
        if organisation.period_lock_date:
            body["PeriodLockDate"] = _date_ms(organisation.period_lock_date)
        if organisation.end_of_year_lock_date:
            body["EndOfYearLockDate"] = _date_ms(organisation.end_of_year_lock_date)
        body.update(
            {
                "CreatedDateUTC": _ms_date(organisation.created_at),
                "OrganisationEntityType": "COMPANY",
                "Timezone": "GMTSTANDARDTIME" if organisation.country == "GB" else "UTC",
                "ShortCode": organisation.short_code,
                "OrganisationID": organisation.tenant_id,
                "Edition": "BUSINESS",
                "Class": organisation.edition_class or ("DEMO" if organisation.is_demo else "PREMIUM"),
                "Addresses": [],
                "Phones": [],
                "ExternalLinks": [],
                "PaymentTerms": {},
            }
        )
        return body


# ---------------------------------------------------------------- the sandbox's view

CLIENT_ID = "pleo-preflight-local"
CLIENT_SECRET_ID = "export-preflight/xero/client"
DEFAULT_SCOPES = "openid offline_access accounting.settings accounting.manualjournals accounting.attachments"


def _prepare(sandbox: Any, simulator: XeroSimulator) -> dict[str, str]:
    """Our OAuth app at Xero, and its client credentials in Secrets Manager."""
    return seed_oauth_app(
        sandbox, simulator, client_id=CLIENT_ID, secret_id=CLIENT_SECRET_ID, label="xero client secret"
    )


def _seed(
    sandbox: Any,
    simulator: XeroSimulator,
    slug: str,
    *,
    company_id: str,
    scopes: str = DEFAULT_SCOPES,
    organisation: dict[str, Any] | None = None,
    connect_tenant: bool = True,
    expired_token: bool = False,
) -> AccountingSeed:
    """A Xero organisation (with a Pleo clearing account 615) and a sister organisation,
    our app's grant (to the sister only with ``connect_tenant=False``), and the token set
    in Secrets Manager (tagged as a token set)."""
    name = slug.replace("-", " ").title()
    org = simulator.add_organisation(name=f"{name} Ltd", **(organisation or {}))
    org.accounts.append(account("615", "Pleo Clearing", "CURRLIAB"))
    other = simulator.add_organisation(name=f"{name} Holding Ltd")
    grant = simulator.grant(
        client_id=CLIENT_ID, tenant_ids=[org.tenant_id] if connect_tenant else [other.tenant_id], scopes=scopes
    )
    if expired_token:
        simulator.expire_access_token(grant)
    secret_id = f"export-preflight/xero/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
    store_token_set(sandbox, secret_id, grant)
    return AccountingSeed(
        company_ref=org.tenant_id,
        secret_id=secret_id,
        mappings={"expenseAccount": "429", "contraAccount": "615", "vatCodes": ["INPUT2"]},
        secrets={"access": grant.access_token or "", "refresh": grant.refresh_token or ""},
        handle=grant,
    )


SIMULATOR = AccountingSimulator(
    system="xero",
    create=lambda latency: XeroSimulator(latency=latency),
    settings=lambda server: {
        "api_base_url": server.base_url,
        "identity_base_url": server.base_url,
        "client_credentials_secret_id": CLIENT_SECRET_ID,
    },
    seed=_seed,
    prepare=_prepare,
)
