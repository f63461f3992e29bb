"""The credential lease (``oauth.Lease``) on the credential-lock table."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..observability import logger
from ..settings import Settings
from .clients import token_client
from .errors import error_code, unavailable


class DynamoDBLease:
    """``Lease`` on the credential-lock table: a conditional write that succeeds for one
    owner at a time; a lease left behind by a crashed container lapses after its TTL.
    Expiry is compared on the caller's clock: only the functions (clocks kept in sync by
    AWS) take leases; the operator CLI never refreshes, so it never takes one."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return token_client("dynamodb")  # short timeouts: held leases are timed (oauth.py)

    def acquire(self, name: str, owner: str, seconds: int) -> bool:
        now = int(time.time())
        try:
            self._dynamodb.put_item(
                TableName=self._settings.credential_lock_table,
                Item={"lockId": {"S": name}, "owner": {"S": owner}, "expiresAt": {"N": str(now + seconds)}},
                ConditionExpression="attribute_not_exists(lockId) OR expiresAt < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise unavailable("DynamoDB PutItem on the credential lock table", error) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the credential lock table", error) from None
        return True

    def renew(self, name: str, owner: str, seconds: int) -> bool:
        """Extend the lease while ``owner`` holds it, or take it again if it lapsed unclaimed."""
        now = int(time.time())
        try:
            self._dynamodb.put_item(
                TableName=self._settings.credential_lock_table,
                Item={"lockId": {"S": name}, "owner": {"S": owner}, "expiresAt": {"N": str(now + seconds)}},
                ConditionExpression="attribute_not_exists(lockId) OR #owner = :owner OR expiresAt < :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":now": {"N": str(now)}},
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise unavailable("DynamoDB PutItem on the credential lock table", error) from None
        except BotoCoreError as error:
            raise unavailable("DynamoDB PutItem on the credential lock table", error) from None
        return True

    def release(self, name: str, owner: str) -> None:
        try:
            self._dynamodb.delete_item(
                TableName=self._settings.credential_lock_table,
                Key={"lockId": {"S": name}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except (ClientError, BotoCoreError) as error:
            logger.warning("could not release a credential lease; it lapses by itself", extra={"error": str(error)})
