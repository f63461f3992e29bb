"""The write-ahead token journal (``oauth.TokenJournal``) in the credential-lock table,
sealed with a customer-managed KMS key."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import AwsUnavailable, IntegrationMisconfigured
from ..oauth import JournalEntry
from ..observability import logger
from ..settings import Settings
from .clients import token_client
from .errors import KMS_REFUSED_CODES, error_code, unavailable

JOURNAL_TTL_SECONDS = 30 * 86_400


class DynamoDBTokenJournal:
    """``TokenJournal`` in the credential lock table: one item per credential, ``lockId =
    journal#<secret id>``, holding the provider's raw answer until the token store has the
    set. The answer is encrypted on the client with the customer-managed KMS key
    ``JOURNAL_KMS_KEY_ID`` (attribute ``sealedAnswer``; encryption context ``{"secretId":
    <secret id>}``, so an entry copied to another credential does not decrypt), which only
    the functions' roles may use: reading the table (or a point-in-time restore of it)
    yields no token. Nothing logs an answer.

    Entries written before the encryption (a plaintext ``answer``) are still recalled: one
    may hold the only copy of a live refresh token. The next refresh of that credential
    saves it and deletes the item, so none outlives its first recall."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return token_client("dynamodb")

    def keep(self, secret_id: str, entry: JournalEntry) -> None:
        sealed = self._kms(
            "Encrypt", KeyId=self._key_id(), Plaintext=entry.answer.encode(), EncryptionContext={"secretId": secret_id}
        )["CiphertextBlob"]
        item = {
            "lockId": {"S": f"journal#{secret_id}"},
            "sealedAnswer": {"B": sealed},
            "receivedAt": {"N": repr(entry.received_at)},
            "replaces": {"S": entry.replaces},
            "expiresAt": {"N": str(int(time.time()) + JOURNAL_TTL_SECONDS)},
        }
        self._call("PutItem", TableName=self._settings.credential_lock_table, Item=item)

    def recall(self, secret_id: str) -> JournalEntry | None:
        found = self._call(
            "GetItem",
            TableName=self._settings.credential_lock_table,
            Key={"lockId": {"S": f"journal#{secret_id}"}},
            ConsistentRead=True,
        ).get("Item")
        if not found:
            return None
        if "sealedAnswer" in found:
            answer = self._kms(
                "Decrypt",
                KeyId=self._key_id(),
                CiphertextBlob=found["sealedAnswer"]["B"],
                EncryptionContext={"secretId": secret_id},
            )["Plaintext"].decode()
        else:
            logger.warning("a token journal entry from before client-side encryption", extra={"secret_id": secret_id})
            answer = found["answer"]["S"]
        return JournalEntry(answer, float(found["receivedAt"]["N"]), found["replaces"]["S"])

    def forget(self, secret_id: str, entry: JournalEntry) -> None:
        try:
            self._call(
                "DeleteItem",
                TableName=self._settings.credential_lock_table,
                Key={"lockId": {"S": f"journal#{secret_id}"}},
                ConditionExpression="replaces = :replaces",
                ExpressionAttributeValues={":replaces": {"S": entry.replaces}},
            )
        except AwsUnavailable as error:
            if "ConditionalCheckFailed" not in str(error):
                raise

    def _key_id(self) -> str:
        if not self._settings.journal_kms_key_id:
            logger.error("JOURNAL_KMS_KEY_ID is not set: rotated token sets cannot be journalled")
            raise IntegrationMisconfigured("the token journal's KMS key is not configured (JOURNAL_KMS_KEY_ID)")
        return self._settings.journal_kms_key_id

    def _kms(self, operation: str, **kwargs: Any) -> Any:
        method = {"Encrypt": "encrypt", "Decrypt": "decrypt"}[operation]
        try:
            return getattr(token_client("kms"), method)(**kwargs)
        except ClientError as error:
            if error_code(error) in KMS_REFUSED_CODES:
                logger.error(
                    "KMS refused the token journal's key", extra={"operation": operation, "code": error_code(error)}
                )
                raise IntegrationMisconfigured(
                    f"KMS {operation} with the token journal's key failed ({error_code(error)})"
                ) from None
            raise unavailable(f"KMS {operation} for the token journal", error) from None
        except BotoCoreError as error:
            raise unavailable(f"KMS {operation} for the token journal", error) from None

    def _call(self, operation: str, **kwargs: Any) -> Any:
        method = {"PutItem": "put_item", "GetItem": "get_item", "DeleteItem": "delete_item"}[operation]
        try:
            return getattr(self._dynamodb, method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise unavailable(f"DynamoDB {operation} on the token journal", error) from None
