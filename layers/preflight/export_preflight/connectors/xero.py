"""Xero (Accounting API) connector.

OAuth 2.0 with 30-minute access tokens and rotating refresh tokens (see oauth.py);
one grant may reach several organisations ("tenants"), so every Accounting API call
names the configured tenant in ``xero-tenant-id``. Granted scopes come from the access
token's ``scope`` claim. Xero quirk: a call outside the granted scopes answers 401 with
``Detail: AuthorizationUnsuccessful`` — a permissions problem, not bad credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from ..errors import AccountingSystemError
from ..models import Capability, ClientCredentials, CompanyConfiguration, FailureReasonType, TokenSet
from ..oauth import OAuthTokens, TokenEndpoint
from .base import (
    ConnectionProfile,
    ConnectorEnvironment,
    ConnectorSpec,
    LedgerEntry,
    Support,
    request_or_raise,
    unexpected_answer,
)

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

    def __init__(
        self,
        api: httpx.Client,
        tokens: OAuthTokens,
        endpoint: TokenEndpoint,
        secret_id: str,
        config: CompanyConfiguration,
    ) -> None:
        self._api = api
        self._tokens = tokens
        self._endpoint = endpoint
        self._secret_id = secret_id
        self._tenant = config.accounting_company_ref or ""
        self._current: TokenSet | None = None
        self._cache: dict[str, Any] = {}

    # ------------------------------------------------------------ C1 + C4

    def authenticate(self) -> ConnectionProfile:
        self._current = self._tokens.current(self._secret_id, self._endpoint)
        response = self._get(f"{API}/Organisation", what="reading the organisation")
        if response.status_code == 403:
            return self._profile_without_tenant()
        self._raise_for_auth(response, what="reading the organisation")
        organisation = (response.json().get("Organisations") or [{}])[0]
        return ConnectionProfile(
            company_ref=self._tenant,
            company_name=organisation.get("Name"),
            permissions=self._current.scopes(),
            facts={
                "countryCode": organisation.get("CountryCode"),
                "baseCurrency": organisation.get("BaseCurrency"),
                "isDemoCompany": organisation.get("IsDemoCompany"),
                "periodLockDate": organisation.get("PeriodLockDate"),
            },
        )

    def _profile_without_tenant(self) -> ConnectionProfile:
        """The tenant refused us: find out which organisations the grant does reach."""
        response = self._get("/connections", what="listing the connected organisations", tenant=False)
        self._raise_for_auth(response, what="listing the connected organisations")
        reachable = {str(c.get("tenantId")): str(c.get("tenantName")) for c in response.json() or []}
        if self._tenant in reachable:  # connected, but the user lost access to the organisation
            raise AccountingSystemError(
                f"Xero refused access to the organisation {reachable[self._tenant]} ({self._tenant}): the user "
                "who connected Xero lost access to it. Reconnect Xero in the integration settings.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if not reachable:
            raise AccountingSystemError(
                "The Xero connection no longer includes any organisation. Reconnect Xero in the integration "
                "settings and select the organisation, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        first = next(iter(sorted(reachable)))
        return ConnectionProfile(
            company_ref=first,
            company_name=reachable[first],
            permissions=self._current.scopes() if self._current else frozenset(),
            reachable=reachable,
        )

    # ------------------------------------------------------------ C2 + C3

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
            "the organisation does not allow creating bills (Organisation/Actions: "
            + ", ".join(f"{name} {actions.get(name, 'missing')}" for name in BILL_ACTIONS)
            + "); check the organisation's Xero plan and the connecting user's role",
        )

    # ------------------------------------------------------------ C5

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        by_code = {str(a.get("Code")): a for a in self._list("Accounts", what="looking up the mapped accounts")}
        return {ref: _account_entry(by_code[ref]) if ref in by_code else None for ref in refs if ref}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        by_type = {str(t.get("TaxType")): t for t in self._list("TaxRates", what="looking up the mapped tax rates")}
        found: dict[str, LedgerEntry | None] = {}
        for code in codes:
            rate = by_type.get(code)
            if rate is None:
                found[code] = None
            else:
                status = rate.get("Status", "ACTIVE")
                found[code] = LedgerEntry(
                    code, rate.get("Name"), status == "ACTIVE", "" if status == "ACTIVE" else f"is {status}"
                )
        return found

    # ------------------------------------------------------------ plumbing

    def _actions(self) -> dict[str, str]:
        if "actions" not in self._cache:
            response = self._get(f"{API}/Organisation/Actions", what="reading what the organisation allows")
            self._raise_for_auth(response, what="reading what the organisation allows")
            actions = response.json().get("Actions") or []
            self._cache["actions"] = {str(a.get("Name")): str(a.get("Status")) for a in actions}
        return dict(self._cache["actions"])

    def _list(self, resource: str, *, what: str) -> list[dict[str, Any]]:
        if resource not in self._cache:
            response = self._get(f"{API}/{resource}", what=what)
            self._raise_for_auth(response, what=what)
            if not response.is_success:
                raise unexpected_answer(NAME, response, what)
            self._cache[resource] = response.json().get(resource, [])
        return list(self._cache[resource])

    def _get(self, path: str, *, what: str, tenant: bool = True) -> httpx.Response:
        response = self._send(path, what=what, tenant=tenant)
        if response.status_code == 401 and _detail(response) != "AuthorizationUnsuccessful":
            # Expired or revoked early: refresh once (exactly once across containers), retry once.
            assert self._current is not None
            self._current = self._tokens.refresh(self._secret_id, self._endpoint, rejected=self._current)
            response = self._send(path, what=what, tenant=tenant)
        return response

    def _send(self, path: str, *, what: str, tenant: bool) -> httpx.Response:
        assert self._current is not None
        headers = {"Authorization": f"Bearer {self._current.access_token.get_secret_value()}"}
        if tenant:
            headers["xero-tenant-id"] = self._tenant
        return request_or_raise(
            self._api, "GET", path, system=NAME, what=what, headers=headers, inspect=_daily_limit_reached
        )

    @staticmethod
    def _raise_for_auth(response: httpx.Response, *, what: str) -> None:
        if response.status_code == 401 and _detail(response) == "AuthorizationUnsuccessful":
            raise AccountingSystemError(
                f"Xero refused {what}: the connection was not granted the scope this needs. Reconnect Xero in "
                "the integration settings and approve all requested permissions, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if response.status_code == 401:
            raise AccountingSystemError(
                "Xero rejected the integration's access token even after a refresh. Reconnect Xero in the "
                "integration settings, then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if response.status_code == 403:
            raise AccountingSystemError(
                f"Xero refused {what} (403). Reconnect Xero in the integration settings.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )


def _daily_limit_reached(response: httpx.Response) -> None:
    """Xero's day limit resets hours later: fail now rather than burn retries."""
    if response.status_code == 429 and response.headers.get("X-Rate-Limit-Problem", "").lower() == "day":
        raise AccountingSystemError(
            "Xero's daily API limit for this organisation is used up (it resets within 24 hours). Nothing was "
            "exported; export again tomorrow, or ask Xero support about the organisation's API plan.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
        )


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("Detail") or body.get("detail") or "") if isinstance(body, dict) else ""


def _account_entry(account: dict[str, Any]) -> LedgerEntry:
    code = str(account.get("Code"))
    status = account.get("Status", "ACTIVE")
    problem = ""
    if status != "ACTIVE":
        problem = f"is {status}"
    elif account.get("SystemAccount"):
        problem = f"is a system account ({account['SystemAccount']}), which manual journals cannot post to"
    elif account.get("Type") == "BANK":
        problem = "is a bank account, which manual journals cannot post to"
    return LedgerEntry(ref=code, name=account.get("Name"), usable=not problem, problem=problem)


def _create(env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> XeroConnector:
    assert config.accounting_credentials_secret_id is not None and env.tokens is not None
    env.credentials.load(config.accounting_credentials_secret_id, TokenSet, refresh=refresh)  # usable at all?
    settings = env.settings
    endpoint = TokenEndpoint(
        env.http["xero-identity"],
        "/connect/token",
        lambda: env.credentials.load(settings.xero_client_credentials_secret_id, ClientCredentials),
        NAME,
    )
    return XeroConnector(env.http["xero"], env.tokens, endpoint, config.accounting_credentials_secret_id, config)


SPEC = ConnectorSpec(
    system_id="xero",
    display_name=NAME,
    base_urls=lambda settings: {
        "xero": settings.base_url(settings.xero_api_base_url),
        "xero-identity": settings.base_url(settings.xero_identity_base_url),
    },
    create=_create,
    required_mappings=(
        ("expense_account", "default expense account (expenseAccount)"),
        ("contra_account", "contra account for card spend (contraAccount)"),
    ),
    reread_on_rejection=False,
    vendor_mappings=(),  # bills post to Xero's own Accounts Payable system account
)
