"""The reference handler of the cold-start comparison: the remote calls the real handler
makes for an e-conomic job, with plain boto3 and httpx (no Powertools, no pydantic) and a
thread pool for the reads that do not depend on each other: decision GetItem ||
configuration GetItem -> (Pleo secret -> GET job) || (e-conomic secret -> GET /self) ->
GET /journals || /accounts || /vat-accounts -> decision PutItem -> SQS SendMessage (or Pleo
failed event + GET) -> decision UpdateItem."""

from __future__ import annotations

import functools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
from boto3.dynamodb.types import TypeDeserializer

DYNAMODB = boto3.client("dynamodb")
SECRETS = boto3.client("secretsmanager")
SQS = boto3.client("sqs")
PLEO = httpx.Client(base_url=os.environ["PLEO_API_BASE_URL"], timeout=5)
ECONOMIC = httpx.Client(base_url=os.environ["ECONOMIC_API_BASE_URL"], timeout=5)
POOL = ThreadPoolExecutor(32)  # the calls
RECORDS = ThreadPoolExecutor(10)  # the records of a batch
PAGE = {"pagesize": 1000, "skippages": 0}


@functools.cache  # per container, as the handler caches them
def _secret(secret_id: str) -> dict[str, Any]:
    return json.loads(SECRETS.get_secret_value(SecretId=secret_id)["SecretString"])  # type: ignore[no-any-return]


def _job(config: dict[str, Any], job_id: str) -> tuple[tuple[str, str], dict[str, Any]]:
    auth = (_secret(config["pleoCredentialsSecretId"])["apiKey"], "")
    return auth, PLEO.get(f"/v3/export-jobs/{job_id}", auth=auth).raise_for_status().json()["data"]


@functools.cache
def _config(company_id: str) -> dict[str, Any]:
    item = DYNAMODB.get_item(TableName=os.environ["COMPANY_CONFIG_TABLE"], Key={"companyId": {"S": company_id}})
    return TypeDeserializer().deserialize(item["Item"]["configuration"])  # type: ignore[no-any-return]


def _decided(job_id: str) -> dict[str, Any] | None:
    key = {"jobId": {"S": job_id}}
    item: dict[str, Any] | None = DYNAMODB.get_item(
        TableName=os.environ["DECISIONS_TABLE"], Key=key, ConsistentRead=True
    ).get("Item")
    return item if item and item["state"]["S"] == "done" else None


def decide(message: dict[str, Any]) -> str:
    decided = POOL.submit(_decided, message["jobId"])
    config = _config(message["companyId"])
    job_read = POOL.submit(_job, config, message["jobId"])
    tokens = _secret(config["accountingCredentialsSecretId"])
    headers = {"X-AppSecretToken": tokens["appSecretToken"], "X-AgreementGrantToken": tokens["agreementGrantToken"]}
    me = POOL.submit(ECONOMIC.get, "/self", headers=headers)
    auth, job = job_read.result()
    if (recorded := decided.result()) is not None:
        return str(recorded["outcome"]["S"])
    if job["status"] != "in_progress":
        return "skipped"
    mappings = config["mappings"]
    numbers = ",".join(str(mappings[k]) for k in ("expenseAccount", "contraAccount"))
    lookups = [
        POOL.submit(ECONOMIC.get, path, headers=headers, params={**PAGE, **extra})
        for path, extra in (
            ("/journals", {}),
            ("/accounts", {"filter": f"accountNumber$in:[{numbers}]"}),
            ("/vat-accounts", {}),
        )
    ]
    journals, accounts, vat = (f.result().raise_for_status().json()["collection"] for f in lookups)
    problems = []
    if str(me.result().raise_for_status().json()["agreementNumber"]) != str(config["accountingCompanyRef"]):
        problems.append("another agreement")
    if not any(j["journalNumber"] == int(mappings["journal"]) for j in journals):
        problems.append("no journal")
    usable = {str(a["accountNumber"]) for a in accounts if not a.get("barred")}
    problems += [f"account {n}" for n in numbers.split(",") if n not in usable]
    codes = {v["vatCode"] for v in vat if not v.get("barred")}
    problems += [f"VAT code {c}" for c in mappings.get("vatCodes", []) if c not in codes]
    table = os.environ["DECISIONS_TABLE"]
    key = {"jobId": {"S": job["id"]}}
    outcome = "failed_early" if problems else "handed_off"
    DYNAMODB.put_item(
        TableName=table,
        Item={**key, "state": {"S": "acting"}, "outcome": {"S": outcome}, "claimedAt": {"N": repr(time.time())}},
        ConditionExpression="attribute_not_exists(jobId)",
    )
    if problems:
        event = {"event": "failed", "jobId": job["id"], "failureReason": "; ".join(problems)}
        PLEO.post("/v3/export-job-events", auth=auth, json={**event, "failureReasonType": "invalid_configuration"})
        PLEO.get(f"/v3/export-jobs/{job['id']}", auth=auth).raise_for_status()
    else:
        SQS.send_message(
            QueueUrl=os.environ["READY_JOBS_QUEUE_URL"],
            MessageBody=json.dumps({"jobId": job["id"], "companyId": job["companyId"]}),
            MessageGroupId=job["companyId"],
            MessageDeduplicationId=job["id"],
        )
    DYNAMODB.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":done": {"S": "done"}},
    )
    return outcome


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event["Records"]
    outcomes = list(RECORDS.map(lambda r: _safe(decide, json.loads(r["body"])), records))
    return {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r, o in zip(records, outcomes, strict=True) if o is None
        ]
    }


def _safe(fn: Any, arg: Any) -> Any:
    try:
        return fn(arg)
    except Exception:  # a failed record is reported, as SQS batches do
        return None
