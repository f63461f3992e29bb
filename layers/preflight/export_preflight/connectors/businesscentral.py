"""Microsoft Dynamics 365 Business Central (online, API v2.0) connector.

Service to service: the customer's administrator registers an app in the company's Microsoft
Entra tenant (application permission ``API.ReadWrite.All`` of Dynamics 365 Business Central,
admin consent), adds it on Business Central's *Microsoft Entra Applications* page (State
Enabled, permission sets), and gives us its client id and a client secret: the company's
credentials secret is ``{"clientId", "clientSecret"}``. Tokens come from the client-credentials
grant (``client_credentials.py``): no refresh token, nothing written back.
``accountingCompanyRef`` is ``<tenantId>/<environment>/<companyId>``; every call goes to
``{API}/v2.0/{tenant}/{environment}/api/v2.0/companies({companyId})/...``.

Facts (ids of ``tests/contract/vendors/businesscentral/facts.yaml``, which gives each source;
"assumed" there means no Microsoft page says so):
token-endpoint, token-error-body, aadsts-7000215/7000222/700016/90002/500011 (the codes we
decide on; which HTTP status each comes with is assumed: token-error-http-status);
token-roles-api-readwrite-all and aadsts-65001-not-for-client-credentials (a token without the
``API.ReadWrite.All`` role means no admin consent); api-base; company-properties;
wrong-environment-404 and unknown-company-404 [assumed]; unregistered-app-answer [assumed: 401
``Authentication_InvalidCredentials``]; entra-application-page; missing-permission-answer
[assumed: ``Internal_ServerError`` "permissions prevented the action", 403 or 400];
permission-sets-needed [assumed: D365 BASIC + D365 ACC. PAYABLE]; account-postable,
account-type-enum, account-direct-posting; vendor-blocked-enum, vendor-blocked-semantics;
journals-default-template; tax-groups-semantics; gl-setup-posting-window,
gl-setup-collection [assumed]; collection-envelope, error-envelope, enum-wire-encoding,
blank-values, paging-server-driven, next-link-absolute-same-base [assumed], filter-on-properties;
retry-after-502-503, retry-after-429 [assumed], concurrency-per-user, timeouts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from ..concurrency import side_by_side
from ..errors import AccountingSystemError, AccountingSystemUnavailable, TransientError
from ..models import Capability, CompanyConfiguration, CompanyRefRule, FailureReasonType, jwt_claims
from ..oauth import GrantRevoked, OAuthBearer
from .base import (
    BodyReader,
    ConnectionProfile,
    JsonObject,
    LedgerEntry,
    Support,
    json_body,
    read_pool,
    request_or_raise,
    unexpected_answer,
    utc_today,
)
from .client_credentials import ClientCredentialsGrant, ClientCredentialsSystem, TokenRefusal
from .oauth_system import TokenService
from .paging import NextLink, PageRequest

NAME = "Business Central"
# facts.yaml token-endpoint: POST https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token, scope below.
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"  # noqa: S105 - a URL path
SCOPE = "https://api.businesscentral.dynamics.com/.default"
# facts.yaml token-roles-api-readwrite-all: the application permission the app-only token must carry.
API_ROLE = "API.ReadWrite.All"
PAGE_SIZE = 1000
"""Asked for with ``Prefer: odata.maxpagesize`` (facts.yaml paging-server-driven: at most 20,000 online)."""
MAX_PAGES = 50
"""A collection that keeps linking a next page beyond this many is not the data we expect."""

_GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
# ASSUMED: environment names are at most 30 characters (the admin center's limit; no API page says so).
COMPANY_REF = re.compile(rf"(?P<tenant>{_GUID}|{_DOMAIN})/(?P<environment>[A-Za-z0-9_-]{{1,30}})/(?P<company>{_GUID})")
COMPANY_REF_MEANING = (
    "<tenantId>/<environmentName>/<companyId>: the Microsoft Entra tenant (a GUID or its domain), the Business "
    "Central environment's name (letters, digits, - and _, e.g. production) and the company's id (a GUID)"
)

ENTRA_APPLICATIONS = "Business Central's Microsoft Entra Applications page"
# ASSUMED (facts.yaml permission-sets-needed: not documented; permission-set-names gives the names): the least
# Business Central permission sets an app needs for Pleo's reads and writes.
PERMISSION_SETS = "D365 BASIC and D365 ACC. PAYABLE"
CHART = "the Chart of Accounts page"
GL_SETUP = "the General Ledger Setup page"
BLANK_DATE = "0001-01-01"  # facts.yaml blank-values, gl-setup-posting-window: no limit

# facts.yaml missing-permission-answer [assumed]: code Internal_ServerError, the message says which object.
_PERMISSION_MESSAGE = re.compile(r"permissions prevented the action|do not have the following permissions", re.I)
_PERMISSION_OBJECT = re.compile(
    r"\((TableData [^()]{1,120})\)|following permissions on ([A-Za-z0-9 .,:'-]{1,120}?: ?[A-Za-z]+)"
)
_ENCODED = re.compile(r"_x([0-9A-Fa-f]{4})_")


@dataclass(frozen=True)
class EntitySet:
    """An entity set the export uses and what it is, for a reader of a missing permission."""

    name: str
    label: str
    probe_filter: str | None = None
    """A ``$filter`` the cheap read needs (attachments are read per parent: a read without one may be
    refused by Business Central's code before any permission is looked at)."""


ACCOUNTS = EntitySet("accounts", "G/L accounts")
JOURNALS = EntitySet("journals", "general journal batches")
TAX_GROUPS = EntitySet("taxGroups", "tax groups")
VENDORS = EntitySet("vendors", "vendors")
PURCHASE_INVOICES = EntitySet("purchaseInvoices", "purchase invoices")
# The blank GUID (facts.yaml blank-values) as the parent: no attachment has it, the read costs nothing.
ATTACHMENTS = EntitySet("attachments", "attachments", "parentId eq 00000000-0000-0000-0000-000000000000")
GENERAL_LEDGER_SETUP = EntitySet("generalLedgerSetup", "the General Ledger Setup")
SETS_NEEDED: dict[Capability, tuple[EntitySet, ...]] = {
    Capability.JOURNAL_ENTRY: (ACCOUNTS, JOURNALS, TAX_GROUPS),
    Capability.VENDOR_BOOKKEEPING: (VENDORS, PURCHASE_INVOICES),
    Capability.ATTACHMENT_UPLOAD: (ATTACHMENTS,),
}


# ---------------------------------------------------------------- the company reference and the wire


@dataclass(frozen=True)
class CompanyRef:
    tenant: str
    environment: str
    company: str

    @classmethod
    def parse(cls, text: str) -> CompanyRef | None:
        match = COMPANY_REF.fullmatch(text)
        if match is None:
            return None
        return cls(match["tenant"], match["environment"], match["company"])

    def __str__(self) -> str:
        return f"{self.tenant}/{self.environment}/{self.company}"

    @property
    def root(self) -> str:
        """The API v2.0 root (facts.yaml api-base), as a path under the API base URL."""
        return f"/v2.0/{quote(self.tenant, safe='')}/{quote(self.environment, safe='')}/api/v2.0"


def decode_enum(value: str) -> str:
    """An enum value as its member name: ``_xHHHH_`` decoded (facts.yaml enum-wire-encoding: the
    wire writes ``_x0020_``, some of Microsoft's examples write ``" "``; both are read)."""
    return _ENCODED.sub(lambda match: chr(int(match[1], 16)), value)


@dataclass(frozen=True)
class ODataError:
    """The ``{"error": {"code", "message"}}`` of an answer (facts.yaml error-envelope)."""

    code: str
    message: str

    @property
    def permission(self) -> bool:
        """A missing permission set (facts.yaml missing-permission-answer [assumed])."""
        return bool(_PERMISSION_MESSAGE.search(self.message))

    def permission_object(self) -> str | None:
        """The object and permission the message quotes ("TableData 15 G/L Account Read: Base Application")."""
        match = _PERMISSION_OBJECT.search(self.message)
        return (match[1] or match[2]).strip() if match else None


def odata_error(response: httpx.Response) -> ODataError | None:
    """The OData error an answer carries; None for anything else (HTML, empty, another shape)."""
    try:
        body = json_body(response, system=NAME, what="reading an error answer")
    except AccountingSystemUnavailable:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) and not isinstance(message, str):
        return None
    return ODataError(code if isinstance(code, str) else "", message if isinstance(message, str) else "")


def _odata_text(value: str) -> str:
    """An OData string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _query(params: Mapping[str, Any]) -> str:
    """A query string with OData's ``$`` names as they are and values percent-encoded (a space as
    ``%20``, never ``+``, which an OData server may read as a plus sign)."""
    if not params:
        return ""
    return "?" + "&".join(f"{name}={quote(str(value), safe=chr(39) + '(),')}" for name, value in params.items())


def _posting_date(read: BodyReader, setup: JsonObject, key: str) -> date | None:
    """``allowPostingFrom``/``allowPostingTo``: None when blank (facts.yaml gl-setup-posting-window)."""
    text = read.text(setup, key)
    if not text or text == BLANK_DATE:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise read.malformed() from None


# ---------------------------------------------------------------- token refusals (Microsoft Entra)

# facts.yaml aadsts-7000215, aadsts-7000222, aadsts-700016, aadsts-90002, aadsts-500011 (ENTRA reference-error-codes.md)
BAD_SECRET = frozenset({7000215, 7000222})
APP_NOT_IN_TENANT = 700016
TENANT_NOT_FOUND = 90002
NO_BUSINESS_CENTRAL = 500011


def _aadsts(codes: set[int]) -> str:
    """Entra's error codes as a reason quotes them: ", AADSTS7000215, ..." (none: empty)."""
    return "".join(f", AADSTS{code}" for code in sorted(codes))


def entra_refusal(refusal: TokenRefusal, tenant: str) -> AccountingSystemError | TransientError:
    """What a refused token request means, decided on ``error_codes`` then ``error`` (facts.yaml
    token-error-body: never on the description), with what the customer's administrator must do."""
    codes = set(refusal.codes)
    if codes & BAD_SECRET:
        expired = 7000222 in codes
        return AccountingSystemError(
            f"Microsoft Entra refused the Business Central app's client secret: it is "
            f"{'expired' if expired else 'not valid'} (AADSTS{7000222 if expired else 7000215}). The customer's "
            "administrator must create a new client secret for the app (Microsoft Entra admin center: App "
            "registrations > the app > Certificates & secrets) and update the company's Business Central "
            "credentials with the secret's Value (not its Secret ID), then export again.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )
    if APP_NOT_IN_TENANT in codes:
        return GrantRevoked(
            f"Microsoft Entra does not know the Business Central app in the tenant {tenant} (AADSTS700016): the "
            "customer's administrator has not granted (or has withdrawn) admin consent for the app in that tenant, "
            "or the client id in the company's credentials is wrong. The administrator must grant admin consent "
            f"for the app's {API_ROLE} permission of Dynamics 365 Business Central (or correct the client id), "
            "then export again.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )
    if TENANT_NOT_FOUND in codes:
        return AccountingSystemError(
            f"Microsoft Entra has no tenant {tenant} (AADSTS90002): the tenant in accountingCompanyRef "
            "(<tenantId>/<environment>/<companyId>) is wrong. Correct it in the integration settings (the tenant id "
            "is on the Business Central admin center or in Microsoft Entra's Overview), then export again.",
            reason_type=FailureReasonType.INVALID_CONFIGURATION,
        )
    if NO_BUSINESS_CENTRAL in codes:
        return AccountingSystemError(
            f"The Microsoft Entra tenant {tenant} has no Dynamics 365 Business Central (AADSTS500011): the tenant "
            "in accountingCompanyRef is not the company's Business Central tenant. Correct it in the integration "
            "settings, then export again.",
            reason_type=FailureReasonType.INVALID_CONFIGURATION,
        )
    if refusal.error == "temporarily_unavailable":  # facts.yaml token-error-values: retry
        return AccountingSystemUnavailable(
            "Microsoft Entra is temporarily unavailable while getting an access token",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
        )
    if refusal.error in ("invalid_client", "unauthorized_client"):
        return AccountingSystemError(
            f"Microsoft Entra refused the Business Central app's credentials in the tenant {tenant} "
            f"({refusal.error}{_aadsts(codes)}). The customer's administrator must check the client id and "
            "secret in the company's Business Central credentials and that the app is consented in that tenant, "
            "then export again.",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
        )
    return AccountingSystemError(
        f"Microsoft Entra refused to issue a Business Central access token ({refusal.status_code}, "
        f"{refusal.error or 'an unexpected error'}{_aadsts(codes)}). Check the tenant in accountingCompanyRef "
        "and the app's credentials; if that does not help, contact support.",
        reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
    )


# ---------------------------------------------------------------- the connector


class BusinessCentralConnector:
    """``AccountingConnector`` for one Business Central company (tenant, environment, company)."""

    display_name = NAME
    where_to_fix = (
        "Business Central (Chart of Accounts, General Journals, General Ledger Setup, VAT Product Posting Groups) "
        "or the integration settings"
    )
    permission_advice: str | None = "Then export again."

    def __init__(
        self,
        api: httpx.Client,
        auth: ClientCredentialsGrant,
        config: CompanyConfiguration,
        *,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._api = api
        self._auth = auth
        self.grant: OAuthBearer | None = None  # no refresh token: nothing lapses, nothing to keep alive
        self._configured = config.accounting_company_ref or ""
        self._ref = CompanyRef.parse(self._configured)
        self._journal = config.mappings.journal
        self._today = today
        self._company_name: str | None = None
        self._setup: JsonObject | None = None
        self._setup_lock = threading.Lock()
        self._tax_groups: list[JsonObject] | None = None
        self._tax_lock = threading.Lock()

    # ------------- authentication and the company reached (checks: authentication, company_context)

    def authenticate(self) -> ConnectionProfile:
        ref = self._company_ref()
        roles = self._token_roles()
        what = "reading the company"
        response = self._get(self._company_path(ref), what=what)
        if response.status_code == 404 and odata_error(response) is not None:
            return self._company_not_found(ref, roles)
        self._raise_for(response, what=what)
        read = BodyReader(NAME, what)
        company = read.parse_object(response)
        reached = read.text(company, "id")
        if not reached:
            raise read.malformed()
        name = read.text(company, "displayName") or read.text(company, "name")
        same = reached.lower() == ref.company.lower()
        if same:
            self._company_name = name
        return ConnectionProfile(
            company_ref=self._configured if same else str(CompanyRef(ref.tenant, ref.environment, reached)),
            company_name=name,
            permissions=roles,
            facts={
                "tenant": ref.tenant,
                "environment": ref.environment,
                "companyName": read.text(company, "name"),
                "companyDisplayName": read.text(company, "displayName"),
            },
        )

    def _token_roles(self) -> frozenset[str]:
        """The app-only token's ``roles`` (read, not verified). A JWT without ``API.ReadWrite.All``
        means the admin consent is missing (facts.yaml token-roles-api-readwrite-all,
        aadsts-65001-not-for-client-credentials: Entra then issues a token without the role)."""
        claims = jwt_claims(self._auth.token().value.get_secret_value())
        if not claims:
            return frozenset()  # not a JWT we can read: the API call decides
        roles = claims.get("roles")
        granted = frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()
        if API_ROLE not in granted:
            raise AccountingSystemError(
                f"The Business Central app has no admin consent for Business "
                f"Central's {API_ROLE} application permission in the tenant {self._auth.tenant}: its access token "
                f"carries {'the roles ' + ', '.join(sorted(granted)) if granted else 'no roles'}. The customer's "
                "administrator must add the application permission Dynamics 365 Business Central > "
                f"{API_ROLE} to the app and grant admin consent (Microsoft Entra admin center: App registrations > "
                "the app > API permissions), then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        return granted

    def _company_not_found(self, ref: CompanyRef, roles: frozenset[str]) -> ConnectionProfile:
        """companies({id}) answered 404: a wrong environment (the list answers 404 too) or an
        unknown company (the list names the companies the app does reach)."""
        what = "listing the companies of the environment"
        read = BodyReader(NAME, what)
        companies = self._collection(f"{ref.root}/companies", what=what, params={"$select": "id,name,displayName"})
        if companies is None:
            raise AccountingSystemError(
                f"Business Central has no environment {ref.environment!r} in the Microsoft Entra tenant {ref.tenant} "
                "(404). Correct the environment name in accountingCompanyRef (<tenantId>/<environment>/<companyId>: "
                "the name shown in the Business Central admin center, e.g. production) in the integration settings, "
                "then export again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        reachable: dict[str, str] = {}
        for company in companies:
            company_id = read.text(company, "id")
            if company_id:
                name = read.text(company, "displayName") or read.text(company, "name") or company_id
                reachable[str(CompanyRef(ref.tenant, ref.environment, company_id))] = name
        if not reachable:
            raise AccountingSystemError(
                f"The Business Central environment {ref.environment} of the tenant {ref.tenant} has no company "
                f"{ref.company} and no other company the app may see. Correct the company id in accountingCompanyRef "
                "in the integration settings, then export again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        first = sorted(reachable)[0]
        return ConnectionProfile(
            company_ref=first,
            company_name=reachable[first],
            permissions=roles,
            facts={"tenant": ref.tenant, "environment": ref.environment, "companyFound": False},
            reachable=reachable,
        )

    # ----------------------------- permissions and capabilities (checks: permissions, capabilities)

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        """One cheap read per entity set the job needs (``$top=1``, ``$select=id``: no paging),
        all at once."""
        ref = self._company_ref()
        entity_sets = [entity_set for capability in sorted(needs) for entity_set in SETS_NEEDED.get(capability, ())]
        found = side_by_side(*(partial(self._probe, ref, entity_set) for entity_set in entity_sets), pool=read_pool())
        return [missing for missing in found if missing]

    def _probe(self, ref: CompanyRef, entity_set: EntitySet) -> str:
        """Why reading ``entity_set`` is refused to the app (a permission it lacks), or ""."""
        what = f"checking access to {entity_set.label} ({entity_set.name})"
        params: dict[str, Any] = {"$top": 1, "$select": "id"}
        if entity_set.probe_filter:
            params["$filter"] = entity_set.probe_filter
        response = self._get(f"{self._company_path(ref)}/{entity_set.name}{_query(params)}", what=what)
        refusal = self._permission_refusal(response)
        if refusal is None:
            self._raise_for(response, what=what)
            return ""
        quoted = f"; Business Central said: {refusal}" if refusal != "refused" else ""
        return (
            f"reading {entity_set.label} ({entity_set.name}) in {self._label()}{quoted}: add the "
            f"permission sets {PERMISSION_SETS} to the app on {ENTRA_APPLICATIONS}"
        )

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        if capability is Capability.ATTACHMENT_UPLOAD:
            return Support(True, "attachments on journal lines and purchase invoices (attachments)")
        window = self._posting_window()
        if not window.supported:
            return window
        if capability is Capability.JOURNAL_ENTRY:
            return self._journal_support(window)
        return self._vendor_support(window)

    def _posting_window(self) -> Support:
        """Today within the General Ledger Setup's allowed posting dates (facts.yaml
        gl-setup-posting-window; gl-setup-window-not-whole-story: User Setup and date formulas may
        narrow it further and the API does not show them)."""
        read = BodyReader(NAME, "reading the General Ledger Setup")
        setup = self._general_ledger_setup()
        start = _posting_date(read, setup, "allowPostingFrom")
        end = _posting_date(read, setup, "allowPostingTo")
        today = self._today()
        if (start is None or start <= today) and (end is None or today <= end):
            if start is None and end is None:
                return Support(True, "no posting date limits in the General Ledger Setup")
            return Support(True, f"posting allowed {_window(start, end)}")
        return Support(
            False,
            f"{self._label()} allows posting only {_window(start, end)} (Allow Posting From / Allow Posting To), "
            f"which excludes today ({today.isoformat()}), so every expense of this export would be refused; change "
            f"the dates on {GL_SETUP} in Business Central",
        )

    def _journal_support(self, window: Support) -> Support:
        if not self._journal:
            return Support(False, "no journal batch is configured (journal)")
        code = self._journal.upper()  # batch names are Code fields: upper case
        what = "looking up the journal batch"
        read = BodyReader(NAME, what)
        journals = self._collection(
            f"{self._company_path(self._company_ref())}/journals",
            what=what,
            params={"$filter": f"code eq {_odata_text(code)}"},
            required=True,
        )
        assert journals is not None
        for journal in journals:
            if (read.text(journal, "code") or "").upper() == code:
                template = read.text(journal, "templateDisplayName")
                return Support(True, f"journal batch {code} ({template or 'default template'}); {window.detail}")
        # facts.yaml journals-default-template: GET journals lists the default General template's batches.
        return Support(
            False,
            f"the journal batch {self._journal} does not exist in the default General journal template of "
            f"{self._label()}; create it on the General Journals page (Batch Name) or map another batch (journal)",
        )

    def _vendor_support(self, window: Support) -> Support:
        """Purchase invoices post through the vendor's posting group (no mapping needed). A vendor
        blocked All takes no invoice (facts.yaml vendor-blocked-semantics): named as a notice, since
        the job's vendors are not known here."""
        what = "reading the vendors"
        read = BodyReader(NAME, what)
        vendors = self._collection(
            f"{self._company_path(self._company_ref())}/vendors",
            what=what,
            # only the blocked ones (filter-on-properties; an enum compares with its member name)
            params={"$filter": "blocked eq 'All'", "$select": "number,displayName,blocked"},
            required=True,
        )
        assert vendors is not None
        blocked = []
        for vendor in vendors:
            state = decode_enum(read.text(vendor, "blocked") or " ").strip()
            if state == "All":
                blocked.append(f"{read.text(vendor, 'number')} {read.text(vendor, 'displayName') or ''}".strip())
        if not blocked:
            return Support(True, f"purchase invoices; {window.detail}")
        shown = ", ".join(blocked[:5]) + (f" and {len(blocked) - 5} more" if len(blocked) > 5 else "")
        return Support(
            True,
            f"purchase invoices; {window.detail}",
            notice=f"{len(blocked)} vendor(s) of {self._label()} are blocked (Blocked = All): {shown}; expenses "
            "booked to them are refused until Blocked is cleared on the vendor card.",
        )

    # -------------------- mapped accounts and tax codes (checks: mapped_accounts, mapped_tax_codes)

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        """Each mapped account by its number (``$filter=number eq '...'``, facts.yaml
        filter-on-properties), one read per number, all at once."""
        what = "looking up the mapped accounts"
        read = BodyReader(NAME, what)
        path = f"{self._company_path(self._company_ref())}/accounts"

        def lookup(number: str) -> LedgerEntry | None:
            matches = self._collection(
                path, what=what, params={"$filter": f"number eq {_odata_text(number)}"}, required=True
            )
            assert matches is not None
            account = next((a for a in matches if read.text(a, "number") == number), None)
            return None if account is None else _account_entry(read, number, account)

        wanted = sorted({ref for ref in refs if ref})
        return dict(
            zip(wanted, side_by_side(*(partial(lookup, number) for number in wanted), pool=read_pool()), strict=True)
        )

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        """Each mapped code among the tax groups: VAT product posting groups in a VAT company, sales
        tax groups otherwise (facts.yaml tax-groups-semantics). A company without VAT (US) maps none:
        ``vatCodes`` is optional, as for QuickBooks US."""
        wanted = sorted({code for code in codes if code})
        if not wanted:
            return {}
        read = BodyReader(NAME, "looking up the mapped tax groups")
        groups: dict[str, JsonObject] = {}
        for group in self._all_tax_groups():
            code = read.text(group, "code")
            if code:
                groups.setdefault(code.upper(), group)
        found: dict[str, LedgerEntry | None] = {}
        for code in wanted:
            match = groups.get(code.upper())
            if match is None:
                found[code] = None
                continue
            kind = decode_enum(read.text(match, "taxType") or "")
            name = read.text(match, "displayName")
            found[code] = LedgerEntry(ref=code, name=f"{name} ({kind})" if kind else name, usable=True)
        return found

    # ------------------------------------------------------------ plumbing

    def _general_ledger_setup(self) -> JsonObject:
        """``GET generalLedgerSetup``: a collection of one record (facts.yaml gl-setup-collection
        [assumed]; a single object is read too). Read once."""
        with self._setup_lock:
            if self._setup is None:
                what = "reading the General Ledger Setup"
                read = BodyReader(NAME, what)
                response = self._get(f"{self._company_path(self._company_ref())}/generalLedgerSetup", what=what)
                self._raise_for(response, what=what, entity_set=GENERAL_LEDGER_SETUP)
                body = read.parse_object(response)
                if "value" in body:
                    records = read.objects(body, "value")
                    if not records:
                        raise read.malformed()
                    body = records[0]
                self._setup = body
            return self._setup

    def _all_tax_groups(self) -> list[JsonObject]:
        with self._tax_lock:
            if self._tax_groups is None:
                groups = self._collection(
                    f"{self._company_path(self._company_ref())}/taxGroups",
                    what="looking up the mapped tax groups",
                    params={"$select": "code,displayName,taxType"},
                    required=True,
                )
                assert groups is not None
                self._tax_groups = groups
            return self._tax_groups

    def _collection(
        self, path: str, *, what: str, params: dict[str, Any], required: bool = False
    ) -> list[JsonObject] | None:
        """Every entity of a collection, following ``@odata.nextLink`` only (never ``$skip``), with
        ``Prefer: odata.maxpagesize`` (facts.yaml paging-server-driven). A 404 with an OData error
        body is None unless ``required`` (then an unexpected answer)."""
        read = BodyReader(NAME, what)
        api = str(self._api.base_url).rstrip("/")
        # facts.yaml next-link-absolute-same-base [assumed]: the link stays on the API's host and
        # version; not held to the tenant segment (a domain may come back as the tenant's GUID).
        paging = NextLink(within=f"{api}/v2.0/", params=params, max_pages=MAX_PAGES)
        headers = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
        missing = False

        def fetch(page: PageRequest) -> JsonObject:
            nonlocal missing
            if page.url is not None:
                response = self._get(page.url, what=what, headers=headers)
            else:
                response = self._get(f"{path}{_query(page.params)}", what=what, headers=headers)
            if response.status_code == 404 and not required and page.url is None and odata_error(response):
                missing = True
                return {"value": []}
            self._raise_for(response, what=what)
            return read.parse_object(response)

        entities = paging.collect(fetch, lambda body: read.objects(body, "value"), read)
        return None if missing else entities

    def _get(self, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """GET with the bearer token (see ``ClientCredentialsGrant``); 429 and 5xx (502/503 with
        ``Retry-After``, 504) are transient with the answer's ``Retry-After`` (facts.yaml
        retry-after-502-503, retry-after-429 [assumed], timeouts)."""
        return request_or_raise(self._api, "GET", path, system=NAME, what=what, auth=self._auth, **kwargs)

    def _permission_refusal(self, response: httpx.Response) -> str | None:
        """Why a read was refused for a missing permission set ("refused" when the answer does not
        say), or None when it was not."""
        error = odata_error(response)
        if response.status_code == 403 or (
            response.status_code in (400, 403) and error is not None and error.permission
        ):
            quoted = error.permission_object() if error is not None else None
            return quoted or "refused"
        return None

    def _raise_for(self, response: httpx.Response, *, what: str, entity_set: EntitySet | None = None) -> None:
        """Every answer that is not a success, as the most precise failure."""
        if response.is_success:
            return
        status = response.status_code
        error = odata_error(response)
        if status == 401:
            # facts.yaml unregistered-app-answer [assumed], http-401-meaning, entra-application-page.
            raise AccountingSystemError(
                f"Business Central refused the app for {self._label()} (401"
                + (f" {error.code}" if error is not None and error.code else "")
                + f") although Microsoft Entra issued its token: the app is not set up in that environment. The "
                f"customer's administrator must add the app on {ENTRA_APPLICATIONS} (Client ID: the app's, State "
                f"Enabled, permission sets {PERMISSION_SETS}) and grant consent there, "
                "then export again.",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE,
            )
        permission = self._permission_refusal(response)
        if permission is not None:
            target = f" ({entity_set.name})" if entity_set else ""
            quoted = f"; Business Central said: {permission}" if permission != "refused" else ""
            raise AccountingSystemError(
                f"Business Central refused {what}{target} for {self._label()} ({status}{quoted}). The customer's "
                f"administrator must give the app the permission sets "
                f"{PERMISSION_SETS} on {ENTRA_APPLICATIONS}, then export again.",
                reason_type=FailureReasonType.AUTHORIZATION_FAILURE,
            )
        if error is not None and error.code.startswith("Internal_"):
            # facts.yaml error-code-families: Internal_* is the server's trouble; retry.
            raise AccountingSystemUnavailable(
                f"Business Central answered {status} ({error.code}) while {what}",
                reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
            )
        raise unexpected_answer(NAME, response, what)

    def _company_ref(self) -> CompanyRef:
        if self._ref is None:
            raise AccountingSystemError(
                f"The Business Central company for this Pleo company is configured as {self._configured!r}, which is "
                f"not {COMPANY_REF_MEANING}. Correct accountingCompanyRef in the integration settings, then export "
                "again.",
                reason_type=FailureReasonType.INVALID_CONFIGURATION,
            )
        return self._ref

    @staticmethod
    def _company_path(ref: CompanyRef) -> str:
        return f"{ref.root}/companies({ref.company})"

    def _label(self) -> str:
        ref = self._ref
        where = f"environment {ref.environment}" if ref else self._configured
        if self._company_name:
            return f"the Business Central company {self._company_name} ({where})"
        return f"the Business Central company {ref.company if ref else self._configured} ({where})"


def _account_entry(read: BodyReader, number: str, account: JsonObject) -> LedgerEntry:
    """Postable: not blocked, account type Posting (facts.yaml account-postable, account-type-enum) and
    direct posting on (account-direct-posting)."""
    name = read.text(account, "displayName")
    kind = decode_enum(read.text(account, "accountType") or "")
    problem = ""
    if read.flag(account, "blocked", default=False):
        problem = f"is blocked in Business Central; clear Blocked on {CHART}"
    elif kind != "Posting":
        problem = (
            f"is a {kind or 'non-posting'} account, which takes no entries; map a Posting account ({CHART}: "
            "Account Type)"
        )
    elif not read.flag(account, "directPosting", default=True):
        problem = f"does not allow direct posting; turn on Direct Posting on {CHART}"
    return LedgerEntry(ref=number, name=name, usable=not problem, problem=problem)


def _window(start: date | None, end: date | None) -> str:
    if start is not None and end is not None:
        return f"from {start.isoformat()} to {end.isoformat()}"
    if start is not None:
        return f"from {start.isoformat()}"
    if end is not None:
        return f"until {end.isoformat()}"
    return "on any date"


def tenant_of(config: CompanyConfiguration) -> str:
    """The Entra tenant of the company (the first part of accountingCompanyRef)."""
    ref = CompanyRef.parse(config.accounting_company_ref or "")
    return ref.tenant if ref is not None else "invalid-tenant"


BUSINESSCENTRAL = ClientCredentialsSystem(
    system_id="businesscentral",
    display_name=NAME,
    env_prefix="BUSINESSCENTRAL_",
    api_base_url="https://api.businesscentral.dynamics.com",  # facts.yaml api-base
    token_service=TokenService("auth", "https://login.microsoftonline.com", TOKEN_PATH),  # facts.yaml token-endpoint
    scope=SCOPE,
    tenant_of=tenant_of,
    refused=entra_refusal,
)
BusinessCentralSettings = BUSINESSCENTRAL.settings

SPEC = BUSINESSCENTRAL.spec(
    BusinessCentralConnector,
    required_mappings=(
        ("journal", "general journal batch (journal)"),
        ("expense_account", "default expense account (expenseAccount)"),
        ("contra_account", "contra account for card spend (contraAccount)"),
    ),
    vendor_mappings=(),  # purchase invoices post through the vendor's posting group
    company_ref=CompanyRefRule(COMPANY_REF, COMPANY_REF_MEANING),
)
