"""The embedded AWS of the local run and the integration tests: moto's server on
loopback, with template.yaml deployed into it as the local stack (``sandbox/stack.py``:
queues with redrive, tables with TTL, the token journal's KMS key) and the seeded
secrets. Clients of the application reach it through ``AWS_ENDPOINT_URL``."""

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

from . import stack as local_stack
from .stack import REGION, LocalStack

TOKEN_SET_TAG = "export-preflight:secret-kind"  # template.yaml: PutSecretValue only on these
#: the claimed-jobs queue's redrive threshold, as template.yaml sets it (Mappings: Redrive)
MAX_RECEIVE_COUNT = local_stack.redrive_max_receive_count("ClaimedJobsQueue")


@dataclass(frozen=True)
class Resources:
    """The local stack's resources the sandbox itself uses, read from the functions'
    environment as the template resolves it (so they are the ones the handlers use)."""

    claimed_jobs_queue_url: str
    claimed_jobs_dlq_url: str
    ready_jobs_queue_url: str
    company_config_table: str
    credential_lock_table: str
    decisions_table: str
    readiness_queue_url: str
    readiness_dlq_url: str
    readiness_table: str
    journal_kms_key_id: str  # the token journal's customer-managed key (its ARN)

    @classmethod
    def of(cls, environment: dict[str, str]) -> Resources:
        return cls(
            claimed_jobs_queue_url=environment["CLAIMED_JOBS_QUEUE_URL"],
            claimed_jobs_dlq_url=environment["CLAIMED_JOBS_DLQ_URL"],
            ready_jobs_queue_url=environment["READY_JOBS_QUEUE_URL"],
            company_config_table=environment["COMPANY_CONFIG_TABLE"],
            credential_lock_table=environment["CREDENTIAL_LOCK_TABLE"],
            decisions_table=environment["DECISIONS_TABLE"],
            readiness_queue_url=environment["READINESS_QUEUE_URL"],
            readiness_dlq_url=environment["READINESS_DLQ_URL"],
            readiness_table=environment["READINESS_TABLE"],
            journal_kms_key_id=environment["JOURNAL_KMS_KEY_ID"],
        )


_DYNAMODB_WRITES = threading.Lock()


def _atomic_dynamodb_writes() -> None:
    """DynamoDB applies a conditional write atomically; moto's threaded server checks the
    condition, then stores, with no lock, so two concurrent conditional PutItems (two
    deliveries of one job claiming its decision record, two containers taking one
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
        self._clients: dict[tuple[str, str], Any] = {}

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

    def _deploy_client(self, service: str) -> Any:
        """The deployment's clients, kept between deployments (building one costs ~50 ms)."""
        key = (service, self.endpoint_url)
        if key not in self._clients:
            self._clients[key] = self.client(service)
        return self._clients[key]

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

    def deploy_stack(self, parameters: dict[str, str], *, visibility_timeout: int | None = None) -> LocalStack:
        """template.yaml, transformed and deployed (``sandbox/stack.py``) with these template
        parameters. ``visibility_timeout``: the one local override of the template, on the
        queues of the functions' event sources, so a batch that failed as a whole comes
        back within seconds (the template's is 6 x the function's timeout)."""
        deployed = local_stack.deploy(self._deploy_client, parameters=parameters)
        if visibility_timeout is not None:
            sqs = self.client("sqs")
            for source in deployed.event_sources:
                sqs.set_queue_attributes(
                    QueueUrl=deployed.ref(source.queue), Attributes={"VisibilityTimeout": str(visibility_timeout)}
                )
        return deployed

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
