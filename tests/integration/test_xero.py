"""Xero end to end: tenant context, scopes, the OAuth token lifecycle with real
concurrency (record threads, the DynamoDB lease on moto, Secrets Manager rotation)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from sandbox import scenarios
from tests.integration.conftest import ready_jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("seeder", scenarios.XERO_SCENARIOS, ids=lambda s: s.__name__)
def test_each_xero_scenario_ends_as_expected(sandbox, seeder):
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
    assert {r.method for r in sandbox.xero.requests if "/api.xro/" in r.path} <= {"GET"}


def test_every_accounting_call_names_the_configured_tenant(sandbox):
    scenarios.xero_passes(sandbox)
    sandbox.poller().drain()
    tenant = sandbox.companies["xero-thames"].configuration["accountingCompanyRef"]
    calls = [r for r in sandbox.xero.requests if r.path.startswith("/api.xro/")]
    assert calls and {r.headers.get("xero-tenant-id") for r in calls} == {tenant}


def test_a_missing_tenant_is_named_in_the_reason(sandbox):
    (seeded,) = scenarios.xero_tenant_missing(sandbox)
    sandbox.poller().drain()
    tenant = sandbox.companies["xero-tenant-missing"].configuration["accountingCompanyRef"]
    reason = sandbox.pleo.job(seeded.job_id)["failureReason"]
    assert tenant in reason and "Holding Ltd" in reason


def test_an_expired_token_is_refreshed_and_the_rotated_pair_stored_before_use(sandbox):
    (seeded,) = scenarios.xero_expired_token(sandbox)
    company = sandbox.companies["xero-expired-token"]
    old_refresh = company.secrets["refresh"]
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [seeded.job_id]
    assert sandbox.xero.token_calls == 1
    stored = json.loads(
        sandbox.aws.client("secretsmanager").get_secret_value(
            SecretId=company.configuration["accountingCredentialsSecretId"]
        )["SecretString"]
    )
    assert stored["refreshToken"] == company.grant.refresh_token != old_refresh
    assert stored["accessToken"] == company.grant.access_token
    # every Accounting call after the refresh used the new access token
    calls = [r for r in sandbox.xero.requests if r.path.startswith("/api.xro/")]
    assert {r.headers["Authorization"] for r in calls} == {f"Bearer {company.grant.access_token}"}


def test_concurrent_jobs_of_one_company_refresh_the_token_once(sandbox):
    company = sandbox.add_company("xero", "xero-busy", expired_token=True)
    jobs = [sandbox.add_job(company) for _ in range(6)]
    for job in jobs:
        sandbox.enqueue_job(job)
    report = sandbox.poller().drain()
    assert report.batch_sizes[0] > 1  # the jobs really were decided side by side
    assert sandbox.xero.token_calls == 1
    presented = [
        parse_qs(r.body.decode())["refresh_token"][0] for r in sandbox.xero.requests_to("POST", r"/connect/token")
    ]
    assert len(presented) == len(set(presented))
    assert sorted(h["jobId"] for h in ready_jobs(sandbox)) == sorted(j["id"] for j in jobs)


def test_a_replayed_refresh_token_is_presented_once_and_asks_to_reconnect(sandbox):
    (seeded,) = scenarios.xero_refresh_replayed(sandbox)
    sandbox.poller().drain()
    ours = sandbox.xero.requests_to("POST", r"/connect/token")[1:]  # the first was the out-of-band refresh
    assert len(ours) == 1
    assert "Reconnect Xero" in sandbox.pleo.job(seeded.job_id)["failureReason"]


def test_the_daily_limit_fails_at_once_the_minute_limit_is_retried(sandbox):
    (daily,) = scenarios.xero_passes(sandbox)
    sandbox.xero.inject_rate_limit("day", retry_after=40_000, times=None)
    report = sandbox.poller().drain()
    assert report.failures == 0
    assert sandbox.pleo.job(daily.job_id)["failureReasonType"] == "accounting_system_rate_limit"

    sandbox.reset(settings={})
    (minute,) = scenarios.xero_passes(sandbox)
    sandbox.xero.inject_rate_limit("minute", retry_after=1, times=1)
    report = sandbox.poller().drain()
    assert report.failures == 1
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [minute.job_id]
