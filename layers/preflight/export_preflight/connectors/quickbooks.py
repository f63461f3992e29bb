"""QuickBooks Online (Intuit Accounting API v3) connector.

OAuth 2.0 with 1-hour access tokens and a rolling refresh token that may change on every
refresh (the returned one is always stored: see oauth.py). One consent covers one company
(the realm): every call names the configured realmId in its path, and a grant that does
not cover that realm answers 403 ``ApplicationAuthorizationFailed`` (errorCode 003100).
Read-only: GET only, queries through ``GET .../query?query=<statement>``; every call carries
``minorversion=75`` (the baseline since 1 Aug 2025).

Answers are never trusted by status alone: an HTTP 200 can carry a ``Fault`` instead of
data, and faults come in two shapes, the documented ``{"Fault": {"Error": [{"Message",
"Detail", "code"}], "type": "AuthenticationFault"}}`` and the gateway's lower-case
``{"fault": {"error": [{"message", "detail", "code"}], "type": "AUTHENTICATION"}}``; both
are read case-insensitively, and an unreadable error body (XML, HTML) is classified by its
status. The ``intuit_tid`` answer header is logged for Intuit support.

Verified (Intuit docs and blog, via stored copies): the companyinfo call and realm in the
path; ``minorversion`` 75 baseline; the documented Fault shape and fault types; 429 at 500
requests/min per realm and 10 concurrent requests per app and realm (Intuit blog
2016-08-08); ``intuit_tid`` header for support (Intuit error-handling docs); CompanyInfo's
``NameValue`` with ``OfferingSku`` (Intuit sample bodies); ``AccountingInfoPrefs.BookCloseDate``.
Field-reported (SDK issues): the lower-case gateway shape, e.g. 403 ``message=
ApplicationAuthorizationFailed; errorCode=003100; statusCode=403`` with ``code: "3100"``,
401 ``AuthenticationFailed`` ``code: "3200"``; 401 ``AuthorizationFault`` code 120 when the
connecting user lost access to QuickBooks; ThrottleExceeded errorCode 003001 [3rd-party].
Checked against Intuit's own pages and official SDKs (``tests/contract/vendors/quickbooks``):
every refresh token has a hard end (Intuit's refresh-token policy, Nov 2025), reported as
``x_refresh_token_hard_expires_in`` when the token request sends
``x-include-refresh-token-hard-expires-in: true`` (``x_refresh_token_expires_in`` stays the
rolling 100 days); transactions dated on or before ``AccountingInfoPrefs.BookCloseDate`` are
in closed books; US editions use automated sales tax (purchase lines carry no purchase tax
code; ``PurchaseTaxRateList`` exists only in non-US editions); address countries move to ISO
3-letter codes (``USA``, ``GBR``; Intuit blog 2025-08-13), so both spellings are read.

Assumed (see docs/connectors.md, "Vendor truth"): whether a 429 carries ``Retry-After`` (honoured when present); that
``AcctNum`` is meaningful only while ``AccountingInfoPrefs.UseAccountNumbers`` is on; that
Simple Start has no bills; that a tax code with sales rates but no purchase rates cannot
apply to expenses; that name-list queries skip inactive rows unless asked ``Active in (true,
false)`` (common practice in public integrations); the suitable account types per mapping.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from ..errors import AccountingSystemError, AccountingSystemUnavailable
from ..http import Answer
from ..models import Capability, CompanyConfiguration, CompanyRefRule, FailureReasonType, TokenSet
from ..oauth import GrantRevoked, OAuthBearer, TokenEndpoint
from ..observability import logger
from ..process import PROCESS
from .base import (
    BodyReader,
    ConnectionProfile,
    JsonObject,
    LedgerEntry,
    Support,
    json_body,
    request_or_raise,
    unexpected_answer,
    utc_today,
)
from .oauth_system import OAuthSystem, TokenService
from .paging import PageRequest, StartPosition

NAME = "QuickBooks"
MINOR_VERSION = "75"
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # noqa: S105 - a path, not a secret
PAGE_SIZE = 1000  # the query endpoint's largest MAXRESULTS
MAX_PAGES = 10
# startposition/maxresults in the query statement; after MAX_PAGES full pages, what was read.
PAGING = StartPosition(size=PAGE_SIZE, max_pages=MAX_PAGES, truncate=True)
# Intuit allows 10 concurrent requests per app and realm; one container keeps well below
# that so that several containers (and the export stage) still fit.
CONCURRENT_PER_REALM = 4
_REALM = re.compile(r"[0-9]{1,32}")

# AccountType values (Intuit's Account entity) that each mapping may use [assumed per role].
SUITABLE_TYPES: dict[str, tuple[str, ...]] = {
    "expenseAccount": ("Expense", "Other Expense", "Cost of Goods Sold"),
    # card spend is booked against the card (or a clearing) account; A/P and A/R lines in a
    # journal entry need a vendor or customer, which the export does not send.
    "contraAccount": ("Credit Card", "Bank", "Other Current Liability", "Other Current Asset"),
    "vendorPayablesAccount": ("Accounts Payable",),
}
ROLE_LABELS = {
    "expenseAccount": "expense account",
    "contraAccount": "contra account for card spend",
    "vendorPayablesAccount": "vendor payables account",
}
CHART_SCREEN = "Accounting > Chart of accounts"
CLOSE_BOOKS_SCREEN = "Settings > Account and settings > Advanced > Accounting > Close the books"
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"
# ISO 3166 alpha-3 -> alpha-2 for the countries QuickBooks Online is sold in: Intuit moves
# address countries to alpha-3 (2025); either spelling is read.
ALPHA3 = {"USA": "US", "GBR": "GB", "CAN": "CA", "AUS": "AU", "IND": "IN", "FRA": "FR", "IRL": "IE", "ZAF": "ZA"}
NON_US_TAX_EDITIONS = "UK, CA, AU, IN"
ACCOUNT_NUMBERS_SCREEN = "Settings > Account and settings > Advanced > Chart of accounts"


# ---------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """A QuickBooks fault, whichever shape it came in: ``type`` lower-cased, error ``codes``
    without leading zeros, and the error names found in messages (``ThrottleExceeded``...)."""

    type: str
    codes: frozenset[str]
    names: frozenset[str]

    def has(self, *, codes: Iterable[str] = (), names: Iterable[str] = ()) -> bool:
        return bool(self.codes.intersection(codes) or self.names.intersection(n.lower() for n in names))


_NAME_IN_MESSAGE = re.compile(r"message=([A-Za-z]+)")
_CODE_IN_MESSAGE = re.compile(r"errorCode=0*([0-9]+)")
_MARKERS = re.compile(
    r"(ApplicationAuthorizationFailed|AuthorizationFault|AuthorizatonFault|AuthenticationFault|ThrottleExceeded)"
)
# Intuit's FaultTypeEnum (the SDKs' XSD) spells this fault type without its second "i".
AUTHORIZATION_FAULT_TYPES = ("authorizatonfault", "authorizationfault", "authorization")


def _member(parent: Mapping[str, Any], key: str) -> Any:
    """``parent[key]`` compared case-insensitively (``Fault``/``fault``, ``Error``/``error``)."""
    for name, value in parent.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None


def read_fault(body: object) -> Fault | None:
    """The fault a decoded body carries, in either shape; None when it carries none."""
    if not isinstance(body, dict):
        return None
    fault = _member(body, "fault")
    if fault is None:
        return None
    if not isinstance(fault, dict):
        return Fault("", frozenset(), frozenset())
    kind = _member(fault, "type")
    errors = _member(fault, "error")
    codes: set[str] = set()
    names: set[str] = set()
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        code = _member(error, "code")
        if isinstance(code, str | int) and not isinstance(code, bool) and str(code).strip().isdigit():
            codes.add(str(int(str(code).strip())))
        for key in ("message", "detail"):
            text = _member(error, key)
            if isinstance(text, str):
                names.update(m.lower() for m in _NAME_IN_MESSAGE.findall(text))
                codes.update(str(int(c)) for c in _CODE_IN_MESSAGE.findall(text))
                names.update(m.lower() for m in _MARKERS.findall(text))
    return Fault(kind.lower() if isinstance(kind, str) else "", frozenset(codes), frozenset(names))


def answer_fault(response: httpx.Response) -> Fault | None:
    """The fault in any answer: JSON in either shape, else markers in a non-JSON body (XML)."""
    try:
        return read_fault(json_body(response, system=NAME, what="reading an error answer"))
    except AccountingSystemUnavailable:
        text = response.content[:8192].decode("utf-8", errors="replace")
        found = {m.lower() for m in _MARKERS.findall(text)}
        codes = {str(int(c)) for c in _CODE_IN_MESSAGE.findall(text)}
        return Fault("", frozenset(codes), frozenset(found)) if found or codes else None


def _company_refused(fault: Fault | None) -> bool:
    """403 ``ApplicationAuthorizationFailed`` (003100): the grant does not cover this realm. The
    same errorCode also comes as ``AuthorizationFailed`` "The access token does not have
    sufficient scope" (field-reported): that one is about the scope, not the company."""
    if fault is None or "authorizationfailed" in fault.names:
        return False
    return fault.has(codes=("3100",), names=("ApplicationAuthorizationFailed",))


def _user_refused(fault: Fault | None) -> bool:
    """401 ``AuthorizationFault`` (code 120): the connecting user lost access; a new token
    would not help."""
    return fault is not None and (fault.type in AUTHORIZATION_FAULT_TYPES or fault.has(codes=("120",)))


def _not_about_the_token(response: httpx.Response) -> bool:
    """A 401 that a refresh would not cure (``OAuthBearer`` then does not refresh)."""
    return _user_refused(answer_fault(response))


# ---------------------------------------------------------------- the connector


class QuickBooksConnector:
    """``AccountingConnector`` for one QuickBooks Online company (realm)."""

    display_name = NAME
    where_to_fix = "QuickBooks (Settings > Account and settings) or the integration settings"
    permission_advice: str | None = None

    def __init__(
        self,
        api: httpx.Client,
        auth: OAuthBearer,
        config: CompanyConfiguration,
        *,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._api = api
        self._auth = auth
        self.grant: OAuthBearer | None = auth
        self._today = today
        self._country: str | None = None
        self._realm = config.accounting_company_ref or ""
        self._roles = _roles(config)
        self._company_name: str | None = None
        # One lock per thing read once per job: the account and tax-code checks run side by
        # side, and one lock for all made the tax codes wait for the preferences and accounts.
        self._locks = {name: threading.Lock() for name in ("preferences", "Account", "TaxCode")}
        self._preferences: JsonObject | None = None
        self._lists: dict[str, list[JsonObject]] = {}

    # ------------- authentication and the company reached (checks: authentication, company_context)

    def authenticate(self) -> ConnectionProfile:
        if not _REALM.fullmatch(self._realm):
            raise AccountingSystemError(
                f"The QuickBooks company configured for this Pleo company ({self._realm!r}) is not a realmId "
                "(QuickBooks company ids are digits only). Correct accountingCompanyRef in the integration "
                "settings, then export again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        what = "reading the company information"
        body = self._read(f"companyinfo/{self._realm}", what=what)
        read = BodyReader(NAME, what)
        info = read.member(body, "CompanyInfo")
        if not info:
            raise read.malformed()
        self._company_name = read.text(info, "CompanyName")
        settings = {
            read.text(item, "Name"): read.text(item, "Value", numbers=True)
            for item in read.objects(info, "NameValue", required=False)
        }
        granted = self._auth.current().scopes()
        address = read.member(info, "CompanyAddr") or read.member(info, "LegalAddr")
        self._country = country_code(read.text(info, "Country")) or country_code(read.text(address, "Country"))
        facts: dict[str, Any] = {
            "country": self._country,
            "legalName": read.text(info, "LegalName"),
            "offeringSku": settings.get("OfferingSku"),
            "subscriptionStatus": settings.get("SubscriptionStatus"),
        }
        if not granted:  # no scope stored: the accounting call just made proves the one data scope
            granted = frozenset({ACCOUNTING_SCOPE})
            facts["scopeEvidence"] = "inferred from a successful accounting call"
        return ConnectionProfile(
            company_ref=self._realm, company_name=self._company_name, permissions=granted, facts=facts
        )

    # ----------------------------- permissions and capabilities (checks: permissions, capabilities)

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        # One data scope covers journal entries, bills, vendors and attachments alike.
        if ACCOUNTING_SCOPE in profile.permissions:
            return []
        return [f"the QuickBooks scope {ACCOUNTING_SCOPE} (accounting data)"]

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability is Capability.ATTACHMENT_UPLOAD:
            return Support(True, "every QuickBooks Online plan takes attachments")
        closed = self._books_closed()
        if closed is not None and closed[0] is False:
            return closed[1]
        notice = closed[1].notice if closed is not None else None
        if capability is Capability.JOURNAL_ENTRY:
            return Support(True, "every QuickBooks Online plan takes journal entries", notice=notice)
        plan = profile.facts.get("offeringSku")
        if isinstance(plan, str) and "simple start" in plan.lower():
            return Support(
                False,
                f"{self._company_label()} is on {plan}, which has no bills (vendor bookkeeping needs bills and "
                "vendors: QuickBooks Online Essentials or higher); upgrade the QuickBooks plan or turn vendor "
                "bookkeeping off",
            )
        return Support(True, f"bills and vendors available ({plan or 'plan not stated'})", notice=notice)

    def _books_closed(self) -> tuple[bool, Support] | None:
        """The company's closing date (``AccountingInfoPrefs.BookCloseDate``): None when the books
        were never closed; else (False, why not) when it is today or later (every expense of the
        job is dated on or before it, so QuickBooks would refuse them all), or (True, a notice)."""
        what = "reading the closing date"
        read = BodyReader(NAME, what)
        text = read.text(read.member(self._company_preferences(), "AccountingInfoPrefs"), "BookCloseDate")
        if not text:
            return None
        try:
            closed = date.fromisoformat(text[:10])
        except ValueError:
            raise read.malformed() from None
        day = closed.isoformat()
        if closed >= self._today():
            return False, Support(
                False,
                f"the books of {self._company_label()} are closed up to {day}, so QuickBooks refuses every "
                f"transaction dated on or before it and no expense of this export can be booked; move the closing "
                f"date back in QuickBooks ({CLOSE_BOOKS_SCREEN})",
            )
        return True, Support(
            True,
            f"books closed up to {day}",
            notice=f"The books of {self._company_label()} are closed up to {day}: expenses dated on or before it "
            f"cannot be booked (QuickBooks {CLOSE_BOOKS_SCREEN}).",
        )

    # -------------------- mapped accounts and tax codes (checks: mapped_accounts, mapped_tax_codes)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({ref for ref in refs if ref})
        if not wanted:
            return {}
        what = "looking up the mapped accounts"
        read = BodyReader(NAME, what)
        # The list first: the preferences (whether account numbers are on) are then usually
        # being read already, by the capabilities check, and the two calls overlap.
        listed = self._list("Account", what=what)
        numbers_on = read.flag(
            read.member(self._company_preferences(), "AccountingInfoPrefs"), "UseAccountNumbers", default=False
        )
        by_id: dict[str, JsonObject] = {}
        by_number: dict[str, JsonObject] = {}
        for account in listed:
            account_id = read.text(account, "Id", numbers=True)
            number = read.text(account, "AcctNum", numbers=True)
            read.text(account, "Name")
            read.text(account, "AccountType")
            read.flag(account, "Active", default=True)
            if account_id:
                by_id[account_id] = account
            if number:
                by_number[number] = account
        return {ref: self._account_entry(read, ref, by_id, by_number, numbers_on) for ref in wanted}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({code for code in codes if code})
        if not wanted:
            return {}
        what = "looking up the mapped tax codes"
        read = BodyReader(NAME, what)
        by_id: dict[str, JsonObject] = {}
        by_name: dict[str, JsonObject] = {}
        for code in self._list("TaxCode", what=what):
            code_id, name = read.text(code, "Id", numbers=True), read.text(code, "Name")
            if code_id:
                by_id[code_id] = code
            if name:
                by_name.setdefault(name.lower(), code)
        found: dict[str, LedgerEntry | None] = {}
        for wanted_code in wanted:
            match = by_id.get(wanted_code) or by_name.get(wanted_code.lower())
            found[wanted_code] = (
                None if match is None else _tax_code_entry(read, wanted_code, match, us=self._country == "US")
            )
        return found

    # ------------------------------------------------------------ plumbing

    def _account_entry(
        self,
        read: BodyReader,
        ref: str,
        by_id: Mapping[str, JsonObject],
        by_number: Mapping[str, JsonObject],
        numbers_on: bool,
    ) -> LedgerEntry | None:
        by_ref = by_id.get(ref)
        numbered = by_number.get(ref)
        if by_ref is None and numbered is None:
            return None
        if by_ref is None and not numbers_on:
            assert numbered is not None
            return LedgerEntry(
                ref=ref,
                name=read.text(numbered, "Name"),
                usable=False,
                problem="is an account number, but account numbers are turned off in QuickBooks "
                f"({ACCOUNT_NUMBERS_SCREEN}); map the account by its QuickBooks Id "
                f"({read.text(numbered, 'Id', numbers=True)}) or turn account numbers on",
            )
        if by_ref is not None and numbers_on and numbered is not None and numbered is not by_ref:
            return LedgerEntry(
                ref=ref,
                name=None,
                usable=False,
                problem=f"is ambiguous: it is the Id of {read.text(by_ref, 'Name')!r} and the account number of "
                f"{read.text(numbered, 'Name')!r}; map the account by a value only one account has",
            )
        account = by_ref if by_ref is not None else numbered
        assert account is not None
        name = read.text(account, "Name")
        kind = read.text(account, "AccountType") or "unknown"
        problem = ""
        if not read.flag(account, "Active", default=True):
            problem = f"is inactive in QuickBooks ({CHART_SCREEN})"
        else:
            for role in self._roles.get(ref, ()):
                suitable = SUITABLE_TYPES[role]
                if kind not in suitable:
                    problem = (
                        f"is of account type {kind} (QuickBooks {CHART_SCREEN}), which cannot be the "
                        f"{ROLE_LABELS[role]} ({role}); map an account of type {' / '.join(suitable)}"
                    )
                    break
        return LedgerEntry(ref=ref, name=name, usable=not problem, problem=problem)

    def _company_preferences(self) -> JsonObject:
        with self._locks["preferences"]:
            if self._preferences is None:
                what = "reading the company preferences"
                read = BodyReader(NAME, what)
                body = self._read("preferences", what=what)
                preferences = read.member(body, "Preferences")
                if not preferences:
                    raise read.malformed()
                self._preferences = preferences
            return self._preferences

    def _list(self, entity: str, *, what: str) -> list[JsonObject]:
        """Every row of a name list, inactive ones included, page by page."""
        with self._locks[entity]:
            if entity not in self._lists:
                read = BodyReader(NAME, what)

                def fetch(page: PageRequest) -> JsonObject:
                    # entity is one of our constants; nothing configured reaches a statement
                    window = " ".join(f"{name} {value}" for name, value in page.params.items())
                    statement = f"select * from {entity} where Active in (true, false) {window}"  # noqa: S608
                    return self._read("query", what=what, query=statement)

                self._lists[entity] = PAGING.collect(
                    fetch, lambda body: read.objects(read.member(body, "QueryResponse"), entity, required=False), read
                )
            return list(self._lists[entity])

    def _read(self, resource: str, *, what: str, query: str | None = None) -> JsonObject:
        """GET one resource of the realm and return its body, which must be data: every
        fault (in a 200 too) and every refusal is classified here."""
        response = self._get(resource, what=what, query=query)
        fault = answer_fault(response)
        tid = response.headers.get("intuit_tid")
        if fault is not None or not response.is_success:
            logger.info(
                "QuickBooks refused a call",
                extra={
                    "status": response.status_code,
                    "intuit_tid": tid,
                    "what": what,
                    "fault_type": fault and fault.type,
                },
            )
        if response.status_code == 401:
            self._refused_authentication(fault)
        if response.status_code == 403 or _company_refused(fault):
            self._refused_authorization(fault, what)
        if fault is not None:
            raise self._fault_error(fault, response, what)
        if not response.is_success:
            raise unexpected_answer(NAME, response, what)
        return BodyReader(NAME, what).parse_object(response)

    def _refused_authentication(self, fault: Fault | None) -> None:
        if _user_refused(fault):
            raise AccountingSystemError(
                f"QuickBooks refused access to {self._company_label()}: the user who connected QuickBooks no "
                "longer has access to the company (or its subscription lapsed). Reconnect QuickBooks in the "
                "integration settings with a company admin, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        raise AccountingSystemError(
            f"QuickBooks rejected the integration's access token for {self._company_label()} even after a "
            "refresh. Reconnect QuickBooks in the integration settings, then export again.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )

    def _refused_authorization(self, fault: Fault | None, what: str) -> None:
        if _company_refused(fault):
            raise AccountingSystemError(
                f"The QuickBooks connection does not cover the company configured for this Pleo company (realmId "
                f"{self._realm}): QuickBooks answered ApplicationAuthorizationFailed. The connection was made for "
                "another QuickBooks company, or this company's authorisation of the app lapsed. Correct the "
                "company (accountingCompanyRef) in the integration settings, or reconnect QuickBooks and choose "
                "that company, then export again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        scopes = self._auth.current().scope
        if scopes is not None and ACCOUNTING_SCOPE not in scopes.split():
            raise AccountingSystemError(
                f"QuickBooks refused {what} for {self._company_label()}: the connection was not granted accounting "
                f"access ({ACCOUNTING_SCOPE}). Reconnect QuickBooks in the integration settings and approve "
                "accounting access, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        raise AccountingSystemError(
            f"QuickBooks refused {what} for {self._company_label()} (403). Reconnect QuickBooks in the integration "
            "settings with a company admin, then export again.",
            reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
        )

    def _fault_error(
        self, fault: Fault, response: httpx.Response, what: str
    ) -> AccountingSystemError | AccountingSystemUnavailable:
        """A fault in an answer that is not a 401/403 (often a 200): never data."""
        if fault.has(codes=("3001",), names=("ThrottleExceeded",)):
            return AccountingSystemUnavailable(
                f"QuickBooks is rate limiting us (ThrottleExceeded) while {what}",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
            )
        if fault.type in ("authenticationfault", "authentication") or fault.has(codes=("3200", "100")):
            return AccountingSystemError(
                f"QuickBooks rejected the integration's access token for {self._company_label()}. Reconnect "
                "QuickBooks in the integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if _user_refused(fault):
            return AccountingSystemError(
                f"QuickBooks refused {what} for {self._company_label()}: the connecting user lacks access. "
                "Reconnect QuickBooks in the integration settings with a company admin, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if fault.type in ("systemfault", "service", "system") or response.status_code >= 500:
            return AccountingSystemUnavailable(
                f"QuickBooks reported a service fault while {what}",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
            )
        if not fault.type and not fault.codes and not fault.names:
            return BodyReader(NAME, what).malformed()
        return AccountingSystemError(
            f"QuickBooks answered with a {fault.type or 'fault'} while {what}; contact support if this persists",
            reason_type=FailureReasonType.VALIDATION_FAILURE,
        )

    def _get(self, resource: str, *, what: str, query: str | None = None) -> httpx.Response:
        """GET ``/v3/company/{realm}/{resource}`` with ``minorversion`` (and ``query``), the bearer
        token (a 401 refreshes it once: see ``OAuthBearer``), within the realm's concurrency."""
        path = f"/v3/company/{self._realm}/{resource}?"
        if query is not None:
            path += f"query={quote(query, safe='')}&"
        path += f"minorversion={MINOR_VERSION}"
        with _realm_slot(self._realm):
            return request_or_raise(
                self._api, "GET", path, system=NAME, what=what, auth=self._auth, inspect=_log_answer(what)
            )

    def _company_label(self) -> str:
        name = self._company_name
        return f"the company {name} (realmId {self._realm})" if name else f"the company with realmId {self._realm}"


def _log_answer(what: str) -> Callable[[httpx.Response], None]:
    """Log every answer's ``intuit_tid`` (Intuit support finds a call by it; it is no secret)."""

    def log(response: httpx.Response) -> None:
        tid = response.headers.get("intuit_tid")
        if response.status_code == 429 or response.status_code >= 500:
            logger.info(
                "QuickBooks answered with trouble",
                extra={"status": response.status_code, "intuit_tid": tid, "what": what},
            )
        else:
            logger.debug("QuickBooks answered", extra={"status": response.status_code, "intuit_tid": tid, "what": what})

    return log


def _realm_slot(realm: str) -> threading.BoundedSemaphore:
    """The realm's request slots, shared by every thread of the process (kept by ``PROCESS``)."""
    return PROCESS.once(f"quickbooks/realm-slots/{realm}", lambda: threading.BoundedSemaphore(CONCURRENT_PER_REALM))


def _roles(config: CompanyConfiguration) -> dict[str, tuple[str, ...]]:
    """Which mapping(s) each configured account ref fills (its suitable types depend on it)."""
    mappings = config.mappings
    roles: dict[str, list[str]] = {}
    for role, ref in (
        ("expenseAccount", mappings.expense_account),
        ("contraAccount", mappings.contra_account),
        ("vendorPayablesAccount", mappings.vendor_payables_account),
    ):
        if ref:
            roles.setdefault(ref, []).append(role)
    return {ref: tuple(names) for ref, names in roles.items()}


def country_code(text: str | None) -> str | None:
    """A country as ISO alpha-2, from alpha-2 or alpha-3 (``USA`` and ``US`` alike)."""
    if not text:
        return None
    upper = text.strip().upper()
    return ALPHA3.get(upper, upper)


def _tax_code_entry(read: BodyReader, ref: str, code: JsonObject, *, us: bool) -> LedgerEntry:
    problem = ""
    if not read.flag(code, "Active", default=True):
        problem = "is inactive in QuickBooks (Taxes > VAT / sales tax settings)"
    elif not us:
        # US editions use automated sales tax: purchase lines carry no purchase tax code, and
        # US codes (the pseudo codes TAX / NON, agency codes) have no purchase rates by design.
        purchase = read.objects(read.member(code, "PurchaseTaxRateList"), "TaxRateDetail", required=False)
        sales = read.objects(read.member(code, "SalesTaxRateList"), "TaxRateDetail", required=False)
        if sales and not purchase:
            problem = "has no purchase tax rate (a sales-only tax code), so it cannot apply to expenses"
    return LedgerEntry(ref=ref, name=read.text(code, "Name"), usable=not problem, problem=problem)


class QuickBooksTokenEndpoint(TokenEndpoint):
    """Intuit's token endpoint, asked for the grant's hard end (the 5-year cap) on every
    refresh; a refusal past that end says so."""

    extra_headers = {HARD_EXPIRY_HEADER: "true"}  # noqa: RUF012 - read only

    def refresh(self, tokens: TokenSet) -> Answer:
        try:
            return super().refresh(tokens)
        except GrantRevoked:
            if tokens.hard_expires_at is None or time.time() < tokens.hard_expires_at:
                raise
            day = datetime.fromtimestamp(tokens.hard_expires_at, UTC).date().isoformat()
            raise GrantRevoked(
                f"The QuickBooks connection ended on {day}: Intuit limits every connection to a fixed life that "
                "using it cannot extend. Reconnect QuickBooks in the integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            ) from None


QUICKBOOKS = OAuthSystem(
    system_id="quickbooks",
    display_name=NAME,
    env_prefix="QUICKBOOKS_",
    # sandbox companies: https://sandbox-quickbooks.api.intuit.com
    api_base_url="https://quickbooks.api.intuit.com",
    token_service=TokenService("oauth", "https://oauth.platform.intuit.com", TOKEN_PATH),
    client_credentials="export-preflight/quickbooks/client",
    refusal=_not_about_the_token,
    token_endpoint=QuickBooksTokenEndpoint,
)
QuickBooksSettings = QUICKBOOKS.settings

SPEC = QUICKBOOKS.spec(
    QuickBooksConnector,
    required_mappings=(
        ("expense_account", "default expense account (expenseAccount)"),
        ("contra_account", "contra account for card spend (contraAccount)"),
    ),
    vendor_mappings=(),  # bills post to the company's default Accounts Payable unless one is mapped
    company_ref=CompanyRefRule(_REALM, "a QuickBooks realmId (digits only)"),
    refresh_token_idle_days=100,  # refresh token: rolling: valid 100 days from last use
    output_names={"oauth_base_url": "QuickBooksOAuthBaseUrl"},  # the stack Output's spelling
)
