"""The embedded AWS of the local run and the integration tests: moto's server on
loopback, with the resources template.yaml declares (queues with redrive, tables,
secrets). Clients of the application reach it through ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
from moto.dynamodb.models import DynamoDBBackend
from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
TOKEN_SET_TAG = "export-preflight:secret-kind"  # template.yaml: PutSecretValue only on these
MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class Resources:
    claimed_jobs_queue_url: str
    claimed_jobs_dlq_url: str
    ready_jobs_queue_url: str
    company_config_table: str = "export-preflight-company-config"
    idempotency_table: str = "export-preflight-idempotency"
    credential_lock_table: str = "export-preflight-credential-locks"
    decisions_table: str = "export-preflight-job-decisions"
    readiness_queue_url: str = ""
    readiness_dlq_url: str = ""
    readiness_table: str = "export-preflight-readiness"
    journal_kms_key_id: str = ""  # the token journal's customer-managed key (its ARN)

    def environment(self) -> dict[str, str]:
        """The function's environment variables for these resources."""
        return {
            "COMPANY_CONFIG_TABLE": self.company_config_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "CREDENTIAL_LOCK_TABLE": self.credential_lock_table,
            "DECISIONS_TABLE": self.decisions_table,
            "READY_JOBS_QUEUE_URL": self.ready_jobs_queue_url,
            "CLAIMED_JOBS_DLQ_URL": self.claimed_jobs_dlq_url,
            "CLAIMED_JOBS_QUEUE_URL": self.claimed_jobs_queue_url,
            "READINESS_TABLE": self.readiness_table,
            "READINESS_QUEUE_URL": self.readiness_queue_url,
            "READINESS_DLQ_URL": self.readiness_dlq_url,
            "MAX_RECEIVE_COUNT": str(MAX_RECEIVE_COUNT),
            "JOURNAL_KMS_KEY_ID": self.journal_kms_key_id,
        }


_DYNAMODB_WRITES = threading.Lock()


def _atomic_dynamodb_writes() -> None:
    """DynamoDB applies a conditional write atomically; moto's threaded server checks the
    condition, then stores, with no lock, so two concurrent conditional PutItems (two
    deliveries of one job claiming its idempotency record, two containers taking one
    credential lease) could both win. moto runs in this process: one lock around its item
    writes restores DynamoDB's semantics."""
    if getattr(DynamoDBBackend, "_export_preflight_atomic", False):
        return
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _DYNAMODB_WRITES:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))
    DynamoDBBackend._export_preflight_atomic = True  # type: ignore[attr-defined]


class LocalAws:
    """moto's server on 127.0.0.1 (ephemeral port)."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> LocalAws:
        _atomic_dynamodb_writes()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (and so Powertools) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def reset(self) -> None:
        """Drop every resource (between tests)."""
        httpx.post(f"{self.endpoint_url}/moto-api/reset").raise_for_status()

    def create_resources(self, *, visibility_timeout: int = 180) -> Resources:
        """Queues with redrive and SSE, the five tables and the token journal's KMS key, as in
        template.yaml."""
        sqs = self.client("sqs")
        claimed_url, dlq_url = self._queue_with_dlq("export-preflight-claimed-jobs", visibility_timeout)
        ready_url = sqs.create_queue(
            QueueName="export-preflight-ready-jobs.fifo",
            Attributes={"FifoQueue": "true", "SqsManagedSseEnabled": "true"},
        )["QueueUrl"]
        readiness_url, readiness_dlq_url = self._queue_with_dlq("export-preflight-readiness", visibility_timeout)
        journal_key = self.client("kms").create_key(
            Description="Encrypts the token journal (export-preflight)", KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]["Arn"]
        resources = Resources(
            claimed_url,
            dlq_url,
            ready_url,
            readiness_queue_url=readiness_url,
            readiness_dlq_url=readiness_dlq_url,
            journal_kms_key_id=journal_key,
        )
        dynamodb = self.client("dynamodb")
        for table, key in (
            (resources.company_config_table, "companyId"),
            (resources.idempotency_table, "id"),
            (resources.credential_lock_table, "lockId"),
            (resources.decisions_table, "jobId"),
            (resources.readiness_table, "companyId"),
        ):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        return resources

    def _queue_with_dlq(self, name: str, visibility_timeout: int) -> tuple[str, str]:
        """A queue whose messages move to its DLQ after ``MAX_RECEIVE_COUNT`` receives."""
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility_timeout),
                "SqsManagedSseEnabled": "true",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
            },
        )["QueueUrl"]
        return url, dlq_url

    # ------------------------------------------------------------ seeding

    def put_company_configuration(self, resources: Resources, configuration: dict[str, Any]) -> None:
        """Store one company configuration item (``companyId`` + ``configuration`` map)."""
        table = boto3.resource(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).Table(resources.company_config_table)
        item = {k: v for k, v in configuration.items() if k != "companyId"}
        table.put_item(Item={"companyId": configuration["companyId"], "configuration": item})

    def put_secret(self, name: str, value: dict[str, Any] | str, *, token_set: bool = False) -> None:
        """Create a secret; OAuth token sets carry the tag that lets the function rotate them."""
        secrets = self.client("secretsmanager")
        tags = [{"Key": TOKEN_SET_TAG, "Value": "oauth-token-set"}] if token_set else []
        secrets.create_secret(Name=name, SecretString=value if isinstance(value, str) else json.dumps(value), Tags=tags)


def apply_environment(variables: dict[str, str]) -> None:
    os.environ.update(variables)
