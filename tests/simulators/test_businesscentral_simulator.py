"""The Business Central simulator answers like Microsoft Entra's token endpoint and Business
Central API v2.0 as ``tests/contract/vendors/businesscentral`` describes them: every entity as
the extract lists it, server-driven paging, the token checked on every call, and each trait
the connector's preflight decides on."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from sandbox.simulators import businesscentral as bc
from sandbox.simulators.businesscentral import (
    ROLE,
    SCOPE,
    BusinessCentralSimulator,
    Seat,
    account,
    decode_enum,
    encode_enum,
    gl_setup,
)
from tests.contract.businesscentral_api import (
    collection_problems,
    entity_problems,
    error_problems,
    single_problems,
    token_answer_problems,
    token_error_problems,
)


@pytest.fixture
def sim():
    with BusinessCentralSimulator() as server:
        yield server


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.base_url, timeout=2) as client:
        yield client


def token_answer(http: httpx.Client, seat: Seat, *, tenant: str | None = None, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": seat.client_id,
        "client_secret": seat.client_secret,
        "scope": SCOPE,
        **form,
    }
    return http.post(f"/{tenant or seat.tenant.tenant_id}/oauth2/v2.0/token", data=data)


def token(http: httpx.Client, seat: Seat) -> str:
    response = token_answer(http, seat)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def root(seat: Seat, *, environment: str | None = None, company: str | None = None) -> str:
    env = environment or seat.environment.name
    return f"/v2.0/{seat.tenant.tenant_id}/{env}/api/v2.0/companies({company or seat.company.id})"


def get(http: httpx.Client, seat: Seat, path: str = "", *, bearer: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer or token(http, seat)}", **kwargs.pop("headers", {})}
    return http.get(path if path.startswith("/v2.0") else root(seat) + path, headers=headers, **kwargs)


def claims(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


# ------------------------------------------------------------------ Microsoft Entra


def test_client_credentials_answer_a_jwt_with_the_role(sim, http):
    seat = sim.seed_company()
    response = token_answer(http, seat)
    assert response.status_code == 200
    assert token_answer_problems(response.json()) == []
    assert response.json()["expires_in"] == 3599 and "refresh_token" not in response.json()
    payload = claims(response.json()["access_token"])
    assert payload["roles"] == [ROLE]
    assert payload["tid"] == seat.tenant.tenant_id and payload["appid"] == seat.client_id
    assert payload["aud"] == "https://api.businesscentral.dynamics.com"
    assert payload["exp"] - payload["iat"] == 3599


def test_the_tenant_may_be_named_by_its_domain(sim, http):
    seat = sim.seed_company(domain="contoso.onmicrosoft.com")
    assert token_answer(http, seat, tenant="contoso.onmicrosoft.com").status_code == 200


def test_client_secret_basic_is_taken_too(sim, http):
    seat = sim.seed_company()
    response = http.post(
        f"/{seat.tenant.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": SCOPE},
        auth=(seat.client_id, seat.client_secret),
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("breakage", "status", "error", "code"),
    [
        ("wrong_secret", 401, "invalid_client", 7000215),
        ("expired_secret", 401, "invalid_client", 7000222),
        ("app_not_found", 400, "unauthorized_client", 700016),
        ("tenant_not_found", 400, "invalid_request", 90002),
        ("no_business_central", 400, "invalid_resource", 500011),
        ("wrong_scope", 400, "invalid_scope", 1002012),
        ("wrong_grant", 400, "unsupported_grant_type", 70003),
    ],
)
def test_token_refusals_carry_aadsts_codes(sim, http, breakage, status, error, code):
    seat = sim.seed_company(
        secret_expired=breakage == "expired_secret", business_central=breakage != "no_business_central"
    )
    form: dict[str, str] = {}
    tenant = None
    if breakage == "wrong_secret":
        form["client_secret"] = "the-secret-id-not-its-value"
    if breakage == "app_not_found":
        sim.remove_app(seat.tenant, seat.client_id)
    if breakage == "tenant_not_found":
        tenant = "11111111-2222-3333-4444-555555555555"
    if breakage == "wrong_scope":
        form["scope"] = "https://graph.microsoft.com/User.Read"
    if breakage == "wrong_grant":
        form["grant_type"] = "password"
    response = token_answer(http, seat, tenant=tenant, **form)
    assert response.status_code == status
    body = response.json()
    assert token_error_problems(body) == []
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert seat.client_secret not in response.text


def test_without_admin_consent_the_token_has_no_roles_and_the_api_refuses_it(sim, http):
    seat = sim.seed_company(roles=())
    access = token(http, seat)
    assert "roles" not in claims(access)
    response = get(http, seat, bearer=access)
    assert response.status_code == 401
    assert error_code(response) == "Authentication_InvalidCredentials"
    assert "could not be authenticated or authorized" in response.json()["error"]["message"]


def test_every_token_path_carries_credentials_by_protocol(sim):
    assert "/contoso.onmicrosoft.com/oauth2/v2.0/token" in sim.credential_paths
    assert "/v2.0/x/production/api/v2.0/companies" not in sim.credential_paths


# ------------------------------------------------------------------ the token on every API call


def test_api_calls_without_a_token_or_with_a_foreign_one_are_refused(sim, http):
    seat = sim.seed_company()
    other = sim.seed_company(name="Other A/S")
    bare = http.get(root(seat))
    assert bare.status_code == 401 and "WWW-Authenticate" in bare.headers
    assert error_problems(bare.json()) == []
    forged = get(http, seat, bearer=bc._jwt({"tid": seat.tenant.tenant_id, "roles": [ROLE]}))
    assert forged.status_code == 401
    foreign = get(http, seat, bearer=token(http, other))
    assert foreign.status_code == 401 and error_code(foreign) == "Authentication_InvalidCredentials"


def test_an_expired_token_is_refused(http):
    now = [1_000_000.0]
    with BusinessCentralSimulator(clock=lambda: now[0]) as sim, httpx.Client(base_url=sim.base_url) as client:
        seat = sim.seed_company()
        access = token(client, seat)
        assert get(client, seat, bearer=access).status_code == 200
        now[0] += 3600
        assert get(client, seat, bearer=access).status_code == 401


@pytest.mark.parametrize("state", ["missing", "Disabled"])
def test_an_app_not_enabled_on_the_entra_applications_page_is_refused(sim, http, state):
    seat = sim.seed_company(registered=state != "missing", app_state=state)
    response = get(http, seat)
    assert response.status_code == 401
    assert error_code(response) == "Authentication_InvalidCredentials"
    assert "rejected the client credentials" in response.json()["error"]["message"]
    assert error_problems(response.json()) == []


def test_wrong_environment_and_unknown_company_are_404(sim, http):
    seat = sim.seed_company()
    access = token(http, seat)
    wrong_env = get(http, seat, root(seat, environment="sandbox2"), bearer=access)
    unknown = get(http, seat, root(seat, company="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"), bearer=access)
    assert (wrong_env.status_code, unknown.status_code) == (404, 404)
    assert error_problems(wrong_env.json()) == [] and error_problems(unknown.json()) == []


def test_the_form_without_tenant_uses_the_tokens_tenant(sim, http):
    seat = sim.seed_company()
    response = get(http, seat, f"/v2.0/production/api/v2.0/companies({seat.company.id})")
    assert response.status_code == 200 and response.json()["id"] == seat.company.id


def test_writes_are_not_served(sim, http):
    seat = sim.seed_company()
    response = http.post(root(seat) + "/journals", json={}, headers={"Authorization": f"Bearer {token(http, seat)}"})
    assert response.status_code == 405 and error_code(response) == "BadRequest_MethodNotAllowed"


# ------------------------------------------------------------------ shapes


def test_company_and_companies_are_shaped_as_described(sim, http):
    seat = sim.seed_company()
    access = token(http, seat)
    one = get(http, seat, bearer=access)
    assert one.status_code == 200 and single_problems("companies", one.json()) == []
    listing = get(http, seat, root(seat).split("(")[0], bearer=access)
    assert listing.status_code == 200
    assert collection_problems("companies", listing.json()) == []
    assert [c["id"] for c in listing.json()["value"]] == [seat.company.id]


@pytest.mark.parametrize(
    ("entity_set", "params"),
    [
        ("accounts", {}),
        ("journals", {}),
        ("taxGroups", {}),
        ("vendors", {}),
        ("purchaseInvoices", {}),
        ("generalLedgerSetup", {}),
        ("attachments", "parentId"),
    ],
)
def test_every_entity_set_is_shaped_as_the_extract_describes(sim, http, entity_set, params):
    seat = sim.seed_company()
    if params == "parentId":
        params = {"$filter": f"parentId eq {seat.company.purchase_invoices[0]['id']}"}
    response = get(http, seat, f"/{entity_set}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["value"], f"{entity_set}: seed something to check"
    assert collection_problems(entity_set, body, request_path=root(seat) + f"/{entity_set}") == []
    first = body["value"][0]
    single = get(http, seat, f"/{entity_set}({first['id']})")
    assert single.status_code == 200 and single_problems(entity_set, single.json()) == []


def test_the_shape_check_is_strict():
    entity = {"@odata.etag": 'W/"JzE7MTswMDsn"', **account("8110", "Office")}
    assert entity_problems("accounts", entity) == []
    assert entity_problems("accounts", {**entity, "balance": 0})  # in Microsoft's example, not on the page
    assert entity_problems("accounts", {k: v for k, v in entity.items() if k != "@odata.etag"})
    assert entity_problems("accounts", {**entity, "accountType": "Begin-Total"})  # not the wire form
    assert entity_problems("accounts", {**entity, "blocked": None})
    reordered = {"@odata.etag": entity["@odata.etag"], "number": entity["number"], **entity}
    assert entity_problems("accounts", reordered)


def test_enum_values_travel_encoded(sim, http):
    seat = sim.seed_company()
    accounts = get(http, seat, "/accounts").json()["value"]
    assert {a["accountType"] for a in accounts} >= {"Posting", "Heading", "Begin_x002D_Total", "End_x002D_Total"}
    assert "_x0020_" in {a["category"] for a in accounts}
    vendors = get(http, seat, "/vendors").json()["value"]
    assert [v["blocked"] for v in vendors] == ["_x0020_", "Payment", "All"]
    assert encode_enum("Purch. Return Shipment") == "Purch_x002E__x0020_Return_x0020_Shipment"
    assert decode_enum("Sales_x0020_Tax") == "Sales Tax" and decode_enum("All") == "All"


def test_a_select_narrows_each_entity(sim, http):
    seat = sim.seed_company()
    body = get(http, seat, "/vendors", params={"$select": "number,blocked"}).json()
    assert collection_problems("vendors", body, selected={"number", "blocked"}) == []
    assert set(body["value"][0]) == {"@odata.etag", "number", "blocked"}


# ------------------------------------------------------------------ paging


def test_pages_are_cut_at_the_servers_size_and_linked_with_a_skiptoken(sim, http):
    seat = sim.seed_company(max_page_size=2)
    access = token(http, seat)
    seen: list[str] = []
    link: str | None = root(seat) + "/accounts"
    pages = 0
    while link:
        body = get(http, seat, link.replace(sim.base_url, ""), bearer=access).json()
        assert collection_problems("accounts", body, request_path=root(seat) + "/accounts") == []
        seen += [a["number"] for a in body["value"]]
        link = body.get("@odata.nextLink")
        assert link is None or (link.startswith(sim.base_url) and "$skiptoken=" in link)
        pages += 1
    assert pages == 5 and seen == [a["number"] for a in seat.company.accounts]


def test_prefer_maxpagesize_is_honoured_and_said(sim, http):
    seat = sim.seed_company()
    response = get(http, seat, "/accounts", headers={"Prefer": "odata.maxpagesize=4"})
    assert len(response.json()["value"]) == 4 and "@odata.nextLink" in response.json()
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=4"
    everything = get(http, seat, "/accounts")
    assert "@odata.nextLink" not in everything.json() and "Preference-Applied" not in everything.headers


def test_the_next_link_keeps_the_filter_and_top_caps_the_whole(sim, http):
    seat = sim.seed_company(max_page_size=1)
    access = token(http, seat)
    params = {"$filter": "category eq 'Expense'", "$top": "2"}
    first = get(http, seat, "/accounts", params=params, bearer=access).json()
    second = get(http, seat, first["@odata.nextLink"].replace(sim.base_url, ""), bearer=access).json()
    assert [a["number"] for a in first["value"] + second["value"]] == ["8110", "8120"]
    assert "@odata.nextLink" not in second


def test_skip_is_refused(sim, http):
    seat = sim.seed_company()
    response = get(http, seat, "/accounts", params={"$skip": "2"})
    assert response.status_code == 400 and error_problems(response.json()) == []
    assert "nextLink" in response.json()["error"]["message"]


def test_a_forged_skiptoken_is_refused(sim, http):
    seat = sim.seed_company()
    assert get(http, seat, "/accounts", params={"$skiptoken": "not-ours"}).status_code == 400


# ------------------------------------------------------------------ $filter


@pytest.mark.parametrize(
    ("entity_set", "expression", "expected"),
    [
        ("accounts", "number eq '8110'", ["8110"]),
        ("accounts", "number in ('8110','8120','8999')", ["8110", "8120"]),
        ("accounts", "number eq '8110' or number eq '5420'", ["5420", "8110"]),
        ("accounts", "accountType eq 'Posting' and blocked eq true", ["8120"]),
        ("accounts", "accountType eq 'Begin-Total'", ["8100"]),
        ("accounts", "not (directPosting eq true) and accountType eq 'Posting'", ["5410", "8130"]),
        ("accounts", "startswith(displayName,'Office')", ["8110"]),
        ("vendors", "blocked eq 'All'", ["V0003"]),
        ("vendors", "blocked eq ' '", ["V0001"]),
        ("vendors", "blocked eq '_x0020_'", ["V0001"]),
        ("taxGroups", "code eq 'STANDARD'", ["STANDARD"]),
        ("journals", "code eq 'PLEO'", ["PLEO"]),
        ("journals", "templateDisplayName eq 'PAYMENT'", ["BANK"]),
        ("journals", "code eq 'BANK'", []),
    ],
)
def test_filters(sim, http, entity_set, expression, expected):
    seat = sim.seed_company()
    response = get(http, seat, f"/{entity_set}", params={"$filter": expression})
    assert response.status_code == 200, response.text
    found = sorted(item.get("number") or item.get("code") for item in response.json()["value"])
    assert found == sorted(expected)


@pytest.mark.parametrize("expression", ["nosuch eq 'x'", "number eq", "number eq '8110' and", "number like '8%'"])
def test_bad_filters_are_400(sim, http, expression):
    seat = sim.seed_company()
    response = get(http, seat, "/accounts", params={"$filter": expression})
    assert response.status_code == 400 and error_problems(response.json()) == []


def test_journals_list_only_the_default_template_unless_filtered(sim, http):
    seat = sim.seed_company()
    codes = [j["code"] for j in get(http, seat, "/journals").json()["value"]]
    assert codes == ["DEFAULT", "PLEO"]
    bank = next(j for j in seat.company.journals if j["code"] == "BANK")
    assert get(http, seat, f"/journals({bank['id']})").status_code == 200  # by key: any template


def test_attachments_need_a_parent_id(sim, http):
    seat = sim.seed_company()
    response = get(http, seat, "/attachments", params={"$top": "1", "$select": "id"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("You must specify a parentId")
    nothing = get(http, seat, "/attachments", params={"$filter": f"parentId eq {bc.BLANK_GUID}"})
    assert nothing.status_code == 200 and nothing.json()["value"] == []


# ------------------------------------------------------------------ traits


def test_a_company_without_vat_lists_sales_tax_groups(sim, http):
    seat = sim.seed_company(vat=False)
    body = get(http, seat, "/taxGroups").json()
    assert collection_problems("taxGroups", body) == []
    assert {g["taxType"] for g in body["value"]} == {"Sales_x0020_Tax"}


def test_the_posting_window_is_served_as_set(sim, http):
    seat = sim.seed_company(gl_setup=gl_setup(allow_from="2020-01-01", allow_to="2020-12-31"))
    setup = get(http, seat, "/generalLedgerSetup").json()["value"][0]
    assert (setup["allowPostingFrom"], setup["allowPostingTo"]) == ("2020-01-01", "2020-12-31")
    blank = sim.seed_company()
    open_setup = get(http, blank, "/generalLedgerSetup").json()["value"][0]
    assert (open_setup["allowPostingFrom"], open_setup["allowPostingTo"]) == ("0001-01-01", "0001-01-01")


@pytest.mark.parametrize(("status", "fragment"), [(403, "permissions prevented the action"), (400, "do not have")])
def test_a_missing_permission_set_refuses_that_entity_set_only(sim, http, status, fragment):
    seat = sim.seed_company(denied={"journals"}, permission_status=status)
    access = token(http, seat)
    refused = get(http, seat, "/journals", bearer=access)
    assert refused.status_code == status and error_code(refused) == "Internal_ServerError"
    assert fragment in refused.json()["error"]["message"]
    if status == 403:
        assert "(TableData 232 Gen. Journal Batch Read: Base Application)" in refused.json()["error"]["message"]
    assert get(http, seat, "/accounts", bearer=access).status_code == 200
    assert get(http, seat, bearer=access).status_code == 200


@pytest.mark.parametrize(
    ("status", "retry_after"), [(429, "7"), (429, None), (503, "30"), (504, None)], ids=["429-ra", "429", "503", "504"]
)
def test_an_unavailable_environment(sim, http, status, retry_after):
    seat = sim.seed_company()
    access = token(http, seat)
    sim.make_unavailable(seat.environment, status, retry_after=retry_after, times=2)
    for _ in range(2):
        response = get(http, seat, bearer=access)
        assert response.status_code == status
        assert response.headers.get("Retry-After") == retry_after
        if status != 504:
            assert error_problems(response.json()) == []
    assert get(http, seat, bearer=access).status_code == 200


def test_the_rate_limit_answers_429(sim, http, monkeypatch):
    monkeypatch.setattr(bc, "RATE_LIMIT", 3)
    seat = sim.seed_company()
    access = token(http, seat)
    statuses = [get(http, seat, bearer=access).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    sim.advance(301)
    assert get(http, seat, bearer=access).status_code == 200


def test_generic_faults_apply(sim, http):
    seat = sim.seed_company()
    access = token(http, seat)
    sim.inject("GET", r"/v2\.0/.*", status=502, headers={"Retry-After": "3"})
    assert get(http, seat, bearer=access).status_code == 502
    sim.inject("GET", r"/v2\.0/.*", disconnect=True)
    with pytest.raises(httpx.TransportError):
        get(http, seat, bearer=access)
    assert get(http, seat, bearer=access).status_code == 200


# ------------------------------------------------------------------ the sandbox's seed


class _Aws:
    def __init__(self) -> None:
        self.secrets: dict[str, Any] = {}

    def put_secret(self, secret_id: str, value: Any, **_: Any) -> None:
        self.secrets[secret_id] = value


def test_seed_stores_the_apps_credentials_and_a_company_ref_the_connector_reads(sim, http):
    from export_preflight.connectors.businesscentral import COMPANY_REF

    sandbox = SimpleNamespace(aws=_Aws())
    seeded = bc.SIMULATOR.seed(sandbox, sim, "aarhus", company_id="c-1")
    assert COMPANY_REF.fullmatch(seeded.company_ref)
    stored = sandbox.aws.secrets[seeded.secret_id]
    assert set(stored) == {"clientId", "clientSecret"} and stored["clientSecret"] in seeded.secrets.values()
    assert seeded.mappings == {
        "journal": "PLEO",
        "expenseAccount": "8110",
        "contraAccount": "5420",
        "vatCodes": ["STANDARD"],
    }
    assert get(http, seeded.handle).status_code == 200


@pytest.mark.parametrize(
    ("trait", "token_status", "api_status"),
    [
        ("wrong_secret", 401, None),
        ("secret_expired", 401, None),
        ("app_not_found", 400, None),
        ("tenant_not_found", 400, None),
        ("no_business_central", 400, None),
        ("no_roles", 200, 401),
        ("unregistered_app", 200, 401),
        ("app_disabled", 200, 401),
        ("wrong_environment", 200, 404),
        ("unknown_company", 200, 404),
    ],
)
def test_seed_traits_break_one_thing_each(sim, http, trait, token_status, api_status):
    sandbox = SimpleNamespace(aws=_Aws())
    seeded = bc.SIMULATOR.seed(sandbox, sim, "broken", company_id="c-2", **{trait: True})
    tenant, environment, company = seeded.company_ref.split("/")
    stored = sandbox.aws.secrets[seeded.secret_id]
    answer = http.post(
        f"/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": stored["clientId"],
            "client_secret": stored["clientSecret"],
            "scope": SCOPE,
        },
    )
    assert answer.status_code == token_status
    if api_status is not None:
        response = http.get(
            f"/v2.0/{tenant}/{environment}/api/v2.0/companies({company})",
            headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
        )
        assert response.status_code == api_status
