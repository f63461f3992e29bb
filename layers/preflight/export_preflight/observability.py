"""The single Logger, Tracer and Metrics of the service (configured by POWERTOOLS_* variables)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

# POWERTOOLS_* variables configure all three; the defaults keep a missing variable
# from turning into a metrics flush error that would fail a whole batch.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "export-preflight")
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ExportPreflight"))


def count_outcome(outcome: str, reason_type: str | None = None) -> None:
    """One EMF metric ``PreflightOutcome`` per decided message, by outcome and reason type."""
    with single_metric(
        name="PreflightOutcome",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="service", value=str(metrics.service))
        metric.add_dimension(name="outcome", value=outcome)
        metric.add_dimension(name="reasonType", value=reason_type or "none")


def count(name: str, value: float = 1) -> None:
    """A plain count metric, flushed with the invocation's other metrics."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
