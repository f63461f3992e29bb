"""Lambda entry points of the readiness sweep. Glue only.

``sweep_handler`` (EventBridge Scheduler, every ``READINESS_SWEEP_INTERVAL_HOURS``): one
message per configured company onto the readiness queue, spread over
``READINESS_SPREAD_SECONDS`` so the accounting systems' rate limits are respected; the
readiness records of companies that have no configuration any more are removed.

``lambda_handler`` (SQS, the readiness queue): each record dry-runs one company's checks
(nothing is written to Pleo or handed on), records its readiness, counts it, and refreshes
an OAuth grant that would lapse from disuse before the sweep after next. Same partial-batch,
retry and dead-letter rules as jobs: transient trouble backs off and is retried; on the
last delivery the company is recorded as ``unknown``; a malformed message goes to the
readiness DLQ at once.
"""

from __future__ import annotations

import time
import uuid

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from export_preflight.company_checks import Attempt
from export_preflight.errors import TransientError
from export_preflight.messages import parse_message
from export_preflight.models import ReadinessMessage
from export_preflight.observability import count, logger, metrics, tracer
from export_preflight.records import Annotate, RecordRunner, count_readiness, handle_error
from export_preflight.runtime import get_runtime


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def sweep_handler(event: dict, context: LambdaContext) -> dict:
    """Fan out: one readiness message per configured company, delays spread over the window."""
    runtime = get_runtime()
    started = time.time()
    companies = runtime.configurations.company_ids()
    try:  # a company without configuration any more keeps no readiness record
        removed = runtime.readiness.prune(companies, checked_before=started)
    except TransientError as error:  # the next sweep tries again; the fan-out goes on
        logger.warning("could not remove the readiness of removed companies", extra={"error": str(error)})
        removed = []
    spread = runtime.settings.readiness_spread_seconds
    sweep = uuid.uuid4().hex
    bodies = [
        ({"companyId": company_id, "sweep": sweep}, spread * i // len(companies))
        for i, company_id in enumerate(companies)
    ]
    sent = runtime.queues.send_readiness(bodies)
    logger.info(
        "readiness sweep started",
        extra={
            "sweep": sweep,
            "companies": len(companies),
            "sent": sent,
            "spread_seconds": spread,
            "readiness_removed": len(removed),
        },
    )
    count("ReadinessSweepCompanies", len(companies))
    return {"sweep": sweep, "companies": len(companies), "sent": sent}


def process_record(record: SQSRecord, lambda_context: LambdaContext, annotate: Annotate) -> str:
    runtime = get_runtime()
    settings = runtime.settings
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(message_id=record.message_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        message = parse_message(
            record.body, max_bytes=settings.max_message_bytes, model=ReadinessMessage, what="a readiness check"
        )
        annotate("company_id", str(message.company_id))
        logger.thread_safe_append_keys(company_id=str(message.company_id), sweep=message.sweep)
        readiness = runtime.service.check_company(
            message.company_id,
            attempt=Attempt(receive_count=receive_count, max_receive_count=settings.max_receive_count),
            source="sweep",
            # a grant that would lapse before the sweep after next is refreshed now
            keep_alive_seconds=2 * settings.readiness_sweep_interval_hours * 3600,
        )
    except Exception as error:  # every exception is handled; see export_preflight.error_handling
        return handle_error(
            error,
            record,
            receive_count,
            queues=runtime.queues,
            retry_delay=settings.retry_delay,
            queue_url=settings.readiness_queue_url,
            dlq_url=settings.readiness_dlq_url,
        )
    logger.info(
        "readiness recorded",
        extra={
            "readiness": readiness.status,
            "accounting_system": readiness.accounting_system,
            "reason_type": readiness.reason_type,
            "problems": [f"{p.check}: {p.reason}" for p in readiness.problems],
            "grant_lapses_at": readiness.grant_lapses_at.isoformat() if readiness.grant_lapses_at else None,
            "grant_renewed": readiness.grant_renewed,
            "grant_ends_at": readiness.grant_ends_at.isoformat() if readiness.grant_ends_at else None,
            "notices": readiness.notices,
        },
    )
    count_readiness(readiness)
    return readiness.status


records = RecordRunner(process_record, "## readiness")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return records.process_batch(event, context)
