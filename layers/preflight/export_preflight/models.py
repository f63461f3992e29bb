"""Domain models: the queue message, the Pleo export job, company configuration,
credentials, and the values the check engine produces. Each model builds its validator on
first use (``defer_build``): a cold start pays only for the models its first job needs."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator, model_validator


class FailureReasonType(StrEnum):
    """Pleo's job-level ``failureReasonType`` enum (Export API v3, all 15 values)."""

    INVALID_CONFIGURATION = "invalid_configuration"
    MISSING_CONFIGURATION = "missing_configuration"
    AUTHENTICATION_FAILURE = "authentication_failure"
    ACCOUNTING_SYSTEM_AUTHENTICATION_FAILURE = "accounting_system_authentication_failure"
    PLEO_RATE_LIMIT = "pleo_rate_limit"
    ACCOUNTING_SYSTEM_RATE_LIMIT = "accounting_system_rate_limit"
    SERVICE_UNREACHABLE = "service_unreachable"
    ACCOUNTING_SYSTEM_UNREACHABLE = "accounting_system_unreachable"
    VALIDATION_FAILURE = "validation_failure"
    AUTHORIZATION_FAILURE = "authorization_failure"
    INTEGRATION_UNUSABLE = "integration_unusable"
    JOB_EXPIRED = "job_expired"
    SERVICE_TIMEOUT = "service_timeout"
    ACCOUNTING_SYSTEM_TIMEOUT = "accounting_system_timeout"
    CANCELED_BY_USER = "canceled_by_user"


class JobStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"


# ---------------------------------------------------------------- the message


class ClaimedJobMessage(BaseModel):
    """Body of a message on the claimed-jobs queue. Extra fields are allowed and ignored."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    job_id: UUID = Field(alias="jobId")
    company_id: UUID = Field(alias="companyId")
    # Set only by the re-run tool: a deliberate second decision for an already decided job.
    rerun: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class ReadinessMessage(BaseModel):
    """Body of a message on the readiness queue (one per company, from the sweep)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True)

    company_id: UUID = Field(alias="companyId")
    sweep: str | None = Field(default=None, max_length=64)


# ---------------------------------------------------------------- Pleo


class ExportJob(BaseModel):
    """An export job as Pleo returns it (``GET /v3/export-jobs/{jobId}`` -> ``data``)."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, populate_by_name=True)

    id: UUID
    company_id: UUID = Field(alias="companyId")
    status: str
    created_at: datetime | None = Field(default=None, alias="createdAt")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    last_updated_at: datetime | None = Field(default=None, alias="lastUpdatedAt")
    expires_in: int | None = Field(default=None, alias="expiresIn")
    vendor_based_bookkeeping: bool = Field(default=False, alias="vendorBasedBookkeeping")
    number_of_items: int | None = Field(default=None, alias="numberOfItems")
    failure_reason_type: str | None = Field(default=None, alias="failureReasonType")

    @property
    def in_progress(self) -> bool:
        return self.status == JobStatus.IN_PROGRESS

    def seconds_left(self, now: datetime) -> float | None:
        """Seconds until the job expires: ``expiresIn`` counts from the last action
        (``lastUpdatedAt``). Without it, from the latest moment known to be an action or
        earlier (``startedAt``, else ``createdAt``), which can only underestimate; None
        when the job says nothing about its expiry."""
        if self.expires_in is None:
            return None
        since = self.last_updated_at or self.started_at or self.created_at
        if since is None:
            return float(self.expires_in)
        if since.tzinfo is None:
            since = since.replace(tzinfo=now.tzinfo)
        return (since - now).total_seconds() + self.expires_in


# ---------------------------------------------------------------- credentials


class PleoApiKey(BaseModel):
    """Pleo API key: sent as the HTTP Basic user name with an empty password."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, hide_input_in_errors=True)
    api_key: SecretStr = Field(alias="apiKey", min_length=1)


class PleoAccessToken(BaseModel):
    """A Pleo OAuth access token, sent as a bearer token."""

    model_config = ConfigDict(defer_build=True, extra="ignore", frozen=True, hide_input_in_errors=True)
    access_token: SecretStr = Field(alias="accessToken", min_length=1)


REFRESH_SKEW_SECONDS = 120


class TokenSet(BaseModel):
    """What a credentials secret of an OAuth connection holds."""

    model_config = ConfigDict(
        defer_build=True, extra="ignore", frozen=True, hide_input_in_errors=True, populate_by_name=True
    )

    access_token: SecretStr = Field(alias="accessToken", min_length=1)
    refresh_token: SecretStr = Field(alias="refreshToken", min_length=1)
    expires_at: float = Field(alias="expiresAt", description="epoch seconds")
    scope: str | None = None
    # When the refresh token was last used (epoch seconds): refresh tokens lapse after a
    # period unused (Xero 60 days). None in sets stored before this was recorded.
    refreshed_at: float | None = Field(default=None, alias="refreshedAt")
    # When the grant ends for good, whatever its use (epoch seconds): QuickBooks' 5-year cap,
    # reported by its token endpoint as x_refresh_token_hard_expires_in. None: not known.
    hard_expires_at: float | None = Field(default=None, alias="hardExpiresAt")

    def fresh(self, now: float, skew: float = REFRESH_SKEW_SECONDS) -> bool:
        return self.expires_at - skew > now

    def to_secret(self) -> str:
        return json.dumps(
            {
                "accessToken": self.access_token.get_secret_value(),
                "refreshToken": self.refresh_token.get_secret_value(),
                "expiresAt": self.expires_at,
                "scope": self.scope,
                "refreshedAt": self.refreshed_at,
                "hardExpiresAt": self.hard_expires_at,
            }
        )

    def scopes(self) -> frozenset[str]:
        """Granted scopes: the access token's ``scope`` claim when it is a JWT, else the stored scope."""
        claim = jwt_claims(self.access_token.get_secret_value()).get("scope")
        value = claim if isinstance(claim, str | list) else (self.scope or "")
        return frozenset(value.split() if isinstance(value, str) else (str(v) for v in value))


class ClientCredentials(BaseModel):
    """Our OAuth client at the provider (one per integration, not per customer)."""

    model_config = ConfigDict(
        defer_build=True, extra="ignore", frozen=True, hide_input_in_errors=True, populate_by_name=True
    )
    client_id: str = Field(alias="clientId", min_length=1)
    client_secret: SecretStr = Field(alias="clientSecret", min_length=1)


# Left to right: an OAuth token set (with a refresh token) before a bare access token.
PleoCredentials = Annotated[PleoApiKey | TokenSet | PleoAccessToken, Field(union_mode="left_to_right")]


# ---------------------------------------------------------------- configuration


def _reference(value: Any) -> Any:
    """A reference into the accounting system as the item may write it: text, or a whole number
    (``"expenseAccount": 5820``), kept as text. Never a bool or a fraction: no coercion."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be text or a whole number")
    return str(value)


# A reference (account, journal, VAT code, company): text or a whole number, kept as text.
Reference = Annotated[str, BeforeValidator(_reference, json_schema_input_type=str | int)]


class Mappings(BaseModel):
    """What the export needs mapped in the accounting system.

    Every field is optional here so that an incomplete configuration still parses;
    the configuration check names whatever is missing. Unknown fields are errors (a
    misspelt mapping would otherwise be silently ignored).
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, populate_by_name=True)

    journal: Reference | None = Field(default=None, description="journal (e-conomic), voucher series (Fortnox)")
    expense_account: Reference | None = Field(default=None, alias="expenseAccount")
    contra_account: Reference | None = Field(default=None, alias="contraAccount")
    vat_codes: tuple[Reference, ...] = Field(default=(), alias="vatCodes")
    vendor_payables_account: Reference | None = Field(default=None, alias="vendorPayablesAccount")
    vendor_journal: Reference | None = Field(default=None, alias="vendorJournal")


_PRINTABLE = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?")
_DIGITS = re.compile(r"[0-9]{1,18}")
_SECRET_ID = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")


def value_problem(value: str, *, numeric: bool = False) -> str | None:
    """Why a configured reference cannot be sent to an accounting system, or None."""
    if numeric and not _DIGITS.fullmatch(value):
        return "must be a number (digits 0-9 only)"
    if not _PRINTABLE.fullmatch(value):
        return "must be printable ASCII text of at most 128 characters, without leading or trailing spaces"
    return None


class ConfigurationFields(BaseModel):
    """The ``configuration`` map of a company configuration item (docs/contracts.md,
    "Company configuration item"). Strict: unknown fields are errors and nothing is coerced (a
    ``"yes"`` is not a boolean)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True, populate_by_name=True)

    display_name: str | None = Field(default=None, alias="displayName", strict=True, max_length=256)
    pleo_credentials_secret_id: str | None = Field(
        default=None,
        alias="pleoCredentialsSecretId",
        strict=True,
        description="<SecretsPrefix>pleo/<companyId> (docs/contracts.md, 'Secrets')",
    )
    accounting_system: str | None = Field(
        default=None,
        alias="accountingSystem",
        strict=True,
        description="the connector id of the company's accounting system (the registered connectors)",
    )
    accounting_company_ref: Reference | None = Field(
        default=None,
        alias="accountingCompanyRef",
        description="e-conomic agreement number, Xero tenant id, Fortnox organisation number (NNNNNN-NNNN), "
        "QuickBooks realmId (digits)",
    )
    accounting_credentials_secret_id: str | None = Field(
        default=None,
        alias="accountingCredentialsSecretId",
        strict=True,
        description="<SecretsPrefix><accountingSystem>/<companyId> (docs/contracts.md, 'Secrets')",
    )
    vendor_bookkeeping_enabled: bool = Field(default=False, alias="vendorBookkeepingEnabled", strict=True)
    export_receipts: bool = Field(default=True, alias="exportReceipts", strict=True)
    mappings: Mappings = Field(default_factory=Mappings)


class CompanyConfiguration(ConfigurationFields):
    """One company's integration configuration as the service uses it: the item's
    ``configuration`` map with the item's ``companyId`` (see ``CompanyConfigurationItem``,
    the stored and edited shape)."""

    company_id: UUID = Field(alias="companyId")

    def reference_problems(
        self, numeric: frozenset[str] = frozenset(), company_ref: CompanyRefRule | None = None
    ) -> list[str]:
        """Configured references that cannot be used as they are, by field name (e.g.
        ``mappings.expenseAccount must be a number``). ``numeric`` names the fields the
        accounting system wants as numbers, ``company_ref`` the shape of its company
        references. Checked before anything is sent anywhere."""
        values: list[tuple[str, str | None]] = [
            ("accountingCompanyRef", self.accounting_company_ref),
            ("mappings.journal", self.mappings.journal),
            ("mappings.expenseAccount", self.mappings.expense_account),
            ("mappings.contraAccount", self.mappings.contra_account),
            ("mappings.vendorJournal", self.mappings.vendor_journal),
            ("mappings.vendorPayablesAccount", self.mappings.vendor_payables_account),
            *((f"mappings.vatCodes[{i}]", code) for i, code in enumerate(self.mappings.vat_codes)),
        ]
        problems = []
        for name, value in values:
            problem = value_problem(value, numeric=name in numeric) if value is not None else None
            if problem:
                problems.append(f"{name} {problem}")
        ref = self.accounting_company_ref
        shaped = company_ref is None or ref is None or bool(company_ref.pattern.fullmatch(ref))
        if not shaped and company_ref and not any(p.startswith("accountingCompanyRef ") for p in problems):
            problems.append(f"accountingCompanyRef must be {company_ref.meaning}")
        secret = self.accounting_credentials_secret_id
        if secret and not _SECRET_ID.fullmatch(secret):
            problems.append("accountingCredentialsSecretId is not a valid secret name")
        return problems

    def expected_secret_id(
        self, field: Literal["pleoCredentialsSecretId", "accountingCredentialsSecretId"], prefix: str
    ) -> str:
        """The one name a credentials secret of this company may have (docs/contracts.md, "Secrets"):
        ``<prefix>pleo/<companyId>`` for Pleo, ``<prefix><accountingSystem>/<companyId>`` for
        the accounting system. A secret id carries its company, so a configuration cannot
        point one company at another company's secrets."""
        system = "pleo" if field == "pleoCredentialsSecretId" else (self.accounting_system or "<accountingSystem>")
        return f"{prefix}{system}/{self.company_id}"

    def secret_id_problem(
        self, field: Literal["pleoCredentialsSecretId", "accountingCredentialsSecretId"], prefix: str
    ) -> str | None:
        """Why the secret id in ``field`` may not be read for this company, or None (also when
        it is not set: that is a missing configuration, reported elsewhere). Checked before
        the secret is read; names the field and the expected name, never a secret value."""
        value = (
            self.pleo_credentials_secret_id
            if field == "pleoCredentialsSecretId"
            else (self.accounting_credentials_secret_id)
        )
        expected = self.expected_secret_id(field, prefix)
        if not value or value == expected:
            return None
        system = "pleo" if field == "pleoCredentialsSecretId" else "<accountingSystem>"
        return f"{field} must name this company's own secret, {prefix}{system}/<companyId>: {expected}"

    @model_validator(mode="before")
    @classmethod
    def _from_item(cls, value: Any) -> Any:
        """Accept the DynamoDB item's ``configuration`` attribute as a map or a JSON string."""
        if isinstance(value, str | bytes):
            return json.loads(value)
        return value


@dataclass(frozen=True)
class CompanyRefRule:
    """The shape of an accounting system's company reference (``accountingCompanyRef``)."""

    pattern: re.Pattern[str]
    meaning: str  # "a Swedish organisation number (NNNNNN-NNNN)"


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CompanyConfigurationItem(BaseModel):
    """A company configuration item (docs/contracts.md, "Company configuration item"): the one shape
    ``config validate`` and ``config put`` take, ``config get`` prints and the function
    reads from DynamoDB (partition key ``companyId``, the ``configuration`` map, and the
    ``version`` it is at or was based on). ``export-preflight config schema`` prints its
    JSON Schema."""

    model_config = ConfigDict(
        defer_build=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        title="export-preflight company configuration item",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    company_id: UUID = Field(
        alias="companyId",
        description="the Pleo company id, a lower-case UUID",
        json_schema_extra={"pattern": f"^{_CANONICAL_UUID.pattern}$"},
    )
    configuration: ConfigurationFields
    version: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        description="the stored version this document is based on (config get prints it; absent: a new company)",
    )

    @field_validator("company_id", mode="before")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _CANONICAL_UUID.fullmatch(value):
            raise ValueError("must be a lower-case UUID (8-4-4-4-12 hexadecimal digits)")
        return value

    def company_configuration(self) -> CompanyConfiguration:
        """The configuration as the service uses it (the item's id with its map)."""
        return CompanyConfiguration.model_validate(
            {**self.configuration.model_dump(by_alias=True), "companyId": str(self.company_id)}
        )


# ---------------------------------------------------------------- check results


class Capability(StrEnum):
    """What an export may need from the accounting system."""

    JOURNAL_ENTRY = "journal_entry"
    VENDOR_BOOKKEEPING = "vendor_bookkeeping"
    ATTACHMENT_UPLOAD = "attachment_upload"


class CheckOutcome(BaseModel):
    """The result of one preflight check: a business fact, never an exception."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    check: str
    status: Literal["passed", "failed", "skipped"]
    reason_type: FailureReasonType | None = None
    reason: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def passed(cls, check: str, **facts: Any) -> CheckOutcome:
        return cls(check=check, status="passed", facts=facts)

    @classmethod
    def failed(cls, check: str, reason_type: FailureReasonType, reason: str) -> CheckOutcome:
        return cls(check=check, status="failed", reason_type=reason_type, reason=reason)

    @classmethod
    def skipped(cls, check: str, because: str) -> CheckOutcome:
        return cls(check=check, status="skipped", reason=f"not run: {because} failed")


Outcome = Literal["failed_early", "handed_off", "skipped", "rejected"]


class Decision(BaseModel):
    """What preflight decided for one message; this is what the job decisions table stores."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    outcome: Outcome
    job_id: str | None = None
    company_id: str | None = None
    reason_type: FailureReasonType | None = None
    reason: str | None = None
    job_status: str | None = None
    accounting_system: str | None = None
    checks: list[CheckOutcome] = Field(default_factory=list)


class ReadyJob(BaseModel):
    """A job that passed every check, handed on to the ready-jobs queue (docs/contracts.md, "Hand-off"):
    ``{"jobId", "companyId", "accountingSystem", "accountingCompanyRef",
    "vendorBasedBookkeeping", "checks": {<check>: <facts>}}``."""

    model_config = ConfigDict(defer_build=True, frozen=True, populate_by_name=True)

    job_id: UUID = Field(alias="jobId")
    company_id: UUID = Field(alias="companyId")
    accounting_system: str | None = Field(alias="accountingSystem")
    accounting_company_ref: str | None = Field(alias="accountingCompanyRef")
    vendor_based_bookkeeping: bool = Field(alias="vendorBasedBookkeeping")
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def message(self) -> dict[str, object]:
        """The message body's document, as JSON values."""
        return self.model_dump(mode="json", by_alias=True)


ReadinessStatus = Literal["ready", "not_ready", "unknown"]


class Readiness(BaseModel):
    """Whether a company could export now: the checks of a dry run (or of a job's preflight).

    ``not_ready``: a check failed (``problems`` are the failing checks, most important
    first); ``unknown``: trouble kept checks from finishing (``problems`` say which).
    ``grant_lapses_at``: when the OAuth grant's refresh token would lapse: from disuse, or at
    the grant's hard end (``grant_ends_at``), whichever comes first. ``notices``: what an
    operator should know although nothing fails (a grant ending soon, closed books)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    company_id: str
    status: ReadinessStatus
    accounting_system: str | None = None
    display_name: str | None = None
    problems: list[CheckOutcome] = Field(default_factory=list)
    checks: list[CheckOutcome] = Field(default_factory=list)
    checked_at: datetime
    source: Literal["sweep", "job", "cli"] = "cli"
    job_id: str | None = None
    grant_lapses_at: datetime | None = None
    grant_renewed: bool = False  # this check refreshed the grant to keep it alive
    grant_ends_at: datetime | None = None
    notices: list[str] = Field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    @property
    def reason_type(self) -> FailureReasonType | None:
        """The most important problem's reason type."""
        return self.problems[0].reason_type if self.problems else None


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT-shaped token; {} for anything else. Read, never trusted
    for security: it only tells which scopes to expect."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}
