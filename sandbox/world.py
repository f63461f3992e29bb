"""The local world: embedded AWS (moto), the Pleo and e-conomic simulators, and the
real handler wired to them. Used by ``make run``, the integration tests and the
benchmark. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from .aws import LocalAws, Resources
from .poller import LocalPoller
from .simulators.economic import EconomicSimulator
from .simulators.pleo import PleoSimulator
from .simulators.xero import Grant, XeroSimulator
from .simulators.xero import account as xero_account

ROOT = Path(__file__).resolve().parents[1]
XERO_CLIENT_ID = "pleo-preflight-local"
XERO_SCOPES = "openid offline_access accounting.settings accounting.manualjournals accounting.attachments"
CODE_PATHS = (ROOT / "layers" / "preflight", ROOT / "functions" / "preflight")


@dataclass
class Company:
    """A seeded company: its Pleo id, configuration item and the secrets behind it."""

    slug: str
    company_id: str
    configuration: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    grant: Grant | None = None


class Sandbox:
    """Start with ``start()`` (or ``with Sandbox() as sandbox``)."""

    def __init__(self, *, visibility_timeout: int = 1, latency: float = 0.0, settings: dict[str, str] | None = None):
        self.aws = LocalAws()
        self.pleo = PleoSimulator(latency=latency)
        self.economic = EconomicSimulator(latency=latency)
        self.xero = XeroSimulator(latency=latency)
        self.xero_client_secret = f"xero-client-secret-{uuid.uuid4().hex}"
        self._visibility_timeout = visibility_timeout
        self._settings = settings or {}
        self.resources: Resources | None = None
        self.companies: dict[str, Company] = {}
        self._app: ModuleType | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        self.aws.start()
        self.pleo.start()
        self.economic.start()
        self.xero.start()
        self.resources = self.aws.create_resources(visibility_timeout=self._visibility_timeout)
        self._seed_xero_app()
        os.environ.update(self.environment())
        return self

    def _seed_xero_app(self) -> None:
        self.xero.add_app(XERO_CLIENT_ID, self.xero_client_secret)
        self.aws.put_secret(
            "export-preflight/xero/client", {"clientId": XERO_CLIENT_ID, "clientSecret": self.xero_client_secret}
        )

    def stop(self) -> None:
        for server in (self.pleo, self.economic, self.xero):
            server.stop()
        self.aws.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        assert self.resources is not None
        return {
            **self.aws.environment(),
            **self.resources.environment(),
            "PLEO_API_BASE_URL": self.pleo.base_url,
            "ECONOMIC_API_BASE_URL": self.economic.base_url,
            "XERO_API_BASE_URL": self.xero.base_url,
            "XERO_IDENTITY_BASE_URL": self.xero.base_url,
            "XERO_CLIENT_CREDENTIALS_SECRET_ID": "export-preflight/xero/client",
            "POWERTOOLS_SERVICE_NAME": "export-preflight",
            "POWERTOOLS_METRICS_NAMESPACE": "ExportPreflight",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            "HTTP_TIMEOUT_SECONDS": "2",
            # retries come back at once locally (the real default backs off 15 s, 30 s, ...)
            "RETRY_BACKOFF_BASE_SECONDS": "0",
            "RETRY_BACKOFF_MAX_SECONDS": "0",
            **self._settings,
        }

    def reset(self, settings: dict[str, str] | None = None) -> None:
        """Fresh AWS resources, simulator state and handler caches (between tests);
        ``settings`` replaces the extra function settings given at construction."""
        if settings is not None:
            for name in self._settings:
                os.environ.pop(name, None)
            self._settings = settings
        self.aws.reset()
        self.resources = self.aws.create_resources(visibility_timeout=self._visibility_timeout)
        for server in (self.pleo, self.economic, self.xero):
            server.reset()
        self._seed_xero_app()
        self.companies.clear()
        os.environ.update(self.environment())
        self.reset_handler_caches()

    # ------------------------------------------------------------ the handler

    @property
    def app(self) -> ModuleType:
        """The real Lambda handler module, imported after the environment is set."""
        if self._app is None:
            for path in CODE_PATHS:
                if str(path) not in sys.path:
                    sys.path.insert(0, str(path))
            self._app = importlib.import_module("app")
            _follow_stdout(self._app.logger)
        return self._app

    def reset_handler_caches(self) -> None:
        from export_preflight import runtime, settings

        settings.get_settings.cache_clear()
        runtime.get_runtime.cache_clear()

    def poller(self, *, timeout_ms: int = 30_000) -> LocalPoller:
        assert self.resources is not None
        sqs = self.aws.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=self.resources.claimed_jobs_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return LocalPoller(
            sqs, self.resources.claimed_jobs_queue_url, arn, self.app.lambda_handler, timeout_ms=timeout_ms
        )

    # ------------------------------------------------------------ seeding

    def add_economic_company(
        self,
        slug: str,
        *,
        agreement_number: int,
        configuration: dict[str, Any] | None = None,
        agreement: dict[str, Any] | None = None,
        grant_token: str | None = None,
        store_accounting_secret: bool = True,
    ) -> Company:
        """A Pleo company connected to an e-conomic agreement, with secrets and a configuration item."""
        assert self.resources is not None
        company_id = str(uuid.uuid4())
        pleo_key = f"pleo-key-{slug}-{uuid.uuid4().hex[:12]}"
        app_token = f"app-secret-{uuid.uuid4().hex}"
        real_grant = f"grant-{slug}-{uuid.uuid4().hex}"
        self.pleo.add_api_key(pleo_key, [company_id])
        self.economic.add_agreement(
            app_secret_token=app_token,
            agreement_grant_token=real_grant,
            agreement_number=agreement_number,
            company_name=f"{slug.replace('-', ' ').title()} ApS",
            **(agreement or {}),
        )
        pleo_secret = f"export-preflight/pleo/{slug}"
        accounting_secret = f"export-preflight/economic/{slug}"
        self.aws.put_secret(pleo_secret, {"apiKey": pleo_key})
        if store_accounting_secret:
            self.aws.put_secret(
                accounting_secret, {"appSecretToken": app_token, "agreementGrantToken": grant_token or real_grant}
            )
        config = {
            "companyId": company_id,
            "displayName": slug,
            "pleoCredentialsSecretId": pleo_secret,
            "accountingSystem": "economic",
            "accountingCompanyRef": str(agreement_number),
            "accountingCredentialsSecretId": accounting_secret,
            "vendorBookkeepingEnabled": False,
            "exportReceipts": True,
            "mappings": {"journal": 1, "expenseAccount": 5820, "contraAccount": 6800, "vatCodes": ["I25"]},
        }
        config.update(configuration or {})
        self.aws.put_company_configuration(self.resources, config)
        company = Company(slug, company_id, config, {"pleo": pleo_key, "app": app_token, "grant": real_grant})
        self.companies[slug] = company
        return company

    def add_xero_company(
        self,
        slug: str,
        *,
        scopes: str = XERO_SCOPES,
        configuration: dict[str, Any] | None = None,
        organisation: dict[str, Any] | None = None,
        connect_tenant: bool = True,
        expired_token: bool = False,
    ) -> Company:
        """A Pleo company connected to a Xero organisation: the organisation (with a Pleo
        clearing account 615), our app's grant, the token secret and a configuration item."""
        assert self.resources is not None
        company_id = str(uuid.uuid4())
        pleo_key = f"pleo-key-{slug}-{uuid.uuid4().hex[:12]}"
        self.pleo.add_api_key(pleo_key, [company_id])
        org = self.xero.add_organisation(name=f"{slug.replace('-', ' ').title()} Ltd", **(organisation or {}))
        org.accounts.append(xero_account("615", "Pleo Clearing", "CURRLIAB"))
        other = self.xero.add_organisation(name=f"{slug.replace('-', ' ').title()} Holding Ltd")
        grant = self.xero.grant(
            client_id=XERO_CLIENT_ID,
            tenant_ids=[org.tenant_id] if connect_tenant else [other.tenant_id],
            scopes=scopes,
        )
        if expired_token:
            self.xero.expire_access_token(grant)
        pleo_secret = f"export-preflight/pleo/{slug}"
        xero_secret = f"export-preflight/xero/{slug}"
        self.aws.put_secret(pleo_secret, {"apiKey": pleo_key})
        self.aws.put_secret(
            xero_secret,
            {
                "accessToken": grant.access_token,
                "refreshToken": grant.refresh_token,
                "expiresAt": grant.expires_at,
                "scope": grant.scope,
            },
            token_set=True,
        )
        config = {
            "companyId": company_id,
            "displayName": slug,
            "pleoCredentialsSecretId": pleo_secret,
            "accountingSystem": "xero",
            "accountingCompanyRef": org.tenant_id,
            "accountingCredentialsSecretId": xero_secret,
            "vendorBookkeepingEnabled": False,
            "exportReceipts": True,
            "mappings": {"expenseAccount": "429", "contraAccount": "615", "vatCodes": ["INPUT2"]},
        }
        config.update(configuration or {})
        self.aws.put_company_configuration(self.resources, config)
        company = Company(
            slug,
            company_id,
            config,
            {"pleo": pleo_key, "access": grant.access_token, "refresh": grant.refresh_token or ""},
            grant,
        )
        self.companies[slug] = company
        return company

    def add_job(self, company: Company, **job: Any) -> dict[str, Any]:
        return self.pleo.add_job(company_id=company.company_id, **job)

    def enqueue(self, body: dict[str, Any] | str) -> str:
        assert self.resources is not None
        text = body if isinstance(body, str) else json.dumps(body)
        sqs = self.aws.client("sqs")
        return str(sqs.send_message(QueueUrl=self.resources.claimed_jobs_queue_url, MessageBody=text)["MessageId"])

    def enqueue_job(self, job: dict[str, Any], **overrides: Any) -> str:
        return self.enqueue({"jobId": job["id"], "companyId": job["companyId"], **overrides})

    # ------------------------------------------------------------ reading results

    def queue_bodies(self, queue_url: str) -> list[dict[str, Any]]:
        """Drain a queue (ready jobs or DLQ) and return its messages with attributes."""
        sqs = self.aws.client("sqs")
        found = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(
                    {
                        "body": message["Body"],
                        "attributes": {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
                    }
                )
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def secret_values(self) -> list[str]:
        """Every seeded credential value, to assert none of them leaked."""
        values = [value for company in self.companies.values() for value in company.secrets.values() if value]
        for grant in self.xero.grants:  # rotated tokens are secrets too
            values += [t for t in (grant.access_token, grant.refresh_token, grant.previous_refresh_token) if t]
        return [*values, self.xero_client_secret]


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is now (test capture swaps it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _follow_stdout(logger: Any) -> None:
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = _CurrentStdout()


def leaked(secrets: list[str], texts: list[str]) -> list[str]:
    """The secrets that occur in any of ``texts``."""
    return [s for s in secrets if any(re.search(re.escape(s), t) for t in texts)]
