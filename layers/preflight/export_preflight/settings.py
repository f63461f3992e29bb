"""Typed settings, parsed once from environment variables.

Base URLs only ever come from here (and from each connector's own settings, see
``ConnectorSettings``): never from message content or configuration items, so a crafted
message cannot point our credentials at another host.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from .process import PROCESS

DEFAULT_SECRETS_PREFIX = "export-preflight/"


class EnvConfigDict(ConfigDict, total=False):
    """A settings class's configuration: pydantic's, and the prefix of its variables."""

    env_prefix: str


class EnvSettings(BaseModel):
    """Flat settings read from environment variables, as pydantic-settings' ``BaseSettings``
    reads them and without its import (a fifth of a bare ``import boto3, httpx``; a cold start
    pays it before the first decision): each field from the variable ``<env_prefix><field>``
    in any case, unless given as a keyword argument (those come first); absent, the field's
    default. The values are the variables' strings, validated by pydantic as usual ("8",
    "false"); an empty variable is a value too. Only scalar fields (str, numbers, bool, URLs):
    a list or a model in the environment would want JSON parsing, which this does not do."""

    model_config = EnvConfigDict(frozen=True, extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        prefix = str(self.model_config.get("env_prefix", "")).lower()
        environment = {name.lower(): value for name, value in os.environ.items()}
        found = {name: environment[prefix + name] for name in type(self).model_fields if prefix + name in environment}
        super().__init__(**{**found, **values})


class Settings(EnvSettings):
    """Runtime settings of the preflight function (see docs/contracts.md, "Settings")."""

    model_config = EnvConfigDict(frozen=True, extra="ignore")

    pleo_api_base_url: HttpUrl = HttpUrl("https://external.pleo.io")
    pleo_auth_base_url: HttpUrl = HttpUrl("https://auth.pleo.io")
    pleo_oauth_client_secret_id: str = "export-preflight/pleo/oauth-client"  # noqa: S105 - a secret id

    company_config_table: str = "export-preflight-company-config"
    credential_lock_table: str = "export-preflight-credential-locks"
    # The customer-managed KMS key the token journal is encrypted with (its id, ARN or alias).
    journal_kms_key_id: str = ""
    decisions_table: str = "export-preflight-job-decisions"
    # Longer than the claimed queue's plus the DLQ's retention: a redrive always finds the decision.
    decision_retention_seconds: int = Field(default=20 * 86_400, gt=0)
    ready_jobs_queue_url: str = ""
    claimed_jobs_dlq_url: str = ""
    claimed_jobs_queue_url: str = ""
    # The readiness sweep (see docs/checks.md, "Readiness before the job").
    readiness_table: str = "export-preflight-readiness"
    readiness_queue_url: str = ""
    readiness_dlq_url: str = ""
    readiness_spread_seconds: int = Field(default=900, ge=0, le=900)  # SQS DelaySeconds: at most 900
    readiness_sweep_interval_hours: int = Field(default=24, ge=1, le=168)
    readiness_retention_seconds: int = Field(default=35 * 86_400, gt=0)

    http_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    config_cache_seconds: int = Field(default=300, ge=0)
    secrets_cache_seconds: int = Field(default=300, ge=0)
    # The template's SecretsPrefix: every company's credentials secret is named
    # <prefix>pleo/<companyId> or <prefix><accountingSystem>/<companyId> (docs/contracts.md, "Secrets").
    secrets_prefix: str = Field(default=DEFAULT_SECRETS_PREFIX, pattern=r"^[A-Za-z0-9/_+=.@-]+$")
    max_receive_count: int = Field(default=5, ge=1)
    retry_backoff_base_seconds: int = Field(default=15, ge=0)
    # capped below the ready queue's 5-minute deduplication window (see Queues.hand_off)
    retry_backoff_max_seconds: int = Field(default=240, ge=0, le=43_200)
    max_message_bytes: int = Field(default=16_384, gt=0)
    check_concurrency: bool = True
    max_parallel_records: int = Field(default=10, ge=1, le=10)
    deadline_margin_ms: int = Field(default=5_000, ge=0)

    @field_validator("pleo_api_base_url", "pleo_auth_base_url")
    @classmethod
    def _no_query(cls, url: HttpUrl) -> HttpUrl:
        return plain_base_url(url)

    def retry_delay(self, receive_count: int, retry_after: float | None = None) -> int:
        """Seconds until the next delivery: exponential backoff on the receive count, or the
        remote side's ``Retry-After`` when it asks for longer; capped (SQS allows at most 12 h).

        A ``Retry-After`` of 0 or a date in the past never shortens the backoff: the whole
        retry budget must not be spent in seconds."""
        exponential = self.retry_backoff_base_seconds * 2 ** max(0, receive_count - 1)
        wanted = max(float(exponential), retry_after or 0.0)
        return int(min(self.retry_backoff_max_seconds, wanted))

    def base_url(self, url: HttpUrl) -> str:
        """A base URL without its trailing slash."""
        return base_url(url)


class ConnectorSettings(EnvSettings):
    """Base of each connector's own settings, read from the environment under the
    connector's prefix (``model_config = EnvConfigDict(env_prefix="XERO_")``). Invalid
    settings affect only the companies on that connector (see ``ConnectorRegistry``)."""

    model_config = EnvConfigDict(frozen=True, extra="ignore")

    @field_validator("*")
    @classmethod
    def _no_query(cls, value: object) -> object:
        return plain_base_url(value) if isinstance(value, HttpUrl) else value


def plain_base_url(url: HttpUrl) -> HttpUrl:
    """Base URLs carry no query string or fragment (nothing a message could smuggle in)."""
    if url.query or url.fragment:
        raise ValueError("base URLs must not carry a query string or fragment")
    return url


def base_url(url: HttpUrl) -> str:
    """A base URL without its trailing slash."""
    return str(url).rstrip("/")


def get_settings() -> Settings:
    """The process-wide settings (parsed on first use; anew after ``process.reset()``)."""
    return PROCESS.once("settings", Settings)
