"""What the SQS-triggered functions do with each record besides deciding it: handle a
record whose handling raised (see ``error_handling``), and count what became of it. The
functions stay glue: parse, call the service, report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .aws import Queues
from .connectors import CONNECTORS
from .error_handling import RetryDelay, error_handling_of
from .errors import TransientError
from .models import Readiness
from .observability import count, count_by, count_outcome, logger, record_trace, trace_entity
from .runtime import get_runtime

Annotate = Callable[[str, str], None]
Process = Callable[[SQSRecord, LambdaContext, Annotate], str]
# Set on an error ``handle_error`` logged before raising it (the record is retried).
_LOGGED = "_export_preflight_logged"


class _FailuresNotLoggedYet:
    """The logger handed to Powertools' batch processor, which logs every record whose
    handler raised (a WARNING with its traceback). ``handle_error`` has logged most of them
    already, at the level its handling says (a quiet ``DecisionBusy`` at INFO, transient
    trouble as one WARNING without a traceback); those are not logged twice. Anything else
    (an error outside ``handle_error``) is, with its traceback: no failed record goes unlogged."""

    def warning(self, message: str, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        error = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if getattr(error, _LOGGED, False):
            delattr(error, _LOGGED)  # (the same error object raised again elsewhere is logged)
            return
        logger.warning(message, *args, exc_info=exc_info, **kwargs)


REMOTES = frozenset({"pleo", "aws", "ours", *CONNECTORS})


class RecordRunner:
    """One SQS batch through Powertools' batch processor, every failure reported per item
    (ReportBatchItemFailures, even when all failed). Each record runs in the runtime's record
    pool (the batch's records side by side), in its own X-Ray subsegment: ``process``
    annotates it (job id, company id) and its outcome is annotated last ("retry" when it
    raised)."""

    def __init__(self, process: Process, name: str) -> None:
        self._process = process
        self._name = name
        self._trace: object = None
        self._processor = AsyncBatchProcessor(
            event_type=EventType.SQS,
            raise_on_entire_batch_failure=False,
            logger=_FailuresNotLoggedYet(),  # type: ignore[arg-type]  # (the processor calls only .warning)
        )

    def process_batch(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """The invocation: its deadline and X-Ray entity for the record threads, then each record."""
        get_runtime().deadline.start(context.get_remaining_time_in_millis())
        self._trace = trace_entity()
        return dict(
            async_process_partial_response(
                event=event, record_handler=self.handle, processor=self._processor, context=context
            )
        )

    async def handle(self, record: SQSRecord, lambda_context: LambdaContext) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(get_runtime().record_pool, self.run, record, lambda_context)

    def run(self, record: SQSRecord, lambda_context: LambdaContext) -> str:
        with record_trace(self._trace, self._name) as annotate:
            try:
                outcome = self._process(record, lambda_context, annotate)
            except Exception:
                annotate("outcome", "retry")
                raise
            annotate("outcome", outcome)
        return outcome


def system_dimension(system: str | None) -> str:
    """An accounting system id as a metric dimension: known ids only (the set is bounded)."""
    return system if system is not None and system in CONNECTORS else "unknown"


def handle_error(
    error: Exception,
    record: SQSRecord,
    receive_count: int,
    *,
    queues: Queues,
    retry_delay: RetryDelay,
    queue_url: str | None = None,
    dlq_url: str | None = None,
) -> str:
    """Handle the error as ``error_handling_of`` says: log it, count it, dead-letter (the
    record succeeds) or back off (it fails: raises ``error``). A dead letter SQS refused is
    retried like transient trouble. ``queue_url``/``dlq_url``: the record's queue and its DLQ (default:
    the claimed-jobs queue's)."""
    handling = error_handling_of(error, receive_count=receive_count, retry_delay=retry_delay)
    extra: dict[str, object] = {"receive_count": receive_count}
    if handling.action == "dead_letter":
        try:
            queues.dead_letter(record.body or "", kind=handling.kind, reason=handling.reason, dlq_url=dlq_url)
        except TransientError as unsent:
            return handle_error(
                unsent,
                record,
                receive_count,
                queues=queues,
                retry_delay=retry_delay,
                queue_url=queue_url,
                dlq_url=dlq_url,
            )
        extra.update(reject_kind=handling.kind, reason=handling.reason)
    else:
        # remote_party: the remote system at fault (log key kept for the saved queries)
        extra.update(error=str(error), retry_in_seconds=handling.delay_seconds, remote_party=handling.remote)
    getattr(logger, handling.log_level)(
        handling.log_message, extra=extra, exc_info=error if handling.traceback else None
    )
    if handling.metric == "TransientRetry":
        # remoteParty: the remote system at fault (published dimension name, kept for the dashboards)
        count_by("TransientRetry", remoteParty=handling.remote if handling.remote in REMOTES else "ours")
    elif handling.metric:
        count(handling.metric)
    if handling.action == "dead_letter":
        count_outcome("rejected", handling.kind)
        return "rejected"
    queues.delay_redelivery(record.receipt_handle, handling.delay_seconds, queue_url=queue_url)
    setattr(error, _LOGGED, True)
    raise error


def count_readiness(readiness: Readiness) -> None:
    """A company's readiness, by system (``ReadinessResult``); a not-ready company once
    (``CompanyNotReady``) and per failing reason type (``NotReadyReason``); a grant refreshed
    to keep it alive (``OAuthKeepAliveRefresh``)."""
    system = system_dimension(readiness.accounting_system)
    count_by("ReadinessResult", accountingSystem=system, readiness=readiness.status)
    if readiness.status == "not_ready":
        count_by("CompanyNotReady")
        for reason_type in dict.fromkeys(p.reason_type for p in readiness.problems if p.reason_type):
            count_by("NotReadyReason", accountingSystem=system, reasonType=str(reason_type))
    if readiness.grant_renewed:
        count_by("OAuthKeepAliveRefresh", accountingSystem=system)
