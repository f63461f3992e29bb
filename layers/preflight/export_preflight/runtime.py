"""Container-wide wiring: settings, pooled HTTP clients, AWS adapters and executors.
The one place adapters are built; once per container, on first use (nothing at import time),
kept by ``process.PROCESS``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .aws import (
    CLIENTS,
    CompanyConfigurations,
    Credentials,
    DynamoDBDecisionLog,
    DynamoDBLease,
    DynamoDBReadinessLog,
    DynamoDBTokenJournal,
    Queues,
)
from .connectors import CONNECTORS
from .connectors.registry import ConnectorRegistry
from .deadline import InvocationDeadline
from .http import new_client
from .models import ClientCredentials
from .oauth import OAuthTokens, TokenEndpoint
from .pleo import PLEO_ERRORS, PleoCompanies
from .process import PROCESS
from .service import PreflightService
from .settings import Settings, get_settings

# Check threads mostly wait on the network; a batch of 10 jobs runs ~40 checks at once.
CHECK_WORKERS = 64


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    service: PreflightService
    queues: Queues
    configurations: CompanyConfigurations
    decisions: DynamoDBDecisionLog
    readiness: DynamoDBReadinessLog
    record_pool: ThreadPoolExecutor
    deadline: InvocationDeadline


def get_runtime(*, operator: bool = False) -> Runtime:
    """The process-wide runtime (built on first use; anew after ``process.reset()``).
    ``operator``: the operator CLI's, which never refreshes an OAuth token (see
    ``OAuthTokens``): it runs on a laptop's clock, can be interrupted between a token call and
    the journal write, and flushes no metrics. The functions call it without arguments."""
    return PROCESS.once("runtime/operator" if operator else "runtime", lambda: _build(operator=operator))


def _build(*, operator: bool) -> Runtime:
    settings = get_settings()
    timeout = settings.http_timeout_seconds
    credentials = Credentials(settings)
    deadline = InvocationDeadline()
    tokens = OAuthTokens(
        credentials,
        DynamoDBLease(settings),
        DynamoDBTokenJournal(settings),
        time_left=deadline.seconds_left,
        refreshes=not operator,
    )
    pleo_token_endpoint = TokenEndpoint(
        new_client(settings.base_url(settings.pleo_auth_base_url), timeout_seconds=timeout),
        "/oauth/token",
        lambda: credentials.load(settings.pleo_oauth_client_secret_id, ClientCredentials),
        "Pleo",
        errors=PLEO_ERRORS,
    )
    queues = Queues(settings)
    check_pool = (
        ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="check")
        if settings.check_concurrency
        else None
    )
    configurations = CompanyConfigurations(settings)
    decisions = DynamoDBDecisionLog(settings)
    readiness = DynamoDBReadinessLog(settings)
    service = PreflightService(
        configurations=configurations,
        pleo=PleoCompanies(
            new_client(settings.base_url(settings.pleo_api_base_url), timeout_seconds=timeout),
            credentials,
            (tokens, pleo_token_endpoint),
        ),
        connectors=ConnectorRegistry(
            CONNECTORS,
            credentials=credentials,
            tokens=tokens,
            new_http=lambda url: new_client(url, timeout_seconds=timeout),
        ),
        secrets=credentials,
        hand_off=queues,
        decisions=decisions,
        readiness=readiness,
        executor=check_pool,
        secrets_prefix=settings.secrets_prefix,
    )
    # needed last (the hand-off, sent without SDK retries): built while the first job waits on the network
    CLIENTS.build_soon("sqs", single_attempt=True)
    record_workers = settings.max_parallel_records if settings.check_concurrency else 1
    return Runtime(
        settings=settings,
        service=service,
        queues=queues,
        configurations=configurations,
        decisions=decisions,
        readiness=readiness,
        record_pool=ThreadPoolExecutor(max_workers=record_workers, thread_name_prefix="record"),
        deadline=deadline,
    )
