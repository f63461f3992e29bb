"""The sample events in events/ are Lambda-shaped SQS events our parser understands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import SQSEvent

from export_preflight.errors import UnprocessableMessage
from export_preflight.messages import parse_message

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> SQSEvent:
    return SQSEvent(json.loads((EVENTS / name).read_text()))


def test_a_claimed_job_event_parses():
    (record,) = load("claimed-job.json").records
    assert str(parse_message(record.body, max_bytes=16384).job_id) == "9a3c2f1e-5b7d-4c8a-9e6f-0123456789ab"


def test_the_last_attempt_event_carries_the_receive_count():
    (record,) = load("claimed-job-last-attempt.json").records
    assert record.attributes.approximate_receive_count == "5"


def test_the_mixed_batch_has_one_good_and_three_malformed_messages():
    records = list(load("batch-with-malformed.json").records)
    parse_message(records[0].body, max_bytes=16384)
    for record in records[1:]:
        with pytest.raises(UnprocessableMessage):
            parse_message(record.body, max_bytes=16384)
