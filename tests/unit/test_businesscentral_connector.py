"""The Business Central connector against answers shaped as Microsoft describes them (respx).

Entities are built from Microsoft's own GET examples in the extract
(``tests/contract/vendors/businesscentral/api_v2.json``: ``docsExample``), kept to the
properties the API v2.0 page really has, with enums in wire form; fact ids name
``facts.yaml`` entries."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import respx

from export_preflight import process
from export_preflight.checks import PreflightContext, company_context
from export_preflight.configuration import validate_item
from export_preflight.connectors import CONNECTORS
from export_preflight.connectors.base import ConnectorEnvironment
from export_preflight.connectors.businesscentral import (
    BUSINESSCENTRAL,
    COMPANY_REF,
    SPEC,
    BusinessCentralConnector,
    decode_enum,
)
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability, ClientCredentials, ExportJob, FailureReasonType
from export_preflight.oauth import GrantRevoked
from export_preflight.ports import Connection
from tests.unit.fakes import configuration

Reason = FailureReasonType
EXTRACT = json.loads(
    (Path(__file__).resolve().parents[1] / "contract/vendors/businesscentral/api_v2.json").read_text(encoding="utf-8")
)
API = "https://api.businesscentral.dynamics.com"
AUTH = "https://login.microsoftonline.com"
TENANT = "6f2f0c1e-3d1a-4b8e-9c55-1a2b3c4d5e6f"
ENVIRONMENT = "production"
COMPANY_ID = "824820a2-508c-ed11-aada-000d3a298ab3"
OTHER_COMPANY_ID = "924820a2-508c-ed11-aada-000d3a298ab4"
REF = f"{TENANT}/{ENVIRONMENT}/{COMPANY_ID}"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "Xy8Q~s3cr3t-value-never-shown"
ROOT = f"{API}/v2.0/{TENANT}/{ENVIRONMENT}/api/v2.0"
COMPANY_URL = f"{ROOT}/companies({COMPANY_ID})"
TOKEN_URL = f"{AUTH}/{TENANT}/oauth2/v2.0/token"
TODAY = date(2026, 5, 4)
ETAG = 'W/"JzQ0O0VnQUFBQUo3QlRFQU1BQXdBQUFBQUE9PTE7MDA7Jw=="'


# ---------------------------------------------------------------- Microsoft-shaped answers


def entity(entity_set: str, **values: Any) -> dict[str, Any]:
    """Microsoft's GET example of the entity set with ``values`` over it: only the page's
    properties (facts.yaml entity-shapes; the account example carries four that are not),
    enums as they travel (enum-wire-encoding), with its ``@odata.etag`` (collection-envelope)."""
    described = EXTRACT["entities"][entity_set]
    example = described["docsExample"]["example"]
    properties = described["properties"]
    body = {"@odata.etag": ETAG}
    for name, prop in properties.items():
        value = example.get(name, "")
        if prop.get("enum") and isinstance(value, str) and value not in prop["enum"]:
            value = value.replace(" ", "_x0020_").replace("/", "_x002F_").replace("-", "_x002D_")
        body[name] = value
    body.update(values)
    return body


def collection(entity_set: str, items: list[dict[str, Any]], next_link: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"@odata.context": f"{ROOT}/$metadata#companies({COMPANY_ID})/{entity_set}", "value": items}
    if next_link:
        body["@odata.nextLink"] = next_link
    return body


def odata_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """facts.yaml error-envelope, with the CorrelationId tail of error-message-correlation [assumed]."""
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": f"{message}  CorrelationId:  0c6f0a3e-8b7e-4a7e-9f5e-6f1d2c3b4a59."}},
        headers=headers,
    )


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def token_answer(roles: list[str] | None = None, expires_in: int = 3599, marker: str = "1") -> dict[str, Any]:
    """facts.yaml token-answer (ENTRA v2-oauth2-client-creds-grant-flow.md, Successful response)."""
    claims: dict[str, Any] = {"aud": "https://api.businesscentral.dynamics.com", "tid": TENANT, "appid": CLIENT_ID}
    claims["n"] = marker
    if roles is not None:
        claims["roles"] = roles
    return {"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": jwt(claims)}


def token_error(status: int, error: str, code: int) -> httpx.Response:
    """facts.yaml token-error-body (ENTRA: error, error_description, error_codes, timestamp, trace_id,
    correlation_id)."""
    return httpx.Response(
        status,
        json={
            "error": error,
            "error_description": f"AADSTS{code}: something for humans, naming {CLIENT_ID}.",
            "error_codes": [code],
            "timestamp": "2026-05-04 10:00:00Z",
            "trace_id": "0f0f0f0f-0000-0000-0000-000000000000",
            "correlation_id": "1e1e1e1e-0000-0000-0000-000000000000",
        },
    )


COMPANY = entity("companies", id=COMPANY_ID, name="CRONUS US", displayName="CRONUS USA, Inc.")
SETUP = collection(
    "generalLedgerSetup", [entity("generalLedgerSetup", allowPostingFrom="0001-01-01", allowPostingTo="0001-01-01")]
)


def account(number: str, **values: Any) -> dict[str, Any]:
    return entity("accounts", number=number, displayName=f"Account {number}", **values)


ACCOUNTS = {
    "6100": account("6100", accountType="Posting", blocked=False, directPosting=True),
    "6200": account("6200", accountType="Posting", blocked=True, directPosting=True),
    "6000": account("6000", accountType="Heading", blocked=False, directPosting=False),
    "6999": account("6999", accountType="Begin_x002D_Total", blocked=False, directPosting=False),
    "6300": account("6300", accountType="Posting", blocked=False, directPosting=False),
}


# ---------------------------------------------------------------- building the connector


class Vault:
    """Stands in for the credentials store: the company's ``{"clientId", "clientSecret"}``."""

    def __init__(self, secret: dict[str, str] | None = None) -> None:
        self.secret = secret or {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
        self.loads: list[tuple[str, bool]] = []

    def load(self, secret_id: str, model: Any, *, refresh: bool = False) -> Any:
        self.loads.append((secret_id, refresh))
        return model.model_validate(self.secret)


def config(**overrides: Any) -> Any:
    mappings = overrides.pop("mappings", {"journal": "PLEO", "expenseAccount": "6100", "contraAccount": "2990"})
    return configuration(
        accountingSystem="businesscentral",
        accountingCompanyRef=overrides.pop("ref", REF),
        mappings=mappings,
        **overrides,
    )


@pytest.fixture(autouse=True)
def fresh_process():
    process.reset()  # the token cache is per container
    yield
    process.reset()


@pytest.fixture
def clients():
    settings = SPEC.settings(api_base_url=API, auth_base_url=AUTH)
    http = {name: new_client(url, timeout_seconds=2) for name, url in SPEC.base_urls(settings).items()}
    yield settings, http
    for client in http.values():
        client.close()


def build(clients: Any, vault: Vault | None = None, **overrides: Any) -> BusinessCentralConnector:
    settings, http = clients
    env = ConnectorEnvironment(settings=settings, http=http, credentials=vault or Vault())
    company = config(**overrides)
    return BusinessCentralConnector(
        http["businesscentral"], BUSINESSCENTRAL.grant(env, company, False), company, today=lambda: TODAY
    )


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        yield router


def healthy(mock: respx.MockRouter, roles: list[str] | None = None) -> respx.Route:
    token = mock.post(TOKEN_URL).respond(200, json=token_answer(["API.ReadWrite.All"] if roles is None else roles))
    mock.get(COMPANY_URL).respond(200, json=COMPANY)
    return token


def assert_no_secret(error: BaseException) -> None:
    assert CLIENT_SECRET not in str(error)


# ---------------------------------------------------------------- the kit: declaration, settings, secret


def test_the_system_is_registered_with_its_two_settings_and_the_apps_credentials_as_its_secret(monkeypatch):
    for name in ("BUSINESSCENTRAL_API_BASE_URL", "BUSINESSCENTRAL_AUTH_BASE_URL"):
        monkeypatch.delenv(name, raising=False)  # the defaults (a sandbox in this process sets them)
    spec = CONNECTORS["businesscentral"]
    assert spec is SPEC
    assert spec.variables() == {
        "api_base_url": "BUSINESSCENTRAL_API_BASE_URL",
        "auth_base_url": "BUSINESSCENTRAL_AUTH_BASE_URL",
    }
    assert spec.stack_outputs() == {
        "api_base_url": "BusinessCentralApiBaseUrl",
        "auth_base_url": "BusinessCentralAuthBaseUrl",
    }
    assert spec.prefixed_secrets() == {}  # no app-wide client secret: each company holds its own app's
    assert spec.credentials is ClientCredentials
    assert spec.reread_on_rejection is True
    settings = spec.settings()
    assert str(settings.api_base_url).rstrip("/") == API  # type: ignore[attr-defined]
    assert spec.base_urls(settings) == {"businesscentral": API, "businesscentral-auth": AUTH}


@pytest.mark.parametrize(
    ("ref", "valid"),
    [
        (REF, True),
        (f"contoso.onmicrosoft.com/sandbox_2/{COMPANY_ID.upper()}", True),
        (f"{TENANT}/production", False),
        (f"{TENANT}/prod uction/{COMPANY_ID}", False),
        (f"{TENANT}/production/CRONUS US", False),
        (f"not a tenant/production/{COMPANY_ID}", False),
        (f"{TENANT}/{'e' * 31}/{COMPANY_ID}", False),
    ],
)
def test_the_company_reference_is_tenant_environment_company(ref, valid):
    assert bool(COMPANY_REF.fullmatch(ref)) is valid


def test_config_validation_names_the_reference_format_and_the_journal_batch():
    document = {
        "companyId": "5b5f7f59-64b1-4d6b-8f6c-1c2e8a9b0d11",
        "configuration": {
            "accountingSystem": "businesscentral",
            "accountingCompanyRef": "production/CRONUS",
            "accountingCredentialsSecretId": "export-preflight/businesscentral/5b5f7f59-64b1-4d6b-8f6c-1c2e8a9b0d11",
            "mappings": {"expenseAccount": "6100", "contraAccount": "2990"},
        },
    }
    report = validate_item(document, secrets_prefix="export-preflight/")
    errors = {finding.path: finding.message for finding in report.errors}
    assert "<tenantId>/<environmentName>/<companyId>" in errors["configuration.accountingCompanyRef"]
    warnings = {finding.path: finding.message for finding in report.warnings}
    assert "general journal batch" in warnings["configuration.mappings.journal"]


# ---------------------------------------------------------------- the token (client credentials)


def test_the_token_is_a_client_credentials_grant_of_the_companys_app_in_its_tenant(mock, clients):
    """facts.yaml token-endpoint."""
    token = healthy(mock)
    build(clients).authenticate()
    sent = token.calls.last.request
    assert sent.method == "POST" and str(sent.url) == TOKEN_URL
    form = parse_qs(sent.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "scope": ["https://api.businesscentral.dynamics.com/.default"],
    }
    assert "authorization" not in sent.headers  # the secret goes in the form, never in a header


def test_the_token_is_kept_per_tenant_and_app_until_five_minutes_before_it_expires(mock, clients):
    token = healthy(mock)
    first = build(clients)
    first.authenticate()
    build(clients).authenticate()  # another job of the same company (or another company on the same app)
    assert token.call_count == 1
    other_secret = Vault({"clientId": CLIENT_ID, "clientSecret": "another-secret"})
    build(clients, vault=other_secret).authenticate()  # a rotated secret is not served a token made with another
    assert token.call_count == 2


def test_a_token_within_five_minutes_of_its_expiry_is_not_used(mock, clients, monkeypatch):
    token = healthy(mock)
    start = time.time()
    first = build(clients)
    monkeypatch.setattr(first._auth, "_clock", lambda: start)
    first.authenticate()
    later = build(clients)
    monkeypatch.setattr(later._auth, "_clock", lambda: start + 3599 - 301)
    later.authenticate()
    assert token.call_count == 1
    latest = build(clients)
    monkeypatch.setattr(latest._auth, "_clock", lambda: start + 3599 - 299)
    latest.authenticate()
    assert token.call_count == 2


def test_concurrent_callers_share_one_token_request(mock, clients):
    started = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        time.sleep(0.2)
        return httpx.Response(200, json=token_answer(["API.ReadWrite.All"]))

    token = mock.post(TOKEN_URL).mock(side_effect=slow)
    mock.get(COMPANY_URL).respond(200, json=COMPANY)
    connectors = [build(clients) for _ in range(4)]
    threads = [threading.Thread(target=c.authenticate) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert token.call_count == 1


@pytest.mark.parametrize(
    ("status", "error", "code", "reason", "kind", "says"),
    [
        (401, "invalid_client", 7000215, Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE, AccountingSystemError,
         "create a new client secret"),
        (401, "invalid_client", 7000222, Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE, AccountingSystemError,
         "expired"),
        (400, "unauthorized_client", 700016, Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE, GrantRevoked,
         "admin consent"),
        (400, "invalid_request", 90002, Reason.INVALID_CONFIGURATION, AccountingSystemError, "tenant"),
        (400, "invalid_resource", 500011, Reason.INVALID_CONFIGURATION, AccountingSystemError, "no Dynamics 365"),
    ],
)  # fmt: skip
def test_token_refusals_are_told_apart_by_their_aadsts_code(mock, clients, status, error, code, reason, kind, says):
    """facts.yaml aadsts-7000215, aadsts-7000222, aadsts-700016, aadsts-90002, aadsts-500011; the status each
    comes with is assumed (token-error-http-status): the code decides."""
    mock.post(TOKEN_URL).mock(return_value=token_error(status, error, code))
    api = mock.get(COMPANY_URL).respond(200, json=COMPANY)
    with pytest.raises(AccountingSystemError) as raised:
        build(clients).authenticate()
    assert isinstance(raised.value, kind)
    assert raised.value.reason_type is reason
    assert says in str(raised.value) and f"AADSTS{code}" in str(raised.value)
    assert "something for humans" not in str(raised.value)  # error_description is never echoed
    assert_no_secret(raised.value)
    assert not api.called


def test_a_token_endpoint_outage_is_transient_with_its_retry_after(mock, clients):
    mock.post(TOKEN_URL).respond(503, headers={"Retry-After": "30"})
    with pytest.raises(AccountingSystemUnavailable) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_UNREACHABLE and raised.value.retry_after == 30


def test_a_token_endpoint_answering_html_is_transient(mock, clients):
    mock.post(TOKEN_URL).respond(200, html="<html>Sign in</html>")
    with pytest.raises(AccountingSystemUnavailable) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_UNREACHABLE


@pytest.mark.parametrize("roles", [None, [], ["Automation.ReadWrite.All"]])
def test_a_token_without_the_api_role_means_no_admin_consent(mock, clients, roles):
    """facts.yaml token-roles-api-readwrite-all, aadsts-65001-not-for-client-credentials (Entra may issue an
    app-only token without a roles claim when nothing was consented)."""
    mock.post(TOKEN_URL).respond(200, json=token_answer(roles))
    api = mock.get(COMPANY_URL).respond(200, json=COMPANY)
    with pytest.raises(AccountingSystemError) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.AUTHORIZATION_FAILURE
    assert "API.ReadWrite.All" in str(raised.value) and "admin consent" in str(raised.value)
    assert not api.called  # no API call with a token that cannot work


def test_an_opaque_token_is_left_to_the_api_to_judge(mock, clients):
    mock.post(TOKEN_URL).respond(200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "opaque"})
    mock.get(COMPANY_URL).respond(200, json=COMPANY)
    assert build(clients).authenticate().permissions == frozenset()


# ---------------------------------------------------------------- the company (authentication, company_context)


def test_authenticate_reads_the_configured_company_with_the_bearer_token(mock, clients):
    healthy(mock)
    profile = build(clients).authenticate()
    assert profile.company_ref == REF and profile.company_name == "CRONUS USA, Inc."
    assert profile.permissions == frozenset({"API.ReadWrite.All"})
    assert profile.facts["environment"] == ENVIRONMENT and profile.facts["companyName"] == "CRONUS US"
    request = mock.routes[1].calls.last.request
    assert request.headers["Authorization"].startswith("Bearer ey")


def test_a_401_from_the_api_with_a_fresh_token_points_at_the_entra_applications_page(mock, clients):
    """facts.yaml unregistered-app-answer [assumed], entra-application-page."""
    token = mock.post(TOKEN_URL).respond(200, json=token_answer(["API.ReadWrite.All"]))
    api = mock.get(COMPANY_URL).mock(
        return_value=odata_error(
            401, "Authentication_InvalidCredentials", "The server has rejected the client credentials."
        )
    )
    with pytest.raises(AccountingSystemError) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    message = str(raised.value)
    assert "Microsoft Entra Applications page" in message and "State Enabled" in message
    assert CLIENT_ID not in message  # the company's secret holds it: redacted anyway, so never named
    assert token.call_count == 1 and api.call_count == 1  # a token just issued is not asked for again
    assert_no_secret(raised.value)


def test_a_401_on_an_older_cached_token_is_retried_once_with_a_new_token(mock, clients, monkeypatch):
    token = mock.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(200, json=token_answer(["API.ReadWrite.All"], marker="old")),
            httpx.Response(200, json=token_answer(["API.ReadWrite.All"], marker="new")),
        ]
    )
    api = mock.get(COMPANY_URL).mock(
        side_effect=[
            odata_error(401, "Authentication_InvalidCredentials", "rejected"),
            httpx.Response(200, json=COMPANY),
        ]
    )
    connector = build(clients)
    issued = connector._auth.token()
    monkeypatch.setattr(connector._auth, "_clock", lambda: issued.issued_at + 600)
    assert connector.authenticate().company_ref == REF
    assert token.call_count == 2 and api.call_count == 2


def test_a_403_on_the_company_asks_for_permission_sets_on_the_entra_applications_page(mock, clients):
    mock.post(TOKEN_URL).respond(200, json=token_answer(["API.ReadWrite.All"]))
    mock.get(COMPANY_URL).respond(403)
    with pytest.raises(AccountingSystemError) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.AUTHORIZATION_FAILURE
    assert "Microsoft Entra Applications page" in str(raised.value) and "D365 BASIC" in str(raised.value)


def test_a_wrong_environment_is_named_with_its_tenant(mock, clients):
    """facts.yaml wrong-environment-404 [assumed]: the company and the environment's companies both 404."""
    mock.post(f"{AUTH}/{TENANT}/oauth2/v2.0/token").respond(200, json=token_answer(["API.ReadWrite.All"]))
    root = f"{API}/v2.0/{TENANT}/prod/api/v2.0"
    mock.get(f"{root}/companies({COMPANY_ID})").mock(return_value=odata_error(404, "BadRequest_NotFound", "Not found."))
    mock.get(url__startswith=f"{root}/companies?").mock(
        return_value=odata_error(404, "BadRequest_NotFound", "Not found.")
    )
    with pytest.raises(AccountingSystemError) as raised:
        build(clients, ref=f"{TENANT}/prod/{COMPANY_ID}").authenticate()
    assert raised.value.reason_type is Reason.INVALID_CONFIGURATION
    assert "environment 'prod'" in str(raised.value) and TENANT in str(raised.value)


def test_an_unknown_company_fails_company_context_naming_the_companies_the_app_reaches(mock, clients):
    """facts.yaml unknown-company-404 [assumed]."""
    healthy(mock)
    mock.get(COMPANY_URL).mock(return_value=odata_error(404, "BadRequest_NotFound", "Not found."))
    other = entity("companies", id=OTHER_COMPANY_ID, name="CRONUS DK", displayName="CRONUS Danmark A/S")
    listing = mock.get(url__startswith=f"{ROOT}/companies?").respond(200, json=collection("companies", [other]))
    connector = build(clients)
    profile = connector.authenticate()
    other_ref = f"{TENANT}/{ENVIRONMENT}/{OTHER_COMPANY_ID}"
    assert profile.company_ref == other_ref and profile.reachable == {other_ref: "CRONUS Danmark A/S"}
    assert listing.calls.last.request.headers["Prefer"] == "odata.maxpagesize=1000"
    job = ExportJob.model_validate({"id": "6a1f6e4e-1f5b-4b59-9d0e-2d3c4b5a6978", "companyId": str(config().company_id),
                                    "status": "in_progress"})  # fmt: skip
    ctx = PreflightContext(job=job, config=config(), connection=Connection(connector), profile=profile)
    outcome = company_context(ctx)
    assert outcome.status == "failed" and outcome.reason_type is Reason.INVALID_CONFIGURATION
    assert other_ref in (outcome.reason or "")


def test_a_404_without_an_odata_body_is_the_systems_fault(mock, clients):
    healthy(mock)
    mock.get(COMPANY_URL).respond(404)
    with pytest.raises(AccountingSystemUnavailable) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is Reason.ACCOUNTING_SYSTEM_UNREACHABLE


@pytest.mark.parametrize(
    ("answer", "reason", "retry_after"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}), Reason.ACCOUNTING_SYSTEM_RATE_LIMIT, 7),
        (httpx.Response(429), Reason.ACCOUNTING_SYSTEM_RATE_LIMIT, None),
        (httpx.Response(503, headers={"Retry-After": "120"}), Reason.ACCOUNTING_SYSTEM_UNREACHABLE, 120),
        (httpx.Response(502, headers={"Retry-After": "5"}), Reason.ACCOUNTING_SYSTEM_UNREACHABLE, 5),
        (httpx.Response(504), Reason.ACCOUNTING_SYSTEM_UNREACHABLE, None),
    ],
)
def test_throttling_and_outages_are_transient_with_retry_after(mock, clients, answer, reason, retry_after):
    """facts.yaml rate-limit-per-user, concurrency-per-user, retry-after-502-503, retry-after-429 [assumed],
    timeouts."""
    healthy(mock)
    mock.get(COMPANY_URL).mock(return_value=answer)
    with pytest.raises(AccountingSystemUnavailable) as raised:
        build(clients).authenticate()
    assert raised.value.reason_type is reason and raised.value.retry_after == retry_after


def test_a_malformed_reference_is_invalid_configuration_before_any_call(mock, clients):
    token = healthy(mock)
    connector = BusinessCentralConnector(
        clients[1]["businesscentral"], BUSINESSCENTRAL.grant(
            ConnectorEnvironment(settings=clients[0], http=clients[1], credentials=Vault()), config(), False
        ), config(ref="CRONUS"),
    )  # fmt: skip
    with pytest.raises(AccountingSystemError) as raised:
        connector.authenticate()
    assert raised.value.reason_type is Reason.INVALID_CONFIGURATION and not token.called


# ---------------------------------------------------------------- permissions


def probe(mock: respx.MockRouter, entity_set: str, answer: httpx.Response | None = None) -> respx.Route:
    route = mock.get(url__startswith=f"{COMPANY_URL}/{entity_set}?")
    return route.mock(return_value=answer or httpx.Response(200, json=collection(entity_set, [])))


def test_permissions_read_one_entity_per_needed_set(mock, clients):
    healthy(mock)
    routes = {name: probe(mock, name) for name in ("accounts", "journals", "taxGroups", "vendors", "purchaseInvoices")}
    attachments = probe(mock, "attachments")
    connector = build(clients)
    profile = connector.authenticate()
    assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING}) == []
    for route in routes.values():
        assert route.call_count == 1
        query = parse_qs(route.calls.last.request.url.query.decode())
        assert query == {"$top": ["1"], "$select": ["id"]}  # cheap, not paging
    assert not attachments.called  # no receipts asked for: attachments are not probed


def test_receipts_probe_attachments_of_no_parent(mock, clients):
    """Attachments are read per parent: the probe names the blank GUID (facts.yaml blank-values)."""
    healthy(mock)
    for name in ("accounts", "journals", "taxGroups"):
        probe(mock, name)
    attachments = probe(mock, "attachments")
    connector = build(clients)
    profile = connector.authenticate()
    assert connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.ATTACHMENT_UPLOAD}) == []
    query = parse_qs(attachments.calls.last.request.url.query.decode())
    assert query["$filter"] == ["parentId eq 00000000-0000-0000-0000-000000000000"]


def test_a_missing_permission_set_names_the_entity_set_the_object_and_the_sets_to_add(mock, clients):
    """facts.yaml missing-permission-answer [assumed]: Internal_ServerError, 403 now, 400 in 2021."""
    healthy(mock)
    probe(mock, "accounts")
    probe(mock, "journals")
    probe(mock, "taxGroups")
    probe(mock, "vendors", odata_error(
        403, "Internal_ServerError",
        "Sorry, the current permissions prevented the action. (TableData 23 Vendor Read: Base Application)",
    ))  # fmt: skip
    probe(mock, "purchaseInvoices", odata_error(
        400, "Internal_ServerError",
        "You do not have the following permissions on Page APIV2 - Purchase Invoices: Execute.",
    ))  # fmt: skip
    connector = build(clients)
    profile = connector.authenticate()
    missing = connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING})
    assert len(missing) == 2
    assert "(vendors)" in missing[0] and "TableData 23 Vendor Read: Base Application" in missing[0]
    assert "(purchaseInvoices)" in missing[1] and "Page APIV2 - Purchase Invoices: Execute" in missing[1]
    for item in missing:
        assert "D365 BASIC and D365 ACC. PAYABLE" in item and "Microsoft Entra Applications page" in item
    assert connector.permission_advice == "Then export again."


def test_the_probes_are_read_side_by_side(mock, clients):
    """Each needed entity set's read is in flight at once (a barrier the three must all reach)."""
    healthy(mock)
    barrier = threading.Barrier(3, timeout=2)

    def meeting(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return httpx.Response(200, json=collection(request.url.path.rsplit("/", 1)[1], []))

    for name in ("accounts", "journals", "taxGroups"):
        mock.get(url__startswith=f"{COMPANY_URL}/{name}?").mock(side_effect=meeting)
    connector = build(clients)
    assert connector.missing_permissions(connector.authenticate(), {Capability.JOURNAL_ENTRY}) == []


def test_the_first_probes_error_in_order_is_raised(mock, clients):
    healthy(mock)
    probe(mock, "accounts")
    probe(mock, "journals", odata_error(400, "BadRequest", "Could not find a property named 'id'."))
    probe(mock, "taxGroups", odata_error(503, "ServiceUnavailable", "Upgrading."))
    connector = build(clients)
    with pytest.raises(AccountingSystemError) as raised:
        connector.missing_permissions(connector.authenticate(), {Capability.JOURNAL_ENTRY})
    assert raised.value.reason_type is Reason.VALIDATION_FAILURE and "general journal batches" in str(raised.value)


def test_an_unrelated_bad_request_on_a_probe_is_not_a_missing_permission(mock, clients):
    healthy(mock)
    probe(mock, "accounts", odata_error(400, "BadRequest", "Could not find a property named 'id'."))
    probe(mock, "journals"), probe(mock, "taxGroups")  # read at the same time
    connector = build(clients)
    profile = connector.authenticate()
    with pytest.raises(AccountingSystemError) as raised:
        connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY})
    assert raised.value.reason_type is Reason.VALIDATION_FAILURE


def test_an_internal_error_that_is_not_about_permissions_is_retried(mock, clients):
    healthy(mock)
    probe(mock, "accounts", odata_error(400, "Internal_ServerError", "Something went wrong."))
    probe(mock, "journals"), probe(mock, "taxGroups")  # read at the same time
    connector = build(clients)
    profile = connector.authenticate()
    with pytest.raises(AccountingSystemUnavailable):
        connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY})


# ---------------------------------------------------------------- capabilities: posting window, journal, vendors


def gl_setup(mock: respx.MockRouter, body: dict[str, Any]) -> respx.Route:
    return mock.get(f"{COMPANY_URL}/generalLedgerSetup").respond(200, json=body)


def journals(mock: respx.MockRouter, *codes: str) -> respx.Route:
    items = [entity("journals", id=f"0000000{i}-0000-0000-0000-000000000000", code=c, displayName=c,
                    templateDisplayName="GENERAL") for i, c in enumerate(codes)]  # fmt: skip
    return mock.get(url__startswith=f"{COMPANY_URL}/journals?").respond(200, json=collection("journals", items))


def test_journal_entries_need_the_batch_and_today_in_the_posting_window(mock, clients):
    """facts.yaml gl-setup-posting-window (blank 0001-01-01: no limit), journals-default-template,
    filter-on-properties."""
    healthy(mock)
    gl_setup(mock, SETUP)
    route = journals(mock, "PLEO")
    connector = build(clients, mappings={"journal": "pleo", "expenseAccount": "6100", "contraAccount": "2990"})
    support = connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)
    assert support.supported, support.detail
    assert unquote(route.calls.last.request.url.query.decode()) == "$filter=code eq 'PLEO'"
    assert "%20" in route.calls.last.request.url.query.decode()  # never '+', which OData may read as a plus


def test_a_missing_journal_batch_is_not_supported(mock, clients):
    healthy(mock)
    gl_setup(mock, SETUP)
    journals(mock)
    connector = build(clients)
    support = connector.supports(connector.authenticate(), Capability.JOURNAL_ENTRY)
    assert not support.supported and "PLEO" in support.detail and "General Journals" in support.detail


@pytest.mark.parametrize(
    ("start", "end", "supported"),
    [
        ("0001-01-01", "0001-01-01", True),
        ("2026-01-01", "2026-12-31", True),
        ("2026-05-04", "0001-01-01", True),
        ("0001-01-01", "2026-05-04", True),
        ("2025-01-01", "2025-12-31", False),  # Microsoft's example: last year only
        ("2026-06-01", "0001-01-01", False),
    ],
)
def test_the_posting_window_must_include_today(mock, clients, start, end, supported):
    healthy(mock)
    gl_setup(mock, collection("generalLedgerSetup", [entity("generalLedgerSetup", allowPostingFrom=start,
                                                             allowPostingTo=end)]))  # fmt: skip
    journals(mock, "PLEO")
    connector = build(clients)
    profile = connector.authenticate()
    for capability in (Capability.JOURNAL_ENTRY, Capability.VENDOR_BOOKKEEPING):
        mock.get(url__startswith=f"{COMPANY_URL}/vendors?").respond(200, json=collection("vendors", []))
        support = connector.supports(profile, capability)
        assert support.supported is supported, support.detail
        if not supported:
            assert start in support.detail and "General Ledger Setup page" in support.detail
            assert "2026-05-04" in support.detail


def test_the_general_ledger_setup_may_come_as_one_object(mock, clients):
    """facts.yaml gl-setup-collection is assumed: a single record is read as well."""
    healthy(mock)
    route = gl_setup(mock, entity("generalLedgerSetup", allowPostingFrom="2027-01-01", allowPostingTo="0001-01-01"))
    journals(mock, "PLEO")
    connector = build(clients)
    profile = connector.authenticate()
    assert not connector.supports(profile, Capability.JOURNAL_ENTRY).supported
    connector.supports(profile, Capability.JOURNAL_ENTRY)
    assert route.call_count == 1  # read once per job


def test_blocked_vendors_are_a_notice_and_the_enum_is_decoded(mock, clients):
    """facts.yaml vendor-blocked-enum (``_x0020_`` on the wire, ``" "`` in Microsoft's example),
    vendor-blocked-semantics."""
    healthy(mock)
    gl_setup(mock, SETUP)
    vendors = [
        entity("vendors", number="V1", displayName="Open Wire", blocked="_x0020_"),
        entity("vendors", number="V2", displayName="Open Example", blocked=" "),
        entity("vendors", number="V3", displayName="Payments Held", blocked="Payment"),
        entity("vendors", number="V4", displayName="Fully Blocked", blocked="All"),
    ]
    # answered unfiltered: the connector decides on the decoded value itself, whatever the server filtered
    route = mock.get(url__startswith=f"{COMPANY_URL}/vendors?").respond(200, json=collection("vendors", vendors))
    connector = build(clients)
    support = connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert parse_qs(route.calls.last.request.url.query.decode())["$filter"] == ["blocked eq 'All'"]
    assert support.supported
    assert support.notice is not None and "V4 Fully Blocked" in support.notice
    assert "V3" not in support.notice and "V1" not in support.notice


def test_attachments_need_no_call(mock, clients):
    healthy(mock)
    connector = build(clients)
    profile = connector.authenticate()
    calls = len(mock.calls)
    assert connector.supports(profile, Capability.ATTACHMENT_UPLOAD).supported
    assert len(mock.calls) == calls


def test_decode_enum():
    assert decode_enum("_x0020_") == " "
    assert decode_enum("Begin_x002D_Total") == "Begin-Total"
    assert decode_enum("G_x002F_L_x0020_Account") == "G/L Account"
    assert decode_enum("Payment") == "Payment"


# ---------------------------------------------------------------- accounts and tax groups


def accounts_by_number(request: httpx.Request) -> httpx.Response:
    """``accounts?$filter=number eq '...'`` as Business Central filters it."""
    wanted = unquote(request.url.query.decode()).removeprefix("$filter=number eq '").removesuffix("'")
    items = [ACCOUNTS[wanted]] if wanted in ACCOUNTS else []
    return httpx.Response(200, json=collection("accounts", items))


def test_accounts_must_be_posting_unblocked_and_take_direct_posting(mock, clients):
    """facts.yaml account-postable, account-type-enum, account-direct-posting."""
    healthy(mock)
    route = mock.get(url__startswith=f"{COMPANY_URL}/accounts?").mock(side_effect=accounts_by_number)
    connector = build(clients)
    found = connector.accounts(["6100", "6200", "6000", "6999", "6300", "7777"])
    assert found["6100"] is not None and found["6100"].usable and found["6100"].name == "Account 6100"
    assert found["7777"] is None
    problems = {ref: entry.problem for ref, entry in found.items() if entry is not None and not entry.usable}
    assert "blocked" in problems["6200"]
    assert "Heading" in problems["6000"] and "Posting account" in problems["6000"]
    assert "Begin-Total" in problems["6999"]
    assert "Direct Posting" in problems["6300"]
    assert route.call_count == 6
    assert all("$skip" not in str(call.request.url) for call in route.calls)


def test_the_mapped_accounts_are_looked_up_side_by_side(mock, clients):
    """One filtered read per number, all in flight at once (a barrier the three must reach)."""
    healthy(mock)
    barrier = threading.Barrier(3, timeout=2)

    def meeting(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return accounts_by_number(request)

    mock.get(url__startswith=f"{COMPANY_URL}/accounts?").mock(side_effect=meeting)
    found = build(clients).accounts(["6100", "6200", "7777"])
    assert found["6100"] is not None and found["6100"].usable and found["7777"] is None


def test_tax_groups_are_looked_up_by_code(mock, clients):
    """facts.yaml tax-groups-semantics: VAT product posting groups (taxType VAT) or sales tax groups."""
    healthy(mock)
    groups = [
        entity("taxGroups", code="STANDARD", displayName="Standard VAT", taxType="VAT"),
        entity("taxGroups", code="FURNITURE", displayName="Taxable Olympic Furniture", taxType="Sales_x0020_Tax"),
    ]
    route = mock.get(url__startswith=f"{COMPANY_URL}/taxGroups").respond(200, json=collection("taxGroups", groups))
    connector = build(clients)
    found = connector.tax_codes(["standard", "FURNITURE", "REDUCED"])
    assert found["standard"] is not None and found["standard"].usable
    assert found["FURNITURE"] is not None and found["FURNITURE"].name == "Taxable Olympic Furniture (Sales Tax)"
    assert found["REDUCED"] is None
    assert route.call_count == 1
    assert connector.tax_codes([]) == {}  # a company without VAT (US) maps none


# ---------------------------------------------------------------- paging


def test_collections_follow_the_next_link_with_a_page_size_preference(mock, clients):
    """facts.yaml paging-server-driven, next-link-absolute-same-base [assumed]."""
    healthy(mock)
    gl_setup(mock, SETUP)
    page_two = f"{COMPANY_URL}/vendors?$filter=blocked%20eq%20'All'&$select=number,displayName,blocked&$skiptoken=1"

    def pages(request: httpx.Request) -> httpx.Response:
        assert request.headers["Prefer"] == "odata.maxpagesize=1000"
        assert "$skip=" not in str(request.url)
        if "skiptoken" in str(request.url):
            return httpx.Response(200, json=collection("vendors", [entity("vendors", number="V2", blocked="All")]))
        return httpx.Response(200, json=collection("vendors", [entity("vendors", number="V1", blocked="_x0020_")],
                                                   next_link=page_two))  # fmt: skip

    route = mock.get(url__startswith=f"{COMPANY_URL}/vendors?").mock(side_effect=pages)
    connector = build(clients)
    support = connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert route.call_count == 2 and support.notice is not None and "V2" in support.notice


def test_a_next_link_to_another_host_is_not_followed(mock, clients):
    healthy(mock)
    gl_setup(mock, SETUP)
    elsewhere = "https://collector.example.test/v2.0/vendors?$skiptoken=1"
    mock.get(url__startswith=f"{COMPANY_URL}/vendors?").respond(
        200, json=collection("vendors", [], next_link=elsewhere)
    )
    stolen = mock.get(url__startswith="https://collector.example.test/")
    connector = build(clients)
    with pytest.raises(AccountingSystemUnavailable):
        connector.supports(connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert not stolen.called


# ---------------------------------------------------------------- the factory


def test_the_factory_reads_the_companys_secret_and_rereads_it_on_request(clients):
    settings, http = clients
    vault = Vault()
    env = ConnectorEnvironment(settings=settings, http=http, credentials=vault)
    company = config()
    connector = SPEC.create(env, company, False)
    SPEC.create(env, company, True)
    assert isinstance(connector, BusinessCentralConnector) and connector.grant is None
    assert vault.loads == [
        (company.accounting_credentials_secret_id, False),
        (company.accounting_credentials_secret_id, True),
    ]
