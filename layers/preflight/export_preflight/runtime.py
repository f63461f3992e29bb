"""Container-wide wiring: settings, pooled HTTP clients, AWS adapters, executors and
the message parser. Built once per container, on first use (nothing at import time)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

from pydantic import ValidationError

from .aws import CompanyConfigurations, Credentials, DynamoDBLease, Queues
from .connectors import CONNECTORS, ConnectorEnvironment
from .errors import UnprocessableMessage
from .http import new_client
from .models import ClaimedJobMessage, ClientCredentials
from .oauth import OAuthTokens, TokenEndpoint
from .service import PreflightService
from .settings import Settings, get_settings

# Check threads mostly wait on the network; a batch of 10 jobs runs ~40 checks at once.
CHECK_WORKERS = 64


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    service: PreflightService
    queues: Queues
    record_pool: ThreadPoolExecutor


@cache
def get_runtime() -> Runtime:
    """The process-wide runtime (settings are read here, once)."""
    settings = get_settings()
    timeout = settings.http_timeout_seconds
    credentials = Credentials(settings)
    tokens = OAuthTokens(credentials, DynamoDBLease(settings))
    pleo_token_endpoint = TokenEndpoint(
        new_client(settings.base_url(settings.pleo_auth_base_url), timeout_seconds=timeout),
        "/oauth/token",
        lambda: credentials.load(settings.pleo_oauth_client_secret_id, ClientCredentials),
        "Pleo",
    )
    connectors = ConnectorEnvironment(
        settings=settings,
        http={
            name: new_client(url, timeout_seconds=timeout)
            for spec in CONNECTORS.values()
            for name, url in spec.base_urls(settings).items()
        },
        credentials=credentials,
        tokens=tokens,
    )
    queues = Queues(settings)
    check_pool = (
        ThreadPoolExecutor(max_workers=CHECK_WORKERS, thread_name_prefix="check")
        if settings.check_concurrency
        else None
    )
    service = PreflightService(
        configurations=CompanyConfigurations(settings),
        credentials=credentials,
        hand_off=queues,
        pleo_http=new_client(settings.base_url(settings.pleo_api_base_url), timeout_seconds=timeout),
        pleo_oauth=(tokens, pleo_token_endpoint),
        connectors=connectors,
        executor=check_pool,
    )
    record_workers = settings.max_parallel_records if settings.check_concurrency else 1
    return Runtime(
        settings=settings,
        service=service,
        queues=queues,
        record_pool=ThreadPoolExecutor(max_workers=record_workers, thread_name_prefix="record"),
    )


def parse_message(body: str | None, *, max_bytes: int) -> ClaimedJobMessage:
    """Validate a claimed-jobs message; anything else raises ``UnprocessableMessage``."""
    if body is None or not body.strip():
        raise UnprocessableMessage("message body is empty", kind="malformed_message")
    size = len(body.encode())
    if size > max_bytes:
        raise UnprocessableMessage(f"message body is {size} bytes, more than {max_bytes}", kind="malformed_message")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise UnprocessableMessage(f"message body is not JSON ({error.msg})", kind="malformed_message") from None
    if not isinstance(document, dict):
        raise UnprocessableMessage("message body is not a JSON object", kind="malformed_message")
    try:
        return ClaimedJobMessage.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UnprocessableMessage(f"message is not a claimed job ({problems})", kind="malformed_message") from None
