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

    def claim(self, decision: Decision, *, rerun: str | None) -> RecordedDecision | None:
        """Record ``decision`` as being acted on, with the re-run token it is made under (its
        hand-off's deduplication id), unless the job has a record already: then that record
        is returned instead."""
        now = time.time()
        item = {
            "jobId": {"S": str(decision.job_id)},
            "decision": {"S": decision.model_dump_json()},
            "state": {"S": "acting"},
            "claimedAt": {"N": repr(now)},
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
            return RecordedDecision(
                Decision.model_validate_json(old["decision"]["S"]),
                old["state"]["S"],
                float(old["claimedAt"]["N"]),
                old.get("rerun", {}).get("S") or None,
            )
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the job decisions table", error) from None
        return None

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
