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
from typing import IO, Any

from .world import Sandbox

DAY = 86_400


@dataclass(frozen=True)
class DemoCompany:
    slug: str
    system: str
    expected: str  # ready / not_ready / unknown
    reason_type: str | None = None
    traits: dict[str, Any] | None = None
    after: Callable[[Sandbox, str], None] | None = None  # more set-up, given the slug


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
            "company": {"licences": {"companyinformation", "bookkeeping", "inbox", "archive", "connectfile"}},
        },
    ),
    DemoCompany("qbo-ready", "quickbooks", "ready"),
    DemoCompany(
        "qbo-unsuitable-accounts",
        "quickbooks",
        "not_ready",
        "invalid_configuration",
        traits={"configuration": {"mappings": {"expenseAccount": "13", "contraAccount": "2100", "vatCodes": ["3"]}}},
    ),
)


def seed_demo(sandbox: Sandbox) -> None:
    for company in DEMO:
        sandbox.add_company(company.system, company.slug, **(company.traits or {}))
        if company.after:
            company.after(sandbox, company.slug)


@contextlib.contextmanager
def demo_world(err: IO[str]) -> Iterator[Sandbox]:
    """The embedded world with the demo companies, swept once (``export-preflight --sandbox``)."""
    with _quiet(), Sandbox(visibility_timeout=1) as sandbox:
        seed_demo(sandbox)
        print(f"sandbox: {len(DEMO)} companies seeded; running the readiness sweep once ...", file=err, flush=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF metric documents
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
