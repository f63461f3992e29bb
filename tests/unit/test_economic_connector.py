"""The e-conomic connector against e-conomic-shaped answers (respx)."""

from __future__ import annotations

import httpx
import pytest
import respx
from pydantic import SecretStr

from export_preflight.connectors.economic import EconomicConnector
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, EconomicCredentials, FailureReasonType
from tests.unit.fakes import configuration

BASE = "https://restapi.e-conomic.com"
SELF = {
    "agreementNumber": 123456,
    "company": {"name": "Acme ApS", "vatNumber": "DK12345678"},
    "application": {"appNumber": 1, "name": "Pleo export", "requiredRoles": [{"name": "SuperUser", "roleNumber": 1}]},
    "modules": [{"moduleNumber": 1, "name": "Lager"}],
    "settings": {"baseCurrency": "DKK", "internationalLedger": False},
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
        yield EconomicConnector(http, credentials, configuration(mappings={"journal": 1, "vendorJournal": 2}))


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
    from export_preflight.connectors import ConnectionProfile

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
