"""Visma e-conomic (REST API) connector.

Auth is a static header pair (``X-AppSecretToken`` identifies our app,
``X-AgreementGrantToken`` one customer agreement); there is nothing to refresh, so
a 401 means the grant was revoked. The agreement number is the company context; the
app's role (immutable, chosen when the app was created) is the permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from ..errors import AccountingSystemError
from ..models import Capability, CompanyConfiguration, EconomicCredentials, FailureReasonType
from .base import (
    ConnectionProfile,
    ConnectorEnvironment,
    ConnectorSpec,
    LedgerEntry,
    Support,
    request_or_raise,
    unexpected_answer,
)

NAME = "e-conomic"
POSTING_ROLES = frozenset({"SuperUser", "Bookkeeping"})
POSTABLE_ACCOUNT_TYPES = frozenset({"profitAndLoss", "status"})
PAGE_SIZE = 1000


class EconomicConnector:
    """``AccountingConnector`` for one e-conomic agreement."""

    display_name = NAME
    where_to_fix = "e-conomic (Settings > Chart of accounts / VAT codes / Journals) or the integration settings"

    def __init__(self, http: httpx.Client, credentials: EconomicCredentials, config: CompanyConfiguration) -> None:
        self._http = http
        self._headers = {
            "X-AppSecretToken": credentials.app_secret_token.get_secret_value(),
            "X-AgreementGrantToken": credentials.agreement_grant_token.get_secret_value(),
        }
        self._journal_refs: dict[str, dict[str, Any]] | None = None
        self._journal = config.mappings.journal
        self._vendor_journal = config.mappings.vendor_journal or config.mappings.journal

    # ------------------------------------------------------------ C1 + C4

    def authenticate(self) -> ConnectionProfile:
        response = self._get("/self", what="checking the agreement (GET /self)")
        if response.status_code == 403:
            # Apps with the Bookkeeping role may not read /self: prove the tokens
            # with the cheapest call that role allows.
            probe = self._get("/accounts", what="checking the tokens", params={"pagesize": 1})
            self._raise_for_auth(probe)
            return ConnectionProfile(
                company_ref=None,
                company_name=None,
                permissions=frozenset({"Bookkeeping"}),
                facts={"selfReadable": False},
            )
        self._raise_for_auth(response)
        body = response.json()
        roles = {str(role.get("name")) for role in body.get("application", {}).get("requiredRoles", [])}
        settings = body.get("settings", {})
        return ConnectionProfile(
            company_ref=str(body.get("agreementNumber")),
            company_name=(body.get("company") or {}).get("name"),
            permissions=frozenset(roles),
            facts={
                "selfReadable": True,
                "internationalLedger": bool(settings.get("internationalLedger", False)),
                "baseCurrency": settings.get("baseCurrency"),
                "modules": sorted(str(m.get("name")) for m in body.get("modules", [])),
            },
        )

    # ------------------------------------------------------------ C2 + C3

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        if profile.permissions & POSTING_ROLES:
            return []
        granted = ", ".join(sorted(profile.permissions)) or "none"
        return [
            f"the e-conomic app role must be Bookkeeping or SuperUser (granted: {granted}); "
            "an app's role cannot be changed, so the agreement must be connected with the "
            "integration's Bookkeeping app"
        ]

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability is Capability.ATTACHMENT_UPLOAD:
            return Support(True, "voucher attachments (PDF, JPG, PNG)")
        if capability is Capability.JOURNAL_ENTRY:
            journal_ref, entry_type = self._journal, "financeVoucher"
        else:
            journal_ref, entry_type = self._vendor_journal, "supplierInvoice"
        if not journal_ref:
            return Support(False, "no journal is configured")
        journal = self._journals().get(journal_ref)
        if journal is None:
            return Support(False, f"journal {journal_ref} does not exist in e-conomic")
        restricted_to = (journal.get("settings") or {}).get("entryTypeRestrictedTo")
        if restricted_to and restricted_to != entry_type:
            return Support(
                False,
                f"journal {journal_ref} ({journal.get('name')}) only accepts {restricted_to} entries, "
                f"the export needs {entry_type} entries",
            )
        return Support(True, f"journal {journal_ref} accepts {entry_type} entries")

    # ------------------------------------------------------------ C5

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({ref for ref in refs if ref})
        numbers = [ref for ref in wanted if ref.isdigit()]
        found: dict[str, dict[str, Any]] = {}
        if numbers:
            flt = f"accountNumber$in:[{','.join(numbers)}]"
            for item in self._collection("/accounts", what="looking up the mapped accounts", filter=flt):
                found[str(item.get("accountNumber"))] = item
        return {ref: _account_entry(found[ref]) if ref in found else None for ref in wanted}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({code for code in codes if code})
        found: dict[str, dict[str, Any]] = {}
        if wanted:
            # e-conomic only filters numeric properties with $in, and vatCode is text;
            # an agreement has a handful of VAT codes, so one unfiltered call it is.
            for item in self._collection("/vat-accounts", what="looking up the mapped VAT codes"):
                found[str(item.get("vatCode"))] = item
        return {
            code: LedgerEntry(
                ref=code,
                name=found[code].get("name"),
                usable=not found[code].get("barred", False),
                problem="is barred" if found[code].get("barred", False) else "",
            )
            if code in found
            else None
            for code in wanted
        }

    # ------------------------------------------------------------ plumbing

    def _journals(self) -> dict[str, dict[str, Any]]:
        if self._journal_refs is None:
            self._journal_refs = {
                str(item.get("journalNumber")): item
                for item in self._collection("/journals", what="looking up the journals")
            }
        return self._journal_refs

    def _collection(self, path: str, *, what: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 0
        while True:
            response = self._get(path, what=what, params={**params, "pagesize": PAGE_SIZE, "skippages": page})
            self._raise_for_auth(response)
            if not response.is_success:
                raise unexpected_answer(NAME, response, what)
            body = response.json()
            items.extend(body.get("collection", []))
            if not (body.get("pagination") or {}).get("nextPage"):
                return items
            page += 1

    def _get(self, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        return request_or_raise(self._http, "GET", path, system=NAME, what=what, headers=self._headers, **kwargs)

    @staticmethod
    def _raise_for_auth(response: httpx.Response) -> None:
        if response.status_code == 401:
            raise AccountingSystemError(
                "e-conomic rejected the integration's access to this agreement (the grant was "
                "revoked or the tokens are wrong). Reconnect e-conomic in the integration settings "
                "to grant access again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if response.status_code == 403:
            raise AccountingSystemError(
                "e-conomic refused access: the user who granted the integration access lacks the "
                "rights the app's role needs. An e-conomic administrator must grant access again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )


def _account_entry(item: dict[str, Any]) -> LedgerEntry:
    number = str(item.get("accountNumber"))
    problem = ""
    if item.get("barred"):
        problem = "is barred"
    elif item.get("blockDirectEntries"):
        problem = "is blocked for direct entries"
    elif item.get("accountType") not in POSTABLE_ACCOUNT_TYPES:
        problem = f"is a {item.get('accountType')} account, which cannot be posted to"
    return LedgerEntry(ref=number, name=item.get("name"), usable=not problem, problem=problem)


def _create(env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> EconomicConnector:
    assert config.accounting_credentials_secret_id is not None
    credentials = env.credentials.load(config.accounting_credentials_secret_id, EconomicCredentials, refresh=refresh)
    return EconomicConnector(env.http["economic"], credentials, config)


SPEC = ConnectorSpec(
    system_id="economic",
    display_name=NAME,
    base_urls=lambda settings: {"economic": settings.base_url(settings.economic_api_base_url)},
    create=_create,
)
