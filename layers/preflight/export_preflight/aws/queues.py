"""The queues: the ready-jobs hand-off (``ports.HandOff``), dead letters, redelivery delays,
the claimed-jobs queue (re-runs) and the readiness queue (the sweep)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import HandOffNotSent
from ..observability import logger
from ..sanitize import sqs_attribute_text
from ..settings import Settings
from .clients import CLIENTS
from .errors import unavailable


class Queues:
    """Sends to the ready-jobs queue (hand-off), the DLQs (rejects), the claimed-jobs queue
    (re-runs) and the readiness queue (the sweep)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _sqs(self) -> Any:
        return CLIENTS.client("sqs")

    def hand_off(self, payload: dict[str, Any], *, deduplication_id: str) -> str:
        """Put a passed job on the ready-jobs FIFO queue; returns the SQS message id.

        Deduplicated by ``deduplication_id`` (the job id; a decision retried after an unclear
        send hands off once within SQS's 5-minute window) and grouped by company (one
        company's jobs in order). One attempt, without the SDK's retries (``SINGLE_ATTEMPT_CONFIG``).
        Raises ``HandOffNotSent`` only when SQS refused that attempt with an error answer
        (4xx: nothing was enqueued), ``AwsUnavailable`` when the outcome is unknown (a timeout,
        a dropped connection, a 5xx: SQS may have taken the message).
        """
        try:
            response = CLIENTS.client("sqs", single_attempt=True).send_message(
                QueueUrl=self._settings.ready_jobs_queue_url,
                MessageBody=json.dumps(payload),
                MessageAttributes={"jobId": {"DataType": "String", "StringValue": str(payload["jobId"])}},
                MessageGroupId=str(payload["companyId"]),
                MessageDeduplicationId=deduplication_id,
            )
        except ClientError as error:
            if int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500) >= 500:
                raise unavailable("SQS SendMessage", error) from None  # SQS's own trouble: outcome unknown
            raise HandOffNotSent(str(unavailable("SQS SendMessage", error))) from None
        except BotoCoreError as error:
            raise unavailable("SQS SendMessage", error) from None
        return str(response["MessageId"])

    def dead_letter(self, body: str, *, kind: str, reason: str, dlq_url: str | None = None) -> str:
        """Move an unprocessable message to the DLQ (the claimed-jobs DLQ unless ``dlq_url``
        says otherwise), with why, without burning retries. The attributes carry only
        characters SQS accepts, at most 256 of them (``sqs_attribute_text``)."""
        return self._send(
            dlq_url or self._settings.claimed_jobs_dlq_url,
            body,
            {"rejectKind": sqs_attribute_text(kind), "rejectReason": sqs_attribute_text(reason)},
        )

    def delay_redelivery(self, receipt_handle: str, seconds: int, *, queue_url: str | None = None) -> None:
        """Back off: the message (of the claimed-jobs queue unless ``queue_url`` says
        otherwise) becomes visible again in ``seconds``."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=queue_url or self._settings.claimed_jobs_queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=seconds,
            )
        except (ClientError, BotoCoreError) as error:
            # The queue's own visibility timeout still brings the message back: log, go on.
            logger.warning("could not change the message visibility", extra={"error": str(unavailable("SQS", error))})

    def send_claimed(self, body: dict[str, Any]) -> str:
        """Put a message on the claimed-jobs queue (the re-run path)."""
        return self._send(self._settings.claimed_jobs_queue_url, json.dumps(body), {})

    def send_readiness(self, bodies: list[tuple[dict[str, Any], int]]) -> int:
        """Put (body, delay seconds) messages on the readiness queue, ten per call; returns
        how many SQS took. Entries SQS refused are tried once more, then logged."""
        sent = 0
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(body), "DelaySeconds": delay}
                for i, (body, delay) in enumerate(bodies[start : start + 10])
            ]
            for attempt in (1, 2):
                try:
                    answer = self._sqs.send_message_batch(QueueUrl=self._settings.readiness_queue_url, Entries=entries)
                except (ClientError, BotoCoreError) as error:
                    if attempt == 2:
                        raise unavailable("SQS SendMessageBatch on the readiness queue", error) from None
                    continue
                sent += len(answer.get("Successful", []))
                failed = {f["Id"] for f in answer.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
            if entries:
                logger.error(
                    "SQS refused readiness messages; those companies wait for the next sweep",
                    extra={"companies": [json.loads(str(e["MessageBody"]))["companyId"] for e in entries]},
                )
        return sent

    def _send(self, queue_url: str, body: str, attributes: dict[str, str]) -> str:
        try:
            response = self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        except (ClientError, BotoCoreError) as error:
            raise unavailable("SQS SendMessage", error) from None
        return str(response["MessageId"])
