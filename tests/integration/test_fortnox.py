"""Fortnox end to end: the real handler against moto and the simulators: company by
organisation number, the permission gates, and the single-use refresh token lifecycle."""

from __future__ import annotations

import json

import pytest

from sandbox import scenarios
from tests.integration.conftest import ready_jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seeder", scenarios.FORTNOX_SCENARIOS, ids=lambda s: s.__name__)
def test_each_fortnox_scenario_ends_as_expected(sandbox, seeder):
    (seeded,) = seeder(sandbox)
    report = sandbox.poller().drain()
    assert report.failures == 0
    job = sandbox.pleo.job(seeded.job_id)
    if seeded.expected_outcome == "handed_off":
        assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
        assert job["status"] == "in_progress" and sandbox.pleo.events == []
    else:
        assert (job["status"], job["failureReasonType"]) == ("failed", seeded.expected_reason_type)
        assert len(sandbox.pleo.events) == 1
    assert {r.method for r in sandbox.fortnox.requests if r.path.startswith("/3/")} <= {"GET"}


def test_an_expired_token_is_refreshed_once_and_the_rotated_pair_stored_before_use(sandbox):
    (seeded,) = scenarios.fortnox_expired_token(sandbox)
    company = sandbox.companies["fortnox-expired-token"]
    old_refresh = company.secrets["refresh"]
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    assert sandbox.fortnox.token_calls == 1
    stored = json.loads(
        sandbox.aws.client("secretsmanager").get_secret_value(
            SecretId=company.configuration["accountingCredentialsSecretId"]
        )["SecretString"]
    )
    assert stored["refreshToken"] == company.grant.refresh_token != old_refresh
    assert stored["accessToken"] == company.grant.access_token
    calls = [r for r in sandbox.fortnox.requests if r.path.startswith("/3/")]
    assert {r.headers["Authorization"] for r in calls} == {f"Bearer {company.grant.access_token}"}


def test_a_replayed_refresh_token_is_presented_once_and_asks_to_reactivate(sandbox):
    (seeded,) = scenarios.fortnox_refresh_replayed(sandbox)
    sandbox.poller().drain()
    ours = sandbox.fortnox.requests_to("POST", r"/oauth-v1/token")[1:]  # the first was the out-of-band refresh
    assert len(ours) == 1
    job = sandbox.pleo.job(seeded.job_id)
    assert job["failureReasonType"] == "accounting_system_authentication_failure"
    assert "re-activate the integration" in job["failureReason"]


def test_the_three_permission_gates_are_named_precisely(sandbox):
    (licence,) = scenarios.fortnox_no_supplier_invoice_licence(sandbox)
    (user,) = scenarios.fortnox_user_not_allowed(sandbox)
    sandbox.poller().drain()
    licence_reason = sandbox.pleo.job(licence.job_id)["failureReason"]
    user_reason = sandbox.pleo.job(user.job_id)["failureReason"]
    assert "no Fortnox licence for supplier invoices" in licence_reason and "2001101" in licence_reason
    assert "not allowed to use bookkeeping" in user_reason and "2000663" in user_reason


def test_a_system_exception_is_retried_then_the_job_passes(sandbox):
    (seeded,) = scenarios.fortnox_passes(sandbox)
    sandbox.fortnox.inject_system_exception(r"/3/companyinformation", status=400, times=1)
    report = sandbox.poller().drain()
    assert report.failures == 1
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
