"""Simulator of Microsoft Dynamics 365 Business Central online: the Microsoft Entra token
endpoint (client credentials) and the Business Central API v2.0 read side, both on one server.

Point ``BUSINESSCENTRAL_AUTH_BASE_URL`` and ``BUSINESSCENTRAL_API_BASE_URL`` at the same
``base_url``: ``POST /{tenant}/oauth2/v2.0/token`` (login.microsoftonline.com) and
``GET /v2.0/{tenant}/{environment}/api/v2.0/companies({id})/{entitySet}``
(api.businesscentral.dynamics.com; the form without ``{tenant}`` is served too, the token's
tenant then applies).

From Microsoft's description (``tests/contract/vendors/businesscentral``: ``api_v2.json``,
``facts.yaml``, ``SOURCE.md``): the token request (form-encoded ``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``scope=https://api.businesscentral.dynamics.com/.default``)
and answer (``token_type``, ``expires_in: 3599``, ``ext_expires_in``, a JWT ``access_token``
whose payload carries ``roles: ["API.ReadWrite.All"]`` once admin consent was granted, and no
``roles`` claim otherwise); error answers ``{error, error_description: "AADSTSnnnnn: ...",
error_codes, timestamp, trace_id, correlation_id, error_uri}`` for 7000215 (wrong secret),
7000222 (expired secret), 700016 (application not in the tenant), 90002 (tenant not found),
500011 (no Business Central in the tenant); the entities ``companies``, ``accounts``,
``journals``, ``taxGroups``, ``vendors``, ``purchaseInvoices``, ``attachments`` and
``generalLedgerSetup`` with every property of the AL API page in page order, never ``null``
(blank dates ``0001-01-01``, blank GUIDs all zeros), enum values in their wire form
(``_x0020_``, ``Begin_x002D_Total``, ``Sales_x0020_Tax``) and ``@odata.etag`` on each entity;
collections ``{"@odata.context", "value"}`` plus ``@odata.nextLink`` (with an opaque
``$skiptoken``) when the page was cut at the server's page size, 20,000 at most, smaller when
the request says ``Prefer: odata.maxpagesize=<n>`` (answered with ``Preference-Applied``);
``journals`` lists only the default template's batches (GENERAL) unless the request filters on
``templateDisplayName``; ``taxGroups`` are VAT product posting groups (taxType ``VAT``) in a VAT
company and sales tax groups (``Sales_x0020_Tax``) otherwise; ``attachments`` refuse a read
without a ``parentId`` ("You must specify a parentId in the request body."); the OData error
body ``{"error": {"code", "message"}}`` with ``  CorrelationId:  <guid>.`` appended; 6,000
requests per 5-minute sliding window per tenant and app (429 beyond); 503 with ``Retry-After``
(upgrades, maintenance, a request queued too long); 504 for requests the gateway gave up on.

ASSUMED (facts.yaml ``kind: assumed``): the HTTP status of each AADSTS code (7000215 and
7000222: 401 ``invalid_client``; 700016: 400 ``unauthorized_client``; 90002: 400
``invalid_request``; 500011: 400 ``invalid_resource``); a token without API.ReadWrite.All and
an app not set up (or not Enabled) on the "Microsoft Entra applications" page are answered 401
``Authentication_InvalidCredentials``; an unknown environment and an unknown company 404; a
missing permission set 403 ``Internal_ServerError`` "Sorry, the current permissions prevented
the action. (TableData <id> <name> Read: Base Application)" (``permission_status=400`` gives
the 2021 form "You do not have the following permissions on Page APIV2 - <name>: Execute.");
``generalLedgerSetup`` without a key answers a one-element collection; ``@odata.nextLink`` is
absolute under the root the request used.

SIMULATOR CHOICES (not Microsoft's): ``$skip`` is answered 400
``BadRequest_MethodNotImplemented`` (the shared design: a client must page by
``@odata.nextLink``); ``$expand`` and the write side (POST/PATCH/DELETE, bound actions) are not
served (405 ``BadRequest_MethodNotAllowed``); ``$filter`` takes ``eq``, ``ne``, ``gt``, ``ge``,
``lt``, ``le``, ``in (...)``, ``and``, ``or``, ``not``, parentheses,
``contains``/``startswith``/``endswith``, with string, number, boolean, GUID and date literals
(an enum compares by its decoded member name, so ``'All'`` and ``' '`` work as ``_x0020_``
does); string comparisons are exact; a query syntax error or an unknown property is 400
``BadRequest_NotFound`` (Microsoft's code for "Bad Request - Error in query syntax"); the bodies
of 404 for an environment or a company (``BadRequest_NotFound``), of 429
(``Application_TooManyRequests``) and of 503 (``Internal_ServiceUnavailable``), 504 empty; the
platform's ``companies`` carry no ``@odata.etag`` (as in Microsoft's example); the access token
is JWT-shaped with a random signature (nothing can verify it) and is accepted only if this
server issued it; the concurrency limit (5 at once, 95 queued) is not modelled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from .base import SimRequest, SimResponse, SimulatorServer
from .registry import AccountingSeed, AccountingSimulator

__all__ = [
    "API_RESOURCE",
    "ROLE",
    "SCOPE",
    "App",
    "BusinessCentralSimulator",
    "Company",
    "EntraApplication",
    "Environment",
    "Seat",
    "Tenant",
    "Unavailable",
    "account",
    "attachment",
    "decode_enum",
    "default_accounts",
    "default_journals",
    "default_vendors",
    "encode_enum",
    "journal",
    "purchase_invoice",
    "tax_group",
    "vendor",
]

API_RESOURCE = "https://api.businesscentral.dynamics.com"
SCOPE = f"{API_RESOURCE}/.default"
ROLE = "API.ReadWrite.All"
TOKEN_TTL = 3599
MAX_PAGE_SIZE = 20000
RATE_WINDOW_SECONDS = 300.0
RATE_LIMIT = 6000
BLANK_DATE = "0001-01-01"
BLANK_DATETIME = "0001-01-01T00:00:00Z"
BLANK_GUID = "00000000-0000-0000-0000-000000000000"
DEFAULT_TEMPLATE = "GENERAL"
SYSTEM_VERSION = "29.0.41214.43110"
CHALLENGE = (
    'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'resource_id="{API_RESOURCE}"'
)
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TOKEN_PATH = re.compile(r"/[^/]+/oauth2/v2\.0/token")
_API_PATH = re.compile(
    r"/v2\.0/(?:(?P<tenant>[^/]+)/)?(?P<env>[^/]+)/api/v2\.0/companies"
    r"(?:\((?P<company>[^)]*)\)(?:/(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?)?)?/?"
)

# AL table behind each entity set (for the permission error's "TableData <id> <name>"),
# the entity type name (for "$metadata#..." and filter errors), and the API page's caption.
ENTITY_SETS: dict[str, tuple[int, str, str, str]] = {
    "accounts": (15, "G/L Account", "account", "APIV2 - Accounts"),
    "journals": (232, "Gen. Journal Batch", "journal", "APIV2 - Journals"),
    "taxGroups": (324, "VAT Product Posting Group", "taxGroup", "APIV2 - Tax Groups"),
    "vendors": (23, "Vendor", "vendor", "APIV2 - Vendors"),
    "purchaseInvoices": (38, "Purchase Header", "purchaseInvoice", "APIV2 - Purchase Invoices"),
    "attachments": (133, "Incoming Document Attachment", "attachment", "APIV2 - Attachments"),
    "generalLedgerSetup": (98, "General Ledger Setup", "generalLedgerSetup", "APIV2 - G/L Setup"),
}
SALES_TAX_TABLE = (321, "Tax Group")
ENUM_PROPERTIES: dict[str, frozenset[str]] = {
    "accounts": frozenset({"category", "accountType"}),
    "vendors": frozenset({"blocked"}),
    "taxGroups": frozenset({"taxType"}),
    "purchaseInvoices": frozenset({"status"}),
    "attachments": frozenset({"parentType"}),
}


# ---------------------------------------------------------------- wire helpers


def encode_enum(name: str) -> str:
    """An AL enum member name as Business Central writes it: every character other than
    letters, digits and ``_`` as ``_xHHHH_`` (``" "`` -> ``_x0020_``, ``Begin-Total`` ->
    ``Begin_x002D_Total``)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"_x{ord(ch):04X}_" for ch in name)


def decode_enum(value: str) -> str:
    """The member name of a wire value (``_x0020_`` -> ``" "``); plain names pass unchanged."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), value)


def _etag(entity: Mapping[str, Any]) -> str:
    """A weak ETag shaped like Business Central's (``W/"JzE5OzEy...Jw=="``), from the content."""
    digest = int.from_bytes(hashlib.sha256(json.dumps(entity, sort_keys=True).encode()).digest()[:8], "big")
    inner = f"'{len(str(digest))};{digest};00;'"
    return f'W/"{base64.b64encode(inner.encode()).decode()}"'


def _guid() -> str:
    return str(uuid.uuid4())


def _correlated(message: str) -> str:
    return f"{message}  CorrelationId:  {uuid.uuid4()}."


def _odata_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> SimResponse:
    return SimResponse(status, {"error": {"code": code, "message": _correlated(message)}}, headers=headers)


# ---------------------------------------------------------------- entities (wire form, page order)


def account(
    number: str,
    display_name: str,
    *,
    category: str = "Expense",
    account_type: str = "Posting",
    blocked: bool = False,
    direct_posting: bool | None = None,
    sub_category: str = "",
    account_id: str | None = None,
    modified: str = "2026-01-05T09:12:44.103Z",
) -> dict[str, Any]:
    """One ``account`` (AL page 30014 "APIV2 - Accounts"). ``category`` and ``account_type``
    are member names (``" "``, ``Cost of Goods Sold``; ``Begin-Total``); Direct Posting follows
    the account type unless given (Posting turns it on, every other type off)."""
    return {
        "id": account_id or _guid(),
        "number": number,
        "displayName": display_name,
        "category": encode_enum(category),
        "subCategory": sub_category,
        "blocked": blocked,
        "accountType": encode_enum(account_type),
        "directPosting": account_type == "Posting" if direct_posting is None else direct_posting,
        "netChange": 0,
        "consolidationTranslationMethod": "Average Rate (Manual)",
        "consolidationDebitAccount": "",
        "consolidationCreditAccount": "",
        "excludeFromConsolidation": False,
        "lastModifiedDateTime": modified,
    }


def default_accounts() -> list[dict[str, Any]]:
    """A small W1-style chart: 2910 bank; 5410 vendors (Direct Posting off, as a payables
    account is); 5420 Pleo clearing; 8000 heading; 8100..8195 a Begin-/End-Total range with
    8110 office supplies (postable), 8120 software (blocked), 8130 travel (Direct Posting off)."""
    return [
        account("2910", "Checking account", category="Assets", sub_category="Cash"),
        account("5410", "Vendors, Domestic", category="Liabilities", direct_posting=False),
        account("5420", "Pleo clearing", category="Liabilities", sub_category="Current Liabilities"),
        account("8000", "OPERATING EXPENSES", category=" ", account_type="Heading"),
        account("8100", "Other Operating Expenses", category=" ", account_type="Begin-Total"),
        account("8110", "Office Supplies", sub_category="Office Supplies"),
        account("8120", "Software", blocked=True),
        account("8130", "Travel", direct_posting=False, sub_category="Travel"),
        account("8195", "Total Other Operating Exp.", category=" ", account_type="End-Total"),
    ]


def journal(
    code: str,
    display_name: str,
    *,
    template: str = DEFAULT_TEMPLATE,
    balancing_account: Mapping[str, Any] | None = None,
    journal_id: str | None = None,
) -> dict[str, Any]:
    """One ``journal`` (AL page "APIV2 - Journals"): a batch of ``template``."""
    return {
        "id": journal_id or _guid(),
        "code": code,
        "displayName": display_name,
        "templateDisplayName": template,
        "lastModifiedDateTime": "2026-01-05T09:20:01.313Z",
        "balancingAccountId": balancing_account["id"] if balancing_account else BLANK_GUID,
        "balancingAccountNumber": balancing_account["number"] if balancing_account else "",
    }


def default_journals() -> list[dict[str, Any]]:
    """GENERAL batches DEFAULT and PLEO; PAYMENT batch BANK (listed only when filtered on
    ``templateDisplayName``)."""
    return [
        journal("DEFAULT", "Default Journal Batch"),
        journal("PLEO", "Pleo expenses"),
        journal("BANK", "Bank payments", template="PAYMENT"),
    ]


def tax_group(code: str, display_name: str, *, vat: bool = True, group_id: str | None = None) -> dict[str, Any]:
    """One ``taxGroup`` (AL page "APIV2 - Tax Groups"): a VAT product posting group, or a
    sales tax group (``vat=False``)."""
    return {
        "id": group_id or _guid(),
        "code": code,
        "displayName": display_name,
        "taxType": encode_enum("VAT" if vat else "Sales Tax"),
        "lastModifiedDateTime": "2026-01-05T09:00:26Z",
    }


def default_tax_groups(*, vat: bool = True) -> list[dict[str, Any]]:
    """VAT product posting groups STANDARD, REDUCED, ZERO; or (no VAT: a US company) the sales
    tax groups FURNITURE, MATERIALS, SUPPLIES."""
    if vat:
        return [
            tax_group("STANDARD", "Standard VAT (25%)"),
            tax_group("REDUCED", "Reduced VAT (12%)"),
            tax_group("ZERO", "No VAT"),
        ]
    return [
        tax_group("FURNITURE", "Taxable Olympic Furniture", vat=False),
        tax_group("MATERIALS", "Taxable Olympic Materials", vat=False),
        tax_group("SUPPLIES", "Taxable Olympic Supplies", vat=False),
    ]


def vendor(
    number: str,
    display_name: str,
    *,
    blocked: str = " ",
    country: str = "DK",
    currency: str = "",
    vendor_id: str | None = None,
) -> dict[str, Any]:
    """One ``vendor`` (AL page "APIV2 - Vendors"); ``blocked`` is the member name (``" "``,
    ``Payment``, ``All``)."""
    return {
        "id": vendor_id or _guid(),
        "number": number,
        "displayName": display_name,
        "addressLine1": "Vesterbrogade 1",
        "addressLine2": "",
        "city": "København V",
        "state": "",
        "country": country,
        "postalCode": "1620",
        "phoneNumber": "",
        "email": "",
        "website": "",
        "taxRegistrationNumber": "",
        "currencyId": BLANK_GUID,
        "currencyCode": currency,
        "irs1099Code": "",
        "paymentTermsId": BLANK_GUID,
        "paymentMethodId": BLANK_GUID,
        "taxLiable": False,
        "blocked": encode_enum(blocked),
        "balance": 0,
        "lastModifiedDateTime": "2026-01-05T10:38:46.53Z",
    }


def default_vendors() -> list[dict[str, Any]]:
    """V0001 not blocked, V0002 blocked for payments, V0003 blocked for everything."""
    return [
        vendor("V0001", "Office Supplies A/S"),
        vendor("V0002", "Travel Partner ApS", blocked="Payment"),
        vendor("V0003", "Closed Supplier ApS", blocked="All"),
    ]


def purchase_invoice(number: str, supplier: Mapping[str, Any], *, status: str = "Draft") -> dict[str, Any]:
    """One ``purchaseInvoice`` (AL page "APIV2 - Purchase Invoices") of ``supplier``, no lines."""
    return {
        "id": _guid(),
        "number": number,
        "postingDate": BLANK_DATE,
        "invoiceDate": "2026-01-06",
        "dueDate": "2026-02-06",
        "vendorInvoiceNumber": "",
        "vendorId": supplier["id"],
        "vendorNumber": supplier["number"],
        "vendorName": supplier["displayName"],
        "payToName": supplier["displayName"],
        "payToContact": "",
        "payToVendorId": supplier["id"],
        "payToVendorNumber": supplier["number"],
        "shipToName": "",
        "shipToContact": "",
        "buyFromAddressLine1": supplier["addressLine1"],
        "buyFromAddressLine2": "",
        "buyFromCity": supplier["city"],
        "buyFromCountry": supplier["country"],
        "buyFromState": "",
        "buyFromPostCode": supplier["postalCode"],
        "shipToAddressLine1": "",
        "shipToAddressLine2": "",
        "shipToCity": "",
        "shipToCountry": "",
        "shipToState": "",
        "shipToPostCode": "",
        "payToAddressLine1": supplier["addressLine1"],
        "payToAddressLine2": "",
        "payToCity": supplier["city"],
        "payToCountry": supplier["country"],
        "payToState": "",
        "payToPostCode": supplier["postalCode"],
        "shortcutDimension1Code": "",
        "shortcutDimension2Code": "",
        "currencyId": BLANK_GUID,
        "currencyCode": "",
        "orderId": BLANK_GUID,
        "orderNumber": "",
        "purchaser": "",
        "pricesIncludeTax": False,
        "discountAmount": 0,
        "discountAppliedBeforeTax": True,
        "totalAmountExcludingTax": 0,
        "totalTaxAmount": 0,
        "totalAmountIncludingTax": 0,
        "status": encode_enum(status),
        "lastModifiedDateTime": "2026-01-06T08:26:53.793Z",
    }


def attachment(parent: Mapping[str, Any], file_name: str, *, parent_type: str, size: int = 0) -> dict[str, Any]:
    """One ``attachment`` (AL page 30039 "APIV2 - Attachments") of ``parent``. The stream
    property ``attachmentContent`` is not a JSON value: the answer links it."""
    return {
        "id": _guid(),
        "parentId": parent["id"],
        "fileName": file_name,
        "byteSize": size,
        "attachmentContent": None,  # stream: written as @odata.mediaReadLink / mediaEditLink
        "lastModifiedDateTime": "2026-01-06T08:30:53Z",
        "parentType": encode_enum(parent_type),
    }


def gl_setup(
    *, allow_from: str = BLANK_DATE, allow_to: str = BLANK_DATE, currency: str = "DKK", symbol: str = "kr"
) -> dict[str, Any]:
    """The ``generalLedgerSetup`` record (AL page "APIV2 - G/L Setup"); blank dates mean no limit."""
    return {
        "id": _guid(),
        "allowPostingFrom": allow_from,
        "allowPostingTo": allow_to,
        "additionalReportingCurrency": "",
        "localCurrencyCode": currency,
        "localCurrencySymbol": symbol,
        "lastModifiedDateTime": "2026-01-05T09:45:12Z",
        "allowQueryFromConsolidation": False,
        "shortcutDimension1Code": "DEPARTMENT",
        "shortcutDimension2Code": "PROJECT",
        "shortcutDimension3Code": "",
        "shortcutDimension4Code": "",
        "shortcutDimension5Code": "",
        "shortcutDimension6Code": "",
        "shortcutDimension7Code": "",
        "shortcutDimension8Code": "",
    }


# ---------------------------------------------------------------- the world


@dataclass
class App:
    """An app registration as the customer's tenant knows it (its service principal there):
    its client secrets (value -> expiry, ``None``: never) and the application permissions
    admin-consented for Business Central."""

    client_id: str
    secrets: dict[str, float | None] = field(default_factory=dict)
    roles: tuple[str, ...] = (ROLE,)


@dataclass
class Unavailable:
    """The environment answers ``status`` instead (429, 503, 504...), ``times`` more times
    (``None``: until cleared), with ``Retry-After: retry_after`` when given."""

    status: int
    retry_after: str | None = None
    times: int | None = None


@dataclass
class EntraApplication:
    """A row of Business Central's "Microsoft Entra applications" page."""

    client_id: str
    state: str = "Enabled"
    permission_sets: tuple[str, ...] = ("D365 BASIC", "D365 ACC. PAYABLE")


@dataclass
class Company:
    """One Business Central company. Entities are held in wire form; mutate freely."""

    id: str
    name: str
    display_name: str
    vat: bool = True
    accounts: list[dict[str, Any]] = field(default_factory=default_accounts)
    journals: list[dict[str, Any]] = field(default_factory=default_journals)
    tax_groups: list[dict[str, Any]] | None = None
    """``None``: the defaults for ``vat``."""
    vendors: list[dict[str, Any]] = field(default_factory=default_vendors)
    purchase_invoices: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    gl_setup: dict[str, Any] = field(default_factory=gl_setup)
    denied: set[str] = field(default_factory=set)
    """Entity sets the app's permission sets do not cover (a permission error on read)."""
    permission_status: int = 403
    max_page_size: int = MAX_PAGE_SIZE
    created: str = "2025-11-04T16:55:47.367Z"
    timestamp: int = 50516

    def __post_init__(self) -> None:
        if self.tax_groups is None:
            self.tax_groups = default_tax_groups(vat=self.vat)
        if not self.purchase_invoices and self.vendors:
            invoice = purchase_invoice("108001", self.vendors[0])
            self.purchase_invoices = [invoice]
            if not self.attachments:
                self.attachments = [attachment(invoice, "receipt.pdf", parent_type="Purchase Invoice", size=48213)]

    def entity(self) -> dict[str, Any]:
        """The company as ``companies`` lists it (platform entity, docs resource page)."""
        return {
            "id": self.id,
            "systemVersion": SYSTEM_VERSION,
            "timestamp": self.timestamp,
            "name": self.name,
            "displayName": self.display_name,
            "businessProfileId": "",
            "systemCreatedAt": self.created,
            "systemCreatedBy": BLANK_GUID,
            "systemModifiedAt": self.created,
            "systemModifiedBy": BLANK_GUID,
        }

    def entity_set(self, name: str) -> list[dict[str, Any]]:
        return {
            "accounts": self.accounts,
            "journals": self.journals,
            "taxGroups": self.tax_groups or [],
            "vendors": self.vendors,
            "purchaseInvoices": self.purchase_invoices,
            "attachments": self.attachments,
            "generalLedgerSetup": [self.gl_setup],
        }[name]


@dataclass
class Environment:
    """A Business Central environment (production or a sandbox) of one tenant."""

    name: str
    companies: dict[str, Company] = field(default_factory=dict)
    applications: dict[str, EntraApplication] = field(default_factory=dict)
    unavailable: Unavailable | None = None


@dataclass
class Tenant:
    """A Microsoft Entra tenant (a customer's directory)."""

    tenant_id: str
    domain: str
    display_name: str
    business_central: bool = True
    """False: Business Central's service principal is not in the tenant (AADSTS500011)."""
    apps: dict[str, App] = field(default_factory=dict)
    environments: dict[str, Environment] = field(default_factory=dict)


@dataclass(frozen=True)
class Seat:
    """What ``seed_company`` made: where the company is and the credentials to reach it."""

    tenant: Tenant
    environment: Environment
    company: Company
    client_id: str
    client_secret: str

    @property
    def company_ref(self) -> str:
        """``accountingCompanyRef`` as configured: ``<tenantId>/<environment>/<companyId>``."""
        return f"{self.tenant.tenant_id}/{self.environment.name}/{self.company.id}"


@dataclass(frozen=True)
class _Token:
    tenant_id: str
    client_id: str
    expires_at: float
    roles: tuple[str, ...]


class _TokenPaths(frozenset[str]):
    """Every tenant's token path (``/{tenant}/oauth2/v2.0/token``): the only bodies that carry
    a client secret by protocol."""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and _TOKEN_PATH.fullmatch(path) is not None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: Mapping[str, Any]) -> str:
    """A JWT-shaped access token; the signature is random bytes (nothing can verify it)."""
    header = {"typ": "JWT", "alg": "RS256", "x5t": "SIMULATED", "kid": "SIMULATED"}
    return ".".join(
        (
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(dict(claims), separators=(",", ":")).encode()),
            _b64url(secrets.token_bytes(32)),
        )
    )


def _bearer(request: SimRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class BusinessCentralSimulator(SimulatorServer):
    """Microsoft Entra's token endpoint and the Business Central API v2.0 reads.

    Seed with ``add_tenant``, ``register_app``, ``add_environment``, ``add_company`` and
    ``add_entra_application``, or all at once with ``seed_company``. Every API call's token is
    checked (issued here, not expired, for this tenant, carrying API.ReadWrite.All), then the
    environment, the app's row on the Entra applications page, the company and the entity
    set's permission.
    """

    credential_paths = _TokenPaths()
    credential_headers = frozenset({"authorization"})

    def __init__(
        self, *, latency: float = 0.0, clock: Callable[[], float] = time.time, enforce_rate_limits: bool = True
    ) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        self.enforce_rate_limits = enforce_rate_limits
        self._offset = 0.0
        self._tenants: dict[str, Tenant] = {}
        self._tokens: dict[str, _Token] = {}
        self._windows: dict[tuple[str, str], list[float]] = {}
        self.token_refusal_status: int | None = None
        """Answer every token refusal with this status instead (the statuses are assumed: see the docstring)."""
        self.route("POST", _TOKEN_PATH.pattern, self._token)
        self.route("GET", r"/v2\.0/.*", self._api)
        for method in ("POST", "PATCH", "PUT", "DELETE"):
            self.route(method, r"/v2\.0/.*", self._read_only)

    # ------------------------------------------------------------ clock and seeding

    def now(self) -> float:
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self._offset += seconds

    def add_tenant(
        self,
        tenant_id: str | None = None,
        *,
        domain: str | None = None,
        display_name: str = "Contoso",
        business_central: bool = True,
    ) -> Tenant:
        tenant_id = tenant_id or _guid()
        tenant = Tenant(
            tenant_id=tenant_id.lower(),
            domain=(domain or f"t{tenant_id[:8]}.onmicrosoft.com").lower(),
            display_name=display_name,
            business_central=business_central,
        )
        with self.lock:
            self._tenants[tenant.tenant_id] = tenant
        return tenant

    def register_app(
        self,
        tenant: Tenant,
        client_id: str,
        client_secret: str,
        *,
        roles: Iterable[str] = (ROLE,),
        secret_expires_at: float | None = None,
    ) -> App:
        """Our app consented in ``tenant`` (its service principal there) with one client
        secret; ``roles=()``: admin consent for API.ReadWrite.All was not granted."""
        with self.lock:
            app = tenant.apps.setdefault(client_id, App(client_id))
            app.secrets[client_secret] = secret_expires_at
            app.roles = tuple(roles)
        return app

    def remove_app(self, tenant: Tenant, client_id: str) -> None:
        """The administrator deletes our app's service principal from the tenant (700016 next)."""
        with self.lock:
            tenant.apps.pop(client_id, None)

    def add_environment(self, tenant: Tenant, name: str = "production") -> Environment:
        with self.lock:
            return tenant.environments.setdefault(name, Environment(name))

    def add_company(
        self, environment: Environment, *, name: str, company_id: str | None = None, **fields: Any
    ) -> Company:
        company = Company(
            id=(company_id or _guid()).lower(), name=name, display_name=fields.pop("display_name", name), **fields
        )
        with self.lock:
            environment.companies[company.id] = company
        return company

    def add_entra_application(
        self,
        environment: Environment,
        client_id: str,
        *,
        state: str = "Enabled",
        permission_sets: Iterable[str] = ("D365 BASIC", "D365 ACC. PAYABLE"),
    ) -> EntraApplication:
        """Our app on the environment's "Microsoft Entra applications" page."""
        card = EntraApplication(client_id, state, tuple(permission_sets))
        with self.lock:
            environment.applications[client_id] = card
        return card

    def seed_company(
        self,
        *,
        name: str = "CRONUS Danmark A/S",
        client_id: str | None = None,
        client_secret: str | None = None,
        environment: str = "production",
        roles: Iterable[str] = (ROLE,),
        secret_expired: bool = False,
        registered: bool = True,
        app_state: str = "Enabled",
        business_central: bool = True,
        domain: str | None = None,
        **company: Any,
    ) -> Seat:
        """A tenant, our app consented there, an environment with our app Enabled on its Entra
        applications page (unless ``registered=False``), and one company (``company``: fields
        of ``Company``: ``vat``, ``accounts``, ``denied``, ``gl_setup``, ``max_page_size``...)."""
        tenant = self.add_tenant(domain=domain, display_name=name, business_central=business_central)
        client_id = client_id or _guid()
        client_secret = client_secret or f"bc~{secrets.token_urlsafe(30)}"
        expires = self.now() - 86400 if secret_expired else None
        self.register_app(tenant, client_id, client_secret, roles=roles, secret_expires_at=expires)
        env = self.add_environment(tenant, environment)
        if registered:
            self.add_entra_application(env, client_id, state=app_state)
        seeded = self.add_company(env, name=name, **company)
        return Seat(tenant, env, seeded, client_id, client_secret)

    def make_unavailable(
        self, environment: Environment, status: int, *, retry_after: str | None = None, times: int | None = None
    ) -> Unavailable:
        """Every API call to ``environment`` answers ``status`` (``times`` times, ``None``: until
        ``environment.unavailable = None``)."""
        outage = Unavailable(status, retry_after, times)
        with self.lock:
            environment.unavailable = outage
        return outage

    def issued_secrets(self) -> list[str]:
        """Every access token issued (for the leak checks)."""
        with self.lock:
            return list(self._tokens)

    @property
    def token_calls(self) -> int:
        return len([r for r in self.requests if r.method == "POST" and _TOKEN_PATH.fullmatch(r.path)])

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self._tenants.clear()
            self._tokens.clear()
            self._windows.clear()
            self._offset = 0.0
            self.token_refusal_status = None

    # ------------------------------------------------------------ answers of every kind

    def unknown_route(self, request: SimRequest, *, path_known: bool) -> SimResponse:
        if path_known:
            return self._read_only(request)
        return _odata_error(
            404, "BadRequest_NotFound", f"No HTTP resource was found that matches the request URI '{request.path}'."
        )

    def _read_only(self, request: SimRequest) -> SimResponse:
        target = request.path.rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0]
        return _odata_error(
            405,
            "BadRequest_MethodNotAllowed",
            f"'{request.method}' requests for '{target}' are not allowed by this simulator (it serves reads only).",
        )

    # ------------------------------------------------------------ Microsoft Entra token endpoint

    def _token(self, request: SimRequest) -> SimResponse:
        tenant_ref = unquote(request.path.split("/")[1]).lower()
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic: Entra takes it too
            try:
                basic_id, _, basic_secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
                client_id, secret = unquote(basic_id), unquote(basic_secret)
            except (ValueError, UnicodeDecodeError):
                pass
        with self.lock:
            tenant = self._tenant(tenant_ref)
            if tenant is None:
                return self._aadsts(
                    400,
                    "invalid_request",
                    90002,
                    f"Tenant '{tenant_ref}' not found. Check to make sure you have the correct tenant ID and are "
                    "signing into the correct cloud. Check with your subscription administrator, this may happen "
                    "if there are no active subscriptions for the tenant.",
                )
            if form.get("grant_type") != "client_credentials":
                return self._aadsts(
                    400,
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type '" + form.get("grant_type", "") + "'.",
                )
            if not client_id:
                return self._aadsts(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'client_id'.",
                )
            app = tenant.apps.get(client_id)
            if app is None:
                return self._aadsts(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant.display_name}'. This can happen if the application has not been installed by the "
                    "administrator of the tenant or consented to by any user in the tenant. You may have sent your "
                    "authentication request to the wrong tenant.",
                )
            if not secret:
                return self._aadsts(
                    401,
                    "invalid_client",
                    7000216,
                    "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                    "grant type.",
                )
            if secret not in app.secrets:
                return self._aadsts(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                    f"value, not the client secret ID, for a secret added to app '{client_id}'.",
                )
            expires_at = app.secrets[secret]
            if expires_at is not None and expires_at <= self.now():
                return self._aadsts(
                    401,
                    "invalid_client",
                    7000222,
                    f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to "
                    "create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
                    "credentials for added security: https://aka.ms/certCreds.",
                )
            scope = form.get("scope", "")
            if scope.rstrip("/").lower() not in (SCOPE.lower(), f"{API_RESOURCE.lower()}//.default"):
                return self._aadsts(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {scope or '(none)'} is not valid. Client credential flows must have "
                    "a scope value with /.default suffixed to the resource identifier (application ID URI).",
                )
            if not tenant.business_central:
                return self._aadsts(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {API_RESOURCE} was not found in the tenant named "
                    f"{tenant.display_name}. This can happen if the application has not been installed by the "
                    "administrator of the tenant or consented to by any user in the tenant. You might have sent your "
                    "authentication request to the wrong tenant.",
                )
            now = self.now()
            claims: dict[str, Any] = {
                "aud": API_RESOURCE,
                "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
                "iat": int(now),
                "nbf": int(now),
                "exp": int(now) + TOKEN_TTL,
                "aio": secrets.token_urlsafe(24),
                "app_displayname": "Pleo export preflight",
                "appid": client_id,
                "appidacr": "1",
                "idp": f"https://sts.windows.net/{tenant.tenant_id}/",
                "idtyp": "app",
                "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.tenant_id + client_id)),
                "rh": secrets.token_urlsafe(16),
                "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.tenant_id + client_id)),
                "tid": tenant.tenant_id,
                "uti": secrets.token_urlsafe(16),
                "ver": "1.0",
            }
            if app.roles:
                claims["roles"] = list(app.roles)
            token = _jwt(claims)
            self._tokens[token] = _Token(tenant.tenant_id, client_id, now + TOKEN_TTL, tuple(app.roles))
        body = {"token_type": "Bearer", "expires_in": TOKEN_TTL, "ext_expires_in": TOKEN_TTL, "access_token": token}
        return SimResponse(200, body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _aadsts(self, status: int, error: str, code: int, text: str) -> SimResponse:
        trace, correlation = _guid(), _guid()
        stamp = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return SimResponse(
            self.token_refusal_status or status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
                f"Timestamp: {stamp}",
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"https://login.microsoftonline.com/error?code={code}",
            },
            headers={"Cache-Control": "no-store, no-cache"},
        )

    def _tenant(self, ref: str) -> Tenant | None:
        ref = ref.lower()
        found = self._tenants.get(ref)
        return found or next((t for t in self._tenants.values() if t.domain == ref), None)

    # ------------------------------------------------------------ Business Central API v2.0

    def _api(self, request: SimRequest) -> SimResponse:
        match = _API_PATH.fullmatch(unquote(request.path))
        if match is None:
            return self.unknown_route(request, path_known=False)
        token = _bearer(request)
        unauthenticated = {"WWW-Authenticate": CHALLENGE}
        with self.lock:
            issued = self._tokens.get(token) if token else None
            if issued is None or issued.expires_at <= self.now():
                return _odata_error(
                    401,
                    "Authentication_InvalidCredentials",
                    "The server has rejected the client credentials.",
                    unauthenticated,
                )
            tenant_ref = match["tenant"] or issued.tenant_id
            tenant = self._tenant(tenant_ref)
            if tenant is None or tenant.tenant_id != issued.tenant_id:
                return _odata_error(
                    401,
                    "Authentication_InvalidCredentials",
                    "The server has rejected the client credentials.",
                    unauthenticated,
                )
            environment = tenant.environments.get(match["env"])
            if environment is None:
                return _odata_error(
                    404,
                    "BadRequest_NotFound",
                    f"The environment '{match['env']}' was not found in the tenant '{tenant.tenant_id}'.",
                )
            if ROLE not in issued.roles:
                return _odata_error(
                    401,
                    "Authentication_InvalidCredentials",
                    "Web service call failed because user could not be authenticated or authorized.",
                    unauthenticated,
                )
            card = environment.applications.get(issued.client_id)
            if card is None or card.state != "Enabled":
                return _odata_error(
                    401,
                    "Authentication_InvalidCredentials",
                    "The server has rejected the client credentials.",
                    unauthenticated,
                )
            limited = self._limited(tenant.tenant_id, issued.client_id)
            outage = environment.unavailable
            if outage is not None and outage.times is not None:
                outage.times -= 1
                if outage.times <= 0:
                    environment.unavailable = None
        if limited:
            return _odata_error(
                429,
                "Application_TooManyRequests",
                "Too many requests reached (6000 per 5 minutes). Retry after a while.",
                {"Retry-After": "30"},
            )
        if outage is not None:
            return self._outage(outage)
        if match["company"] is None:
            return self._companies(request, environment, match)
        with self.lock:
            company = environment.companies.get(match["company"].strip("'").lower())
        if company is None:
            return _odata_error(
                404,
                "BadRequest_NotFound",
                f"The company with the ID '{match['company']}' does not exist. Identification fields and values: "
                f"Id='{match['company']}'",
            )
        if match["set"] is None:
            return self._single(
                request, company.entity(), self._root(request, match) + "/$metadata#companies/$entity", etag=False
            )
        return self._entity_set(request, match, company)

    def _limited(self, tenant_id: str, client_id: str) -> bool:
        """6,000 requests per 5-minute sliding window per tenant and app (lock held)."""
        if not self.enforce_rate_limits:
            return False
        now = self.now()
        window = [t for t in self._windows.get((tenant_id, client_id), []) if now - t < RATE_WINDOW_SECONDS]
        self._windows[(tenant_id, client_id)] = window
        if len(window) >= RATE_LIMIT:
            return True
        window.append(now)
        return False

    @staticmethod
    def _outage(outage: Unavailable) -> SimResponse:
        headers = {"Retry-After": outage.retry_after} if outage.retry_after is not None else {}
        if outage.status == 429:
            return _odata_error(429, "Application_TooManyRequests", "Too Many Requests. Retry after a while.", headers)
        if outage.status == 503:
            return _odata_error(
                503,
                "Internal_ServiceUnavailable",
                "Service Temporarily Unavailable: the environment is being updated or is under maintenance.",
                headers,
            )
        if outage.status == 504:
            return SimResponse(504, None, headers=headers)
        return _odata_error(outage.status, "Internal_ServerError", "Something went wrong.", headers)

    @staticmethod
    def _root(request: SimRequest, match: re.Match[str]) -> str:
        """The API root the request used, absolute (``http://host/v2.0/{tenant}/{env}/api/v2.0``)."""
        host = request.headers.get("Host", "localhost")
        tenant = f"/{match['tenant']}" if match["tenant"] else ""
        return f"http://{host}/v2.0{tenant}/{match['env']}/api/v2.0"

    def _companies(self, request: SimRequest, environment: Environment, match: re.Match[str]) -> SimResponse:
        with self.lock:
            items = [company.entity() for company in environment.companies.values()]
        return self._collection(request, match, items, "companies", "company", context="companies", etag=False)

    def _single(self, request: SimRequest, entity: dict[str, Any], context: str, *, etag: bool = True) -> SimResponse:
        select = request.param("$select")
        body: dict[str, Any] = {"@odata.context": context}
        shaped = self._shape(entity, etag=etag)
        if select:
            wanted = {name.strip() for name in select.split(",")}
            shaped = {k: v for k, v in shaped.items() if k == "@odata.etag" or k.split("@")[0] in wanted}
        body.update(shaped)
        return SimResponse(200, body, headers={"OData-Version": "4.0"})

    @staticmethod
    def _shape(entity: Mapping[str, Any], *, etag: bool = True) -> dict[str, Any]:
        """An entity as it travels: ``@odata.etag`` first, stream properties as media links."""
        shaped: dict[str, Any] = {"@odata.etag": _etag(entity)} if etag else {}
        for key, value in entity.items():
            if key == "attachmentContent":
                continue  # the links are added by the caller that knows the URL
            shaped[key] = value
        return shaped

    def _entity_set(self, request: SimRequest, match: re.Match[str], company: Company) -> SimResponse:
        name = match["set"]
        if name not in ENTITY_SETS:
            return _odata_error(
                404,
                "BadRequest_NotFound",
                f"The request URI is not valid. Since the segment 'companies' refers to a collection, this must be "
                f"the last segment in the request URI or it must be followed by an function or action that can be "
                f"bound to it otherwise all intermediate segments must refer to a single resource. ('{name}')",
            )
        table, table_name, entity_type, page = ENTITY_SETS[name]
        if name == "taxGroups" and not company.vat:
            table, table_name = SALES_TAX_TABLE
        with self.lock:
            denied, status = name in company.denied, company.permission_status
            items = [dict(item) for item in company.entity_set(name)]
            max_page = company.max_page_size
        if denied:
            if status == 400:
                return _odata_error(
                    400, "Internal_ServerError", f"You do not have the following permissions on Page {page}: Execute."
                )
            return _odata_error(
                status,
                "Internal_ServerError",
                f"Sorry, the current permissions prevented the action. (TableData {table} {table_name} Read: "
                "Base Application)",
            )
        root = self._root(request, match)
        company_segment = f"companies({company.id})"
        if match["key"] is not None:
            key = match["key"].strip("'").lower()
            found = next((item for item in items if str(item["id"]).lower() == key), None)
            if found is None:
                return _odata_error(
                    404,
                    "BadRequest_NotFound",
                    f"The {entity_type} does not exist. Identification fields and values: Id='{match['key']}'",
                )
            answer = self._single(request, found, f"{root}/$metadata#{company_segment}/{name}/$entity")
            if name == "attachments" and isinstance(answer.json, dict):
                self._media_links(answer.json, f"{root}/{company_segment}/attachments({found['id']})")
            return answer
        return self._collection(
            request,
            match,
            items,
            name,
            entity_type,
            context=f"{company_segment}/{name}",
            max_page=max_page,
            links=f"{root}/{company_segment}/attachments" if name == "attachments" else None,
        )

    @staticmethod
    def _media_links(entity: dict[str, Any], url: str) -> None:
        entity["attachmentContent@odata.mediaEditLink"] = f"{url}/attachmentContent"
        entity["attachmentContent@odata.mediaReadLink"] = f"{url}/attachmentContent"

    def _collection(
        self,
        request: SimRequest,
        match: re.Match[str],
        items: list[dict[str, Any]],
        name: str,
        entity_type: str,
        *,
        context: str,
        etag: bool = True,
        max_page: int = MAX_PAGE_SIZE,
        links: str | None = None,
    ) -> SimResponse:
        options = {key: values[0] for key, values in request.query.items() if key.startswith("$")}
        for option in options:
            if option == "$skip":
                return _odata_error(
                    400,
                    "BadRequest_MethodNotImplemented",
                    "$skip is not supported: Business Central pages server-side; follow @odata.nextLink "
                    "(ask for smaller pages with the header Prefer: odata.maxpagesize=<n>).",
                )
            if option not in ("$filter", "$select", "$top", "$orderby", "$count", "$skiptoken", "$schemaversion"):
                return _odata_error(
                    400, "BadRequest_InvalidRequestUrl", f"The query parameter '{option}' is not supported."
                )
        properties = list(items[0]) if items else _PROPERTY_NAMES.get(name, [])
        filter_text = options.get("$filter")
        try:
            expression = _FilterParser(filter_text).parse() if filter_text else None
        except _FilterError as error:
            return _odata_error(
                400, "BadRequest_NotFound", f"Bad Request - Error in query syntax: {error} in '{filter_text}'."
            )
        referenced = _properties_of(expression) if expression is not None else set()
        unknown = sorted(referenced - set(properties) - {"attachmentContent"})
        if unknown:
            return _odata_error(
                400,
                "BadRequest_NotFound",
                f"Could not find a property named '{unknown[0]}' on type 'Microsoft.NAV.{entity_type}'.",
            )
        if name == "journals" and "templateDisplayName" not in referenced:
            items = [item for item in items if item["templateDisplayName"] == DEFAULT_TEMPLATE]
        if name == "attachments" and not _filters_on(expression, "parentId"):
            return _odata_error(400, "Application_DialogException", "You must specify a parentId in the request body.")
        enums = ENUM_PROPERTIES.get(name, frozenset())
        if expression is not None:
            try:
                items = [item for item in items if _evaluate(expression, item, enums)]
            except _FilterError as error:
                return _odata_error(
                    400, "BadRequest_NotFound", f"Bad Request - Error in query syntax: {error} in '{filter_text}'."
                )
        order = options.get("$orderby")
        if order:
            for clause in reversed([part.strip() for part in order.split(",") if part.strip()]):
                prop, _, direction = clause.partition(" ")
                if prop not in properties:
                    return _odata_error(
                        400,
                        "BadRequest_NotFound",
                        f"Could not find a property named '{prop}' on type 'Microsoft.NAV.{entity_type}'.",
                    )
                items.sort(key=_sort_key(prop), reverse=direction.strip().lower() == "desc")
        select = options.get("$select")
        wanted: set[str] | None = None
        if select:
            wanted = {part.strip() for part in select.split(",") if part.strip()}
            unknown = sorted(wanted - set(properties))
            if unknown:
                return _odata_error(
                    400,
                    "BadRequest_NotFound",
                    f"Could not find a property named '{unknown[0]}' on type 'Microsoft.NAV.{entity_type}'.",
                )
        total = len(items)
        start, end = 0, total
        top = options.get("$top")
        if top is not None:
            if not top.isdigit():
                return _odata_error(
                    400, "BadRequest_InvalidRequestUrl", f"Invalid value '{top}' for $top query option found."
                )
            end = min(end, int(top))
        skiptoken = options.get("$skiptoken")
        if skiptoken is not None:
            decoded = _read_skiptoken(skiptoken)
            if decoded is None:
                return _odata_error(400, "BadRequest_InvalidRequestUrl", "The skip token value is not valid.")
            start, end = decoded[0], min(decoded[1], total)
        preferred = _max_page_size(request.headers.get("Prefer", ""))
        size = min(max_page, MAX_PAGE_SIZE, preferred or MAX_PAGE_SIZE)
        page = items[start : min(end, start + size)]
        values: list[dict[str, Any]] = []
        for item in page:
            shaped = self._shape(item, etag=etag)
            if wanted is not None:
                shaped = {k: v for k, v in shaped.items() if k == "@odata.etag" or k in wanted}
            if links is not None and (wanted is None or "attachmentContent" in wanted):
                self._media_links(shaped, f"{links}({item['id']})")
            values.append(shaped)
        body: dict[str, Any] = {"@odata.context": f"{self._root(request, match)}/$metadata#{context}"}
        if options.get("$count", "").lower() == "true":
            body["@odata.count"] = total if top is None else min(total, end)
        body["value"] = values
        if start + size < end:
            kept = [(k, v) for k, vs in request.query.items() for v in vs if k not in ("$skiptoken", "$top")]
            kept.append(("$skiptoken", _write_skiptoken(start + size, end)))
            base = self._root(request, match) + unquote(request.path).split("/api/v2.0", 1)[1]
            query = urlencode(kept, quote_via=quote, safe="$(),'")
            body["@odata.nextLink"] = f"{base}?{query}"
        headers = {"OData-Version": "4.0"}
        if preferred is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={size}"
        return SimResponse(200, body, headers=headers)


def _sort_key(prop: str) -> Callable[[dict[str, Any]], tuple[str, Any]]:
    def key(item: dict[str, Any]) -> tuple[str, Any]:
        return (type(item[prop]).__name__, item[prop])

    return key


def _max_page_size(prefer: str) -> int | None:
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def _write_skiptoken(start: int, end: int) -> str:
    return _b64url(json.dumps({"s": start, "e": end, "n": secrets.token_hex(4)}).encode())


def _read_skiptoken(token: str) -> tuple[int, int] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["s"]), int(data["e"])
    except (ValueError, KeyError, TypeError):
        return None


_PROPERTY_NAMES: dict[str, list[str]] = {
    "accounts": list(account("0", "")),
    "journals": list(journal("X", "")),
    "taxGroups": list(tax_group("X", "")),
    "vendors": list(vendor("X", "")),
    "purchaseInvoices": list(purchase_invoice("X", vendor("X", ""))),
    "attachments": list(attachment({"id": BLANK_GUID}, "x", parent_type="Journal")),
    "generalLedgerSetup": list(gl_setup()),
    "companies": list(Company(BLANK_GUID, "", "", purchase_invoices=[{}]).entity()),
}


# ---------------------------------------------------------------- $filter


class _FilterError(ValueError):
    pass


_FILTER_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+Z?)?)|(?P<number>-?\d+(?:\.\d+)?)|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_/]*))"
)
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})


@dataclass(frozen=True)
class _Literal:
    value: Any
    kind: str  # string, guid, date, number, bool, null


class _FilterParser:
    """``$filter`` grammar: or / and / not, parentheses, ``prop op literal``, ``prop in (...)``,
    ``contains|startswith|endswith(prop, 'text')``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            found = _FILTER_TOKEN.match(text, position)
            if found is None or found.end() == position:
                raise _FilterError(f"syntax error at position {position}")
            kind = found.lastgroup or ""
            self.tokens.append((kind, found.group(kind), found.start(kind)))
            position = found.end()
        self.index = 0

    def parse(self) -> tuple[Any, ...]:
        node = self._or()
        if self.index != len(self.tokens):
            raise _FilterError(f"syntax error at position {self.tokens[self.index][2]}")
        return node

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self._peek()
        if token is None or (value is not None and token[1].lower() != value):
            where = token[2] if token else len(self.text)
            raise _FilterError(f"syntax error at position {where}" + (f": '{value}' expected" if value else ""))
        self.index += 1
        return token

    def _word(self, *words: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "word" and token[1].lower() in words

    def _or(self) -> tuple[Any, ...]:
        node = self._and()
        while self._word("or"):
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> tuple[Any, ...]:
        node = self._unary()
        while self._word("and"):
            self._take()
            node = ("and", node, self._unary())
        return node

    def _unary(self) -> tuple[Any, ...]:
        if self._word("not"):
            self._take()
            return ("not", self._unary())
        token = self._peek()
        if token is not None and token[1] == "(":
            self._take("(")
            node = self._or()
            self._take(")")
            return node
        return self._comparison()

    def _comparison(self) -> tuple[Any, ...]:
        kind, value, where = self._take()
        if kind != "word":
            raise _FilterError(f"a property name expected at position {where}")
        if value.lower() in _FUNCTIONS:
            self._take("(")
            prop = self._take()
            if prop[0] != "word":
                raise _FilterError(f"a property name expected at position {prop[2]}")
            self._take(",")
            literal = self._literal()
            self._take(")")
            return ("call", value.lower(), prop[1], literal)
        if self._word("in"):
            self._take()
            self._take("(")
            literals = [self._literal()]
            while self._peek() is not None and self._peek()[1] == ",":  # type: ignore[index]
                self._take(",")
                literals.append(self._literal())
            self._take(")")
            return ("in", value, literals)
        if not self._word(*_COMPARISONS):
            token = self._peek()
            raise _FilterError(f"an operator expected at position {token[2] if token else len(self.text)}")
        operator = self._take()[1].lower()
        return ("cmp", operator, value, self._literal())

    def _literal(self) -> _Literal:
        kind, value, where = self._take()
        if kind == "string":
            return _Literal(value[1:-1].replace("''", "'"), "string")
        if kind == "guid":
            return _Literal(value.lower(), "guid")
        if kind == "date":
            return _Literal(value, "date")
        if kind == "number":
            return _Literal(float(value) if "." in value else int(value), "number")
        if kind == "word" and value.lower() in ("true", "false"):
            return _Literal(value.lower() == "true", "bool")
        if kind == "word" and value.lower() == "null":
            return _Literal(None, "null")
        raise _FilterError(f"a literal expected at position {where}")


def _properties_of(node: tuple[Any, ...]) -> set[str]:
    if node[0] in ("or", "and"):
        return _properties_of(node[1]) | _properties_of(node[2])
    if node[0] == "not":
        return _properties_of(node[1])
    if node[0] == "call":
        return {node[2]}
    if node[0] == "in":
        return {node[1]}
    return {node[2]}


def _filters_on(node: tuple[Any, ...] | None, prop: str) -> bool:
    """Whether ``node`` pins ``prop`` to values (``eq`` or ``in``, on every ``or`` branch)."""
    if node is None:
        return False
    if node[0] == "and":
        return _filters_on(node[1], prop) or _filters_on(node[2], prop)
    if node[0] == "or":
        return _filters_on(node[1], prop) and _filters_on(node[2], prop)
    if node[0] == "in":
        return bool(node[1] == prop)
    return bool(node[0] == "cmp" and node[1] == "eq" and node[2] == prop)


def _comparable(value: Any, literal: _Literal, enum: bool) -> tuple[Any, Any]:
    if literal.kind == "null":
        return value, None
    if isinstance(value, bool) or literal.kind == "bool":
        if not (isinstance(value, bool) and literal.kind == "bool"):
            raise _FilterError("a boolean property compares with true or false only")
        return value, literal.value
    if isinstance(value, (int, float)):
        if literal.kind != "number":
            raise _FilterError(f"the literal {literal.value!r} does not match a number")
        return value, literal.value
    if literal.kind == "number":
        raise _FilterError(f"the number {literal.value} does not match a text property")
    text = str(value)
    if enum:
        return decode_enum(text), decode_enum(str(literal.value))
    if literal.kind == "guid":
        return text.lower(), literal.value
    return text, str(literal.value)


def _evaluate(node: tuple[Any, ...], item: Mapping[str, Any], enums: frozenset[str]) -> bool:
    kind = node[0]
    if kind == "or":
        return _evaluate(node[1], item, enums) or _evaluate(node[2], item, enums)
    if kind == "and":
        return _evaluate(node[1], item, enums) and _evaluate(node[2], item, enums)
    if kind == "not":
        return not _evaluate(node[1], item, enums)
    if kind == "in":
        prop = node[1]
        return any(_compare("eq", item[prop], literal, prop in enums) for literal in node[2])
    if kind == "call":
        _, function, prop, literal = node
        left, right = _comparable(item[prop], literal, prop in enums)
        if not isinstance(left, str) or not isinstance(right, str):
            raise _FilterError(f"{function} takes a text property and a text literal")
        return {"contains": right in left, "startswith": left.startswith(right), "endswith": left.endswith(right)}[
            function
        ]
    _, operator, prop, literal = node
    return _compare(operator, item[prop], literal, prop in enums)


def _compare(operator: str, value: Any, literal: _Literal, enum: bool) -> bool:
    left, right = _comparable(value, literal, enum)
    if right is None:
        return (left is None) == (operator == "eq")
    if operator == "eq":
        return bool(left == right)
    if operator == "ne":
        return bool(left != right)
    if operator == "gt":
        return bool(left > right)
    if operator == "ge":
        return bool(left >= right)
    if operator == "lt":
        return bool(left < right)
    return bool(left <= right)


# ---------------------------------------------------------------- the sandbox's view

CLIENT_ID = "pleo-preflight-local"


def _seed(
    sandbox: Any,
    simulator: BusinessCentralSimulator,
    slug: str,
    *,
    company_id: str,
    wrong_secret: bool = False,
    secret_expired: bool = False,
    app_not_found: bool = False,
    tenant_not_found: bool = False,
    no_business_central: bool = False,
    no_roles: bool = False,
    unregistered_app: bool = False,
    app_disabled: bool = False,
    wrong_environment: bool = False,
    unknown_company: bool = False,
    unavailable: tuple[int, str | None] | None = None,
    no_permission: Iterable[str] = (),
    **company: Any,
) -> AccountingSeed:
    """A Business Central company with our app set up (its client id and secret in the
    company's credentials secret); the traits break one thing each:

    - ``wrong_secret`` (AADSTS7000215), ``secret_expired`` (7000222), ``app_not_found`` (our app
      is not in the tenant: 700016), ``tenant_not_found`` (the ref names no tenant: 90002),
      ``no_business_central`` (500011), ``no_roles`` (no admin consent: a token without
      API.ReadWrite.All), ``unregistered_app`` / ``app_disabled`` (the Entra applications page),
      ``wrong_environment`` / ``unknown_company`` (404s), ``unavailable`` ((status,
      retry-after) on every API call), ``no_permission`` (entity sets the app's permission sets
      do not cover);
    - ``company``: ``Company`` fields (``denied={"journals"}``, ``vat=False``, ``gl_setup=...``,
      ``accounts=...``, ``max_page_size=...``).
    """
    if no_permission:
        company["denied"] = {*company.get("denied", ()), *no_permission}
    seat = simulator.seed_company(
        name=f"{slug.replace('-', ' ').title()} A/S",
        client_id=CLIENT_ID,
        roles=() if no_roles else (ROLE,),
        secret_expired=secret_expired,
        registered=not unregistered_app,
        app_state="Disabled" if app_disabled else "Enabled",
        business_central=not no_business_central,
        **company,
    )
    if app_not_found:
        simulator.remove_app(seat.tenant, seat.client_id)
    if unavailable is not None:
        simulator.make_unavailable(seat.environment, unavailable[0], retry_after=unavailable[1])
    tenant = str(uuid.uuid4()) if tenant_not_found else seat.tenant.tenant_id
    environment = "sandbox-missing" if wrong_environment else seat.environment.name
    company_ref = str(uuid.uuid4()) if unknown_company else seat.company.id
    secret = f"bc~wrong-{secrets.token_urlsafe(24)}" if wrong_secret else seat.client_secret
    secret_id = f"export-preflight/businesscentral/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
    sandbox.aws.put_secret(secret_id, {"clientId": seat.client_id, "clientSecret": secret})
    return AccountingSeed(
        company_ref=f"{tenant}/{environment}/{company_ref}",
        secret_id=secret_id,
        mappings=default_mappings(vat=seat.company.vat),
        secrets={"client secret": secret},
        handle=seat,
    )


def default_mappings(*, vat: bool = True) -> dict[str, Any]:
    """A complete, valid mapping for a seeded company: journal batch PLEO, expense 8110, Pleo
    clearing 5420, VAT product posting group STANDARD (none in a company without VAT)."""
    mappings: dict[str, Any] = {"journal": "PLEO", "expenseAccount": "8110", "contraAccount": "5420"}
    if vat:
        mappings["vatCodes"] = ["STANDARD"]
    return mappings


SIMULATOR = AccountingSimulator(
    system="businesscentral",
    create=lambda latency: BusinessCentralSimulator(latency=latency),
    settings=lambda server: {"api_base_url": server.base_url, "auth_base_url": server.base_url},
    seed=_seed,
)
