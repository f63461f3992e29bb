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
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError

from .configuration import DocumentError, Finding, ItemReport, item_document, validate_item
from .errors import (
    AwsUnavailable,
    ConfigurationChanged,
    CredentialsMissing,
    CredentialsUnreadable,
    DecisionInFlight,
    HandOffNotSent,
    IntegrationMisconfigured,
    PreflightError,
    TokenStoreRefused,
    UnprocessableMessage,
)
from .models import CompanyConfiguration, Decision, PleoCredentials, Readiness, TokenSet
from .oauth import AWS_CALL_SECONDS, JournalEntry
from .observability import logger
from .ports import RecordedDecision
from .sanitize import sqs_attribute_text
from .settings import Settings

ModelT = TypeVar("ModelT", bound=BaseModel)

# Standard retry mode backs off on throttling inside the SDK; what is left is ours to retry.
# One client per service serves every thread: with botocore's 10 connections, a batch of ten
# jobs (three AWS calls in flight per job at times) made connections beyond the pool and
# dropped them after one call, each a new TLS handshake on AWS. As many as the check pool.
BOTO_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},  # the first attempt and up to 3 retries
    connect_timeout=3,
    read_timeout=5,
    max_pool_connections=64,
)
# The hand-off is sent once per call, without the SDK's retries: after an attempt that timed
# out (SQS may have taken the message) a retried attempt SQS refuses would look like "certainly
# not sent". Our own retry (the next delivery) re-sends under the same deduplication id.
# (botocore's ``max_attempts`` counts retries after the first attempt; ``total_max_attempts``
# counts every attempt: 1 is the first and only one.)
SINGLE_ATTEMPT_CONFIG = BOTO_CONFIG.merge(Config(retries={"total_max_attempts": 1, "mode": "standard"}))
_NOT_FOUND_CODES = {"ResourceNotFoundException"}
# Answers that will not change by retrying: the secret id is wrong or not ours to read.
_REFUSED_CODES = {"AccessDeniedException", "ValidationException", "InvalidParameterException", "DecryptionFailure"}
# Answers to PutSecretValue of a token set that will not change by retrying (our set-up).
_WRITE_REFUSED_CODES = _REFUSED_CODES | {
    "ResourceNotFoundException",
    "InvalidRequestException",  # e.g. the secret is scheduled for deletion
    "EncryptionFailure",
}
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

    def client(self, service: str, *, single_attempt: bool = False) -> Any:
        """The service's client; ``single_attempt``: its twin without the SDK's retries."""
        if single_attempt:
            return self._once(
                f"{service}/single-attempt", lambda session: session.client(service, config=SINGLE_ATTEMPT_CONFIG)
            )
        return self._once(service, lambda session: session.client(service, config=BOTO_CONFIG))

    def build_soon(self, *services: str, single_attempt: bool = False) -> None:
        """Build these clients in a background thread: a cold start's first job waits on the
        network most of the time, and needs them only later (the hand-off's SQS client).
        A client that cannot be built here (no Region, say) is built again where it is used,
        which reports the error: nothing is printed from this thread."""

        def build() -> None:
            for service in services:
                try:
                    self.client(service, single_attempt=single_attempt)
                except Exception:  # reported where the client is used
                    return

        threading.Thread(target=build, name="aws-clients", daemon=True).start()

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

# Calls made while a credential lease is held (the lease, the token journal and its KMS key,
# the token store's writes): one attempt with short timeouts, so each ends within
# ``oauth.AWS_CALL_SECONDS`` and every holder stays inside its lease (see oauth.py).
TOKEN_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},  # ("max_attempts" counts retries only)
    connect_timeout=1,
    read_timeout=2,
    max_pool_connections=64,
)
assert TOKEN_CLIENT_CONFIG.connect_timeout + TOKEN_CLIENT_CONFIG.read_timeout <= AWS_CALL_SECONDS


def token_client(service: str) -> Any:
    """The process's client of ``service`` for calls under a credential lease (``TOKEN_CLIENT_CONFIG``)."""
    return CLIENTS._once(f"{service}/token", lambda session: session.client(service, config=TOKEN_CLIENT_CONFIG))


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
            if isinstance(_cause(error), KeyError):  # no item for the company
                return None
            if _is_not_found(_cause(error)):  # the table itself: our set-up, not a missing company
                raise IntegrationMisconfigured(
                    f"the company configuration table {self._settings.company_config_table!r} does not exist "
                    "(ResourceNotFoundException)"
                ) from None
            raise _unavailable("DynamoDB GetItem on the company configuration table", _cause(error)) from None
        # The same validation as `config validate` (configuration.validate_item): an item the
        # model refuses is malformed; a value the accounting system would refuse (a reference,
        # a secret id) parses and is reported by the checks as invalid_configuration.
        try:
            document = item_document(str(company_id), raw if isinstance(raw, str | bytes) else _plain(raw))
            report = validate_item(document, secrets_prefix=self._settings.secrets_prefix, measure_size=False)
        except (DocumentError, TypeError) as error:
            fields = str(error) if isinstance(error, DocumentError) else "not a JSON object"
            report = ItemReport(structure=[Finding("configuration", fields)])
        if report.configuration is None:
            fields = "; ".join(str(finding) for finding in report.structure[:10])
            raise UnprocessableMessage(
                f"the configuration item of company {company_id} is malformed ({fields})",
                kind="malformed_company_configuration",
            ) from None
        return report.configuration

    def company_ids(self) -> list[str]:
        """Every configured company (a paginated Scan of the keys only)."""
        try:
            pages = self._dynamodb.get_paginator("scan").paginate(
                TableName=self._settings.company_config_table, ProjectionExpression="companyId"
            )
            return sorted(item["companyId"]["S"] for page in pages for item in page.get("Items", []))
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB Scan on the company configuration table", error) from None

    def put(self, configuration: CompanyConfiguration, document: dict[str, Any]) -> int:
        """Store a company's configuration item (``document``, the item as README "Company
        configuration item" shows it, validated as ``configuration`` by
        ``configuration.validate_item``): the operator CLI's ``config put``. Optimistic
        concurrency: the document's ``version`` is the version it was based on (``document_of``;
        absent: 0, no item or one never put with a version); the item is written only if it is
        still at that version, as version + 1 (returned). Otherwise ``ConfigurationChanged``,
        nothing written."""
        based_on = int(document.get("version") or 0)
        item = document["configuration"]
        if based_on:
            condition = "#version = :based_on"
            values: dict[str, Any] = {":based_on": {"N": str(based_on)}}
        else:
            condition, values = "attribute_not_exists(#version)", {}
        try:
            self._dynamodb.put_item(
                TableName=self._settings.company_config_table,
                Item={
                    "companyId": {"S": str(configuration.company_id)},
                    # a map, as the console shows it (numbers as Decimal, as DynamoDB wants)
                    "configuration": TypeSerializer().serialize(json.loads(json.dumps(item), parse_float=Decimal)),
                    "version": {"N": str(based_on + 1)},
                },
                ConditionExpression=condition,
                ExpressionAttributeNames={"#version": "version"},
                **({"ExpressionAttributeValues": values} if values else {}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise _unavailable("DynamoDB PutItem on the company configuration table", error) from None
            old = error.response.get("Item") or {}
            current = int(old["version"]["N"]) if "version" in old else self.document_of(configuration.company_id)[1]
            raise ConfigurationChanged(str(configuration.company_id), based_on, current) from None
        except BotoCoreError as error:
            raise _unavailable("DynamoDB PutItem on the company configuration table", error) from None
        return based_on + 1

    def document_of(self, company_id: UUID) -> tuple[dict[str, Any] | None, int]:
        """The company's stored configuration item as a document (``companyId`` and its
        ``configuration`` map, as ``config put`` takes it) and its version (0: none yet), read
        consistently (the CLI's ``config get``)."""
        try:
            found = self._dynamodb.get_item(
                TableName=self._settings.company_config_table,
                Key={"companyId": {"S": str(company_id)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB GetItem on the company configuration table", error) from None
        item = found.get("Item")
        if item is None:
            return None, 0
        version = int(item["version"]["N"]) if "version" in item else 0
        raw = _DESERIALIZE.deserialize(item["configuration"]) if "configuration" in item else {}
        try:
            stored = json.loads(raw) if isinstance(raw, str) else _plain(raw)
        except (ValueError, RecursionError):
            stored = raw  # shown as stored: `config put` names what is wrong with it
        return {"companyId": str(company_id), "configuration": stored}, version

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
        """Persist a rotated token pair (PutSecretValue, one short attempt: it runs under the
        credential lease) and cache it as the current value. A refusal that retrying cannot
        change (access denied, e.g. the secret lacks the token-set tag; a secret scheduled for
        deletion) is ``TokenStoreRefused``; anything else ``AwsUnavailable``."""
        value = tokens.to_secret()
        try:
            token_client("secretsmanager").put_secret_value(
                SecretId=secret_id, SecretString=value, ClientRequestToken=str(uuid.uuid4())
            )
        except ClientError as error:
            if _code(error) in _WRITE_REFUSED_CODES:
                logger.error(
                    "Secrets Manager refused to store a rotated token set",
                    extra={"secret_id": secret_id, "code": _code(error)},
                )
                raise TokenStoreRefused(f"Secrets Manager refused PutSecretValue ({_code(error)})") from None
            raise _unavailable("Secrets Manager PutSecretValue", error) from None
        except BotoCoreError as error:
            raise _unavailable("Secrets Manager PutSecretValue", error) from None
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
            if _code(error) in _KMS_REFUSED_CODES:
                logger.error(
                    "KMS refused the token journal's key", extra={"operation": operation, "code": _code(error)}
                )
                raise IntegrationMisconfigured(
                    f"KMS {operation} with the token journal's key failed ({_code(error)})"
                ) from None
            raise _unavailable(f"KMS {operation} for the token journal", error) from None
        except BotoCoreError as error:
            raise _unavailable(f"KMS {operation} for the token journal", error) from None

    def _call(self, operation: str, **kwargs: Any) -> Any:
        method = {"PutItem": "put_item", "GetItem": "get_item", "DeleteItem": "delete_item"}[operation]
        try:
            return getattr(self._dynamodb, method)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _unavailable(f"DynamoDB {operation} on the token journal", error) from None


# KMS answers that will not change by retrying: the key is wrong, disabled or not ours to use,
# or the ciphertext is not an entry of this credential.
_KMS_REFUSED_CODES = {
    "AccessDeniedException",
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "InvalidKeyUsageException",
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "ValidationException",
}


class DynamoDBDecisionLog:
    """``DecisionLog`` (see service.py) in the job decisions table: one item per job, kept
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
            if _code(error) != "ConditionalCheckFailedException":
                raise _unavailable("DynamoDB PutItem on the job decisions table", error) from None
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
            if _code(error) != "ConditionalCheckFailedException":
                raise _unavailable("DynamoDB DeleteItem on the job decisions table", error) from None
            old = error.response.get("Item") or self._get(job_id) or {}
            outcome = Decision.model_validate_json(old["decision"]["S"]).outcome if "decision" in old else "unknown"
            age = now - float(old.get("claimedAt", {}).get("N", now))
            raise DecisionInFlight(job_id, outcome, age, in_flight_seconds - age) from None
        except BotoCoreError as error:
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

    def last(self, company_id: str) -> Readiness | None:
        """The company's last recorded readiness (a consistent read), or None."""
        try:
            found = self._dynamodb.get_item(
                TableName=self._settings.readiness_table, Key={"companyId": {"S": company_id}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise _unavailable("DynamoDB GetItem on the readiness table", error) from None
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
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise _unavailable("DynamoDB DeleteItem on the readiness table", error) from None
        except BotoCoreError as error:
            raise _unavailable("DynamoDB DeleteItem on the readiness table", error) from None
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
            raise _unavailable("DynamoDB Scan on the readiness table", error) from None
        return [c for c in recorded if c not in keep and self.forget(c, checked_before=checked_before)]


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
                raise _unavailable("SQS SendMessage", error) from None  # SQS's own trouble: outcome unknown
            raise HandOffNotSent(str(_unavailable("SQS SendMessage", error))) from None
        except BotoCoreError as error:
            raise _unavailable("SQS SendMessage", error) from None
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
