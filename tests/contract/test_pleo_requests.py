"""Every request the Pleo client sends is valid against Pleo's Export API v3 description,
and the client reads Pleo's answers the way the API documents them."""

from __future__ import annotations

import uuid

import httpx
import pytest
import respx
from openapi_core.validation.request.exceptions import RequestValidationError
from pydantic import SecretStr

from export_preflight.errors import JobNotConfirmed, PleoUnavailable, UnprocessableMessage
from export_preflight.http import new_client
from export_preflight.models import FailureReasonType, PleoAccessToken, PleoApiKey
from export_preflight.pleo import PleoClient
from tests.contract.openapi import validate_pleo_request

BASE = "https://external.pleo.io"
JOB_ID = uuid.UUID("9a3c2f1e-5b7d-4c8a-9e6f-0123456789ab")
COMPANY_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")


def job_body(status: str) -> dict:
    return {
        "data": {
            "id": str(JOB_ID),
            "companyId": str(COMPANY_ID),
            "status": status,
            "createdAt": "2026-11-23T10:00:00Z",
            "expiresIn": 3600,
            "isInteractive": True,
            "numberOfItems": 2,
            "vendorBasedBookkeeping": False,
        }
    }


@pytest.fixture
def pleo():
    with new_client(BASE, timeout_seconds=2) as http:
        yield PleoClient(http, PleoApiKey(apiKey=SecretStr("key-123")))


@pytest.fixture
def api():
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def test_get_job_request_is_valid_and_uses_basic_auth_with_empty_password(pleo, api):
    route = api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("in_progress"))
    job = pleo.get_job(JOB_ID)
    assert job is not None and job.in_progress
    request = route.calls.last.request
    validate_pleo_request(request)
    assert request.headers["Authorization"] == "Basic a2V5LTEyMzo="  # base64("key-123:")


def test_bearer_token_credentials(api):
    route = api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("in_progress"))
    with new_client(BASE, timeout_seconds=2) as http:
        PleoClient(http, PleoAccessToken(accessToken=SecretStr("tok"))).get_job(JOB_ID)
    assert route.calls.last.request.headers["Authorization"] == "Bearer tok"
    validate_pleo_request(route.calls.last.request)


def test_failed_event_body_is_valid_and_the_job_is_confirmed(pleo, api):
    post = api.post("/v3/export-job-events").respond(202)
    get = api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("failed"))
    job = pleo.fail_job(JOB_ID, FailureReasonType.MISSING_CONFIGURATION, "Map an expense account.")
    assert job.status == "failed"
    request = post.calls.last.request
    validate_pleo_request(request)
    assert request.read() and get.called
    body = httpx.Response(200, content=request.content).json()
    assert body == {
        "event": "failed",
        "jobId": str(JOB_ID),
        "failureReason": "Map an expense account.",
        "failureReasonType": "missing_configuration",
    }


def test_every_failure_reason_type_we_can_send_is_in_the_spec(pleo, api):
    post = api.post("/v3/export-job-events").respond(202)
    api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("failed"))
    for reason_type in FailureReasonType:
        pleo.fail_job(JOB_ID, reason_type, "reason")
        validate_pleo_request(post.calls.last.request)


def test_the_validator_catches_a_wrong_body():
    wrong = httpx.Request(
        "POST",
        f"{BASE}/v3/export-job-events",
        json={"event": "failed", "exportJobId": str(JOB_ID)},
        headers={"Authorization": "Basic a2V5Og=="},
    )
    with pytest.raises(RequestValidationError):
        validate_pleo_request(wrong)


def test_422_means_already_decided_when_the_job_reads_failed(pleo, api):
    api.post("/v3/export-job-events").respond(422, json={"type": "INVALID_EXPORT_JOB_STATUS_CHANGE"})
    api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("failed"))
    assert pleo.fail_job(JOB_ID, FailureReasonType.INVALID_CONFIGURATION, "x").status == "failed"


def test_failed_event_not_reflected_in_the_job_is_retried(pleo, api):
    api.post("/v3/export-job-events").respond(422, json={"type": "INVALID_EXPORT_JOB_STATUS_CHANGE"})
    api.get(f"/v3/export-jobs/{JOB_ID}").respond(200, json=job_body("completed"))
    with pytest.raises(JobNotConfirmed):
        pleo.fail_job(JOB_ID, FailureReasonType.INVALID_CONFIGURATION, "x")


def test_unknown_job_is_none(pleo, api):
    api.get(f"/v3/export-jobs/{JOB_ID}").respond(404, json={"type": "EXPORT_NOT_FOUND"})
    assert pleo.get_job(JOB_ID) is None


@pytest.mark.parametrize(
    ("answer", "reason_type"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}), FailureReasonType.PLEO_RATE_LIMIT),
        (httpx.Response(503), FailureReasonType.SERVICE_UNREACHABLE),
        (httpx.ConnectError("refused"), FailureReasonType.SERVICE_UNREACHABLE),
        (httpx.ReadTimeout("slow"), FailureReasonType.SERVICE_TIMEOUT),
    ],
)
def test_transient_pleo_trouble_raises_for_a_retry(pleo, api, answer, reason_type):
    route = api.get(f"/v3/export-jobs/{JOB_ID}")
    if isinstance(answer, Exception):
        route.side_effect = answer
    else:
        route.return_value = answer
    with pytest.raises(PleoUnavailable) as raised:
        pleo.get_job(JOB_ID)
    assert raised.value.reason_type is reason_type
    if isinstance(answer, httpx.Response) and answer.status_code == 429:
        assert raised.value.retry_after == 7


def test_rejected_pleo_credentials_are_unprocessable_without_leaking_the_key(pleo, api):
    api.get(f"/v3/export-jobs/{JOB_ID}").respond(401, json={"type": "UNAUTHORIZED"})
    with pytest.raises(UnprocessableMessage) as raised:
        pleo.get_job(JOB_ID)
    assert raised.value.kind == "pleo_credentials_rejected"
    assert "key-123" not in str(raised.value)


def test_pleo_oauth_tokens_are_refreshed_on_a_401_and_the_call_retried_once(api):
    import time

    from export_preflight.models import ClientCredentials, TokenSet
    from export_preflight.oauth import TokenEndpoint
    from export_preflight.pleo import PLEO_ERRORS, pleo_auth
    from tests.unit.test_oauth import MemoryStore, manager

    store = MemoryStore(
        TokenSet(accessToken=SecretStr("old"), refreshToken=SecretStr("r0"), expiresAt=time.time() + 900)
    )
    job = api.get(f"/v3/export-jobs/{JOB_ID}")
    job.side_effect = [
        httpx.Response(401, json={"type": "UNAUTHORIZED"}),
        httpx.Response(200, json=job_body("in_progress")),
    ]
    with (
        respx.mock(base_url="https://auth.pleo.io", assert_all_called=False) as auth,
        new_client(BASE, timeout_seconds=2) as http,
    ):
        token = auth.post("/oauth/token").respond(
            200, json={"access_token": "new", "refresh_token": "r1", "expires_in": 3600, "token_type": "bearer"}
        )
        with httpx.Client(base_url="https://auth.pleo.io") as auth_http:
            endpoint = TokenEndpoint(
                auth_http,
                "/oauth/token",
                lambda: ClientCredentials(clientId="c", clientSecret=SecretStr("s")),
                "Pleo",
                errors=PLEO_ERRORS,
            )
            authorization = pleo_auth(
                store.tokens,
                secret_id="export-preflight/pleo/acme",
                oauth=(manager(store), endpoint),
            )
            assert PleoClient(http, authorization).get_job(JOB_ID) is not None
    assert token.call_count == 1
    assert [c.request.headers["Authorization"] for c in job.calls] == ["Bearer old", "Bearer new"]
    assert store.tokens.refresh_token.get_secret_value() == "r1"
    for call in job.calls:
        validate_pleo_request(call.request)
