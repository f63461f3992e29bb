"""The process's boto3 clients: one per AWS service, shared by every adapter and thread, and
short-timeout single-attempt twins for calls made under a credential lease."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from ..oauth import AWS_CALL_SECONDS
from ..process import PROCESS

# Standard retry mode backs off on throttling inside the SDK; what is left is ours to retry.
# One client per service serves every thread: with botocore's 10 connections, a batch of ten
# jobs (three AWS calls in flight per job at times) made connections beyond the pool and
# dropped them after one call, each a new TLS handshake on AWS. As many as the check pool.
BOTO_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},  # the first attempt and up to 3 retries
    connect_timeout=3,
    read_timeout=5,
    max_pool_connections=64,
)
# The hand-off is sent once per call, without the SDK's retries: after an attempt that timed
# out (SQS may have taken the message) a retried attempt SQS refuses would look like "certainly
# not sent". Our own retry (the next delivery) re-sends under the same deduplication id.
# (botocore's ``max_attempts`` counts retries after the first attempt; ``total_max_attempts``
# counts every attempt: 1 is the first and only one.)
SINGLE_ATTEMPT_CONFIG = BOTO_CONFIG.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))


class AwsClients:
    """One boto3 client per AWS service, built on first use from one session, under a lock.

    boto3 clients are thread-safe; building one costs tens of milliseconds of CPU and a few
    megabytes. Without the lock, the ten record threads of a first batch each built their
    own (39 clients in one batch). Keyed by endpoint too, so a changed ``AWS_ENDPOINT_URL``
    (the local world) gets its own clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str | None], Any] = {}
        self._session: boto3.session.Session | None = None

    def client(self, service: str, *, single_attempt: bool = False) -> Any:
        """The service's client; ``single_attempt``: its twin without the SDK's retries."""
        if single_attempt:
            return self._once(
                f"{service}/single-attempt", lambda session: session.client(service, config=SINGLE_ATTEMPT_CONFIG)
            )
        return self._once(service, lambda session: session.client(service, config=BOTO_CONFIG))

    def build_soon(self, *services: str, single_attempt: bool = False) -> None:
        """Build these clients in a background thread: a cold start's first job waits on the
        network most of the time, and needs them only later (the hand-off's SQS client).
        A client that cannot be built here (no Region, say) is built again where it is used,
        which reports the error: nothing is printed from this thread."""

        def build() -> None:
            for service in services:
                try:
                    self.client(service, single_attempt=single_attempt)
                except Exception:  # reported where the client is used
                    return

        threading.Thread(target=build, name="aws-clients", daemon=True).start()

    def _once(self, name: str, build: Callable[[boto3.session.Session], Any]) -> Any:
        key = (name, os.environ.get("AWS_ENDPOINT_URL"))
        found = self._built.get(key)
        if found is None:
            with self._lock:
                found = self._built.get(key)
                if found is None:
                    if self._session is None:
                        self._session = boto3.session.Session()
                    found = self._built[key] = build(self._session)
        return found


class ProcessClients:
    """The process's ``AwsClients`` (held by ``process.PROCESS``: a new set after
    ``process.reset()``, as in a new container). Keeps nothing itself: what adapters and
    handlers call."""

    def client(self, service: str, *, single_attempt: bool = False) -> Any:
        return aws_clients().client(service, single_attempt=single_attempt)

    def build_soon(self, *services: str, single_attempt: bool = False) -> None:
        aws_clients().build_soon(*services, single_attempt=single_attempt)


def aws_clients() -> AwsClients:
    """The process's one ``AwsClients`` (built on first use)."""
    return PROCESS.once("aws/clients", AwsClients)


# The process's clients (the runtime and the handler module share them).
CLIENTS = ProcessClients()

# Calls made while a credential lease is held (the lease, the token journal and its KMS key,
# the token store's writes): one attempt with short timeouts, so each ends within
# ``oauth.AWS_CALL_SECONDS`` and every holder stays inside its lease (see oauth.py).
TOKEN_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},  # ("max_attempts" counts retries only)
    connect_timeout=1,
    read_timeout=2,
    max_pool_connections=64,
)
assert TOKEN_CLIENT_CONFIG.connect_timeout + TOKEN_CLIENT_CONFIG.read_timeout <= AWS_CALL_SECONDS


def token_client(service: str) -> Any:
    """The process's client of ``service`` for calls under a credential lease (``TOKEN_CLIENT_CONFIG``)."""
    return aws_clients()._once(f"{service}/token", lambda session: session.client(service, config=TOKEN_CLIENT_CONFIG))
