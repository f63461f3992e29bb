"""The QuickBooks Online connector against QuickBooks-shaped answers (respx)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.connectors.base import ACCOUNTING_ERRORS, ConnectionProfile
from export_preflight.connectors.quickbooks import (
    ACCOUNTING_SCOPE,
    QuickBooksConnector,
    QuickBooksTokenEndpoint,
    _not_about_the_token,
)
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, ClientCredentials, FailureReasonType, TokenSet
from export_preflight.oauth import GrantRevoked, OAuthBearer, parse_answer
from tests.unit.fakes import configuration

Reason = FailureReasonType
BASE = "https://quickbooks.api.intuit.com"
REALM = "9130357992178026"
COMPANY = f"/v3/company/{REALM}"
TODAY = date(2026, 5, 4)

COMPANY_INFO = {
    "CompanyInfo": {
        "CompanyName": "Harbour Ltd",
        "LegalName": "Harbour Ltd",
        "Country": "GB",
        "NameValue": [
            {"Name": "SubscriptionStatus", "Value": "PAID"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
        ],
        "Id": REALM,
    },
    "time": "2026-01-01T00:00:00.000-07:00",
}


def preferences(*, numbers: bool) -> dict:
    return {"Preferences": {"AccountingInfoPrefs": {"UseAccountNumbers": numbers}, "TaxPrefs": {"UsingSalesTax": True}}}


def account(account_id, name, kind, *, number=None, active=True):
    row = {"Id": account_id, "Name": name, "AccountType": kind, "Active": active}
    if number:
        row["AcctNum"] = number
    return row


ACCOUNTS = [
    account("7", "Office Expenses", "Expense", number="6100"),
    account("9", "Old Marketing", "Expense", number="6190", active=False),
    account("10", "Pleo Card", "Credit Card", number="2100"),
    account("12", "Accounts Payable (A/P)", "Accounts Payable", number="2000"),
    account("13", "Sales", "Income", number="4000"),
    account("61", "Misc", "Expense", number="7"),
]
TAX_CODES = [
    {"Id": "3", "Name": "20.0% S", "Active": True, "PurchaseTaxRateList": {"TaxRateDetail": [{}]}},
    {"Id": "6", "Name": "20.0% Sales only", "Active": True, "SalesTaxRateList": {"TaxRateDetail": [{}]}},
    {"Id": "7", "Name": "Old 17.5%", "Active": False},
]


def query_answer(entity: str, rows: list) -> dict:
    return {"QueryResponse": {entity: rows, "startPosition": 1, "maxResults": len(rows)} if rows else {}}


def documented(kind: str, code: str, message: str) -> dict:
    return {"Fault": {"Error": [{"Message": message, "Detail": "detail", "code": code}], "type": kind}, "time": "t"}


def gateway(kind: str, code: str, name: str, status: int) -> dict:
    message = f"message={name}; errorCode={int(code):06d}; statusCode={status}"
    return {"fault": {"error": [{"message": message, "detail": None, "code": code}], "type": kind}, "time": 1}


class FakeTokens:
    """Stands in for ``OAuthTokens``: hands out one token set, counts refreshes."""

    def __init__(self, scope: str | None = f"{ACCOUNTING_SCOPE} openid") -> None:
        self.refreshes = 0
        self.scope = scope

    def current(self, secret_id, endpoint):
        return self._tokens("access-1")

    def refresh(self, secret_id, endpoint, *, rejected):
        self.refreshes += 1
        return self._tokens(f"access-{self.refreshes + 1}")

    def _tokens(self, access: str) -> TokenSet:
        return TokenSet(
            accessToken=SecretStr(access),
            refreshToken=SecretStr("refresh"),
            expiresAt=time.time() + 3600,
            scope=self.scope,
        )


def new_connector(http, tokens, **mappings):
    config = configuration(
        accountingSystem="quickbooks",
        accountingCompanyRef=REALM,
        accountingCredentialsSecretId="export-preflight/quickbooks/harbour",
        mappings={"expenseAccount": "7", "contraAccount": "10", "vatCodes": ["3"], **mappings},
    )
    auth = OAuthBearer(tokens, "export-preflight/quickbooks/harbour", None, refusal=_not_about_the_token)  # type: ignore[arg-type]
    return QuickBooksConnector(http, auth, config, today=lambda: TODAY)


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


def serve_accounts(api, *, numbers: bool, rows=ACCOUNTS):
    api.get(f"{COMPANY}/preferences").respond(200, json=preferences(numbers=numbers))
    return api.get(f"{COMPANY}/query").respond(200, json=query_answer("Account", rows))


# ---------------------------------------------------------------- authentication and company


def test_authenticate_reads_the_configured_realm_with_minorversion(api, connector):
    route = api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO, headers={"intuit_tid": "1-abc"})

    profile = connector.authenticate()

    assert profile.company_ref == REALM and profile.company_name == "Harbour Ltd"
    assert ACCOUNTING_SCOPE in profile.permissions
    assert profile.facts["offeringSku"] == "QuickBooks Online Plus"
    assert route.calls.last.request.url.params["minorversion"] == "75"
    assert route.calls.last.request.method == "GET"


def test_every_call_carries_minorversion_75_and_queries_are_gets(api, connector):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    serve_accounts(api, numbers=False)
    connector.authenticate()
    connector.accounts(["7"])

    assert [c.request.url.params["minorversion"] for c in api.calls] == ["75"] * 3
    query = next(c.request for c in api.calls if c.request.url.path.endswith("/query"))
    statement = parse_qs(urlsplit(str(query.url)).query)["query"][0]
    assert statement.startswith("select * from Account where Active in (true, false)")
    assert "%20" in str(query.url)  # spaces encoded as %20, not "+"


def test_without_a_stored_scope_the_accounting_scope_is_inferred(api):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    with new_client(BASE, timeout_seconds=2) as http:
        profile = new_connector(http, FakeTokens(scope=None)).authenticate()
    assert profile.permissions == frozenset({ACCOUNTING_SCOPE})
    assert profile.facts["scopeEvidence"]


@pytest.mark.parametrize(
    "body",
    [
        gateway("SERVICE", "3100", "ApplicationAuthorizationFailed", 403),
        documented("AuthorizationFault", "3100", "message=ApplicationAuthorizationFailed; errorCode=003100"),
    ],
    ids=["gateway shape", "documented shape"],
)
def test_application_authorization_failed_is_the_wrong_company(api, connector, body):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(403, json=body)

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.INVALID_CONFIGURATION
    assert REALM in str(raised.value) and "accountingCompanyRef" in str(raised.value)


def test_application_authorization_failed_in_xml_is_still_recognised(api, connector):
    xml = (
        b'<?xml version="1.0"?><IntuitResponse><Fault type="AuthorizationFault"><Error code="3100">'
        b"<Message>message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403</Message>"
        b"</Error></Fault></IntuitResponse>"
    )
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(403, content=xml, headers={"Content-Type": "application/xml"})

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.INVALID_CONFIGURATION


@pytest.mark.parametrize(
    "body",
    [
        documented("AuthenticationFault", "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401"),
        gateway("AUTHENTICATION", "3200", "AuthenticationFailed", 401),
        None,
    ],
    ids=["documented shape", "gateway shape", "no body"],
)
def test_a_401_refreshes_once_then_is_an_authentication_failure(api, connector, tokens, body):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(401, json=body)

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert tokens.refreshes == 1


def test_a_401_authorization_fault_is_not_refreshed_and_is_an_authorization_failure(api, connector, tokens):
    body = documented("AuthorizationFault", "120", "Authorization Failure")
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(401, json=body)

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.AUTHORIZATION_FAILURE
    assert tokens.refreshes == 0


def test_a_realm_that_is_not_digits_is_never_sent(api, tokens):
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens)
        connector._realm = "../other"
        with pytest.raises(AccountingSystemError) as raised:
            connector.authenticate()
    assert raised.value.reason_type is Reason.INVALID_CONFIGURATION
    assert not api.calls


# ---------------------------------------------------------------- faults in a 200


UNAVAILABLE, REFUSED = AccountingSystemUnavailable, AccountingSystemError
FAULTS_IN_200: dict[str, tuple[dict, type[Exception], FailureReasonType]] = {
    "SystemFault": (
        documented("SystemFault", "10000", "An application error"),
        UNAVAILABLE,
        Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
    ),
    "ThrottleExceeded (gateway)": (
        gateway("SERVICE", "3001", "ThrottleExceeded", 429),
        UNAVAILABLE,
        Reason.ACCOUNTING_SYSTEM_RATE_LIMIT,
    ),
    "AuthenticationFault": (
        documented("AuthenticationFault", "3200", "AuthenticationFailed"),
        REFUSED,
        Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
    ),
    "AUTHENTICATION (gateway)": (
        gateway("AUTHENTICATION", "3200", "AuthenticationFailed", 401),
        REFUSED,
        Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
    ),
    "ApplicationAuthorizationFailed": (
        gateway("SERVICE", "3100", "ApplicationAuthorizationFailed", 403),
        REFUSED,
        Reason.INVALID_CONFIGURATION,
    ),
    "ValidationFault": (
        documented("ValidationFault", "2010", "Request has invalid or unsupported property"),
        REFUSED,
        Reason.VALIDATION_FAILURE,
    ),
    "upper-case keys": (
        {"FAULT": {"ERROR": [{"CODE": "3001"}], "TYPE": "service"}},
        UNAVAILABLE,
        Reason.ACCOUNTING_SYSTEM_RATE_LIMIT,
    ),
    "Fault not an object, next to data": (
        {"Fault": "broken", "CompanyInfo": COMPANY_INFO["CompanyInfo"]},
        UNAVAILABLE,
        Reason.ACCOUNTING_SYSTEM_UNREACHABLE,
    ),
}


@pytest.mark.parametrize(("body", "error", "reason"), list(FAULTS_IN_200.values()), ids=list(FAULTS_IN_200))
def test_a_200_with_a_fault_is_classified_never_data(api, connector, body, error, reason):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=body)

    with pytest.raises(error) as raised:
        connector.authenticate()

    assert raised.value.reason_type is reason


def test_throttle_exceeded_429_is_retried_with_retry_after(api, connector):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(
        429, json=gateway("SERVICE", "3001", "ThrottleExceeded", 429), headers={"Retry-After": "30"}
    )

    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_RATE_LIMIT
    assert raised.value.retry_after == 30


def test_throttle_exceeded_429_without_retry_after_backs_off(api, connector):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(429, content=b"<Fault>ThrottleExceeded</Fault>")

    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()

    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_RATE_LIMIT and raised.value.retry_after is None


def test_intuit_tid_is_logged_on_a_refusal(api, connector, caplog):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(
        403, json=gateway("SERVICE", "3100", "ApplicationAuthorizationFailed", 403), headers={"intuit_tid": "1-tid-42"}
    )
    with pytest.raises(AccountingSystemError):
        connector.authenticate()
    assert [getattr(r, "intuit_tid", None) for r in caplog.records] == ["1-tid-42"]


# ---------------------------------------------------------------- accounts


def test_accounts_by_id_when_account_numbers_are_off(api, connector):
    serve_accounts(api, numbers=False)

    found = connector.accounts(["7", "10", "9", "999"])

    assert found["7"] is not None and found["7"].usable
    assert found["10"] is not None and found["10"].usable
    assert found["9"] is not None and not found["9"].usable and "inactive" in found["9"].problem
    assert found["999"] is None


def test_the_account_list_overlaps_the_preferences_another_check_is_reading(api, connector):
    """The capabilities check reads the preferences (the closing date) while mapped_accounts
    looks up the accounts: the account list is asked for at once, not after the preferences
    answer (here the preferences answer only once the list was asked for)."""
    asked, listed = threading.Event(), threading.Event()
    overlapped: list[bool] = []

    def preferences_once_the_list_is_asked_for(request: httpx.Request) -> httpx.Response:
        asked.set()
        overlapped.append(listed.wait(2))
        return httpx.Response(200, json=preferences(numbers=False))

    def account_list(request: httpx.Request) -> httpx.Response:
        listed.set()
        return httpx.Response(200, json=query_answer("Account", ACCOUNTS))

    api.get(f"{COMPANY}/preferences").mock(side_effect=preferences_once_the_list_is_asked_for)
    api.get(f"{COMPANY}/query").mock(side_effect=account_list)
    profile = ConnectionProfile(REALM, "Harbour Ltd", frozenset())
    with ThreadPoolExecutor(max_workers=1) as pool:
        capabilities = pool.submit(connector.supports, profile, Capability.JOURNAL_ENTRY)
        assert asked.wait(2)
        found = connector.accounts(["7"])
        assert capabilities.result(timeout=5).supported
    assert overlapped == [True]  # one preferences read, shared, and the list did not wait for it
    assert found["7"] is not None and found["7"].usable


def test_an_account_number_while_numbers_are_off_says_how_to_fix_it(api, connector):
    serve_accounts(api, numbers=False)

    entry = connector.accounts(["6100"])["6100"]

    assert entry is not None and not entry.usable
    assert "account numbers are turned off" in entry.problem and "(7)" in entry.problem


def test_accounts_by_acctnum_when_account_numbers_are_on(api, tokens):
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens, expenseAccount="6100", contraAccount="2100")
        serve_accounts(api, numbers=True)
        found = connector.accounts(["6100", "2100"])
    assert found["6100"] is not None and found["6100"].usable and found["6100"].name == "Office Expenses"
    assert found["2100"] is not None and found["2100"].usable


def test_a_ref_that_is_one_accounts_id_and_anothers_number_is_ambiguous(api, tokens):
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens, expenseAccount="7")
        serve_accounts(api, numbers=True)
        entry = connector.accounts(["7"])["7"]
    assert entry is not None and not entry.usable and "ambiguous" in entry.problem


@pytest.mark.parametrize(
    ("mapping", "ref", "usable"),
    [
        ("expenseAccount", "13", False),  # Income
        ("expenseAccount", "10", False),  # Credit Card
        ("contraAccount", "12", False),  # Accounts Payable
        ("contraAccount", "7", False),  # Expense
        ("vendorPayablesAccount", "12", True),
        ("vendorPayablesAccount", "10", False),
    ],
)
def test_account_type_must_suit_the_mapping(api, tokens, mapping, ref, usable):
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, tokens, **{mapping: ref})
        serve_accounts(api, numbers=False)
        entry = connector.accounts([ref])[ref]
    assert entry is not None and entry.usable is usable
    if not usable:
        assert mapping in entry.problem and "account type" in entry.problem


def test_the_chart_is_read_once_per_job_and_paged(api, connector):
    api.get(f"{COMPANY}/preferences").respond(200, json=preferences(numbers=False))
    full = [account(str(i), f"A{i}", "Expense") for i in range(1, 1001)]
    route = api.get(f"{COMPANY}/query").mock(
        side_effect=[
            httpx.Response(200, json=query_answer("Account", full)),
            httpx.Response(200, json=query_answer("Account", [account("1001", "Last", "Expense")])),
        ]
    )
    assert connector.accounts(["1001"])["1001"] is not None
    connector.accounts(["7"])
    assert route.call_count == 2
    second = parse_qs(urlsplit(str(route.calls[1].request.url)).query)["query"][0]
    assert "startposition 1001" in second


# ---------------------------------------------------------------- tax codes


def test_tax_codes_by_id_or_name(api, connector):
    api.get(f"{COMPANY}/query").respond(200, json=query_answer("TaxCode", TAX_CODES))

    found = connector.tax_codes(["3", "20.0% s", "6", "7", "99"])

    assert found["3"] is not None and found["3"].usable
    assert found["20.0% s"] is not None and found["20.0% s"].usable
    assert found["6"] is not None and not found["6"].usable and "purchase" in found["6"].problem
    assert found["7"] is not None and not found["7"].usable and "inactive" in found["7"].problem
    assert found["99"] is None


# ---------------------------------------------------------------- capabilities and permissions


def test_simple_start_has_no_bills(api, connector):
    info = json.loads(json.dumps(COMPANY_INFO))
    info["CompanyInfo"]["NameValue"][1]["Value"] = "QuickBooks Online Simple Start"
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=info)
    api.get(f"{COMPANY}/preferences").respond(200, json=preferences(numbers=False))
    profile = connector.authenticate()

    assert not connector.supports(profile, Capability.VENDOR_BOOKKEEPING).supported
    assert connector.supports(profile, Capability.JOURNAL_ENTRY).supported


# ---------------------------------------------------------------- closed books


def closed_books(api, close_date: str) -> None:
    body = preferences(numbers=False)
    body["Preferences"]["AccountingInfoPrefs"]["BookCloseDate"] = close_date
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    api.get(f"{COMPANY}/preferences").respond(200, json=body)


@pytest.mark.parametrize("close_date", ["2026-05-04", "2026-12-31"])
def test_books_closed_up_to_today_or_later_refuse_the_export(api, connector, close_date):
    """Intuit: transactions dated on or before AccountingInfoPrefs.BookCloseDate are in closed
    books; with a close date of today or later, every expense of the job is."""
    closed_books(api, close_date)
    profile = connector.authenticate()
    for capability in (Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING):
        support = connector.supports(profile, capability)
        assert not support.supported
        assert f"closed up to {close_date}" in support.detail
        assert "Settings > Account and settings > Advanced > Accounting > Close the books" in support.detail
    assert connector.supports(profile, Capability.ATTACHMENT_UPLOAD).supported


def test_an_earlier_close_date_passes_with_a_notice(api, connector):
    closed_books(api, "2026-03-31")
    support = connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)
    assert support.supported and support.notice is not None
    assert "closed up to 2026-03-31" in support.notice and "cannot be booked" in support.notice


def test_books_never_closed_pass_without_a_notice(api, connector):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    api.get(f"{COMPANY}/preferences").respond(200, json=preferences(numbers=False))
    support = connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)
    assert support.supported and support.notice is None


# ---------------------------------------------------------------- US editions


US_TAX_CODES = [
    {"Id": "TAX", "Name": "TAX", "Active": True, "Taxable": True},
    {"Id": "NON", "Name": "NON", "Active": True, "Taxable": False},
    {"Id": "2", "Name": "California", "Active": True, "SalesTaxRateList": {"TaxRateDetail": [{}]}},
]


@pytest.mark.parametrize(
    ("country", "address"),
    [("US", None), ("USA", None), (None, "USA"), (None, "US")],
    ids=["Country US", "Country USA", "CompanyAddr USA", "CompanyAddr US"],
)
def test_a_us_company_is_recognised_in_either_spelling(api, connector, country, address):
    info = json.loads(json.dumps(COMPANY_INFO))
    info["CompanyInfo"].pop("Country")
    if country:
        info["CompanyInfo"]["Country"] = country
    if address:
        info["CompanyInfo"]["CompanyAddr"] = {"Line1": "1 Main St", "Country": address}
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=info)
    assert connector.authenticate().facts["country"] == "US"


def test_a_us_company_s_sales_tax_codes_are_not_rejected_as_sales_only(api, connector):
    """US editions use automated sales tax: purchase lines carry no purchase tax code, so a US
    code without purchase rates is not "sales-only" there."""
    info = json.loads(json.dumps(COMPANY_INFO))
    info["CompanyInfo"]["Country"] = "US"
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=info)
    api.get(f"{COMPANY}/query").respond(200, json=query_answer("TaxCode", US_TAX_CODES))
    connector.authenticate()
    found = connector.tax_codes(["TAX", "NON", "2"])
    assert all(entry is not None and entry.usable for entry in found.values()), found


def test_a_uk_company_still_rejects_a_sales_only_code(api, connector):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    api.get(f"{COMPANY}/query").respond(200, json=query_answer("TaxCode", TAX_CODES))
    connector.authenticate()
    assert not connector.tax_codes(["6"])["6"].usable


# ---------------------------------------------------------------- the 5-year cap


@pytest.fixture
def intuit():
    """Intuit's token endpoint (respx) and our ``QuickBooksTokenEndpoint`` in front of it."""
    base = "https://oauth.platform.intuit.com"
    with respx.mock(base_url=base) as mock, new_client(base, timeout_seconds=2) as http:
        endpoint = QuickBooksTokenEndpoint(
            http,
            "/oauth2/v1/tokens/bearer",
            lambda: ClientCredentials.model_validate({"clientId": "client", "clientSecret": "secret"}),
            "QuickBooks",
            errors=ACCOUNTING_ERRORS,
        )
        yield mock.post("/oauth2/v1/tokens/bearer"), endpoint


def test_the_token_request_asks_for_the_hard_expiry_and_the_set_keeps_it(intuit):
    """Intuit reports the time left to a refresh token's hard end as
    x_refresh_token_hard_expires_in when asked with x-include-refresh-token-hard-expires-in."""
    route, endpoint = intuit
    answer = {
        "access_token": "a2",
        "refresh_token": "r2",
        "expires_in": 3600,
        "x_refresh_token_expires_in": 8640000,
        "x_refresh_token_hard_expires_in": 86400 * 30,
        "token_type": "bearer",
    }
    route.respond(200, json=answer)
    previous = TokenSet(accessToken=SecretStr("a1"), refreshToken=SecretStr("r1"), expiresAt=0)
    raw = endpoint.refresh(previous)
    assert route.calls.last.request.headers["x-include-refresh-token-hard-expires-in"] == "true"
    tokens, usable = parse_answer(raw.content.decode(), previous, received_at=1_000_000.0)
    assert usable and tokens.hard_expires_at == 1_000_000.0 + 86400 * 30
    again, _ = parse_answer(json.dumps({**answer, "x_refresh_token_hard_expires_in": None}), tokens, 1_000_100.0)
    assert again.hard_expires_at == tokens.hard_expires_at, "an answer without it keeps the known end"
    assert json.loads(tokens.to_secret())["hardExpiresAt"] == tokens.hard_expires_at


def test_a_refusal_past_the_hard_end_says_the_connection_ended(intuit):
    route, endpoint = intuit
    route.respond(400, json={"error": "invalid_grant"})
    ended = TokenSet(
        accessToken=SecretStr("a1"), refreshToken=SecretStr("r1"), expiresAt=0, hardExpiresAt=time.time() - 60
    )
    with pytest.raises(GrantRevoked) as raised:
        endpoint.refresh(ended)
    assert "connection ended on" in str(raised.value) and "Reconnect QuickBooks" in str(raised.value)


def test_a_token_without_the_accounting_scope_misses_it(api):
    api.get(f"{COMPANY}/companyinfo/{REALM}").respond(200, json=COMPANY_INFO)
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, FakeTokens(scope="com.intuit.quickbooks.payment"))
        profile = connector.authenticate()
        assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY}) == [
            f"the QuickBooks scope {ACCOUNTING_SCOPE} (accounting data)"
        ]


def test_a_403_without_the_accounting_scope_says_so(api):
    api.get(f"{COMPANY}/query").respond(403, json=documented("AuthorizationFault", "120", "Authorization Failure"))
    with new_client(BASE, timeout_seconds=2) as http:
        connector = new_connector(http, FakeTokens(scope="com.intuit.quickbooks.payment"))
        with pytest.raises(AccountingSystemError) as raised:
            connector.tax_codes(["3"])
    assert raised.value.reason_type is Reason.AUTHORIZATION_FAILURE and ACCOUNTING_SCOPE in str(raised.value)


# ---------------------------------------------------------------- malformed bodies

EXCEPTION_NAMES = ("Error", "Exception", "KeyError", "Traceback", "JSONDecode", "Recursion")
MARKER = "MALFORMED-7f3a"

MALFORMED_ANYWHERE: list[tuple[str, bytes]] = [
    ("html", f"<!DOCTYPE html><html><body>{MARKER} maintenance</body></html>".encode()),
    ("empty", b""),
    ("truncated", b'{"CompanyInfo": {"CompanyName": "Harb'),
    ("not utf-8", b'{"Name": "\xff\xfe"}'),
    ("null", b"null"),
    ("string", f'"{MARKER}"'.encode()),
    ("number", b"42"),
    ("a list", b"[]"),
    ("5000-digit integer", b'{"QueryResponse": ' + b"9" * 5000 + b"}"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
]

COMPANY_INFO_MALFORMED: list[tuple[str, object]] = [
    ("CompanyInfo missing", {"time": "t"}),
    ("CompanyInfo a list", {"CompanyInfo": [COMPANY_INFO["CompanyInfo"]]}),
    ("CompanyInfo a string", {"CompanyInfo": MARKER}),
    ("CompanyName a number", {"CompanyInfo": {"CompanyName": 5}}),
    ("NameValue an object", {"CompanyInfo": {"CompanyName": "H", "NameValue": {"Name": "OfferingSku"}}}),
    ("NameValue of strings", {"CompanyInfo": {"CompanyName": "H", "NameValue": ["OfferingSku"]}}),
    ("Value a list", {"CompanyInfo": {"CompanyName": "H", "NameValue": [{"Name": "OfferingSku", "Value": []}]}}),
]
PREFERENCES_MALFORMED: list[tuple[str, object]] = [
    ("Preferences missing", {"time": "t"}),
    ("Preferences a list", {"Preferences": []}),
    ("AccountingInfoPrefs a string", {"Preferences": {"AccountingInfoPrefs": MARKER}}),
    ("UseAccountNumbers a string", {"Preferences": {"AccountingInfoPrefs": {"UseAccountNumbers": "true"}}}),
]


def _query_malformed(entity: str, ref: str) -> list[tuple[str, object]]:
    return [
        ("QueryResponse a list", {"QueryResponse": []}),
        ("QueryResponse a string", {"QueryResponse": MARKER}),
        (f"{entity} an object", {"QueryResponse": {entity: {"Id": "7"}}}),
        (f"{entity} of numbers", {"QueryResponse": {entity: [1, 2]}}),
        ("Id a list", {"QueryResponse": {entity: [{"Id": [ref]}]}}),
        ("Name a number", {"QueryResponse": {entity: [{"Id": ref, "Name": 7}]}}),
        ("Active a string", {"QueryResponse": {entity: [{"Id": ref, "Name": "x", "Active": "true"}]}}),
    ]


ACCOUNT_MALFORMED = [
    *_query_malformed("Account", "7"),
    ("AcctNum an object", {"QueryResponse": {"Account": [{"Id": "7", "AcctNum": {}}]}}),
    ("AccountType a number", {"QueryResponse": {"Account": [{"Id": "7", "AccountType": 1}]}}),
]
TAX_CODE_MALFORMED = [
    *_query_malformed("TaxCode", "3"),
    ("PurchaseTaxRateList a list", {"QueryResponse": {"TaxCode": [{"Id": "3", "PurchaseTaxRateList": []}]}}),
    (
        "TaxRateDetail a string",
        {"QueryResponse": {"TaxCode": [{"Id": "3", "SalesTaxRateList": {"TaxRateDetail": "x"}}]}},
    ),
]


def _company_info(api, connector, answer):
    api.get(f"{COMPANY}/companyinfo/{REALM}").mock(return_value=answer)
    connector.authenticate()


def _preferences(api, connector, answer):
    api.get(f"{COMPANY}/preferences").mock(return_value=answer)
    api.get(f"{COMPANY}/query").respond(200, json=query_answer("Account", ACCOUNTS))
    connector.accounts(["7"])


def _accounts(api, connector, answer):
    api.get(f"{COMPANY}/preferences").respond(200, json=preferences(numbers=False))
    api.get(f"{COMPANY}/query").mock(return_value=answer)
    connector.accounts(["7"])


def _tax_codes(api, connector, answer):
    api.get(f"{COMPANY}/query").mock(return_value=answer)
    connector.tax_codes(["3"])


ENDPOINTS = {
    "GET companyinfo": (_company_info, COMPANY_INFO_MALFORMED),
    "GET preferences": (_preferences, PREFERENCES_MALFORMED),
    "GET query Account": (_accounts, ACCOUNT_MALFORMED),
    "GET query TaxCode": (_tax_codes, TAX_CODE_MALFORMED),
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
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_UNREACHABLE
    assert message.startswith("QuickBooks answered with something that is not the data we expected while ")
    assert not any(name in message for name in EXCEPTION_NAMES), message
    assert MARKER not in message and "<html" not in message.lower()
