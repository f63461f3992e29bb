"""The e-conomic connector against e-conomic-shaped answers (respx)."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.connectors import ConnectionProfile
from export_preflight.connectors.economic import MAX_IN_VALUES, MAX_PAGES, EconomicConnector, EconomicCredentials
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, FailureReasonType
from tests.unit.fakes import configuration

BASE = "https://restapi.e-conomic.com"
SELF = {
    "agreementNumber": 123456,
    "company": {"name": "Acme ApS", "vatNumber": "DK12345678"},
    "application": {"appNumber": 1, "name": "Pleo export", "requiredRoles": [{"name": "SuperUser", "roleNumber": 1}]},
    "modules": [{"moduleNumber": 1, "name": "Lager"}],
    # self.get.schema.json types internationalLedger as a string ("If this value is 'true' ...").
    "settings": {"baseCurrency": "DKK", "internationalLedger": "false"},
}


def collection(items, next_page=None):
    pagination = {"skipPages": 0, "pageSize": 1000, "results": len(items)}
    if next_page:
        pagination["nextPage"] = next_page
    return {"collection": items, "pagination": pagination}


@pytest.fixture
def api():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def connector():
    with new_client(BASE, timeout_seconds=2) as http:
        credentials = EconomicCredentials(
            appSecretToken=SecretStr("app-s3cret"), agreementGrantToken=SecretStr("grant-s3cret")
        )
        config = configuration(accountingCompanyRef="123456", mappings={"journal": 1, "vendorJournal": 2})
        yield EconomicConnector(http, credentials, config)


def test_authenticate_reads_agreement_roles_and_settings(api, connector):
    route = api.get("/self").respond(200, json=SELF)
    profile = connector.authenticate()
    assert profile.company_ref == "123456" and profile.company_name == "Acme ApS"
    assert profile.permissions == {"SuperUser"}
    assert profile.facts["internationalLedger"] is False
    headers = route.calls.last.request.headers
    assert headers["X-AppSecretToken"] == "app-s3cret" and headers["X-AgreementGrantToken"] == "grant-s3cret"


def test_revoked_grant_is_an_authentication_failure_without_secrets(api, connector):
    api.get("/self").respond(401, json={"message": "Unauthorized", "errorCode": "E00500"})
    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "s3cret" not in str(raised.value) and "Reconnect e-conomic" in str(raised.value)


def test_bookkeeping_role_falls_back_to_a_cheaper_probe(api, connector):
    api.get("/self").respond(403, json={"message": "Forbidden"})
    probe = api.get("/accounts").respond(200, json=collection([{"accountNumber": 1010}]))
    profile = connector.authenticate()
    assert profile.company_ref is None and profile.permissions == {"Bookkeeping"}
    assert probe.calls.last.request.url.params["pagesize"] == "1"


def test_missing_role_is_reported_as_a_permission(connector):
    assert connector.missing_permissions(ConnectionProfile("1", None, frozenset({"SuperUser"})), set()) == []
    missing = connector.missing_permissions(ConnectionProfile("1", None, frozenset({"Sales"})), set())
    assert "Bookkeeping or SuperUser" in missing[0] and "Sales" in missing[0]


def test_accounts_are_looked_up_in_one_filtered_call(api, connector):
    route = api.get("/accounts").respond(
        200,
        json=collection(
            [
                {"accountNumber": 5820, "accountType": "profitAndLoss", "barred": False, "name": "Kontorartikler"},
                {"accountNumber": 9999, "accountType": "profitAndLoss", "barred": True, "name": "Gammel"},
                {"accountNumber": 5900, "accountType": "status", "blockDirectEntries": True, "name": "Spærret"},
                {"accountNumber": 1000, "accountType": "heading", "name": "Overskrift"},
            ]
        ),
    )
    found = connector.accounts(["5820", "9999", "5900", "1000", "4242"])
    assert route.call_count == 1
    assert route.calls.last.request.url.params["filter"] == "accountNumber$in:[1000,4242,5820,5900,9999]"
    assert found["5820"].usable
    assert found["9999"].problem == "is barred"
    assert found["5900"].problem == "is blocked for direct entries"
    assert "heading" in found["1000"].problem
    assert found["4242"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), ("false", False), (True, True), (False, False), (None, False)],
)
def test_international_ledger_is_read_as_e_conomic_types_it(api, connector, value, expected):
    """e-conomic's self.get schema types ``settings.internationalLedger`` as a string; the old
    reader took only a JSON boolean and called e-conomic's own answer malformed."""
    body = copy.deepcopy(SELF)
    body["settings"]["internationalLedger"] = value
    api.get("/self").respond(200, json=body)
    assert connector.authenticate().facts["internationalLedger"] is expected


def test_requests_carry_the_headers_restdocs_asks_for(api, connector):
    route = api.get("/self").respond(200, json=SELF)
    connector.authenticate()
    headers = route.calls.last.request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-AppSecretToken"] and headers["X-AgreementGrantToken"]


def test_more_account_numbers_than_an_in_list_takes_are_looked_up_in_chunks(api, connector):
    """restdocs "Filtering": ``$in:`` takes at most 200 values; more is a 400 from e-conomic."""
    numbers = [str(1000 + n) for n in range(MAX_IN_VALUES * 2 + 1)]

    def answer(request: httpx.Request) -> httpx.Response:
        listed = request.url.params["filter"].removeprefix("accountNumber$in:[").removesuffix("]").split(",")
        if len(listed) > MAX_IN_VALUES:
            return httpx.Response(400, json={"message": "Could not parse query string filter.", "httpStatusCode": 400})
        return httpx.Response(
            200, json=collection([{"accountNumber": int(n), "accountType": "status", "name": n} for n in listed])
        )

    route = api.get("/accounts").mock(side_effect=answer)
    found = connector.accounts(numbers)
    assert route.call_count == 3
    assert all(found[n] is not None and found[n].usable for n in numbers)


def test_collections_follow_pagination(api, connector):
    api.get("/vat-accounts", params={"skippages": "0"}).respond(
        200, json=collection([{"vatCode": "I25"}], next_page="x")
    )
    api.get("/vat-accounts", params={"skippages": "1"}).respond(200, json=collection([{"vatCode": "U25"}]))
    found = connector.tax_codes(["I25", "U25", "X"])
    assert found["I25"].usable and found["U25"].usable and found["X"] is None


def test_journal_restrictions_decide_capabilities(api, connector):
    api.get("/journals").respond(
        200,
        json=collection(
            [
                {"journalNumber": 1, "name": "Daglig", "settings": {}},
                {"journalNumber": 2, "name": "Kreditor", "settings": {"entryTypeRestrictedTo": "financeVoucher"}},
            ]
        ),
    )
    profile = None
    assert connector.supports(profile, Capability.JOURNAL_ENTRY).supported
    vendor = connector.supports(profile, Capability.VENDOR_BOOKKEEPING)
    assert not vendor.supported and "only accepts financeVoucher" in vendor.detail
    assert connector.supports(profile, Capability.ATTACHMENT_UPLOAD).supported


@pytest.mark.parametrize(
    ("answer", "reason_type"),
    [
        (httpx.Response(429, headers={"Retry-After": "3"}), FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT),
        (httpx.Response(502), FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE),
        (httpx.ConnectTimeout("slow"), FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT),
        (httpx.ConnectError("refused"), FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE),
    ],
)
def test_transient_answers_raise_for_a_retry(api, connector, answer, reason_type):
    route = api.get("/self")
    if isinstance(answer, Exception):
        route.side_effect = answer
    else:
        route.return_value = answer
    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.authenticate()
    assert raised.value.reason_type is reason_type


# ---------------------------------------------------------------- role names


@pytest.mark.parametrize("spelling", ["SuperUser", "Superuser", "superUser", "SUPERUSER", "bookkeeping"])
def test_role_names_match_case_insensitively(api, connector, spelling):
    body = copy.deepcopy(SELF)
    body["application"]["requiredRoles"] = [{"name": spelling, "roleNumber": 1}]
    api.get("/self").respond(200, json=body)

    profile = connector.authenticate()

    assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY}) == []
    assert connector.missing_permissions(ConnectionProfile("1", None, frozenset({spelling})), set()) == []


def test_a_missing_role_names_what_was_granted_without_contradicting_itself(api, connector):
    body = copy.deepcopy(SELF)
    body["application"]["requiredRoles"] = [{"name": "sales", "roleNumber": 3}]
    api.get("/self").respond(200, json=body)

    missing = connector.missing_permissions(connector.authenticate(), {Capability.JOURNAL_ENTRY})

    assert len(missing) == 1 and "(granted: Sales)" in missing[0]
    assert "superuser" not in missing[0].split("(granted:")[1].lower()


# ---------------------------------------------------------------- texts name the agreement


def test_refusals_name_the_agreement_and_its_company(api, connector):
    api.get("/self").respond(200, json=SELF)
    api.get("/journals").respond(401, text="<html>Unauthorized</html>")
    connector.authenticate()

    with pytest.raises(AccountingSystemError) as raised:
        connector.supports(None, Capability.JOURNAL_ENTRY)

    assert "Acme ApS (agreement 123456)" in str(raised.value)


def test_another_agreements_company_name_is_not_put_next_to_the_configured_number(api, connector):
    api.get("/self").respond(200, json={**SELF, "agreementNumber": 999999, "company": {"name": "Other ApS"}})
    api.get("/journals").respond(200, json=collection([]))

    profile = connector.authenticate()
    support = connector.supports(profile, Capability.JOURNAL_ENTRY)

    assert profile.company_ref == "999999" and profile.company_name == "Other ApS"
    assert "agreement 123456" in support.detail and "Other ApS" not in support.detail


# ---------------------------------------------------------------- error answers that are not JSON


@pytest.mark.parametrize(
    ("status", "reason_type"),
    [
        (401, FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        (403, FailureReasonType.AUTHORIZATION_FAILURE),
        (400, FailureReasonType.VALIDATION_FAILURE),
        (422, FailureReasonType.VALIDATION_FAILURE),
    ],
)
def test_error_answers_with_html_bodies_are_classified_by_status(api, connector, status, reason_type):
    api.get("/self").respond(200, json=SELF)
    api.get("/vat-accounts").respond(status, text="<html><body>Bad things</body></html>")

    with pytest.raises(AccountingSystemError) as raised:
        connector.tax_codes(["I25"])

    assert raised.value.reason_type is reason_type and "<html" not in str(raised.value)


@pytest.mark.parametrize("status", [400, 405, 422])
def test_an_unexpected_answer_to_self_is_a_permanent_failure(api, connector, status):
    api.get("/self").respond(status, text="not json")

    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()

    assert raised.value.reason_type is FailureReasonType.VALIDATION_FAILURE


def test_a_forbidden_self_with_an_html_403_still_falls_back_to_the_probe(api, connector):
    api.get("/self").respond(403, text="<html>Forbidden</html>")
    api.get("/accounts").respond(200, json=collection([]))

    assert connector.authenticate().permissions == {"Bookkeeping"}


# ---------------------------------------------------------------- malformed bodies

EXCEPTION_NAMES = ("Error", "Exception", "KeyError", "Traceback", "JSONDecode", "Recursion")
MARKER = "MALFORMED-7f3a"

# Bodies no endpoint can make sense of: (label, raw bytes).
MALFORMED_ANYWHERE: list[tuple[str, bytes]] = [
    ("html", f"<!DOCTYPE html><html><body>{MARKER} maintenance</body></html>".encode()),
    ("empty", b""),
    ("truncated", b'{"collection": [{"accountNumber": 58'),
    ("not utf-8", b'{"collection": [], "name": "\xff\xfe"}'),
    ("null", b"null"),
    ("list", b"[]"),
    ("string", f'"{MARKER}"'.encode()),
    ("number", b"42"),
    ("true", b"true"),
    ("5000-digit integer", b'{"agreementNumber": ' + b"9" * 5000 + b', "collection": []}'),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
    ("deep object", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
]

COLLECTION_MALFORMED: list[tuple[str, object]] = [
    ("collection missing", {"pagination": {}}),
    ("collection null", {"collection": None}),
    ("collection an object", {"collection": {"accountNumber": 5820}}),
    ("collection of numbers", {"collection": [1, 2]}),
    ("collection of lists", {"collection": [[5820]]}),
    ("collection of strings", {"collection": [MARKER]}),
    ("pagination a list", {"collection": [], "pagination": []}),
    ("nextPage a number", {"collection": [], "pagination": {"nextPage": 2}}),
]

SELF_MALFORMED: list[tuple[str, object]] = [
    ("no agreement number", {k: v for k, v in SELF.items() if k != "agreementNumber"}),
    ("agreement number a list", {**SELF, "agreementNumber": [123456]}),
    ("agreement number a float", {**SELF, "agreementNumber": 1.5}),
    ("agreement number a boolean", {**SELF, "agreementNumber": True}),
    ("application a list", {**SELF, "application": []}),
    ("no requiredRoles", {**SELF, "application": {"appNumber": 1}}),
    ("no application", {k: v for k, v in SELF.items() if k != "application"}),
    ("requiredRoles an object", {**SELF, "application": {"requiredRoles": {"name": "SuperUser"}}}),
    ("requiredRoles of numbers", {**SELF, "application": {"requiredRoles": [1, 2]}}),
    ("role name a number", {**SELF, "application": {"requiredRoles": [{"name": 1}]}}),
    ("company a string", {**SELF, "company": MARKER}),
    ("company name a number", {**SELF, "company": {"name": 12}}),
    ("settings a list", {**SELF, "settings": []}),
    # a string is what e-conomic's self.get schema says it is; a number is neither it nor a boolean
    ("internationalLedger a number", {**SELF, "settings": {"internationalLedger": 1}}),
    ("baseCurrency a number", {**SELF, "settings": {"baseCurrency": 208}}),
    ("modules a string", {**SELF, "modules": "Lager"}),
    ("modules of numbers", {**SELF, "modules": [1]}),
    ("module name an object", {**SELF, "modules": [{"name": {"da": "Lager"}}]}),
]

ACCOUNTS_MALFORMED: list[tuple[str, object]] = [
    ("accountNumber a list", collection([{"accountNumber": [5820]}])),
    ("accountNumber a float", collection([{"accountNumber": 5820.0}])),
    ("barred a string", collection([{"accountNumber": 5820, "barred": "no"}])),
    ("blockDirectEntries a number", collection([{"accountNumber": 5820, "blockDirectEntries": 0}])),
    ("accountType a number", collection([{"accountNumber": 5820, "accountType": 1}])),
    ("name an object", collection([{"accountNumber": 5820, "accountType": "status", "name": {"da": "x"}}])),
]

VAT_MALFORMED: list[tuple[str, object]] = [
    ("vatCode a number", collection([{"vatCode": 25}])),
    ("barred a string", collection([{"vatCode": "I25", "barred": "true"}])),
    ("name a list", collection([{"vatCode": "I25", "name": ["Moms"]}])),
]

JOURNAL_MALFORMED: list[tuple[str, object]] = [
    ("journalNumber an object", collection([{"journalNumber": {"n": 1}}])),
    ("settings a string", collection([{"journalNumber": 1, "settings": "financeVoucher"}])),
    ("restriction a number", collection([{"journalNumber": 1, "settings": {"entryTypeRestrictedTo": 1}}])),
    ("name a boolean", collection([{"journalNumber": 1, "name": True}])),
]


def _self(api, connector, answer):
    api.get("/self").mock(return_value=answer)
    connector.authenticate()


def _probe(api, connector, answer):
    api.get("/self").respond(403, json={"message": "Forbidden"})
    api.get("/accounts").mock(return_value=answer)
    connector.authenticate()


def _accounts(api, connector, answer):
    api.get("/accounts").mock(return_value=answer)
    connector.accounts(["5820"])


def _vat_accounts(api, connector, answer):
    api.get("/vat-accounts").mock(return_value=answer)
    connector.tax_codes(["I25"])


def _journals(api, connector, answer):
    api.get("/journals").mock(return_value=answer)
    connector.supports(None, Capability.JOURNAL_ENTRY)


ENDPOINTS = {
    "GET /self": (_self, SELF_MALFORMED),
    "GET /accounts (token probe)": (_probe, COLLECTION_MALFORMED),
    "GET /accounts": (_accounts, COLLECTION_MALFORMED + ACCOUNTS_MALFORMED),
    "GET /vat-accounts": (_vat_accounts, COLLECTION_MALFORMED + VAT_MALFORMED),
    "GET /journals": (_journals, COLLECTION_MALFORMED + JOURNAL_MALFORMED),
}

MALFORMED_TABLE = [
    pytest.param(call, httpx.Response(200, content=raw), id=f"{endpoint}: {label}")
    for endpoint, (call, specific) in ENDPOINTS.items()
    for label, raw in [*MALFORMED_ANYWHERE, *((label, json.dumps(body).encode()) for label, body in specific)]
]


def assert_not_the_data_expected(raised: pytest.ExceptionInfo[AccountingSystemUnavailable]) -> None:
    message = str(raised.value)
    assert raised.value.reason_type is FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    assert "e-conomic answered with something that is not the data we expected while" in message
    assert not any(name in message for name in EXCEPTION_NAMES), message
    assert MARKER not in message and "<html" not in message.lower()


@pytest.mark.parametrize(("call", "answer"), MALFORMED_TABLE)
def test_malformed_bodies_are_the_accounting_systems_fault(api, connector, call, answer):
    with pytest.raises(AccountingSystemUnavailable) as raised:
        call(api, connector, answer)

    assert_not_the_data_expected(raised)


def test_a_collection_that_never_ends_is_malformed(api, connector):
    route = api.get("/vat-accounts").respond(200, json=collection([{"vatCode": "I25"}], next_page="more"))

    with pytest.raises(AccountingSystemUnavailable) as raised:
        connector.tax_codes(["I25"])

    assert_not_the_data_expected(raised)
    assert route.call_count == MAX_PAGES


def _mutations(value, path=()):
    """Every (path, replacement) that swaps one member of ``value`` for a value of another shape."""
    replacements = (None, [], {}, "text", 7, True, [1, 2], {"x": 1}, [[]])
    if isinstance(value, dict):
        for key, inner in value.items():
            for other in replacements:
                yield (*path, key), other
            yield from _mutations(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            for other in replacements:
                yield (*path, index), other
            yield from _mutations(inner, (*path, index))


def _mutated(body, path, replacement):
    copied = copy.deepcopy(body)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return copied


VALID = {
    "GET /self": (_self, SELF),
    "GET /accounts": (
        _accounts,
        collection([{"accountNumber": 5820, "accountType": "status", "barred": False, "name": "Kontor"}]),
    ),
    "GET /vat-accounts": (_vat_accounts, collection([{"vatCode": "I25", "name": "Moms", "barred": False}])),
    "GET /journals": (
        _journals,
        collection([{"journalNumber": 1, "name": "Daglig", "settings": {"entryTypeRestrictedTo": "financeVoucher"}}]),
    ),
}


@pytest.mark.parametrize("endpoint", sorted(VALID))
def test_no_member_of_any_shape_makes_a_python_exception_escape(endpoint):
    call, body = VALID[endpoint]
    for path, replacement in _mutations(body):
        with respx.mock(base_url=BASE) as api, new_client(BASE, timeout_seconds=2) as http:
            credentials = EconomicCredentials(appSecretToken=SecretStr("a"), agreementGrantToken=SecretStr("g"))
            connector = EconomicConnector(http, credentials, configuration(mappings={"journal": 1}))
            answer = httpx.Response(200, json=_mutated(body, path, replacement))
            try:
                call(api, connector, answer)
            except AccountingSystemUnavailable as error:
                assert not any(name in str(error) for name in EXCEPTION_NAMES), (path, replacement)
