"""Each preflight check, passing and failing, and the engine's dependency rules."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from export_preflight.checks import CHECKS, Connection, PreflightCheck
from export_preflight.connectors import ConnectionProfile, LedgerEntry
from export_preflight.engine import run_checks
from export_preflight.errors import AccountingSystemError, AccountingSystemUnavailable
from export_preflight.models import Capability, CheckOutcome, FailureReasonType
from tests.unit.fakes import FakeConnector, configuration, context, job


@pytest.fixture(params=["sequential", "concurrent"])
def executor(request):
    if request.param == "sequential":
        yield None
    else:
        with ThreadPoolExecutor(max_workers=8) as pool:
            yield pool


def outcome_of(report, name):
    return next(o for o in report.outcomes if o.check == name)


def test_all_checks_pass_for_a_complete_setup(executor):
    report = run_checks(context(), CHECKS, executor)
    assert [o.status for o in report.outcomes] == ["passed"] * len(CHECKS)
    assert report.failures == [] and report.errors == ()


def test_a_vendor_job_without_vendor_bookkeeping_fails_on_the_mode_not_on_a_scope_it_would_never_use(executor):
    connector = FakeConnector(ungranted={Capability.VENDOR_BOOKKEEPING: "the bills scope"})
    config = configuration(vendorBookkeepingEnabled=False)
    report = run_checks(
        context(connector=connector, config=config, export_job=job(vendorBasedBookkeeping=True)), CHECKS, executor
    )
    assert [f.check for f in report.failures] == ["bookkeeping_mode"]
    assert report.failures[0].reason_type is FailureReasonType.INVALID_CONFIGURATION


def test_a_normal_job_passes_on_a_grant_without_the_bills_scope(executor):
    connector = FakeConnector(ungranted={Capability.VENDOR_BOOKKEEPING: "the bills scope"})
    report = run_checks(context(connector=connector), CHECKS, executor)
    assert report.failures == []


def test_attachments_are_asked_for_only_when_receipts_are_exported(executor):
    connector = FakeConnector(ungranted={Capability.ATTACHMENT_UPLOAD: "the attachments scope"})
    assert (
        run_checks(context(connector=connector, config=configuration(exportReceipts=False)), CHECKS, executor).failures
        == []
    )
    failed = run_checks(context(connector=connector), CHECKS, executor).failures
    assert [f.check for f in failed] == ["permissions"] and "the attachments scope" in failed[0].reason


@pytest.mark.parametrize(
    ("mappings", "named"),
    [
        ({"expenseAccount": "58\n20"}, "mappings.expenseAccount"),
        ({"contraAccount": "６８００"}, "mappings.contraAccount"),  # full-width digits
        ({"vatCodes": ["I25", "I25\u0000"]}, "mappings.vatCodes[1]"),
        ({"journal": "1 "}, "mappings.journal"),
    ],
)
def test_a_mapping_that_cannot_be_sent_fails_as_invalid_configuration_naming_the_field(executor, mappings, named):
    base = {"journal": 1, "expenseAccount": 5820, "contraAccount": 6800, "vatCodes": ["I25"]}
    connector = FakeConnector()
    report = run_checks(
        context(connector=connector, config=configuration(mappings={**base, **mappings})), CHECKS, executor
    )
    outcome = outcome_of(report, "mappings_complete")
    assert outcome.status == "failed" and outcome.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert named in outcome.reason
    assert outcome_of(report, "mapped_accounts").status == "skipped"
    assert "accounts" not in connector.calls  # nothing malformed is sent anywhere


def test_connection_settings_failure_skips_everything_that_needs_the_connection(executor):
    problem = CheckOutcome.failed("connection_settings", FailureReasonType.MISSING_CONFIGURATION, "not connected")
    report = run_checks(context(connection=Connection(None, problem)), CHECKS, executor)
    assert outcome_of(report, "connection_settings") == problem
    for name in ("authentication", "company_context", "permissions", "capabilities", "mapped_accounts"):
        assert outcome_of(report, name).status == "skipped", name
    # the checks that need no connection still ran, so the bookkeeper learns everything at once
    assert outcome_of(report, "mappings_complete").status == "passed"


def test_authentication_failure_becomes_the_reason_and_stops_dependent_calls(executor):
    connector = FakeConnector(
        auth_error=AccountingSystemError(
            "rejected", reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
        )
    )
    report = run_checks(context(connector=connector), CHECKS, executor)
    assert report.failures[0].check == "authentication"
    assert report.failures[0].reason_type is FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE
    assert connector.calls == ["authenticate"]  # nothing else was asked of the accounting system


def test_company_context_fails_when_credentials_reach_another_company(executor):
    connector = FakeConnector(profile=ConnectionProfile("AGR-2", "Other ApS", frozenset({"SuperUser"})))
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "company_context")
    assert outcome.status == "failed"
    assert outcome.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert "AGR-2 (Other ApS)" in outcome.reason and "AGR-1" in outcome.reason


def test_company_context_passes_unverified_when_the_system_does_not_tell(executor):
    connector = FakeConnector(profile=ConnectionProfile(None, None, frozenset({"Bookkeeping"})))
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "company_context")
    assert outcome.status == "passed" and outcome.facts["verified"] is False


def test_permissions_fail_with_authorization_failure(executor):
    connector = FakeConnector(profile=ConnectionProfile("AGR-1", "Acme", frozenset({"Sales"})))
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "permissions")
    assert outcome.status == "failed"
    assert outcome.reason_type is FailureReasonType.AUTHORIZATION_FAILURE
    assert "Bookkeeping role" in outcome.reason


def test_capabilities_fail_when_journal_entries_are_unsupported(executor):
    connector = FakeConnector(unsupported={Capability.JOURNAL_ENTRY: "journal 3 only accepts supplierInvoice"})
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "capabilities")
    assert outcome.status == "failed"
    assert outcome.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert "journal 3 only accepts supplierInvoice" in outcome.reason


def test_vendor_capability_is_only_required_for_vendor_jobs(executor):
    connector = FakeConnector(unsupported={Capability.VENDOR_BOOKKEEPING: "no supplier journal"})
    plain = run_checks(context(connector=connector), CHECKS, executor)
    assert outcome_of(plain, "capabilities").status == "passed"
    vendor = run_checks(context(connector=connector, export_job=job(vendorBasedBookkeeping=True)), CHECKS, executor)
    assert outcome_of(vendor, "capabilities").status == "failed"


def test_attachment_capability_is_only_required_when_receipts_are_exported(executor):
    connector = FakeConnector(unsupported={Capability.ATTACHMENT_UPLOAD: "no attachments"})
    without = run_checks(context(connector=connector, config=configuration(exportReceipts=False)), CHECKS, executor)
    assert outcome_of(without, "capabilities").status == "passed"
    with_receipts = run_checks(context(connector=connector), CHECKS, executor)
    assert "no attachments" in outcome_of(with_receipts, "capabilities").reason


def test_bookkeeping_mode_fails_for_vendor_jobs_when_vendor_bookkeeping_is_off(executor):
    ctx = context(config=configuration(vendorBookkeepingEnabled=False), export_job=job(vendorBasedBookkeeping=True))
    report = run_checks(ctx, CHECKS, executor)
    outcome = outcome_of(report, "bookkeeping_mode")
    assert outcome.status == "failed"
    assert outcome.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert outcome_of(report, "capabilities").status == "skipped"


def test_bookkeeping_mode_passes_for_journal_jobs_without_vendor_bookkeeping(executor):
    ctx = context(config=configuration(vendorBookkeepingEnabled=False))
    assert outcome_of(run_checks(ctx, CHECKS, executor), "bookkeeping_mode").status == "passed"


def test_missing_mappings_are_named_as_missing_configuration(executor):
    config = configuration(mappings={"journal": 1, "vatCodes": ["I25"]})
    report = run_checks(context(config=config), CHECKS, executor)
    outcome = outcome_of(report, "mappings_complete")
    assert outcome.reason_type is FailureReasonType.MISSING_CONFIGURATION
    assert "expenseAccount" in outcome.reason and "contraAccount" in outcome.reason
    assert outcome_of(report, "mapped_accounts").status == "skipped"


def test_vendor_jobs_need_a_payables_account(executor):
    config = configuration(mappings={"journal": 1, "expenseAccount": 5820, "contraAccount": 6800})
    report = run_checks(context(config=config, export_job=job(vendorBasedBookkeeping=True)), CHECKS, executor)
    assert "vendorPayablesAccount" in outcome_of(report, "mappings_complete").reason


def test_unknown_and_barred_accounts_are_invalid_configuration(executor):
    connector = FakeConnector()
    connector.accounts_known["6800"] = LedgerEntry("6800", "Bank", False, "is barred")
    del connector.accounts_known["5820"]
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "mapped_accounts")
    assert outcome.reason_type is FailureReasonType.INVALID_CONFIGURATION
    assert "account 5820 (expenseAccount) does not exist" in outcome.reason
    assert "account 6800 Bank (contraAccount) is barred" in outcome.reason


def test_unknown_tax_code_is_invalid_configuration(executor):
    config = configuration(mappings={**configuration().mappings.model_dump(by_alias=True), "vatCodes": ["I25", "X99"]})
    outcome = outcome_of(run_checks(context(config=config), CHECKS, executor), "mapped_tax_codes")
    assert outcome.status == "failed" and "VAT code X99 does not exist" in outcome.reason


def test_transient_trouble_is_reported_as_an_error_not_a_failure(executor):
    connector = FakeConnector(auth_error=AccountingSystemUnavailable("e-conomic answered 503"))
    report = run_checks(context(connector=connector), CHECKS, executor)
    assert report.failures == []
    assert [str(e) for e in report.errors] == ["e-conomic answered 503"]
    assert outcome_of(report, "permissions").status == "skipped"


def test_independent_checks_really_run_at_the_same_time():
    barrier = threading.Barrier(3, timeout=5)

    def meet(name):
        def run(ctx):
            barrier.wait()  # raises BrokenBarrierError unless all three run concurrently
            return CheckOutcome.passed(name)

        return run

    checks = tuple(PreflightCheck(n, (), meet(n)) for n in ("a", "b", "c"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        report = run_checks(context(), checks, pool)
    assert [o.status for o in report.outcomes] == ["passed"] * 3


def test_local_checks_and_a_lone_remote_check_run_in_the_calling_thread():
    caller = threading.get_ident()
    seen: dict[str, bool] = {}

    def note(name):
        def run(ctx):
            seen[name] = threading.get_ident() == caller
            return CheckOutcome.passed(name)

        return run

    checks = (
        PreflightCheck("local", (), note("local"), local=True),
        PreflightCheck("lone", ("local",), note("lone")),  # the only check in flight
        PreflightCheck("a", ("lone",), note("a")),
        PreflightCheck("b", ("lone",), note("b")),  # the last to start: the caller runs it
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        report = run_checks(context(), checks, pool)
    assert [o.status for o in report.outcomes] == ["passed"] * 4
    assert seen == {"local": True, "lone": True, "a": False, "b": True}


def test_checks_go_to_the_pool_while_one_of_them_may_still_let_another_start():
    caller = threading.get_ident()
    seen: dict[str, bool] = {}

    def slow(ctx):
        seen["slow"] = threading.get_ident() == caller
        return CheckOutcome.passed("slow")

    def fast(ctx):
        seen["fast"] = threading.get_ident() == caller
        return CheckOutcome.passed("fast")

    def after(ctx):
        seen["after"] = threading.get_ident() == caller
        return CheckOutcome.passed("after")

    checks = (
        PreflightCheck("slow", (), slow),
        PreflightCheck("fast", (), fast),
        PreflightCheck("after", ("fast",), after),  # still to start while both run
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        run_checks(context(), checks, pool)
    assert seen == {"slow": False, "fast": False, "after": True}


def test_unknown_prerequisites_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown or circular"):
        run_checks(context(), (PreflightCheck("a", ("nope",), lambda ctx: CheckOutcome.passed("a")),), None)


def test_missing_permissions_that_say_how_to_fix_themselves_get_no_generic_reconnect_advice(executor):
    licence = "the company has no licence for supplier invoices; the customer must add it to their subscription"
    connector = FakeConnector(ungranted={Capability.JOURNAL_ENTRY: licence}, permission_advice="Then export again.")
    outcome = outcome_of(run_checks(context(connector=connector), CHECKS, executor), "permissions")
    assert outcome.reason.endswith(f"{licence}. Then export again.") and "Reconnect" not in outcome.reason
    generic = outcome_of(
        run_checks(context(connector=FakeConnector(ungranted={Capability.JOURNAL_ENTRY: "a scope"})), CHECKS, executor),
        "permissions",
    )
    assert "Reconnect Fakebooks in the integration settings with the needed access" in generic.reason
