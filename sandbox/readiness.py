"""``make readiness``: the readiness sweep, locally, on an embedded default.

Starts moto and the simulators on 127.0.0.1, seeds companies on every accounting system
(some ready, some not, one whose accounting system is down, one whose OAuth grant would
lapse from disuse before the next sweep), runs the scheduled sweep once through the real
readiness function, and prints the readiness table (``export-preflight readiness``).
Exits non-zero if any company's readiness differs from what its seeding expects.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .scenarios import READINESS_DEMO as DEMO
from .world import Sandbox, sandbox_id


@dataclass(frozen=True)
class DemoJob:
    """A claimed (``in_progress``) export job of a demo company; ``decided``: preflighted
    once through the function already (its decision recorded, so ``rerun`` finds it)."""

    company: str
    name: str
    decided: bool = False

    @property
    def job_id(self) -> str:
        return sandbox_id(f"{self.company}/{self.name}")


DEMO_JOBS: tuple[DemoJob, ...] = (
    DemoJob("nordlys", "claimed"),  # passes preflight
    DemoJob("incomplete-mappings", "claimed"),  # would be failed early
    DemoJob("nordlys", "handed-on", decided=True),  # handed on to the ready-jobs queue
)


def seed_demo(sandbox: Sandbox) -> None:
    """The demo companies and their claimed jobs; the same ids every time (``sandbox_id``)."""
    for company in DEMO:
        sandbox.add_company(company.system, company.slug, **(company.traits or {}))
        if company.after:
            company.after(sandbox, company.slug)
    for job in DEMO_JOBS:
        seeded = sandbox.add_job(sandbox.companies[job.company], job.name)
        if job.decided:
            sandbox.enqueue_job(seeded)
    if any(job.decided for job in DEMO_JOBS) and sandbox.resources is not None:
        sandbox.poller().drain(max_seconds=30, idle_rounds=1, pause=0)
        sandbox.queue_bodies(sandbox.resources.ready_jobs_queue_url)  # the export stage took them


def commands_to_try() -> list[str]:
    """``export-preflight --sandbox`` commands with the demo world's own ids (docs/operations.md, "Operator CLI")."""
    ids = {company.slug: sandbox_id(company.slug) for company in DEMO}
    claimed = next(job for job in DEMO_JOBS if not job.decided)
    decided = next(job for job in DEMO_JOBS if job.decided)
    return [
        "export-preflight --sandbox readiness",
        "export-preflight --sandbox check --all",
        f"export-preflight --sandbox check {ids['nordlys']}",
        f"export-preflight --sandbox job {claimed.job_id} --company {ids[claimed.company]} --dry-run",
        f"export-preflight --sandbox rerun {decided.job_id}",
        f"export-preflight --sandbox config get {ids['nordlys']}",
    ]


@contextlib.contextmanager
def demo_world(err: IO[str]) -> Iterator[Sandbox]:
    """The embedded world with the demo companies, swept once (``export-preflight --sandbox``)."""
    with _quiet(), Sandbox(visibility_timeout=1) as sandbox:
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' EMF metric documents
            seed_demo(sandbox)
            print(
                f"sandbox: {len(DEMO)} companies and {len(DEMO_JOBS)} claimed jobs seeded; "
                "running the readiness sweep once ...",
                file=err,
                flush=True,
            )
            sandbox.sweep()
        yield sandbox


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", os.environ.get("LOG_LEVEL", "CRITICAL"))
    yield


def main() -> int:
    started = time.monotonic()
    with demo_world(sys.stderr) as sandbox:
        from export_preflight import cli
        from export_preflight.runtime import get_runtime

        status = cli.main(["readiness"])
        recorded = {r.display_name: r for r in get_runtime().readiness.all()}
        token_calls = sandbox.xero.token_calls  # type: ignore[attr-defined]
    mismatches = []
    for company in DEMO:
        found = recorded.get(company.slug)
        got = (found.status, found.reason_type) if found else ("missing", None)
        if got[0] != company.expected or (company.reason_type and got[1] != company.reason_type):
            mismatches.append(f"{company.slug}: expected {company.expected} {company.reason_type or ''}, got {got}")
        if company.notice and not (found and any(company.notice in notice for notice in found.notices)):
            mismatches.append(f"{company.slug}: expected a notice with {company.notice!r}")
    idle = recorded.get("xero-idle-grant")
    print(
        f"\nthe idle Xero grant was {'refreshed to keep it alive' if idle and idle.grant_renewed else 'NOT refreshed'}"
        f" ({token_calls} Xero token calls); {time.monotonic() - started:.1f} s"
    )
    if not (idle and idle.grant_renewed):
        mismatches.append("xero-idle-grant: the sweep did not keep its grant alive")
    for line in mismatches:
        print(f"UNEXPECTED {line}", file=sys.stderr)
    if mismatches or status:
        return 1
    print("every company's readiness is as expected")
    print("\ncommands to try (the same ids every time: the sandbox is seeded the same way):")
    for command in commands_to_try():
        print(f"  .venv/bin/{command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
