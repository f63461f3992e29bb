"""The local world: embedded AWS (moto), the Pleo simulator and every accounting-system
simulator of ``ACCOUNTING_SIMULATORS``, and the real handler wired to them. Used by
``make run``, the integration tests and the benchmark. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import importlib
import importlib.util
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
from .simulators.base import SimulatorServer
from .simulators.pleo import PleoSimulator
from .simulators.registry import AccountingSimulator, accounting_simulators
from .stack import LocalFunction, LocalStack, parameters_feeding, transformed_template

ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = (ROOT / "layers" / "preflight", ROOT / "functions" / "preflight")
READINESS_APP = ROOT / "functions" / "readiness" / "app.py"
#: ids of what the sandbox seeds: uuid5 over a name (a company's slug, a job's name), so a
#: world rebuilt from the same seeding has the same ids (``export-preflight --sandbox``)
SANDBOX_NAMESPACE = uuid.UUID("5c4e1d2a-7f7b-5b8e-9f3a-0e1e5a4d7c21")

# Function settings the template does not have, for the local world only.
LOCAL_SETTINGS = {
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    # retries come back at once locally (the real default backs off 15 s, 30 s, ...)
    "RETRY_BACKOFF_BASE_SECONDS": "0",
    "RETRY_BACKOFF_MAX_SECONDS": "0",
}
# Template settings the local world replaces (every other function setting is the template's).
LOCAL_OVERRIDES = {"HTTP_TIMEOUT_SECONDS": "2"}  # a simulator that does not answer fails fast
# Template parameters of the local stack (besides the simulators' base URLs).
LOCAL_PARAMETERS = {"ReadinessSpreadSeconds": "0"}  # a sweep's messages arrive at once locally


def sandbox_id(name: str) -> str:
    """The stable id of a seeded company or job, from its name (uuid5)."""
    return str(uuid.uuid5(SANDBOX_NAMESPACE, name))


@dataclass
class Company:
    """A seeded company: its Pleo id, configuration item and the secrets behind it."""

    slug: str
    company_id: str
    configuration: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    grant: Any = None  # the accounting simulator's own handle (e.g. a Xero grant)


class Sandbox:
    """Start with ``start()`` (or ``with Sandbox() as sandbox``)."""

    def __init__(self, *, visibility_timeout: int = 1, latency: float = 0.0, settings: dict[str, str] | None = None):
        self.aws = LocalAws()
        self.pleo = PleoSimulator(latency=latency)
        self.kinds: dict[str, AccountingSimulator] = {kind.system: kind for kind in accounting_simulators()}
        self.accounting: dict[str, SimulatorServer] = {name: kind.create(latency) for name, kind in self.kinds.items()}
        self.app_secrets: dict[str, str] = {}  # what ``prepare`` seeded (our OAuth apps), by label
        self._visibility_timeout = visibility_timeout
        self._settings = settings or {}
        self.resources: Resources | None = None
        self.stack: LocalStack | None = None
        self.companies: dict[str, Company] = {}
        self._app: ModuleType | None = None
        self._readiness_app: ModuleType | None = None

    # ------------------------------------------------------------ lifecycle

    def __getattr__(self, name: str) -> SimulatorServer:
        """``sandbox.economic``, ``sandbox.xero``, ...: the accounting simulators by system id."""
        accounting: dict[str, SimulatorServer] = self.__dict__.get("accounting", {})
        if name in accounting:
            return accounting[name]
        raise AttributeError(name)

    @property
    def servers(self) -> list[SimulatorServer]:
        """Every simulator: Pleo's and each accounting system's."""
        return [self.pleo, *self.accounting.values()]

    def start(self) -> Sandbox:
        self.aws.start()
        for server in self.servers:
            server.start()
        self._deploy()
        self._prepare()
        os.environ.update(self.environment())
        return self

    def _deploy(self) -> None:
        """template.yaml as the local stack, its base-URL parameters pointing at the simulators."""
        self.stack = self.aws.deploy_stack(self.stack_parameters(), visibility_timeout=self._visibility_timeout)
        self.resources = Resources.of(self.stack.environment())

    def stack_parameters(self) -> dict[str, str]:
        """The template parameters of the local stack: the base URLs of the simulators (each
        simulator names the function settings it answers; the template says which parameter
        feeds each), and ``LOCAL_PARAMETERS``."""
        template = transformed_template()
        feeding = parameters_feeding(template)
        wanted = {"PLEO_API_BASE_URL": self.pleo.base_url}
        for name, kind in self.kinds.items():
            wanted.update(kind.environment(self.accounting[name]))
        parameters = dict(LOCAL_PARAMETERS)
        for setting, value in wanted.items():
            if setting in feeding:
                parameters[feeding[setting]] = value
        return parameters

    def _prepare(self) -> None:
        self.app_secrets = {}
        for name, kind in self.kinds.items():
            self.app_secrets.update(kind.prepare(self, self.accounting[name]))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.aws.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The functions' environment as the local stack resolves it from template.yaml, with
        ``LOCAL_SETTINGS``, ``LOCAL_OVERRIDES``, the caller's ``POWERTOOLS_LOG_LEVEL`` and the
        settings given to this sandbox on top; and where boto3 finds moto."""
        assert self.stack is not None
        template = self.stack.environment()
        for name, kind in self.kinds.items():  # what a simulator expects that no parameter feeds
            for setting, value in kind.environment(self.accounting[name]).items():
                if setting in template and template[setting] != value and setting not in self._settings:
                    raise ValueError(
                        f"the {name} simulator expects {setting}={value!r}, the template {template[setting]!r}"
                    )
        return {
            **self.aws.environment(),
            **template,
            **LOCAL_SETTINGS,
            **LOCAL_OVERRIDES,
            "POWERTOOLS_LOG_LEVEL": os.environ.get(
                "POWERTOOLS_LOG_LEVEL", template.get("POWERTOOLS_LOG_LEVEL", "INFO")
            ),
            **self._settings,
        }

    def function(self, code: str, handler: str) -> LocalFunction:
        """The template's function whose code is ``code`` (its CodeUri) and handler ``handler``."""
        assert self.stack is not None
        return self.stack.function_with_handler(code, handler)

    def reset(self, settings: dict[str, str] | None = None) -> None:
        """Fresh AWS resources, simulator state and handler caches (between tests);
        ``settings`` replaces the extra function settings given at construction."""
        if settings is not None:
            for name in self._settings:
                os.environ.pop(name, None)
            self._settings = settings
        self.aws.reset()
        self._deploy()
        for server in self.servers:
            server.reset()
        self._prepare()
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

    @property
    def readiness_app(self) -> ModuleType:
        """The real readiness function module (``functions/readiness/app.py``; its own name,
        as both functions' modules are called ``app``)."""
        if self._readiness_app is None:
            _ = self.app  # the code paths on sys.path, the preflight function imported first
            spec = importlib.util.spec_from_file_location("readiness_app", READINESS_APP)
            assert spec is not None and spec.loader is not None
            self._readiness_app = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(self._readiness_app)
        return self._readiness_app

    def sweep(self) -> dict[str, Any]:
        """Run the scheduled sweep once, then drain the readiness queue through the readiness
        function (as its SQS event source would); returns the sweep's answer."""
        from .lambda_context import LocalLambdaContext

        assert self.resources is not None
        sweep = self.function("functions/readiness", "app.sweep_handler")
        started = self.readiness_app.sweep_handler({}, LocalLambdaContext.of(sweep))
        self.readiness_poller().drain(max_seconds=60)
        return dict(started)

    def readiness_poller(self, *, timeout_ms: int | None = None) -> LocalPoller:
        """The readiness function's SQS event source, as the template maps it."""
        return self._poller(
            self.function("functions/readiness", "app.lambda_handler"), self.readiness_app.lambda_handler, timeout_ms
        )

    def reset_handler_caches(self) -> None:
        from export_preflight import process

        process.reset()  # a new container: settings, clients, runtime, the handlers' own

    def poller(self, *, timeout_ms: int | None = None) -> LocalPoller:
        """The preflight function's SQS event source (the claimed-jobs queue), as the template maps it."""
        return self._poller(
            self.function("functions/preflight", "app.lambda_handler"), self.app.lambda_handler, timeout_ms
        )

    def _poller(self, function: LocalFunction, handler: Any, timeout_ms: int | None) -> LocalPoller:
        """A poller with the function's event source mapping settings (batch size, batching
        window, ReportBatchItemFailures, MaximumConcurrency) and, unless ``timeout_ms``,
        its timeout."""
        assert self.stack is not None
        source = self.stack.event_source(function.logical_id)
        queue_url = self.stack.ref(source.queue)
        sqs = self.aws.client("sqs")
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return LocalPoller(sqs, queue_url, arn, handler, source=source, function=function, timeout_ms=timeout_ms)

    # ------------------------------------------------------------ seeding

    def add_company(
        self, system: str, slug: str, *, configuration: dict[str, Any] | None = None, **traits: Any
    ) -> Company:
        """A Pleo company (an API key, its secret) connected to ``system``: the simulator
        seeds the accounting side (``traits`` are its own, see its ``_seed``), then the
        configuration item is stored (``configuration`` overrides fields of it)."""
        assert self.resources is not None
        company_id = sandbox_id(slug)
        pleo_key = f"pleo-key-{slug}-{uuid.uuid4().hex[:12]}"
        self.pleo.add_api_key(pleo_key, [company_id])
        prefix = self.environment()["SECRETS_PREFIX"]
        pleo_secret = f"{prefix}pleo/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
        self.aws.put_secret(pleo_secret, {"apiKey": pleo_key})
        seeded = self.kinds[system].seed(self, self.accounting[system], slug, company_id=company_id, **traits)
        config = {
            "companyId": company_id,
            "displayName": slug,
            "pleoCredentialsSecretId": pleo_secret,
            "accountingSystem": system,
            "accountingCompanyRef": seeded.company_ref,
            "accountingCredentialsSecretId": seeded.secret_id,
            "vendorBookkeepingEnabled": False,
            "exportReceipts": True,
            "mappings": seeded.mappings,
        }
        config.update(configuration or {})
        self.aws.put_company_configuration(self.resources, config)
        company = Company(slug, company_id, config, {"pleo": pleo_key, **seeded.secrets}, seeded.handle)
        self.companies[slug] = company
        return company

    def add_job(self, company: Company, name: str | None = None, **job: Any) -> dict[str, Any]:
        """A Pleo export job of ``company``; its id is ``sandbox_id("<company slug>/<name>")``
        (``name`` defaults to ``job-<n>``, the company's n-th job) unless ``job_id`` is given."""
        if "job_id" not in job:
            count = sum(j["companyId"] == company.company_id for j in self.pleo.jobs())
            job["job_id"] = sandbox_id(f"{company.slug}/{name or f'job-{count + 1}'}")
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
        found: list[dict[str, Any]] = []
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
        for server in self.accounting.values():  # rotated tokens are secrets too
            values += list(getattr(server, "issued_secrets", lambda: [])())
        return [*values, *self.app_secrets.values()]


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
