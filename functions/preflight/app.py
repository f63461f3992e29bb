"""Lambda entry point: a batch of claimed-job messages from SQS, one preflight
decision per job. Glue only: parse the record, call the service, report."""

from __future__ import annotations

import time
from concurrent.futures import Future, wait

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from export_preflight.company_checks import Attempt
from export_preflight.errors import TransientError
from export_preflight.messages import parse_message
from export_preflight.observability import count_outcome, logger, metrics, tracer
from export_preflight.records import Annotate, RecordRunner, handle_error, system_dimension
from export_preflight.runtime import get_runtime


class DeadlineReached(TransientError):
    """Too little time left in this invocation to start another job."""


def process_record(record: SQSRecord, lambda_context: LambdaContext, annotate: Annotate) -> str:
    runtime = get_runtime()
    settings = runtime.settings
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(message_id=record.message_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    remaining_ms = lambda_context.get_remaining_time_in_millis()
    attempt = Attempt(
        receive_count=receive_count,
        max_receive_count=settings.max_receive_count,
        next_retry_in_seconds=settings.retry_delay(receive_count),
        busy_until=time.time() + remaining_ms / 1000,
    )
    try:
        if remaining_ms < settings.deadline_margin_ms:
            raise DeadlineReached(f"only {remaining_ms} ms left; leaving the record for redelivery")
        message = parse_message(record.body, max_bytes=settings.max_message_bytes)
        annotate("job_id", str(message.job_id))
        annotate("company_id", str(message.company_id))
        logger.thread_safe_append_keys(correlation_id=str(message.job_id), company_id=str(message.company_id))
        # The reads (the job's decision record, configuration, job, authentication) start at
        # once; the writes that follow the action are waited for after it.
        pending: list[Future[None]] = []
        try:
            decision = runtime.service.decide(
                message, attempt=attempt, prepared=runtime.service.start_reading(message), pending=pending
            )
        finally:
            wait(pending)
    except Exception as error:  # every exception is handled; see export_preflight.error_handling
        return handle_error(error, record, receive_count, queues=runtime.queues, retry_delay=settings.retry_delay)
    logger.info(
        "preflight decided",
        extra={
            "outcome": decision.outcome,
            "reason_type": decision.reason_type,
            "reason": decision.reason,
            "accounting_system": decision.accounting_system,
        },
    )
    count_outcome(decision.outcome, decision.reason_type, system_dimension(decision.accounting_system))
    return decision.outcome


records = RecordRunner(process_record, "## record")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return records.process_batch(event, context)
