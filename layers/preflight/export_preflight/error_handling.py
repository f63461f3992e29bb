"""What becomes of a claimed-jobs message when deciding it raised: the handler's one
policy, as a pure function (no AWS, no logging): dead-letter it at once, or retry it
after a delay, and how loudly to say so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .errors import DecisionBusy, TransientError, UnprocessableMessage

RetryDelay = Callable[[int, float | None], int]


@dataclass(frozen=True)
class ErrorHandling:
    """``dead_letter``: move the body to the DLQ with ``kind``/``reason`` and succeed the record;
    ``retry``: make it visible again in ``delay_seconds`` and report it failed."""

    action: Literal["dead_letter", "retry"]
    log_level: Literal["info", "warning", "error"]
    log_message: str
    delay_seconds: int = 0
    kind: str = ""
    reason: str = ""
    metric: str | None = None
    traceback: bool = False
    # The remote system at fault (``TransientRetry``'s dimension): "pleo", "aws", an
    # accounting system id, or "ours".
    remote: str = "ours"


def error_handling_of(error: Exception, *, receive_count: int, retry_delay: RetryDelay) -> ErrorHandling:
    """How a record whose decision raised ``error`` on delivery ``receive_count`` is handled."""
    if isinstance(error, UnprocessableMessage):
        return ErrorHandling(
            "dead_letter",
            "error",
            "message moved to the dead-letter queue",
            kind=error.kind,
            reason=error.reason,
            metric="MalformedMessage" if error.kind == "malformed_message" else None,
        )
    if isinstance(error, TransientError):
        return ErrorHandling(
            "retry",
            "warning",
            "transient trouble; the message will be retried",
            delay_seconds=retry_delay(receive_count, error.retry_after),
            metric="TransientRetry",
            remote=error.remote or "ours",
        )
    if isinstance(error, DecisionBusy):
        # A concurrent duplicate: the delivery acting on the job's decision finishes it; this
        # one comes back when that delivery has finished (then it finds the decision) or ended.
        return ErrorHandling(
            "retry",
            "info",
            "the same job is being decided by another delivery; retrying later",
            delay_seconds=retry_delay(1, error.retry_after),
        )
    # Nobody planned for this: say so loudly, count it (alarm), back off like transient trouble.
    return ErrorHandling(
        "retry",
        "error",
        "unexpected error; the message will be retried",
        delay_seconds=retry_delay(receive_count, None),
        metric="UnexpectedError",
        traceback=True,
    )
