"""Lambda entry point: a batch of claimed-job messages from SQS, one preflight
decision per job. Glue only: parse the record, call the service, report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, wait

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext

from export_preflight.aws import CLIENTS
from export_preflight.company_checks import Attempt
from export_preflight.errors import TransientError
from export_preflight.messages import parse_message
from export_preflight.models import ClaimedJobMessage, Decision
from export_preflight.observability import count_outcome, logger, metrics, tracer
from export_preflight.process import PROCESS
from export_preflight.records import Annotate, RecordRunner, handle_error, system_dimension
from export_preflight.runtime import get_runtime
from export_preflight.service import Prepared
from export_preflight.settings import get_settings


def idempotency_config() -> IdempotencyConfig:
    """The idempotency settings (kept by the process, like everything a container keeps)."""
    return PROCESS.once(
        "preflight/idempotency-config",
        lambda: IdempotencyConfig(
            # a re-run (docs/checks.md, "Re-running one job") is a new decision for the same job
            event_key_jmespath="[job_id, rerun]",
            expires_after_seconds=get_settings().idempotency_expiry_seconds,
            raise_on_no_idempotency_key=True,
        ),
    )


class DeadlineReached(TransientError):
    """Too little time left in this invocation to start another job."""


def decide_once(
    *,
    message: ClaimedJobMessage,
    attempt: Attempt,
    prepared: Future[Prepared] | None = None,
    pending: list[Future[None]] | None = None,
) -> Decision:
    """One decision per job id, whatever the number of deliveries."""
    return get_runtime().service.decide(message, attempt=attempt, prepared=prepared, pending=pending)


def idempotent_decide() -> Callable[..., Decision]:
    """``decide_once`` behind the idempotency record; built with the first record (its
    DynamoDB client is the process's shared one), not at import; kept by the process."""
    return PROCESS.once("preflight/idempotent-decide", _idempotent_decide)


def _idempotent_decide() -> Callable[..., Decision]:
    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table, boto3_client=CLIENTS.client("dynamodb")
    )
    wrapped: Callable[..., Decision] = idempotent_function(
        data_keyword_argument="message",
        config=idempotency_config(),
        persistence_store=persistence,
        output_serializer=PydanticSerializer(model=Decision),
    )(decide_once)
    return wrapped


def process_record(record: SQSRecord, lambda_context: LambdaContext, annotate: Annotate) -> str:
    runtime = get_runtime()
    settings = runtime.settings
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(message_id=record.message_id)
    receive_count = int(record.attributes.approximate_receive_count or 1)
    attempt = Attempt(
        receive_count=receive_count,
        max_receive_count=settings.max_receive_count,
        next_retry_in_seconds=settings.retry_delay(receive_count),
    )
    try:
        remaining_ms = lambda_context.get_remaining_time_in_millis()
        if remaining_ms < settings.deadline_margin_ms:
            raise DeadlineReached(f"only {remaining_ms} ms left; leaving the record for redelivery")
        message = parse_message(record.body, max_bytes=settings.max_message_bytes)
        annotate("job_id", str(message.job_id))
        annotate("company_id", str(message.company_id))
        logger.thread_safe_append_keys(correlation_id=str(message.job_id), company_id=str(message.company_id))
        # The reads (configuration, job, authentication) start now, while the idempotency
        # record is written; what follows the action overlaps the record's completion.
        pending: list[Future[None]] = []
        try:
            decision = idempotent_decide()(
                message=message, attempt=attempt, prepared=runtime.service.start_reading(message), pending=pending
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
    idempotency_config().register_lambda_context(context)
    return records.process_batch(event, context)
