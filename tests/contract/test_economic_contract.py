"""The e-conomic connector and its simulator, held to e-conomic's own published description.

``vendors/economic/`` holds our extract of e-conomic's draft-03 JSON schemas
(``restapi.e-conomic.com/schema/*.get.schema.json``) for the resources the connector reads,
the collection envelope, the documented error body and what restdocs asks of a request
(``SOURCE.md`` says where each came from). Every exchange the connector has with its
simulator is checked: each request against ``requests.json`` and the filterable properties
of the schemas, each answer against the schema of its resource (``additionalProperties:
false``, so a misspelt or differently-cased member fails) or, when it is an error, against
the error body.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft3Validator
from pydantic import SecretStr

from export_preflight.connectors.economic import EconomicConnector, EconomicCredentials
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.http import new_client
from export_preflight.models import Capability
from sandbox.simulators.base import Exchange, SimRequest, SimResponse
from sandbox.simulators.economic import EconomicSimulator
from tests.contract.traffic import connector_traffic
from tests.unit.fakes import configuration

VENDOR = Path(__file__).parent / "vendors" / "economic"
REQUESTS: dict[str, Any] = json.loads((VENDOR / "requests.json").read_text())
_PREDICATE = re.compile(r"^([A-Za-z][A-Za-z0-9_.]*)\$([a-z]+):(.*)$", re.DOTALL)


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VENDOR / name).read_text())
    Draft3Validator.check_schema(loaded)
    return loaded


def problems(name: str, body: Any) -> list[str]:
    """Where ``body`` breaks the extract ``name`` (empty: it conforms)."""
    validator = Draft3Validator(schema(name))
    return [
        f"{name}: /{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(body)
    ]


def filterable(resource_schema: dict[str, Any]) -> dict[str, Any]:
    """The properties of a collection's items that e-conomic marks ``filterable``, with their type."""
    found: dict[str, Any] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, prop in properties.items():
            if prop.get("filterable"):
                found[prefix + name] = prop.get("type", "string")  # an untyped enum is text
            if "properties" in prop:
                walk(prop["properties"], f"{prefix}{name}.")

    walk(resource_schema["properties"]["collection"]["items"]["properties"], "")
    return found


def _split(text: str, separators: tuple[str, ...]) -> Iterator[str]:
    """``text`` split at unescaped top-level ``separators``; parentheses and brackets are kept."""
    depth, start, index = 0, 0, 0
    while index < len(text):
        if text[index] == "$" and index + 1 < len(text) and text[index + 1] in "$()*,[]":
            index += 2
            continue
        if text[index] in "([":
            depth += 1
        elif text[index] in ")]":
            depth -= 1
        elif depth == 0 and (separator := next((s for s in separators if text.startswith(s, index)), None)):
            yield text[start:index]
            index += len(separator)
            start = index
            continue
        index += 1
    yield text[start:]


def filter_problems(text: str, fields: dict[str, Any]) -> list[str]:
    """What breaks restdocs "Filtering" in a ``filter`` expression on a collection with ``fields``."""
    rules = REQUESTS["filter"]
    out: list[str] = []
    for term in _split(text, tuple(f"${c}:" for c in rules["connectives"])):
        term = term.strip()
        if term.startswith("(") and term.endswith(")"):
            out.extend(filter_problems(term[1:-1], fields))
            continue
        match = _PREDICATE.match(term)
        if match is None:
            out.append(f"{term!r} is not property$operator:value")
            continue
        name, op, value = match.groups()
        if op not in rules["operators"]:
            out.append(f"{op!r} is not an e-conomic filter operator")
        if name not in fields:
            out.append(f"{name!r} is not filterable (filterable: {sorted(fields)})")
            continue
        if op in ("in", "nin"):
            if rules["in_numeric_only"] and fields[name] not in ("integer", "number"):
                out.append(f"${op}: on the non-numeric property {name!r}")
            if not (value.startswith("[") and value.endswith("]")):
                out.append(f"${op}: takes a [list], got {value!r}")
            elif len(list(_split(value[1:-1], (",",)))) > rules["in_max_values"]:
                out.append(f"${op}: with more than {rules['in_max_values']} values")
    return out


def request_problems(request: SimRequest) -> list[str]:
    """Where a request breaks what e-conomic documents for the resources the connector reads."""
    out: list[str] = []
    resource = REQUESTS["resources"].get(request.path)
    if resource is None:
        return [f"{request.method} {request.path}: not a resource of the extract"]
    if request.method not in resource["methods"]:
        out.append(f"{request.method} {request.path}: method not described")
    for name, rule in REQUESTS["headers"].items():
        value = request.headers.get(name)
        if rule.get("required") and not value:
            out.append(f"header {name} missing")
        elif "value" in rule and value != rule["value"]:
            out.append(f"header {name} is {value!r}, not {rule['value']!r}")
    if request.body.strip():
        out.append("a GET carries a body")
    allowed = REQUESTS["collection_query"] if resource["collection"] else {}
    for name, values in request.query.items():
        rule = allowed.get(name)
        if rule is None:
            out.append(f"query parameter {name!r} is not documented for {request.path} (documented: {sorted(allowed)})")
            continue
        for value in values:
            if name == "filter":
                out.extend(filter_problems(value, filterable(schema(resource["schema"]))))
            elif name in ("pagesize", "skippages"):
                if not value.isdigit():
                    out.append(f"{name}={value!r} is not a whole number")
                elif not rule.get("minimum", 0) <= int(value) <= rule.get("maximum", int(value)):
                    out.append(f"{name}={value} is outside {rule}")
    return out


def answer_problems(request: SimRequest, response: SimResponse) -> list[str]:
    """Where an answer breaks e-conomic's schema for it (or its documented error body)."""
    resource = REQUESTS["resources"].get(request.path)
    if resource is None:
        return [f"{request.path}: not a resource of the extract"]
    if response.status == 200:
        out = problems(resource["schema"], response.json)
        if resource["collection"]:
            out += problems("collection.schema.json", response.json)
        return out
    out = problems("error.schema.json", response.json)
    if isinstance(response.json, dict) and response.json.get("httpStatusCode") != response.status:
        out.append(f"httpStatusCode {response.json.get('httpStatusCode')!r} is not the status {response.status}")
    return out


# ------------------------------------------------------------------ the traffic


def bookkeeping_traffic() -> list[Exchange]:
    """An app with the Bookkeeping role (no /self): the fallback probe and every look-up."""
    server = EconomicSimulator().start()
    try:
        server.add_agreement(
            app_secret_token="app-bookkeeping",
            agreement_grant_token="grant-bookkeeping",
            agreement_number=100003,
            company_name="Bogholderi ApS",
            roles=("Bookkeeping",),
        )
        credentials = EconomicCredentials(
            appSecretToken=SecretStr("app-bookkeeping"), agreementGrantToken=SecretStr("grant-bookkeeping")
        )
        config = configuration(accountingCompanyRef="100003", mappings={"journal": 1, "vendorJournal": 2})
        with new_client(server.base_url, timeout_seconds=5) as http:
            connector = EconomicConnector(http, credentials, config)
            profile = connector.authenticate()
            for capability in Capability:
                connector.supports(profile, capability)
            try:
                connector.accounts(["5820", "9999", "4242"])
                connector.tax_codes(["I25", "X99"])
            except (AccountingSystemError, AccountingSystemUnavailable):
                pass
        return [exchange for exchange in server.exchanges if not exchange.injected]
    finally:
        server.stop()


@cache
def traffic() -> tuple[Exchange, ...]:
    return (*connector_traffic("economic"), *bookkeeping_traffic())


def test_the_traffic_reaches_every_described_resource_and_answer():
    seen = {(exchange.request.path, exchange.response.status) for exchange in traffic()}
    paths = {path for path, _ in seen}
    assert paths == set(REQUESTS["resources"])
    assert {status for _, status in seen} >= {200, 401, 403}
    assert ("/self", 403) in seen  # the Bookkeeping role's fallback was exercised


def test_every_request_is_one_e_conomic_describes():
    found = [
        f"{exchange.request.method} {exchange.request.path}?{exchange.request.query}: {problem}"
        for exchange in traffic()
        for problem in request_problems(exchange.request)
    ]
    assert found == []


def test_every_answer_the_simulator_gave_follows_e_conomics_schemas():
    found = [
        f"{exchange.request.path} -> {exchange.response.status}: {problem}"
        for exchange in traffic()
        for problem in answer_problems(exchange.request, exchange.response)
    ]
    assert found == []


def test_error_answers_carry_e_conomics_error_body():
    errors = [exchange for exchange in traffic() if exchange.response.status >= 400]
    assert {exchange.response.status for exchange in errors} >= {401, 403}
    for exchange in errors:
        assert answer_problems(exchange.request, exchange.response) == []


# ------------------------------------------------------------------ the checks are strict


def recorded(path: str, status: int = 200) -> Exchange:
    return next(e for e in traffic() if e.request.path == path and e.response.status == status and e.response.json)


def renamed(body: Any, where: tuple[str | int, ...], old: str, new: str) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for part in where:
        target = target[part]
    target[new] = target.pop(old)
    return changed


@pytest.mark.parametrize(
    ("path", "where", "old", "new"),
    [
        ("/accounts", ("collection", 0), "accountNumber", "AccountNumber"),
        ("/accounts", ("collection", 0), "blockDirectEntries", "blockdirectentries"),
        ("/vat-accounts", ("collection", 0), "vatCode", "VatCode"),
        ("/journals", ("collection", 0), "journalNumber", "journalnumber"),
        ("/journals", ("collection", 0, "settings"), "voucherNumbers", "VoucherNumbers"),
        ("/self", (), "agreementNumber", "AgreementNumber"),
        ("/self", ("application", "requiredRoles", 0), "name", "Name"),
        ("/accounts", ("pagination",), "skipPages", "skippages"),
    ],
)
def test_a_recorded_answer_with_a_member_in_another_case_fails(path, where, old, new):
    exchange = recorded(path)
    assert answer_problems(exchange.request, exchange.response) == []
    changed = SimResponse(exchange.response.status, renamed(exchange.response.json, where, old, new))
    assert any(new in problem for problem in answer_problems(exchange.request, changed))


def test_a_recorded_error_body_with_a_member_in_another_case_fails():
    exchange = recorded("/self", 401)
    changed = SimResponse(401, renamed(exchange.response.json, (), "httpStatusCode", "HttpStatusCode"))
    assert answer_problems(exchange.request, changed) != []


def test_a_member_of_the_wrong_type_fails():
    exchange = recorded("/self")
    body = copy.deepcopy(exchange.response.json)
    body["settings"]["internationalLedger"] = False  # e-conomic types it as a string
    assert any("internationalLedger" in p for p in answer_problems(exchange.request, SimResponse(200, body)))


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ({"pageSize": ["1000"]}, {}, "'pageSize' is not documented"),
        ({"pagesize": ["1001"]}, {}, "pagesize=1001 is outside"),
        ({"skippages": ["-1"]}, {}, "skippages='-1' is not a whole number"),
        ({"filter": ["AccountNumber$in:[1,2]"]}, {}, "'AccountNumber' is not filterable"),
        ({"filter": ["name$in:[a,b]"]}, {}, "$in: on the non-numeric property 'name'"),
        ({"filter": [f"accountNumber$in:[{','.join(map(str, range(201)))}]"]}, {}, "more than 200 values"),
        ({"filter": ["accountNumber$foo:1"]}, {}, "'foo' is not an e-conomic filter operator"),
        ({}, {"X-AgreementGrantToken": None}, "header X-AgreementGrantToken missing"),
        ({}, {"Content-Type": "text/plain"}, "header Content-Type is 'text/plain'"),
    ],
)
def test_a_recorded_request_changed_against_the_description_fails(query, headers, expected):
    exchange = recorded("/accounts")
    changed = dict(exchange.request.headers.items())
    for name, value in headers.items():
        changed = {k: v for k, v in changed.items() if k.lower() != name.lower()}
        if value is not None:
            changed[name] = value
    request = dataclasses.replace(
        exchange.request, query={**exchange.request.query, **query}, headers=_Headers(changed)
    )
    assert request_problems(exchange.request) == []
    assert any(expected in problem for problem in request_problems(request)), request_problems(request)


class _Headers(dict[str, str]):
    """Case-insensitive look-up, like the recorded ``Headers``."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def test_the_vendor_filterable_properties_are_the_ones_the_simulator_enforces():
    from sandbox.simulators.economic import FILTERABLE

    for path, resource in REQUESTS["resources"].items():
        if resource["collection"]:
            assert set(filterable(schema(resource["schema"]))) == set(FILTERABLE[path.strip("/")]), path


def test_a_later_page_follows_the_collection_envelope():
    """The connector's traffic fits on one page; a page after the first must fit the envelope too."""
    with EconomicSimulator() as server:
        server.add_agreement(
            app_secret_token="app", agreement_grant_token="grant", agreement_number=100004, company_name="Sider ApS"
        )
        with new_client(server.base_url, timeout_seconds=5) as http:
            http.get(
                "/accounts",
                params={"pagesize": 2, "skippages": 1},
                headers={
                    "X-AppSecretToken": "app",
                    "X-AgreementGrantToken": "grant",
                    "Content-Type": "application/json",
                },
            )
        (exchange,) = server.exchanges
    assert exchange.response.json["pagination"]["skipPages"] == 1 and "nextPage" in exchange.response.json["pagination"]
    assert request_problems(exchange.request) == []
    assert answer_problems(exchange.request, exchange.response) == []
