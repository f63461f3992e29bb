"""Simulator of Fortnox's OAuth token service and API v3 (read side), both on one server.

Point ``FORTNOX_AUTH_BASE_URL`` and ``FORTNOX_API_BASE_URL`` at the same ``base_url``:
``POST /oauth-v1/token`` (apps.fortnox.se) and ``GET /3/...`` (api.fortnox.se).

Verified (fortnox.se/developer): the token answer ``{access_token, refresh_token, scope,
expires_in: 3600, token_type: "bearer"}`` with HTTP Basic client auth; refresh tokens are
single-use (45 days); error bodies ``{"ErrorInformation": {"error": 1, "message", "code"}}``
with Swedish messages; codes 1000003, 2000310, 2000311, 2001101, 2001103, 2001304; 429 above
25 requests per 5-second sliding window per client and tenant, no ``Retry-After`` mentioned.

SIMULATOR CHOICE (not found in Fortnox's pages): the refused refresh answer (400
``{"error": "invalid_grant", "error_description": "Invalid refresh token"}``) and that a
replayed refresh token revokes the whole grant (the safe assumption for single-use tokens);
the HTTP statuses carrying each code (401 token, 403 licence / user / scope, 404 not found,
500 system exception); 2000663 for a scope not granted *and* for a user without the right;
the check order API licence, scope, area licence, user; the 429 body; the shapes of
``/inbox``, ``/archive``, ``/voucherfileconnections``; VAT codes as account ``VATCode``
values (``I``, ``IVEU``); a voucher series' ``Manual`` flag as the only thing that decides
whether it takes API vouchers (integrators' reports, not Fortnox's pages).

From Fortnox's own pages and its official SDK (``tests/contract/vendors/fortnox``): the
predefined account ``SUPDEBT`` (2440 in a BAS chart); the scope of each resource
(``settings`` for predefined accounts and the locked period, ``supplier`` for suppliers,
``supplierinvoice`` for supplier invoices, ``bookkeeping`` for years, accounts and voucher
series); ``GET /3/settings/lockedperiod`` answering ``{"LockedPeriod": {"EndDate"}}``.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

from .base import Fault, OAuthProvider, SimRequest, SimResponse, SimulatorServer
from .registry import AccountingSeed, AccountingSimulator, seed_oauth_app, store_token_set

__all__ = ["ACCESS_TOKEN_TTL", "ALL_SCOPES", "Company", "FortnoxSimulator", "Grant", "default_accounts"]

ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 45 * 86400
WINDOW_SECONDS = 5.0
WINDOW_LIMIT = 25
ALL_SCOPES = (
    "companyinformation",
    "bookkeeping",
    "settings",
    "supplier",
    "supplierinvoice",
    "inbox",
    "archive",
    "connectfile",
)

MESSAGES = {
    1000003: "System exception",
    2000310: "Ogiltig inloggning",
    2000311: "Kan inte logga in, access-token eller client-secret saknas(2).",
    2000663: "Har inte behörighet för scope",
    2001101: "Det finns ingen aktiv licens för önskat scope",
    2001103: "Api-licens saknas.",
    2000588: "Ogiltig parameter i anropet.",
}


def account(number: int, description: str, *, active: bool = True, vat_code: str | None = None) -> dict[str, Any]:
    """One ``Account`` as GET /3/accounts lists it."""
    return {
        "@url": f"https://api.fortnox.se/3/accounts/{number}",
        "Active": active,
        "BalanceBroughtForward": 0,
        "CostCenter": None,
        "CostCenterSettings": "ALLOWED",
        "Description": description,
        "Number": number,
        "Project": "",
        "ProjectSettings": "ALLOWED",
        "SRU": 0,
        "Year": 1,
        "VATCode": vat_code,
    }


def default_accounts() -> list[dict[str, Any]]:
    """A small BAS chart: 1930 bank, 2440 supplier debt, 2641 input VAT (code ``I``), 2645
    inactive (code ``IVEU``), 2890 Pleo clearing, 5410 consumables, 5420 inactive software,
    6110 office supplies."""
    return [
        account(1930, "Företagskonto / affärskonto"),
        account(2440, "Leverantörsskulder"),
        account(2641, "Debiterad ingående moms", vat_code="I"),
        account(2645, "Beräknad ingående moms på förvärv från utlandet", active=False, vat_code="IVEU"),
        account(2890, "Pleo clearing"),
        account(5410, "Förbrukningsinventarier"),
        account(5420, "Programvaror", active=False),
        account(6110, "Kontorsmateriel"),
    ]


@dataclass
class Company:
    """One Fortnox company (customer database). Mutate freely between requests."""

    organisation_number: str
    name: str
    database_number: int
    api_licence: bool = True
    licences: set[str] = field(default_factory=lambda: set(ALL_SCOPES))
    """Scopes the company's subscription covers (2001101 for the others)."""
    financial_years: list[tuple[str, str]] = field(default_factory=list)
    """(from, to) ISO dates; ids are positions + 1. Default: the current calendar year."""
    accounts: list[dict[str, Any]] = field(default_factory=default_accounts)
    charts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """Accounts of one financial year by its id, where that year's chart differs from ``accounts``."""
    voucher_series: dict[str, str] = field(
        default_factory=lambda: {"A": "Redovisningsverifikationer", "L": "Leverantörsfakturor"}
    )
    automatic_series: set[str] = field(default_factory=set)
    """Codes of voucher series that are not manual (``Manual: false``)."""
    predefined: dict[str, int] = field(default_factory=lambda: {"SUPDEBT": 2440})
    locked_until: str | None = None
    """The locked period's end (ISO date), or None when nothing is locked."""


@dataclass
class Grant:
    """A user's activation of our integration for one company, with its current tokens."""

    client_id: str
    company: Company
    scopes: tuple[str, ...]
    user_denied: set[str] = field(default_factory=set)
    """Scopes the consenting user has no right to (2000663)."""
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0
    revoked: bool = False
    previous_refresh_token: str | None = None

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


def _error(status: int, code: int) -> SimResponse:
    return SimResponse(status, {"ErrorInformation": {"error": 1, "message": MESSAGES.get(code, "Fel"), "code": code}})


def _bearer(request: SimRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class FortnoxSimulator(OAuthProvider, SimulatorServer):
    """Fortnox's token endpoint and the API v3 reads the connector makes.

    Seed with ``add_app``, ``add_company`` and ``grant``. Refresh tokens are single-use: a
    replayed one is refused ``invalid_grant`` and revokes the grant. ``enforce_rate_limits``
    answers 429 beyond 25 requests per 5-second sliding window per client and company;
    ``inject_system_exception`` answers error 1000003.
    """

    token_path = "/oauth-v1/token"
    credential_paths = frozenset({token_path})
    credential_headers = frozenset({"authorization"})

    def __init__(
        self, *, latency: float = 0.0, clock: Callable[[], float] = time.time, enforce_rate_limits: bool = True
    ) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        self.enforce_rate_limits = enforce_rate_limits
        self._offset = 0.0
        self._apps: dict[str, str] = {}
        self._companies: list[Company] = []
        self._grants: list[Grant] = []
        self._access: dict[str, tuple[Grant, float]] = {}
        self._refresh: dict[str, tuple[Grant, float, bool]] = {}  # token -> (grant, expires at, used)
        self._windows: dict[tuple[str, int], list[float]] = {}
        self.next_token_answer_quirk: dict[str, Any] = {}  # see OAuthProvider
        self._databases = iter(range(1_000_001, 10_000_000))
        self.route("POST", r"/oauth-v1/token", self._token)
        for path, scope, handler in (
            ("companyinformation", "companyinformation", self._company_information),
            ("financialyears", "bookkeeping", self._financial_years),
            ("accounts", "bookkeeping", self._accounts),
            ("voucherseries", "bookkeeping", self._voucher_series),
            ("predefinedaccounts", "settings", self._predefined),
            ("settings/lockedperiod", "settings", self._locked_period),
            ("suppliers", "supplier", self._empty("Suppliers")),
            ("supplierinvoices", "supplierinvoice", self._empty("SupplierInvoices")),
            ("inbox", "inbox", self._folder("inbox_root")),
            ("archive", "archive", self._folder("root")),
            ("voucherfileconnections", "connectfile", self._empty("VoucherFileConnections")),
        ):
            self.route("GET", rf"/3/{path}", self._guarded(scope, handler))

    # ------------------------------------------------------------ clock and seeding

    def now(self) -> float:
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    def add_app(self, client_id: str, client_secret: str) -> None:
        with self.lock:
            self._apps[client_id] = client_secret

    def add_company(self, *, organisation_number: str, name: str, **settings: Any) -> Company:
        with self.lock:
            company = Company(organisation_number, name, next(self._databases), **settings)
            if not company.financial_years:
                year = datetime.fromtimestamp(self.now(), UTC).year
                company.financial_years = [(f"{year}-01-01", f"{year}-12-31")]
            self._companies.append(company)
        return company

    def grant(
        self,
        *,
        client_id: str,
        company: Company,
        scopes: Iterable[str] | str = ALL_SCOPES,
        user_denied: Iterable[str] = (),
    ) -> Grant:
        """A user activates our integration for ``company``: the grant with its first token set."""
        names = scopes.split() if isinstance(scopes, str) else list(scopes)
        with self.lock:
            if client_id not in self._apps:
                raise ValueError(f"unknown client_id {client_id!r}; call add_app() first")
            grant = Grant(client_id, company, tuple(dict.fromkeys(names)), set(user_denied))
            self._grants.append(grant)
            self._issue(grant)
        return grant

    def revoke(self, grant: Grant) -> None:
        """The customer removes the integration: every token of the grant stops working."""
        with self.lock:
            grant.revoked = True

    def expire_access_token(self, grant: Grant) -> None:
        with self.lock:
            self._access[grant.access_token] = (grant, self.now() - 1)
            grant.expires_at = self.now() - 1

    def inject_system_exception(self, path: str = r"/3/.*", *, status: int = 500, times: int | None = 1) -> Fault:
        """Answer matching API calls with Fortnox's system exception (1000003)."""
        return self.inject("GET", path, status=status, json=_error(status, 1000003).json, times=times)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._apps.clear()
            self._companies.clear()
            self._grants.clear()
            self._access.clear()
            self._refresh.clear()
            self._windows.clear()
            self._offset = 0.0
            self.next_token_answer_quirk = {}

    # ------------------------------------------------------------ tokens

    def _issue(self, grant: Grant) -> dict[str, Any]:
        now = self.now()
        grant.access_token = secrets.token_urlsafe(32)
        grant.refresh_token = str(uuid.uuid4())
        grant.expires_at = now + ACCESS_TOKEN_TTL
        self._access[grant.access_token] = (grant, grant.expires_at)
        self._refresh[grant.refresh_token] = (grant, now + REFRESH_TOKEN_TTL, False)
        return {
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "scope": grant.scope,
            "expires_in": ACCESS_TOKEN_TTL,
            "token_type": "bearer",
        }

    def _token(self, request: SimRequest) -> SimResponse:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = ""
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        with self.lock:
            known = self._apps.get(client_id)
            if scheme.lower() != "basic" or known is None or not secrets.compare_digest(known, secret):
                return SimResponse(401, {"error": "invalid_client", "error_description": "Invalid client"})
            if (form.get("grant_type") or [""])[0] != "refresh_token":
                return SimResponse(400, {"error": "unsupported_grant_type"})
            presented = (form.get("refresh_token") or [""])[0]
            record = self._refresh.get(presented)
            refused = SimResponse(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            if record is None or record[0].client_id != client_id or record[0].revoked:
                return refused
            grant, expires_at, used = record
            if used:  # single-use: a replay revokes the grant
                grant.revoked = True
                return refused
            if self.now() >= expires_at:
                return refused
            self._refresh[presented] = (grant, expires_at, True)
            grant.previous_refresh_token = presented
            body = self._token_answer(self._issue(grant))
        return SimResponse(200, body, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------ API guard

    def _guarded(self, scope: str, handler: Callable[[SimRequest, Grant], SimResponse]) -> Callable[..., SimResponse]:
        def guarded(request: SimRequest) -> SimResponse:
            token = _bearer(request)
            with self.lock:
                if not token:
                    return _error(401, 2000311)
                record = self._access.get(token)
                if record is None or record[0].revoked or self.now() >= record[1]:
                    return _error(401, 2000310)
                grant = record[0]
                if not grant.company.api_licence:
                    return _error(403, 2001103)
                if scope not in grant.scopes:
                    return _error(403, 2000663)
                if scope not in grant.company.licences:
                    return _error(403, 2001101)
                if scope in grant.user_denied:
                    return _error(403, 2000663)
                if self._limited(grant):
                    return SimResponse(429, {"message": "Too Many Requests"})
            return handler(request, grant)

        return guarded

    def _limited(self, grant: Grant) -> bool:
        """25 requests per 5-second sliding window per client and company (lock held)."""
        now = self.now()
        window = [t for t in self._windows.get((grant.client_id, grant.company.database_number), []) if now - t < 5]
        self._windows[(grant.client_id, grant.company.database_number)] = window
        if self.enforce_rate_limits and len(window) >= WINDOW_LIMIT:
            return True
        window.append(now)
        return False

    # ------------------------------------------------------------ handlers

    @staticmethod
    def _page(items: list[dict[str, Any]], request: SimRequest, key: str) -> SimResponse:
        try:
            limit = min(500, max(1, int(request.param("limit", "100") or "100")))
            page = max(1, int(request.param("page", "1") or "1"))
        except ValueError:
            return _error(400, 2000588)
        pages = max(1, -(-len(items) // limit))
        return SimResponse(
            200,
            {
                "MetaInformation": {"@TotalResources": len(items), "@TotalPages": pages, "@CurrentPage": page},
                key: items[(page - 1) * limit : page * limit],
            },
        )

    def _year_id(self, company: Company, request: SimRequest) -> int | None:
        wanted = request.param("financialyear")
        if wanted is None:  # the year of today
            today = datetime.fromtimestamp(self.now(), UTC).date().isoformat()
            return next((i + 1 for i, (a, b) in enumerate(company.financial_years) if a <= today <= b), None)
        return int(wanted) if wanted.isdigit() and 0 < int(wanted) <= len(company.financial_years) else None

    def _company_information(self, request: SimRequest, grant: Grant) -> SimResponse:
        company = grant.company
        return SimResponse(
            200,
            {
                "CompanyInformation": {
                    "Address": "Storgatan 1",
                    "City": "Växjö",
                    "CountryCode": "SE",
                    "DatabaseNumber": company.database_number,
                    "CompanyName": company.name,
                    "OrganizationNumber": company.organisation_number,
                    "VisitAddress": "Storgatan 1",
                    "VisitCity": "Växjö",
                    "VisitCountryCode": "SE",
                    "VisitZipCode": "35230",
                    "ZipCode": "35230",
                }
            },
        )

    def _financial_years(self, request: SimRequest, grant: Grant) -> SimResponse:
        on = request.param("date")
        try:
            day = date.fromisoformat(on).isoformat() if on else None
        except ValueError:
            return _error(400, 2000588)
        years = [
            {
                "@url": f"https://api.fortnox.se/3/financialyears/{i + 1}",
                "accountCharts": "Bas 2024",
                "AccountingMethod": "ACCRUAL",
                "FromDate": start,
                "Id": i + 1,
                "ToDate": end,
            }
            for i, (start, end) in enumerate(grant.company.financial_years)
            if day is None or start <= day <= end
        ]
        return self._page(years, request, "FinancialYears")

    def _accounts(self, request: SimRequest, grant: Grant) -> SimResponse:
        year = self._year_id(grant.company, request)
        if year is None:
            return _error(400, 2000588)
        with self.lock:
            chart = grant.company.charts.get(year, grant.company.accounts)
            items = [{**item, "Year": year} for item in chart]
        return self._page(items, request, "Accounts")

    def _voucher_series(self, request: SimRequest, grant: Grant) -> SimResponse:
        year = self._year_id(grant.company, request)
        if year is None:
            return _error(400, 2000588)
        with self.lock:
            items = [
                {
                    "@url": f"https://api.fortnox.se/3/voucherseries/{code}",
                    "Code": code,
                    "Description": description,
                    "Manual": code not in grant.company.automatic_series,
                    "Year": year,
                    "Approver": {"Id": 0, "Name": ""},
                }
                for code, description in grant.company.voucher_series.items()
            ]
        return self._page(items, request, "VoucherSeriesCollection")

    def _predefined(self, request: SimRequest, grant: Grant) -> SimResponse:
        with self.lock:
            items = [
                {"@url": f"https://api.fortnox.se/3/predefinedaccounts/{name}", "Name": name, "Account": number}
                for name, number in grant.company.predefined.items()
            ]
        return SimResponse(200, {"PreDefinedAccounts": items})

    def _locked_period(self, request: SimRequest, grant: Grant) -> SimResponse:
        with self.lock:
            return SimResponse(200, {"LockedPeriod": {"EndDate": grant.company.locked_until}})

    def _empty(self, key: str) -> Callable[[SimRequest, Grant], SimResponse]:
        def handler(request: SimRequest, grant: Grant) -> SimResponse:
            return self._page([], request, key)

        return handler

    @staticmethod
    def _folder(folder_id: str) -> Callable[[SimRequest, Grant], SimResponse]:
        def handler(request: SimRequest, grant: Grant) -> SimResponse:
            return SimResponse(200, {"Folder": {"Id": folder_id, "Name": "root", "Files": [], "Folders": []}})

        return handler


# ---------------------------------------------------------------- the sandbox's view

CLIENT_ID = "pleo-preflight-local-fortnox"
CLIENT_SECRET_ID = "export-preflight/fortnox/client"


def _prepare(sandbox: Any, simulator: FortnoxSimulator) -> dict[str, str]:
    """Our OAuth app at Fortnox, and its client credentials in Secrets Manager."""
    return seed_oauth_app(
        sandbox, simulator, client_id=CLIENT_ID, secret_id=CLIENT_SECRET_ID, label="fortnox client secret"
    )


def _seed(
    sandbox: Any,
    simulator: FortnoxSimulator,
    slug: str,
    *,
    company_id: str,
    organisation_number: str | None = None,
    company: dict[str, Any] | None = None,
    scopes: Iterable[str] | str = ALL_SCOPES,
    user_denied: Iterable[str] = (),
    expired_token: bool = False,
) -> AccountingSeed:
    """A Fortnox company and our integration's activation for it (token set in Secrets
    Manager, tagged as a token set). ``company`` sets ``Company`` fields (licences, years...)."""
    if organisation_number is None:  # any unused one
        digits = f"{uuid.uuid4().int % 10**8:08d}"
        organisation_number = f"55{digits[:4]}-{digits[4:]}"
    seeded = simulator.add_company(
        organisation_number=organisation_number, name=f"{slug.replace('-', ' ').title()} AB", **(company or {})
    )
    grant = simulator.grant(client_id=CLIENT_ID, company=seeded, scopes=scopes, user_denied=user_denied)
    if expired_token:
        simulator.expire_access_token(grant)
    secret_id = f"export-preflight/fortnox/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
    store_token_set(sandbox, secret_id, grant)
    return AccountingSeed(
        company_ref=organisation_number,
        secret_id=secret_id,
        mappings={"journal": "A", "expenseAccount": "5410", "contraAccount": "2890", "vatCodes": ["I"]},
        secrets={"access": grant.access_token, "refresh": grant.refresh_token},
        handle=grant,
    )


SIMULATOR = AccountingSimulator(
    system="fortnox",
    create=lambda latency: FortnoxSimulator(latency=latency),
    settings=lambda server: {
        "api_base_url": server.base_url,
        "auth_base_url": server.base_url,
        "client_credentials_secret_id": CLIENT_SECRET_ID,
    },
    seed=_seed,
    prepare=_prepare,
)
