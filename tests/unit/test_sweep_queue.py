"""The sweep's fan-out onto the readiness queue: ten per call, entries SQS refused are
tried once more, and those still refused are logged by company (never silently lost)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from export_preflight.aws import Queues
from export_preflight.errors import AwsUnavailable
from export_preflight.settings import Settings

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/readiness"


@pytest.fixture
def queues(monkeypatch):
    queues = Queues(Settings(readiness_queue_url=QUEUE))
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(Queues, "_sqs", property(lambda self: client))  # the shared client, stubbed
    with Stubber(client) as stubber:
        yield queues, stubber


def bodies(count: int) -> list[tuple[dict[str, object], int]]:
    return [({"companyId": f"company-{i}"}, i * 10) for i in range(count)]


def test_companies_go_out_ten_per_call_with_their_delays(queues):
    queues, stubber = queues
    for start, size in ((0, 10), (10, 2)):
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps({"companyId": f"company-{start + i}"}),
                "DelaySeconds": (start + i) * 10,
            }
            for i in range(size)
        ]
        stubber.add_response(
            "send_message_batch",
            {"Successful": [{"Id": e["Id"], "MessageId": "m", "MD5OfMessageBody": "x"} for e in entries], "Failed": []},
            {"QueueUrl": QUEUE, "Entries": entries},
        )

    assert queues.send_readiness(bodies(12)) == 12
    stubber.assert_no_pending_responses()


def test_refused_entries_are_retried_once_then_logged_by_company(queues, caplog):
    queues, stubber = queues
    refused = {"Id": "1", "SenderFault": False, "Code": "InternalError"}
    stubber.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}], "Failed": [refused]},
    )
    stubber.add_response("send_message_batch", {"Successful": [], "Failed": [refused]})

    assert queues.send_readiness(bodies(2)) == 1

    (record,) = [r for r in caplog.records if "next sweep" in r.getMessage()]
    assert (record.levelname, record.companies) == ("ERROR", ["company-1"])


def test_sqs_failing_twice_raises_so_the_schedule_retries(queues):
    queues, stubber = queues
    stubber.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)
    stubber.add_client_error("send_message_batch", "ServiceUnavailable", http_status_code=503)

    with pytest.raises(AwsUnavailable):
        queues.send_readiness(bodies(1))
