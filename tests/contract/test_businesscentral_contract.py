"""The Business Central connector and its simulator, held to Microsoft's description of API v2.0.

``vendors/businesscentral/`` holds our extract of that description (``api_v2.json``: entities,
properties in page order, EDM types, enum wire values, the OData envelopes; see SOURCE.md) and
``facts.yaml`` (every vendor fact and assumption the connector rests on). Microsoft publishes
no ``$metadata`` or OpenAPI for v2.0, so ``businesscentral_api.py`` is the validator.

The connector's traffic with the simulator is recorded for a healthy company, for each trait
the conformance table seeds, and for each Business Central trait (Entra refusals, the Entra
applications page, a wrong environment or company, a missing permission set per entity set,
a company without VAT, a closed posting window, small server pages, 429/503/504). Both sides
are checked: each request (path, entity set, query options: no ``$skip``, ``$select`` and
``$filter`` naming the entity's properties, ``Prefer: odata.maxpagesize`` on every collection
read that is not a ``$top`` sample, the bearer token, the token request's form) and each answer
the simulator gave (entities, collections, next links, OData errors, token answers).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import parse_qs

import pytest

from export_preflight.connectors import businesscentral as connector
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.models import Capability, FailureReasonType
from sandbox.simulators import businesscentral as sim
from sandbox.simulators.base import Exchange, SimulatorServer
from sandbox.simulators.businesscentral import BusinessCentralSimulator
from tests.connectors.conformance import Built, ConnectorUnderTest, Harness, Seeded, Traits
from tests.contract import businesscentral_api as api
from tests.contract.traffic import TRAITS, drive, row_for

Reason = FailureReasonType
TOKEN_PATH = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
QUERY_OPTIONS = {"$filter", "$select", "$top", "$skiptoken", "$orderby", "$count"}
SECRET = "export-preflight/businesscentral/contract"


# ------------------------------------------------------------------ seeding one Business Central trait


@dataclasses.dataclass(frozen=True)
class Trait:
    """One company state: ``company`` are ``seed_company`` arguments; the rest break the
    configuration or the stored credentials."""

    name: str
    company: dict[str, Any] = dataclasses.field(default_factory=dict)
    wrong_secret: bool = False
    remove_app: bool = False
    tenant: str | None = None
    environment: str | None = None
    company_id: str | None = None
    mappings: dict[str, Any] | None = None
    unavailable: tuple[int, str | None] | None = None

    def seed(self, server: SimulatorServer, traits: Traits) -> Seeded:
        assert isinstance(server, BusinessCentralSimulator)
        seat = server.seed_company(name="CRONUS Contract A/S", **self.company)
        if self.remove_app:
            server.remove_app(seat.tenant, seat.client_id)
        if self.unavailable is not None:
            server.make_unavailable(seat.environment, self.unavailable[0], retry_after=self.unavailable[1])
        ref = "/".join(
            (
                self.tenant or seat.tenant.tenant_id,
                self.environment or seat.environment.name,
                self.company_id or seat.company.id,
            )
        )
        return Seeded(
            configuration={
                "accountingCompanyRef": ref,
                "accountingCredentialsSecretId": SECRET,
                "vendorBookkeepingEnabled": True,
                "exportReceipts": True,
                "mappings": self.mappings or sim.default_mappings(vat=seat.company.vat),
            },
            secrets={
                SECRET: {
                    "clientId": seat.client_id,
                    "clientSecret": "bc~not-issued" if self.wrong_secret else seat.client_secret,
                }
            },
            settings={"api_base_url": server.base_url, "auth_base_url": server.base_url},
        )


ENTITY_SETS_READ = (
    "accounts",
    "journals",
    "taxGroups",
    "vendors",
    "purchaseInvoices",
    "attachments",
    "generalLedgerSetup",
)
TRAITS_BC: tuple[Trait, ...] = (
    Trait("healthy"),
    Trait("wrong_secret", wrong_secret=True),
    Trait("secret_expired", company={"secret_expired": True}),
    Trait("app_not_found", remove_app=True),
    Trait("tenant_not_found", tenant=str(uuid.UUID(int=7))),
    Trait("no_business_central", company={"business_central": False}),
    Trait("no_roles", company={"roles": ()}),
    Trait("unregistered_app", company={"registered": False}),
    Trait("app_disabled", company={"app_state": "Disabled"}),
    Trait("wrong_environment", environment="sandbox-missing"),
    Trait("unknown_company", company_id=str(uuid.UUID(int=9))),
    *(Trait(f"no_permission={name}", company={"denied": {name}}) for name in ENTITY_SETS_READ),
    *(
        Trait(f"no_permission={name} (400)", company={"denied": {name}, "permission_status": 400})
        for name in ("accounts", "journals")
    ),
    Trait(
        "blocked_heading_direct_posting_off",
        mappings={"journal": "PLEO", "expenseAccount": "8120", "contraAccount": "8130"},
    ),
    Trait("missing_journal", mappings={"journal": "NOSUCH", "expenseAccount": "8110", "contraAccount": "5420"}),
    Trait("missing_tax_group", mappings={**sim.default_mappings(), "vatCodes": ["STANDARD", "NOSUCH"]}),
    Trait("us_company_without_vat", company={"vat": False}),
    Trait("posting_window_closed", company={"gl_setup": sim.gl_setup(allow_from="2001-01-01", allow_to="2001-12-31")}),
    Trait("small_pages", company={"max_page_size": 2}),
    Trait("429_retry_after", unavailable=(429, "1")),
    Trait("429", unavailable=(429, None)),
    Trait("503_retry_after", unavailable=(503, "1")),
    Trait("504", unavailable=(504, None)),
)


def bc_row(trait: Trait) -> ConnectorUnderTest:
    return dataclasses.replace(row_for("businesscentral"), seed=trait.seed)


def build(server: BusinessCentralSimulator, trait: Trait, *, timeout_seconds: float = 5.0) -> tuple[Harness, Built]:
    harness = Harness(bc_row(trait), server)
    return harness, harness.build(timeout_seconds=timeout_seconds)


def record(row: ConnectorUnderTest, traits: tuple[Traits, ...], server: BusinessCentralSimulator) -> list[Exchange]:
    exchanges: list[Exchange] = []
    for trait in traits:
        server.reset()
        harness = Harness(row, server)
        try:
            drive(harness.build(trait, timeout_seconds=3.0), row)
        finally:
            harness.close()
        exchanges.extend(e for e in server.exchanges if not e.injected)
    return exchanges


@cache
def traffic() -> tuple[Exchange, ...]:
    """Every exchange of the conformance traits and of each Business Central trait."""
    server = BusinessCentralSimulator()
    server.start()
    try:
        exchanges = record(row_for("businesscentral"), TRAITS, server)
        for trait in TRAITS_BC:
            exchanges += record(bc_row(trait), (Traits(),), server)
        return tuple(exchanges)
    finally:
        server.stop()


def api_exchanges() -> list[Exchange]:
    return [e for e in traffic() if e.request.path.startswith("/v2.0/")]


def token_exchanges() -> list[Exchange]:
    return [e for e in traffic() if TOKEN_PATH.fullmatch(e.request.path)]


def describe(exchange: Exchange) -> str:
    query = "&".join(f"{k}={v}" for k, values in sorted(exchange.request.query.items()) for v in values)
    return (
        f"{exchange.request.method} {exchange.request.path}{'?' + query if query else ''} -> {exchange.response.status}"
    )


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"- {problem}\n    e.g. {examples[0]} ({len(examples)}x)" for problem, examples in found.items())


def one_value(exchange: Exchange, name: str) -> str | None:
    values = exchange.request.query.get(name)
    return values[0] if values else None


# ------------------------------------------------------------------ coverage


def test_the_traffic_covers_what_the_preflight_reads():
    paths = {describe(e).split("?")[0].split(" ")[1] for e in api_exchanges()}
    sets = {m["set"] for e in api_exchanges() if (m := api.ENTITY_SET_PATH.fullmatch(e.request.path)) and m["set"]}
    assert {"accounts", "journals", "taxGroups", "vendors", "purchaseInvoices", "generalLedgerSetup"} <= sets, sets
    assert any(re.fullmatch(r".*/companies\([^)]+\)", p) for p in paths), "companies({id}) is never read"
    assert token_exchanges(), "no token request"
    assert any("$skiptoken" in e.request.query for e in api_exchanges()), "no next link was followed"


# ------------------------------------------------------------------ requests


def test_every_api_request_is_a_get_of_a_described_entity_set():
    found: dict[str, list[str]] = {}
    for exchange in api_exchanges():
        request = exchange.request
        match = api.ENTITY_SET_PATH.fullmatch(request.path)
        if request.method != "GET":
            found.setdefault(f"{request.method}: the preflight only reads", []).append(describe(exchange))
        if match is None:
            found.setdefault("not an API v2.0 company path", []).append(describe(exchange))
            continue
        if match["set"] and match["set"] not in api.entity_sets():
            found.setdefault(f"entity set {match['set']} is not in the extract", []).append(describe(exchange))
        if match["company"] is not None and not api.GUID.fullmatch(match["company"]):
            found.setdefault("companies(...) key is not a bare GUID", []).append(describe(exchange))
    assert not found, "requests outside Microsoft's description:\n" + report(found)


def _referenced(expression: str) -> set[str]:
    return sim._properties_of(sim._FilterParser(expression).parse())


def test_query_options_are_odata_options_on_the_entitys_properties():
    found: dict[str, list[str]] = {}
    for exchange in api_exchanges():
        request = exchange.request
        match = api.ENTITY_SET_PATH.fullmatch(request.path)
        entity_set = (match["set"] if match else None) or "companies"
        described = set(api.properties(entity_set))
        for name in request.query:
            if name == "$skip":
                found.setdefault("$skip: page by @odata.nextLink (paging-server-driven)", []).append(describe(exchange))
            elif name.startswith("$") and name not in QUERY_OPTIONS:
                found.setdefault(f"query option {name} is not one the preflight needs", []).append(describe(exchange))
            elif not name.startswith("$"):
                found.setdefault(f"custom query option {name}", []).append(describe(exchange))
        select = one_value(exchange, "$select")
        if select and not {s.strip() for s in select.split(",")} <= described:
            found.setdefault(f"$select names no property of {entity_set}", []).append(describe(exchange))
        expression = one_value(exchange, "$filter")
        if expression:
            try:
                unknown = _referenced(expression) - described
            except ValueError as error:
                found.setdefault(f"$filter does not parse: {error}", []).append(describe(exchange))
                continue
            if unknown:
                found.setdefault(f"$filter names {sorted(unknown)}, not properties of {entity_set}", []).append(
                    describe(exchange)
                )
        top = one_value(exchange, "$top")
        if top is not None and not top.isdigit():
            found.setdefault("$top is not a number", []).append(describe(exchange))
    assert not found, "query options unlike Microsoft's description:\n" + report(found)


def test_collection_reads_ask_for_a_page_size_and_samples_use_top():
    """A read of a whole collection says ``Prefer: odata.maxpagesize=<n>`` (n <= 20,000); only a
    ``$top`` sample (the permission probe) and the one-record General Ledger Setup may leave it out."""
    found: dict[str, list[str]] = {}
    for exchange in api_exchanges():
        match = api.ENTITY_SET_PATH.fullmatch(exchange.request.path)
        collection = match is not None and match["key"] is None and (match["set"] or match["company"] is None)
        if not collection or one_value(exchange, "$top") is not None:
            continue
        if match is not None and match["set"] == "generalLedgerSetup":
            continue  # one record per company (facts.yaml gl-setup-collection): nothing to page
        prefer = exchange.request.headers.get("Prefer", "")
        size = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        if size is None:
            found.setdefault("no Prefer: odata.maxpagesize on a collection read", []).append(describe(exchange))
        elif not 1 <= int(size[1]) <= 20000:
            found.setdefault(f"odata.maxpagesize={size[1]} is outside 1..20000", []).append(describe(exchange))
    assert not found, report(found)


def test_next_links_are_followed_verbatim():
    """Each request with a ``$skiptoken`` is a link the simulator gave (never a page the client made up)."""
    given = set()
    for exchange in api_exchanges():
        body = exchange.response.json
        if isinstance(body, dict) and isinstance(body.get("@odata.nextLink"), str):
            given.add(body["@odata.nextLink"].split("?", 1)[1])
    followed = [e for e in api_exchanges() if "$skiptoken" in e.request.query]
    assert followed
    for exchange in followed:
        query = parse_qs(
            "&".join(f"{k}={v}" for k, values in exchange.request.query.items() for v in values), keep_blank_values=True
        )
        assert any(parse_qs(link, keep_blank_values=True) == query for link in given), describe(exchange)


def test_every_api_request_carries_a_bearer_token_and_asks_for_json():
    found: dict[str, list[str]] = {}
    for exchange in api_exchanges():
        auth = exchange.request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth.split(".")) != 3:
            found.setdefault("no bearer JWT", []).append(describe(exchange))
    assert not found, report(found)


def test_token_requests_are_client_credentials_grants_for_business_central():
    found: dict[str, list[str]] = {}
    for exchange in token_exchanges():
        request = exchange.request
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if request.method != "POST" or "x-www-form-urlencoded" not in request.headers.get("Content-Type", ""):
            found.setdefault("not a form POST", []).append(describe(exchange))
        if form.get("grant_type") != "client_credentials" or form.get("scope") != sim.SCOPE:
            found.setdefault(f"grant {form.get('grant_type')} / scope {form.get('scope')}", []).append(
                describe(exchange)
            )
        if not form.get("client_id") or not form.get("client_secret"):
            found.setdefault("client_id and client_secret in the form", []).append(describe(exchange))
        if set(form) - {"grant_type", "client_id", "client_secret", "scope"}:
            found.setdefault(f"unexpected form fields {sorted(form)}", []).append(describe(exchange))
    assert not found, report(found)


# ------------------------------------------------------------------ answers


def test_every_simulated_answer_is_shaped_as_described():
    found: dict[str, list[str]] = {}
    for exchange in traffic():
        body, status = exchange.response.json, exchange.response.status
        token = TOKEN_PATH.fullmatch(exchange.request.path)
        if token:
            problems = api.token_answer_problems(body) if status == 200 else api.token_error_problems(body)
        elif status >= 400:
            problems = [] if status == 504 and body is None else api.error_problems(body)
        else:
            match = api.ENTITY_SET_PATH.fullmatch(exchange.request.path)
            assert match is not None
            select = one_value(exchange, "$select")
            selected = {s.strip() for s in select.split(",")} if select else None
            entity_set = match["set"] or "companies"
            if match["key"] is not None or (match["set"] is None and match["company"] is not None):
                problems = api.single_problems(entity_set, body, selected=selected)
            else:
                problems = api.collection_problems(
                    entity_set, body, request_path=exchange.request.path, selected=selected
                )
        for problem in problems:
            found.setdefault(problem, []).append(describe(exchange))
    assert not found, "simulated answers unlike Microsoft's description:\n" + report(found)


def test_the_simulators_seed_rows_are_valid_entities():
    company = sim.Company(id=str(uuid.uuid4()), name="Seed", display_name="Seed")
    for entity_set, items in (
        ("accounts", company.accounts),
        ("journals", company.journals),
        ("taxGroups", company.tax_groups or []),
        ("taxGroups", sim.default_tax_groups(vat=False)),
        ("vendors", company.vendors),
        ("purchaseInvoices", company.purchase_invoices),
        ("generalLedgerSetup", [company.gl_setup]),
    ):
        for item in items:
            assert api.entity_problems(entity_set, {"@odata.etag": 'W/"JzE7MTswMDsn"', **item}) == [], item
    assert api.entity_problems("companies", company.entity()) == []


# ------------------------------------------------------------------ what the connector decides on


@pytest.fixture(scope="module")
def server():
    running = BusinessCentralSimulator()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def world(server):
    server.reset()
    harnesses: list[Harness] = []

    def make(trait: Trait, **kwargs: Any) -> Built:
        harness, built = build(server, trait, **kwargs)
        harnesses.append(harness)
        return built

    yield make
    for harness in harnesses:
        harness.close()


def _auth_failure(make: Callable[..., Built], trait: Trait) -> AccountingSystemError:
    built = make(trait)
    with pytest.raises(AccountingSystemError) as raised:
        built.connector.authenticate()
    assert built.seeded.secrets[SECRET]["clientSecret"] not in str(raised.value)  # the client id is no secret
    return raised.value


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("wrong_secret", Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        ("secret_expired", Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        ("app_not_found", Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE),
        ("tenant_not_found", Reason.INVALID_CONFIGURATION),
        ("no_business_central", Reason.INVALID_CONFIGURATION),
    ],
)
@pytest.mark.parametrize("status", ["as simulated", 400, 401])
def test_token_refusals_are_decided_on_error_codes(world, server, name, reason, status):
    """facts.yaml token-error-http-status [assumed]: the status each AADSTS code comes with is not
    documented, so the same body answered 400 or 401 decides the same."""
    trait = next(t for t in TRAITS_BC if t.name == name)
    server.token_refusal_status = None if status == "as simulated" else status
    error = _auth_failure(world, trait)
    assert error.reason_type is reason


def test_a_token_without_the_role_is_missing_admin_consent(world):
    """facts.yaml token-without-role-answer [assumed] / aadsts-65001-not-for-client-credentials."""
    error = _auth_failure(world, Trait("no_roles", company={"roles": ()}))
    assert error.reason_type is Reason.AUTHORIZATION_FAILURE
    assert "API.ReadWrite.All" in str(error) and "admin consent" in str(error)


@pytest.mark.parametrize("state", ["missing", "Disabled"])
def test_an_app_not_on_the_entra_applications_page_is_named_as_such(world, state):
    """facts.yaml unregistered-app-answer [assumed]: 401 Authentication_InvalidCredentials."""
    company = {"registered": False} if state == "missing" else {"app_state": "Disabled"}
    error = _auth_failure(world, Trait("unregistered", company=company))
    assert error.reason_type is Reason.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert "Microsoft Entra Applications page" in str(error)


def test_a_wrong_environment_is_a_configuration_error(world):
    """facts.yaml wrong-environment-404 [assumed]."""
    error = _auth_failure(world, Trait("wrong_environment", environment="sandbox-missing"))
    assert error.reason_type is Reason.INVALID_CONFIGURATION and "sandbox-missing" in str(error)


def test_an_unknown_company_names_the_companies_the_app_reaches(world):
    """facts.yaml unknown-company-404 [assumed]."""
    built = world(Trait("unknown_company", company_id=str(uuid.UUID(int=9))))
    profile = built.connector.authenticate()
    assert profile.company_ref != built.config.accounting_company_ref
    assert profile.company_name == "CRONUS Contract A/S"


@pytest.mark.parametrize("status", [403, 400])
@pytest.mark.parametrize("entity_set", ["accounts", "journals", "taxGroups"])
def test_a_missing_permission_set_names_the_entity_set_and_the_permission_sets(world, status, entity_set):
    """facts.yaml missing-permission-answer [assumed: 403, or 400 in the older form] and
    permission-sets-needed [assumed]."""
    built = world(Trait("denied", company={"denied": {entity_set}, "permission_status": status}))
    profile = built.connector.authenticate()
    missing = built.connector.missing_permissions(profile, {Capability.JOURNAL_ENTRY})
    assert len(missing) == 1 and f"({entity_set})" in missing[0]
    assert "D365 BASIC" in missing[0] and "D365 ACC. PAYABLE" in missing[0]


def test_the_posting_window_is_read_from_the_general_ledger_setup_collection(world):
    """facts.yaml gl-setup-collection [assumed]: GET generalLedgerSetup answers {value: [one]}."""
    built = world(Trait("closed", company={"gl_setup": sim.gl_setup(allow_from="2001-01-01", allow_to="2001-12-31")}))
    profile = built.connector.authenticate()
    support = built.connector.supports(profile, Capability.JOURNAL_ENTRY)
    assert not support.supported and "2001-12-31" in support.detail
    assert built.connector.supports(profile, Capability.VENDOR_BOOKKEEPING).supported is False
    open_built = world(Trait("open"))
    assert open_built.connector.supports(open_built.connector.authenticate(), Capability.JOURNAL_ENTRY).supported


def test_server_pages_are_followed_to_the_end(world, server):
    """facts.yaml next-link-absolute-same-base [assumed], paging-server-driven."""
    built = world(Trait("small_pages", company={"max_page_size": 1}))
    profile = built.connector.authenticate()
    assert built.connector.supports(profile, Capability.VENDOR_BOOKKEEPING).supported
    assert set(built.connector.tax_codes(["STANDARD", "ZERO"])) == {"STANDARD", "ZERO"}
    assert all(built.connector.tax_codes(["ZERO"]).values())
    followed = [r for r in server.requests if "$skiptoken" in r.query]
    assert followed and all("$skip" not in r.query for r in server.requests)


@pytest.mark.parametrize(
    ("unavailable", "reason", "retry_after"),
    [
        ((429, "7"), Reason.ACCOUNTING_SYSTEM_RATE_LIMIT, 7),
        ((429, None), Reason.ACCOUNTING_SYSTEM_RATE_LIMIT, None),
        ((503, "30"), Reason.ACCOUNTING_SYSTEM_UNREACHABLE, 30),
        ((504, None), None, None),
    ],
)
def test_throttling_and_outages_are_transient(world, unavailable, reason, retry_after):
    """facts.yaml retry-after-429 [assumed], retry-after-502-503, timeouts."""
    built = world(Trait("unavailable", unavailable=unavailable))
    with pytest.raises(AccountingSystemUnavailable) as raised:
        built.connector.authenticate()
    if reason is not None:
        assert raised.value.reason_type is reason
    assert raised.value.retry_after == retry_after


def test_vendor_blocked_is_read_encoded_and_plain(world):
    """facts.yaml vendor-blocked-enum: ``_x0020_`` and Microsoft's example's ``" "`` alike; All is named."""
    not_blocked = [sim.vendor("V1", "Encoded"), {**sim.vendor("V2", "Plain"), "blocked": " "}]
    built = world(Trait("not blocked", company={"vendors": not_blocked}))
    support = built.connector.supports(built.connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert support.supported and support.notice is None
    stopped = [*not_blocked, sim.vendor("V3", "Stopped", blocked="All")]
    built = world(Trait("one blocked", company={"vendors": stopped}))
    support = built.connector.supports(built.connector.authenticate(), Capability.VENDOR_BOOKKEEPING)
    assert support.supported and support.notice is not None and "V3" in support.notice


def test_the_connector_decodes_enums_like_the_simulator_encodes_them():
    for name in (" ", "Begin-Total", "Sales Tax", "Purch. Return Shipment", "All"):
        assert connector.decode_enum(sim.encode_enum(name)) == name


def test_a_healthy_company_answers_every_read_the_connector_makes():
    """Nothing the connector sends for a healthy company is refused: a refusal there is a request
    Business Central does not take (e.g. ``attachments`` without a ``parentId`` filter: the AL page
    "APIV2 - Attachments" errors "You must specify a parentId in the request body." in OnFindRecord)."""
    server = BusinessCentralSimulator()
    server.start()
    try:
        exchanges = record(bc_row(Trait("healthy")), (Traits(),), server)
    finally:
        server.stop()
    refused = [f"{describe(e)}: {e.response.json}" for e in exchanges if e.response.status >= 400]
    assert not refused, "reads of a healthy company refused:\n" + "\n".join(refused)
