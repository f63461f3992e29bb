"""Readiness without a job (``PreflightService.check_company``, a dry run) and the
readiness a job's preflight records: same checks, reason types and texts as for a job;
nothing written to Pleo or handed on; OAuth grants kept alive before they lapse."""

from __future__ import annotations

import uuid

import pytest

from export_preflight.errors import AccountingSystemUnavailable
from export_preflight.models import Capability, ClaimedJobMessage, FailureReasonType
from export_preflight.service import Attempt
from tests.unit.fakes import COMPANY, JOB, FakeConnector, FakeGrant, configuration
from tests.unit.test_service import NOW, World

DAY = 86_400.0


@pytest.fixture
def world() -> World:
    return World()


def nothing_was_written(world: World) -> bool:
    return not world.pleo.events and not world.hand_off.sent and not world.decisions.records


def test_a_ready_company_is_recorded_ready_and_nothing_is_written(world):
    readiness = world.service().check_company(COMPANY)

    assert (readiness.status, readiness.problems) == ("ready", [])
    assert [c.check for c in readiness.checks if c.status == "passed"] == [
        "connection_settings",
        "authentication",
        "company_context",
        "permissions",
        "bookkeeping_mode",
        "mappings_complete",
        "capabilities",
        "mapped_accounts",
        "mapped_tax_codes",
    ]
    assert world.readiness.records[str(COMPANY)] == readiness
    assert nothing_was_written(world)


def test_a_dry_run_fails_with_the_same_reason_type_and_text_as_a_job(world):
    world.connectors.connector.accounts_known.pop("5820")  # the mapped expense account is gone

    readiness = world.service().check_company(COMPANY)
    assert nothing_was_written(world)
    decision = world.service().decide(
        ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(COMPANY)}), attempt=Attempt()
    )

    assert readiness.status == "not_ready"
    assert [(p.check, p.reason_type, p.reason) for p in readiness.problems] == [
        ("mapped_accounts", decision.reason_type, decision.reason)
    ]
    assert readiness.reason_type is FailureReasonType.INVALID_CONFIGURATION


def test_vendor_bookkeeping_is_checked_when_the_company_has_it_enabled(world):
    world.connectors.connector.ungranted = {Capability.VENDOR_BOOKKEEPING: "the Bills scope"}

    enabled = world.service().check_company(COMPANY)
    world.configurations[COMPANY] = configuration(vendorBookkeepingEnabled=False)
    disabled = world.service().check_company(COMPANY)

    assert enabled.status == "not_ready" and "the Bills scope" in (enabled.problems[0].reason or "")
    assert disabled.status == "ready"


def test_receipts_are_checked_only_when_the_company_exports_them(world):
    world.connectors.connector.unsupported = {Capability.ATTACHMENT_UPLOAD: "attachments are not enabled"}

    exporting = world.service().check_company(COMPANY)
    world.configurations[COMPANY] = configuration(exportReceipts=False)
    not_exporting = world.service().check_company(COMPANY)

    assert exporting.status == "not_ready" and exporting.problems[0].check == "capabilities"
    assert not_exporting.status == "ready"


def test_transient_trouble_is_retried_then_recorded_as_unknown_on_the_last_attempt(world):
    world.connectors.connector.auth_error = AccountingSystemUnavailable("e-conomic answered 503")
    service = world.service()

    with pytest.raises(AccountingSystemUnavailable) as raised:
        service.check_company(COMPANY, attempt=Attempt(receive_count=1, max_receive_count=5), source="sweep")
    assert raised.value.remote == "economic"  # counted against the company's system
    assert str(COMPANY) not in world.readiness.records

    last = service.check_company(COMPANY, attempt=Attempt(receive_count=5, max_receive_count=5), source="sweep")
    assert last.status == "unknown"
    assert [(p.check, p.reason) for p in last.problems] == [
        ("authentication", "could not finish: e-conomic answered 503")
    ]
    assert world.readiness.records[str(COMPANY)].status == "unknown"


def test_an_unconfigured_company_is_not_ready_and_not_recorded(world):
    other = uuid.UUID("44444444-4444-4444-8444-444444444444")

    readiness = world.service().check_company(other)

    assert readiness.status == "not_ready"
    assert readiness.problems[0].reason_type is FailureReasonType.MISSING_CONFIGURATION
    assert world.readiness.records == {}


def test_known_secret_values_never_reach_a_readiness_reason(world):
    world.connectors.connector.accounts_known.pop("5820")
    world.configurations[COMPANY] = configuration(mappings={"journal": 1, "expenseAccount": "pasted-secret-value"})

    readiness = world.service().check_company(COMPANY)

    assert readiness.status == "not_ready"
    assert all("pasted-secret-value" not in (p.reason or "") for p in readiness.problems)


def grant_world(world: World, *, unused_days: float) -> FakeGrant:
    grant = FakeGrant(refreshed_at=NOW.timestamp() - unused_days * DAY, clock=NOW.timestamp())
    world.connectors.connector = FakeConnector(grant=grant)
    world.connectors.idle_seconds = 60 * DAY
    return grant


def test_a_grant_that_would_lapse_before_the_next_sweep_is_refreshed(world):
    grant = grant_world(world, unused_days=59.5)

    readiness = world.service().check_company(COMPANY, source="sweep", keep_alive_seconds=2 * DAY)

    assert grant.renewals == 1
    assert readiness.grant_renewed
    assert readiness.grant_lapses_at is not None
    assert readiness.grant_lapses_at.timestamp() == NOW.timestamp() + 60 * DAY


def test_a_grant_used_recently_is_left_alone_and_its_lapse_reported(world):
    grant = grant_world(world, unused_days=10)

    readiness = world.service().check_company(COMPANY, source="sweep", keep_alive_seconds=2 * DAY)

    assert grant.renewals == 0 and not readiness.grant_renewed
    assert readiness.grant_lapses_at is not None
    assert readiness.grant_lapses_at.timestamp() == NOW.timestamp() + 50 * DAY


def test_a_failed_keep_alive_does_not_change_the_readiness(world):
    grant = grant_world(world, unused_days=59.5)
    grant.error = AccountingSystemUnavailable("the token endpoint answered 503")

    readiness = world.service().check_company(COMPANY, source="sweep", keep_alive_seconds=2 * DAY)

    assert readiness.status == "ready" and not readiness.grant_renewed
    assert readiness.grant_lapses_at is None


def test_a_job_records_its_companys_readiness(world):
    world.connectors.connector.accounts_known.pop("5820")

    decision = world.service().decide(
        ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(COMPANY)}), attempt=Attempt()
    )

    recorded = world.readiness.records[str(COMPANY)]
    assert decision.outcome == "failed_early"
    assert (recorded.status, recorded.source, recorded.job_id) == ("not_ready", "job", str(JOB))
    assert recorded.problems[0].reason == decision.reason


def test_a_failing_readiness_store_never_costs_the_decision(world):
    world.readiness.broken = True

    decision = world.service().decide(
        ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(COMPANY)}), attempt=Attempt()
    )

    assert decision.outcome == "handed_off" and len(world.hand_off.sent) == 1


def test_a_busy_companys_jobs_do_not_each_write_the_same_readiness(world):
    writes: list[str] = []
    record = world.readiness.record
    world.readiness.record = lambda readiness: (writes.append(readiness.status), record(readiness))  # type: ignore[method-assign]
    service = world.service()
    message = ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(COMPANY)})

    service.decide(message, attempt=Attempt())
    service.decide(message, attempt=Attempt())  # the same findings: not written again
    world.connectors.connector.accounts_known.pop("5820")
    world.pleo.jobs[JOB] = world.pleo.jobs[JOB].model_copy(update={"status": "in_progress"})
    world.decisions.records.clear()
    service.decide(message, attempt=Attempt())  # changed: written

    assert writes == ["ready", "not_ready"]


def test_a_grant_s_hard_end_caps_its_lapse_and_is_announced_well_ahead(world):
    """QuickBooks: every grant has a hard end (x_refresh_token_hard_expires_in) that keep-alive
    cannot pass: readiness says "reconnect before DATE" and does not refresh in vain."""
    grant = grant_world(world, unused_days=59.5)  # lapses from disuse in half a day
    grant.ends_at = NOW.timestamp() + 0.25 * DAY  # but ends for good before that

    readiness = world.service().check_company(COMPANY, source="sweep", keep_alive_seconds=2 * DAY)

    assert grant.renewals == 0, "a refresh cannot carry the grant past its hard end"
    assert readiness.grant_ends_at is not None and readiness.grant_ends_at.timestamp() == grant.ends_at
    assert readiness.grant_lapses_at is not None and readiness.grant_lapses_at.timestamp() == grant.ends_at
    day = readiness.grant_ends_at.date().isoformat()
    assert readiness.notices and f"ends for good on {day}" in readiness.notices[0]
    assert f"Reconnect Fakebooks in the integration settings before {day}" in readiness.notices[0]


def test_a_hard_end_far_away_is_recorded_without_a_notice(world):
    grant = grant_world(world, unused_days=10)
    grant.ends_at = NOW.timestamp() + 400 * DAY

    readiness = world.service().check_company(COMPANY, source="sweep", keep_alive_seconds=2 * DAY)

    assert readiness.grant_ends_at is not None and readiness.notices == []
    assert readiness.grant_lapses_at is not None and readiness.grant_lapses_at.timestamp() == NOW.timestamp() + 50 * DAY
