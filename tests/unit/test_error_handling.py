"""The handler's exception -> error-handling policy (dead-letter or retry), as a pure function."""

from __future__ import annotations

import pytest

from export_preflight.error_handling import error_handling_of
from export_preflight.errors import AccountingSystemUnavailable, AwsUnavailable, DecisionBusy, UnprocessableMessage
from export_preflight.settings import Settings

DELAY = Settings(retry_backoff_base_seconds=15, retry_backoff_max_seconds=240).retry_delay


def test_an_unprocessable_message_goes_to_the_dlq_with_its_kind_and_reason():
    handling = error_handling_of(
        UnprocessableMessage("no configuration", kind="unknown_company"), receive_count=3, retry_delay=DELAY
    )
    assert (handling.action, handling.kind, handling.reason, handling.log_level) == (
        "dead_letter",
        "unknown_company",
        "no configuration",
        "error",
    )
    assert handling.metric is None


def test_a_malformed_message_is_counted_as_such():
    handling = error_handling_of(
        UnprocessableMessage("not JSON", kind="malformed_message"), receive_count=1, retry_delay=DELAY
    )
    assert handling.metric == "MalformedMessage"


@pytest.mark.parametrize(("receive_count", "delay"), [(1, 15), (2, 30), (4, 120), (9, 240)])
def test_transient_trouble_backs_off_exponentially(receive_count, delay):
    handling = error_handling_of(AwsUnavailable("throttled"), receive_count=receive_count, retry_delay=DELAY)
    assert (handling.action, handling.delay_seconds, handling.metric, handling.log_level) == (
        "retry",
        delay,
        "TransientRetry",
        "warning",
    )


def test_a_remote_retry_after_that_asks_for_longer_is_honoured():
    error = AccountingSystemUnavailable("429", retry_after=100)
    assert error_handling_of(error, receive_count=1, retry_delay=DELAY).delay_seconds == 100


def test_a_decision_record_store_failure_is_retried_with_backoff():
    handling = error_handling_of(AwsUnavailable("PutItem throttled"), receive_count=2, retry_delay=DELAY)
    assert (handling.action, handling.delay_seconds, handling.metric) == ("retry", 30, "TransientRetry")


def test_a_delivery_racing_another_of_the_same_job_comes_back_soon_and_quietly():
    handling = error_handling_of(DecisionBusy("job", 3.0), receive_count=4, retry_delay=DELAY)
    assert (handling.action, handling.delay_seconds, handling.metric, handling.log_level) == ("retry", 15, None, "info")


def test_a_racing_delivery_waits_at_least_until_the_acting_one_has_ended():
    handling = error_handling_of(DecisionBusy("job", 25.5), receive_count=1, retry_delay=DELAY)
    assert handling.delay_seconds == 26


@pytest.mark.parametrize("error", [ZeroDivisionError("bug"), RecursionError("deep"), KeyError("x")])
def test_anything_unexpected_is_loud_counted_and_backed_off(error):
    handling = error_handling_of(error, receive_count=2, retry_delay=DELAY)
    assert (handling.action, handling.log_level, handling.metric, handling.traceback) == (
        "retry",
        "error",
        "UnexpectedError",
        True,
    )
    assert handling.delay_seconds == 30
