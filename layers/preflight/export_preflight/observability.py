"""The single Logger, Tracer and Metrics of the service (configured by POWERTOOLS_* variables)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

# POWERTOOLS_* variables configure all three; the defaults keep a missing variable
# from turning into a metrics flush error that would fail a whole batch.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "export-preflight")
logger = Logger(service=SERVICE)


def tracing_on() -> bool:
    """Powertools' own rule: off when POWERTOOLS_TRACE_DISABLED says so, or outside Lambda
    (or in SAM local / Chalice)."""
    if resolve_truthy_env_var_choice(env=os.getenv(constants.TRACER_DISABLED_ENV, "false")):
        return False
    return bool(os.getenv(constants.LAMBDA_TASK_ROOT_ENV)) and not (
        os.getenv(constants.SAM_LOCAL_ENV) or os.getenv(constants.CHALICE_LOCAL_ENV)
    )


class NoTracer:
    """Stands in for the Tracer where tracing is off, so the X-Ray SDK (a tenth of a
    second of imports) is not loaded there: tracing is paid for only where it is on."""

    disabled = True
    provider = None

    def capture_lambda_handler(self, lambda_handler: Any = None, **options: Any) -> Any:
        return lambda_handler if lambda_handler is not None else (lambda handler: handler)


tracer: Tracer | NoTracer = Tracer(service=SERVICE) if tracing_on() else NoTracer()
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ExportPreflight"))


def count_outcome(outcome: str, reason_type: str | None = None, accounting_system: str | None = None) -> None:
    """One EMF metric ``PreflightOutcome`` per decided message, by outcome, reason type and
    accounting system."""
    count_by(
        "PreflightOutcome",
        outcome=outcome,
        reasonType=reason_type or "none",
        accountingSystem=accounting_system or "unknown",
    )


def count_by(name: str, value: float = 1, **dimensions: str) -> None:
    """One EMF metric with its own dimensions (besides ``service``), emitted now. Dimension
    values must come from bounded sets: never a company or job id."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="service", value=str(metrics.service))
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


def trace_entity() -> Any:
    """The invocation's X-Ray entity, to hand to record threads; None when tracing is off."""
    if tracer.disabled:
        return None
    try:
        return _recorder().get_trace_entity()
    except Exception:  # no segment (e.g. outside Lambda): no tracing
        return None


@contextmanager
def record_trace(entity: Any, name: str = "## record") -> Iterator[Callable[[str, str], None]]:
    """A subsegment for one record, in whichever thread handles it (the X-Ray SDK's
    threading recipe: the parent entity is set in the thread); yields ``annotate(key,
    value)`` (a no-op when tracing is off), so a trace is found by job id."""
    if entity is None:
        yield lambda key, value: None
        return
    recorder = _recorder()
    recorder.set_trace_entity(entity)
    try:
        with recorder.in_subsegment(name) as subsegment:
            yield subsegment.put_annotation
    finally:
        recorder.clear_trace_entities()


def _recorder() -> Any:
    """The X-Ray SDK's recorder (the Tracer's provider), imported only when tracing."""
    from aws_xray_sdk.core import xray_recorder

    return xray_recorder


def count(name: str, value: float = 1) -> None:
    """A plain count metric, flushed with the invocation's other metrics."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
