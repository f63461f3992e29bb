"""The Fortnox connector against Fortnox-shaped answers (respx)."""

from __future__ import annotations

import json
import threading
import time
from datetime import date

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.connectors.fortnox import FortnoxConnector, _permission_refusal
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, FailureReasonType, TokenSet
from export_preflight.oauth import OAuthBearer
from tests.unit.fakes import configuration

BASE = "https://api.fortnox.se"
ORG = "556677-8899"
ALL_SCOPES = "companyinformation bookkeeping settings supplier supplierinvoice inbox archive connectfile"
TODAY = date(2026, 5, 4)

COMPANY = {"CompanyInformation": {"CompanyName": "Acme AB", "OrganizationNumber": ORG, "CountryCode": "SE"}}
YEARS = {"FinancialYears": [{"Id": 3, "FromDate": "2026-01-01", "ToDate": "2026-12-31"}], "MetaInformation": {}}
PREVIOUS_YEAR = {"FinancialYears": [{"Id": 2, "FromDate": "2025-01-01", "ToDate": "2025-12-31"}], "MetaInformation": {}}
LOCKED_2025 = {"LockedPeriod": {"EndDate": "2025-12-31"}}
ACCOUNTS = {
    "MetaInformation": {"@TotalPages": 1, "@CurrentPage": 1},
    "Accounts": [
        {"Number": 2641, "Description": "Debiterad ingående moms", "Active": True, "VATCode": "I"},
        {"Number": 2645, "Description": "Beräknad ingående moms", "Active": False, "VATCode": "IVEU"},
        {"Number": 5410, "Description": "Förbrukningsinventarier", "Active": True, "VATCode": None},
        {"Number": 5420, "Description": "Programvaror", "Active": False},
    ],
}
SERIES = {
    "MetaInformation": {"@TotalPages": 1},
    "VoucherSeriesCollection": [{"Code": "A", "Description": "Redovisning"}],
}
PREDEFINED = {"PreDefinedAccounts": [{"Name": "SUPDEBT", "Account": 2440}]}


def fortnox_error(status: int, code: int, message: str = "Fel") -> httpx.Response:
    return httpx.Response(status, json={"ErrorInformation": {"error": 1, "message": message, "code": code}})


class FakeTokens:
    """Stands in for ``OAuthTokens``: hands out one token set, counts refreshes."""

    def __init__(self, scope: str = ALL_SCOPES) -> None:
        self.refreshes = 0
        self.scope = scope

    def current(self, secret_id, endpoint):
        return self._tokens("access-1")

    def refresh(self, secret_id, endpoint, *, rejected):
        self.refreshes += 1
        return self._tokens(f"access-{self.refreshes + 1}")

    def _tokens(self, access: str) -> TokenSet:
        return TokenSet(
            accessToken=SecretStr(access), refreshToken=SecretStr("r"), expiresAt=time.time() + 3600, scope=self.scope
        )


def new_connector(http, tokens, **overrides):
    config = configuration(
        accountingSystem="fortnox",
        accountingCompanyRef=overrides.pop("ref", ORG),
        accountingCredentialsSecretId="export-preflight/fortnox/acme",
        mappings={"journal": "A", "expenseAccount": "5410", "contraAccount": "2890", "vatCodes": ["I"]},
    )
    auth = OAuthBearer(tokens, "export-preflight/fortnox/acme", None, refusal=_permission_refusal)  # type: ignore[arg-type]
    return FortnoxConnector(http, auth, config, today=lambda: TODAY)


@pytest.fixture
def api():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def tokens():
    return FakeTokens()


@pytest.fixture
def connector(tokens):
    with new_client(BASE, timeout_seconds=2) as http:
        yield new_connector(http, tokens)


def years_by_date(request: httpx.Request) -> httpx.Response:
    """Fortnox's ``financialyears?date=``: the year covering the date, or none."""
    on = request.url.params.get("date", "")
    return httpx.Response(200, json=YEARS if on.startswith("2026") else PREVIOUS_YEAR if on.startswith("2025") else {})


def healthy(api):
    api.get("/3/companyinformation").respond(200, json=COMPANY)
    api.get("/3/financialyears").mock(side_effect=years_by_date)
    api.get("/3/accounts").respond(200, json=ACCOUNTS)
    api.get("/3/voucherseries").respond(200, json=SERIES)
    api.get("/3/predefinedaccounts").respond(200, json=PREDEFINED)
    for path in ("/3/supplierinvoices", "/3/inbox", "/3/archive", "/3/voucherfileconnections"):
        api.get(path).respond(200, json={"MetaInformation": {}})
    api.get("/3/settings/lockedperiod").respond(200, json=LOCKED_2025)
    api.get("/3/suppliers").respond(200, json={"MetaInformation": {}, "Suppliers": []})


# ---------------------------------------------------------------- company and ledger


def test_authenticate_names_the_company_by_organisation_number(api, connector):
    route = api.get("/3/companyinformation").respond(200, json=COMPANY)
    profile = connector.authenticate()
    assert profile.company_ref == ORG and profile.company_name == "Acme AB"
    assert "bookkeeping" in profile.permissions
    assert route.calls.last.request.headers["Authorization"] == "Bearer access-1"


def test_an_organisation_number_without_hyphen_is_the_same_company(api, tokens):
    api.get("/3/companyinformation").respond(200, json=COMPANY)
    with new_client(BASE, timeout_seconds=2) as http:
        assert new_connector(http, tokens, ref="5566778899").authenticate().company_ref == "5566778899"


def test_a_malformed_organisation_number_is_invalid_configuration_before_any_call(api, tokens):
    route = api.get("/3/companyinformation").respond(200, json=COMPANY)
    with new_client(BASE, timeout_seconds=2) as http, pytest.raises(AccountingSystemError) as raised:
        new_connector(http, tokens, ref="55-66").authenticate()
    assert raised.value.reason_type is FailureReasonType.INVALID_CONFIGURATION and not route.called


def test_accounts_and_vat_codes_are_read_for_todays_financial_year(api, connector):
    healthy(api)
    accounts = connector.accounts(["5410", "5420", "9999"])
    codes = connector.tax_codes(["I", "IVEU", "ZZ"])
    assert accounts["5410"].usable and "inactive" in accounts["5420"].problem and accounts["9999"] is None
    assert codes["I"].usable and not codes["IVEU"].usable and codes["ZZ"] is None
    assert api.routes[2].calls.last.request.url.params["financialyear"] == "3"
    assert api.routes[1].calls[0].request.url.params["date"] == "2026-05-04"


def test_no_financial_year_for_today_fails_journal_entries_and_the_lookups_say_why(api, connector):
    healthy(api)
    api.get("/3/financialyears").respond(200, json={"FinancialYears": []})
    profile = connector.authenticate()
    support = connector.supports(profile, Capability.JOURNAL_ENTRY)
    assert not support.supported and "no financial year covers today (2026-05-04)" in support.detail
    assert "cannot be checked" in connector.accounts(["5410"])["5410"].problem


def test_a_missing_voucher_series_and_an_unset_supplier_debt_account_are_unsupported(api, tokens):
    healthy(api)
    api.get("/3/predefinedaccounts").respond(200, json={"PreDefinedAccounts": [{"Name": "SUPDEBT", "Account": 0}]})
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens)
        connector._series = "Z"
        profile = connector.authenticate()
        journal = connector.supports(profile, Capability.JOURNAL_ENTRY)
        vendor = connector.supports(profile, Capability.VENDOR_BOOKKEEPING)
    assert (
        not journal.supported
        and "voucher series Z does not exist" in journal.detail
        and "(existing: A)" in journal.detail
    )
    assert not vendor.supported and "Preferred accounts" in vendor.detail


def test_vendor_bookkeeping_finds_the_preferred_supplier_debt_account_by_fortnoxs_name_supdebt(api, connector):
    """Fortnox names it SUPDEBT (predefined-accounts page; the SDK's PredefinedAccountName)."""
    healthy(api)
    support = connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert support.supported and "2440" in support.detail


def test_a_voucher_series_that_is_not_manual_cannot_take_the_jobs_vouchers(api, connector):
    healthy(api)
    api.get("/3/voucherseries").respond(
        200, json={"VoucherSeriesCollection": [{"Code": "A", "Description": "Redovisning", "Manual": False}]}
    )
    support = connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)
    assert not support.supported
    assert "voucher series A of the Fortnox company Acme AB (556677-8899) is not a manual series" in support.detail
    assert "map a manual voucher series" in support.detail and "tick Manual for series A" in support.detail


def _previous_year(api, *, locked_until, scope=ALL_SCOPES, chart_2025=None, series_2025=None):
    """2026 is today's year; 2025 exists with its own chart and series; the lock ends ``locked_until``."""
    healthy(api)
    api.get("/3/settings/lockedperiod").respond(200, json={"LockedPeriod": {"EndDate": locked_until}})
    this_year = {**ACCOUNTS, "Accounts": [*ACCOUNTS["Accounts"], {"Number": 2890, "Active": True}]}
    last_year = chart_2025 if chart_2025 is not None else this_year

    def accounts(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=this_year if request.url.params["financialyear"] == "3" else last_year)

    def series(request: httpx.Request) -> httpx.Response:
        wanted = series_2025 if request.url.params["financialyear"] == "2" and series_2025 is not None else SERIES
        return httpx.Response(200, json=wanted)

    api.get("/3/accounts").mock(side_effect=accounts)
    api.get("/3/voucherseries").mock(side_effect=series)
    return FakeTokens(scope)


def test_an_open_previous_year_counts_for_accounts_vat_codes_and_series(api):
    """In January a job still carries December's expenses: while 2025 is not locked, its
    chart and its voucher series must take them too."""
    chart_2025 = {"Accounts": [{"Number": 5410, "Active": False}, {"Number": 2641, "Active": False, "VATCode": "I"}]}
    tokens = _previous_year(
        api, locked_until="2024-12-31", chart_2025=chart_2025, series_2025={"VoucherSeriesCollection": []}
    )
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens)
        profile = connector.authenticate()
        accounts = connector.accounts(["5410", "2890"])
        codes = connector.tax_codes(["I"])
        journal = connector.supports(profile, Capability.JOURNAL_ENTRY)
    assert not accounts["5410"].usable
    assert accounts["5410"].problem.startswith(
        "is inactive in the financial year 2025-01-01–2025-12-31, which still takes vouchers (it is not locked"
    )
    assert "lock that year in Fortnox (Settings > Bookkeeping > Lock period)" in accounts["5410"].problem
    assert not accounts["2890"].usable and "does not exist in the financial year 2025-01-01–2025-12-31" in (
        accounts["2890"].problem
    )
    assert not codes["I"].usable and "only on inactive accounts (2641) in the financial year 2025" in codes["I"].problem
    assert (
        not journal.supported and "voucher series A does not exist in the financial year 2025-01-01" in journal.detail
    )


def test_todays_chart_is_read_while_the_previous_year_is_looked_up(api, connector):
    """Today's chart is needed whatever the previous year turns out to be: its read and the
    previous year's look-up are in flight at once (a barrier both must reach)."""
    healthy(api)
    barrier = threading.Barrier(2, timeout=2)

    def years(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("date", "").startswith("2025"):  # the previous year's look-up
            barrier.wait()
        return years_by_date(request)

    def chart(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return httpx.Response(200, json=ACCOUNTS)

    api.get("/3/financialyears").mock(side_effect=years)
    api.get("/3/accounts").mock(side_effect=chart)
    connector.authenticate()
    assert connector.accounts(["5410"])["5410"].usable


def test_a_locked_previous_year_no_longer_counts(api):
    chart_2025 = {"Accounts": [{"Number": 5410, "Active": False}]}
    tokens = _previous_year(
        api, locked_until="2025-12-31", chart_2025=chart_2025, series_2025={"VoucherSeriesCollection": []}
    )
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens)
        profile = connector.authenticate()
        assert connector.accounts(["5410"])["5410"].usable
        journal = connector.supports(profile, Capability.JOURNAL_ENTRY)
    assert journal.supported and "2025" not in journal.detail
    years = [call.request.url.params.get("financialyear") for call in api.routes[2].calls]
    assert years == ["3"], "a locked year's chart is not read"


def test_without_the_settings_scope_the_previous_year_counts_as_open_and_the_reason_says_why(api):
    chart_2025 = {"Accounts": [{"Number": 5410, "Active": False}]}
    tokens = _previous_year(
        api, locked_until="2025-12-31", scope="companyinformation bookkeeping", chart_2025=chart_2025
    )
    with new_client(BASE, timeout_seconds=2) as http:
        entry = new_connector(http, tokens).accounts(["5410"])["5410"]
    assert not entry.usable and "cannot read Fortnox's locked period without the scope settings" in entry.problem
    assert not [call for call in api.calls if call.request.url.path == "/3/settings/lockedperiod"]


def test_a_grant_without_settings_is_told_the_scope_not_that_the_user_lacks_bookkeeping_rights(api, connector):
    healthy(api)
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, FakeTokens(ALL_SCOPES.replace(" settings", "")))
        profile = connector.authenticate()
        missing = connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING})
    assert len(missing) == 1 and "scope settings (preferred accounts and locked period) was not granted" in missing[0]
    assert "bookkeeping" not in missing[0]


def test_a_vendor_job_needs_the_supplier_scope(api):
    healthy(api)
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, FakeTokens(ALL_SCOPES.replace(" supplier ", " ")))
        profile = connector.authenticate()
        assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY}) == []
        missing = connector.missing_permissions(profile, {Capability.VENDOR_BOOKKEEPING})
    assert len(missing) == 1 and "scope supplier (suppliers) was not granted" in missing[0]


def test_a_preferred_accounts_refusal_names_the_settings_scope(api, connector):
    healthy(api)
    api.get("/3/predefinedaccounts").mock(return_value=fortnox_error(403, 2000663))
    with pytest.raises(AccountingSystemError) as raised:
        connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert "(scope settings)" in str(raised.value) and "bookkeeping" not in str(raised.value)


# ---------------------------------------------------------------- the three permission gates


def test_gate_one_a_scope_not_granted_is_named_without_a_call(api):
    healthy(api)
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, FakeTokens("companyinformation bookkeeping"))
        profile = connector.authenticate()
        missing = connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING})
    assert missing == [
        "the Fortnox scopes supplierinvoice (supplier invoices), supplier (suppliers), settings (preferred "
        "accounts and locked period) were not granted to the integration; a Fortnox user with the needed "
        "permissions (or a system administrator, for a service account) must re-activate the integration by "
        "connecting Fortnox again in the integration settings and approve every requested area"
    ]
    assert not api.routes[5].called  # no supplier-invoice probe for a scope never granted


def test_the_granted_areas_are_probed_side_by_side(api, connector):
    """A vendor job's four areas (bookkeeping, supplier invoices, suppliers, settings): every
    probe is in flight at once (a barrier all four must reach)."""
    healthy(api)
    barrier = threading.Barrier(4, timeout=2)

    def meeting(answer):  # type: ignore[no-untyped-def]
        def respond(request: httpx.Request) -> httpx.Response:
            barrier.wait()
            return answer(request) if callable(answer) else httpx.Response(200, json=answer)

        return respond

    api.get("/3/financialyears").mock(side_effect=meeting(years_by_date))
    api.get("/3/supplierinvoices").mock(side_effect=meeting({"MetaInformation": {}}))
    api.get("/3/suppliers").mock(side_effect=meeting({"MetaInformation": {}, "Suppliers": []}))
    api.get("/3/settings/lockedperiod").mock(side_effect=meeting(LOCKED_2025))
    profile = connector.authenticate()
    assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING}) == []


def test_gate_two_no_licence_for_the_area(api, connector):
    healthy(api)
    api.get("/3/supplierinvoices").mock(return_value=fortnox_error(403, 2001101, "Det finns ingen aktiv licens"))
    profile = connector.authenticate()
    missing = connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING})
    assert missing == [
        "the Fortnox company Acme AB (556677-8899) has no Fortnox licence for supplier invoices (scope "
        "supplierinvoice, Fortnox error 2001101); the customer must add it to their Fortnox subscription "
        "(Tilläggsbeställning)"
    ]


def test_gate_two_no_api_licence_at_all_fails_authentication_as_authorization(api, connector, tokens):
    api.get("/3/companyinformation").mock(return_value=fortnox_error(403, 2001103, "Api-licens saknas."))
    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()
    assert raised.value.reason_type is FailureReasonType.AUTHORIZATION_FAILURE
    assert "no licence to use the Fortnox API" in str(raised.value) and tokens.refreshes == 0


def test_gate_three_the_user_was_not_allowed_the_area(api, connector, tokens):
    healthy(api)
    api.get("/3/financialyears").mock(return_value=fortnox_error(403, 2000663, "Har inte behörighet för scope"))
    profile = connector.authenticate()
    (missing,) = connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY})
    assert "user who activated the integration is not allowed to use bookkeeping" in missing
    assert "2000663" in missing and tokens.refreshes == 0


@pytest.mark.parametrize("status", [400, 401, 403])
def test_a_permission_code_on_a_401_does_not_refresh_the_token(api, connector, tokens, status):
    api.get("/3/companyinformation").mock(return_value=fortnox_error(status, 2000663))
    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()
    assert raised.value.reason_type is FailureReasonType.AUTHORIZATION_FAILURE and tokens.refreshes == 0


# ---------------------------------------------------------------- codes, not Swedish text


@pytest.mark.parametrize(
    ("status", "code", "message", "reason_type"),
    [
        (401, 2000310, "Ogiltig inloggning", FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        (
            400,
            2000311,
            "Kan inte logga in, access-token eller client-secret saknas(2).",
            FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        ),
        (403, 2001101, "Något helt annat på svenska", FailureReasonType.AUTHORIZATION_FAILURE),
        (400, 2001103, "Ogiltig inloggning", FailureReasonType.AUTHORIZATION_FAILURE),  # text of another code
        (400, 2000588, "Det finns ingen aktiv licens för önskat scope", FailureReasonType.VALIDATION_FAILURE),
    ],
)
def test_errors_are_classified_by_code_never_by_their_swedish_message(
    api, connector, status, code, message, reason_type
):
    api.get("/3/companyinformation").mock(return_value=fortnox_error(status, code, message))
    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()
    assert raised.value.reason_type is reason_type
    assert message not in str(raised.value)


@pytest.mark.parametrize("status", [400, 500, 503])
def test_a_system_exception_is_transient_whatever_the_status(api, connector, status):
    api.get("/3/companyinformation").mock(return_value=fortnox_error(status, 1000003, "System exception"))
    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    assert "1000003" in str(raised.value)


@pytest.mark.parametrize(("headers", "retry_after"), [({}, None), ({"Retry-After": "3"}, 3.0)])
def test_429_is_a_retried_rate_limit(api, connector, headers, retry_after):
    api.get("/3/companyinformation").respond(429, json={"message": "Too Many Requests"}, headers=headers)
    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT
    assert raised.value.retry_after == retry_after


# ---------------------------------------------------------------- malformed bodies

EXCEPTION_NAMES = ("Error", "Exception", "KeyError", "Traceback", "JSONDecode", "Recursion")
MARKER = "MALFORMED-7f3a"

MALFORMED_ANYWHERE: list[tuple[str, bytes]] = [
    ("html", f"<!DOCTYPE html><html><body>{MARKER} underhåll</body></html>".encode()),
    ("empty", b""),
    ("truncated", b'{"CompanyInformation": {"CompanyName": "Acme'),
    ("not utf-8", b'{"CompanyName": "\xff\xfe"}'),
    ("null", b"null"),
    ("string", f'"{MARKER}"'.encode()),
    ("number", b"42"),
    ("a list", b"[]"),
    ("5000-digit integer", b'{"Accounts": ' + b"9" * 5000 + b"}"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
]


def _collection_malformed(key: str, *, paged: bool = True) -> list[tuple[str, object]]:
    shapes: list[tuple[str, object]] = [
        (f"{key} an object", {key: {"x": 1}}),
        (f"{key} a string", {key: MARKER}),
        (f"{key} of numbers", {key: [1, 2]}),
        (f"{key} of lists", {key: [[]]}),
    ]
    if paged:  # read page by page: MetaInformation says how many pages
        shapes += [
            ("MetaInformation a list", {key: [], "MetaInformation": []}),
            ("@TotalPages a string", {key: [], "MetaInformation": {"@TotalPages": "1"}}),
        ]
    return shapes


COMPANY_MALFORMED: list[tuple[str, object]] = [
    ("CompanyInformation missing", {"Other": {}}),
    ("CompanyInformation a list", {"CompanyInformation": [ORG]}),
    ("OrganizationNumber a number", {"CompanyInformation": {"OrganizationNumber": 5566778899}}),
    ("CompanyName a list", {"CompanyInformation": {"OrganizationNumber": ORG, "CompanyName": ["Acme"]}}),
]
YEARS_MALFORMED = [
    *_collection_malformed("FinancialYears", paged=False),
    ("Id an object", {"FinancialYears": [{"Id": {}, "FromDate": "2026-01-01"}]}),
    ("FromDate a number", {"FinancialYears": [{"Id": 1, "FromDate": 2026}]}),
]
ACCOUNTS_MALFORMED = [
    *_collection_malformed("Accounts"),
    ("Accounts missing", {"MetaInformation": {}}),
    ("Number a list", {"Accounts": [{"Number": [5410]}]}),
    ("Active a string", {"Accounts": [{"Number": 5410, "Active": "true"}]}),
    ("VATCode a number", {"Accounts": [{"Number": 2641, "VATCode": 1}]}),
    ("Description a boolean", {"Accounts": [{"Number": 5410, "Description": True}]}),
]
SERIES_MALFORMED = [
    *_collection_malformed("VoucherSeriesCollection"),
    ("Code a number", {"VoucherSeriesCollection": [{"Code": 1}]}),
    ("Description a list", {"VoucherSeriesCollection": [{"Code": "A", "Description": []}]}),
]
PREDEFINED_MALFORMED: list[tuple[str, object]] = [
    ("PreDefinedAccounts missing", {}),
    ("PreDefinedAccounts an object", {"PreDefinedAccounts": {"Name": "SUPDEBT"}}),
    ("Name a number", {"PreDefinedAccounts": [{"Name": 1, "Account": 2440}]}),
    ("Account a list", {"PreDefinedAccounts": [{"Name": "SUPDEBT", "Account": [2440]}]}),
]


def _company(api, connector, answer):
    api.get("/3/companyinformation").mock(return_value=answer)
    connector.authenticate()


def _years(api, connector, answer):
    healthy(api)
    api.get("/3/financialyears").mock(return_value=answer)
    connector.accounts(["5410"])


def _accounts(api, connector, answer):
    healthy(api)
    api.get("/3/accounts").mock(return_value=answer)
    connector.accounts(["5410"])
    connector.tax_codes(["I"])


def _series(api, connector, answer):
    healthy(api)
    api.get("/3/voucherseries").mock(return_value=answer)
    connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)


def _predefined(api, connector, answer):
    healthy(api)
    api.get("/3/predefinedaccounts").mock(return_value=answer)
    connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)


ENDPOINTS = {
    "GET companyinformation": (_company, COMPANY_MALFORMED),
    "GET financialyears": (_years, YEARS_MALFORMED),
    "GET accounts": (_accounts, ACCOUNTS_MALFORMED),
    "GET voucherseries": (_series, SERIES_MALFORMED),
    "GET predefinedaccounts": (_predefined, PREDEFINED_MALFORMED),
}

MALFORMED_TABLE = [
    pytest.param(call, httpx.Response(200, content=raw), id=f"{endpoint}: {label}")
    for endpoint, (call, specific) in ENDPOINTS.items()
    for label, raw in [*MALFORMED_ANYWHERE, *((label, json.dumps(body).encode()) for label, body in specific)]
]


@pytest.mark.parametrize(("call", "answer"), MALFORMED_TABLE)
def test_malformed_bodies_are_the_accounting_systems_fault(api, connector, call, answer):
    with pytest.raises(AccountingSystemUnavailable) as raised:
        call(api, connector, answer)
    message = str(raised.value)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    assert message.startswith("Fortnox answered with something that is not the data we expected while ")
    assert not any(name in message for name in EXCEPTION_NAMES), message
    assert MARKER not in message and "<html" not in message.lower()


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_html_error_bodies_never_reach_the_reason(api, connector, status):
    api.get("/3/companyinformation").respond(status, text=f"<html>{MARKER}</html>")
    with pytest.raises((AccountingSystemError, AccountingSystemUnavailable)) as raised:
        connector.authenticate()
    assert MARKER not in str(raised.value) and "<html" not in str(raised.value)
