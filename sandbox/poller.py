"""A bounded local stand-in for Lambda's SQS event source mapping.

It receives batches of up to 10 from the claimed-jobs queue, invokes the handler
with a Lambda-shaped SQS event, deletes the records the handler did not report as
failures (``ReportBatchItemFailures``), and leaves failures to become visible again;
the queue's redrive policy (enforced by moto) moves a message to the DLQ after
``maxReceiveCount`` receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class PollReport:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failures: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class LocalPoller:
    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, handler: Handler, *, timeout_ms: int = 30_000) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._timeout_ms = timeout_ms

    def poll_once(self, *, max_messages: int = 10, wait_seconds: int = 0) -> PollReport:
        """One receive and, if anything arrived, one invocation."""
        report = PollReport()
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return report
        event = {"Records": [self._record(m) for m in received]}
        try:
            response = self._handler(event, LocalLambdaContext(timeout_ms=self._timeout_ms))
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception:  # as Lambda does: an invocation error returns the whole batch
            failed = {m["MessageId"] for m in received}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        report.invocations, report.records = 1, len(received)
        report.deleted, report.failures = len(done), len(failed)
        report.batch_sizes.append(len(received))
        return report

    def drain(self, *, max_seconds: float = 60.0, idle_rounds: int = 3, pause: float = 0.2) -> PollReport:
        """Poll until the queue stays empty (including in-flight messages) or time runs out."""
        total = PollReport()
        deadline = time.monotonic() + max_seconds
        idle = 0
        while time.monotonic() < deadline:
            report = self.poll_once()
            total.invocations += report.invocations
            total.records += report.records
            total.deleted += report.deleted
            total.failures += report.failures
            total.batch_sizes += report.batch_sizes
            if report.records:
                idle = 0
                continue
            if self._queue_is_empty():
                idle += 1
                if idle >= idle_rounds:
                    break
            time.sleep(pause)
        return total

    def _queue_is_empty(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
            == 0
        )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": "eu-west-1",
        }
