"""The Xero connector and its simulator, held to Xero's own published description.

Every exchange the connector has with the simulator over a preflight (``connector_traffic``:
every call, for a healthy organisation and for each unhealthy trait) is validated with
openapi-core against our extract of XeroAPI/Xero-OpenAPI (``vendors/xero/``; SOURCE.md says
which commit and how the extract was made):

- each Accounting API request (method, path, ``xero-tenant-id``, query, body) and each
  ``GET /connections`` request against the operation Xero describes;
- each answer whose status Xero describes for that operation: only 200s, since Xero's
  description gives no 401/403/429 for these operations. Those answers have nothing of
  Xero's to be held to (they stay assumptions, see facts.yaml);
  ``test_only_error_answers_go_undescribed`` makes sure nothing but 4xx escapes validation;
- the token endpoint (``POST identity.xero.com/connect/token``), which no Xero OpenAPI file
  describes as an operation: its requests against RFC 6749 §6 as Xero's guides use it, its
  answers against the ``AccessToken`` schema of Xero's identity description.

The extracts close every object (``additionalProperties: false``): a field Xero does not list,
or one spelt in another case, fails (``test_validation_is_strict``).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import MissingRequiredParameter
from openapi_core.validation.response.exceptions import InvalidData
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_schema

from sandbox.simulators.base import Exchange, Headers, SimRequest, SimResponse
from tests.connectors.conformance import Harness, Traits
from tests.contract.openapi import load_openapi, validate_request, validate_response
from tests.contract.traffic import connector_traffic, drive, row_for

VENDOR = Path(__file__).resolve().parent / "vendors" / "xero"
ACCOUNTING_SERVER = "https://api.xero.com/api.xro/2.0"
IDENTITY_SERVER = "https://api.xero.com"
ACCOUNTING_PREFIX = "/api.xro/2.0"
CONNECTIONS = "/Connections"
"""Xero's identity description spells the path ``/Connections``; the connector (like Xero's guides)
sends ``/connections``. Xero's routes are case-insensitive; the request is validated in the
description's spelling (``spec_path``), everything else about it as sent."""
TOKEN_PATH = "/connect/token"
FORMATS = OAS30Validator.FORMAT_CHECKER


def accounting() -> OpenAPI:
    return load_openapi(VENDOR / "accounting.openapi.yaml")


def identity() -> OpenAPI:
    return load_openapi(VENDOR / "identity.openapi.yaml")


def described_operations(openapi: OpenAPI) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in a description."""
    paths = (openapi.spec / "paths").read_value()
    return {(method.upper(), path) for path, item in paths.items() for method in item if method != "parameters"}


def described_statuses(openapi: OpenAPI, method: str, path: str) -> set[int]:
    responses = (openapi.spec / "paths" / path / method.lower() / "responses").read_value()
    return {int(status) for status in responses}


def target(request: SimRequest) -> tuple[str, OpenAPI, str, str] | None:
    """(kind, description, server, path in the description) of a recorded request; ``None``
    for the token endpoint, which is in no description."""
    if request.path.startswith(f"{ACCOUNTING_PREFIX}/"):
        return "accounting", accounting(), ACCOUNTING_SERVER, request.path.removeprefix(ACCOUNTING_PREFIX)
    if request.path.lower() == CONNECTIONS.lower():
        return "identity", identity(), IDENTITY_SERVER, CONNECTIONS
    assert request.path == TOKEN_PATH, f"the connector called {request.method} {request.path}, which nothing describes"
    return None


def spec_request(request: SimRequest, path: str) -> SimRequest:
    """The recorded request, its path in the description's spelling (see ``CONNECTIONS``)."""
    full = f"{ACCOUNTING_PREFIX}{path}" if request.path.startswith(f"{ACCOUNTING_PREFIX}/") else path
    return dataclasses.replace(request, path=full)


def traffic() -> tuple[Exchange, ...]:
    return connector_traffic("xero")


def failures(exchanges: Iterable[Exchange], check: Callable[[Exchange], None]) -> list[str]:
    found = []
    for exchange in exchanges:
        try:
            check(exchange)
        except Exception as error:  # every mismatch, reported together
            request = exchange.request
            found.append(f"{request.method} {request.path} -> {exchange.response.status}: {error!r}"[:2000])
    return found


def api_exchanges() -> list[Exchange]:
    return [exchange for exchange in traffic() if target(exchange.request) is not None]


def token_exchanges() -> list[Exchange]:
    return [exchange for exchange in traffic() if exchange.request.path == TOKEN_PATH]


def check_request(exchange: Exchange) -> None:
    found = target(exchange.request)
    assert found is not None
    _, openapi, server, path = found
    validate_request(openapi, server, spec_request(exchange.request, path))


def check_answer(exchange: Exchange) -> None:
    found = target(exchange.request)
    assert found is not None
    _, openapi, server, path = found
    if exchange.response.status in described_statuses(openapi, exchange.request.method, path):
        validate_response(openapi, server, spec_request(exchange.request, path), exchange.response)


# ------------------------------------------------------------------ the traffic covers the extract


def test_the_traffic_reaches_every_operation_of_the_extract_with_a_described_answer():
    seen = set()
    for exchange in api_exchanges():
        found = target(exchange.request)
        assert found is not None
        _, openapi, _, path = found
        if exchange.response.status in described_statuses(openapi, exchange.request.method, path):
            seen.add((exchange.request.method, path))
    assert seen == described_operations(accounting()) | described_operations(identity())


def test_the_extract_describes_only_what_the_connector_calls():
    called = set()
    for exchange in api_exchanges():
        found = target(exchange.request)
        assert found is not None
        called.add((exchange.request.method, found[3]))
    assert described_operations(accounting()) | described_operations(identity()) == called


# ------------------------------------------------------------------ requests and answers


def test_every_request_the_connector_sends_matches_xeros_description():
    exchanges = api_exchanges()
    assert exchanges
    assert failures(exchanges, check_request) == []


def test_every_accounting_request_names_the_tenant_and_carries_the_bearer_token():
    for exchange in api_exchanges():
        request = exchange.request
        assert request.headers.get("Authorization", "").startswith("Bearer ")
        if request.path.startswith(f"{ACCOUNTING_PREFIX}/"):
            assert request.headers.get("xero-tenant-id")
        else:  # /connections is per user, not per organisation
            assert "xero-tenant-id" not in request.headers


def test_every_described_answer_of_the_simulator_matches_xeros_description():
    assert failures(api_exchanges(), check_answer) == []


def test_only_error_answers_go_undescribed():
    """Xero's description gives only 200 for these operations: no 401, 403 or 429 body is
    described anywhere in it, so those answers are not validated (SOURCE.md)."""
    undescribed = set()
    for exchange in api_exchanges():
        found = target(exchange.request)
        assert found is not None
        _, openapi, _, path = found
        if exchange.response.status not in described_statuses(openapi, exchange.request.method, path):
            undescribed.add(exchange.response.status)
    assert undescribed, "the traffic should include refusals (401/403)"
    assert all(400 <= status < 500 for status in undescribed), undescribed


# ------------------------------------------------------------------ the token endpoint


def access_token_schema() -> dict[str, Any]:
    """Xero's ``AccessToken`` (identity description) plus ``scope``, which that schema omits but
    the token answer carries (RFC 6749 §5.1 when it differs from the request; see facts.yaml)."""
    schema = copy.deepcopy((identity().spec / "components" / "schemas" / "AccessToken").read_value())
    schema["properties"]["scope"] = {"type": "string"}
    return schema


def fresh_token_exchanges() -> list[Exchange]:
    """A preflight whose stored access token has expired: the connector refreshes it."""
    row = row_for("xero")
    server = row.simulator().start()
    try:
        harness = Harness(row, server)
        try:
            built = harness.build(Traits())
            server.advance(1801)  # type: ignore[attr-defined]
            drive(built, row)
        finally:
            harness.close()
        return [exchange for exchange in server.exchanges if exchange.request.path == TOKEN_PATH]
    finally:
        server.stop()


def check_token_request(request: SimRequest) -> None:
    """RFC 6749 §6, as Xero's guides use it: a form POST with HTTP Basic client credentials."""
    assert request.method == "POST"
    assert request.headers.get("Content-Type", "").split(";")[0] == "application/x-www-form-urlencoded"
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    assert scheme == "Basic"
    client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
    assert client_id and secret
    form = parse_qs(request.body.decode())
    assert set(form) == {"grant_type", "refresh_token"}, form
    assert form["grant_type"] == ["refresh_token"]
    assert len(form["refresh_token"]) == 1 and form["refresh_token"][0]


def test_token_requests_are_refresh_grants_with_basic_client_credentials():
    exchanges = token_exchanges() + fresh_token_exchanges()
    assert exchanges
    for exchange in exchanges:
        check_token_request(exchange.request)


def test_the_token_answer_has_xeros_access_token_fields():
    answers = [exchange.response for exchange in fresh_token_exchanges() if exchange.response.status == 200]
    assert answers, "the expired token should have been refreshed"
    for answer in answers:
        validate_schema(answer.json, access_token_schema(), cls=OAS30Validator, format_checker=FORMATS)
        assert answer.json["token_type"] == "Bearer"
        assert answer.json["expires_in"] == 1800


def test_refused_refreshes_answer_an_oauth_error():
    refused = [exchange.response for exchange in token_exchanges() if exchange.response.status != 200]
    assert refused, "the rejected and revoked traits refuse the refresh"
    for answer in refused:
        assert answer.status == 400
        assert isinstance(answer.json, dict) and answer.json.get("error") == "invalid_grant"


# ------------------------------------------------------------------ the validation is strict


def schema_errors(check: Callable[[Exchange], None], exchange: Exchange) -> list[str]:
    """The first line of each schema error ``check`` raises for ``exchange`` (it must raise)."""
    with pytest.raises(InvalidData) as raised:
        check(exchange)
    cause = raised.value.__cause__
    return [str(error).splitlines()[0] for error in getattr(cause, "schema_errors", ())]


def first_answer(path: str) -> Exchange:
    return next(e for e in api_exchanges() if e.request.path == path and e.response.status == 200)


def renamed(body: Any, collection: str, field: str, new: str) -> Any:
    body = copy.deepcopy(body)
    item = body[collection][0]
    item[new] = item.pop(field)
    return body


@pytest.mark.parametrize(
    ("path", "collection", "field", "new"),
    [
        (f"{ACCOUNTING_PREFIX}/Accounts", "Accounts", "Code", "code"),
        (f"{ACCOUNTING_PREFIX}/Accounts", "Accounts", "Status", "status"),
        (f"{ACCOUNTING_PREFIX}/TaxRates", "TaxRates", "TaxType", "TaxTYPE"),
        (f"{ACCOUNTING_PREFIX}/TaxRates", "TaxRates", "CanApplyToExpenses", "CanApplyToExpense"),
        (f"{ACCOUNTING_PREFIX}/Organisation", "Organisations", "Name", "name"),
        (f"{ACCOUNTING_PREFIX}/Organisation/Actions", "Actions", "Status", "status"),
    ],
)
def test_validation_is_strict_a_field_in_another_case_fails(path, collection, field, new):
    exchange = first_answer(path)
    check_answer(exchange)  # the recorded answer passes...
    changed = Exchange(
        exchange.request, SimResponse(200, renamed(exchange.response.json, collection, field, new)), False
    )
    assert f"Additional properties are not allowed ('{new}' was unexpected)" in schema_errors(check_answer, changed)


@pytest.mark.parametrize(
    ("path", "collection", "field", "value"),
    [
        (f"{ACCOUNTING_PREFIX}/Accounts", "Accounts", "Status", "INACTIVE"),
        (f"{ACCOUNTING_PREFIX}/Accounts", "Accounts", "Type", "Expense"),
        (f"{ACCOUNTING_PREFIX}/TaxRates", "TaxRates", "Status", "INACTIVE"),
        (f"{ACCOUNTING_PREFIX}/Organisation/Actions", "Actions", "Status", "NOT_ALLOWED"),
        (f"{ACCOUNTING_PREFIX}/Organisation", "Organisations", "CountryCode", "UK"),
    ],
)
def test_validation_is_strict_a_value_outside_xeros_enum_fails(path, collection, field, value):
    exchange = first_answer(path)
    body = copy.deepcopy(exchange.response.json)
    body[collection][0][field] = value
    errors = schema_errors(check_answer, Exchange(exchange.request, SimResponse(200, body), False))
    assert any(error.startswith(f"'{value}' is not one of") for error in errors), errors


def test_validation_is_strict_a_connections_item_with_a_misspelt_field_fails():
    exchange = next(e for e in api_exchanges() if e.request.path.lower() == "/connections" and e.response.status == 200)
    check_answer(exchange)
    body = copy.deepcopy(exchange.response.json)
    body[0]["tenantID"] = body[0].pop("tenantId")
    errors = schema_errors(check_answer, Exchange(exchange.request, SimResponse(200, body), False))
    assert "Additional properties are not allowed ('tenantID' was unexpected)" in errors


def test_validation_is_strict_a_request_without_the_tenant_header_fails():
    exchange = first_answer(f"{ACCOUNTING_PREFIX}/Accounts")
    raw = [(name, value) for name, value in exchange.request.headers.raw_items() if name.lower() != "xero-tenant-id"]
    request = dataclasses.replace(exchange.request, headers=Headers(raw))
    with pytest.raises(MissingRequiredParameter, match="xero-tenant-id"):
        check_request(Exchange(request, exchange.response, False))


def test_validation_is_strict_a_path_in_another_case_is_not_found_for_the_accounting_api():
    exchange = first_answer(f"{ACCOUNTING_PREFIX}/TaxRates")
    request = dataclasses.replace(exchange.request, path=f"{ACCOUNTING_PREFIX}/taxrates")
    with pytest.raises(PathNotFound):
        validate_request(accounting(), ACCOUNTING_SERVER, request)


def test_validation_is_strict_an_undescribed_status_is_not_validated_silently():
    exchange = first_answer(f"{ACCOUNTING_PREFIX}/Accounts")
    with pytest.raises(ResponseNotFound):
        validate_response(accounting(), ACCOUNTING_SERVER, exchange.request, SimResponse(401, {"Detail": "x"}))


# ------------------------------------------------------------------ the simulator beyond the preflight's seed


def test_simulator_answers_for_a_varied_organisation_match_xeros_description():
    """States the conformance seed does not reach: another country and currency, a demo
    company on another plan with lock dates, an action NOT-ALLOWED, custom and archived tax
    rates, system, archived and credit-card accounts."""
    from sandbox.simulators.xero import XeroSimulator, account, tax_rate

    with XeroSimulator() as xero:
        xero.add_app("client", "secret")
        organisation = xero.add_organisation(
            name="Kiwi Demo",
            country="NZ",
            base_currency="NZD",
            is_demo=True,
            edition_class="STARTER",
            period_lock_date="2026-03-31",
            end_of_year_lock_date="2025-03-31",
            actions={"CreateApprovedBill": "NOT-ALLOWED"},
        )
        organisation.tax_rates.append(tax_rate("TAX002", "Custom 5%", 5.0))
        organisation.tax_rates.append(tax_rate("TAX003", "Old sales rate", 5.0, status="ARCHIVED", expenses=False))
        organisation.accounts.append(account("310", "Old stock", "INVENTORY", status="DELETED"))
        organisation.accounts.append(account("620", "Card", "BANK", BankAccountType="CREDITCARD", CurrencyCode="NZD"))
        grant = xero.grant(client_id="client", tenant_ids=[organisation.tenant_id], scopes="accounting.settings.read")
        headers = {"Authorization": f"Bearer {grant.access_token}", "xero-tenant-id": organisation.tenant_id}
        with httpx.Client(base_url=xero.base_url, timeout=5) as http:
            checked = []
            for path in ("/Organisation", "/Organisation/Actions", "/Accounts", "/TaxRates"):
                response = http.get(f"{ACCOUNTING_PREFIX}{path}", headers=headers)
                assert response.status_code == 200, response.text
                validate_request(accounting(), ACCOUNTING_SERVER, response.request)
                validate_response(accounting(), ACCOUNTING_SERVER, response.request, response)
                checked.append(path)
            response = http.get(CONNECTIONS, headers={"Authorization": headers["Authorization"]})
            validate_request(identity(), IDENTITY_SERVER, response.request)
            validate_response(identity(), IDENTITY_SERVER, response.request, response)
            checked.append(CONNECTIONS)
    assert len(checked) == 5


@pytest.mark.parametrize(
    ("name", "schema"),
    [("ORGANISATION", "Organisations"), ("ACTIONS", "Actions"), ("ACCOUNTS", "Accounts"), ("TAX_RATES", "TaxRates")],
)
def test_the_unit_tests_canned_answers_match_xeros_description(name, schema):
    """The bodies tests/unit/test_xero_connector.py serves with respx are Xero-shaped too."""
    from tests.unit import test_xero_connector

    components = (accounting().spec / "components").read_value()
    root = {"components": components, "allOf": [{"$ref": f"#/components/schemas/{schema}"}]}
    validate_schema(getattr(test_xero_connector, name), root, cls=OAS30Validator, format_checker=FORMATS)
