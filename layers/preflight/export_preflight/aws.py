"""AWS adapters: company configuration (DynamoDB), credentials (Secrets Manager), the
credential leases and token journal (DynamoDB), the job decision log and the readiness
table (DynamoDB) and the queues (ready jobs, dead letters, claimed jobs, readiness). Reads
of configuration and secrets go through Powertools parameters providers, which cache them
for a TTL. boto3 clients are made on first use, one per service, shared by every adapter
and thread (``AwsClients``)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import boto3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, SetSecretError
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import (
    AwsUnavailable,
    CredentialsMissing,
    CredentialsUnreadable,
    HandOffNotSent,
    PreflightError,
    UnprocessableMessage,
)
from .models import CompanyConfiguration, Decision, PleoCredentials, Readiness, TokenSet
from .oauth import JournalEntry
from .observability import logger
from .settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)

# Standard retry mode backs off on throttling inside the SDK; what is left is ours to retry.
# One client per service serves every thread: with botocore's 10 connections, a batch of ten
# jobs (three AWS calls in flight per job at times) made connections beyond the pool and
# dropped them after one call, each a new TLS handshake on AWS. As many as the check pool.
BOTO_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=3,
    read_timeout=5,
    max_pool_connections=64,
)
_NOT_FOUND_CODES = {"ResourceNotFoundException"}
# Answers that will not change by retrying: the secret id is wrong or not ours to read.
_REFUSED_CODES = {"AccessDeniedException", "ValidationException", "InvalidParameterException", "DecryptionFailure"}
_PLEO_CREDENTIALS: TypeAdapter[PleoCredentials] = TypeAdapter(PleoCredentials)


class AwsClients:
    """One boto3 client per AWS service, built on first use from one session, under a lock.

    boto3 clients are thread-safe; building one costs tens of milliseconds of CPU and a few
    megabytes. Without the lock, the ten record threads of a first batch each built their
    own (39 clients in one batch). Keyed by endpoint too, so a changed ``AWS_ENDPOINT_URL``
    (the local world) gets its own clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str | None], Any] = {}
        self._session: boto3.session.Session | None = None

    def client(self, service: str) -> Any:
        return self._once(service, lambda session: session.client(service, config=BOTO_CONFIG))

    def build_soon(self, *services: str) -> None:
        """Build these clients in a background thread: a cold start's first job waits on the
        network most of the time, and needs them only later (the hand-off's SQS client)."""
        threading.Thread(target=lambda: [self.client(s) for s in services], name="aws-clients", daemon=True).start()

    def _once(self, name: str, build: Callable[[boto3.session.Session], Any]) -> Any:
        key = (name, os.environ.get("AWS_ENDPOINT_URL"))
        found = self._built.get(key)
        if found is None:
            with self._lock:
                found = self._built.get(key)
                if found is None:
                    if self._session is None:
                        self._session = boto3.session.Session()
                    found = self._built[key] = build(self._session)
        return found


# The process's clients (the runtime and the handler module share them).
CLIENTS = AwsClients()


def _cause(error: GetParameterError) -> BaseException | None:
    return error.__cause__ or error.__context__


def _is_not_found(error: BaseException | None) -> bool:
    return isinstance(error, KeyError) or (
        isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES
    )


def _code(error: BaseException | None) -> str:
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, ClientError) else ""


def _unavailable(service: str, error: BaseException | None) -> AwsUnavailable:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else type(error).__name__
    return AwsUnavailable(f"{service} failed ({code})")


class ConfigurationItems(BaseProvider):
    """Powertools' parameter cache (``get(name, max_age=...)``) over the configuration table,
    read with the process's one DynamoDB client. (Powertools' own DynamoDBProvider reads
    through a Table resource: a second DynamoDB client and the resource model to load, on
    every cold start.)"""

    def __init__(self, table: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._table = table

    def _get(self, name: str, **sdk_options: Any) -> Any:
        found = CLIENTS.client("dynamodb").get_item(TableName=self._table, Key={"companyId": {"S": name}})
        item = found.get("Item")
        if item is None or "configuration" not in item:
            raise KeyError(name)  # no configuration item: not found
        return _DESERIALIZE.deserialize(item["configuration"])

    def _get_multiple(self, path: str, **sdk_options: Any) -> dict[str, str]:
        raise NotImplementedError("configuration items are read one company at a time")


_DESERIALIZE = TypeDeserializer()


class CompanyConfigurations:
    """Company configuration items from DynamoDB, cached for ``config_cache_seconds``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

        self._provider = ConfigurationItems(settings.company_config_table)

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
        except (ValueError, TypeError, RecursionError, ValidationError) as error:
            fields = (
                ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
                if isinstance(error, ValidationError)
                else "not a JSON object"
            )
            raise UnprocessableMessage(
                f"the configuration item of company {company_id} is malformed ({fields})",
                kind="malformed_company_configuration",
            ) from None

    def company_ids(self) -> list[str]:
        """Every configured company (a paginated Scan of the keys only)."""
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(
                TableName=self._settings.company_config_table, ProjectionExpression="companyId"
            )
            return sorted(item["companyId"]["S"] for page in pages for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB Scan on the company configuration table", error) from None

    def put(self, configuration: CompanyConfiguration, document: dict[str, Any]) -> None:
        """Store a company's configuration item (``document`` as given, validated as
        ``configuration``): the operator CLI's ``config put``."""
        item = {k: v for k, v in document.items() if k != "companyId"}
        try:
            self._dynamodb.put_item(
                TableName=self._settings.company_config_table,
                Item={
                    "companyId": {"S": str(configuration.company_id)},
                    # a map, as the console shows it (numbers as Decimal, as DynamoDB wants)
                    "configuration": TypeSerializer().serialize(json.loads(json.dumps(item), parse_float=Decimal)),
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB PutItem on the company configuration table", error) from None

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")


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

        self._lock = threading.Lock()
        self._secrets: SecretsProvider | None = None

    @property
    def _provider(self) -> SecretsProvider:
        """Built on first use (its client is the process's shared one), once across threads."""
        if self._secrets is None:
            with self._lock:
                if self._secrets is None:
                    self._secrets = SecretsProvider(boto3_client=CLIENTS.client("secretsmanager"))
        return self._secrets

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

    def known_values(self, secret_ids: list[str]) -> list[str]:
        """The string values held by these secrets, as cached (for redaction; never logged)."""
        values: list[str] = []
        for secret_id in secret_ids:
            try:
                document = json.loads(self._raw(secret_id, refresh=False))
            except (PreflightError, ValueError, RecursionError):
                continue
            if isinstance(document, dict):
                values += [v for v in document.values() if isinstance(v, str) and len(v) >= 8]
        return values

    def _raw(self, secret_id: str, *, refresh: bool) -> str:
        try:
            value = self._provider.get(secret_id, max_age=self._settings.secrets_cache_seconds, force_fetch=refresh)
        except GetParameterError as error:
            cause = _cause(error)
            if _is_not_found(cause):
                raise CredentialsMissing(secret_id) from None
            if _code(cause) in _REFUSED_CODES:
                logger.error(
                    "Secrets Manager refused to read a secret", extra={"secret_id": secret_id, "code": _code(cause)}
                )
                raise CredentialsUnreadable(secret_id) from None
            raise _unavailable("Secrets Manager GetSecretValue", cause) from None
        if not isinstance(value, str):
            raise CredentialsUnreadable(secret_id)
        return value


class DynamoDBLease:
    """``Lease`` on the credential-lock table: a conditional write that succeeds for one
    owner at a time; a lease left behind by a crashed container lapses after its TTL."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

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
            if _code(error) == "ConditionalCheckFailedException":
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


JOURNAL_TTL_SECONDS = 30 * 86_400


class DynamoDBTokenJournal:
    """``TokenJournal`` in the credential lock table (KMS-encrypted at rest): one item per
    credential, ``lockId = journal#<secret id>``, holding the provider's raw answer until the
    token store has the set. The function's role may read and write it; nothing logs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

    def keep(self, secret_id: str, entry: JournalEntry) -> None:
        item = {
            "lockId": {"S": f"journal#{secret_id}"},
            "answer": {"S": entry.answer},
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
        return JournalEntry(found["answer"]["S"], float(found["receivedAt"]["N"]), found["replaces"]["S"])

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

    def _call(self, operation: str, **kwargs: Any) -> Any:
        method = {"PutItem": "put_item", "GetItem": "get_item", "DeleteItem": "delete_item"}[operation]
        try:
            return getattr(self._dynamodb, method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(f"DynamoDB {operation} on the token journal", error) from None


class DynamoDBDecisionLog:
    """``DecisionLog`` (see service.py) in the job decisions table: one item per job, kept
    for ``decision_retention_seconds`` (longer than a message can live, DLQ included)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

    def claim(self, decision: Decision, *, rerun: str | None) -> tuple[Decision, str, float] | None:
        """Record ``decision`` as being acted on, unless the job has a record already: then
        that record's (decision, state, claimed-at) is returned instead."""
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
            if _code(error) != "ConditionalCheckFailedException":
                raise _unavailable("DynamoDB PutItem on the job decisions table", error) from None
            old = error.response.get("Item") or self._get(str(decision.job_id))
            if old is None:  # removed between our write and our read (a re-run): try again later
                raise AwsUnavailable("the job's decision record changed while it was being claimed") from None
            return (
                Decision.model_validate_json(old["decision"]["S"]),
                old["state"]["S"],
                float(old["claimedAt"]["N"]),
            )
        except BotoCoreError as error:
            raise _unavailable("DynamoDB PutItem on the job decisions table", error) from None
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

    def forget(self, job_id: str) -> None:
        """Remove the job's record (the re-run path; operators only)."""
        try:
            self._dynamodb.delete_item(TableName=self._settings.decisions_table, Key={"jobId": {"S": job_id}})
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB DeleteItem on the job decisions table", error) from None

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
            raise _unavailable("DynamoDB GetItem on the job decisions table", error) from None
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
            raise _unavailable("DynamoDB UpdateItem on the job decisions table", error) from None


class DynamoDBReadinessLog:
    """``ReadinessLog`` (see ports.py) in the readiness table: one item per company, its
    last known readiness, kept for ``readiness_retention_seconds`` after the last check."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def _dynamodb(self) -> Any:
        return CLIENTS.client("dynamodb")

    def record(self, readiness: Readiness) -> None:
        checked_at = readiness.checked_at.timestamp()
        try:
            self._dynamodb.put_item(
                TableName=self._settings.readiness_table,
                Item={
                    "companyId": {"S": readiness.company_id},
                    "status": {"S": readiness.status},
                    "checkedAt": {"N": repr(checked_at)},
                    "readiness": {"S": readiness.model_dump_json()},
                    "expiresAt": {"N": str(int(checked_at) + self._settings.readiness_retention_seconds)},
                },
                ConditionExpression="attribute_not_exists(companyId) OR checkedAt <= :checked",
                ExpressionAttributeValues={":checked": {"N": repr(checked_at)}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return  # a later check is recorded already
            raise _unavailable("DynamoDB PutItem on the readiness table", error) from None
        except BotoCoreError as error:
            raise _unavailable("DynamoDB PutItem on the readiness table", error) from None

    def all(self) -> list[Readiness]:
        """Every company's last known readiness (a paginated Scan)."""
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(TableName=self._settings.readiness_table)
            return [Readiness.model_validate_json(item["readiness"]["S"]) for page in pages for item in page["Items"]]
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB Scan on the readiness table", error) from None


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
        company's jobs in order). Raises ``HandOffNotSent`` when SQS answered with an error
        (nothing was enqueued), ``AwsUnavailable`` when the outcome is unknown.
        """
        try:
            response = self._sqs.send_message(
                QueueUrl=self._settings.ready_jobs_queue_url,
                MessageBody=json.dumps(payload),
                MessageAttributes={"jobId": {"DataType": "String", "StringValue": str(payload["jobId"])}},
                MessageGroupId=str(payload["companyId"]),
                MessageDeduplicationId=deduplication_id,
            )
        except ClientError as error:
            raise HandOffNotSent(str(_unavailable("SQS SendMessage", error))) from None
        except BotoCoreError as error:
            raise _unavailable("SQS SendMessage", error) from None
        return str(response["MessageId"])

    def dead_letter(self, body: str, *, kind: str, reason: str, dlq_url: str | None = None) -> str:
        """Move an unprocessable message to the DLQ (the claimed-jobs DLQ unless ``dlq_url``
        says otherwise), with why, without burning retries."""
        return self._send(
            dlq_url or self._settings.claimed_jobs_dlq_url, body, {"rejectKind": kind, "rejectReason": reason[:256]}
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
            logger.warning("could not change the message visibility", extra={"error": str(_unavailable("SQS", error))})

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
                        raise _unavailable("SQS SendMessageBatch on the readiness queue", error) from None
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
            raise _unavailable("SQS SendMessage", error) from None
        return str(response["MessageId"])
