"""The connector factory: a company configuration in, a ``Connection`` out (a connector,
or the ``connection_settings`` outcome that says why there is none)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import CredentialsMissing, CredentialsUnreadable
from ..models import CheckOutcome, CompanyConfiguration
from ..models import FailureReasonType as Reason
from ..observability import logger
from ..ports import Connection, Requirements
from .base import ConnectorEnvironment, ConnectorSpec


class ConnectorRegistry:
    """``ConnectorFactory`` over the registered ``ConnectorSpec``s."""

    def __init__(self, env: ConnectorEnvironment, specs: Mapping[str, ConnectorSpec]) -> None:
        self._env = env
        self._specs = specs

    def connect(self, config: CompanyConfiguration, *, refresh: bool = False) -> Connection:
        system = config.accounting_system
        spec = self._specs.get(system or "")
        requirements = (
            Requirements(spec.required_mappings, spec.vendor_mappings, spec.numeric_fields) if spec else Requirements()
        )
        problem = self._problem(config, spec)
        if problem is not None or spec is None:
            return Connection(None, problem, requirements=requirements)
        try:
            connector = spec.create(self._env, config, refresh)
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
        return Connection(connector, requirements=requirements, reread_on_rejection=spec.reread_on_rejection)

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
        problems = [p for p in config.reference_problems(spec.numeric_fields) if not p.startswith("mappings.")]
        if problems:
            return CheckOutcome.failed(
                "connection_settings",
                Reason.INVALID_CONFIGURATION,
                f"The {spec.display_name} connection settings for this company are invalid: "
                f"{'; '.join(problems)}. Correct them in the integration settings, then export again.",
            )
        return None
