"""Visma e-conomic (REST API) connector.

Auth is a static header pair (``X-AppSecretToken`` identifies our app,
``X-AgreementGrantToken`` one customer agreement); there is nothing to refresh, so
a 401 means the grant was revoked. The agreement number is the company context; the
app's role (immutable, chosen when the app was created) is the permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from ..errors import AccountingSystemError
from ..models import Capability, CompanyConfiguration, FailureReasonType
from ..oauth import OAuthBearer
from ..settings import ConnectorSettings, EnvConfigDict, base_url
from .base import (
    BodyReader,
    ConnectionProfile,
    ConnectorEnvironment,
    ConnectorSpec,
    JsonObject,
    LedgerEntry,
    Support,
    request_or_raise,
    unexpected_answer,
)
from .paging import PageRequest, SkipPages

NAME = "e-conomic"
ROLES = ("SuperUser", "Bookkeeping", "Sales", "ProjectEmployee")
"""App role names as e-conomic spells them; ``requiredRoles[].name`` is matched case-insensitively."""
POSTING_ROLES = frozenset({"SuperUser", "Bookkeeping"})
POSTABLE_ACCOUNT_TYPES = frozenset({"profitAndLoss", "status"})
PAGE_SIZE = 1000
MAX_IN_VALUES = 200
"""restdocs "Filtering": an ``$in:`` list takes at most 200 values."""
MAX_PAGES = 100
"""A collection that keeps announcing a next page beyond this many is not the data we expect."""
PAGING = SkipPages(size=PAGE_SIZE, max_pages=MAX_PAGES)
"""``skippages``/``pagesize``; more follows while ``pagination.nextPage`` is given."""


class EconomicCredentials(BaseModel):
    """e-conomic's static token pair (no expiry, no refresh)."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)
    app_secret_token: SecretStr = Field(alias="appSecretToken", min_length=1)
    agreement_grant_token: SecretStr = Field(alias="agreementGrantToken", min_length=1)


class EconomicConnector:
    """``AccountingConnector`` for one e-conomic agreement."""

    display_name = NAME
    where_to_fix = "e-conomic (Settings > Chart of accounts / VAT codes / Journals) or the integration settings"
    permission_advice: str | None = None
    grant: OAuthBearer | None = None

    def __init__(self, http: httpx.Client, credentials: EconomicCredentials, config: CompanyConfiguration) -> None:
        self._http = http
        self._headers = {
            "X-AppSecretToken": credentials.app_secret_token.get_secret_value(),
            "X-AgreementGrantToken": credentials.agreement_grant_token.get_secret_value(),
            # restdocs TL;DR: "Add these three headers to your requests."
            "Content-Type": "application/json",
        }
        self._journal_refs: dict[str, _Journal] | None = None
        self._agreement = config.accounting_company_ref or ""
        self._company_name: str | None = None
        self._journal = config.mappings.journal
        self._vendor_journal = config.mappings.vendor_journal or config.mappings.journal

    # ------------- authentication and the company reached (checks: authentication, company_context)

    def authenticate(self) -> ConnectionProfile:
        what = "checking the agreement (GET /self)"
        response = self._get("/self", what=what)
        if response.status_code == 403:
            # Apps with the Bookkeeping role may not read /self: prove the tokens
            # with the cheapest call that role allows.
            probe_what = "checking the tokens"
            probe = self._get("/accounts", what=probe_what, params={"pagesize": 1})
            self._raise_for_auth(probe)
            if not probe.is_success:
                raise unexpected_answer(NAME, probe, probe_what)
            _page(BodyReader(NAME, probe_what), probe)
            return ConnectionProfile(
                company_ref=None,
                company_name=None,
                permissions=frozenset({"Bookkeeping"}),
                facts={"selfReadable": False},
            )
        self._raise_for_auth(response)
        if not response.is_success:
            raise unexpected_answer(NAME, response, what)
        read = BodyReader(NAME, what)
        body = read.parse_object(response)
        application = read.member(body, "application")
        roles = {
            _role(name) for role in read.objects(application, "requiredRoles") if (name := read.text(role, "name"))
        }
        settings = read.member(body, "settings")
        modules = (read.text(module, "name") for module in read.objects(body, "modules", required=False))
        agreement = read.text(body, "agreementNumber", numbers=True)
        if agreement is None:  # /self always names the agreement: without it, this is not /self
            raise read.malformed()
        company_name = read.text(read.member(body, "company"), "name")
        if agreement == self._agreement:  # name the configured agreement only with its own name
            self._company_name = company_name
        return ConnectionProfile(
            company_ref=agreement,
            company_name=company_name,
            permissions=frozenset(roles),
            facts={
                "selfReadable": True,
                "internationalLedger": _international_ledger(read, settings),
                "baseCurrency": read.text(settings, "baseCurrency"),
                "modules": sorted(name for name in modules if name),
            },
        )

    # ----------------------------- permissions and capabilities (checks: permissions, capabilities)

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        roles = {_role(name) for name in profile.permissions}
        if roles & POSTING_ROLES:
            return []
        granted = ", ".join(sorted(roles)) or "none"
        return [
            f"the e-conomic app role for {self._agreement_label()} must be Bookkeeping or SuperUser "
            f"(granted: {granted}); "
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
            return Support(False, f"journal {journal_ref} does not exist in e-conomic for {self._agreement_label()}")
        label = f"journal {journal_ref} ({journal.name})" if journal.name else f"journal {journal_ref}"
        if journal.restricted_to and journal.restricted_to != entry_type:
            return Support(
                False,
                f"{label} only accepts {journal.restricted_to} entries, the export needs {entry_type} entries",
            )
        return Support(True, f"{label} accepts {entry_type} entries")

    # -------------------- mapped accounts and tax codes (checks: mapped_accounts, mapped_tax_codes)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({ref for ref in refs if ref})
        numbers = [ref for ref in wanted if ref.isdigit()]
        found: dict[str, LedgerEntry] = {}
        if numbers:
            what = "looking up the mapped accounts"
            read = BodyReader(NAME, what)
            for start in range(0, len(numbers), MAX_IN_VALUES):
                flt = f"accountNumber$in:[{','.join(numbers[start : start + MAX_IN_VALUES])}]"
                for item in self._collection("/accounts", what=what, filter=flt):
                    entry = _account_entry(read, item)
                    if entry is not None:
                        found[entry.ref] = entry
        return {ref: found.get(ref) for ref in wanted}

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        wanted = sorted({code for code in codes if code})
        found: dict[str, LedgerEntry] = {}
        if wanted:
            # e-conomic only filters numeric properties with $in, and vatCode is text;
            # an agreement has a handful of VAT codes, so one unfiltered call it is.
            what = "looking up the mapped VAT codes"
            read = BodyReader(NAME, what)
            for item in self._collection("/vat-accounts", what=what):
                code = read.text(item, "vatCode")
                if code is None:
                    continue
                barred = read.flag(item, "barred", default=False)
                found[code] = LedgerEntry(
                    ref=code, name=read.text(item, "name"), usable=not barred, problem="is barred" if barred else ""
                )
        return {code: found.get(code) for code in wanted}

    # ------------------------------------------------------------ plumbing

    def _journals(self) -> dict[str, _Journal]:
        if self._journal_refs is None:
            what = "looking up the journals"
            read = BodyReader(NAME, what)
            journals: dict[str, _Journal] = {}
            for item in self._collection("/journals", what=what):
                number = read.text(item, "journalNumber", numbers=True)
                if number is not None:
                    restricted_to = read.text(read.member(item, "settings"), "entryTypeRestrictedTo")
                    journals[number] = _Journal(read.text(item, "name"), restricted_to)
            self._journal_refs = journals
        return self._journal_refs

    def _collection(self, path: str, *, what: str, **params: Any) -> list[JsonObject]:
        read = BodyReader(NAME, what)

        def fetch(page: PageRequest) -> JsonObject:
            response = self._get(path, what=what, params={**params, **page.params})
            self._raise_for_auth(response)
            if not response.is_success:
                raise unexpected_answer(NAME, response, what)
            return read.parse_object(response)

        return PAGING.collect(fetch, lambda body: read.objects(body, "collection"), read)

    def _get(self, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        return request_or_raise(self._http, "GET", path, system=NAME, what=what, headers=self._headers, **kwargs)

    def _agreement_label(self) -> str:
        """The agreement as the bookkeeper knows it: company name (once known) and agreement number."""
        if self._company_name and self._agreement:
            return f"{self._company_name} (agreement {self._agreement})"
        if self._agreement:
            return f"agreement {self._agreement}"
        return "this agreement"

    def _raise_for_auth(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise AccountingSystemError(
                f"e-conomic rejected the integration's access to {self._agreement_label()} (the grant was "
                "revoked or the tokens are wrong). Reconnect e-conomic in the integration settings "
                "to grant access again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        if response.status_code == 403:
            raise AccountingSystemError(
                f"e-conomic refused access to {self._agreement_label()}: the user who granted the integration "
                "access lacks the rights the app's role needs. An e-conomic administrator must grant access again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )


@dataclass(frozen=True)
class _Journal:
    name: str | None
    restricted_to: str | None
    """``settings.entryTypeRestrictedTo``: the only entry type the journal accepts, if any."""


def _page(read: BodyReader, response: httpx.Response) -> tuple[list[JsonObject], bool]:
    """One page of a collection: its items, and whether another page follows."""
    body = read.parse_object(response)
    items = read.objects(body, "collection")
    return items, PAGING.more(read, body)


def _international_ledger(read: BodyReader, settings: JsonObject) -> bool:
    """``settings.internationalLedger``: e-conomic's self.get schema types it as a string
    ("If this value is 'true' ..."); a JSON boolean is taken as well."""
    value = settings.get("internationalLedger")
    if isinstance(value, str):
        return value.strip().casefold() == "true"
    return read.flag(settings, "internationalLedger", default=False)


def _role(name: str) -> str:
    """A role name as e-conomic spells it (``Superuser`` and ``superUser`` are ``SuperUser``)."""
    return next((role for role in ROLES if role.casefold() == name.casefold()), name)


def _account_entry(read: BodyReader, item: JsonObject) -> LedgerEntry | None:
    number = read.text(item, "accountNumber", numbers=True)
    if number is None:
        return None
    account_type = read.text(item, "accountType")
    problem = ""
    if read.flag(item, "barred", default=False):
        problem = "is barred"
    elif read.flag(item, "blockDirectEntries", default=False):
        problem = "is blocked for direct entries"
    elif account_type not in POSTABLE_ACCOUNT_TYPES:
        kind = f"a {account_type} account" if account_type else "an account of unknown type"
        problem = f"is {kind}, which cannot be posted to"
    return LedgerEntry(ref=number, name=read.text(item, "name"), usable=not problem, problem=problem)


class EconomicSettings(ConnectorSettings):
    """e-conomic's settings: ``ECONOMIC_API_BASE_URL``."""

    model_config = EnvConfigDict(env_prefix="ECONOMIC_", frozen=True, extra="ignore")

    api_base_url: HttpUrl = HttpUrl("https://restapi.e-conomic.com")


def _base_urls(settings: ConnectorSettings) -> dict[str, str]:
    assert isinstance(settings, EconomicSettings)
    return {"economic": base_url(settings.api_base_url)}


def _create(env: ConnectorEnvironment, config: CompanyConfiguration, refresh: bool) -> EconomicConnector:
    assert config.accounting_credentials_secret_id is not None
    credentials = env.credentials.load(config.accounting_credentials_secret_id, EconomicCredentials, refresh=refresh)
    return EconomicConnector(env.http["economic"], credentials, config)


SPEC = ConnectorSpec(
    system_id="economic",
    display_name=NAME,
    settings=EconomicSettings,
    base_urls=_base_urls,
    create=_create,
    credentials=EconomicCredentials,
    numeric_fields=frozenset(
        {
            "accountingCompanyRef",  # the agreement number
            "mappings.journal",
            "mappings.expenseAccount",
            "mappings.contraAccount",
            "mappings.vendorJournal",
            "mappings.vendorPayablesAccount",
        }
    ),
)
