"""The preflight checks (run by engine.py).

Each check is a small function of the ``PreflightContext`` that returns a
``CheckOutcome``. Checks declare what they need; independent checks run
concurrently, and a check whose prerequisite did not pass is skipped (nothing is
asked of an accounting system that refused our credentials). ``CHECKS`` is in
priority order: the first failure is the one the bookkeeper sees first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .connectors.base import AccountingConnector, ConnectionProfile
from .models import Capability, CheckOutcome, CompanyConfiguration, ExportJob
from .models import FailureReasonType as Reason
from .ports import Connection


@dataclass
class PreflightContext:
    """Everything the checks look at. ``profile`` is set by the authentication check."""

    job: ExportJob
    config: CompanyConfiguration
    connection: Connection
    profile: ConnectionProfile | None = field(default=None)

    @property
    def connector(self) -> AccountingConnector:
        assert self.connection.connector is not None, "checks needing a connector depend on connection_settings"
        return self.connection.connector

    @property
    def system(self) -> str:
        connector = self.connection.connector
        return connector.display_name if connector else (self.config.accounting_system or "the accounting system")

    @property
    def vendor_job(self) -> bool:
        """The job books vendors and the company has vendor bookkeeping enabled (otherwise
        ``bookkeeping_mode`` fails it, and nothing vendor-related is asked for)."""
        return self.job.vendor_based_bookkeeping and self.config.vendor_bookkeeping_enabled

    def needed_capabilities(self) -> set[Capability]:
        """Only what this job will do: vendor bookkeeping for vendor jobs, attachments with receipts."""
        needs = {Capability.JOURNAL_ENTRY}
        if self.vendor_job:
            needs.add(Capability.VENDOR_BOOKKEEPING)
        if self.config.export_receipts:
            needs.add(Capability.ATTACHMENT_UPLOAD)
        return needs


@dataclass(frozen=True)
class PreflightCheck:
    name: str
    needs: tuple[str, ...]
    run: Callable[[PreflightContext], CheckOutcome]
    # Looks at the context only (no remote call, nothing to wait for): the engine runs it
    # in its own thread, where a hand-off to the pool would cost more than the check.
    local: bool = False


# ---------------------------------------------------------------- the checks


def connection_settings(ctx: PreflightContext) -> CheckOutcome:
    if ctx.connection.unavailable is not None:
        raise ctx.connection.unavailable
    if ctx.connection.problem is not None:
        return ctx.connection.problem
    return CheckOutcome.passed("connection_settings", system=ctx.config.accounting_system)


def bookkeeping_mode(ctx: PreflightContext) -> CheckOutcome:
    if ctx.job.vendor_based_bookkeeping and not ctx.config.vendor_bookkeeping_enabled:
        return CheckOutcome.failed(
            "bookkeeping_mode",
            Reason.INVALID_CONFIGURATION,
            "This export uses vendor-based bookkeeping, which is not enabled for this company in the "
            "integration. Enable vendor bookkeeping in the integration settings (and map a vendor "
            "payables account), or turn vendor-based bookkeeping off in Pleo's accounting settings, "
            "then export again.",
        )
    mode = "vendor" if ctx.job.vendor_based_bookkeeping else "journal"
    return CheckOutcome.passed("bookkeeping_mode", mode=mode)


def mappings_complete(ctx: PreflightContext) -> CheckOutcome:
    mappings = ctx.config.mappings
    requirements = ctx.connection.requirements
    required = requirements.mappings + (requirements.vendor_mappings if ctx.vendor_job else ())
    missing = [label for attr, label in required if not getattr(mappings, attr)]
    invalid = [p for p in ctx.config.reference_problems(requirements.numeric_fields) if p.startswith("mappings.")]
    if invalid:
        return CheckOutcome.failed(
            "mappings_complete",
            Reason.INVALID_CONFIGURATION,
            f"The integration settings for this company have invalid mappings: {'; '.join(invalid)}. "
            "Correct them in the integration settings, then export again.",
        )
    if missing:
        return CheckOutcome.failed(
            "mappings_complete",
            Reason.MISSING_CONFIGURATION,
            f"The integration settings for this company are incomplete: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. Map them in the integration settings, "
            "then export again.",
        )
    return CheckOutcome.passed("mappings_complete")


def authentication(ctx: PreflightContext) -> CheckOutcome:
    ctx.profile = ctx.connection.authenticate()
    return CheckOutcome.passed(
        "authentication", companyRef=ctx.profile.company_ref, companyName=ctx.profile.company_name
    )


def company_context(ctx: PreflightContext) -> CheckOutcome:
    assert ctx.profile is not None
    configured = ctx.config.accounting_company_ref
    reached = ctx.profile.company_ref
    if reached is None:
        return CheckOutcome.passed("company_context", verified=False, configured=configured)
    if reached != configured and len(ctx.profile.reachable) > 1:
        names = ", ".join(f"{name} ({ref})" for ref, name in sorted(ctx.profile.reachable.items()))
        return CheckOutcome.failed(
            "company_context",
            Reason.INVALID_CONFIGURATION,
            f"The {ctx.system} connection does not include the company configured for this Pleo company "
            f"({configured}); it reaches {names}. Reconnect {ctx.system} and select that company, or correct "
            "the company in the integration settings, then export again.",
        )
    if reached != configured:
        name = f" ({ctx.profile.company_name})" if ctx.profile.company_name else ""
        return CheckOutcome.failed(
            "company_context",
            Reason.INVALID_CONFIGURATION,
            f"The {ctx.system} connection reaches company {reached}{name}, but this Pleo company is "
            f"configured for {configured}. Reconnect {ctx.system} with the right company, or correct "
            "the company in the integration settings, then export again.",
        )
    return CheckOutcome.passed("company_context", verified=True, companyRef=reached)


def permissions(ctx: PreflightContext) -> CheckOutcome:
    assert ctx.profile is not None
    missing = ctx.connector.missing_permissions(ctx.profile, ctx.needed_capabilities())
    if missing:
        return CheckOutcome.failed(
            "permissions",
            Reason.AUTHORIZATION_FAILURE,
            f"The {ctx.system} connection lacks permissions the export needs: {'; '.join(missing)}. "
            + (
                ctx.connector.permission_advice
                or f"Reconnect {ctx.system} in the integration settings with the needed access, then export again."
            ),
        )
    return CheckOutcome.passed("permissions", granted=sorted(ctx.profile.permissions))


def capabilities(ctx: PreflightContext) -> CheckOutcome:
    assert ctx.profile is not None
    problems = []
    supported = []
    notices: list[str] = []
    for capability in sorted(ctx.needed_capabilities()):
        support = ctx.connector.supports(ctx.profile, capability)
        if support.notice and support.notice not in notices:
            notices.append(support.notice)
        if support.supported:
            supported.append(capability.value)
        else:
            problems.append(f"{capability.value.replace('_', ' ')}: {support.detail}")
    if problems:
        return CheckOutcome.failed(
            "capabilities",
            Reason.INVALID_CONFIGURATION,
            f"{ctx.system} cannot take this export: {'; '.join(problems)}. "
            f"Fix this in {ctx.connector.where_to_fix}, then export again.",
        )
    if notices:
        return CheckOutcome.passed("capabilities", supported=supported, notices=notices)
    return CheckOutcome.passed("capabilities", supported=supported)


def mapped_accounts(ctx: PreflightContext) -> CheckOutcome:
    mappings = ctx.config.mappings
    named = {"expenseAccount": mappings.expense_account, "contraAccount": mappings.contra_account}
    if ctx.vendor_job:
        named["vendorPayablesAccount"] = mappings.vendor_payables_account
    found = ctx.connector.accounts(ref for ref in named.values() if ref)
    problems = []
    for setting, ref in named.items():
        if not ref:
            continue
        entry = found.get(ref)
        if entry is None:
            problems.append(f"account {ref} ({setting}) does not exist")
        elif not entry.usable:
            problems.append(f"account {ref} {entry.name or ''} ({setting}) {entry.problem}".replace("  ", " "))
    if problems:
        return CheckOutcome.failed(
            "mapped_accounts",
            Reason.INVALID_CONFIGURATION,
            f"Mapped accounts are not usable in {ctx.system}: {'; '.join(problems)}. Fix the account "
            f"in {ctx.system} or map another one in the integration settings, then export again.",
        )
    return CheckOutcome.passed("mapped_accounts", accounts=sorted(found))


def mapped_tax_codes(ctx: PreflightContext) -> CheckOutcome:
    codes = ctx.config.mappings.vat_codes
    if not codes:
        return CheckOutcome.passed("mapped_tax_codes", taxCodes=[])
    found = ctx.connector.tax_codes(codes)
    problems = [
        f"VAT code {code} does not exist" if found.get(code) is None else f"VAT code {code} {found[code].problem}"  # type: ignore[union-attr]
        for code in codes
        if found.get(code) is None or not found[code].usable  # type: ignore[union-attr]
    ]
    if problems:
        return CheckOutcome.failed(
            "mapped_tax_codes",
            Reason.INVALID_CONFIGURATION,
            f"Mapped VAT codes are not usable in {ctx.system}: {'; '.join(problems)} (vatCodes). "
            f"Create the VAT code in {ctx.system} or correct the VAT mapping in the integration "
            "settings, then export again.",
        )
    return CheckOutcome.passed("mapped_tax_codes", taxCodes=sorted(codes))


CHECKS: tuple[PreflightCheck, ...] = (
    PreflightCheck("connection_settings", (), connection_settings, local=True),
    PreflightCheck("authentication", ("connection_settings",), authentication),
    PreflightCheck("company_context", ("authentication",), company_context, local=True),
    # remote for some systems (Fortnox probes each area)
    PreflightCheck("permissions", ("authentication",), permissions),
    PreflightCheck("bookkeeping_mode", (), bookkeeping_mode, local=True),
    PreflightCheck("mappings_complete", (), mappings_complete, local=True),
    # Looking things up in the accounting system needs the right company and the rights to read.
    PreflightCheck(
        "capabilities", ("company_context", "permissions", "mappings_complete", "bookkeeping_mode"), capabilities
    ),
    PreflightCheck("mapped_accounts", ("company_context", "permissions", "mappings_complete"), mapped_accounts),
    PreflightCheck("mapped_tax_codes", ("company_context", "permissions"), mapped_tax_codes),
)
