"""The connector kit's ``side_by_side``: independent reads of one check at once, their
results (and their first error) as if they had run one after the other."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from export_preflight.connectors.base import side_by_side

ASKED_BY: contextvars.ContextVar[str] = contextvars.ContextVar("asked_by", default="nobody")


def test_results_come_in_the_order_of_the_reads():
    def answer(value: int, delay: float):  # type: ignore[no-untyped-def]
        return lambda: (time.sleep(delay), value)[1]

    assert side_by_side(answer(1, 0.05), answer(2, 0.0), answer(3, 0.02)) == [1, 2, 3]


def test_the_reads_are_in_flight_at_once():
    barrier = threading.Barrier(3, timeout=2)  # one after the other, it breaks
    assert side_by_side(*(lambda: barrier.wait() >= 0 for _ in range(3))) == [True, True, True]


def test_the_first_error_in_order_is_raised_once_every_read_has_ended():
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
        side_by_side(fine, refused, slow_failure)
    assert ended.is_set()


def test_the_first_reads_error_wins_even_when_it_ends_last():
    def slow_failure() -> str:
        time.sleep(0.05)
        raise LookupError("the first read")

    def quick_failure() -> str:
        raise ValueError("the second read")

    with pytest.raises(LookupError, match="the first read"):
        side_by_side(slow_failure, quick_failure)


def test_each_read_sees_the_callers_context():
    """Log keys and the like travel with the reads into the pool's threads."""
    ASKED_BY.set("the permissions check")
    assert side_by_side(ASKED_BY.get, ASKED_BY.get, ASKED_BY.get) == ["the permissions check"] * 3


def test_no_read_or_one_read_runs_without_the_pool():
    caller = threading.current_thread()
    assert side_by_side() == []
    assert side_by_side(threading.current_thread) == [caller]
