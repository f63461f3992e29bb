"""The QuickBooks connector's requests and its simulator's answers, held to Intuit's own
description: the entity XSDs of Intuit's .NET SDK (our extract: vendors/quickbooks/
entities.json, see SOURCE.md) and, for the token endpoint (not in the XSDs), the token
response fields of Intuit's OAuth client SDKs. Facts and their sources: vendors/quickbooks/
facts.yaml."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_preflight.connectors import quickbooks as connector
from sandbox.simulators.base import Exchange
from sandbox.simulators.quickbooks import default_accounts, default_tax_codes
from tests.connectors.conformance import Harness, Traits
from tests.contract import quickbooks_xsd as xsd
from tests.contract.traffic import connector_traffic, drive, row_for

VENDOR = Path(__file__).resolve().parent / "vendors" / "quickbooks"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
_API_PATH = re.compile(
    r"/v3/company/(?P<realm>[0-9]+)/(?:companyinfo/(?P<info>[0-9]+)|(?P<resource>preferences|query))"
)

# The token endpoint's answer (not in the XSDs). Fields as Intuit's SDKs name them:
# .NET IPPDotNetDevKitCSV3/Code/Intuit.Ipp.OAuth2PlatformClient/Helpers/OidcConstants.cs
# (TokenResponse) @859c320925b4213b3438cb216480d18d9242a3a9; oauth-jsclient src/access-token/
# Token.js @26853935a71bf1bf5f11ed0ecbb3c0d4ab87ae03; Java SDK oauth2-platform-api/.../data/
# BearerTokenResponse.java @79b5a3c125b2c1c4828f89142039789b61b47ea4.
TOKEN_FIELDS = {
    "access_token": str,
    "refresh_token": str,
    "token_type": str,
    "expires_in": int,
    "x_refresh_token_expires_in": int,
    "id_token": str,  # only with the openid scope on the authorization-code grant
}
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"  # TokenClient.cs / OAuthClient.js
HARD_EXPIRY_FIELD = "x_refresh_token_hard_expires_in"  # OidcConstants.TokenResponse.RefreshTokenHardExpiresIn
TOKEN_ERROR_FIELDS = {"error": str, "error_description": str}  # OidcConstants.TokenResponse.Error*
# RFC 6749 section 5.2 error codes (OidcConstants.TokenErrors lists the same)
TOKEN_ERRORS = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
                "invalid_scope"}  # fmt: skip

# The gateway's lower-case fault (NOT in the XSDs; field-reported verbatim in
# https://github.com/frappe/erpnext/issues/29161, https://github.com/intuit/oauth-jsclient/issues/2,
# https://github.com/routablehq/python-quickbooks/issues/250): every key seen there.
GATEWAY_KEYS = {"warnings", "intuitObject", "fault", "report", "queryResponse", "batchItemResponse",
                "attachableResponse", "syncErrorResponse", "requestId", "time", "status", "cdcresponse"}  # fmt: skip
GATEWAY_FAULT_KEYS = {"error", "type"}
GATEWAY_ERROR_KEYS = {"message", "detail", "code", "element"}
# Fault types seen in the field beside the XSD's FaultTypeEnum: "SERVICE" (403 3100, the
# issues above, and XML in https://github.com/IntuitDeveloper/QBOConceptsTutorial-PHP/issues/13),
# "AUTHENTICATION" (401 3200, python-quickbooks#250 above).
FIELD_FAULT_TYPES = {"SERVICE", "AUTHENTICATION"}


# ---------------------------------------------------------------- traffic


def traffic() -> tuple[Exchange, ...]:
    return connector_traffic("quickbooks")


def api_exchanges() -> list[Exchange]:
    return [e for e in (*traffic(), *other_realm_traffic()) if e.request.path.startswith("/v3/")]


@cache
def refresh_traffic() -> tuple[Exchange, ...]:
    """A successful refresh (the conformance traits only show refused ones): the healthy
    company's access token expires at Intuit, the connector refreshes it and reads on."""
    row = row_for("quickbooks")
    server = row.simulator().start()
    try:
        harness = Harness(row, server)
        try:
            built = harness.build(Traits())
            for grant in server.grants:
                server.expire_access_token(grant)
            built.connector.authenticate()
        finally:
            harness.close()
        return tuple(e for e in server.exchanges if not e.injected)
    finally:
        server.stop()


@cache
def other_realm_traffic() -> tuple[Exchange, ...]:
    """The consent covers another company than the configured one (the conformance seed does
    not model ``Traits(company="other")`` for QuickBooks): QBO's 403 ApplicationAuthorizationFailed."""
    row = row_for("quickbooks")
    server = row.simulator().start()
    try:
        harness = Harness(row, server)
        try:
            built = harness.build(Traits())
            other = server.add_company(name="Sister Company Ltd")
            for grant in server.grants:
                grant.realm_id = other.realm_id
            drive(built, row)
        finally:
            harness.close()
        return tuple(e for e in server.exchanges if not e.injected)
    finally:
        server.stop()


def token_exchanges() -> list[Exchange]:
    return [e for e in (*traffic(), *refresh_traffic()) if e.request.path == TOKEN_PATH]


def report(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} disagreement(s) with Intuit's description:\n  " + "\n  ".join(failures)


def test_the_traffic_covers_every_call_the_connector_makes():
    seen = set()
    for exchange in api_exchanges():
        match = _API_PATH.fullmatch(exchange.request.path)
        if match and match["info"]:
            seen.add("companyinfo")
        elif match and match["resource"] == "query":
            seen.add(parse_query(exchange.request.param("query") or "")["entity"])
        elif match:
            seen.add(match["resource"])
    assert seen >= {"companyinfo", "preferences", "Account", "TaxCode"}
    shapes = {key for e in api_exchanges() if isinstance(e.response.json, dict) for key in ("Fault", "fault")
              if key in e.response.json}  # fmt: skip
    assert shapes == {"Fault", "fault"}, "both fault shapes (documented and gateway) are in the traffic"
    statuses = {e.response.status for e in token_exchanges()}
    assert 200 in statuses and statuses - {200}, statuses


# ---------------------------------------------------------------- requests


def test_api_requests_are_gets_of_the_documented_resources_with_a_minorversion():
    failures = []
    for exchange in api_exchanges():
        request = exchange.request
        where = f"{request.method} {request.path}"
        match = _API_PATH.fullmatch(request.path)
        if request.method != "GET":
            failures.append(f"{where}: not a GET")
        if match is None:
            failures.append(f"{where}: not /v3/company/{{realmId}}/(companyinfo/{{realmId}}|preferences|query)")
            continue
        if match["info"] is not None and match["info"] != match["realm"]:
            failures.append(f"{where}: companyinfo/{{id}} is the realmId itself")
        expected = {"minorversion", "query"} if match["resource"] == "query" else {"minorversion"}
        if set(request.query) != expected or any(len(values) != 1 for values in request.query.values()):
            failures.append(f"{where}: query parameters {sorted(request.query)} (expected {sorted(expected)})")
        if not re.fullmatch(r"[0-9]+", request.param("minorversion") or ""):
            failures.append(f"{where}: minorversion {request.param('minorversion')!r}")
        if request.headers.get("Accept", "").split(";")[0].strip() != "application/json":
            failures.append(f"{where}: Accept {request.headers.get('Accept')!r} (QBO answers XML otherwise)")
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            failures.append(f"{where}: no bearer token")
        if request.body:
            failures.append(f"{where}: a GET with a body")
    report(failures)


_KEYWORDS = ("startposition", "maxresults", "orderby")


def parse_query(statement: str) -> dict[str, Any]:
    """Intuit's query grammar as far as a read needs it: ``SELECT * | count(*) | f1, f2
    FROM Entity [WHERE f op v [AND f op v]...] [ORDERBY f [ASC|DESC], ...] [STARTPOSITION n]
    [MAXRESULTS n]`` (keywords in any case; names as the XSD spells them)."""
    match = re.fullmatch(
        r"(?is)\s*select\s+(?P<fields>\*|count\(\*\)|[\w.]+(?:\s*,\s*[\w.]+)*)\s+from\s+(?P<entity>\w+)"
        r"(?:\s+where\s+(?P<where>.+?))?(?:\s+orderby\s+(?P<order>[\w.]+(?:\s+(?:asc|desc))?"
        r"(?:\s*,\s*[\w.]+(?:\s+(?:asc|desc))?)*))?"
        r"(?:\s+startposition\s+(?P<start>\d+))?(?:\s+maxresults\s+(?P<max>\d+))?\s*",
        statement,
    )
    if match is None:
        raise ValueError(f"not a query statement: {statement!r}")
    conditions = []
    if match["where"]:
        for part in re.split(r"(?i)\s+and\s+", match["where"]):
            condition = re.fullmatch(
                r"(?is)\s*(?P<field>[\w.]+)\s*(?P<op>=|<=|>=|<|>|\bin\b|\blike\b)\s*(?P<value>.+?)\s*", part
            )
            if condition is None:
                raise ValueError(f"not a condition: {part!r}")
            conditions.append((condition["field"], condition["op"].lower(), condition["value"]))
    fields = [] if match["fields"] in ("*",) or match["fields"].lower() == "count(*)" else match["fields"].split(",")
    order = [item.split()[0] for item in match["order"].split(",")] if match["order"] else []
    return {
        "entity": match["entity"],
        "fields": [f.strip() for f in fields],
        "conditions": conditions,
        "order": order,
        "start": int(match["start"]) if match["start"] else None,
        "max": int(match["max"]) if match["max"] else None,
    }


def _literals(op: str, value: str) -> list[str]:
    if op == "in":
        inner = re.fullmatch(r"\((.*)\)", value.strip(), re.S)
        if inner is None:
            raise ValueError(f"IN needs a parenthesised list, not {value!r}")
        return [item.strip() for item in inner[1].split(",")]
    return [value.strip()]


def query_problems(statement: str) -> list[str]:
    """Where a query statement names what the XSD does not have."""
    try:
        query = parse_query(statement)
    except ValueError as error:
        return [str(error)]
    entities = xsd.queryable_entities()
    entity = query["entity"]
    if entity not in entities:
        return [f"{entity!r} is no entity of the XSD's IntuitObject group"]
    type_name = entities[entity]
    if type_name not in xsd.extract()["complexTypes"]:
        return [f"{entity} is not described in our extract"]
    names = xsd.members(type_name)
    found = []
    for field in [*query["fields"], *query["order"], *(c[0] for c in query["conditions"])]:
        top = field.split(".")[0]
        if top not in names or names[top].attribute:
            found.append(f"{field!r} is no element of {type_name}")
    for field, op, value in query["conditions"]:
        member = names.get(field.split(".")[0])
        if member is None or "." in field:
            continue
        builtin, enumeration = xsd.simple_type_of(member.type)
        for literal in _literals(op, value):
            if builtin == "xs:boolean" and literal.lower() not in ("true", "false"):
                found.append(f"{field} is a boolean: {literal!r}")
            if builtin in ("xs:string",) and not re.fullmatch(r"'.*'", literal, re.S):
                found.append(f"{field} is a string: quote {literal!r}")
            if enumeration and literal.strip("'") not in enumeration:
                found.append(f"{field}: {literal} is not one of {enumeration}")
    if query["start"] is not None and query["start"] < 1:
        found.append("STARTPOSITION counts from 1")
    if query["max"] is not None and not 1 <= query["max"] <= 1000:
        found.append(f"MAXRESULTS {query['max']} (1..1000)")
    return found


def test_query_statements_name_entities_and_fields_the_xsd_has():
    failures = []
    statements = {e.request.param("query") for e in api_exchanges() if e.request.path.endswith("/query")}
    assert statements
    for statement in sorted(s or "" for s in statements):
        failures.extend(f"{statement!r}: {problem}" for problem in query_problems(statement))
    report(failures)


def test_the_connector_pages_name_lists_from_position_1_in_steps_of_maxresults():
    for entity in ("Account", "TaxCode"):
        statement = (
            f"select * from {entity} where Active in (true, false) startposition 1 maxresults {connector.PAGE_SIZE}"  # noqa: S608 - a test statement
        )
        assert query_problems(statement) == []
        assert parse_query(statement)["start"] == 1


@pytest.mark.parametrize(
    "statement",
    [
        "select * from Accounts",  # no such entity
        "select * from Account where active in (true, false)",  # element spelt in another case
        "select * from Account where Actif = true",
        "select * from Account where Active = 'yes'",
        "select * from Account where AccountType = 'Expenses'",  # not an AccountTypeEnum value
        "select * from Account maxresults 1001",
        "select * from Account where domain = 'QBO'",  # an attribute, not an element
    ],
)
def test_the_query_check_rejects_what_the_xsd_does_not_have(statement):
    assert query_problems(statement)


def test_token_requests_are_refresh_grants_in_the_documented_form():
    failures = []
    exchanges = token_exchanges()
    assert exchanges
    for exchange in exchanges:
        request = exchange.request
        form = {k: v for k, v in (p.split("=", 1) for p in request.body.decode().split("&") if "=" in p)}
        if request.method != "POST":
            failures.append(f"token request is a {request.method}")
        if request.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            failures.append(f"token request Content-Type {request.headers.get('Content-Type')!r}")
        if request.headers.get("Accept") != "application/json":
            failures.append(f"token request Accept {request.headers.get('Accept')!r}")
        if not request.headers.get("Authorization", "").startswith("Basic "):
            failures.append("token request without Basic client authentication")
        if set(form) != {"grant_type", "refresh_token"} or form.get("grant_type") != "refresh_token":
            failures.append(f"token request form fields {sorted(form)}")
        header = request.headers.get(HARD_EXPIRY_HEADER)
        if header is not None and header != "true":
            failures.append(f"{HARD_EXPIRY_HEADER}: {header!r} (the SDKs send 'true')")
    report(failures)


# ---------------------------------------------------------------- answers


def answer_problems(exchange: Exchange) -> list[str]:
    """Every way one API answer strays from Intuit's description (or the field-reported gateway shape)."""
    body = exchange.response.json
    where = f"{exchange.response.status} to {exchange.request.method} {exchange.request.path}"
    if not isinstance(body, dict):
        return [f"{where}: not a JSON object"]
    if "fault" in body:  # the gateway's lower-case shape
        return [f"{where}: {p}" for p in gateway_problems(body)]
    found = [f"{where}: {p}" for p in xsd.problems(body, "IntuitResponse")]
    fault = body.get("Fault")
    if isinstance(fault, dict):
        kind = fault.get("type")
        allowed = set(xsd.extract()["simpleTypes"]["FaultTypeEnum"]["enumeration"]) | FIELD_FAULT_TYPES
        if kind not in allowed:
            found.append(f"{where}: Fault type {kind!r} is neither in FaultTypeEnum nor seen in the field {allowed}")
    match = _API_PATH.fullmatch(exchange.request.path)
    if exchange.response.status == 200 and match is not None and "Fault" not in body:
        expected = (
            "CompanyInfo"
            if match["info"]
            else {"preferences": "Preferences", "query": "QueryResponse"}.get(match["resource"] or "")
        )
        if expected not in body:
            found.append(f"{where}: a 200 without {expected}")
        if match["resource"] == "query":
            entity = parse_query(exchange.request.param("query") or "")["entity"]
            rows = set(body.get("QueryResponse", {})) - {"startPosition", "maxResults", "totalCount", "Warnings"}
            if rows - {entity}:
                found.append(f"{where}: QueryResponse carries {sorted(rows)} for a query of {entity}")
    return found


def gateway_problems(body: dict[str, Any]) -> list[str]:
    found = [f"{key!r} is not a key of the field-reported gateway shape" for key in set(body) - GATEWAY_KEYS]
    fault = body.get("fault")
    if not isinstance(fault, dict):
        return [*found, "fault is not an object"]
    found += [f"fault.{key!r} is not a field-reported key" for key in set(fault) - GATEWAY_FAULT_KEYS]
    if fault.get("type") not in FIELD_FAULT_TYPES:
        found.append(f"fault.type {fault.get('type')!r} was not seen in the field ({sorted(FIELD_FAULT_TYPES)})")
    errors = fault.get("error")
    if not isinstance(errors, list) or not errors:
        return [*found, "fault.error is not a non-empty array"]
    for error in errors:
        if not isinstance(error, dict) or set(error) - GATEWAY_ERROR_KEYS or not isinstance(error.get("code"), str):
            found.append(f"fault.error item {error!r} strays from message/detail/code(string)/element")
    if not isinstance(body.get("time"), int):
        found.append("time is epoch milliseconds in the gateway shape")
    return found


def test_every_api_answer_of_the_simulator_is_an_intuit_response_of_the_xsd():
    failures = [p for exchange in (*api_exchanges(), *refresh_api()) for p in answer_problems(exchange)]
    report(failures)


def refresh_api() -> list[Exchange]:
    return [e for e in refresh_traffic() if e.request.path.startswith("/v3/")]


def test_data_answers_are_checked_in_depth():
    """The healthy answers exist in the traffic and hold what the connector reads."""
    bodies = {}
    for exchange in api_exchanges():
        body = exchange.response.json
        if exchange.response.status == 200 and isinstance(body, dict):
            for key in ("CompanyInfo", "Preferences", "QueryResponse"):
                if body.get(key):
                    bodies.setdefault(key if key != "QueryResponse" else next(iter(body[key])), body)
    assert {"CompanyInfo", "Preferences", "Account", "TaxCode"} <= set(bodies)
    for body in bodies.values():
        xsd.check(body, "IntuitResponse")


def test_simulated_book_close_date_is_an_accounting_info_preference():
    body = {"Preferences": {"AccountingInfoPrefs": {"UseAccountNumbers": True, "BookCloseDate": "2025-12-31"}}}
    xsd.check(body, "IntuitResponse")
    exchanges = [e for e in _preferences_with_book_close() if e.request.path.endswith("/preferences")]
    assert exchanges
    for exchange in exchanges:
        report(answer_problems(exchange))
        prefs = exchange.response.json["Preferences"]["AccountingInfoPrefs"]
        assert prefs.get("BookCloseDate") == "2025-12-31"


@cache
def _preferences_with_book_close() -> tuple[Exchange, ...]:
    """The simulator's preferences for a company with a closed period, read by the connector."""
    row = row_for("quickbooks")
    server = row.simulator().start()
    try:
        harness = Harness(row, server)
        try:
            built = harness.build(Traits())
            server.company(built.config.accounting_company_ref or "").book_close_date = "2025-12-31"
            built.connector.accounts(["7"])
        finally:
            harness.close()
        return tuple(server.exchanges)
    finally:
        server.stop()


def token_problems(status: int, body: Any, *, asked_hard_expiry: bool) -> list[str]:
    """Where a token answer strays from the fields Intuit's SDKs read (names compared exactly)."""
    if not isinstance(body, dict):
        return [f"token {status}: not a JSON object"]
    found = []
    if status == 200:
        allowed = dict(TOKEN_FIELDS)
        if asked_hard_expiry:
            allowed[HARD_EXPIRY_FIELD] = int
        found += [f"token 200: {key!r} is not a documented field" for key in sorted(set(body) - set(allowed))]
        for key in ("access_token", "refresh_token", "token_type", "expires_in", "x_refresh_token_expires_in"):
            if key not in body:
                found.append(f"token 200: {key!r} missing")
        if asked_hard_expiry and HARD_EXPIRY_FIELD not in body:
            found.append(f"token 200: asked with {HARD_EXPIRY_HEADER}, but no {HARD_EXPIRY_FIELD}")
        for key, kind in allowed.items():
            if key in body and (not isinstance(body[key], kind) or isinstance(body[key], bool)):
                found.append(f"token 200: {key} is {body[key]!r}, not a {kind.__name__}")
        if str(body.get("token_type", "")).lower() != "bearer":
            found.append(f"token 200: token_type {body.get('token_type')!r}")
    else:
        extra = sorted(set(body) - set(TOKEN_ERROR_FIELDS))
        found += [f"token {status}: {key!r} is not an OAuth error field" for key in extra]
        if body.get("error") not in TOKEN_ERRORS:
            found.append(f"token {status}: error {body.get('error')!r}")
    return found


def test_token_answers_carry_the_documented_fields_only():
    failures = []
    for exchange in token_exchanges():
        asked = exchange.request.headers.get(HARD_EXPIRY_HEADER) == "true"
        failures += token_problems(exchange.response.status, exchange.response.json, asked_hard_expiry=asked)
    report(failures)


def test_the_hard_expiry_field_is_checked_by_its_sdk_name():
    body = {"token_type": "bearer", "expires_in": 3600, "refresh_token": "r", "access_token": "a",
            "x_refresh_token_expires_in": 8640000}  # fmt: skip
    assert token_problems(200, body, asked_hard_expiry=False) == []
    assert token_problems(200, body, asked_hard_expiry=True) == [
        f"token 200: asked with {HARD_EXPIRY_HEADER}, but no {HARD_EXPIRY_FIELD}"
    ]
    assert token_problems(200, {**body, HARD_EXPIRY_FIELD: 157680000}, asked_hard_expiry=True) == []
    lifetime = {**body, "x_refresh_token_lifetime_expires_in": 157680000}  # oauth-jsclient's old name
    assert token_problems(200, lifetime, asked_hard_expiry=True) != []


# ---------------------------------------------------------------- strictness


def _recorded(key: str) -> dict[str, Any]:
    for exchange in api_exchanges():
        body = exchange.response.json
        if exchange.response.status == 200 and isinstance(body, dict) and body.get(key):
            return copy.deepcopy(body)
    raise AssertionError(f"no recorded answer with {key}")


def _rename(obj: dict[str, Any], old: str, new: str) -> None:
    obj[new] = obj.pop(old)


def test_a_recorded_answer_with_one_key_in_another_case_fails():
    body = _recorded("CompanyInfo")
    xsd.check(body, "IntuitResponse")
    _rename(body["CompanyInfo"], "CompanyName", "Companyname")
    problems = xsd.problems(body, "IntuitResponse")
    assert problems == [
        "$.CompanyInfo: 'Companyname' is no element or attribute of CompanyInfo (the XSD spells it 'CompanyName')"
    ]


def test_book_close_date_in_another_case_fails():
    body = _recorded("Preferences")
    body["Preferences"]["AccountingInfoPrefs"]["Bookclosedate"] = "2025-12-31"
    assert any("'Bookclosedate'" in p and "'BookCloseDate'" in p for p in xsd.problems(body, "IntuitResponse"))
    del body["Preferences"]["AccountingInfoPrefs"]["Bookclosedate"]
    body["Preferences"]["AccountingInfoPrefs"]["BookCloseDate"] = "2025-12-31"
    assert xsd.problems(body, "IntuitResponse") == []


def test_a_recorded_query_answer_with_one_nested_key_renamed_fails():
    body = _recorded("QueryResponse")
    entity = next(k for k in body["QueryResponse"] if isinstance(body["QueryResponse"][k], list))
    row = body["QueryResponse"][entity][0]
    _rename(row, "Active", "active")
    assert any("'active'" in p for p in xsd.problems(body, "IntuitResponse"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["CompanyInfo"].update(NameValue={"Name": "a", "Value": "b"}), "renders it as an array"),
        (lambda b: b["CompanyInfo"].update(CompanyName=["x"]), "an array is not allowed"),
        (lambda b: b["CompanyInfo"].update(SampleFile="false"), "expected a boolean"),
        (lambda b: b["CompanyInfo"].update(CompanyStartDate="31/12/2025"), "expected a date"),
        (lambda b: b["CompanyInfo"].update(FiscalYearStartMonth="Apr"), "MonthEnum"),
        (lambda b: b["CompanyInfo"].update(LegalName=None), "null"),
        (lambda b: b.update(Invoice={}), "one branch of its choice"),
        (lambda b: b.update(time=1633520295688), "expected an ISO dateTime"),
    ],
)
def test_the_validator_checks_kinds_repetition_and_enumerations(mutate, expected):
    body = _recorded("CompanyInfo")
    mutate(body)
    assert any(expected in p for p in xsd.problems(body, "IntuitResponse")), xsd.problems(body, "IntuitResponse")


def test_unexpected_types_and_required_attributes_fail():
    assert any("not described" in p for p in xsd.problems({"Invoice": {"Id": "1"}}, "IntuitResponse"))
    assert any("requires 'code'" in p for p in xsd.problems({"Fault": {"Error": [{"Message": "m"}]}}, "IntuitResponse"))
    assert any("AccountTypeEnum" in p for p in xsd.problems({"AccountType": "Expenses"}, "Account"))
    assert xsd.problems({"CurrencyRef": {"value": "GBP", "name": "British Pound Sterling"}}, "Account") == []
    assert xsd.problems({"CurrencyRef": {"Value": "GBP"}}, "Account")


def test_a_recorded_token_answer_with_a_field_in_another_case_fails():
    answers = [e for e in token_exchanges() if e.response.status == 200]
    assert answers
    renamed = dict(answers[0].response.json)
    renamed["X_refresh_token_expires_in"] = renamed.pop("x_refresh_token_expires_in")
    problems = token_problems(200, renamed, asked_hard_expiry=False)
    assert "token 200: 'X_refresh_token_expires_in' is not a documented field" in problems
    assert "token 200: 'x_refresh_token_expires_in' missing" in problems


# ---------------------------------------------------------------- facts the connector relies on


def test_the_connector_reads_only_names_the_xsd_has():
    reads = {
        "CompanyInfo": {"CompanyName", "LegalName", "Country", "NameValue", "CompanyAddr", "LegalAddr"},
        "NameValue": {"Name", "Value"},
        "PhysicalAddress": {"Country", "CountryCode"},
        "Preferences": {"AccountingInfoPrefs", "TaxPrefs", "CurrencyPrefs"},
        "CompanyAccountingPrefs": {"UseAccountNumbers", "BookCloseDate"},
        "Account": {"Id", "AcctNum", "Name", "AccountType", "Active"},
        "TaxCode": {"Id", "Name", "Active", "PurchaseTaxRateList", "SalesTaxRateList"},
        "TaxRateList": {"TaxRateDetail"},
        "QueryResponse": {"Account", "TaxCode", "startPosition", "maxResults"},
        "Fault": {"Error", "type"},
        "Error": {"Message", "Detail", "code"},
    }
    missing = {t: sorted(names - set(xsd.members(t))) for t, names in reads.items() if names - set(xsd.members(t))}
    assert missing == {}
    assert xsd.members("CompanyAccountingPrefs")["BookCloseDate"].type == "xs:date"
    assert xsd.members("TaxRateList")["TaxRateDetail"].repeated


def test_the_suitable_account_types_are_account_type_enum_values():
    values = set(xsd.extract()["simpleTypes"]["AccountTypeEnum"]["enumeration"])
    for role, types in connector.SUITABLE_TYPES.items():
        assert set(types) <= values, (role, set(types) - values)


def test_the_simulators_seed_rows_are_valid_entities():
    failures = []
    for index, row in enumerate(default_accounts()):
        failures += [f"default_accounts()[{index}]: {p}" for p in xsd.problems(row, "Account")]
    for index, row in enumerate(default_tax_codes()):
        failures += [f"default_tax_codes()[{index}]: {p}" for p in xsd.problems(row, "TaxCode")]
    report(failures)


def test_the_fault_types_the_connector_names_are_the_xsds_or_field_reported():
    """The XSD spells the authorization fault ``AuthorizatonFault`` (sic), and so did a
    captured answer (https://github.com/minimul/qbo_api/issues/96)."""
    enumeration = xsd.extract()["simpleTypes"]["FaultTypeEnum"]["enumeration"]
    assert "AuthorizatonFault" in enumeration and "AuthorizationFault" not in enumeration
    fault = connector.read_fault({"Fault": {"Error": [{"code": "120"}], "type": "AuthorizatonFault"}})
    assert connector._user_refused(fault)  # caught by its code 120 whatever the spelling


# ---------------------------------------------------------------- the extract and the facts list


def _facts() -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = yaml.safe_load((VENDOR / "facts.yaml").read_text(encoding="utf-8"))
    return facts


def test_the_extract_names_its_source_and_source_md_agrees():
    source = xsd.extract()["source"]
    text = (VENDOR / "SOURCE.md").read_text(encoding="utf-8")
    assert source["repo"] == "intuit/QuickBooks-V3-DotNET-SDK"
    assert source["commit"] in text and source["path"] in text


def test_every_fact_is_well_formed_and_every_assumed_deciding_fact_names_a_test_that_exists():
    here = Path(__file__).resolve().parents[2]
    ids = set()
    for fact in _facts():
        assert set(fact) <= {"id", "fact", "kind", "source", "decides_outcome", "test"}, fact
        assert fact["id"] not in ids, fact["id"]
        ids.add(fact["id"])
        assert fact["kind"] in ("vendor", "assumed") and isinstance(fact["decides_outcome"], bool), fact
        if fact["kind"] == "vendor":
            assert fact.get("source"), fact
        else:
            assert "source" not in fact, fact
            if fact["decides_outcome"]:
                assert fact.get("test"), fact
        if fact.get("test"):
            path, _, name = fact["test"].partition("::")
            assert (here / path).exists(), fact["test"]
            assert re.search(rf"def {re.escape(name.split('[')[0])}\(", (here / path).read_text()), fact["test"]


def test_the_extract_is_compact_and_not_a_copy():
    text = (VENDOR / "entities.json").read_text(encoding="utf-8")
    assert "<xs:" not in text and "documentation" not in text
    data = json.loads(text)
    assert set(data) == {"source", "substitutionGroups", "complexTypes", "simpleTypes", "opaqueTypes"}
