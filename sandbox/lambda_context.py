"""A stand-in for the Lambda context object (the attributes Powertools reads)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stack import LocalFunction


@dataclass
class LocalLambdaContext:
    timeout_ms: int = 30_000
    function_name: str = "export-preflight-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:export-preflight-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, function: LocalFunction, timeout_ms: int | None = None) -> LocalLambdaContext:
        """The context of one invocation of a local stack's function (its name, memory and timeout)."""
        from .stack import ACCOUNT_ID, REGION

        return cls(
            timeout_ms=function.timeout_seconds * 1000 if timeout_ms is None else timeout_ms,
            function_name=function.name,
            memory_limit_in_mb=function.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function.name}",
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self._started) * 1000))
