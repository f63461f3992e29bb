"""The Xero connector against Xero-shaped answers (respx)."""

from __future__ import annotations

import copy
import json
import time

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.connectors.xero import API, XeroConnector, _scope_refusal
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, FailureReasonType, TokenSet
from export_preflight.oauth import OAuthBearer
from tests.unit.fakes import configuration

BASE = "https://api.xero.com"
TENANT = "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
OTHER = "0b4f3e2a-1c5d-4e6f-8a9b-0c1d2e3f4a5b"
SCOPES = "accounting.settings accounting.transactions accounting.contacts accounting.attachments offline_access"

ORGANISATION = {
    "Id": "a1b2",
    "Status": "OK",
    "ProviderName": "Pleo Export Preflight",
    "Organisations": [
        {
            "Name": "Acme Ltd",
            "CountryCode": "GB",
            "BaseCurrency": "GBP",
            "IsDemoCompany": False,
            "OrganisationID": TENANT,
        }
    ],
}
ACTIONS = {
    "Status": "OK",
    "Actions": [{"Name": "CreateApprovedBill", "Status": "ALLOWED"}, {"Name": "CreateDraftBill", "Status": "ALLOWED"}],
}
ACCOUNTS = {
    "Status": "OK",
    "Accounts": [
        {"Code": "429", "Name": "General Expenses", "Status": "ACTIVE", "Type": "EXPENSE"},
        {"Code": "499", "Name": "Old Expenses", "Status": "ARCHIVED", "Type": "EXPENSE"},
        {"Code": "090", "Name": "Business Bank Account", "Status": "ACTIVE", "Type": "BANK"},
        {
            "Code": "800",
            "Name": "Accounts Payable",
            "Status": "ACTIVE",
            "Type": "CURRLIAB",
            "SystemAccount": "CREDITORS",
        },
        {"Name": "Uncoded bank account", "Status": "ACTIVE", "Type": "BANK"},
    ],
}


def tax_rate(tax_type, name, *, status="ACTIVE", expenses=True, **extra):
    rate = {"TaxType": tax_type, "Name": name, "Status": status, "CanApplyToExpenses": expenses}
    rate.update(extra)
    return rate


TAX_RATES = {
    "Status": "OK",
    "TaxRates": [
        tax_rate("INPUT2", "20% (VAT on Expenses)"),
        tax_rate("OUTPUT2", "20% (VAT on Income)", expenses=False, CanApplyToRevenue=True),
        tax_rate("TAX001", "Old Custom Rate", status="DELETED", expenses=False),
    ],
}


class FakeTokens:
    """Stands in for ``OAuthTokens``: hands out one token set, counts refreshes."""

    def __init__(self) -> None:
        self.refreshes = 0

    def current(self, secret_id, endpoint):
        return self._tokens("access-1")

    def refresh(self, secret_id, endpoint, *, rejected):
        self.refreshes += 1
        return self._tokens(f"access-{self.refreshes + 1}")

    @staticmethod
    def _tokens(access: str) -> TokenSet:
        return TokenSet(
            accessToken=SecretStr(access),
            refreshToken=SecretStr("refresh"),
            expiresAt=time.time() + 1800,
            scope=SCOPES,
        )


@pytest.fixture
def api():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def tokens():
    return FakeTokens()


def new_connector(http, tokens):
    config = configuration(
        accountingSystem="xero",
        accountingCompanyRef=TENANT,
        accountingCredentialsSecretId="export-preflight/xero/acme",
        mappings={"expenseAccount": "429", "contraAccount": "610", "vatCodes": ["INPUT2"]},
    )
    auth = OAuthBearer(tokens, "export-preflight/xero/acme", None, refusal=_scope_refusal)  # type: ignore[arg-type]
    return XeroConnector(http, auth, config)


@pytest.fixture
def connector(tokens):
    with new_client(BASE, timeout_seconds=2) as http:
        yield new_connector(http, tokens)


def problem(status, detail):
    return httpx.Response(
        status, json={"Type": None, "Title": "Unauthorized", "Status": status, "Detail": detail, "Extensions": {}}
    )


def test_authenticate_reads_the_organisation_for_the_configured_tenant(api, connector):
    route = api.get(f"{API}/Organisation").respond(200, json=ORGANISATION)

    profile = connector.authenticate()

    assert profile.company_ref == TENANT and profile.company_name == "Acme Ltd"
    assert "accounting.settings" in profile.permissions and profile.facts["countryCode"] == "GB"
    headers = route.calls.last.request.headers
    assert headers["xero-tenant-id"] == TENANT and headers["Authorization"] == "Bearer access-1"


def test_accounts_are_normalised(api, connector):
    api.get(f"{API}/Accounts").respond(200, json=ACCOUNTS)

    found = connector.accounts(["429", "499", "090", "800", "123"])

    assert found["429"].usable and found["429"].name == "General Expenses"
    assert found["499"].problem == "is ARCHIVED"
    assert "bank account" in found["090"].problem
    assert "system account (CREDITORS)" in found["800"].problem
    assert found["123"] is None


@pytest.mark.parametrize("system_account", ["", None], ids=["empty", "null"])
def test_an_empty_or_null_system_account_is_an_ordinary_account(api, connector, system_account):
    """xero_accounting.yaml (Account.SystemAccount): non-system accounts may carry it as "" or null."""
    account = {"Code": "429", "Name": "General Expenses", "Status": "ACTIVE", "Type": "EXPENSE"}
    api.get(f"{API}/Accounts").respond(200, json={"Accounts": [{**account, "SystemAccount": system_account}]})

    assert connector.accounts(["429"])["429"].usable


@pytest.mark.parametrize("status", ["ARCHIVED", "DELETED"])
def test_every_account_status_but_active_is_unusable(api, connector, status):
    """Account.Status is ACTIVE, ARCHIVED or DELETED (xero_accounting.yaml)."""
    account = {"Code": "429", "Name": "General Expenses", "Status": status, "Type": "EXPENSE"}
    api.get(f"{API}/Accounts").respond(200, json={"Accounts": [account]})

    assert connector.accounts(["429"])["429"].problem == f"is {status}"


@pytest.mark.parametrize("status", ["DELETED", "ARCHIVED", "PENDING"])
def test_every_tax_rate_status_but_active_is_unusable(api, connector, status):
    """TaxRate.Status is ACTIVE, DELETED, ARCHIVED or PENDING (xero_accounting.yaml)."""
    api.get(f"{API}/TaxRates").respond(200, json={"TaxRates": [tax_rate("TAX002", "Custom", status=status)]})

    assert connector.tax_codes(["TAX002"])["TAX002"].problem == f"is {status}"


# ---------------------------------------------------------------- tax rates and expenses


def test_a_tax_rate_that_cannot_be_applied_to_expenses_is_not_usable(api, connector):
    api.get(f"{API}/TaxRates").respond(200, json=TAX_RATES)

    found = connector.tax_codes(["INPUT2", "OUTPUT2", "TAX001", "NOPE"])

    assert found["INPUT2"].usable and found["INPUT2"].problem == ""
    assert not found["OUTPUT2"].usable and "cannot be applied to expenses" in found["OUTPUT2"].problem
    assert not found["TAX001"].usable and found["TAX001"].problem == "is DELETED"
    assert found["NOPE"] is None


def test_a_tax_rate_without_the_expenses_flag_is_taken_as_usable(api, connector):
    api.get(f"{API}/TaxRates").respond(200, json={"TaxRates": [{"TaxType": "INPUT2", "Name": "20%"}]})

    assert connector.tax_codes(["INPUT2"])["INPUT2"].usable


# ---------------------------------------------------------------- organisations the grant does not reach


def test_a_grant_without_any_organisation_is_an_authentication_failure_naming_the_tenant(api, connector):
    api.get(f"{API}/Organisation").mock(return_value=problem(403, "AuthenticationUnsuccessful"))
    api.get("/connections").respond(200, json=[])

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    message = str(raised.value)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert TENANT in message
    assert "Reconnect Xero in the integration settings and select that organisation, then export again" in message


def test_a_connected_organisation_the_user_lost_access_to_is_named_with_its_tenant_id(api, connector):
    api.get(f"{API}/Organisation").mock(return_value=problem(403, "AuthenticationUnsuccessful"))
    api.get("/connections").respond(
        200,
        json=[
            {"id": "c1", "tenantId": TENANT.upper(), "tenantName": "Acme Ltd", "tenantType": "ORGANISATION"},
            {"id": "c2", "tenantId": OTHER, "tenantName": "Acme Holding Ltd", "tenantType": "ORGANISATION"},
        ],
    )

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is FailureReasonType.AUTHORIZATION_FAILURE
    assert f"Acme Ltd (tenant id {TENANT})" in str(raised.value)


def test_a_grant_reaching_other_organisations_reports_them(api, connector):
    api.get(f"{API}/Organisation").mock(return_value=problem(403, "AuthenticationUnsuccessful"))
    api.get("/connections").respond(200, json=[{"id": "c2", "tenantId": OTHER, "tenantName": "Acme Holding Ltd"}])

    profile = connector.authenticate()

    assert profile.company_ref == OTHER and profile.reachable == {OTHER: "Acme Holding Ltd"}


def test_refusals_after_authentication_name_the_organisation_and_tenant(api, connector):
    api.get(f"{API}/Organisation").respond(200, json=ORGANISATION)
    api.get(f"{API}/Accounts").mock(return_value=problem(403, "Forbidden"))
    connector.authenticate()

    with pytest.raises(AccountingSystemError) as raised:
        connector.accounts(["429"])

    assert raised.value.reason_type is FailureReasonType.AUTHORIZATION_FAILURE
    assert f"Acme Ltd (tenant id {TENANT})" in str(raised.value)


def test_bills_not_allowed_names_the_organisation(api, connector):
    api.get(f"{API}/Organisation").respond(200, json=ORGANISATION)
    api.get(f"{API}/Organisation/Actions").respond(
        200, json={"Actions": [{"Name": "CreateApprovedBill", "Status": "NOT-ALLOWED"}]}
    )
    profile = connector.authenticate()

    support = connector.supports(profile, Capability.VENDOR_BOOKKEEPING)

    assert not support.supported and "Acme Ltd" in support.detail and "CreateDraftBill missing" in support.detail


# ---------------------------------------------------------------- error answers that are not JSON


def test_a_401_with_an_html_body_refreshes_once_then_is_an_authentication_failure(api, connector, tokens):
    api.get(f"{API}/Organisation").respond(401, text="<html>Unauthorized</html>")

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert tokens.refreshes == 1 and TENANT in str(raised.value)


def test_a_scope_refusal_is_a_permissions_problem_without_a_refresh(api, connector, tokens):
    api.get(f"{API}/Organisation").respond(200, json=ORGANISATION)
    api.get(f"{API}/TaxRates").mock(return_value=problem(401, "AuthorizationUnsuccessful"))
    connector.authenticate()

    with pytest.raises(AccountingSystemError) as raised:
        connector.tax_codes(["INPUT2"])

    assert raised.value.reason_type is FailureReasonType.AUTHORIZATION_FAILURE and tokens.refreshes == 0


@pytest.mark.parametrize(
    ("status", "reason_type"),
    [
        (403, FailureReasonType.AUTHORIZATION_FAILURE),
        (400, FailureReasonType.VALIDATION_FAILURE),
        (422, FailureReasonType.VALIDATION_FAILURE),
    ],
)
def test_error_answers_with_html_bodies_are_classified_by_status(api, connector, status, reason_type):
    api.get(f"{API}/Accounts").respond(status, text="<html><body>Bad things</body></html>")

    with pytest.raises(AccountingSystemError) as raised:
        connector.accounts(["429"])

    assert raised.value.reason_type is reason_type and "<html" not in str(raised.value)


@pytest.mark.parametrize("path", [f"{API}/Organisation", "/connections"])
def test_an_unexpected_answer_while_authenticating_is_a_permanent_failure(api, connector, path):
    api.get(f"{API}/Organisation").mock(return_value=problem(403, "AuthenticationUnsuccessful"))
    api.get(path).respond(400, text="Bad Request")

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is FailureReasonType.VALIDATION_FAILURE


def test_a_forbidden_organisation_with_an_html_403_still_lists_the_connections(api, connector):
    api.get(f"{API}/Organisation").respond(403, text="<html>Forbidden</html>")
    api.get("/connections").respond(200, json=[])

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE


# ---------------------------------------------------------------- malformed bodies

EXCEPTION_NAMES = ("Error", "Exception", "KeyError", "Traceback", "JSONDecode", "Recursion")
MARKER = "MALFORMED-7f3a"

# Bodies no endpoint can make sense of: (label, raw bytes). ``[]`` is a valid /connections
# answer, so it is listed per endpoint.
MALFORMED_ANYWHERE: list[tuple[str, bytes]] = [
    ("html", f"<!DOCTYPE html><html><body>{MARKER} maintenance</body></html>".encode()),
    ("empty", b""),
    ("truncated", b'{"Organisations": [{"Name": "Acme'),
    ("not utf-8", b'{"Name": "\xff\xfe"}'),
    ("null", b"null"),
    ("string", f'"{MARKER}"'.encode()),
    ("number", b"42"),
    ("false", b"false"),
    ("5000-digit integer", b'{"Organisations": [], "Accounts": ' + b"9" * 5000 + b"}"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
]


def _envelope_malformed(key: str) -> list[tuple[str, object]]:
    """Wrong shapes of one ``{..., <key>: [objects]}`` envelope."""
    return [
        ("a list", []),
        ("a list of objects", [{key: []}]),
        (f"{key} missing", {"Status": "OK"}),
        (f"{key} null", {key: None}),
        (f"{key} an object", {key: {"Name": "x"}}),
        (f"{key} a string", {key: MARKER}),
        (f"{key} of numbers", {key: [1, 2]}),
        (f"{key} of lists", {key: [[]]}),
    ]


ORGANISATION_MALFORMED = [
    *_envelope_malformed("Organisations"),
    ("Organisations empty", {"Organisations": []}),
    ("Name a number", {"Organisations": [{"Name": 5}]}),
    ("CountryCode a list", {"Organisations": [{"Name": "Acme", "CountryCode": ["GB"]}]}),
    ("IsDemoCompany a string", {"Organisations": [{"Name": "Acme", "IsDemoCompany": "false"}]}),
    ("PeriodLockDate a number", {"Organisations": [{"Name": "Acme", "PeriodLockDate": 1}]}),
]
CONNECTIONS_MALFORMED: list[tuple[str, object]] = [
    ("an object", {"tenantId": TENANT}),
    ("numbers", [1, 2]),
    ("strings", [TENANT]),
    ("lists", [[TENANT]]),
    ("tenantId a number", [{"tenantId": 7, "tenantName": "Acme"}]),
    ("tenantId an object", [{"tenantId": {"id": TENANT}}]),
    ("tenantName a list", [{"tenantId": OTHER, "tenantName": ["Acme"]}]),
]
ACTIONS_MALFORMED = [
    *_envelope_malformed("Actions"),
    ("Name a number", {"Actions": [{"Name": 1, "Status": "ALLOWED"}]}),
    ("Status a boolean", {"Actions": [{"Name": "CreateApprovedBill", "Status": True}]}),
]
ACCOUNTS_MALFORMED = [
    *_envelope_malformed("Accounts"),
    ("Code a number", {"Accounts": [{"Code": 429, "Status": "ACTIVE"}]}),
    ("Status a number", {"Accounts": [{"Code": "429", "Status": 1}]}),
    ("SystemAccount a list", {"Accounts": [{"Code": "429", "SystemAccount": []}]}),
    ("Type an object", {"Accounts": [{"Code": "429", "Type": {}}]}),
    ("Name a boolean", {"Accounts": [{"Code": "429", "Name": True}]}),
]
TAX_RATES_MALFORMED = [
    *_envelope_malformed("TaxRates"),
    ("TaxType a number", {"TaxRates": [{"TaxType": 2, "Name": "20%"}]}),
    ("Status a list", {"TaxRates": [{"TaxType": "INPUT2", "Status": ["ACTIVE"]}]}),
    ("CanApplyToExpenses a string", {"TaxRates": [{"TaxType": "INPUT2", "CanApplyToExpenses": "false"}]}),
    ("CanApplyToExpenses a number", {"TaxRates": [{"TaxType": "INPUT2", "CanApplyToExpenses": 0}]}),
    ("Name a number", {"TaxRates": [{"TaxType": "INPUT2", "Name": 20}]}),
]


def _organisation(api, connector, answer):
    api.get(f"{API}/Organisation").mock(return_value=answer)
    connector.authenticate()


def _connections(api, connector, answer):
    api.get(f"{API}/Organisation").mock(return_value=problem(403, "AuthenticationUnsuccessful"))
    api.get("/connections").mock(return_value=answer)
    connector.authenticate()


def _actions(api, connector, answer):
    api.get(f"{API}/Organisation").respond(200, json=ORGANISATION)
    api.get(f"{API}/Organisation/Actions").mock(return_value=answer)
    connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)


def _accounts(api, connector, answer):
    api.get(f"{API}/Accounts").mock(return_value=answer)
    connector.accounts(["429"])


def _tax_rates(api, connector, answer):
    api.get(f"{API}/TaxRates").mock(return_value=answer)
    connector.tax_codes(["INPUT2"])


ENDPOINTS = {
    "GET Organisation": (_organisation, ORGANISATION_MALFORMED),
    "GET /connections": (_connections, CONNECTIONS_MALFORMED),
    "GET Organisation/Actions": (_actions, ACTIONS_MALFORMED),
    "GET Accounts": (_accounts, ACCOUNTS_MALFORMED),
    "GET TaxRates": (_tax_rates, TAX_RATES_MALFORMED),
}

MALFORMED_TABLE = [
    pytest.param(call, httpx.Response(200, content=raw), id=f"{endpoint}: {label}")
    for endpoint, (call, specific) in ENDPOINTS.items()
    for label, raw in [*MALFORMED_ANYWHERE, *((label, json.dumps(body).encode()) for label, body in specific)]
]


def assert_not_the_data_expected(raised: pytest.ExceptionInfo[AccountingSystemUnavailable]) -> None:
    message = str(raised.value)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    assert message.startswith("Xero answered with something that is not the data we expected while ")
    assert not any(name in message for name in EXCEPTION_NAMES), message
    assert MARKER not in message and "<html" not in message.lower()


@pytest.mark.parametrize(("call", "answer"), MALFORMED_TABLE)
def test_malformed_bodies_are_the_accounting_systems_fault(api, connector, call, answer):
    with pytest.raises(AccountingSystemUnavailable) as raised:
        call(api, connector, answer)

    assert_not_the_data_expected(raised)


def test_a_malformed_organisation_answer_says_so(api, connector):
    api.get(f"{API}/Organisation").respond(200, text="<html>Service Unavailable</html>")

    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()

    assert str(raised.value) == (
        "Xero answered with something that is not the data we expected while reading the organisation"
    )


def _mutations(value, path=()):
    """Every (path, replacement) that swaps one member of ``value`` for a value of another shape."""
    replacements = (None, [], {}, "text", 7, True, [1, 2], {"x": 1}, [[]])
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, inner in items:
        for other in replacements:
            yield (*path, key), other
        yield from _mutations(inner, (*path, key))


def _mutated(body, path, replacement):
    copied = copy.deepcopy(body)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return copied


CONNECTIONS = [
    {"id": "c1", "tenantId": TENANT, "tenantName": "Acme Ltd", "tenantType": "ORGANISATION"},
    {"id": "c2", "tenantId": OTHER, "tenantName": "Acme Holding Ltd", "tenantType": "ORGANISATION"},
]
VALID = {
    "GET Organisation": (_organisation, ORGANISATION),
    "GET /connections": (_connections, CONNECTIONS),
    "GET Organisation/Actions": (_actions, ACTIONS),
    "GET Accounts": (_accounts, ACCOUNTS),
    "GET TaxRates": (_tax_rates, TAX_RATES),
}


@pytest.mark.parametrize("endpoint", sorted(VALID))
def test_no_member_of_any_shape_makes_a_python_exception_escape(endpoint):
    call, body = VALID[endpoint]
    for path, replacement in _mutations(body):
        with respx.mock(base_url=BASE) as api, new_client(BASE, timeout_seconds=2) as http:
            connector = new_connector(http, FakeTokens())
            try:
                call(api, connector, httpx.Response(200, json=_mutated(body, path, replacement)))
            except AccountingSystemUnavailable as error:
                assert not any(name in str(error) for name in EXCEPTION_NAMES), (path, replacement)
            except AccountingSystemError as error:  # /connections: a permanent, worded answer
                assert endpoint == "GET /connections", (path, replacement, error)
