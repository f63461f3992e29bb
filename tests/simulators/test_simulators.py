"""The local simulators behave like the APIs they stand in for, and their test hooks
(request log, latency, injected faults) work."""

from __future__ import annotations

import base64
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from sandbox.simulators import EconomicSimulator, PleoSimulator

COMPANY = "11111111-1111-4111-8111-111111111111"
OTHER_COMPANY = "22222222-2222-4222-8222-222222222222"
API_KEY = "pleo-key-1"
APP, GRANT = "app-secret-1", "grant-1"
# One TLS context for every client: building one per client (certifi) costs ~40 ms each.
TLS = ssl.create_default_context()
SPEC_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "docs" / "pleo-export-api-v3.openapi.yaml",
    Path(__file__).resolve().parents[3] / "shared" / "pleo" / "export-api-v3.openapi.yaml",
)


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, verify=TLS, **kwargs)


def post(url: str, **kwargs) -> httpx.Response:
    return httpx.post(url, verify=TLS, **kwargs)


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def pleo():
    with PleoSimulator() as sim:
        sim.add_api_key(API_KEY, [COMPANY])
        yield sim


@pytest.fixture
def pleo_http(pleo):
    with httpx.Client(base_url=pleo.base_url, headers=basic(API_KEY), timeout=2, verify=TLS) as client:
        yield client


@pytest.fixture
def economic():
    with EconomicSimulator() as sim:
        sim.add_agreement(
            app_secret_token=APP, agreement_grant_token=GRANT, agreement_number=123456, company_name="Acme"
        )
        yield sim


@pytest.fixture
def economic_http(economic):
    headers = {"X-AppSecretToken": APP, "X-AgreementGrantToken": GRANT}
    with httpx.Client(base_url=economic.base_url, headers=headers, timeout=2, verify=TLS) as client:
        yield client


@cache
def pleo_components() -> dict:
    for path in SPEC_CANDIDATES:
        if path.exists():
            return yaml.safe_load(path.read_text())["components"]
    pytest.skip("Pleo OpenAPI description not found")


def pleo_schema(name: str) -> OAS30Validator:
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": pleo_components()})


# ------------------------------------------------------------------ Pleo


def test_pleo_job_matches_the_openapi_export_job(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY)
    response = pleo_http.get(f"/v3/export-jobs/{job['id']}")
    assert response.status_code == 200
    pleo_schema("ExportJobEnvelope").validate(response.json())
    assert set(response.json()["data"]) == set(pleo_components()["schemas"]["ExportJob"]["properties"])
    assert response.json()["data"]["createdAt"].endswith("Z") and len(response.json()["data"]["createdAt"]) == 20


def test_pleo_lifecycle_fail_then_fail_again(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY, status="in_progress")
    body = {
        "jobId": job["id"],
        "event": "failed",
        "failureReason": "Account 5820 is barred in e-conomic.",
        "failureReasonType": "invalid_configuration",
    }
    first = pleo_http.post("/v3/export-job-events", json=body)
    assert first.status_code == 202 and first.content == b"" and first.headers["content-length"] == "0"
    stored = pleo.job(job["id"])
    assert stored["status"] == "failed"
    assert stored["failureReasonType"] == "invalid_configuration"
    assert stored["failureReason"] == body["failureReason"]
    assert pleo.events == [body]

    again = pleo_http.post("/v3/export-job-events", json=body)
    assert again.status_code == 422
    assert again.json() == {"type": "INVALID_EXPORT_JOB_STATUS_CHANGE", "message": "Export Job status change failed"}
    assert len(pleo.events) == 1


def test_pleo_started_claims_a_pending_job_once(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY, status="pending")
    assert job["startedAt"] is None
    assert pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "started"}).status_code == 202
    assert pleo.job(job["id"])["status"] == "in_progress" and pleo.job(job["id"])["startedAt"]
    assert pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "started"}).status_code == 422
    completed = pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "completed"})
    assert completed.status_code == 202 and pleo.job(job["id"])["completedAt"]


def test_pleo_unknown_and_malformed_job_ids(pleo_http):
    missing = pleo_http.get(f"/v3/export-jobs/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json() == {"type": "EXPORT_NOT_FOUND", "message": "Export job not found."}
    assert pleo_http.get("/v3/export-jobs/not-a-uuid").status_code == 400
    event = pleo_http.post("/v3/export-job-events", json={"jobId": str(uuid.uuid4()), "event": "failed"})
    assert event.status_code == 404 and event.json()["type"] == "EXPORT_NOT_FOUND"


def test_pleo_auth_401_and_403(pleo):
    job = pleo.add_job(company_id=COMPANY)
    other = pleo.add_job(company_id=OTHER_COMPANY)
    url = f"{pleo.base_url}/v3/export-jobs/{job['id']}"
    no_auth = get(url)
    assert no_auth.status_code == 401 and no_auth.json()["type"] == "UNAUTHORIZED"
    assert get(url, headers=basic("wrong-key")).status_code == 401
    assert get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    wrong_company = get(f"{pleo.base_url}/v3/export-jobs/{other['id']}", headers=basic(API_KEY))
    assert wrong_company.status_code == 403 and wrong_company.json()["type"]
    event = post(
        f"{pleo.base_url}/v3/export-job-events", json={"jobId": other["id"], "event": "failed"}, headers=basic(API_KEY)
    )
    assert event.status_code == 403 and pleo.job(other["id"])["status"] == "in_progress"


def test_pleo_bearer_tokens_expire():
    now = [1_000_000.0]
    with PleoSimulator(clock=lambda: now[0]) as pleo:
        pleo.add_access_token("tok", [COMPANY], expires_at=now[0] + 60)
        job = pleo.add_job(company_id=COMPANY)
        url = f"{pleo.base_url}/v3/export-jobs/{job['id']}"
        assert get(url, headers={"Authorization": "Bearer tok"}).status_code == 200
        now[0] += 61
        expired = get(url, headers={"Authorization": "Bearer tok"})
        assert expired.status_code == 401 and "expired" in expired.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"event": "failed"},
        {"jobId": "JOB", "event": "cancelled"},
        {"jobId": "JOB"},
        {"jobId": "not-a-uuid", "event": "failed"},
        {"jobId": "JOB", "event": "failed", "failureReasonType": "accounting_system_validation_failure"},
        {"exportJobId": "JOB", "event": "failed"},
        {"jobId": "JOB", "event": "failed", "failureReason": 42},
        ["JOB"],
    ],
    ids=[
        "no-jobId",
        "unknown-event",
        "no-event",
        "bad-uuid",
        "item-level-reason-type",
        "unknown-field",
        "reason-not-text",
        "not-an-object",
    ],
)
def test_pleo_event_body_validation_400(pleo, pleo_http, body):
    job = pleo.add_job(company_id=COMPANY)
    if isinstance(body, dict):
        body = {k: (job["id"] if v == "JOB" else v) for k, v in body.items()}
    response = pleo_http.post("/v3/export-job-events", json=body)
    assert response.status_code == 400 and response.json()["type"]
    assert pleo.events == [] and pleo.job(job["id"])["status"] == "in_progress"


def test_pleo_event_invalid_json_is_400(pleo, pleo_http):
    response = pleo_http.post(
        "/v3/export-job-events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


def test_pleo_list_jobs_filters_by_company_and_statuses(pleo, pleo_http):
    pending = pleo.add_job(company_id=COMPANY, status="pending")
    running = pleo.add_job(company_id=COMPANY, status="in_progress")
    pleo.add_job(company_id=COMPANY, status="completed")
    pleo.add_job(company_id=OTHER_COMPANY, status="pending")
    response = pleo_http.get(
        "/v3/export-jobs", params=[("company_id", COMPANY), ("statuses", "pending"), ("statuses", "in_progress")]
    )
    assert response.status_code == 200
    pleo_schema("ExportJobPage").validate(response.json())
    assert {job["id"] for job in response.json()["data"]} == {pending["id"], running["id"]}
    pagination = response.json()["pagination"]
    assert pagination["hasNextPage"] is False and pagination["hasPreviousPage"] is False
    assert pagination["currentRequestPagination"]["parameters"]["statuses"] == ["pending", "in_progress"]
    assert pleo_http.get("/v3/export-jobs", params={"company_id": OTHER_COMPANY}).status_code == 403
    assert pleo_http.get("/v3/export-jobs", params={"statuses": "canceled"}).status_code == 400


def test_pleo_expire_job(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY)
    pleo.expire_job(job["id"])
    data = pleo_http.get(f"/v3/export-jobs/{job['id']}").json()["data"]
    assert data["status"] == "failed" and data["failureReasonType"] == "job_expired" and data["expiredAt"]
    assert pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "failed"}).status_code == 422


# ------------------------------------------------------------------ e-conomic


def test_economic_self_with_good_tokens(economic_http):
    response = economic_http.get("/self")
    assert response.status_code == 200
    body = response.json()
    assert body["agreementNumber"] == 123456
    assert body["company"]["name"] == "Acme" and body["company"]["vatNumber"] == "DK12345678"
    assert [role["name"] for role in body["application"]["requiredRoles"]] == ["SuperUser"]
    # self.get.schema.json types internationalLedger as a string
    assert body["settings"] == {"baseCurrency": "DKK", "internationalLedger": "false"}
    assert response.headers["X-CallCost"] == "1"
    assert response.headers["X-RateLimiting"].startswith("token-limit-10000-per-60-seconds: ")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-AppSecretToken": APP}, {"X-AppSecretToken": APP, "X-AgreementGrantToken": "wrong"}],
    ids=["none", "app-only", "wrong-grant"],
)
def test_economic_bad_tokens_401(economic, headers):
    response = get(f"{economic.base_url}/self", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert {"message", "developerHint", "logId", "httpStatusCode", "logTime"} <= set(body)
    assert body["httpStatusCode"] == 401


def test_economic_revoked_grant_401(economic, economic_http):
    economic.agreement(123456).revoked = True
    assert economic_http.get("/accounts").status_code == 401


def test_economic_bookkeeping_role_cannot_read_self(economic):
    economic.add_agreement(
        app_secret_token="bk-app", agreement_grant_token="bk-grant", agreement_number=7, company_name="Books",
        roles=("Bookkeeping",),
    )  # fmt: skip
    headers = {"X-AppSecretToken": "bk-app", "X-AgreementGrantToken": "bk-grant"}
    forbidden = get(f"{economic.base_url}/self", headers=headers)
    assert forbidden.status_code == 403 and forbidden.json()["httpStatusCode"] == 403
    assert get(f"{economic.base_url}/accounts", params={"pagesize": 1}, headers=headers).status_code == 200
    economic.agreement(7).self_forbidden = False
    assert get(f"{economic.base_url}/self", headers=headers).status_code == 200


def test_economic_sales_role_cannot_read_ledger(economic):
    economic.add_agreement(
        app_secret_token="s-app", agreement_grant_token="s-grant", agreement_number=8, company_name="Shop",
        roles=("Sales",),
    )  # fmt: skip
    headers = {"X-AppSecretToken": "s-app", "X-AgreementGrantToken": "s-grant"}
    assert get(f"{economic.base_url}/self", headers=headers).status_code == 200
    assert get(f"{economic.base_url}/accounts", headers=headers).status_code == 403


def test_economic_accounts_filter_in(economic_http):
    response = economic_http.get("/accounts", params={"filter": "accountNumber$in:[5820,9999,4242]"})
    assert response.status_code == 200
    body = response.json()
    assert [a["accountNumber"] for a in body["collection"]] == [5820, 9999]
    assert body["pagination"]["results"] == 2 and body["pagination"]["resultsWithoutFilter"] == 15
    assert "nextPage" not in body["pagination"]
    usable, barred = body["collection"]
    assert "barred" not in usable and barred["barred"] is True  # false booleans are omitted
    assert usable["self"].endswith("/accounts/5820") and usable["vatAccount"]["vatCode"] == "I25"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("accountNumber$eq:5900", [5900]),
        ("barred$eq:true", [9999]),
        ("accountType$eq:status$and:debitCredit$eq:credit", [7000, 7710, 7720]),
        ("(accountNumber$lt:1010$or:accountNumber$gt:7720)$and:accountType$ne:heading", [9999]),
        ("name$like:kontor*", [5820]),
        ("name$like:moms$and:accountNumber$nin:[7700,7710]", [1010, 7720]),
    ],
)
def test_economic_filter_language(economic_http, flt, expected):
    response = economic_http.get("/accounts", params={"filter": flt})
    assert response.status_code == 200, response.json()
    assert [a["accountNumber"] for a in response.json()["collection"]] == expected


def test_economic_rejects_filters_it_does_not_support(economic_http):
    unknown = economic_http.get("/accounts", params={"filter": "vatAccount.vatCode$eq:I25"})
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "Could not parse query string filter."
    assert "accountNumber" in unknown.json()["allowedFilteringFields"]
    text_in = economic_http.get("/vat-accounts", params={"filter": "vatCode$in:[I25,U25]"})
    assert text_in.status_code == 400  # $in: is for numeric properties only
    # vat-accounts.get.schema.json marks no property filterable
    vat_code = economic_http.get("/vat-accounts", params={"filter": "vatCode$eq:I25"})
    assert vat_code.status_code == 400 and vat_code.json()["allowedFilteringFields"] == []
    assert economic_http.get("/accounts", params={"filter": "accountNumber$in:[5820"}).status_code == 400
    assert economic_http.get("/accounts", params={"filter": "accountNumber$eq:abc"}).status_code == 400


def test_economic_lenient_filters_allow_text_in():
    with EconomicSimulator(strict_filters=False) as sim:
        sim.add_agreement(app_secret_token=APP, agreement_grant_token=GRANT, agreement_number=1, company_name="A")
        response = get(
            f"{sim.base_url}/vat-accounts",
            params={"filter": "vatCode$in:[I25,U25]"},
            headers={"X-AppSecretToken": APP, "X-AgreementGrantToken": GRANT},
        )
        assert response.status_code == 200
        assert sorted(v["vatCode"] for v in response.json()["collection"]) == ["I25", "U25"]


def test_economic_pagination(economic_http):
    pages, skip = [], 0
    while True:
        body = economic_http.get("/accounts", params={"pagesize": 4, "skippages": skip}).json()
        pages.append([a["accountNumber"] for a in body["collection"]])
        if "nextPage" not in body["pagination"]:
            break
        skip += 1
    assert [len(page) for page in pages] == [4, 4, 4, 3]
    assert body["pagination"]["lastPage"].endswith("pagesize=4&skippages=3")
    assert economic_http.get("/accounts").json()["pagination"]["pageSize"] == 20
    assert economic_http.get("/accounts", params={"pagesize": 1001}).status_code == 400


def test_economic_single_resources(economic, economic_http):
    missing = economic_http.get("/accounts/4242")
    assert missing.status_code == 404 and missing.json()["errorCode"] == "E06000"
    assert economic_http.get("/vat-accounts/I25").json()["ratePercentage"] == 25.0
    journals = {j["journalNumber"]: j for j in economic_http.get("/journals").json()["collection"]}
    assert "entryTypeRestrictedTo" not in journals[1]["settings"]
    assert journals[2]["settings"]["entryTypeRestrictedTo"] == "supplierInvoice"
    assert (
        economic_http.get("/journals/3").json()["settings"]["contraAccounts"]["financeVouchers"]["accountNumber"]
        == 6820
    )
    suppliers = economic_http.get("/suppliers", params={"filter": "name$eq:telia danmark"}).json()["collection"]
    assert [s["supplierNumber"] for s in suppliers] == [2]
    assert economic_http.get("/suppliers/4").json()["barred"] is True
    years = economic_http.get("/accounting-years").json()["collection"]
    assert [("closed" in y) for y in years] == [True, False]
    economic.agreement(123456).accounts[5820]["barred"] = True
    assert economic_http.get("/accounts/5820").json()["barred"] is True


def test_economic_root_needs_no_tokens(economic):
    response = get(f"{economic.base_url}/")
    assert response.status_code == 200 and response.json()["resources"]["stable"]


# ------------------------------------------------------------------ faults, latency, keep-alive


def test_injected_status_is_consumed_in_order_then_normal_answers_return(economic, economic_http):
    first = economic.inject("GET", r"/accounts", status=503, times=2)
    second = economic.inject("*", r"/accounts", status=429, json={"message": "slow down"}, headers={"Retry-After": "1"})
    assert [economic_http.get("/accounts").status_code for _ in range(4)] == [503, 503, 429, 200]
    assert (first.hits, second.hits) == (2, 1)
    throttled = [r for r in economic.requests if r.path == "/accounts"]
    assert len(throttled) == 4
    economic.inject("GET", r"/accounts", status=429, headers={"Retry-After": "2"})
    response = economic_http.get("/accounts")
    assert response.headers["Retry-After"] == "2" and "X-RateLimiting" in response.headers


def test_injected_forever_until_cleared(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY)
    pleo.inject("GET", r"/v3/export-jobs/.*", status=500, times=None)
    assert {pleo_http.get(f"/v3/export-jobs/{job['id']}").status_code for _ in range(3)} == {500}
    pleo.clear_faults()
    assert pleo_http.get(f"/v3/export-jobs/{job['id']}").status_code == 200


def test_injected_delay_triggers_client_timeout(economic, economic_http):
    economic.inject("GET", r"/self", delay=1.0)
    with pytest.raises(httpx.TimeoutException):
        economic_http.get("/self", timeout=0.2)
    assert economic_http.get("/self").status_code == 200
    assert len(economic.requests_to("GET", r"/self")) == 2


def test_injected_disconnect_is_a_transport_error(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY)
    pleo.inject("POST", r"/v3/export-job-events", disconnect=True)
    with pytest.raises(httpx.TransportError):
        pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "failed"})
    assert pleo.job(job["id"])["status"] == "in_progress"
    assert len(pleo.requests) == 1  # the dropped request is still recorded
    assert pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "failed"}).status_code == 202


def test_latency_slows_every_call(economic, economic_http):
    economic.latency = 0.05
    started = time.perf_counter()
    for _ in range(3):
        economic_http.get("/self")
    assert time.perf_counter() - started >= 0.15


def test_latency_does_not_serialise_concurrent_clients(economic):
    economic.latency = 0.2
    headers = {"X-AppSecretToken": APP, "X-AgreementGrantToken": GRANT}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda _: get(f"{economic.base_url}/self", headers=headers).status_code, range(10)))
    assert codes == [200] * 10
    assert time.perf_counter() - started < 1.0


def test_keep_alive_reuses_one_connection(economic, economic_http):
    economic_http.get("/self")
    economic_http.get("/accounts")
    with httpx.Client(base_url=economic.base_url, verify=TLS) as other:
        other.get("/")
    first, second, third = economic.requests
    assert first.connection_id == second.connection_id != third.connection_id


def test_unknown_route_is_json_404(pleo_http, economic_http):
    pleo_missing = pleo_http.get("/v4/nothing")
    assert pleo_missing.status_code == 404 and pleo_missing.json()["type"] == "NOT_FOUND"
    econ_missing = economic_http.get("/customers")
    assert econ_missing.status_code == 404 and econ_missing.json()["httpStatusCode"] == 404
    assert economic_http.post("/accounts", json={}).status_code == 405


def test_requests_are_recorded_with_headers_and_body(pleo, pleo_http):
    job = pleo.add_job(company_id=COMPANY)
    pleo_http.post("/v3/export-job-events", json={"jobId": job["id"], "event": "failed"})
    (recorded,) = pleo.requests
    assert recorded.method == "POST" and recorded.path == "/v3/export-job-events"
    assert recorded.headers["authorization"] == basic(API_KEY)["Authorization"]
    assert recorded.json == {"jobId": job["id"], "event": "failed"}
    pleo.reset_requests()
    assert pleo.requests == []


def test_fault_when_narrows_to_matching_requests(economic, economic_http):
    economic.add_agreement(app_secret_token="a2", agreement_grant_token="g2", agreement_number=2, company_name="B")
    fault = economic.inject(
        "GET", r"/self", status=503, times=None, when=lambda r: r.headers.get("X-AgreementGrantToken") == "g2"
    )
    assert economic_http.get("/self").status_code == 200
    other = get(f"{economic.base_url}/self", headers={"X-AppSecretToken": "a2", "X-AgreementGrantToken": "g2"})
    assert other.status_code == 503 and fault.hits == 1


def test_reset_drops_state_but_keeps_serving(pleo, pleo_http, economic, economic_http):
    pleo.add_job(company_id=COMPANY)
    pleo.inject("*", r".*", status=500, times=None)
    pleo.reset()
    assert pleo.jobs() == [] and pleo.requests == [] and pleo.events == []
    assert pleo_http.get(f"/v3/export-jobs/{uuid.uuid4()}").status_code == 401  # keys are gone too
    economic.reset()
    assert economic_http.get("/self").status_code == 401


def test_economic_sort(economic_http):
    numbers = [
        a["accountNumber"]
        for a in economic_http.get("/accounts", params={"sort": "-accountNumber"}).json()["collection"]
    ]
    assert numbers == sorted(numbers, reverse=True)
    types = economic_http.get("/accounts", params={"sort": "accountType,-accountNumber", "pagesize": 3}).json()
    assert [a["accountNumber"] for a in types["collection"]] == [6700, 5800, 1000]
