"""QuickBooks Online end to end: the real handler against moto and the simulators — realm
binding, faults inside 200s, and the rolling refresh token stored before it is used."""

from __future__ import annotations

import json

import pytest

from sandbox import scenarios
from tests.integration.conftest import ready_jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seeder", scenarios.QUICKBOOKS_SCENARIOS, ids=lambda s: s.__name__)
def test_each_quickbooks_scenario_ends_as_expected(sandbox, seeder):
    (seeded,) = seeder(sandbox)
    report = sandbox.poller().drain()
    # transient trouble is retried (MAX_RECEIVE_COUNT 5), then failed on the last attempt
    assert report.failures == (4 if seeded.expected_reason_type == "accounting_system_unreachable" else 0)
    job = sandbox.pleo.job(seeded.job_id)
    if seeded.expected_outcome == "handed_off":
        assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
        assert job["status"] == "in_progress" and sandbox.pleo.events == []
    else:
        assert (job["status"], job["failureReasonType"]) == ("failed", seeded.expected_reason_type)
        assert len(sandbox.pleo.events) == 1
    api = [r for r in sandbox.quickbooks.requests if r.path.startswith("/v3/")]
    assert {r.method for r in api} <= {"GET"}
    assert set(sandbox.quickbooks.minor_versions()) <= {"75"}


def test_every_call_names_the_configured_realm(sandbox):
    scenarios.quickbooks_passes(sandbox)
    sandbox.poller().drain()
    realm = sandbox.companies["qbo-harbour"].configuration["accountingCompanyRef"]
    calls = [r for r in sandbox.quickbooks.requests if r.path.startswith("/v3/")]
    assert calls and {r.path.split("/")[3] for r in calls} == {realm}


def test_an_expired_token_is_refreshed_and_the_rolling_refresh_token_stored_before_use(sandbox):
    (seeded,) = scenarios.quickbooks_expired_token(sandbox)
    company = sandbox.companies["qbo-expired-token"]
    old_refresh = company.secrets["refresh"]
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    assert sandbox.quickbooks.token_calls == 1
    stored = json.loads(
        sandbox.aws.client("secretsmanager").get_secret_value(
            SecretId=company.configuration["accountingCredentialsSecretId"]
        )["SecretString"]
    )
    assert stored["refreshToken"] == company.grant.refresh_token != old_refresh
    assert stored["accessToken"] == company.grant.access_token
    assert stored["scope"] == company.grant.scope  # Intuit's refresh answer carries no scope: the stored one stays
    calls = [r for r in sandbox.quickbooks.requests if r.path.startswith("/v3/")]
    assert {r.headers["Authorization"] for r in calls} == {f"Bearer {company.grant.access_token}"}
    # the spent refresh token is refused from now on: only the stored one works
    assert company.grant.previous_refresh_token == old_refresh


def test_a_wrong_realm_is_named_in_the_reason(sandbox):
    (seeded,) = scenarios.quickbooks_other_realm(sandbox)
    sandbox.poller().drain()
    realm = sandbox.companies["qbo-other-realm"].configuration["accountingCompanyRef"]
    reason = sandbox.pleo.job(seeded.job_id)["failureReason"]
    assert realm in reason and "accountingCompanyRef" in reason


def test_a_throttled_call_is_retried_and_then_passes(sandbox):
    (seeded,) = scenarios.quickbooks_passes(sandbox)
    sandbox.quickbooks.inject_throttle(times=1, retry_after=1)
    report = sandbox.poller().drain()
    assert report.failures == 1
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
