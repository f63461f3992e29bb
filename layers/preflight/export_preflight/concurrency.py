"""Independent reads side by side: reads that need nothing of each other, started at once
(the service's Pleo job and accounting connection, a connector's permission probes)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Executor, wait
from typing import TypeVar

T = TypeVar("T")


def side_by_side(*reads: Callable[[], T], pool: Executor | None) -> list[T]:
    """Call independent reads and return their results in order: the first in this thread,
    the others in ``pool`` (without a pool, all here, one after the other). When reads raise,
    the first in order is raised once every read has ended: the outcome of running them one
    after the other, with nothing left running."""
    if pool is None or len(reads) < 2:
        return [read() for read in reads]
    others = [pool.submit(contextvars.copy_context().run, read) for read in reads[1:]]
    try:
        first = reads[0]()
    finally:
        wait(others)
    return [first, *(other.result() for other in others)]
