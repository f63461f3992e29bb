"""Lambda-shaped SQS events for the benchmark (standard library only, so that the
cold-start child process imports nothing the real handler would not)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:export-preflight-claimed-jobs"


def sqs_record(job_id: str, company_id: str, *, receive_count: int = 1) -> dict[str, Any]:
    """One record as the SQS event source mapping delivers it."""
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"bench-{uuid.uuid4().hex}",
        "body": json.dumps({"jobId": job_id, "companyId": company_id}),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDABENCHMARK",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "eu-west-1",
    }


def sqs_event(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """An event with one record per job (``{"id", "companyId"}`` as the Pleo simulator returns them)."""
    return {"Records": [sqs_record(job["id"], job["companyId"]) for job in jobs]}
