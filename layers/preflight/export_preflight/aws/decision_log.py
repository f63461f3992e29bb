"""The job decision log (``ports.DecisionLog``) in the job decisions table."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsUnavailable, DecisionInFlight
from ..models import Decision
from ..observability import logger
from ..ports import RecordedDecision
from ..settings import Settings
from .clients import CLIENTS
from .errors import error_code, unavailable


class DynamoDBDecisionLog:
    """``DecisionLog`` (see ports.py) in the job decisions table: one item per job, kept
    for ``decision_retention_seconds`` (longer than a message can live, DLQ included)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

    def claim(self, decision: Decision, *, rerun: str | None, busy_until: float) -> RecordedDecision | None:
        """Record ``decision`` as being acted on by this delivery until ``busy_until`` (its
        invocation's end), with the re-run token it is made under (its hand-off's deduplication
        id), unless the job has a record already: then that record is returned instead."""
        now = time.time()
        item = {
            "jobId": {"S": str(decision.job_id)},
            "decision": {"S": decision.model_dump_json()},
            "state": {"S": "acting"},
            "claimedAt": {"N": repr(now)},
            "busyUntil": {"N": repr(busy_until)},
            "expiresAt": {"N": str(int(now) + self._settings.decision_retention_seconds)},
        }
        if rerun:
            item["rerun"] = {"S": rerun}
        try:
            self._dynamodb.put_item(
                TableName=self._settings.decisions_table,
                Item=item,
                ConditionExpression="attribute_not_exists(jobId) OR #state = :released",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":released": {"S": "released"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise unavailable("DynamoDB PutItem on the job decisions table", error) from None
            old = error.response.get("Item") or self._get(str(decision.job_id))
            if old is None:  # removed between our write and our read (a re-run): try again later
                raise AwsUnavailable("the job's decision record changed while it was being claimed") from None
            return _recorded(old)
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the job decisions table", error) from None
        return None

    def take_over(self, job_id: str, *, seen: RecordedDecision, busy_until: float) -> bool:
        """Become the delivery acting on the job's ``acting`` record ``seen`` (its acting
        delivery ended: ``seen.busy_until`` has passed, or it freed the record), until
        ``busy_until``. False when another delivery took it over first (or it was settled)."""
        try:
            self._dynamodb.update_item(
                TableName=self._settings.decisions_table,
                Key={"jobId": {"S": job_id}},
                UpdateExpression="SET busyUntil = :mine",
                ConditionExpression="#state = :acting AND claimedAt = :claimed AND "
                "(attribute_not_exists(busyUntil) OR busyUntil = :seen)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":mine": {"N": repr(busy_until)},
                    ":acting": {"S": "acting"},
                    ":claimed": {"N": repr(seen.claimed_at)},
                    ":seen": {"N": repr(seen.busy_until)},
                },
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise unavailable("DynamoDB UpdateItem on the job decisions table", error) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB UpdateItem on the job decisions table", error) from None
        return True

    def free(self, job_id: str, *, busy_until: float) -> None:
        """This delivery stops acting on the job's record (it raised before finishing): the next
        delivery may finish it at once instead of waiting for ``busy_until``. Best effort, and
        only while the record is still this delivery's (``busyUntil`` unchanged)."""
        try:
            self._dynamodb.update_item(
                TableName=self._settings.decisions_table,
                Key={"jobId": {"S": job_id}},
                UpdateExpression="SET busyUntil = :free",
                ConditionExpression="#state = :acting AND busyUntil = :mine",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":free": {"N": "0"},
                    ":acting": {"S": "acting"},
                    ":mine": {"N": repr(busy_until)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            logger.info("could not free a job's decision record", extra={"error": str(error)})

    def settled(self, job_id: str) -> RecordedDecision | None:
        """The job's record if its decision was acted on (state ``done``): a later delivery
        returns it without deciding again. None otherwise."""
        item = self._get(job_id)
        if item is None or item.get("state", {}).get("S") != "done":
            return None
        return _recorded(item)

    def settle(self, job_id: str) -> None:
        """The decision was acted on."""
        self._update(job_id, "SET #state = :done", {":done": {"S": "done"}})

    def release(self, job_id: str) -> None:
        """The action certainly did not happen: the next delivery decides afresh. (An update,
        not a delete: the function may not delete decision records.)"""
        try:
            self._dynamodb.update_item(
                TableName=self._settings.decisions_table,
                Key={"jobId": {"S": job_id}},
                UpdateExpression="SET #state = :released",
                ConditionExpression="#state = :acting",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":acting": {"S": "acting"}, ":released": {"S": "released"}},
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("could not release a job's decision record", extra={"error": str(error)})

    def forget(self, job_id: str, *, in_flight_seconds: float) -> None:
        """Remove the job's record (the re-run path; operators only). A conditional delete:
        a record still ``acting`` and claimed less than ``in_flight_seconds`` ago stays (a
        delivery may yet finish it) and ``DecisionInFlight`` is raised."""
        now = time.time()
        try:
            self._dynamodb.delete_item(
                TableName=self._settings.decisions_table,
                Key={"jobId": {"S": job_id}},
                ConditionExpression="attribute_not_exists(jobId) OR #state <> :acting OR claimedAt < :cutoff",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":acting": {"S": "acting"},
                    ":cutoff": {"N": repr(now - in_flight_seconds)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise unavailable("DynamoDB DeleteItem on the job decisions table", error) from None
            old = error.response.get("Item") or self._get(job_id) or {}
            outcome = Decision.model_validate_json(old["decision"]["S"]).outcome if "decision" in old else "unknown"
            age = now - float(old.get("claimedAt", {}).get("N", now))
            raise DecisionInFlight(job_id, outcome, age, in_flight_seconds - age) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB DeleteItem on the job decisions table", error) from None

    def recorded(self, job_id: str) -> Decision | None:
        """The job's recorded decision, if any (the CLI's ``rerun``)."""
        item = self._get(job_id)
        return Decision.model_validate_json(item["decision"]["S"]) if item else None

    def _get(self, job_id: str) -> dict[str, Any] | None:
        try:
            found = self._dynamodb.get_item(
                TableName=self._settings.decisions_table, Key={"jobId": {"S": job_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB GetItem on the job decisions table", error) from None
        item: dict[str, Any] | None = found.get("Item")
        return item

    def _update(self, job_id: str, expression: str, values: dict[str, Any]) -> None:
        try:
            self._dynamodb.update_item(
                TableName=self._settings.decisions_table,
                Key={"jobId": {"S": job_id}},
                UpdateExpression=expression,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
            )
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB UpdateItem on the job decisions table", error) from None


def _recorded(item: dict[str, Any]) -> RecordedDecision:
    return RecordedDecision(
        Decision.model_validate_json(item["decision"]["S"]),
        item["state"]["S"],
        float(item["claimedAt"]["N"]),
        item.get("rerun", {}).get("S") or None,
        # Records written before busyUntil existed: their delivery has long ended.
        float(item.get("busyUntil", {}).get("N", "0")),
    )
