"""X-Ray: each record gets its own subsegment, annotated with job id, company id and
outcome, in whichever record thread handles it, so a trace is found by job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder

from export_preflight.observability import NoTracer, record_trace, tracing_on


@pytest.fixture
def segment():
    enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(True)
    xray_recorder.configure(sampling=False, context_missing="LOG_ERROR")
    segment = xray_recorder.begin_segment("invocation")
    yield segment
    xray_recorder.end_segment()
    xray_recorder.clear_trace_entities()
    global_sdk_config.set_sdk_enabled(enabled)


def annotate_in_thread(entity: object, job_id: str) -> None:
    with record_trace(entity) as annotate:
        annotate("job_id", job_id)
        annotate("outcome", "handed_off")


def test_records_in_other_threads_get_their_own_annotated_subsegments(segment):
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(annotate_in_thread, [segment, segment], ["job-1", "job-2"]))

    records = [s for s in segment.subsegments if s.name == "## record"]
    assert sorted(s.annotations["job_id"] for s in records) == ["job-1", "job-2"]
    assert all(s.annotations["outcome"] == "handed_off" for s in records)


def test_without_tracing_annotations_are_a_no_op():
    with record_trace(None) as annotate:
        annotate("job_id", "job-1")  # nothing to annotate, nothing raised


@pytest.mark.parametrize(
    ("environment", "on"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),  # outside Lambda: no X-Ray daemon to send to
    ],
)
def test_tracing_is_on_only_where_powertools_would_trace(monkeypatch, environment, on):
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing_on() is on


def test_where_tracing_is_off_the_handler_decorator_changes_nothing():
    def handler(event, context):
        return "done"

    assert NoTracer().capture_lambda_handler(capture_response=False)(handler) is handler
