"""The conformance table: one ``ConnectorUnderTest`` per registered connector.

A new connector joins the suite with ONE entry in ``CONNECTORS_UNDER_TEST`` (its seed hook
next to it); ``test_table_covers_every_registered_connector`` fails until it does.
"""

from __future__ import annotations

import uuid

from export_preflight.connectors import CONNECTORS
from export_preflight.models import Capability
from sandbox.simulators.base import SimulatorServer
from sandbox.simulators.businesscentral import BusinessCentralSimulator
from sandbox.simulators.economic import EconomicSimulator
from sandbox.simulators.fortnox import ALL_SCOPES, FortnoxSimulator
from sandbox.simulators.quickbooks import ACCOUNTING_SCOPE, QuickBooksSimulator
from sandbox.simulators.xero import XeroSimulator

from .conformance import ConnectorUnderTest, Ledger, Seeded, Traits

# ------------------------------------------------------------------ Visma e-conomic

ECONOMIC_AGREEMENT = 100001
ECONOMIC_OTHER_AGREEMENT = 100002
ECONOMIC_SECRET = "export-preflight/economic/conformance"


def seed_economic(server: SimulatorServer, traits: Traits) -> Seeded:
    """An agreement with the simulator's Danish defaults (5820 postable, 9999 barred, VAT I25)
    plus a barred VAT code I12; journals 1 (any entry), 2 (supplierInvoice only), 3
    (financeVoucher only)."""
    assert isinstance(server, EconomicSimulator)
    app_token, grant_token = f"app-{uuid.uuid4().hex}", f"grant-{uuid.uuid4().hex}"
    agreement = server.add_agreement(
        app_secret_token=app_token,
        agreement_grant_token=grant_token,
        agreement_number=ECONOMIC_AGREEMENT,
        company_name="Conformance ApS",
        # Sales may read /self but not post: the role journal entries need is missing.
        roles=("SuperUser",) if traits.permissions == "granted" else ("Sales",),
    )
    agreement.vat_accounts["I12"] = {
        "vatCode": "I12",
        "name": "Indgående moms 12%",
        "ratePercentage": 12.0,
        "barred": True,
        "vatType": {"vatTypeNumber": 2, "name": "Indgående moms (køb)"},
        "account": {"accountNumber": 7700},
    }
    agreement.revoked = traits.credentials == "revoked"
    configured = ECONOMIC_AGREEMENT
    if traits.company == "other":  # another agreement exists; our tokens reach only ours
        server.add_agreement(
            app_secret_token=app_token,
            agreement_grant_token=f"grant-{uuid.uuid4().hex}",
            agreement_number=ECONOMIC_OTHER_AGREEMENT,
            company_name="Other ApS",
        )
        configured = ECONOMIC_OTHER_AGREEMENT
    stored_grant = f"grant-wrong-{uuid.uuid4().hex}" if traits.credentials == "rejected" else grant_token
    return Seeded(
        configuration={
            "accountingCompanyRef": str(configured),
            "accountingCredentialsSecretId": ECONOMIC_SECRET,
            "vendorBookkeepingEnabled": True,
            "exportReceipts": True,
            "mappings": {
                "journal": 2 if traits.unsupported is Capability.JOURNAL_ENTRY else 1,
                "vendorJournal": 3 if traits.unsupported is Capability.VENDOR_BOOKKEEPING else 2,
                "expenseAccount": 5820,
                "contraAccount": 6800,
                "vendorPayablesAccount": 7000,
                "vatCodes": ["I25"],
            },
        },
        secrets={ECONOMIC_SECRET: {"appSecretToken": app_token, "agreementGrantToken": stored_grant}},
        settings={"api_base_url": server.base_url},
    )


ECONOMIC = ConnectorUnderTest(
    spec=CONNECTORS["economic"],
    simulator=EconomicSimulator,
    seed=seed_economic,
    first_call=("GET", r"/self"),
    ledger=Ledger(
        active_account="5820",
        unusable_account="9999",
        unknown_account="4242",
        active_tax_code="I25",
        inactive_tax_code="I12",
        unknown_tax_code="X99",
    ),
    not_applicable={
        "capability_not_supported[attachment_upload]": "every e-conomic voucher takes attachments",
    },
)

# ------------------------------------------------------------------ Xero

XERO_CLIENT_ID = "pleo-preflight-conformance"
XERO_CLIENT_SECRET_ID = "export-preflight/xero/client"
XERO_SECRET = "export-preflight/xero/conformance"
XERO_SCOPES = (
    "openid offline_access accounting.settings accounting.manualjournals accounting.transactions "
    "accounting.contacts accounting.attachments"
)
XERO_SCOPES_WITHOUT_JOURNALS = "openid offline_access accounting.settings accounting.contacts accounting.attachments"


def seed_xero(server: SimulatorServer, traits: Traits) -> Seeded:
    """Our app (as ``sandbox.world`` seeds it), an organisation with the simulator's UK
    defaults (429 active, 499 ARCHIVED, INPUT2 active, TAX001 DELETED) plus 615 Pleo
    Clearing, a second organisation, and a grant over one of them."""
    assert isinstance(server, XeroSimulator)
    client_secret = f"xero-client-secret-{uuid.uuid4().hex}"
    server.add_app(XERO_CLIENT_ID, client_secret)
    bills = "NOT-ALLOWED" if traits.unsupported is Capability.VENDOR_BOOKKEEPING else "ALLOWED"
    organisation = server.add_organisation(
        name="Conformance Ltd", actions={"CreateApprovedBill": bills, "CreateDraftBill": bills}
    )
    organisation.accounts.append(
        {"AccountID": str(uuid.uuid4()), "Code": "615", "Name": "Pleo Clearing", "Status": "ACTIVE", "Type": "CURRLIAB"}
    )
    other = server.add_organisation(name="Conformance Holding Ltd")
    grant = server.grant(
        client_id=XERO_CLIENT_ID,
        tenant_ids=[organisation.tenant_id if traits.company == "configured" else other.tenant_id],
        scopes=XERO_SCOPES if traits.permissions == "granted" else XERO_SCOPES_WITHOUT_JOURNALS,
    )
    tokens = {
        "accessToken": grant.access_token,
        "refreshToken": grant.refresh_token,
        "expiresAt": grant.expires_at,
        "scope": grant.scope,
    }
    if traits.credentials == "rejected":  # tokens Xero never issued (another environment's, say)
        tokens = {**tokens, "accessToken": f"not-a-token-{uuid.uuid4().hex}", "refreshToken": uuid.uuid4().hex}
    if traits.credentials == "revoked":
        server.revoke_grant(grant)
    return Seeded(
        configuration={
            "accountingCompanyRef": organisation.tenant_id,
            "accountingCredentialsSecretId": XERO_SECRET,
            "vendorBookkeepingEnabled": True,
            "exportReceipts": True,
            "mappings": {"expenseAccount": "429", "contraAccount": "615", "vatCodes": ["INPUT2"]},
        },
        secrets={
            XERO_SECRET: tokens,
            XERO_CLIENT_SECRET_ID: {"clientId": XERO_CLIENT_ID, "clientSecret": client_secret},
        },
        settings={
            "api_base_url": server.base_url,
            "identity_base_url": server.base_url,
            "client_credentials_secret_id": XERO_CLIENT_SECRET_ID,
        },
    )


XERO = ConnectorUnderTest(
    spec=CONNECTORS["xero"],
    simulator=XeroSimulator,
    seed=seed_xero,
    first_call=("GET", r"(?i)/api\.xro/2\.0/Organisation"),
    ledger=Ledger(
        active_account="429",
        unusable_account="499",
        unknown_account="999",
        active_tax_code="INPUT2",
        inactive_tax_code="TAX001",
        unknown_tax_code="NOSUCHTAX",
    ),
    token_endpoint=r"(?i)/connect/token",
    not_applicable={
        "capability_not_supported[journal_entry]": "every Xero organisation takes manual journals; only the "
        "scope can be missing (see permissions_missing)",
        "capability_not_supported[attachment_upload]": "every Xero organisation takes attachments; only the "
        "accounting.attachments scope can be missing",
    },
)

# ------------------------------------------------------------------ Fortnox

FORTNOX_CLIENT_ID = "pleo-preflight-conformance"
FORTNOX_CLIENT_SECRET_ID = "export-preflight/fortnox/client"
FORTNOX_SECRET = "export-preflight/fortnox/conformance"


def seed_fortnox(server: SimulatorServer, traits: Traits) -> Seeded:
    """Our app, a company with the simulator's BAS defaults (5410 active, 5420 inactive, VAT
    code I on active 2641, IVEU only on inactive 2645), voucher series A and L, preferred
    supplier debt account 2440; a second company; an activation for one of them."""
    assert isinstance(server, FortnoxSimulator)
    client_secret = f"fortnox-client-secret-{uuid.uuid4().hex}"
    server.add_app(FORTNOX_CLIENT_ID, client_secret)
    predefined = {"SUPDEBT": 0 if traits.unsupported is Capability.VENDOR_BOOKKEEPING else 2440}
    company = server.add_company(organisation_number="556677-8899", name="Conformance AB", predefined=predefined)
    other = server.add_company(organisation_number="559988-7766", name="Conformance Holding AB")
    scopes = [s for s in ALL_SCOPES if traits.permissions == "granted" or s != "bookkeeping"]
    grant = server.grant(
        client_id=FORTNOX_CLIENT_ID, company=company if traits.company == "configured" else other, scopes=scopes
    )
    tokens = {
        "accessToken": grant.access_token,
        "refreshToken": grant.refresh_token,
        "expiresAt": grant.expires_at,
        "scope": grant.scope,
    }
    if traits.credentials == "rejected":  # tokens Fortnox never issued
        tokens = {**tokens, "accessToken": f"not-a-token-{uuid.uuid4().hex}", "refreshToken": str(uuid.uuid4())}
    if traits.credentials == "revoked":
        server.revoke(grant)
    return Seeded(
        configuration={
            "accountingCompanyRef": "556677-8899",
            "accountingCredentialsSecretId": FORTNOX_SECRET,
            "vendorBookkeepingEnabled": True,
            "exportReceipts": True,
            "mappings": {
                "journal": "Z" if traits.unsupported is Capability.JOURNAL_ENTRY else "A",
                "expenseAccount": "5410",
                "contraAccount": "2890",
                "vatCodes": ["I"],
            },
        },
        secrets={
            FORTNOX_SECRET: tokens,
            FORTNOX_CLIENT_SECRET_ID: {"clientId": FORTNOX_CLIENT_ID, "clientSecret": client_secret},
        },
        settings={
            "api_base_url": server.base_url,
            "auth_base_url": server.base_url,
            "client_credentials_secret_id": FORTNOX_CLIENT_SECRET_ID,
        },
    )


FORTNOX = ConnectorUnderTest(
    spec=CONNECTORS["fortnox"],
    simulator=FortnoxSimulator,
    seed=seed_fortnox,
    first_call=("GET", r"/3/companyinformation"),
    ledger=Ledger(
        active_account="5410",
        unusable_account="5420",
        unknown_account="5999",
        active_tax_code="I",
        inactive_tax_code="IVEU",
        unknown_tax_code="ZZ",
    ),
    token_endpoint=r"/oauth-v1/token",
    not_applicable={
        "capability_not_supported[attachment_upload]": "any Fortnox company takes inbox/archive uploads and file "
        "connections; only the scopes, licences or the user's rights can be missing (see permissions)",
    },
)

# ------------------------------------------------------------------ QuickBooks Online

QUICKBOOKS_CLIENT_ID = "pleo-preflight-conformance-qbo"
QUICKBOOKS_CLIENT_SECRET_ID = "export-preflight/quickbooks/client"
QUICKBOOKS_SECRET = "export-preflight/quickbooks/conformance"


def seed_quickbooks(server: SimulatorServer, traits: Traits) -> Seeded:
    """Our app, a company with the simulator's defaults (7 active expense, 9 INACTIVE, tax code
    3 active, 7 INACTIVE; Simple Start when vendor bookkeeping must be unsupported) and a grant
    over it (without the accounting scope when permissions are missing)."""
    assert isinstance(server, QuickBooksSimulator)
    client_secret = f"qbo-client-secret-{uuid.uuid4().hex}"
    server.add_app(QUICKBOOKS_CLIENT_ID, client_secret)
    plan = "QuickBooks Online Simple Start" if traits.unsupported is Capability.VENDOR_BOOKKEEPING else None
    company = server.add_company(name="Conformance Ltd", **({"offering_sku": plan} if plan else {}))
    scopes = f"{ACCOUNTING_SCOPE} openid" if traits.permissions == "granted" else "com.intuit.quickbooks.payment"
    grant = server.grant(client_id=QUICKBOOKS_CLIENT_ID, realm_id=company.realm_id, scopes=scopes)
    tokens = {
        "accessToken": grant.access_token,
        "refreshToken": grant.refresh_token,
        "expiresAt": grant.expires_at,
        "scope": grant.scope,
    }
    if traits.credentials == "rejected":  # tokens Intuit never issued (another environment's, say)
        tokens = {**tokens, "accessToken": f"not-a-token-{uuid.uuid4().hex}", "refreshToken": uuid.uuid4().hex}
    if traits.credentials == "revoked":
        server.revoke_grant(grant)
    return Seeded(
        configuration={
            "accountingCompanyRef": company.realm_id,
            "accountingCredentialsSecretId": QUICKBOOKS_SECRET,
            "vendorBookkeepingEnabled": True,
            "exportReceipts": True,
            "mappings": {"expenseAccount": "7", "contraAccount": "10", "vatCodes": ["3"]},
        },
        secrets={
            QUICKBOOKS_SECRET: tokens,
            QUICKBOOKS_CLIENT_SECRET_ID: {"clientId": QUICKBOOKS_CLIENT_ID, "clientSecret": client_secret},
        },
        settings={
            "api_base_url": server.base_url,
            "oauth_base_url": server.base_url,
            "client_credentials_secret_id": QUICKBOOKS_CLIENT_SECRET_ID,
        },
    )


QUICKBOOKS = ConnectorUnderTest(
    spec=CONNECTORS["quickbooks"],
    simulator=QuickBooksSimulator,
    seed=seed_quickbooks,
    first_call=("GET", r"/v3/company/[0-9]+/companyinfo/[0-9]+"),
    ledger=Ledger(
        active_account="7",
        unusable_account="9",
        unknown_account="999",
        active_tax_code="3",
        inactive_tax_code="7",
        unknown_tax_code="99",
    ),
    token_endpoint=r"/oauth2/v1/tokens/bearer",
    not_applicable={
        "wrong_company": "a QuickBooks grant is bound to one realm and Intuit does not say which: another realm "
        "answers 403 ApplicationAuthorizationFailed (invalid_configuration, see test_quickbooks_connector)",
        "capability_not_supported[journal_entry]": "every QuickBooks Online plan takes journal entries; closed "
        "books refuse journal entries and bills alike, never journal entries alone (see test_quickbooks_connector)",
        "capability_not_supported[attachment_upload]": "every QuickBooks Online plan takes Attachable uploads under "
        "the one accounting scope",
    },
)

# ------------------------------------------------------------------ Business Central

BUSINESSCENTRAL_SECRET = "export-preflight/businesscentral/conformance"
BUSINESSCENTRAL_CLIENT_ID = "pleo-preflight-conformance-bc"


def seed_businesscentral(server: SimulatorServer, traits: Traits) -> Seeded:
    """A tenant with our app consented (API.ReadWrite.All) and Enabled on the environment's
    Microsoft Entra applications page, one company with the simulator's defaults (8110 postable,
    8120 blocked, VAT product posting groups STANDARD/REDUCED/ZERO, journal batches DEFAULT and
    PLEO of GENERAL); the company's secret holds the app's client id and secret.

    - ``credentials="rejected"``: a secret Entra never issued (AADSTS7000215);
    - ``credentials="revoked"``: the administrator removed our app from the tenant (AADSTS700016);
    - ``company="other"``: the configured company id does not exist, another company does;
    - ``permissions="missing"``: the app's permission sets do not cover journals;
    - ``unsupported=journal_entry``: the mapped journal batch does not exist.
    """
    assert isinstance(server, BusinessCentralSimulator)
    seat = server.seed_company(
        name="CRONUS Conformance A/S",
        client_id=BUSINESSCENTRAL_CLIENT_ID,
        denied={"journals"} if traits.permissions == "missing" else set(),
    )
    if traits.credentials == "revoked":
        server.remove_app(seat.tenant, seat.client_id)
    secret = f"bc~never-issued-{uuid.uuid4().hex}" if traits.credentials == "rejected" else seat.client_secret
    company = seat.company.id if traits.company == "configured" else str(uuid.uuid4())
    return Seeded(
        configuration={
            "accountingCompanyRef": f"{seat.tenant.tenant_id}/{seat.environment.name}/{company}",
            "accountingCredentialsSecretId": BUSINESSCENTRAL_SECRET,
            "vendorBookkeepingEnabled": True,
            "exportReceipts": True,
            "mappings": {
                "journal": "NOSUCHBATCH" if traits.unsupported is Capability.JOURNAL_ENTRY else "PLEO",
                "expenseAccount": "8110",
                "contraAccount": "5420",
                "vatCodes": ["STANDARD"],
            },
        },
        secrets={BUSINESSCENTRAL_SECRET: {"clientId": seat.client_id, "clientSecret": secret}},
        settings={"api_base_url": server.base_url, "auth_base_url": server.base_url},
    )


BUSINESSCENTRAL = ConnectorUnderTest(
    spec=CONNECTORS["businesscentral"],
    simulator=BusinessCentralSimulator,
    seed=seed_businesscentral,
    first_call=("GET", r"/v2\.0/[^/]+/[^/]+/api/v2\.0/companies\([^)/]*\)"),
    ledger=Ledger(
        active_account="8110",
        unusable_account="8120",
        unknown_account="8999",
        active_tax_code="STANDARD",
        inactive_tax_code="INACTIVE",
        unknown_tax_code="NOSUCHVAT",
    ),
    # Client credentials: a token per call site, no refresh token; a remote fault on the API is
    # not answered with a token request, but the first API call needs one (so not counted here).
    token_endpoint=None,
    not_applicable={
        "tax_code[inactive]": "API v2.0 taxGroups (VAT product posting groups, sales tax groups) have no blocked "
        "or inactive state: a tax group exists or not",
        "capability_not_supported[vendor_bookkeeping]": "purchase invoices need no setting of their own; only the "
        "permission sets (see permissions_missing) or the posting window, which stops journals too, stand in the way",
        "capability_not_supported[attachment_upload]": "every Business Central company takes attachments on journal "
        "lines and purchase invoices; only the permission sets can be missing",
    },
)

CONNECTORS_UNDER_TEST: list[ConnectorUnderTest] = [ECONOMIC, XERO, FORTNOX, QUICKBOOKS, BUSINESSCENTRAL]
