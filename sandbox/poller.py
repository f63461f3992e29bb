"""A bounded local stand-in for Lambda's SQS event source mapping, with the mapping's own
settings from template.yaml (``sandbox.stack.EventSource``).

It receives a batch of up to ``BatchSize`` records (more receives while messages keep coming,
within ``MaximumBatchingWindowInSeconds``: locally it never waits on an empty queue), invokes
the handler with a Lambda-shaped SQS event and a context of the template's function (its
timeout), deletes the records the handler did not report as failures when the mapping has
``ReportBatchItemFailures`` (without it, all of a successful invocation's records), and leaves
failures to become visible again; the queue's redrive policy (enforced by moto) moves a message
to the DLQ after ``maxReceiveCount`` receives. One invocation at a time: always within the
mapping's ``MaximumConcurrency``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .lambda_context import LocalLambdaContext
from .stack import EventSource, LocalFunction

SQS_RECEIVE_MAX = 10  # SQS ReceiveMessage returns at most 10 messages per call

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class PollReport:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failures: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class LocalPoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        source: EventSource,
        function: LocalFunction,
        timeout_ms: int | None = None,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self.source = source
        self.function = function
        self._timeout_ms = timeout_ms

    def poll_once(self, *, max_messages: int | None = None, wait_seconds: int = 0) -> PollReport:
        """One batch (up to the mapping's ``BatchSize``, or ``max_messages``) and, if anything
        arrived, one invocation."""
        report = PollReport()
        wanted = min(max_messages or self.source.batch_size, self.source.batch_size)
        received = self._receive(wanted, wait_seconds)
        if not received:
            return report
        event = {"Records": [self._record(m) for m in received]}
        try:
            response = self._handler(event, LocalLambdaContext.of(self.function, self._timeout_ms))
            reported = (response or {}).get("batchItemFailures", []) if self.source.report_batch_item_failures else []
            failed = {item["itemIdentifier"] for item in reported}
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

    def _receive(self, wanted: int, wait_seconds: int) -> list[dict[str, Any]]:
        """Up to ``wanted`` messages: receives of at most 10 until the batch is full, a receive
        comes back empty, or the mapping's batching window has passed."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.source.batching_window_seconds
        while len(received) < wanted:
            got = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, wanted - len(received)),
                WaitTimeSeconds=wait_seconds if not received else 0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            received += got
            if not got or time.monotonic() >= deadline:
                break
        return received

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
            "awsRegion": self._queue_arn.split(":")[3],
        }
