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
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from .simulators.businesscentral import gl_setup as businesscentral_gl_setup
from .simulators.quickbooks import us_tax_codes
from .world import Sandbox, sandbox_id

DAY = 86_400
US_MAPPINGS = {"expenseAccount": "7", "contraAccount": "10"}  # a US company maps no purchase tax code


def _days_from_today(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class DemoCompany:
    slug: str
    system: str
    expected: str  # ready / not_ready / unknown
    reason_type: str | None = None
    traits: dict[str, Any] | None = None
    after: Callable[[Sandbox, str], None] | None = None  # more set-up, given the slug
    notice: str | None = None  # a readiness notice expected to contain this


def _economic_down(sandbox: Sandbox, slug: str) -> None:
    sandbox.economic.inject(
        "GET",
        "/self",
        status=503,
        times=None,
        when=lambda request: request.headers.get("X-AgreementGrantToken", "").startswith(f"grant-{slug}-"),
    )


def _idle_grant(sandbox: Sandbox, slug: str) -> None:
    """The stored token set was last refreshed 59 days ago: Xero drops it after 60 unused."""
    secret_id = sandbox.companies[slug].configuration["accountingCredentialsSecretId"]
    secrets = sandbox.aws.client("secretsmanager")
    tokens = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    secrets.put_secret_value(
        SecretId=secret_id, SecretString=json.dumps({**tokens, "refreshedAt": time.time() - 59 * DAY})
    )


def _grant_ending(sandbox: Sandbox, slug: str) -> None:
    """Intuit's hard end of this QuickBooks connection is 30 days away; the stored access
    token has expired, so the sweep's check refreshes it and learns the end from the answer."""
    grant = sandbox.companies[slug].grant
    grant.hard_expires_at = time.time() + 30 * DAY  # type: ignore[union-attr]


def _disconnect_xero(sandbox: Sandbox, slug: str) -> None:
    company = sandbox.companies[slug]
    sandbox.xero.disconnect(company.grant, company.configuration["accountingCompanyRef"])  # type: ignore[attr-defined]


DEMO: tuple[DemoCompany, ...] = (
    DemoCompany("nordlys", "economic", "ready", traits={"agreement_number": 200001}),
    DemoCompany(
        "revoked-grant",
        "economic",
        "not_ready",
        "accounting_system_authentication_failure",
        traits={"agreement_number": 200002, "grant_token": "grant-that-was-revoked"},
    ),
    DemoCompany(
        "incomplete-mappings",
        "economic",
        "not_ready",
        "missing_configuration",
        traits={"agreement_number": 200003, "configuration": {"mappings": {"journal": 1, "vatCodes": ["I25"]}}},
    ),
    DemoCompany(
        "economic-down",
        "economic",
        "unknown",
        "accounting_system_unreachable",
        traits={"agreement_number": 200004},
        after=_economic_down,
    ),
    DemoCompany("xero-thames", "xero", "ready"),
    DemoCompany("xero-idle-grant", "xero", "ready", after=_idle_grant),
    DemoCompany(
        "xero-disconnected", "xero", "not_ready", "accounting_system_authentication_failure", after=_disconnect_xero
    ),
    DemoCompany(
        "xero-archived-account",
        "xero",
        "not_ready",
        "invalid_configuration",
        traits={"configuration": {"mappings": {"expenseAccount": "499", "contraAccount": "615"}}},
    ),
    DemoCompany("fortnox-ready", "fortnox", "ready", traits={"organisation_number": "556100-0001"}),
    DemoCompany(
        "fortnox-no-licence",
        "fortnox",
        "not_ready",
        "authorization_failure",
        traits={
            "organisation_number": "556100-0002",
            "configuration": {"vendorBookkeepingEnabled": True},
            "company": {
                "licences": {
                    *("companyinformation", "bookkeeping", "settings", "supplier", "inbox", "archive", "connectfile")
                }
            },
        },
    ),
    DemoCompany(
        "fortnox-vendor-ready",
        "fortnox",
        "ready",
        traits={"organisation_number": "556100-0003", "configuration": {"vendorBookkeepingEnabled": True}},
    ),
    DemoCompany("qbo-ready", "quickbooks", "ready"),
    DemoCompany(
        "qbo-us",
        "quickbooks",
        "ready",
        traits={"company": {"country": "US", "tax_codes": us_tax_codes()}, "configuration": {"mappings": US_MAPPINGS}},
    ),
    DemoCompany(
        "qbo-books-closed",
        "quickbooks",
        "not_ready",
        "invalid_configuration",
        traits={"company": {"book_close_date": _days_from_today(0)}},
    ),
    DemoCompany(
        "qbo-closed-last-quarter",
        "quickbooks",
        "ready",
        traits={"company": {"book_close_date": _days_from_today(-60)}},
        notice="are closed up to",
    ),
    DemoCompany(
        "qbo-grant-ending",
        "quickbooks",
        "ready",
        traits={"expired_token": True},
        after=_grant_ending,
        notice="ends for good on",
    ),
    DemoCompany(
        "qbo-unsuitable-accounts",
        "quickbooks",
        "not_ready",
        "invalid_configuration",
        traits={"configuration": {"mappings": {"expenseAccount": "13", "contraAccount": "2100", "vatCodes": ["3"]}}},
    ),
    DemoCompany("bc-aarhus", "businesscentral", "ready"),
    DemoCompany("bc-us", "businesscentral", "ready", traits={"vat": False}),
    DemoCompany(
        "bc-unregistered-app",
        "businesscentral",
        "not_ready",
        "accounting_system_authentication_failure",
        traits={"unregistered_app": True},
    ),
    DemoCompany(
        "bc-posting-window-closed",
        "businesscentral",
        "not_ready",
        "invalid_configuration",
        traits={"gl_setup": businesscentral_gl_setup(allow_from="2020-01-01", allow_to="2020-12-31")},
    ),
)


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
