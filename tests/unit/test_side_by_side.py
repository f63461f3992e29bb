"""``concurrency.side_by_side``: independent reads at once, their results (and their first
error) as if they had run one after the other; and the connectors' read pool."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from export_preflight import process
from export_preflight.concurrency import side_by_side
from export_preflight.connectors.base import read_pool

ASKED_BY: contextvars.ContextVar[str] = contextvars.ContextVar("asked_by", default="nobody")


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def test_results_come_in_the_order_of_the_reads(pool):
    def answer(value: int, delay: float):  # type: ignore[no-untyped-def]
        return lambda: (time.sleep(delay), value)[1]

    assert side_by_side(answer(1, 0.05), answer(2, 0.0), answer(3, 0.02), pool=pool) == [1, 2, 3]


def test_the_reads_are_in_flight_at_once(pool):
    barrier = threading.Barrier(3, timeout=2)  # one after the other, it breaks
    assert side_by_side(*(lambda: barrier.wait() >= 0 for _ in range(3)), pool=pool) == [True, True, True]


def test_the_first_error_in_order_is_raised_once_every_read_has_ended(pool):
    ended = threading.Event()

    def fine() -> str:
        return "fine"

    def refused() -> str:
        raise LookupError("the second read")

    def slow_failure() -> str:
        try:
            time.sleep(0.1)
            raise ValueError("the third read")
        finally:
            ended.set()

    with pytest.raises(LookupError, match="the second read"):
        side_by_side(fine, refused, slow_failure, pool=pool)
    assert ended.is_set()


def test_the_first_reads_error_wins_even_when_it_ends_last(pool):
    def slow_failure() -> str:
        time.sleep(0.05)
        raise LookupError("the first read")

    def quick_failure() -> str:
        raise ValueError("the second read")

    with pytest.raises(LookupError, match="the first read"):
        side_by_side(slow_failure, quick_failure, pool=pool)


def test_each_read_sees_the_callers_context(pool):
    """Log keys and the like travel with the reads into the pool's threads."""
    ASKED_BY.set("the permissions check")
    assert side_by_side(ASKED_BY.get, ASKED_BY.get, ASKED_BY.get, pool=pool) == ["the permissions check"] * 3


def test_without_a_pool_the_reads_run_here_in_order_and_stop_at_the_first_error():
    caller, ran = threading.current_thread(), []

    def read(n: int):  # type: ignore[no-untyped-def]
        def run() -> threading.Thread:
            ran.append(n)
            if n == 2:
                raise LookupError("the second read")
            return threading.current_thread()

        return run

    assert side_by_side(read(1), pool=None) == [caller]
    with pytest.raises(LookupError):
        side_by_side(read(1), read(2), read(3), pool=None)
    assert ran == [1, 1, 2]  # the third never started, as one after the other


def test_one_read_runs_without_the_pool(pool):
    assert side_by_side(pool=pool) == []
    assert side_by_side(threading.current_thread, pool=pool) == [threading.current_thread()]


def test_connectors_read_one_at_a_time_when_check_concurrency_is_off(monkeypatch):
    """``CHECK_CONCURRENCY=false``, the naive baseline: checks, records and reads one at a time."""
    process.reset()
    try:
        assert read_pool() is not None
        monkeypatch.setenv("CHECK_CONCURRENCY", "false")
        process.reset()
        assert read_pool() is None
    finally:
        monkeypatch.undo()
        process.reset()
