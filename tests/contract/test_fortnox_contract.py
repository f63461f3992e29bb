"""The Fortnox connector and its simulator, held to Fortnox's own description of API v3.

``vendors/fortnox/`` holds our extract of that description (see its SOURCE.md): an OpenAPI 3.1
document of the resources we use or will use (closed objects, so a field spelt or cased unlike
Fortnox fails), ``scopes.yaml`` (Fortnox's scopes table) and ``facts.yaml`` (every vendor fact
and every assumption the connector rests on).

Every exchange the connector has with the simulator (``connector_traffic("fortnox")``) is
checked on both sides: the request (method, path, each query parameter, auth) and the answer
the simulator gave (status, envelope key, every property name and type, enumerations such as
the predefined account names). The simulator's scope guard is checked against the scopes table.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_core import OpenAPI

from sandbox.simulators.base import Exchange, SimResponse
from sandbox.simulators.fortnox import FortnoxSimulator
from tests.contract.openapi import load_openapi, validate_request, validate_response
from tests.contract.traffic import connector_traffic

VENDOR = Path(__file__).resolve().parent / "vendors" / "fortnox"
DESCRIPTION = VENDOR / "fortnox-api-v3.extract.openapi.yaml"
SCOPES = VENDOR / "scopes.yaml"
FACTS = VENDOR / "facts.yaml"
REPO = Path(__file__).resolve().parents[2]

API_SERVER = "https://api.fortnox.se"
AUTH_SERVER = "https://apps.fortnox.se"
TOKEN_PATH = "/oauth-v1/token"
METHODS = ("get", "post", "put", "delete", "patch")


# ------------------------------------------------------------------ the extract


@cache
def description() -> dict[str, Any]:
    loaded = yaml.safe_load(DESCRIPTION.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def openapi() -> OpenAPI:
    return load_openapi(DESCRIPTION)


@cache
def scopes_table() -> dict[str, dict[str, str]]:
    loaded = yaml.safe_load(SCOPES.read_text(encoding="utf-8"))
    return dict(loaded["resources"])


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) the extract describes."""
    return [
        (method.upper(), path) for path, item in description()["paths"].items() for method in METHODS if method in item
    ]


def declared_query(method: str, path: str) -> set[str]:
    """The query parameters Fortnox describes for one operation (refs resolved)."""
    parameters = description()["paths"][path][method.lower()].get("parameters", [])
    names: set[str] = set()
    for parameter in parameters:
        if "$ref" in parameter:
            parameter = description()["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
        if parameter["in"] == "query":
            names.add(parameter["name"])
    return names


def server_for(path: str) -> str:
    return AUTH_SERVER if path == TOKEN_PATH else API_SERVER


def predefined_account_names() -> list[str]:
    return list(description()["components"]["schemas"]["PredefinedAccountName"]["enum"])


# ------------------------------------------------------------------ the traffic


def traffic() -> tuple[Exchange, ...]:
    exchanges = connector_traffic("fortnox")
    assert exchanges, "the Fortnox connector made no request at all"
    return exchanges


def exchanges_of(method: str, path: str) -> list[Exchange]:
    return [e for e in traffic() if e.request.method.upper() == method and e.request.path == path]


def describe(exchange: Exchange) -> str:
    query = "&".join(f"{k}={v}" for k, values in sorted(exchange.request.query.items()) for v in values)
    target = f"{exchange.request.path}?{query}" if query else exchange.request.path
    return f"{exchange.request.method} {target} -> {exchange.response.status}"


def first_line(error: BaseException) -> str:
    """An openapi-core error with its schema errors (the useful part of its message)."""
    causes: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        for inner in getattr(seen, "schema_errors", None) or ():
            causes.append(f"{'/'.join(str(p) for p in inner.absolute_path) or '(body)'}: {inner.message}")
        seen = seen.__cause__
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text + (" [" + "; ".join(dict.fromkeys(causes)) + "]" if causes else "")


def problems(found: dict[str, list[str]]) -> str:
    return "\n".join(f"- {problem}\n    e.g. {examples[0]} ({len(examples)}x)" for problem, examples in found.items())


# ------------------------------------------------------------------ requests


def test_every_request_goes_to_a_described_operation() -> None:
    described = set(operations())
    unknown: dict[str, list[str]] = {}
    for exchange in traffic():
        key = (exchange.request.method.upper(), exchange.request.path)
        if key not in described:
            unknown.setdefault(f"{key[0]} {key[1]} is not in Fortnox's description", []).append(describe(exchange))
    assert not unknown, "requests outside Fortnox's description:\n" + problems(unknown)


@pytest.mark.parametrize(("method", "path"), operations())
def test_requests_match_the_description(method: str, path: str) -> None:
    sent = exchanges_of(method, path)
    if not sent:
        pytest.skip(f"the connector does not call {method} {path} (yet)")
    allowed = declared_query(method, path)
    found: dict[str, list[str]] = {}
    for exchange in sent:
        for name in sorted(set(exchange.request.query) - allowed):
            found.setdefault(
                f"query parameter {name!r} is not one Fortnox describes for {method} {path} "
                f"(described: {', '.join(sorted(allowed)) or 'none'})",
                [],
            ).append(describe(exchange))
        try:
            validate_request(openapi(), server_for(path), exchange.request)
        except Exception as error:  # every openapi-core validation error is a finding
            found.setdefault(first_line(error), []).append(describe(exchange))
    assert not found, f"{method} {path}: requests unlike Fortnox's description:\n" + problems(found)


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize(("method", "path"), operations())
def test_simulated_answers_match_the_description(method: str, path: str) -> None:
    sent = exchanges_of(method, path)
    if not sent:
        pytest.skip(f"the connector does not call {method} {path} (yet)")
    found: dict[str, list[str]] = {}
    for exchange in sent:
        try:
            validate_response(openapi(), server_for(path), exchange.request, exchange.response)
        except Exception as error:  # every openapi-core validation error is a finding
            found.setdefault(first_line(error), []).append(describe(exchange))
    assert not found, f"{method} {path}: simulated answers unlike Fortnox's description:\n" + problems(found)


def recorded_success(path: str) -> Exchange:
    for exchange in exchanges_of("GET", path):
        if exchange.response.status == 200 and isinstance(exchange.response.json, dict):
            return exchange
    pytest.skip(f"no successful GET {path} in the traffic")


def renamed(body: Any, old: str, new: str) -> Any:
    """``body`` with every key ``old`` renamed ``new`` (at any depth)."""
    if isinstance(body, dict):
        return {(new if key == old else key): renamed(value, old, new) for key, value in body.items()}
    if isinstance(body, list):
        return [renamed(item, old, new) for item in body]
    return body


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("/3/companyinformation", "OrganizationNumber", "OrganisationNumber"),  # Fortnox spells it with a z here
        ("/3/companyinformation", "CompanyName", "companyName"),
        ("/3/companyinformation", "CompanyInformation", "companyInformation"),
        ("/3/accounts", "VATCode", "VatCode"),
        ("/3/accounts", "MetaInformation", "Metainformation"),
        ("/3/accounts", "@TotalPages", "@totalPages"),
        ("/3/accounts", "Number", "number"),
        ("/3/predefinedaccounts", "Name", "name"),
        ("/3/predefinedaccounts", "PreDefinedAccounts", "PredefinedAccounts"),
    ],
)
def test_a_field_in_another_spelling_fails(path: str, old: str, new: str) -> None:
    """The extract is strict: the same answer with one key spelt or cased differently fails."""
    exchange = recorded_success(path)
    assert old in json.dumps(exchange.response.json), f"{old} is not in the recorded answer of {path}"
    validate_response(openapi(), API_SERVER, exchange.request, exchange.response)  # as recorded: valid
    altered = SimResponse(200, renamed(copy.deepcopy(exchange.response.json), old, new))
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises its own validation errors
        validate_response(openapi(), API_SERVER, exchange.request, altered)


def test_predefined_account_names_are_fortnox_names() -> None:
    """``SUPDEBT`` (Leverantörsskuld) is Fortnox's name for the supplier debt account; a name
    Fortnox does not have (``SUPPLIERDEBT``) fails the extract."""
    recorded = recorded_success("/3/companyinformation").request  # any GET: only the path differs
    request = dataclasses.replace(recorded, path="/3/predefinedaccounts", query={})

    def answer(name: str) -> SimResponse:
        url = f"https://api.fortnox.se/3/predefinedaccounts/{name}"
        return SimResponse(200, {"PreDefinedAccounts": [{"@url": url, "Name": name, "Account": 2440}]})

    assert "SUPDEBT" in predefined_account_names()
    validate_response(openapi(), API_SERVER, request, answer("SUPDEBT"))
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises its own validation errors
        validate_response(openapi(), API_SERVER, request, answer("SUPPLIERDEBT"))


def test_the_connector_looks_for_a_fortnox_predefined_account_name() -> None:
    from export_preflight.connectors import fortnox

    names = {value for name, value in vars(fortnox).items() if name.isupper() and isinstance(value, str)}
    looked_for = {value for value in names if re.fullmatch(r"[A-Z][A-Z0-9_]*DEBT[A-Z0-9_]*", value)}
    assert looked_for, "no predefined supplier debt account name found in connectors/fortnox.py"
    assert looked_for <= set(predefined_account_names()), (
        f"connectors/fortnox.py looks for {sorted(looked_for)}; Fortnox names it SUPDEBT "
        "(PredefinedAccountName.AccountsPayable in the Fortnox .NET SDK)"
    )


# ------------------------------------------------------------------ scopes


def test_the_extract_and_the_scopes_table_agree() -> None:
    table = scopes_table()
    in_extract = {
        path: item["get"]["x-scope"] for path, item in description()["paths"].items() if path.startswith("/3/")
    }
    assert in_extract == {path: row["scope"] for path, row in table.items()}
    assert all(row["kind"] in ("vendor", "assumed") and row["source"] for row in table.values())


@pytest.fixture(scope="module")
def simulator() -> Iterator[FortnoxSimulator]:
    server = FortnoxSimulator(enforce_rate_limits=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def guard_answer(server: FortnoxSimulator, path: str, scopes: list[str]) -> httpx.Response:
    """GET ``path`` with a fresh grant of ``scopes`` for a company licensed for every scope."""
    client_id = f"scope-check-{uuid.uuid4().hex}"
    server.add_app(client_id, "secret")
    every = sorted({row["scope"] for row in scopes_table().values()})
    digits = f"{uuid.uuid4().int % 10**10:010d}"
    company = server.add_company(organisation_number=f"{digits[:6]}-{digits[6:]}", name="Scope AB", licences=set(every))
    grant = server.grant(client_id=client_id, company=company, scopes=scopes)
    return httpx.get(f"{server.base_url}{path}", headers={"Authorization": f"Bearer {grant.access_token}"})


def error_code(response: httpx.Response) -> Any:
    try:
        return response.json()["ErrorInformation"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


@pytest.mark.parametrize("path", sorted(yaml.safe_load(SCOPES.read_text(encoding="utf-8"))["resources"]))
def test_the_simulator_guards_each_resource_with_fortnox_scope(simulator: FortnoxSimulator, path: str) -> None:
    scope = scopes_table()[path]["scope"]
    every = sorted({row["scope"] for row in scopes_table().values()})
    with_it = guard_answer(simulator, path, [scope])
    assert with_it.status_code != 404, f"the simulator does not serve GET {path}"
    assert error_code(with_it) != 2000663, (
        f"the simulator refuses GET {path} with only the scope {scope!r} (Fortnox's scopes table) granted: "
        f"{with_it.status_code} {with_it.text}"
    )
    assert with_it.status_code == 200, f"GET {path} with scope {scope!r}: {with_it.status_code} {with_it.text}"
    without_it = guard_answer(simulator, path, [s for s in every if s != scope])
    assert (without_it.status_code, error_code(without_it)) == (403, 2000663), (
        f"the simulator answers GET {path} without its scope {scope!r}: {without_it.status_code} {without_it.text}"
    )


# ------------------------------------------------------------------ facts


def test_every_fact_is_sourced_or_tested() -> None:
    facts = yaml.safe_load(FACTS.read_text(encoding="utf-8"))["facts"]
    ids = [fact["id"] for fact in facts]
    assert len(ids) == len(set(ids)), "fact ids repeat"
    for fact in facts:
        assert set(fact) <= {"id", "fact", "kind", "source", "decides_outcome", "test", "note"}, fact["id"]
        assert fact["fact"] and fact["kind"] in ("vendor", "assumed"), fact["id"]
        assert isinstance(fact["decides_outcome"], bool), fact["id"]
        if fact["kind"] == "vendor":
            assert fact.get("source"), f"{fact['id']}: a vendor fact needs its source"
        if fact["kind"] == "assumed" and fact["decides_outcome"]:
            assert fact.get("test"), f"{fact['id']}: an assumption that decides an outcome needs a test"
        if fact.get("test"):
            file, _, name = fact["test"].partition("::")
            function = name.split("[", 1)[0].split("::")[-1]
            source = REPO / file
            assert source.is_file(), f"{fact['id']}: {file} does not exist"
            assert re.search(rf"def {re.escape(function)}\b", source.read_text(encoding="utf-8")), (
                f"{fact['id']}: {fact['test']} does not exist"
            )
