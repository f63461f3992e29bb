"""``make run``: the main job, locally, on the embedded default.

Starts moto and the simulators on 127.0.0.1, seeds the default companies and claimed
jobs, drives the real handler with a poller that behaves like the SQS event source,
then prints one line per job and the final job states. Exits non-zero if any job
ended differently from what its scenario expects.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter

from .scenarios import Seeded, seed_default
from .world import Sandbox


def observe(sandbox: Sandbox, seeded: list[Seeded]) -> list[tuple[Seeded, str, str | None, str]]:
    assert sandbox.resources is not None
    handed_off = Counter(
        json.loads(m["body"])["jobId"] for m in sandbox.queue_bodies(sandbox.resources.ready_jobs_queue_url)
    )
    dead = sandbox.queue_bodies(sandbox.resources.claimed_jobs_dlq_url)
    dead_kinds = Counter(m["attributes"].get("rejectKind", "redriven by SQS") for m in dead)
    events = Counter(event["jobId"] for event in sandbox.pleo.events)
    rows = []
    for item in seeded:
        if item.job_id is None:
            kind = item.expected_reason_type or ""
            count = dead_kinds.get(kind, 0)
            rows.append((item, "rejected" if count else "missing", kind, f"{count} message(s) in the DLQ"))
            continue
        job = sandbox.pleo.job(item.job_id)
        if events[item.job_id] and job["status"] == "failed":
            extra = "" if events[item.job_id] == 1 else f" ({events[item.job_id]} failed events!)"
            rows.append((item, "failed_early", job["failureReasonType"], (job["failureReason"] or "") + extra))
        elif handed_off[item.job_id]:
            extra = "" if handed_off[item.job_id] == 1 else f" ({handed_off[item.job_id]} hand-offs!)"
            rows.append(
                (
                    item,
                    "handed_off" if handed_off[item.job_id] == 1 else "handed_off_twice",
                    None,
                    "sent to the ready-jobs queue" + extra,
                )
            )
        elif not events[item.job_id]:
            rows.append((item, "skipped", None, f"job left alone (status {job['status']})"))
        else:
            rows.append((item, "unexpected", job.get("failureReasonType"), f"status {job['status']}"))
    return rows


def main() -> int:
    # An invocation whose records were all decided reports its outcomes as single metrics;
    # Powertools then warns that the invocation-wide set is empty. Expected, not news here.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", os.environ.get("LOG_LEVEL", "CRITICAL"))
    started = time.monotonic()
    with Sandbox(visibility_timeout=1) as sandbox:
        seeded = seed_default(sandbox)
        print(
            f"seeded {len(seeded)} scenarios; Pleo simulator {sandbox.pleo.base_url}, "
            + ", ".join(f"{name} simulator {server.base_url}" for name, server in sandbox.accounting.items())
            + f", moto {sandbox.aws.endpoint_url}"
        )
        emitted = io.StringIO()
        with contextlib.redirect_stdout(emitted):  # the EMF metric documents the handler prints
            report = sandbox.poller().drain(max_seconds=90)
        metric_lines = [line for line in emitted.getvalue().splitlines() if '"_aws"' in line]
        rows = observe(sandbox, seeded)
        print(f"\n{'scenario':<22} {'job':<10} {'company':<10} {'outcome':<13} {'reason type':<40} reason")
        mismatches = 0
        for item, outcome, reason_type, reason in rows:
            ok = outcome == item.expected_outcome and (
                item.expected_reason_type is None or reason_type == item.expected_reason_type
            )
            mismatches += not ok
            print(
                f"{item.label:<22} {(item.job_id or '-')[:8]:<10} {(item.company_id or '-')[:8]:<10} "
                f"{outcome:<13} {reason_type or '-':<40} {reason}{'' if ok else '   <-- UNEXPECTED'}"
            )
        print("\nfinal job states in the Pleo simulator:")
        for job in sandbox.pleo.jobs():
            print(f"  {job['id']}  {job['status']:<12} {job['failureReasonType'] or ''}")
        print(
            f"\npoller: {report.invocations} invocations, {report.records} records "
            f"({report.deleted} deleted, {report.failures} retried); "
            f"{len(sandbox.pleo.events)} failed events posted; {len(metric_lines)} EMF metric documents; "
            + "".join(
                f"{server.token_calls} {name} token calls; "
                for name, server in sandbox.accounting.items()
                if hasattr(server, "token_calls")
            )
            + f"{time.monotonic() - started:.1f} s"
        )
        if mismatches:
            print(f"{mismatches} scenario(s) did not end as expected", file=sys.stderr)
            return 1
        print("every scenario ended as expected")
        return 0


if __name__ == "__main__":
    sys.exit(main())
