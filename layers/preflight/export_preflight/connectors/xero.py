"""Xero (Accounting API) connector.

OAuth 2.0 with 30-minute access tokens and rotating refresh tokens (see oauth.py);
one grant may reach several organisations ("tenants"), so every Accounting API call
names the configured tenant in ``xero-tenant-id``. Granted scopes come from the access
token's ``scope`` claim. Xero quirk: a call outside the granted scopes answers 401 with
``Detail: AuthorizationUnsuccessful`` — a permissions problem, not bad credentials.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from ..errors import AccountingSystemError, AccountingSystemUnavailable
from ..models import Capability, CompanyConfiguration, FailureReasonType
from ..oauth import OAuthBearer
from .base import (
    BodyReader,
    ConnectionProfile,
    JsonObject,
    LedgerEntry,
    Support,
    json_body,
    request_or_raise,
    unexpected_answer,
)
from .oauth_system import OAuthSystem, TokenService

NAME = "Xero"
API = "/api.xro/2.0"
SETTINGS_SCOPES = ("accounting.settings", "accounting.settings.read")
SCOPES_NEEDED: dict[Capability, tuple[tuple[str, ...], ...]] = {
    Capability.JOURNAL_ENTRY: (("accounting.manualjournals", "accounting.transactions"),),
    Capability.VENDOR_BOOKKEEPING: (
        ("accounting.invoices", "accounting.transactions"),
        ("accounting.contacts",),
    ),
    Capability.ATTACHMENT_UPLOAD: (("accounting.attachments",),),
}
BILL_ACTIONS = ("CreateApprovedBill", "CreateDraftBill")


class XeroConnector:
    """``AccountingConnector`` for one Xero organisation (tenant)."""

    display_name = NAME
    where_to_fix = "Xero (Accounting > Chart of accounts / Tax rates) or the integration settings"
    permission_advice: str | None = None

    def __init__(self, api: httpx.Client, auth: OAuthBearer, config: CompanyConfiguration) -> None:
        self._api = api
        self._auth = auth
        self.grant: OAuthBearer | None = auth
        self._tenant = config.accounting_company_ref or ""
        self._organisation_name: str | None = None
        self._actions_found: dict[str, str] | None = None
        self._lists: dict[str, list[JsonObject]] = {}

    # ------------- authentication and the company reached (checks: authentication, company_context)

    def authenticate(self) -> ConnectionProfile:
        what = "reading the organisation"
        response = self._get(f"{API}/Organisation", what=what)
        if response.status_code == 403:
            return self._profile_without_tenant()
        self._raise_for_auth(response, what=what)
        if not response.is_success:
            raise unexpected_answer(NAME, response, what)
        read = BodyReader(NAME, what)
        organisations = read.objects(read.parse_object(response), "Organisations")
        if not organisations:
            raise read.malformed()
        organisation = organisations[0]
        self._organisation_name = read.text(organisation, "Name")
        return ConnectionProfile(
            company_ref=self._tenant,
            company_name=self._organisation_name,
            permissions=self._auth.current().scopes(),
            facts={
                "countryCode": read.text(organisation, "CountryCode"),
                "baseCurrency": read.text(organisation, "BaseCurrency"),
                "isDemoCompany": read.flag(organisation, "IsDemoCompany", default=False),
                "periodLockDate": read.text(organisation, "PeriodLockDate"),
            },
        )

    def _profile_without_tenant(self) -> ConnectionProfile:
        """The tenant refused us: find out which organisations the grant does reach."""
        what = "listing the connected organisations"
        response = self._get("/connections", what=what, tenant=False)
        self._raise_for_auth(response, what=what)
        if not response.is_success:
            raise unexpected_answer(NAME, response, what)
        read = BodyReader(NAME, what)
        reachable: dict[str, str] = {}
        for connection in read.parse_array(response):
            tenant_id = read.text(connection, "tenantId")
            if tenant_id:
                reachable[tenant_id] = read.text(connection, "tenantName") or tenant_id
        configured = next((ref for ref in reachable if ref.lower() == self._tenant.lower()), None)
        if configured is not None:  # connected, but the user lost access to the organisation
            raise AccountingSystemError(
                f"Xero refused access to the organisation {_organisation(reachable[configured], self._tenant)}: "
                "the user who connected Xero lost access to it. Reconnect Xero in the integration settings with "
                "a user who has access to that organisation, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if not reachable:
            raise AccountingSystemError(
                f"The Xero connection no longer includes any organisation: the organisation configured for this "
                f"company (tenant id {self._tenant}) was disconnected from the integration. Reconnect Xero in the "
                "integration settings and select that organisation, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        first = min(reachable)
        return ConnectionProfile(
            company_ref=first,
            company_name=reachable[first],
            permissions=self._auth.current().scopes(),
            reachable=reachable,
        )

    # ----------------------------- permissions and capabilities (checks: permissions, capabilities)

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        groups: list[tuple[str, ...]] = [SETTINGS_SCOPES]
        for capability in sorted(needs):
            groups.extend(SCOPES_NEEDED.get(capability, ()))
        return [
            f"the Xero scope {' or '.join(group)}"
            for group in dict.fromkeys(groups)
            if not profile.permissions.intersection(group)
        ]

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability is not Capability.VENDOR_BOOKKEEPING:
            return Support(True, "granted by scope")
        actions = self._actions()
        allowed = [name for name in BILL_ACTIONS if actions.get(name) == "ALLOWED"]
        if allowed:
            return Support(True, f"organisation allows {', '.join(allowed)}")
        return Support(
            False,
            f"{self._organisation_label()} does not allow creating bills (Organisation/Actions: "
            + ", ".join(f"{name} {actions.get(name, 'missing')}" for name in BILL_ACTIONS)
            + "); check the organisation's Xero plan and the connecting user's role",
        )

    # -------------------- mapped accounts and tax codes (checks: mapped_accounts, mapped_tax_codes)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({ref for ref in refs if ref})
        if not wanted:
            return {}
        what = "looking up the mapped accounts"
        read = BodyReader(NAME, what)
        by_code: dict[str, LedgerEntry] = {}
        for item in self._list("Accounts", what=what):
            entry = _account_entry(read, item)
            if entry is not None:
                by_code[entry.ref] = entry
        return {ref: by_code.get(ref) for ref in wanted}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({code for code in codes if code})
        if not wanted:
            return {}
        what = "looking up the mapped tax rates"
        read = BodyReader(NAME, what)
        by_type: dict[str, LedgerEntry] = {}
        for item in self._list("TaxRates", what=what):
            entry = _tax_rate_entry(read, item)
            if entry is not None:
                by_type[entry.ref] = entry
        return {code: by_type.get(code) for code in wanted}

    # ------------------------------------------------------------ plumbing

    def _actions(self) -> dict[str, str]:
        if self._actions_found is None:
            what = "reading what the organisation allows"
            response = self._get(f"{API}/Organisation/Actions", what=what)
            self._raise_for_auth(response, what=what)
            if not response.is_success:
                raise unexpected_answer(NAME, response, what)
            read = BodyReader(NAME, what)
            found: dict[str, str] = {}
            for action in read.objects(read.parse_object(response), "Actions"):
                name, status = read.text(action, "Name"), read.text(action, "Status")
                if name and status:
                    found[name] = status
            self._actions_found = found
        return dict(self._actions_found)

    def _list(self, resource: str, *, what: str) -> list[JsonObject]:
        if resource not in self._lists:
            response = self._get(f"{API}/{resource}", what=what)
            self._raise_for_auth(response, what=what)
            if not response.is_success:
                raise unexpected_answer(NAME, response, what)
            read = BodyReader(NAME, what)
            self._lists[resource] = read.objects(read.parse_object(response), resource)
        return list(self._lists[resource])

    def _get(self, path: str, *, what: str, tenant: bool = True) -> httpx.Response:
        """GET with the bearer token (a 401 refreshes it once: see ``OAuthBearer``) and the tenant."""
        headers = {"xero-tenant-id": self._tenant} if tenant else {}
        return request_or_raise(
            self._api,
            "GET",
            path,
            system=NAME,
            what=what,
            headers=headers,
            auth=self._auth,
            inspect=_daily_limit_reached,
        )

    def _organisation_label(self) -> str:
        """The organisation as the bookkeeper knows it: its name (once known) and tenant id."""
        return f"the organisation {_organisation(self._organisation_name, self._tenant)}"

    def _raise_for_auth(self, response: httpx.Response, *, what: str) -> None:
        if response.status_code == 401 and _detail(response) == "AuthorizationUnsuccessful":
            raise AccountingSystemError(
                f"Xero refused {what} for {self._organisation_label()}: the connection was not granted the scope "
                "this needs. Reconnect Xero in the integration settings and approve all requested permissions, "
                "then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if response.status_code == 401:
            raise AccountingSystemError(
                f"Xero rejected the integration's access token for {self._organisation_label()} even after a "
                "refresh. Reconnect Xero in the integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if response.status_code == 403:
            raise AccountingSystemError(
                f"Xero refused {what} for {self._organisation_label()} (403). Reconnect Xero in the integration "
                "settings, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )


def _scope_refusal(response: httpx.Response) -> bool:
    """Xero answers a call outside the granted scopes 401 ``AuthorizationUnsuccessful``:
    a permissions problem that a new token would not solve."""
    return _detail(response) == "AuthorizationUnsuccessful"


def _daily_limit_reached(response: httpx.Response) -> None:
    """Xero's day limit resets hours later: fail now rather than burn retries."""
    if response.status_code == 429 and response.headers.get("X-Rate-Limit-Problem", "").lower() == "day":
        raise AccountingSystemError(
            "Xero's daily API limit for this organisation is used up (it resets within 24 hours). Nothing was "
            "exported; export again tomorrow, or ask Xero support about the organisation's API plan.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
        )


def _detail(response: httpx.Response) -> str:
    """``Detail`` of a Xero problem-details body; "" when the body is anything else."""
    try:
        body = json_body(response, system=NAME, what="reading an error answer")
    except AccountingSystemUnavailable:
        return ""
    if not isinstance(body, dict):
        return ""
    detail = body.get("Detail") or body.get("detail")
    return detail if isinstance(detail, str) else ""


def _organisation(name: str | None, tenant_id: str) -> str:
    return f"{name} (tenant id {tenant_id})" if name and name != tenant_id else f"with tenant id {tenant_id}"


def _account_entry(read: BodyReader, account: JsonObject) -> LedgerEntry | None:
    code = read.text(account, "Code")
    if code is None:  # bank accounts may have no code; nothing can be mapped to them by code
        return None
    status = read.text(account, "Status") or "ACTIVE"
    system_account = read.text(account, "SystemAccount")
    problem = ""
    if status != "ACTIVE":
        problem = f"is {status}"
    elif system_account:
        problem = f"is a system account ({system_account}), which manual journals cannot post to"
    elif read.text(account, "Type") == "BANK":
        problem = "is a bank account, which manual journals cannot post to"
    return LedgerEntry(ref=code, name=read.text(account, "Name"), usable=not problem, problem=problem)


def _tax_rate_entry(read: BodyReader, rate: JsonObject) -> LedgerEntry | None:
    tax_type = read.text(rate, "TaxType")
    if tax_type is None:
        return None
    status = read.text(rate, "Status") or "ACTIVE"
    problem = ""
    if status != "ACTIVE":
        problem = f"is {status}"
    elif not read.flag(rate, "CanApplyToExpenses", default=True):
        problem = "cannot be applied to expenses (CanApplyToExpenses is false in Xero)"
    return LedgerEntry(ref=tax_type, name=read.text(rate, "Name"), usable=not problem, problem=problem)


XERO = OAuthSystem(
    system_id="xero",
    display_name=NAME,
    env_prefix="XERO_",
    api_base_url="https://api.xero.com",
    token_service=TokenService("identity", "https://identity.xero.com", "/connect/token"),
    client_credentials="export-preflight/xero/client",
    refusal=_scope_refusal,
)
XeroSettings = XERO.settings

SPEC = XERO.spec(
    XeroConnector,
    required_mappings=(
        ("expense_account", "default expense account (expenseAccount)"),
        ("contra_account", "contra account for card spend (contraAccount)"),
    ),
    vendor_mappings=(),  # bills post to Xero's own Accounts Payable system account
    refresh_token_idle_days=60,  # refresh token: expires after 60 days unused
)
