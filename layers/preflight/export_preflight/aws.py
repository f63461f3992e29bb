"""AWS adapters: company configuration (DynamoDB), credentials (Secrets Manager),
and the queues (ready jobs, dead letters). Reads go through Powertools parameters
providers, which cache them for a TTL. boto3 clients are made on first use."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

import boto3
from aws_lambda_powertools.utilities.parameters import DynamoDBProvider, SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, SetSecretError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import AwsUnavailable, CredentialsMissing, CredentialsUnreadable, UnprocessableMessage
from .models import CompanyConfiguration, PleoCredentials, TokenSet
from .observability import logger
from .settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)

# Standard retry mode backs off on throttling inside the SDK; what is left is ours to retry.
BOTO_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=5)
_NOT_FOUND_CODES = {"ResourceNotFoundException"}
_PLEO_CREDENTIALS: TypeAdapter[PleoCredentials] = TypeAdapter(PleoCredentials)


def _cause(error: GetParameterError) -> BaseException | None:
    return error.__cause__ or error.__context__


def _is_not_found(error: BaseException | None) -> bool:
    return isinstance(error, KeyError) or (
        isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES
    )


def _unavailable(service: str, error: BaseException | None) -> AwsUnavailable:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else type(error).__name__
    return AwsUnavailable(f"{service} failed ({code})")


class CompanyConfigurations:
    """Company configuration items from DynamoDB, cached for ``config_cache_seconds``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _provider(self) -> DynamoDBProvider:
        return DynamoDBProvider(
            table_name=self._settings.company_config_table,
            key_attr="companyId",
            value_attr="configuration",
            boto_config=BOTO_CONFIG,
        )

    def get(self, company_id: UUID) -> CompanyConfiguration | None:
        """The company's configuration, or None when there is no item for it."""
        try:
            raw = self._provider.get(str(company_id), max_age=self._settings.config_cache_seconds)
        except GetParameterError as error:
            if _is_not_found(_cause(error)):
                return None
            raise _unavailable("DynamoDB GetItem on the company configuration table", _cause(error)) from None
        try:
            document: Any = json.loads(raw) if isinstance(raw, str) else _plain(raw)
            return CompanyConfiguration.model_validate({**document, "companyId": str(company_id)})
        except (ValueError, TypeError, ValidationError) as error:
            fields = (
                ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
                if isinstance(error, ValidationError)
                else "not a JSON object"
            )
            raise UnprocessableMessage(
                f"the configuration item of company {company_id} is malformed ({fields})",
                kind="malformed_company_configuration",
            ) from None


def _plain(value: Any) -> Any:
    """DynamoDB maps come back with Decimals; make them JSON-like."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class Credentials:
    """Credentials from Secrets Manager, cached for ``secrets_cache_seconds``.

    Values never appear in errors: models hide their input, and only the secret id
    (not a secret) is ever mentioned.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _provider(self) -> SecretsProvider:
        return SecretsProvider(boto_config=BOTO_CONFIG)

    def pleo(self, secret_id: str, *, refresh: bool = False) -> PleoCredentials:
        raw = self._raw(secret_id, refresh=refresh)
        try:
            return _PLEO_CREDENTIALS.validate_json(raw)
        except ValidationError:
            raise CredentialsUnreadable(secret_id) from None

    def load(self, secret_id: str, model: type[ModelT], *, refresh: bool = False) -> ModelT:
        raw = self._raw(secret_id, refresh=refresh)
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            raise CredentialsUnreadable(secret_id) from None

    # TokenStore (see oauth.py) ---------------------------------------------

    def read(self, secret_id: str, *, fresh: bool) -> TokenSet:
        return self.load(secret_id, TokenSet, refresh=fresh)

    def write(self, secret_id: str, tokens: TokenSet) -> None:
        """Persist a rotated token pair (PutSecretValue) and cache it as the current value."""
        value = tokens.to_secret()
        try:
            self._provider.set(secret_id, value, client_request_token=str(uuid.uuid4()))
        except SetSecretError as error:
            raise _unavailable("Secrets Manager PutSecretValue", error.__cause__ or error.__context__) from None
        self._provider.add_to_cache(
            self._provider._build_cache_key(name=secret_id), value, self._settings.secrets_cache_seconds
        )

    def _raw(self, secret_id: str, *, refresh: bool) -> str:
        try:
            value = self._provider.get(secret_id, max_age=self._settings.secrets_cache_seconds, force_fetch=refresh)
        except GetParameterError as error:
            cause = _cause(error)
            if _is_not_found(cause):
                raise CredentialsMissing(secret_id) from None
            raise _unavailable("Secrets Manager GetSecretValue", cause) from None
        if not isinstance(value, str):
            raise CredentialsUnreadable(secret_id)
        return value


class DynamoDBLease:
    """``Lease`` on the credential-lock table: a conditional write that succeeds for one
    owner at a time; a lease left behind by a crashed container lapses after its TTL."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _dynamodb(self) -> Any:
        return boto3.client("dynamodb", config=BOTO_CONFIG)

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
            raise _unavailable("DynamoDB PutItem on the credential lock table", error) from None
        except BotoCoreError as error:
            raise _unavailable("DynamoDB PutItem on the credential lock table", error) from None
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


class Queues:
    """Sends to the ready-jobs queue (hand-off) and the claimed-jobs DLQ (rejects)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @cached_property
    def _sqs(self) -> Any:
        return boto3.client("sqs", config=BOTO_CONFIG)

    def hand_off(self, payload: dict[str, Any]) -> str:
        """Put a passed job on the ready-jobs FIFO queue; returns the SQS message id.

        Deduplicated by job id (a decision retried after an unclear send hands off once
        within SQS's 5-minute window) and grouped by company (one company's jobs in order).
        """
        return self._send(
            self._settings.ready_jobs_queue_url,
            json.dumps(payload),
            {"jobId": payload["jobId"]},
            group_id=payload["companyId"],
            deduplication_id=payload["jobId"],
        )

    def dead_letter(self, body: str, *, kind: str, reason: str) -> str:
        """Move an unprocessable message to the DLQ, with why, without burning retries."""
        return self._send(self._settings.claimed_jobs_dlq_url, body, {"rejectKind": kind, "rejectReason": reason[:256]})

    def delay_redelivery(self, receipt_handle: str, seconds: int) -> None:
        """Back off: the claimed-jobs message becomes visible again in ``seconds``."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._settings.claimed_jobs_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as error:
            # The queue's own visibility timeout still brings the message back: log, go on.
            logger.warning("could not change the message visibility", extra={"error": str(_unavailable("SQS", error))})

    def _send(
        self,
        queue_url: str,
        body: str,
        attributes: dict[str, str],
        *,
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> str:
        fifo = {"MessageGroupId": group_id, "MessageDeduplicationId": deduplication_id} if group_id else {}
        try:
            response = self._sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=body,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
                **fifo,
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("SQS SendMessage", error) from None
        return str(response["MessageId"])
