"""The current invocation's deadline, for work that must not start without time to finish
(an OAuth refresh). Set by the handler at the start of each invocation."""

from __future__ import annotations

import math
import time


class InvocationDeadline:
    """Seconds left in the current invocation (infinite outside Lambda)."""

    def __init__(self) -> None:
        self._ends_at = math.inf

    def start(self, remaining_ms: int) -> None:
        self._ends_at = time.monotonic() + remaining_ms / 1000

    def seconds_left(self) -> float:
        return self._ends_at - time.monotonic()
