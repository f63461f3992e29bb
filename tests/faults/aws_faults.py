"""Faults at the AWS SDK boundary, in the test process.

moto answers every call it understands; it cannot throttle, time out or drop a
connection. The handler runs in this process, so its boto3 clients go through
``botocore.client.BaseClient._make_api_call``: wrapping that method lets a test make
the next N calls of one operation (optionally narrowed by its parameters) fail the
way the SDK would report it after its own retries gave up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

Params = Mapping[str, Any]

# What each kind of trouble looks like when it comes out of botocore.
ERRORS: dict[str, Callable[[str], Exception]] = {
    "throttled": lambda op: ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        op,
    ),
    "5xx": lambda op: ClientError(
        {
            "Error": {"Code": "InternalServerError", "Message": "We encountered an internal error"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        op,
    ),
    "timeout": lambda op: ReadTimeoutError(endpoint_url="https://aws.invalid/"),
    "connection": lambda op: EndpointConnectionError(endpoint_url="https://aws.invalid/"),
    # The call reached AWS and took effect, but the answer never came back.
    "applied-then-timeout": lambda op: ReadTimeoutError(endpoint_url="https://aws.invalid/"),
    # A refusal retrying cannot change (e.g. PutSecretValue on a secret without the tag our
    # role's policy asks for).
    "access-denied": lambda op: ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform this operation"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        op,
    ),
    "not-found": lambda op: ClientError(
        {
            "Error": {
                "Code": "ResourceNotFoundException",
                "Message": "Secrets Manager can't find the specified secret.",
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        op,
    ),
}


@dataclass
class AwsFault:
    operation: str
    kind: str
    times: int | None
    when: Callable[[Params], bool] | None
    hits: int = 0

    def matches(self, operation: str, params: Params) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return operation == self.operation and (self.when is None or self.when(params))


class AwsFaults:
    """``inject("GetSecretValue", "throttled", times=1, when=lambda p: p["SecretId"] == ...)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[AwsFault] = []
        self.calls: list[tuple[str, Params]] = []  # every call made while installed (operation, params)

    def inject(
        self, operation: str, kind: str, *, times: int | None = 1, when: Callable[[Params], bool] | None = None
    ) -> AwsFault:
        if kind not in ERRORS:
            raise ValueError(f"unknown AWS fault kind {kind!r}; use one of {sorted(ERRORS)}")
        fault = AwsFault(operation, kind, times, when)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.calls.clear()

    def made(self, operation: str, when: Callable[[Params], bool] | None = None) -> int:
        """How many ``operation`` calls (narrowed by ``when``) the code under test made."""
        with self._lock:
            return sum(1 for op, params in self.calls if op == operation and (when is None or when(params)))

    def _take(self, operation: str, params: Params) -> AwsFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(operation, params):
                    fault.hits += 1
                    return fault
        return None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap the SDK's call path for the rest of the test (``monkeypatch`` undoes it)."""
        original = BaseClient._make_api_call
        faults = self

        def _make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            with faults._lock:
                faults.calls.append((operation_name, dict(api_params)))
            fault = faults._take(operation_name, api_params)
            if fault is None:
                return original(client, operation_name, api_params)
            if fault.kind == "applied-then-timeout":
                original(client, operation_name, api_params)
            raise ERRORS[fault.kind](operation_name)

        monkeypatch.setattr(BaseClient, "_make_api_call", _make_api_call)


# One per process, like the sandbox; the fixture installs and clears it for every test.
AWS_FAULTS = AwsFaults()
