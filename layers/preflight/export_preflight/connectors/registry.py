"""The connector factory: a company configuration in, a ``Connection`` out (a connector,
or the ``connection_settings`` outcome that says why there is none)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import httpx
from pydantic import ValidationError

from ..errors import CredentialsMissing, CredentialsUnreadable, IntegrationMisconfigured
from ..models import CheckOutcome, CompanyConfiguration
from ..models import FailureReasonType as Reason
from ..oauth import OAuthTokens
from ..observability import logger
from ..ports import Connection, Requirements
from .base import ConnectorEnvironment, ConnectorSpec, CredentialLoader


class ConnectorRegistry:
    """``ConnectorFactory`` over the registered ``ConnectorSpec``s. Each connector's
    environment (its settings, its HTTP clients) is built on first use; a connector whose
    settings are invalid affects only the companies on it, with one clear log line."""

    def __init__(
        self,
        specs: Mapping[str, ConnectorSpec],
        *,
        credentials: CredentialLoader,
        tokens: OAuthTokens | None,
        new_http: Callable[[str], httpx.Client],
    ) -> None:
        self._specs = specs
        self._credentials = credentials
        self._tokens = tokens
        self._new_http = new_http
        self._environments: dict[str, ConnectorEnvironment | IntegrationMisconfigured] = {}
        self._lock = threading.Lock()

    def environment(self, spec: ConnectorSpec) -> ConnectorEnvironment | IntegrationMisconfigured:
        """The connector's environment, or why our side cannot build it (cached per container)."""
        with self._lock:
            if spec.system_id not in self._environments:
                self._environments[spec.system_id] = self._build(spec)
            return self._environments[spec.system_id]

    def _build(self, spec: ConnectorSpec) -> ConnectorEnvironment | IntegrationMisconfigured:
        try:
            settings = spec.settings()
        except ValidationError as error:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
            prefix = str(spec.settings.model_config.get("env_prefix", ""))
            logger.error(
                "a connector's settings are invalid; its companies cannot be checked",
                extra={"system": spec.system_id, "fields": [f"{prefix}{f}".upper() for f in fields]},
            )
            return IntegrationMisconfigured(f"the integration's {spec.display_name} settings are invalid")
        http = {name: self._new_http(url) for name, url in spec.base_urls(settings).items()}
        return ConnectorEnvironment(settings=settings, http=http, credentials=self._credentials, tokens=self._tokens)

    def connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        system = config.accounting_system
        spec = self._specs.get(system or "")
        requirements = (
            Requirements(spec.required_mappings, spec.vendor_mappings, spec.numeric_fields) if spec else Requirements()
        )
        problem = self._problem(config, spec)
        if problem is not None or spec is None:
            return Connection(None, problem, requirements=requirements)
        env = self.environment(spec)
        if isinstance(env, IntegrationMisconfigured):
            return Connection(None, requirements=requirements, unavailable=env)
        try:
            connector = spec.create(env, config, refresh)
        except CredentialsMissing:
            problem = CheckOutcome.failed(
                "connection_settings",
                Reason.MISSING_CONFIGURATION,
                f"The {spec.display_name} credentials for this company are not set up. Connect "
                f"{spec.display_name} in the integration settings, then export again.",
            )
            return Connection(None, problem, requirements=requirements)
        except CredentialsUnreadable:
            logger.error(
                "accounting credentials secret is unreadable",
                extra={"secret_id": config.accounting_credentials_secret_id},
            )
            problem = CheckOutcome.failed(
                "connection_settings",
                Reason.INVALID_CONFIGURATION,
                f"The stored {spec.display_name} credentials for this company are unreadable. Reconnect "
                f"{spec.display_name} in the integration settings, then export again.",
            )
            return Connection(None, problem, requirements=requirements)
        idle_days = spec.refresh_token_idle_days
        return Connection(
            connector,
            requirements=requirements,
            reread_on_rejection=spec.reread_on_rejection,
            refresh_token_idle_seconds=idle_days * 86_400 if idle_days is not None else None,
        )

    def _problem(self, config: CompanyConfiguration, spec: ConnectorSpec | None) -> CheckOutcome | None:
        system = config.accounting_system
        if not system or not config.accounting_company_ref or not config.accounting_credentials_secret_id:
            missing = [
                label
                for label, value in (
                    ("accounting system (accountingSystem)", system),
                    ("accounting company (accountingCompanyRef)", config.accounting_company_ref),
                    ("accounting credentials (accountingCredentialsSecretId)", config.accounting_credentials_secret_id),
                )
                if not value
            ]
            return CheckOutcome.failed(
                "connection_settings",
                Reason.MISSING_CONFIGURATION,
                f"No accounting system is connected for this company: {', '.join(missing)} not set. "
                "Connect the accounting system in the integration settings, then export again.",
            )
        if spec is None:
            return CheckOutcome.failed(
                "connection_settings",
                Reason.INVALID_CONFIGURATION,
                f"The integration does not support the accounting system {system!r} configured for this "
                f"company (supported: {', '.join(sorted(self._specs))}). Correct the accounting system in "
                "the integration settings, then export again.",
            )
        problems = [
            p for p in config.reference_problems(spec.numeric_fields, spec.company_ref) if not p.startswith("mappings.")
        ]
        if problems:
            return CheckOutcome.failed(
                "connection_settings",
                Reason.INVALID_CONFIGURATION,
                f"The {spec.display_name} connection settings for this company are invalid: "
                f"{'; '.join(problems)}. Correct them in the integration settings, then export again.",
            )
        return None
