"""X-Ray: each record gets its own subsegment, annotated with job id, company id and
outcome, in whichever record thread handles it, so a trace is found by job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import xray_recorder

from export_preflight.observability import record_trace


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
