"""Each company's last known readiness (``ports.ReadinessLog``) in the readiness table."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..models import Readiness
from ..settings import Settings
from .clients import CLIENTS
from .errors import error_code, unavailable


class DynamoDBReadinessLog:
    """``ReadinessLog`` (see ports.py) in the readiness table: one item per company, its
    last known readiness, kept for ``readiness_retention_seconds`` after the last check."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

    def record(self, readiness: Readiness) -> None:
        """Store the company's readiness unless a later check is recorded. ``checkedAt`` is the
        writer's clock: the service's (synchronised) or an operator's laptop (the CLI). A
        laptop clock running ahead must not make a record no sweep can replace, so a CLI
        record never outranks the service's own: any later write replaces it, whatever its
        ``checkedAt`` (the item's ``source`` says whose it is)."""
        checked_at = readiness.checked_at.timestamp()
        try:
            self._dynamodb.put_item(
                TableName=self._settings.readiness_table,
                Item={
                    "companyId": {"S": readiness.company_id},
                    "status": {"S": readiness.status},
                    "checkedAt": {"N": repr(checked_at)},
                    "source": {"S": readiness.source},
                    "readiness": {"S": readiness.model_dump_json()},
                    "expiresAt": {"N": str(int(checked_at) + self._settings.readiness_retention_seconds)},
                },
                ConditionExpression="attribute_not_exists(companyId) OR checkedAt <= :checked OR #source = :cli",
                ExpressionAttributeNames={"#source": "source"},
                ExpressionAttributeValues={":checked": {"N": repr(checked_at)}, ":cli": {"S": "cli"}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return  # a later check is recorded already
            raise unavailable("DynamoDB PutItem on the readiness table", error) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the readiness table", error) from None

    def all(self) -> list[Readiness]:
        """Every company's last known readiness (a paginated Scan)."""
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(TableName=self._settings.readiness_table)
            return [Readiness.model_validate_json(item["readiness"]["S"]) for page in pages for item in page["Items"]]
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB Scan on the readiness table", error) from None

    def last(self, company_id: str) -> Readiness | None:
        """The company's last recorded readiness (a consistent read), or None."""
        try:
            found = self._dynamodb.get_item(
                TableName=self._settings.readiness_table, Key={"companyId": {"S": company_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB GetItem on the readiness table", error) from None
        item = found.get("Item")
        return Readiness.model_validate_json(item["readiness"]["S"]) if item else None

    def forget(self, company_id: str, *, checked_before: float | None = None) -> bool:
        """Remove the company's record (its configuration is gone); with ``checked_before``,
        only a record checked before then (not one a check of a re-added company just wrote).
        True when a record was removed."""
        condition: dict[str, Any] = {}
        if checked_before is not None:
            condition = {
                "ConditionExpression": "checkedAt < :before",
                "ExpressionAttributeValues": {":before": {"N": repr(checked_before)}},
            }
        try:
            self._dynamodb.delete_item(
                TableName=self._settings.readiness_table, Key={"companyId": {"S": company_id}}, **condition
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise unavailable("DynamoDB DeleteItem on the readiness table", error) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB DeleteItem on the readiness table", error) from None
        return True

    def prune(self, configured: list[str], *, checked_before: float) -> list[str]:
        """Remove the records of companies that have no configuration any more (the sweep,
        with the companies it just listed); returns the companies removed."""
        keep = set(configured)
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(
                TableName=self._settings.readiness_table, ProjectionExpression="companyId"
            )
            recorded = [item["companyId"]["S"] for page in pages for item in page.get("Items", [])]
        except (ClientError, BotoCoreError) as error:
            raise unavailable("DynamoDB Scan on the readiness table", error) from None
        return [c for c in recorded if c not in keep and self.forget(c, checked_before=checked_before)]
