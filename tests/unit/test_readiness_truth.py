"""What is stored and shown stays true and safe (issue 17, item 7): every check outcome is
redacted before it is stored or shown; a journal-only job does not erase what the sweep found
about the vendor side; a company without configuration keeps no readiness; and a
configuration cannot point a company at another company's secrets."""

from __future__ import annotations

import json

import pytest

from export_preflight.connectors import ConnectionProfile
from export_preflight.errors import UnprocessableMessage
from export_preflight.models import Capability, CheckOutcome, ClaimedJobMessage, FailureReasonType, Readiness
from export_preflight.service import Attempt
from tests.unit.fakes import COMPANY, JOB, configuration
from tests.unit.test_service import NOW, OTHER_COMPANY, World

SECRET = "pasted-secret-value"  # what FakeSecrets knows as the company's secret value


@pytest.fixture
def world() -> World:
    return World()


def message() -> ClaimedJobMessage:
    return ClaimedJobMessage.model_validate({"jobId": str(JOB), "companyId": str(COMPANY)})


# ---------------------------------------------------------------- a. every outcome redacted


def test_a_secret_echoed_in_a_passed_checks_facts_reaches_neither_the_decision_nor_the_hand_off(world):
    world.connectors.connector.profile = ConnectionProfile("AGR-1", f"Acme {SECRET}", frozenset({"SuperUser"}))

    decision = world.decide()

    assert decision.outcome == "handed_off"
    ((payload, _),) = world.hand_off.sent
    recorded, _, _ = world.decisions.records[str(JOB)][:3]
    for stored in (json.dumps(payload), recorded.model_dump_json(), decision.model_dump_json()):
        assert SECRET not in stored
    assert payload["checks"]["authentication"]["companyName"] == "Acme [redacted]"  # type: ignore[index]
    assert SECRET not in world.readiness.records[str(COMPANY)].model_dump_json()


def test_a_secret_in_a_failed_checks_reason_is_redacted_in_every_outcome_stored_or_previewed(world):
    world.configurations[COMPANY] = configuration(
        mappings={"journal": 1, "expenseAccount": 5820, "contraAccount": 6800, "vatCodes": [SECRET]}
    )  # an unknown VAT code is named in the check's reason

    preview = world.service().preview(message())
    readiness = world.service().check_company(COMPANY)
    decision = world.decide()

    assert decision.outcome == "failed_early"
    for shown in (preview, readiness, decision, world.decisions.records[str(JOB)][0]):
        assert SECRET not in shown.model_dump_json(), type(shown).__name__
    assert SECRET not in world.readiness.records[str(COMPANY)].model_dump_json()
    assert any("[redacted]" in (c.reason or "") for c in readiness.checks)


def test_redact_sanitises_the_reason_and_every_string_in_the_facts():
    from export_preflight.service import redact

    outcome = CheckOutcome(
        check="x",
        status="passed",
        reason=None,
        facts={"name": f"a {SECRET}", "list": [SECRET, 3], "nested": {"k": f"Bearer {'t' * 20}"}, "n": 5},
    )

    redacted = redact(outcome, [SECRET])

    assert redacted.facts == {
        "name": "a [redacted]",
        "list": ["[redacted]", 3],
        "nested": {"k": "Bearer [redacted]"},
        "n": 5,
    }


# ---------------------------------------------------------------- b. readiness stays true


def test_a_journal_only_job_keeps_what_the_sweep_found_about_the_vendor_side(world):
    world.connectors.connector.ungranted = {Capability.VENDOR_BOOKKEEPING: "the Bills scope"}
    swept = world.service().check_company(COMPANY, source="sweep")  # vendor bookkeeping enabled: checked
    assert swept.status == "not_ready" and swept.problems[0].check == "permissions"

    decision = world.decide()  # a journal-only job: passes, it needs no bills

    assert decision.outcome == "handed_off"
    recorded = world.readiness.records[str(COMPANY)]
    assert (recorded.source, recorded.status) == ("job", "not_ready")
    assert [(p.check, p.reason) for p in recorded.problems] == [(p.check, p.reason) for p in swept.problems]
    assert "the Bills scope" in (recorded.problems[0].reason or "")


def test_a_journal_only_job_records_what_it_found_failing_and_passing_outside_the_vendor_side(world):
    world.readiness.records[str(COMPANY)] = Readiness(
        company_id=str(COMPANY),
        status="not_ready",
        checks=[CheckOutcome.failed("authentication", FailureReasonType.AUTHENTICATION_FAILURE, "grant revoked")],
        problems=[CheckOutcome.failed("authentication", FailureReasonType.AUTHENTICATION_FAILURE, "grant revoked")],
        checked_at=NOW,
        source="sweep",
    )

    world.decide()  # reconnected meanwhile: the job authenticates

    assert world.readiness.records[str(COMPANY)].status == "ready"


def test_a_vendor_job_replaces_the_whole_record(world):
    world.connectors.connector.ungranted = {Capability.VENDOR_BOOKKEEPING: "the Bills scope"}
    world.service().check_company(COMPANY, source="sweep")
    world.connectors.connector.ungranted = {}  # granted meanwhile
    world.pleo.jobs[JOB] = world.pleo.jobs[JOB].model_copy(update={"vendor_based_bookkeeping": True})

    world.decide()

    assert world.readiness.records[str(COMPANY)].status == "ready"


def test_a_company_whose_configuration_was_removed_loses_its_readiness_record(world):
    world.service().check_company(COMPANY, source="sweep")
    assert str(COMPANY) in world.readiness.records
    del world.configurations[COMPANY]

    readiness = world.service().check_company(COMPANY, source="sweep")

    assert readiness.reason_type is FailureReasonType.MISSING_CONFIGURATION
    assert str(COMPANY) not in world.readiness.records


# ---------------------------------------------------------------- c. each company's own secrets


class RecordingSecrets:
    def __init__(self) -> None:
        self.read: list[str] = []

    def known_values(self, secret_ids: list[str]) -> list[str]:
        self.read += secret_ids
        return []


def test_a_pleo_secret_of_another_company_is_never_read_for_a_job(world):
    world.configurations[COMPANY] = configuration(pleoCredentialsSecretId=f"export-preflight/pleo/{OTHER_COMPANY}")

    with pytest.raises(UnprocessableMessage) as raised:
        world.decide()

    assert raised.value.kind == "invalid_configuration"
    assert "pleoCredentialsSecretId" in raised.value.reason
    assert f"export-preflight/pleo/{COMPANY}" in raised.value.reason  # the expected name
    assert world.pleo.secrets_used == [] and world.connectors.connects == []
    assert world.pleo.events == [] and world.hand_off.sent == []


def test_an_accounting_secret_of_another_company_fails_the_job_without_reading_it(world):
    foreign = f"export-preflight/economic/{OTHER_COMPANY}"
    world.configurations[COMPANY] = configuration(accountingCredentialsSecretId=foreign)
    secrets = RecordingSecrets()
    service = world.service()
    service._checks._secrets = secrets  # type: ignore[assignment]

    decision = service.decide(message(), attempt=Attempt())

    assert (decision.outcome, decision.reason_type) == ("failed_early", FailureReasonType.INVALID_CONFIGURATION)
    assert "accountingCredentialsSecretId" in (decision.reason or "")
    assert "export-preflight/<accountingSystem>/<companyId>" in (decision.reason or "")
    assert world.connectors.connects == []  # the connector (which reads the secret) was never built
    assert foreign not in secrets.read


@pytest.mark.parametrize(
    "field, value",
    [
        ("pleoCredentialsSecretId", "export-preflight/pleo/acme"),
        ("accountingCredentialsSecretId", "export-preflight/economic/acme"),
        ("accountingCredentialsSecretId", f"export-preflight/xero/{COMPANY}"),  # another system's
        ("accountingCredentialsSecretId", f"elsewhere/economic/{COMPANY}"),  # outside the prefix
    ],
)
def test_a_dry_run_reports_a_secret_id_off_the_pattern_as_invalid_configuration(world, field, value):
    world.configurations[COMPANY] = configuration(**{field: value})

    readiness = world.service().check_company(COMPANY)

    assert readiness.status == "not_ready"
    assert readiness.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert field in (readiness.problems[0].reason or "")
    assert world.connectors.connects == []


def test_the_prefix_is_the_stacks():
    config = configuration(
        pleoCredentialsSecretId=f"team-a/pleo/{COMPANY}", accountingCredentialsSecretId=f"team-a/economic/{COMPANY}"
    )
    assert config.secret_id_problem("pleoCredentialsSecretId", "team-a/") is None
    assert config.secret_id_problem("accountingCredentialsSecretId", "team-a/") is None
    assert config.secret_id_problem("accountingCredentialsSecretId", "export-preflight/") is not None
