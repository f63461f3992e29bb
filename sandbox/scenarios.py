"""The embedded default of the local run: companies and claimed jobs that cover the
pass path, each failure reason, and the messages preflight must not act on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from .simulators.businesscentral import gl_setup as businesscentral_gl_setup
from .simulators.fortnox import CLIENT_ID as FORTNOX_CLIENT_ID
from .simulators.fortnox import default_accounts
from .simulators.quickbooks import us_tax_codes
from .simulators.xero import CLIENT_ID as XERO_CLIENT_ID
from .world import Sandbox


@dataclass(frozen=True)
class Seeded:
    label: str
    job_id: str | None
    company_id: str | None
    expected_outcome: str
    expected_reason_type: str | None = None


Seeder = Callable[[Sandbox], list[Seeded]]


def _scenario(
    sandbox: Sandbox,
    system: str,
    label: str,
    outcome: str,
    reason_type: str | None,
    *,
    job: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
    **company: object,
) -> list[Seeded]:
    """One company on ``system`` (``company``: its seeding traits and ``configuration``), one
    claimed job, and what the run expects of it."""
    seeded_company = sandbox.add_company(system, label, **company)  # type: ignore[arg-type]
    seeded_job = sandbox.add_job(seeded_company, **(job or {}))
    sandbox.enqueue_job(seeded_job, **(message or {}))
    return [Seeded(label, seeded_job["id"], seeded_company.company_id, outcome, reason_type)]


def _one(
    sandbox: Sandbox, label: str, outcome: str, reason_type: str | None, *, number: int, **rest: object
) -> list[Seeded]:
    return _scenario(sandbox, "economic", label, outcome, reason_type, agreement_number=number, **rest)  # type: ignore[arg-type]


def passes(sandbox: Sandbox) -> list[Seeded]:
    return _one(sandbox, "nordlys", "handed_off", None, number=100001)


def vendor_passes(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "fjord-vendor",
        "handed_off",
        None,
        number=100002,
        job={"vendor_based_bookkeeping": True},
        configuration={
            "vendorBookkeepingEnabled": True,
            "mappings": {
                "journal": 1,
                "vendorJournal": 2,
                "expenseAccount": 5820,
                "contraAccount": 6800,
                "vendorPayablesAccount": 7000,
                "vatCodes": ["I25"],
            },
        },
    )


def revoked_grant(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "revoked-grant",
        "failed_early",
        "accounting_system_authentication_failure",
        number=100003,
        grant_token="grant-that-was-revoked",
    )


def sales_role(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox, "sales-role", "failed_early", "authorization_failure", number=100004, agreement={"roles": ("Sales",)}
    )


def wrong_agreement(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "wrong-agreement",
        "failed_early",
        "invalid_configuration",
        number=100005,
        configuration={"accountingCompanyRef": "999999"},
    )


def vendor_mode_off(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "vendor-mode-off",
        "failed_early",
        "invalid_configuration",
        number=100006,
        job={"vendor_based_bookkeeping": True},
    )


def incomplete_mappings(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "incomplete-mappings",
        "failed_early",
        "missing_configuration",
        number=100007,
        configuration={"mappings": {"journal": 1, "vatCodes": ["I25"]}},
    )


def not_connected(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox, "not-connected", "failed_early", "missing_configuration", number=100008, store_accounting_secret=False
    )


def restricted_journal(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "restricted-journal",
        "failed_early",
        "invalid_configuration",
        number=100009,
        configuration={"mappings": {"journal": 2, "expenseAccount": 5820, "contraAccount": 6800}},
    )


def barred_account(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "barred-account",
        "failed_early",
        "invalid_configuration",
        number=100010,
        configuration={"mappings": {"journal": 1, "expenseAccount": 9999, "contraAccount": 6800}},
    )


def unknown_vat_code(sandbox: Sandbox) -> list[Seeded]:
    return _one(
        sandbox,
        "unknown-vat-code",
        "failed_early",
        "invalid_configuration",
        number=100011,
        configuration={
            "mappings": {"journal": 1, "expenseAccount": 5820, "contraAccount": 6800, "vatCodes": ["I25", "ZZ99"]}
        },
    )


def economic_down(sandbox: Sandbox) -> list[Seeded]:
    """e-conomic answers 503 on every attempt: retried, then failed on the last attempt."""
    seeded = _one(sandbox, "economic-down", "failed_early", "accounting_system_unreachable", number=100012)
    sandbox.economic.inject(
        "GET",
        "/self",
        status=503,
        times=None,
        when=lambda request: request.headers.get("X-AgreementGrantToken", "").startswith("grant-economic-down-"),
    )
    return seeded


def routed_to_wrong_company(sandbox: Sandbox) -> list[Seeded]:
    """The message names another company than the job's: the job is decided in its own
    company's context (configuration and credentials), never failed on the message's word."""
    company = sandbox.add_company("economic", "misrouted", agreement_number=100013)
    other = sandbox.add_company("economic", "misrouted-other", agreement_number=100014)
    sandbox.pleo.add_api_key(company.secrets["pleo"], [company.company_id, other.company_id])
    job = sandbox.add_job(other)
    sandbox.enqueue({"jobId": job["id"], "companyId": company.company_id})
    return [Seeded("misrouted", job["id"], other.company_id, "handed_off", None)]


def routed_from_unconfigured_company(sandbox: Sandbox) -> list[Seeded]:
    """The job belongs to a company we have no configuration for: nothing is done to it."""
    company = sandbox.add_company("economic", "misrouted-foreign", agreement_number=100017)
    foreign = str(uuid.uuid4())
    sandbox.pleo.add_api_key(company.secrets["pleo"], [company.company_id, foreign])
    job = sandbox.pleo.add_job(company_id=foreign)
    sandbox.enqueue({"jobId": job["id"], "companyId": company.company_id})
    return [Seeded("misrouted-foreign", None, None, "rejected", "company_mismatch")]


def already_failed(sandbox: Sandbox) -> list[Seeded]:
    return _one(sandbox, "already-failed", "skipped", None, number=100015, job={"status": "failed"})


def duplicate_delivery(sandbox: Sandbox) -> list[Seeded]:
    company = sandbox.add_company("economic", "duplicate", agreement_number=100016)
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)
    sandbox.enqueue_job(job)
    return [Seeded("duplicate (x2)", job["id"], company.company_id, "handed_off", None)]


def malformed(sandbox: Sandbox) -> list[Seeded]:
    sandbox.enqueue("this is not json")
    sandbox.enqueue(json.dumps({"jobId": "not-a-uuid", "companyId": str(uuid.uuid4())}))
    return [Seeded("malformed (x2)", None, None, "rejected", "malformed_message")]


def unknown_company(sandbox: Sandbox) -> list[Seeded]:
    sandbox.enqueue({"jobId": str(uuid.uuid4()), "companyId": str(uuid.uuid4())})
    return [Seeded("unknown-company", None, None, "rejected", "unknown_company")]


def _xero(sandbox: Sandbox, label: str, outcome: str, reason_type: str | None, **rest: object) -> list[Seeded]:
    return _scenario(sandbox, "xero", label, outcome, reason_type, **rest)  # type: ignore[arg-type]


VENDOR_SCOPES = (
    "offline_access accounting.settings accounting.manualjournals accounting.attachments "
    "accounting.invoices accounting.contacts"
)
VENDOR_CONFIG = {"vendorBookkeepingEnabled": True}


def xero_passes(sandbox: Sandbox) -> list[Seeded]:
    return _xero(sandbox, "xero-thames", "handed_off", None)


def xero_vendor_passes(sandbox: Sandbox) -> list[Seeded]:
    return _xero(
        sandbox,
        "xero-vendor",
        "handed_off",
        None,
        job={"vendor_based_bookkeeping": True},
        scopes=VENDOR_SCOPES,
        configuration=VENDOR_CONFIG,
    )


def xero_expired_token(sandbox: Sandbox) -> list[Seeded]:
    """The access token expired: refreshed (and the rotated pair stored), then the job passes."""
    return _xero(sandbox, "xero-expired-token", "handed_off", None, expired_token=True)


def xero_tenant_missing(sandbox: Sandbox) -> list[Seeded]:
    return _xero(sandbox, "xero-tenant-missing", "failed_early", "invalid_configuration", connect_tenant=False)


def xero_disconnected(sandbox: Sandbox) -> list[Seeded]:
    """The organisation was disconnected from the app: the grant reaches no organisation."""
    seeded = _xero(sandbox, "xero-disconnected", "failed_early", "accounting_system_authentication_failure")
    company = sandbox.companies["xero-disconnected"]
    assert company.grant is not None
    sandbox.xero.disconnect(company.grant, company.configuration["accountingCompanyRef"])  # type: ignore[attr-defined]
    return seeded


def xero_scope_missing(sandbox: Sandbox) -> list[Seeded]:
    return _xero(
        sandbox,
        "xero-scope-missing",
        "failed_early",
        "authorization_failure",
        scopes="offline_access accounting.manualjournals",
    )


def xero_vendor_scope_missing(sandbox: Sandbox) -> list[Seeded]:
    return _xero(
        sandbox,
        "xero-vendor-no-scope",
        "failed_early",
        "authorization_failure",
        job={"vendor_based_bookkeeping": True},
        configuration=VENDOR_CONFIG,
    )


def xero_refresh_replayed(sandbox: Sandbox) -> list[Seeded]:
    """The stored refresh token was already used elsewhere: Xero refuses it (and revokes the grant)."""
    seeded = _xero(
        sandbox, "xero-refresh-replayed", "failed_early", "accounting_system_authentication_failure", expired_token=True
    )
    grant = sandbox.companies["xero-refresh-replayed"].grant
    assert grant is not None and grant.refresh_token
    httpx.post(
        f"{sandbox.xero.base_url}/connect/token",
        data={"grant_type": "refresh_token", "refresh_token": grant.refresh_token},
        auth=(XERO_CLIENT_ID, sandbox.app_secrets["xero client secret"]),
    ).raise_for_status()
    return seeded


def xero_archived_account(sandbox: Sandbox) -> list[Seeded]:
    return _xero(
        sandbox,
        "xero-archived-account",
        "failed_early",
        "invalid_configuration",
        configuration={"mappings": {"expenseAccount": "499", "contraAccount": "615"}},
    )


def xero_unknown_tax_rate(sandbox: Sandbox) -> list[Seeded]:
    return _xero(
        sandbox,
        "xero-unknown-tax",
        "failed_early",
        "invalid_configuration",
        configuration={
            "mappings": {"expenseAccount": "429", "contraAccount": "615", "vatCodes": ["INPUT2", "TAX001", "TAX999"]}
        },
    )


XERO_SCENARIOS: tuple[Seeder, ...] = (
    xero_passes,
    xero_vendor_passes,
    xero_expired_token,
    xero_tenant_missing,
    xero_disconnected,
    xero_scope_missing,
    xero_vendor_scope_missing,
    xero_refresh_replayed,
    xero_archived_account,
    xero_unknown_tax_rate,
)


def _fortnox(
    sandbox: Sandbox, label: str, outcome: str, reason_type: str | None, *, number: str, **rest: object
) -> list[Seeded]:
    return _scenario(sandbox, "fortnox", label, outcome, reason_type, organisation_number=number, **rest)  # type: ignore[arg-type]


def _quickbooks(sandbox: Sandbox, label: str, outcome: str, reason_type: str | None, **rest: object) -> list[Seeded]:
    return _scenario(sandbox, "quickbooks", label, outcome, reason_type, **rest)  # type: ignore[arg-type]


def fortnox_passes(sandbox: Sandbox) -> list[Seeded]:
    return _fortnox(sandbox, "fortnox-vaxjo", "handed_off", None, number="556000-0001")


def fortnox_expired_token(sandbox: Sandbox) -> list[Seeded]:
    """The access token expired: refreshed once (the single-use refresh token rotated and
    stored before use), then the job passes."""
    return _fortnox(sandbox, "fortnox-expired-token", "handed_off", None, number="556000-0002", expired_token=True)


def fortnox_refresh_replayed(sandbox: Sandbox) -> list[Seeded]:
    """The stored refresh token was already used elsewhere: Fortnox refuses it; the customer
    must re-activate the integration."""
    seeded = _fortnox(
        sandbox,
        "fortnox-refresh-replayed",
        "failed_early",
        "accounting_system_authentication_failure",
        number="556000-0003",
        expired_token=True,
    )
    grant = sandbox.companies["fortnox-refresh-replayed"].grant
    assert grant is not None
    httpx.post(
        f"{sandbox.fortnox.base_url}/oauth-v1/token",
        data={"grant_type": "refresh_token", "refresh_token": grant.refresh_token},
        auth=(FORTNOX_CLIENT_ID, sandbox.app_secrets["fortnox client secret"]),
    ).raise_for_status()
    return seeded


def fortnox_no_supplier_invoice_licence(sandbox: Sandbox) -> list[Seeded]:
    """A vendor job for a company whose Fortnox subscription lacks supplier invoices (2001101)."""
    return _fortnox(
        sandbox,
        "fortnox-no-licence",
        "failed_early",
        "authorization_failure",
        number="556000-0004",
        job={"vendor_based_bookkeeping": True},
        configuration={"vendorBookkeepingEnabled": True},
        company={
            "licences": {"companyinformation", "bookkeeping", "settings", "supplier", "inbox", "archive", "connectfile"}
        },
    )


def fortnox_user_not_allowed(sandbox: Sandbox) -> list[Seeded]:
    """The user who activated the integration may not use bookkeeping (2000663)."""
    return _fortnox(
        sandbox,
        "fortnox-user-rights",
        "failed_early",
        "authorization_failure",
        number="556000-0005",
        user_denied=("bookkeeping",),
    )


def fortnox_wrong_company(sandbox: Sandbox) -> list[Seeded]:
    return _fortnox(
        sandbox,
        "fortnox-wrong-company",
        "failed_early",
        "invalid_configuration",
        number="556000-0006",
        configuration={"accountingCompanyRef": "556999-9999"},
    )


def fortnox_no_financial_year(sandbox: Sandbox) -> list[Seeded]:
    """No financial year covers today: vouchers for today would be rejected."""
    return _fortnox(
        sandbox,
        "fortnox-no-year",
        "failed_early",
        "invalid_configuration",
        number="556000-0007",
        company={"financial_years": [("2001-01-01", "2001-12-31")]},
    )


def fortnox_inactive_account(sandbox: Sandbox) -> list[Seeded]:
    return _fortnox(
        sandbox,
        "fortnox-inactive-account",
        "failed_early",
        "invalid_configuration",
        number="556000-0008",
        configuration={"mappings": {"journal": "A", "expenseAccount": "5420", "contraAccount": "2890"}},
    )


def fortnox_vendor_passes(sandbox: Sandbox) -> list[Seeded]:
    """A vendor job: supplier invoices, suppliers and the preferred supplier debt account
    (SUPDEBT 2440, read with the settings scope) are all there."""
    return _fortnox(
        sandbox,
        "fortnox-vendor",
        "handed_off",
        None,
        number="556000-0009",
        job={"vendor_based_bookkeeping": True},
        configuration={"vendorBookkeepingEnabled": True},
    )


def fortnox_series_not_manual(sandbox: Sandbox) -> list[Seeded]:
    """The mapped voucher series A is not manual: Fortnox would refuse the API's vouchers."""
    return _fortnox(
        sandbox,
        "fortnox-series-not-manual",
        "failed_early",
        "invalid_configuration",
        number="556000-0010",
        company={"automatic_series": {"A"}},
    )


def _last_year_and_this(*, locked: bool) -> dict[str, object]:
    """Last year and this year as financial years (ids 1 and 2); last year's chart has no
    2890 (the clearing account was created this year); last year locked or not."""
    year = datetime.now(UTC).year
    return {
        "financial_years": [(f"{year - 1}-01-01", f"{year - 1}-12-31"), (f"{year}-01-01", f"{year}-12-31")],
        "charts": {1: [entry for entry in default_accounts() if entry["Number"] != 2890]},
        "locked_until": f"{year - 1}-12-31" if locked else f"{year - 2}-12-31",
    }


def fortnox_previous_year_open(sandbox: Sandbox) -> list[Seeded]:
    """Last year is not locked, so a job may still carry its expenses, but the contra
    account 2890 does not exist in last year's chart."""
    return _fortnox(
        sandbox,
        "fortnox-previous-year-open",
        "failed_early",
        "invalid_configuration",
        number="556000-0011",
        company=_last_year_and_this(locked=False),
    )


def fortnox_previous_year_locked(sandbox: Sandbox) -> list[Seeded]:
    """The same company once last year is locked: only this year counts, and it passes."""
    return _fortnox(
        sandbox,
        "fortnox-previous-year-locked",
        "handed_off",
        None,
        number="556000-0012",
        company=_last_year_and_this(locked=True),
    )


FORTNOX_SCENARIOS: tuple[Seeder, ...] = (
    fortnox_passes,
    fortnox_vendor_passes,
    fortnox_series_not_manual,
    fortnox_previous_year_open,
    fortnox_previous_year_locked,
    fortnox_expired_token,
    fortnox_refresh_replayed,
    fortnox_no_supplier_invoice_licence,
    fortnox_user_not_allowed,
    fortnox_wrong_company,
    fortnox_no_financial_year,
    fortnox_inactive_account,
)


def quickbooks_passes(sandbox: Sandbox) -> list[Seeded]:
    return _quickbooks(sandbox, "qbo-harbour", "handed_off", None)


def quickbooks_us_company(sandbox: Sandbox) -> list[Seeded]:
    """A US company: automated sales tax, so nothing is mapped under vatCodes; its address
    country comes as ISO alpha-3 (USA)."""
    return _quickbooks(
        sandbox,
        "qbo-us",
        "handed_off",
        None,
        company={"country": "US", "tax_codes": us_tax_codes()},
        configuration={"mappings": {"expenseAccount": "7", "contraAccount": "10"}},
    )


def quickbooks_books_closed(sandbox: Sandbox) -> list[Seeded]:
    """The books are closed up to today: QuickBooks would refuse every expense of the job."""
    return _quickbooks(
        sandbox,
        "qbo-books-closed",
        "failed_early",
        "invalid_configuration",
        company={"book_close_date": datetime.now(UTC).date().isoformat()},
    )


def quickbooks_expired_token(sandbox: Sandbox) -> list[Seeded]:
    """The access token expired: refreshed, the rolling refresh token stored, then the job passes."""
    return _quickbooks(sandbox, "qbo-expired-token", "handed_off", None, expired_token=True)


def quickbooks_account_numbers(sandbox: Sandbox) -> list[Seeded]:
    """Account numbers are on in QuickBooks: accounts mapped by AcctNum (6100, 2100) pass."""
    return _quickbooks(
        sandbox,
        "qbo-account-numbers",
        "handed_off",
        None,
        company={"use_account_numbers": True},
        configuration={"mappings": {"expenseAccount": "6100", "contraAccount": "2100", "vatCodes": ["20.0% S"]}},
    )


def quickbooks_other_realm(sandbox: Sandbox) -> list[Seeded]:
    """The grant covers a sister company: 403 ApplicationAuthorizationFailed for the configured realm."""
    return _quickbooks(sandbox, "qbo-other-realm", "failed_early", "invalid_configuration", other_realm=True)


def quickbooks_scope_missing(sandbox: Sandbox) -> list[Seeded]:
    return _quickbooks(
        sandbox, "qbo-scope-missing", "failed_early", "authorization_failure", scopes="com.intuit.quickbooks.payment"
    )


def quickbooks_revoked(sandbox: Sandbox) -> list[Seeded]:
    """The user disconnected the app in QuickBooks: the refresh is refused, reconnect."""
    seeded = _quickbooks(
        sandbox, "qbo-disconnected", "failed_early", "accounting_system_authentication_failure", expired_token=True
    )
    sandbox.quickbooks.revoke_grant(sandbox.companies["qbo-disconnected"].grant)  # type: ignore[attr-defined]
    return seeded


def quickbooks_unsuitable_accounts(sandbox: Sandbox) -> list[Seeded]:
    """An Income account as the expense account; account numbers mapped while they are off."""
    return _quickbooks(
        sandbox,
        "qbo-unsuitable-accounts",
        "failed_early",
        "invalid_configuration",
        configuration={"mappings": {"expenseAccount": "13", "contraAccount": "2100", "vatCodes": ["3"]}},
    )


def quickbooks_fault_in_200(sandbox: Sandbox) -> list[Seeded]:
    """QuickBooks answers 200 with a SystemFault on every attempt: never data; retried, then
    failed as unreachable on the last attempt."""
    seeded = _quickbooks(sandbox, "qbo-fault-in-200", "failed_early", "accounting_system_unreachable")
    realm = sandbox.companies["qbo-fault-in-200"].configuration["accountingCompanyRef"]
    sandbox.quickbooks.inject_fault_in_200(r"companyinfo/[0-9]+", realm_id=realm, times=None)  # type: ignore[attr-defined]
    return seeded


QUICKBOOKS_SCENARIOS: tuple[Seeder, ...] = (
    quickbooks_passes,
    quickbooks_us_company,
    quickbooks_books_closed,
    quickbooks_expired_token,
    quickbooks_account_numbers,
    quickbooks_other_realm,
    quickbooks_scope_missing,
    quickbooks_revoked,
    quickbooks_unsuitable_accounts,
    quickbooks_fault_in_200,
)


def _businesscentral(
    sandbox: Sandbox, label: str, outcome: str, reason_type: str | None, **rest: object
) -> list[Seeded]:
    return _scenario(sandbox, "businesscentral", label, outcome, reason_type, **rest)  # type: ignore[arg-type]


def businesscentral_passes(sandbox: Sandbox) -> list[Seeded]:
    """Our app consented (API.ReadWrite.All) and Enabled on the Entra applications page; journal
    batch PLEO, postable 8110 and 5420, VAT product posting group STANDARD."""
    return _businesscentral(sandbox, "bc-aarhus", "handed_off", None)


def businesscentral_vendor_passes(sandbox: Sandbox) -> list[Seeded]:
    """A vendor job: vendors and purchase invoices readable, the posting window open."""
    return _businesscentral(
        sandbox,
        "bc-vendor",
        "handed_off",
        None,
        job={"vendor_based_bookkeeping": True},
        configuration={"vendorBookkeepingEnabled": True},
    )


def businesscentral_us_company(sandbox: Sandbox) -> list[Seeded]:
    """A US company: sales tax groups, no VAT, so nothing is mapped under vatCodes."""
    return _businesscentral(sandbox, "bc-us", "handed_off", None, vat=False)


def businesscentral_unregistered_app(sandbox: Sandbox) -> list[Seeded]:
    """Entra issues the token, but the app is not on Business Central's Microsoft Entra
    applications page: 401 Authentication_InvalidCredentials."""
    return _businesscentral(
        sandbox,
        "bc-unregistered-app",
        "failed_early",
        "accounting_system_authentication_failure",
        unregistered_app=True,
    )


def businesscentral_no_consent(sandbox: Sandbox) -> list[Seeded]:
    """No admin consent for API.ReadWrite.All: Entra issues a token without the role."""
    return _businesscentral(sandbox, "bc-no-consent", "failed_early", "authorization_failure", no_roles=True)


def businesscentral_secret_expired(sandbox: Sandbox) -> list[Seeded]:
    """The app's client secret expired (AADSTS7000222): a new secret is needed."""
    return _businesscentral(
        sandbox, "bc-secret-expired", "failed_early", "accounting_system_authentication_failure", secret_expired=True
    )


def businesscentral_wrong_environment(sandbox: Sandbox) -> list[Seeded]:
    """accountingCompanyRef names an environment the tenant does not have (404)."""
    return _businesscentral(
        sandbox, "bc-wrong-environment", "failed_early", "invalid_configuration", wrong_environment=True
    )


def businesscentral_journals_not_permitted(sandbox: Sandbox) -> list[Seeded]:
    """The app's permission sets do not cover journal batches (403 Internal_ServerError)."""
    return _businesscentral(
        sandbox, "bc-no-journal-permission", "failed_early", "authorization_failure", no_permission=("journals",)
    )


def businesscentral_blocked_and_heading_accounts(sandbox: Sandbox) -> list[Seeded]:
    """The expense account 8120 is blocked; the contra account 8000 is a heading."""
    return _businesscentral(
        sandbox,
        "bc-unpostable-accounts",
        "failed_early",
        "invalid_configuration",
        configuration={
            "mappings": {"journal": "PLEO", "expenseAccount": "8120", "contraAccount": "8000", "vatCodes": ["STANDARD"]}
        },
    )


def businesscentral_posting_window_closed(sandbox: Sandbox) -> list[Seeded]:
    """The General Ledger Setup allows posting only until yesterday: today's entries are refused."""
    yesterday = date.fromordinal(datetime.now(UTC).date().toordinal() - 1)
    return _businesscentral(
        sandbox,
        "bc-posting-window-closed",
        "failed_early",
        "invalid_configuration",
        gl_setup=businesscentral_gl_setup(allow_from=f"{yesterday.year}-01-01", allow_to=yesterday.isoformat()),
    )


def businesscentral_down(sandbox: Sandbox) -> list[Seeded]:
    """The environment is being updated: 503 with Retry-After on every attempt; retried, then
    failed as unreachable on the last attempt."""
    return _businesscentral(
        sandbox, "bc-updating", "failed_early", "accounting_system_unreachable", unavailable=(503, "1")
    )


BUSINESSCENTRAL_SCENARIOS: tuple[Seeder, ...] = (
    businesscentral_passes,
    businesscentral_vendor_passes,
    businesscentral_us_company,
    businesscentral_unregistered_app,
    businesscentral_no_consent,
    businesscentral_secret_expired,
    businesscentral_wrong_environment,
    businesscentral_journals_not_permitted,
    businesscentral_blocked_and_heading_accounts,
    businesscentral_posting_window_closed,
    businesscentral_down,
)


# ------------------------------------------------------------------ the readiness demo

DAY = 86_400
US_MAPPINGS = {"expenseAccount": "7", "contraAccount": "10"}  # a US company maps no purchase tax code


def _days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class DemoCompany:
    """A company of the readiness demo: its system, seeding traits and expected readiness."""

    slug: str
    system: str
    expected: str  # ready / not_ready / unknown
    reason_type: str | None = None
    traits: dict[str, Any] | None = None
    after: Callable[[Sandbox, str], None] | None = None  # more set-up, given the slug
    notice: str | None = None  # a readiness notice expected to contain this


def _economic_down(sandbox: Sandbox, slug: str) -> None:
    sandbox.economic.inject(
        "GET",
        "/self",
        status=503,
        times=None,
        when=lambda request: request.headers.get("X-AgreementGrantToken", "").startswith(f"grant-{slug}-"),
    )


def _idle_grant(sandbox: Sandbox, slug: str) -> None:
    """The stored token set was last refreshed 59 days ago: Xero drops it after 60 unused."""
    secret_id = sandbox.companies[slug].configuration["accountingCredentialsSecretId"]
    secrets = sandbox.aws.client("secretsmanager")
    tokens = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    secrets.put_secret_value(
        SecretId=secret_id, SecretString=json.dumps({**tokens, "refreshedAt": time.time() - 59 * DAY})
    )


def _grant_ending(sandbox: Sandbox, slug: str) -> None:
    """Intuit's hard end of this QuickBooks connection is 30 days away; the stored access
    token has expired, so the sweep's check refreshes it and learns the end from the answer."""
    grant = sandbox.companies[slug].grant
    grant.hard_expires_at = time.time() + 30 * DAY  # type: ignore[union-attr]


def _disconnect_xero(sandbox: Sandbox, slug: str) -> None:
    company = sandbox.companies[slug]
    sandbox.xero.disconnect(company.grant, company.configuration["accountingCompanyRef"])  # type: ignore[attr-defined]


# The companies of `make readiness` (and of the CLI's --sandbox), one or more per system:
# what each seeding expects the sweep to find.
READINESS_DEMO: tuple[DemoCompany, ...] = (
    DemoCompany("nordlys", "economic", "ready", traits={"agreement_number": 200001}),
    DemoCompany(
        "revoked-grant",
        "economic",
        "not_ready",
        "accounting_system_authentication_failure",
        traits={"agreement_number": 200002, "grant_token": "grant-that-was-revoked"},
    ),
    DemoCompany(
        "incomplete-mappings",
        "economic",
        "not_ready",
        "missing_configuration",
        traits={"agreement_number": 200003, "configuration": {"mappings": {"journal": 1, "vatCodes": ["I25"]}}},
    ),
    DemoCompany(
        "economic-down",
        "economic",
        "unknown",
        "accounting_system_unreachable",
        traits={"agreement_number": 200004},
        after=_economic_down,
    ),
    DemoCompany("xero-thames", "xero", "ready"),
    DemoCompany("xero-idle-grant", "xero", "ready", after=_idle_grant),
    DemoCompany(
        "xero-disconnected", "xero", "not_ready", "accounting_system_authentication_failure", after=_disconnect_xero
    ),
    DemoCompany(
        "xero-archived-account",
        "xero",
        "not_ready",
        "invalid_configuration",
        traits={"configuration": {"mappings": {"expenseAccount": "499", "contraAccount": "615"}}},
    ),
    DemoCompany("fortnox-ready", "fortnox", "ready", traits={"organisation_number": "556100-0001"}),
    DemoCompany(
        "fortnox-no-licence",
        "fortnox",
        "not_ready",
        "authorization_failure",
        traits={
            "organisation_number": "556100-0002",
            "configuration": {"vendorBookkeepingEnabled": True},
            "company": {
                "licences": {
                    *("companyinformation", "bookkeeping", "settings", "supplier", "inbox", "archive", "connectfile")
                }
            },
        },
    ),
    DemoCompany(
        "fortnox-vendor-ready",
        "fortnox",
        "ready",
        traits={"organisation_number": "556100-0003", "configuration": {"vendorBookkeepingEnabled": True}},
    ),
    DemoCompany("qbo-ready", "quickbooks", "ready"),
    DemoCompany(
        "qbo-us",
        "quickbooks",
        "ready",
        traits={"company": {"country": "US", "tax_codes": us_tax_codes()}, "configuration": {"mappings": US_MAPPINGS}},
    ),
    DemoCompany(
        "qbo-books-closed",
        "quickbooks",
        "not_ready",
        "invalid_configuration",
        traits={"company": {"book_close_date": _days_from_today(0)}},
    ),
    DemoCompany(
        "qbo-closed-last-quarter",
        "quickbooks",
        "ready",
        traits={"company": {"book_close_date": _days_from_today(-60)}},
        notice="are closed up to",
    ),
    DemoCompany(
        "qbo-grant-ending",
        "quickbooks",
        "ready",
        traits={"expired_token": True},
        after=_grant_ending,
        notice="ends for good on",
    ),
    DemoCompany(
        "qbo-unsuitable-accounts",
        "quickbooks",
        "not_ready",
        "invalid_configuration",
        traits={"configuration": {"mappings": {"expenseAccount": "13", "contraAccount": "2100", "vatCodes": ["3"]}}},
    ),
    DemoCompany("bc-aarhus", "businesscentral", "ready"),
    DemoCompany("bc-us", "businesscentral", "ready", traits={"vat": False}),
    DemoCompany(
        "bc-unregistered-app",
        "businesscentral",
        "not_ready",
        "accounting_system_authentication_failure",
        traits={"unregistered_app": True},
    ),
    DemoCompany(
        "bc-posting-window-closed",
        "businesscentral",
        "not_ready",
        "invalid_configuration",
        traits={"gl_setup": businesscentral_gl_setup(allow_from="2020-01-01", allow_to="2020-12-31")},
    ),
)


DEFAULT_SCENARIOS: tuple[Seeder, ...] = (
    passes,
    vendor_passes,
    revoked_grant,
    sales_role,
    wrong_agreement,
    vendor_mode_off,
    incomplete_mappings,
    not_connected,
    restricted_journal,
    barred_account,
    unknown_vat_code,
    economic_down,
    routed_to_wrong_company,
    routed_from_unconfigured_company,
    already_failed,
    duplicate_delivery,
    malformed,
    unknown_company,
    *XERO_SCENARIOS,
    *FORTNOX_SCENARIOS,
    *QUICKBOOKS_SCENARIOS,
    *BUSINESSCENTRAL_SCENARIOS,
)


def seed_default(sandbox: Sandbox) -> list[Seeded]:
    seeded: list[Seeded] = []
    for seeder in DEFAULT_SCENARIOS:
        seeded.extend(seeder(sandbox))
    return seeded
