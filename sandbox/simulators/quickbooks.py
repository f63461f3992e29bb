"""Simulator of QuickBooks Online: Intuit's OAuth token endpoint and the Accounting API v3
read side the connector calls, both on one server.

Point ``QUICKBOOKS_OAUTH_BASE_URL`` and ``QUICKBOOKS_API_BASE_URL`` at the same ``base_url``:
``POST /oauth2/v1/tokens/bearer`` (oauth.platform.intuit.com) and ``GET /v3/company/{realmId}/
companyinfo/{realmId}``, ``/preferences`` and ``/query?query=...`` (quickbooks.api.intuit.com).

Modelled: the rolling refresh token (every refresh returns a new one; the spent one is refused
``invalid_grant`` unless ``refresh_grace_seconds`` allows it); 1-hour access tokens; a grant
bound to one realm (another realm's path answers 403 ``ApplicationAuthorizationFailed``,
errorCode 003100, in the lower-case gateway shape seen in the field); 401 in the documented
``Fault``/``AuthenticationFault`` shape (errorCode 003200); 429 ``ThrottleExceeded`` (003001)
past 500 requests per minute per realm or 10 concurrent requests per app and realm
(``work_seconds`` holds each request in flight to exercise the latter); a ``Fault`` inside an
HTTP 200 (``inject_fault_in_200``); ``intuit_tid`` on every answer; the ``minorversion`` of
every request is recorded (``minor_versions``).

From Intuit's own sources (``tests/contract/vendors/quickbooks``): entity and field names as
the official SDKs' XSDs spell them (``FaultTypeEnum`` spells ``AuthorizatonFault``); the
refresh token's hard end (5 years here unless seeded), reported as
``x_refresh_token_hard_expires_in`` only when the token request sends
``x-include-refresh-token-hard-expires-in: true``; address countries in ISO alpha-3 (Intuit
blog 2025-08-13: ``CompanyAddr.Country`` ``GBR``/``USA``), the top-level ``Country`` left in
alpha-2 (whether it changes is not documented); US companies (``country="US"``) with the
pseudo tax codes ``TAX``/``NON`` and no purchase rates (automated sales tax).

Field-reported: a token without the accounting scope is answered 403 in the gateway shape
``AuthorizationFailed`` (errorCode 003100) "The access token does not have sufficient scope"
(IntuitDeveloper/QBOConceptsTutorial-PHP#13).

SIMULATOR CHOICES (not verified against Intuit): companyinfo answers a token that lacks the
``com.intuit.quickbooks.accounting`` scope while preferences and query refuse it; that the
rolling ``x_refresh_token_expires_in`` never reaches past the hard end; the
query grammar is only ``select * from <Entity> [where Active in (true, false) | where Active
= true|false] [startposition n] [maxresults n]``; without ``where Active`` only active rows are
returned; whether 429 carries ``Retry-After`` (sent here: 60); the token answer carries no
``scope`` (Intuit's refresh answer is documented without it).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from .base import Fault, OAuthProvider, SimRequest, SimResponse, SimulatorServer
from .registry import AccountingSeed, AccountingSimulator, seed_oauth_app, store_token_set

__all__ = [
    "ACCOUNTING_SCOPE",
    "Company",
    "QuickBooksGrant",
    "QuickBooksSimulator",
    "account",
    "default_accounts",
    "default_tax_codes",
    "tax_code",
    "us_tax_codes",
]

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
ACCESS_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 100 * 86400  # rolling: 100 days from the last use
GRANT_LIFETIME = 5 * 365 * 86400  # Intuit's hard cap on a connection (Nov 2025 policy)
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
ALPHA3 = {"GB": "GBR", "US": "USA", "CA": "CAN", "AU": "AUS", "IN": "IND", "FR": "FRA"}
MINUTE_LIMIT = 500
CONCURRENT_LIMIT = 10
_QUERY = re.compile(
    r"(?is)\s*select\s+\*\s+from\s+(?P<entity>\w+)"
    r"(?:\s+where\s+active\s*(?:in\s*\(\s*(?P<both>true\s*,\s*false|false\s*,\s*true)\s*\)|=\s*(?P<one>true|false)))?"
    r"(?:\s+startposition\s+(?P<start>\d+))?(?:\s+maxresults\s+(?P<max>\d+))?\s*"
)


def account(
    account_id: str, name: str, account_type: str, *, number: str | None = None, active: bool = True, **extra: Any
) -> dict[str, Any]:
    """One ``Account`` as the query endpoint returns it (``AcctNum`` only when given)."""
    classification = {
        "Bank": "Asset",
        "Other Current Asset": "Asset",
        "Fixed Asset": "Asset",
        "Accounts Receivable": "Asset",
        "Credit Card": "Liability",
        "Other Current Liability": "Liability",
        "Accounts Payable": "Liability",
        "Long Term Liability": "Liability",
        "Equity": "Equity",
        "Income": "Revenue",
        "Other Income": "Revenue",
    }.get(account_type, "Expense")
    item: dict[str, Any] = {
        "Name": name,
        "SubAccount": False,
        "FullyQualifiedName": name,
        "Active": active,
        "Classification": classification,
        "AccountType": account_type,
        "CurrentBalance": 0,
        "CurrencyRef": {"value": "GBP", "name": "British Pound Sterling"},
        "domain": "QBO",
        "sparse": False,
        "Id": account_id,
        "SyncToken": "0",
        "MetaData": {"CreateTime": "2025-01-06T02:14:31-08:00", "LastUpdatedTime": "2025-01-06T02:14:31-08:00"},
    }
    if number is not None:
        item["AcctNum"] = number
    item.update(extra)
    return item


def default_accounts() -> list[dict[str, Any]]:
    """Ids with account numbers: 1/1000 bank, 7/6100 and 8/6150 expenses, 9/6190 INACTIVE
    expense, 10/2100 Pleo Card (Credit Card), 11/2150 Pleo Clearing (Other Current Liability),
    12/2000 A/P, 13/4000 Sales (Income)."""
    return [
        account("1", "Business Current Account", "Bank", number="1000"),
        account("7", "Office Expenses", "Expense", number="6100"),
        account("8", "Travel", "Expense", number="6150"),
        account("9", "Old Marketing", "Expense", number="6190", active=False),
        account("10", "Pleo Card", "Credit Card", number="2100"),
        account("11", "Pleo Clearing", "Other Current Liability", number="2150"),
        account("12", "Accounts Payable (A/P)", "Accounts Payable", number="2000"),
        account("13", "Sales", "Income", number="4000"),
    ]


def tax_code(
    code_id: str, name: str, *, active: bool = True, purchase: bool = True, sales: bool = True
) -> dict[str, Any]:
    """One ``TaxCode`` with its rate lists (a rate detail per side it applies to)."""

    def rates(applies: bool) -> dict[str, Any]:
        return {"TaxRateDetail": [{"TaxRateRef": {"value": code_id, "name": name}}] if applies else []}

    return {
        "Name": name,
        "Description": name,
        "Active": active,
        "Hidden": False,
        "Taxable": True,
        "TaxGroup": False,
        "SalesTaxRateList": rates(sales),
        "PurchaseTaxRateList": rates(purchase),
        "domain": "QBO",
        "Id": code_id,
        "SyncToken": "0",
    }


def us_tax_codes() -> list[dict[str, Any]]:
    """A US company (automated sales tax): the pseudo codes TAX and NON, and an agency code
    with a sales rate only; none carries purchase rates."""
    pseudo = [
        {
            "Name": name,
            "Description": name,
            "Active": True,
            "Hidden": False,
            "Taxable": taxable,
            "TaxGroup": False,
            "domain": "QBO",
            "Id": name,
            "SyncToken": "0",
        }
        for name, taxable in (("TAX", True), ("NON", False))
    ]
    california = tax_code("2", "California", purchase=False)
    del california["PurchaseTaxRateList"]
    return [*pseudo, california]


def default_tax_codes() -> list[dict[str, Any]]:
    """UK VAT: 3 "20.0% S", 4 "5.0% R", 5 "Exempt", 6 "20.0% Sales only" (no purchase rate),
    7 "Old 17.5%" INACTIVE."""
    return [
        tax_code("3", "20.0% S"),
        tax_code("4", "5.0% R"),
        tax_code("5", "Exempt"),
        tax_code("6", "20.0% Sales only", purchase=False),
        tax_code("7", "Old 17.5%", active=False),
    ]


@dataclass
class Company:
    """One QuickBooks Online company (realm). Mutate freely between requests."""

    realm_id: str
    name: str
    offering_sku: str = "QuickBooks Online Plus"
    country: str = "GB"
    use_account_numbers: bool = False
    using_sales_tax: bool = True
    multi_currency: bool = False
    book_close_date: str | None = None
    accounts: list[dict[str, Any]] = field(default_factory=default_accounts)
    tax_codes: list[dict[str, Any]] = field(default_factory=default_tax_codes)


@dataclass
class QuickBooksGrant:
    """A consent for our app over exactly one realm, with its current tokens (secrets)."""

    client_id: str
    realm_id: str
    scopes: tuple[str, ...]
    access_token: str = ""
    refresh_token: str = ""
    expires_at: float = 0.0
    revoked: bool = False
    previous_refresh_token: str | None = None
    hard_expires_at: float = 0.0
    """When the connection ends for good (set when granted: ``GRANT_LIFETIME`` on)."""

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass
class _Refresh:
    grant: QuickBooksGrant
    expires_at: float
    used_at: float | None = None


def _documented_fault(kind: str, code: str, message: str, detail: str) -> dict[str, Any]:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": kind},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00"),
    }


def _gateway_fault(kind: str, code: str, name: str, status: int, detail: str | None = None) -> dict[str, Any]:
    """The lower-case shape python-quickbooks and erpnext users captured from Intuit's gateway."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": f"message={name}; errorCode={int(code):06d}; statusCode={status}",
                    "detail": detail,
                    "code": code,
                    "element": None,
                }
            ],
            "type": kind,
        },
        "report": None,
        "queryResponse": None,
        "requestId": None,
        "time": int(time.time() * 1000),
        "status": None,
    }


def _bearer(request: SimRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


_API = re.compile(r"/v3/company/(?P<realm>[^/]+)/.*")


class QuickBooksSimulator(OAuthProvider, SimulatorServer):
    """Intuit's token endpoint and the QuickBooks Online Accounting API reads."""

    token_path = "/oauth2/v1/tokens/bearer"
    credential_paths = frozenset({token_path})
    credential_headers = frozenset({"authorization"})

    def __init__(
        self,
        *,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
        refresh_grace_seconds: float = 0.0,
        minute_limit: int = MINUTE_LIMIT,
        concurrent_limit: int = CONCURRENT_LIMIT,
        work_seconds: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        self.refresh_grace_seconds = refresh_grace_seconds
        self.next_token_answer_quirk: dict[str, Any] = {}  # see OAuthProvider
        self.minute_limit = minute_limit
        self.concurrent_limit = concurrent_limit
        self.work_seconds = work_seconds
        self._apps: dict[str, str] = {}
        self._companies: dict[str, Company] = {}
        self._grants: list[QuickBooksGrant] = []
        self._access: dict[str, tuple[QuickBooksGrant, float]] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._minute: dict[str, list[float]] = {}  # realm -> [window start, count]
        self._in_flight: dict[tuple[str, str], int] = {}
        self._flight_lock = threading.Lock()
        self.route("POST", r"/oauth2/v1/tokens/bearer", self._token)
        self.route("GET", r"/v3/company/(?P<realm>[^/]+)/companyinfo/(?P<info>[^/]+)", self._company_info)
        self.route("GET", r"/v3/company/(?P<realm>[^/]+)/preferences", self._preferences)
        self.route("GET", r"/v3/company/(?P<realm>[^/]+)/query", self._query)

    # ------------------------------------------------------------ seeding

    def add_app(self, client_id: str, client_secret: str) -> None:
        with self.lock:
            self._apps[client_id] = client_secret

    def add_company(self, *, realm_id: str | None = None, name: str, **settings: Any) -> Company:
        company = Company(realm_id=realm_id or str(secrets.randbelow(9 * 10**15) + 10**15), name=name, **settings)
        with self.lock:
            self._companies[company.realm_id] = company
        return company

    def company(self, realm_id: str) -> Company:
        with self.lock:
            return self._companies[realm_id]

    def grant(
        self, *, client_id: str, realm_id: str, scopes: Iterable[str] | str = ACCOUNTING_SCOPE
    ) -> QuickBooksGrant:
        """A user connects our app to one company: the grant with its first token set."""
        names = scopes.split() if isinstance(scopes, str) else list(scopes)
        with self.lock:
            if client_id not in self._apps or realm_id not in self._companies:
                raise ValueError("add_app() and add_company() first")
            grant = QuickBooksGrant(client_id, realm_id, tuple(names), hard_expires_at=self.clock() + GRANT_LIFETIME)
            self._grants.append(grant)
            self._issue(grant)
        return grant

    def revoke_grant(self, grant: QuickBooksGrant) -> None:
        """The user disconnects the app: every token of the grant stops working."""
        with self.lock:
            grant.revoked = True

    def expire_access_token(self, grant: QuickBooksGrant) -> None:
        with self.lock:
            self._access[grant.access_token] = (grant, self.clock() - 1)
            grant.expires_at = self.clock() - 1

    def inject_fault_in_200(
        self, resource: str = r"[^?]*", *, realm_id: str = r"[^/]+", kind: str = "SystemFault", times: int | None = 1
    ) -> Fault:
        """Answer matching API calls (of one realm, if given) with HTTP 200 and a documented
        ``Fault`` body instead of data."""
        body = _documented_fault(
            kind,
            "10000",
            "An application error has occurred while processing your request",
            "System Failure Error: simulated",
        )
        return self.inject("GET", rf"/v3/company/{realm_id}/{resource}", status=200, json=body, times=times)

    def inject_throttle(self, *, times: int | None = 1, retry_after: int | None = 60) -> Fault:
        body = _gateway_fault("SERVICE", "3001", "ThrottleExceeded", 429)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return self.inject("GET", _API.pattern, status=429, json=body, headers=headers, times=times)

    def minor_versions(self) -> list[str | None]:
        """The ``minorversion`` of every API request received."""
        return [r.param("minorversion") for r in self.requests if _API.fullmatch(r.path)]

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._apps.clear()
            self._companies.clear()
            self._grants.clear()
            self._access.clear()
            self._refresh.clear()
            self._minute.clear()
            self.next_token_answer_quirk = {}
        with self._flight_lock:
            self._in_flight.clear()

    # ------------------------------------------------------------ tokens

    def _issue(self, grant: QuickBooksGrant, *, hard_expiry: bool = False) -> dict[str, Any]:
        now = self.clock()
        rolling = max(0, int(min(REFRESH_TOKEN_TTL, grant.hard_expires_at - now)))
        grant.access_token = "eyJ" + secrets.token_urlsafe(48)
        grant.expires_at = now + ACCESS_TOKEN_TTL
        grant.refresh_token = "AB" + secrets.token_urlsafe(36)
        self._access[grant.access_token] = (grant, grant.expires_at)
        self._refresh[grant.refresh_token] = _Refresh(grant, now + rolling)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": ACCESS_TOKEN_TTL,
            "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": rolling,
            "access_token": grant.access_token,
        }
        if hard_expiry:
            answer["x_refresh_token_hard_expires_in"] = max(0, int(grant.hard_expires_at - now))
        return answer

    def _token(self, request: SimRequest) -> SimResponse:
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = ""
        with self.lock:
            known = self._apps.get(client_id)
        if scheme.lower() != "basic" or known is None or not secrets.compare_digest(known, secret):
            return SimResponse(401, {"error": "invalid_client"})
        if (form.get("grant_type") or [""])[0] != "refresh_token":
            return SimResponse(400, {"error": "unsupported_grant_type"})
        presented = (form.get("refresh_token") or [""])[0]
        with self.lock:
            now = self.clock()
            record = self._refresh.get(presented)
            if (
                record is None
                or record.grant.revoked
                or record.grant.client_id != client_id
                or now >= record.expires_at
                or now >= record.grant.hard_expires_at
            ):
                return SimResponse(400, {"error": "invalid_grant"})
            grant = record.grant
            if record.used_at is not None and now - record.used_at >= self.refresh_grace_seconds:
                return SimResponse(400, {"error": "invalid_grant"})
            record.used_at = now
            grant.previous_refresh_token = presented
            asked = request.headers.get(HARD_EXPIRY_HEADER, "").strip().lower() == "true"
            body = self._token_answer(self._issue(grant, hard_expiry=asked))
        return SimResponse(200, body, headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------ API

    def _route(self, request: SimRequest) -> SimResponse:
        """Count the request against the realm's minute and the app's concurrency while it runs."""
        match = _API.fullmatch(request.path)
        if match is None:
            return super()._route(request)
        realm = match["realm"]
        with self.lock:
            token = self._access.get(_bearer(request))
        key = (token[0].client_id if token else "", realm)
        with self._flight_lock:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            busy = self._in_flight[key] > self.concurrent_limit
        try:
            with self.lock:
                now = self.clock()
                window = self._minute.setdefault(realm, [now, 0])
                if now - window[0] >= 60:
                    window[0], window[1] = now, 0
                window[1] += 1
                limited = busy or window[1] > self.minute_limit
            if limited:
                return SimResponse(
                    429, _gateway_fault("SERVICE", "3001", "ThrottleExceeded", 429), headers={"Retry-After": "60"}
                )
            self._sleep(self.work_seconds)
            return super()._route(request)
        finally:
            with self._flight_lock:
                self._in_flight[key] -= 1

    def decorate(self, request: SimRequest, response: SimResponse) -> SimResponse:
        response.headers = {"intuit_tid": f"1-{uuid.uuid4().hex[:24]}", **(response.headers or {})}
        return response

    def _authorise(self, request: SimRequest, realm: str, *, scope: bool) -> tuple[Company | None, SimResponse | None]:
        token = _bearer(request)
        with self.lock:
            found = self._access.get(token) if token else None
            if found is None or found[0].revoked or self.clock() >= found[1]:
                detail = "Token invalid" if found is None else "Token expired"
                return None, SimResponse(
                    401,
                    _documented_fault(
                        "AuthenticationFault",
                        "3200",
                        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                        detail,
                    ),
                )
            grant = found[0]
            company = self._companies.get(realm)
            if company is None or grant.realm_id != realm:
                return None, SimResponse(403, _gateway_fault("SERVICE", "3100", "ApplicationAuthorizationFailed", 403))
            if scope and ACCOUNTING_SCOPE not in grant.scopes:
                return None, SimResponse(
                    403,
                    _gateway_fault(
                        "SERVICE", "3100", "AuthorizationFailed", 403, "The access token does not have sufficient scope"
                    ),
                )
        return company, None

    def _company_info(self, request: SimRequest, realm: str, info: str) -> SimResponse:
        company, denied = self._authorise(request, realm, scope=False)
        if denied:
            return denied
        assert company is not None
        if info != realm:
            return SimResponse(400, _documented_fault("ValidationFault", "2030", "Invalid ID", "Id mismatch"))
        body = {
            "CompanyName": company.name,
            "LegalName": f"{company.name} Ltd",
            "CompanyAddr": {
                "Id": "1",
                "Line1": "1 High Street",
                "City": "London",
                "Country": ALPHA3.get(company.country, company.country),
            },
            "Country": company.country,
            "SupportedLanguages": "en",
            "FiscalYearStartMonth": "April",
            "NameValue": [
                {"Name": "NeoEnabled", "Value": "true"},
                {"Name": "SubscriptionStatus", "Value": "PAID"},
                {"Name": "OfferingSku", "Value": company.offering_sku},
                {"Name": "PayrollFeature", "Value": "false"},
                {"Name": "AccountantFeature", "Value": "false"},
            ],
            "domain": "QBO",
            "sparse": False,
            "Id": company.realm_id,
            "SyncToken": "4",
        }
        return SimResponse(200, {"CompanyInfo": body, "time": time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")})

    def _preferences(self, request: SimRequest, realm: str) -> SimResponse:
        company, denied = self._authorise(request, realm, scope=True)
        if denied:
            return denied
        assert company is not None
        accounting: dict[str, Any] = {
            "TrackDepartments": False,
            "ClassTrackingPerTxn": False,
            "ClassTrackingPerTxnLine": False,
            "CustomerTerminology": "Customers",
            "UseAccountNumbers": company.use_account_numbers,
        }
        if company.book_close_date:
            accounting["BookCloseDate"] = company.book_close_date
        body = {
            "AccountingInfoPrefs": accounting,
            "TaxPrefs": {"UsingSalesTax": company.using_sales_tax, "PartnerTaxEnabled": False},
            "CurrencyPrefs": {"MultiCurrencyEnabled": company.multi_currency, "HomeCurrency": {"value": "GBP"}},
            "VendorAndPurchasesPrefs": {"BillableExpenseTracking": False, "TrackingByCustomer": False},
            "domain": "QBO",
            "sparse": False,
            "Id": "1",
            "SyncToken": "2",
        }
        return SimResponse(200, {"Preferences": body, "time": time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")})

    def _query(self, request: SimRequest, realm: str) -> SimResponse:
        company, denied = self._authorise(request, realm, scope=True)
        if denied:
            return denied
        assert company is not None
        statement = request.param("query") or ""
        match = _QUERY.fullmatch(statement)
        rows_by_entity = {"account": company.accounts, "taxcode": company.tax_codes}
        if match is None or match["entity"].lower() not in rows_by_entity:
            return SimResponse(
                400,
                _documented_fault("ValidationFault", "4000", "Error parsing query", "QueryParserError: simulated"),
            )
        entity = {"account": "Account", "taxcode": "TaxCode"}[match["entity"].lower()]
        with self.lock:
            rows = [dict(row) for row in rows_by_entity[match["entity"].lower()]]
        if match["one"] is not None:
            rows = [r for r in rows if r.get("Active", True) is (match["one"].lower() == "true")]
        elif match["both"] is None:
            rows = [r for r in rows if r.get("Active", True)]
        start = int(match["start"] or 1)
        size = min(1000, int(match["max"] or 100))
        page = rows[start - 1 : start - 1 + size]
        response: dict[str, Any] = {}
        if page:
            response = {entity: page, "startPosition": start, "maxResults": len(page)}
        return SimResponse(200, {"QueryResponse": response, "time": time.strftime("%Y-%m-%dT%H:%M:%S.000-07:00")})


# ---------------------------------------------------------------- the sandbox's view

CLIENT_ID = "pleo-preflight-local-qbo"
CLIENT_SECRET_ID = "export-preflight/quickbooks/client"
DEFAULT_SCOPES = f"{ACCOUNTING_SCOPE} openid"


def _prepare(sandbox: Any, simulator: QuickBooksSimulator) -> dict[str, str]:
    """Our OAuth app, and its client credentials in Secrets Manager."""
    return seed_oauth_app(
        sandbox, simulator, client_id=CLIENT_ID, secret_id=CLIENT_SECRET_ID, label="quickbooks client secret"
    )


def _seed(
    sandbox: Any,
    simulator: QuickBooksSimulator,
    slug: str,
    *,
    company_id: str,
    scopes: str = DEFAULT_SCOPES,
    company: dict[str, Any] | None = None,
    other_realm: bool = False,
    expired_token: bool = False,
) -> AccountingSeed:
    """A company with the default chart and UK VAT codes, our app's grant over it (over a
    sister company instead with ``other_realm``), and the token set in Secrets Manager."""
    name = slug.replace("-", " ").title()
    seeded = simulator.add_company(name=name, **(company or {}))
    realm = seeded.realm_id
    if other_realm:
        realm = simulator.add_company(name=f"{name} Holding").realm_id
    grant = simulator.grant(client_id=CLIENT_ID, realm_id=realm, scopes=scopes)
    if expired_token:
        simulator.expire_access_token(grant)
    secret_id = f"export-preflight/quickbooks/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
    store_token_set(sandbox, secret_id, grant)
    return AccountingSeed(
        company_ref=seeded.realm_id,
        secret_id=secret_id,
        mappings={"expenseAccount": "7", "contraAccount": "10", "vatCodes": ["3"]},
        secrets={"access": grant.access_token, "refresh": grant.refresh_token},
        handle=grant,
    )


SIMULATOR = AccountingSimulator(
    system="quickbooks",
    create=lambda latency: QuickBooksSimulator(latency=latency),
    settings=lambda server: {
        "api_base_url": server.base_url,
        "oauth_base_url": server.base_url,
        "client_credentials_secret_id": CLIENT_SECRET_ID,
    },
    seed=_seed,
    prepare=_prepare,
)
