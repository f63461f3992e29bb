"""Fortnox (API v3, Sweden) connector.

OAuth 2.0 through the shared leased token lifecycle (see oauth.py): 1-hour access tokens
and **single-use** refresh tokens; a used or expired refresh token means a user of the
Fortnox company must re-activate the integration. The token is bound to one Fortnox
company (no tenant header): ``GET /3/companyinformation`` says which, by organisation
number. Fortnox has three independent permission gates, each reported on its own: the
scope was granted (token ``scope``), the company has a licence for the area (error
2001101) and an API licence at all (2001103), and the consenting user may use the area
(2000663). Errors are ``{"ErrorInformation": {"error", "message", "code"}}`` with Swedish
messages: this module branches on ``code`` only, never on the text.

Verified against Fortnox's developer pages (fortnox.se/developer): the token endpoint
``POST https://apps.fortnox.se/oauth-v1/token`` with HTTP Basic client auth and its answer
``{access_token, refresh_token, scope, expires_in: 3600, token_type: "bearer"}``; refresh
tokens are single-use (valid 45 days) and "Invalid refresh token" means the integration
must be re-activated (FAQ, "Migrate legacy token to JWT"); error codes 1000003 (system
exception), 2000310/2000311 (token missing or wrong), 2001101 (no active licence for the
scope), 2001103 (no API licence), 2001304 (account not found) (errors page); 429 when more
than 25 requests per 5-second sliding window per client and tenant, with no word on
``Retry-After`` (rate-limit page); preferred accounts live under Settings > Bookkeeping >
Preferred accounts (FAQ); the API licence is ordered under "Tilläggsbeställning" (FAQ).

Assumed (not found in Fortnox's own pages): 2000663 ("not authorised for scope") is the
consenting user's missing permission (third-party: Invantive's Fortnox error list; the
FAQ's advice "reactivate the integration with a user who has the correct permissions");
the refresh refusal is an RFC 6749 ``invalid_grant``; the HTTP statuses that carry the
codes (the code is what counts here); VAT codes are the ``VATCode`` values accounts carry
(a third-party client reads them that way); ``GET /3/supplierinvoices``, ``/3/suppliers``,
``/3/inbox``, ``/3/archive`` and ``/3/voucherfileconnections`` as the cheapest reads that
prove a licence and a user's right per area; ``limit``/``page`` paging with
``MetaInformation.@TotalPages``; "today" is the UTC date.

Checked against Fortnox's own pages and its official SDK (``tests/contract/vendors/fortnox``
holds the facts with their sources): the preferred supplier-debt account is named
``SUPDEBT`` in ``GET /3/predefinedaccounts``; the scopes table puts PredefinedAccounts and
the locked period under ``settings``, Suppliers under ``supplier`` and SupplierInvoices under
``supplierinvoice``; ``GET /3/settings/lockedperiod`` answers ``{"LockedPeriod": {"EndDate"}}``
(no date: nothing locked); Fortnox asks integrations to check the financial year of the
voucher's date.

Reported by integrators, not by Fortnox [3rd-party]: a voucher series whose ``Manual`` is
false does not take vouchers through the API ("Verifikationsserien är inte manuell").
Our choice: a job may carry expenses of the previous financial year while that year is not
locked, so an open previous year's voucher series and accounts must be usable too; without
the ``settings`` scope the locked period cannot be read and the previous year counts as open.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any, TypeVar, cast

import httpx

from ..concurrency import side_by_side
from ..errors import AccountingSystemError, AccountingSystemUnavailable
from ..http import Answer
from ..models import Capability, CompanyConfiguration, CompanyRefRule, FailureReasonType, TokenSet
from ..oauth import GrantRevoked, OAuthBearer, TokenEndpoint
from .base import (
    BodyReader,
    ConnectionProfile,
    JsonObject,
    LedgerEntry,
    Support,
    json_body,
    read_pool,
    request_or_raise,
    unexpected_answer,
    utc_today,
)
from .oauth_system import OAuthSystem, TokenService
from .paging import PageNumbers, PageRequest

NAME = "Fortnox"
T = TypeVar("T")
API = "/3"
TOKEN_PATH = "/oauth-v1/token"  # noqa: S105 - a URL path
PAGE_SIZE = 500
MAX_PAGES = 50
"""A collection that keeps announcing pages beyond this many is not the data we expect."""
PAGING = PageNumbers(size=PAGE_SIZE, max_pages=MAX_PAGES)
"""``page``/``limit`` from page 1, as many pages as ``MetaInformation.@TotalPages`` says."""

SYSTEM_EXCEPTION = 1000003
TOKEN_REJECTED = frozenset({2000310, 2000311})
NO_SCOPE_LICENCE = 2001101
NO_API_LICENCE = 2001103
USER_NOT_ALLOWED = 2000663
PERMISSION_CODES = frozenset({NO_SCOPE_LICENCE, NO_API_LICENCE, USER_NOT_ALLOWED})

ORGANISATION_NUMBER = re.compile(r"[0-9]{6}-?[0-9]{4}")
SUPPLIER_DEBT = "SUPDEBT"
"""The preferred supplier-debt account's name in ``GET /3/predefinedaccounts`` (Fortnox's
predefined-accounts page; the official SDK's ``PredefinedAccountName``)."""
LOCK_PERIOD = "Fortnox (Settings > Bookkeeping > Lock period)"
MANAGE_INTEGRATIONS = "Fortnox (Settings > Manage integrations)"
REACTIVATE = (
    "a Fortnox user with the needed permissions (or a system administrator, for a service account) must "
    "re-activate the integration by connecting Fortnox again in the integration settings"
)
REACTIVATE_SENTENCE = REACTIVATE[0].upper() + REACTIVATE[1:]


@dataclass(frozen=True)
class Area:
    """One Fortnox area the export uses: the scopes that open it (any one) and the cheapest
    read that proves its licence and the consenting user's right."""

    label: str
    scopes: tuple[str, ...]
    probe: str
    paged: bool = True
    """The probe reads a paged list (asked for one item); otherwise a single object."""


BOOKKEEPING = Area("bookkeeping (vouchers, accounts, financial years)", ("bookkeeping",), "/financialyears")
SETTINGS = Area("preferred accounts and locked period", ("settings",), "/settings/lockedperiod", paged=False)
SUPPLIERS = Area("suppliers", ("supplier",), "/suppliers")
SUPPLIER_INVOICES = Area("supplier invoices", ("supplierinvoice",), "/supplierinvoices")
INBOX = Area("file upload (inbox)", ("inbox",), "/inbox", paged=False)
ARCHIVE = Area("file upload (archive)", ("archive",), "/archive", paged=False)
FILE_CONNECTIONS = Area("file connections (connectfile)", ("connectfile",), "/voucherfileconnections")
AREAS_NEEDED: dict[Capability, tuple[tuple[Area, ...], ...]] = {
    Capability.JOURNAL_ENTRY: ((BOOKKEEPING,),),
    # A supplier invoice needs its supplier (found or created) and posts to the preferred
    # supplier-debt account, a settings resource.
    Capability.VENDOR_BOOKKEEPING: ((SUPPLIER_INVOICES,), (SUPPLIERS,), (SETTINGS,)),
    # A receipt is uploaded to the inbox or the archive, then connected to its voucher.
    Capability.ATTACHMENT_UPLOAD: ((INBOX, ARCHIVE), (FILE_CONNECTIONS,)),
}


@dataclass(frozen=True)
class FinancialYear:
    id: str
    from_date: str | None
    to_date: str | None

    def __str__(self) -> str:
        return f"{self.from_date}–{self.to_date}" if self.from_date and self.to_date else f"id {self.id}"


@dataclass(frozen=True)
class OpenYears:
    """The financial years a job's vouchers may fall in: today's, and the previous one while
    it is not locked. ``lock_known`` is false when the locked period could not be read (the
    previous year then counts as open)."""

    current: FinancialYear
    previous: FinancialYear | None
    lock_known: bool

    @property
    def all(self) -> tuple[FinancialYear, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)

    def why_open(self, year: FinancialYear) -> str:
        """Why ``year`` matters ("" for today's year), as a clause of a reason."""
        if year is self.current:
            return ""
        if self.lock_known:
            return (
                f", which still takes vouchers (it is not locked; a job may carry its expenses): fix it there, or "
                f"lock that year in {LOCK_PERIOD} once no more expenses belong to it"
            )
        return (
            f", which may still take vouchers (the integration cannot read Fortnox's locked period without the scope "
            f"settings; {REACTIVATE} and approve it): fix it there, or grant the settings scope"
        )


class FortnoxConnector:
    """``AccountingConnector`` for the one Fortnox company our token is bound to."""

    display_name = NAME
    where_to_fix = (
        "Fortnox (Settings > Bookkeeping: Financial years / Voucher series / Preferred accounts / Chart of "
        "accounts) or the integration settings"
    )
    permission_advice: str | None = "Then export again."

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
        self._organisation_number = config.accounting_company_ref or ""
        self._series = config.mappings.journal
        self._today = today
        self._company_name: str | None = None
        self._year: FinancialYear | bool | None = False  # False: not looked up yet
        self._open: OpenYears | None = None
        self._locked_until: str | bool | None = False  # False: not read yet; None: nothing locked
        self._years_lock = threading.Lock()
        self._accounts_found: dict[str, list[JsonObject]] = {}
        self._accounts_lock = threading.Lock()
        self._series_found: dict[str, dict[str, JsonObject]] = {}

    # ------------- authentication and the company reached (checks: authentication, company_context)

    def authenticate(self) -> ConnectionProfile:
        if not ORGANISATION_NUMBER.fullmatch(self._organisation_number):
            raise AccountingSystemError(
                f"The Fortnox company for this Pleo company is configured as {self._organisation_number!r}, which is "
                "not a Swedish organisation number (NNNNNN-NNNN). Correct accountingCompanyRef in the integration "
                "settings, then export again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        what = "reading the company information"
        response = self._get("/companyinformation", what=what)
        self._raise_for(response, what=what, area=None)
        read = BodyReader(NAME, what)
        company = read.member(read.parse_object(response), "CompanyInformation")
        reached = read.text(company, "OrganizationNumber")
        if not reached:  # companyinformation always names the company: without it, this is not it
            raise read.malformed()
        name = read.text(company, "CompanyName")
        same = _digits(reached) == _digits(self._organisation_number)
        if same:
            self._company_name = name
        return ConnectionProfile(
            company_ref=self._organisation_number if same else reached,
            company_name=name,
            permissions=self._auth.current().scopes(),
            facts={
                "countryCode": read.text(company, "CountryCode"),
                "databaseNumber": read.text(company, "DatabaseNumber", numbers=True),
            },
        )

    # ----------------------------- permissions and capabilities (checks: permissions, capabilities)

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        not_granted: list[str] = []
        probed: list[Area] = []
        for capability in sorted(needs):
            for group in AREAS_NEEDED.get(capability, ()):
                granted = [area for area in group if profile.permissions.intersection(area.scopes)]
                if not granted:
                    scopes = " or ".join(scope for area in group for scope in area.scopes)
                    not_granted.append(f"{scopes} ({' / '.join(area.label for area in group)})")
                    continue
                probed.append(granted[0])
        # one read per granted area, all at once
        problems = side_by_side(*(partial(self._probe, area) for area in probed), pool=read_pool())
        missing = [problem for problem in problems if problem]
        if not_granted:
            plural = len(not_granted) > 1
            missing.insert(
                0,
                f"the Fortnox scope{'s' if plural else ''} {', '.join(not_granted)} {'were' if plural else 'was'} "
                f"not granted to the integration; {REACTIVATE} and approve every requested area",
            )
        return missing

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability is Capability.ATTACHMENT_UPLOAD:
            return Support(True, "inbox or archive upload plus voucher file connections (granted by scope)")
        if capability is Capability.JOURNAL_ENTRY:
            return self._journal_support()
        what = "reading the preferred accounts"
        response = self._get("/predefinedaccounts", what=what)
        self._raise_for(response, what=what, area=SETTINGS)
        read = BodyReader(NAME, what)
        accounts = {
            name: read.text(item, "Account", numbers=True)
            for item in read.objects(read.parse_object(response), "PreDefinedAccounts")
            if (name := read.text(item, "Name"))
        }
        supplier_debt = accounts.get(SUPPLIER_DEBT)
        if not supplier_debt or supplier_debt == "0":
            return Support(
                False,
                f"{self._label()} has no preferred supplier debt account ({SUPPLIER_DEBT}), which supplier invoices "
                "post to; set it in Fortnox under Settings > Bookkeeping > Preferred accounts",
            )
        return Support(True, f"supplier invoices post to the preferred supplier debt account {supplier_debt}")

    def _journal_support(self) -> Support:
        no_year = Support(False, f"no financial year covers today ({self._today().isoformat()}) in {self._label()}")
        if not self._series:
            return no_year if self._open_years() is None else Support(False, "no voucher series is configured")
        read_years = self._in_open_years(self._voucher_series)
        if read_years is None:
            return no_year
        years, series_by_year = read_years
        code = self._series.upper()
        read = BodyReader(NAME, "looking up the voucher series")
        label = ""
        for year, existing in zip(years.all, series_by_year, strict=True):
            series = existing.get(code)
            if series is None:
                known = ", ".join(sorted(existing)) or "none"
                return Support(
                    False,
                    f"voucher series {self._series} does not exist in the financial year {year} of {self._label()} "
                    f"(existing: {known}){years.why_open(year)}",
                )
            if not read.flag(series, "Manual", default=True):
                return Support(
                    False,
                    f"voucher series {self._series} of {self._label()} is not a manual series in the financial year "
                    f'{year}, and Fortnox takes vouchers through the API only in manual series ("Verifikationsserien '
                    'är inte manuell"); map a manual voucher series (journal) in the integration settings, or tick '
                    f"Manual for series {self._series} in Fortnox (Settings > Bookkeeping > Voucher series)"
                    f"{years.why_open(year)}",
                )
            if not label:
                description = read.text(series, "Description")
                label = f"voucher series {self._series}" + (f" ({description})" if description else "")
        named = " and ".join(str(year) for year in years.all)
        return Support(True, f"{label} (manual) in the financial year{'s' if years.previous else ''} {named}")

    # -------------------- mapped accounts and tax codes (checks: mapped_accounts, mapped_tax_codes)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({ref for ref in refs if ref})
        if not wanted:
            return {}
        read_years = self._in_open_years(self._accounts)
        if read_years is None:
            return {ref: self._no_year(ref) for ref in wanted}
        years, accounts_by_year = read_years
        read = BodyReader(NAME, "looking up the mapped accounts")
        charts: list[tuple[FinancialYear, dict[str, JsonObject]]] = [
            (year, {number: item for item in accounts if (number := read.text(item, "Number", numbers=True))})
            for year, accounts in zip(years.all, accounts_by_year, strict=True)
        ]
        result: dict[str, LedgerEntry | None] = {}
        for ref in wanted:
            current = charts[0][1].get(ref)
            if current is None:
                result[ref] = None
                continue
            name = read.text(current, "Description")
            problem = ""
            for year, chart in charts:
                item = chart.get(ref)
                if item is None:
                    problem = f"does not exist in the financial year {year}{years.why_open(year)}"
                elif not read.flag(item, "Active", default=True):
                    problem = f"is inactive in the financial year {year}{years.why_open(year)}"
                if problem:
                    break
            result[ref] = LedgerEntry(ref=ref, name=name, usable=not problem, problem=problem)
        return result

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        """A Fortnox VAT code is usable when an active account of the year's chart carries it
        (Swedish VAT is booked on VAT accounts; the code lives on the account), in every open year."""
        wanted = sorted({code for code in codes if code})
        if not wanted:
            return {}
        read_years = self._in_open_years(self._accounts)
        if read_years is None:
            return {code: self._no_year(code) for code in wanted}
        years, accounts_by_year = read_years
        read = BodyReader(NAME, "looking up the mapped VAT codes")
        carriers_by_year: list[tuple[FinancialYear, dict[str, list[tuple[str, bool]]]]] = []
        for year, chart in zip(years.all, accounts_by_year, strict=True):
            carriers: dict[str, list[tuple[str, bool]]] = {}
            for item in chart:
                code, number = read.text(item, "VATCode"), read.text(item, "Number", numbers=True)
                if code and number:
                    carriers.setdefault(code.upper(), []).append((number, read.flag(item, "Active", default=True)))
            carriers_by_year.append((year, carriers))
        result: dict[str, LedgerEntry | None] = {}
        for code in wanted:
            if not carriers_by_year[0][1].get(code.upper()):
                result[code] = None
                continue
            problem, name = "", ""
            for year, carriers in carriers_by_year:
                accounts = carriers.get(code.upper(), [])
                postable = [number for number, is_active in accounts if is_active]
                numbers = ", ".join(number for number, _ in accounts)
                if not accounts:
                    problem = f"is on no account in the financial year {year}{years.why_open(year)}"
                elif not postable:
                    problem = (
                        f"is only on inactive accounts ({numbers}) in the financial year {year}{years.why_open(year)}"
                    )
                elif not name:
                    name = f"on account {postable[0]}"
                if problem:
                    break
            if not name:
                name = f"on account {', '.join(number for number, _ in carriers_by_year[0][1][code.upper()])}"
            result[code] = LedgerEntry(ref=code, name=name, usable=not problem, problem=problem)
        return result

    # ------------------------------------------------------------ plumbing

    def _probe(self, area: Area) -> str:
        """Why ``area`` is closed to us (licence, API licence, the user's rights), or ""."""
        what = f"checking access to {area.label}"
        params: dict[str, Any] = {"limit": 1} if area.paged else {}
        if area is BOOKKEEPING:
            params = {"date": self._today().isoformat()}
        response = self._get(area.probe, what=what, params=params)
        code = _error_code(response)
        scope = area.scopes[0]
        if code == NO_SCOPE_LICENCE:
            return (
                f"{self._label()} has no Fortnox licence for {area.label} (scope {scope}, Fortnox error {code}); the "
                "customer must add it to their Fortnox subscription (Tilläggsbeställning)"
            )
        if code == USER_NOT_ALLOWED:
            return (
                f"the Fortnox user who activated the integration is not allowed to use {area.label} (scope {scope}, "
                f"Fortnox error {code}); {REACTIVATE}"
            )
        self._raise_for(response, what=what, area=area)
        if area is BOOKKEEPING:
            self._year = self._parse_year(response)
        elif area is SETTINGS:
            self._locked_until = self._parse_lock(response)
        return ""

    def _financial_year(self, on: date | None = None) -> FinancialYear | None:
        """The financial year covering ``on`` (default today; today's is read once)."""
        if on is None and self._year is not False:
            assert self._year is not True
            return self._year
        what = "looking up the financial year"
        day = on or self._today()
        response = self._get("/financialyears", what=what, params={"date": day.isoformat()})
        self._raise_for(response, what=what, area=BOOKKEEPING)
        year = self._parse_year(response)
        if on is None:
            self._year = year
        return year

    def _open_years(self) -> OpenYears | None:
        """Today's financial year and, while it is not locked, the previous one (read once)."""
        with self._years_lock:
            if self._open is not None:
                return self._open
            current = self._financial_year()
            if current is None:
                return None
            previous: FinancialYear | None = None
            start = _iso_date(current.from_date)
            if start is not None:
                previous = self._financial_year(date.fromordinal(start.toordinal() - 1))
                if previous is not None and previous.id == current.id:
                    previous = None  # not an earlier year: the answer ignored the date
            lock_known = True
            if previous is not None:
                locked_until = self._locked_period()
                lock_known = locked_until is not False
                end = _iso_date(previous.to_date)
                locked = _iso_date(locked_until) if isinstance(locked_until, str) else None
                if end is not None and locked is not None and locked >= end:
                    previous = None  # the whole previous year is locked: no voucher can land there
            self._open = OpenYears(current, previous, lock_known)
            return self._open

    def _in_open_years(self, read: Callable[[FinancialYear], T]) -> tuple[OpenYears, list[T]] | None:
        """The open years and ``read`` of each (None without a financial year for today).
        Today's year is read while the previous one is looked up: it is needed whatever that
        turns out to be."""
        current = self._financial_year()
        if current is None:
            return None
        found, first = side_by_side(self._open_years, partial(read, current), pool=read_pool())
        years = cast(OpenYears | None, found)
        if years is None:
            return None
        if years.current != current:  # today's year was read again meanwhile, differently
            first = read(years.current)
        return years, [cast(T, first), *(read(year) for year in years.all[1:])]

    def _locked_period(self) -> str | bool | None:
        """The last locked date (``None``: nothing locked), or False when it cannot be read
        (the ``settings`` scope not granted, or refused by licence or user rights)."""
        if self._locked_until is not False:
            return self._locked_until
        if "settings" not in self._auth.current().scopes():
            return False
        what = "reading the locked period"
        response = self._get("/settings/lockedperiod", what=what)
        if _error_code(response) in PERMISSION_CODES:
            return False
        self._raise_for(response, what=what, area=SETTINGS)
        self._locked_until = self._parse_lock(response)
        return self._locked_until

    def _parse_year(self, response: httpx.Response) -> FinancialYear | None:
        read = BodyReader(NAME, "looking up the financial year")
        for item in read.objects(read.parse_object(response), "FinancialYears"):
            year_id = read.text(item, "Id", numbers=True)
            if year_id:
                return FinancialYear(year_id, read.text(item, "FromDate"), read.text(item, "ToDate"))
        return None

    @staticmethod
    def _parse_lock(response: httpx.Response) -> str | None:
        read = BodyReader(NAME, "reading the locked period")
        end = read.text(read.member(read.parse_object(response), "LockedPeriod"), "EndDate")
        if end and _iso_date(end) is None:
            raise read.malformed()
        return end or None

    def _voucher_series(self, year: FinancialYear) -> dict[str, JsonObject]:
        if year.id not in self._series_found:
            read = BodyReader(NAME, "looking up the voucher series")
            self._series_found[year.id] = {
                code.upper(): item
                for item in self._collection("/voucherseries", "VoucherSeriesCollection", year, what=read.what)
                if (code := read.text(item, "Code"))
            }
        return self._series_found[year.id]

    def _accounts(self, year: FinancialYear) -> list[JsonObject]:
        """The chart of accounts, read once: the account and VAT-code checks run side by
        side and both look here (the lock keeps the second from reading it again)."""
        with self._accounts_lock:
            if year.id not in self._accounts_found:
                self._accounts_found[year.id] = self._collection(
                    "/accounts", "Accounts", year, what="looking up the mapped accounts"
                )
            return self._accounts_found[year.id]

    def _collection(self, path: str, key: str, year: FinancialYear, *, what: str) -> list[JsonObject]:
        read = BodyReader(NAME, what)

        def fetch(page: PageRequest) -> JsonObject:
            response = self._get(path, what=what, params={"financialyear": year.id, **page.params})
            self._raise_for(response, what=what, area=BOOKKEEPING)
            return read.parse_object(response)

        return PAGING.collect(fetch, lambda body: read.objects(body, key), read)

    def _get(self, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """GET with the bearer token (a 401 refreshes it once: see ``OAuthBearer``)."""
        return request_or_raise(
            self._api,
            "GET",
            f"{API}{path}",
            system=NAME,
            what=what,
            auth=self._auth,
            inspect=_system_exception,
            **kwargs,
        )

    def _label(self) -> str:
        """The company as the bookkeeper knows it: its name (once known) and organisation number."""
        if self._company_name:
            return f"the Fortnox company {self._company_name} ({self._organisation_number})"
        return f"the Fortnox company {self._organisation_number}"

    def _no_year(self, ref: str) -> LedgerEntry:
        return LedgerEntry(
            ref=ref,
            name=None,
            usable=False,
            problem=f"cannot be checked: no financial year covers today ({self._today().isoformat()}); create it in "
            "Fortnox under Settings > Bookkeeping > Financial years",
        )

    def _raise_for(self, response: httpx.Response, *, what: str, area: Area | None) -> None:
        """Every answer that is not a success, as the most precise permanent failure."""
        if response.is_success:
            return
        code = _error_code(response)
        if code in TOKEN_REJECTED or (response.status_code == 401 and code not in PERMISSION_CODES):
            raise AccountingSystemError(
                f"Fortnox rejected the integration's access token for {self._label()} even after a refresh. "
                f"{REACTIVATE_SENTENCE}, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if code == NO_API_LICENCE:
            raise AccountingSystemError(
                f"{self._label()} has no licence to use the Fortnox API (Fortnox error {code}). The customer must "
                "order the integration licence in Fortnox (Tilläggsbeställning), then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if code in (NO_SCOPE_LICENCE, USER_NOT_ALLOWED) or response.status_code == 403:
            scope = f" (scope {area.scopes[0]})" if area else ""
            cause = {
                NO_SCOPE_LICENCE: "the company has no Fortnox licence for this area; the customer must add it to "
                "their Fortnox subscription (Tilläggsbeställning), then export again",
                USER_NOT_ALLOWED: "the Fortnox user who activated the integration may not use this area. "
                f"{REACTIVATE_SENTENCE}, then export again",
            }.get(code or 0, f"{REACTIVATE_SENTENCE}, then export again")
            raise AccountingSystemError(
                f"Fortnox refused {what} for {self._label()}{scope}"
                + (f" (Fortnox error {code})" if code else "")
                + f": {cause}.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        raise unexpected_answer(NAME, response, what)


def _iso_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _digits(organisation_number: str) -> str:
    return organisation_number.replace("-", "").strip()


def _error_code(response: httpx.Response | Answer) -> int | None:
    """``ErrorInformation.code`` of a Fortnox error body (either casing), or None for anything else."""
    if 200 <= response.status_code < 300:
        return None
    try:
        body = json_body(response, system=NAME, what="reading an error answer")  # type: ignore[arg-type]
    except AccountingSystemUnavailable:
        return None
    if not isinstance(body, dict):
        return None
    information = body.get("ErrorInformation") or body.get("errorInformation")
    if not isinstance(information, dict):
        return None
    code = information.get("code", information.get("Code"))
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _system_exception(response: httpx.Response) -> None:
    """Fortnox's "system exception" (1000003) is its own trouble, whatever the status: retried."""
    if _error_code(response) == SYSTEM_EXCEPTION:
        raise AccountingSystemUnavailable(
            f"Fortnox answered {response.status_code} with a system exception (Fortnox error {SYSTEM_EXCEPTION})",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
        )


def _permission_refusal(response: httpx.Response) -> bool:
    """A licence or user-rights refusal is not about the token: a new token would not help."""
    return _error_code(response) in PERMISSION_CODES


class FortnoxTokenEndpoint(TokenEndpoint):
    """Fortnox's token endpoint: a refused refresh token (single-use, so already used, or
    expired after 45 days) means a user must re-activate the integration."""

    def refresh(self, tokens: TokenSet) -> Answer:
        try:
            return super().refresh(tokens)
        except GrantRevoked:
            raise GrantRevoked(
                "Fortnox no longer accepts the integration's authorisation: its single-use refresh token was already "
                f"used or has expired. {REACTIVATE_SENTENCE}, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            ) from None


FORTNOX = OAuthSystem(
    system_id="fortnox",
    display_name=NAME,
    env_prefix="FORTNOX_",
    api_base_url="https://api.fortnox.se",
    token_service=TokenService("auth", "https://apps.fortnox.se", TOKEN_PATH),
    client_credentials="export-preflight/fortnox/client",
    refusal=_permission_refusal,
    token_endpoint=FortnoxTokenEndpoint,
)
FortnoxSettings = FORTNOX.settings

SPEC = FORTNOX.spec(
    FortnoxConnector,
    required_mappings=(
        ("journal", "voucher series (journal)"),
        ("expense_account", "default expense account (expenseAccount)"),
        ("contra_account", "contra account for card spend (contraAccount)"),
    ),
    vendor_mappings=(),  # supplier invoices post to the preferred supplier debt account (checked as a capability)
    numeric_fields=frozenset(  # 4-digit BAS account numbers; the organisation number has its own shape check
        {"mappings.expenseAccount", "mappings.contraAccount", "mappings.vendorPayablesAccount"}
    ),
    company_ref=CompanyRefRule(ORGANISATION_NUMBER, "a Swedish organisation number (NNNNNN-NNNN, the hyphen optional)"),
    refresh_token_idle_days=45,  # refresh token: single-use, valid 45 days
)
