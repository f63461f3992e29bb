"""``export-preflight``: the operator CLI (README, "Operator CLI").

    export-preflight check COMPANY_ID... | --all [--json] [--no-record]
    export-preflight job JOB_ID --company COMPANY_ID [--dry-run] [--json]
    export-preflight rerun JOB_ID [--company COMPANY_ID]
    export-preflight config validate FILE
    export-preflight config put FILE
    export-preflight config get COMPANY_ID
    export-preflight readiness [--json]

It works against AWS with the usual environment (``AWS_PROFILE``, ``AWS_REGION``) and the
function's settings (``COMPANY_CONFIG_TABLE``, ``READINESS_TABLE``, ...: README,
"Settings"), or, with ``--sandbox``, against the embedded local world (moto and the
simulators, seeded with the readiness demo companies and swept once).

Results go to stdout (a table, or JSON with ``--json``); progress and logs to stderr.
Exit codes: 0 ready / done; 1 not ready, failed or refused; 2 usage or input errors;
3 unknown (transient trouble kept a check from finishing: try again later).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from pydantic import ValidationError

from .errors import ConfigurationChanged, DecisionInFlight, PreflightError, TransientError
from .models import CheckOutcome, ClaimedJobMessage, CompanyConfiguration, Decision, Mappings, Readiness

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
STATUS_EXIT = {"ready": EXIT_OK, "not_ready": EXIT_NOT_READY, "unknown": EXIT_UNKNOWN}
MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    with _quiet_service_logs(err, verbose=args.verbose), _world(args.sandbox, err):
        try:
            code: int = args.command(args, out, err)
            return code
        except TransientError as error:
            print(f"unknown: {error} (transient trouble; try again later)", file=err)
            return EXIT_UNKNOWN
        except (PreflightError, OSError) as error:
            print(f"error: {error}", file=err)
            return EXIT_USAGE


# ---------------------------------------------------------------- commands


def check(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Dry-run every check for each company; exit 0 only when all are ready."""
    runtime = _runtime()
    companies = runtime.configurations.company_ids() if args.all else [str(c) for c in args.company_ids]
    if not companies:
        print("no companies to check" + (" (the configuration table is empty)" if args.all else ""), file=err)
        return EXIT_USAGE
    results = []
    for number, company_id in enumerate(companies, start=1):
        if len(companies) > 1:
            print(f"[{number}/{len(companies)}] checking {company_id}", file=err, flush=True)
        results.append(runtime.service.check_company(UUID(company_id), source="cli", record=not args.no_record))
    if args.json:
        documents = [r.model_dump(mode="json") for r in results]
        json.dump(documents if len(documents) > 1 or args.all else documents[0], out, indent=2)
        out.write("\n")
    else:
        for readiness in results:
            _print_readiness(readiness, out)
    return max(STATUS_EXIT[r.status] for r in results)


def job(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Preflight one job now (``--dry-run``: decide without acting)."""
    service = _runtime().service
    message = ClaimedJobMessage(jobId=args.job_id, companyId=args.company)
    if args.dry_run:
        decision = service.preview(message)
    else:
        from .service import Attempt

        # Not a last attempt: transient trouble is reported (exit 3), not used to fail the job.
        decision = service.decide(message, attempt=Attempt(receive_count=1, max_receive_count=2))
    if args.json:
        out.write(decision.model_dump_json(indent=2) + "\n")
    else:
        _print_decision(decision, dry_run=args.dry_run, out=out)
    return EXIT_NOT_READY if decision.outcome == "failed_early" else EXIT_OK


def rerun_job(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Forget the job's decision and send its message again, if the job is still in progress."""
    from .rerun import rerun

    runtime = _runtime()
    if not runtime.settings.claimed_jobs_queue_url:
        print("CLAIMED_JOBS_QUEUE_URL is not set (README, Settings)", file=err)
        return EXIT_USAGE
    recorded = runtime.decisions.recorded(str(args.job_id))
    company = args.company or (UUID(recorded.company_id) if recorded and recorded.company_id else None)
    if company is None:
        print(f"job {args.job_id} has no decision record: name its company with --company", file=err)
        return EXIT_USAGE
    found = runtime.service.read_job(company, args.job_id)
    if found is None or not found.in_progress:
        state = "not found in Pleo" if found is None else f"{found.status}, not in_progress"
        print(f"refused: job {args.job_id} is {state}; preflight would leave it alone", file=err)
        return EXIT_NOT_READY
    try:
        done = rerun(args.job_id, found.company_id, decisions=runtime.decisions, queue=runtime.queues)
    except DecisionInFlight as error:
        print(f"refused: {error}", file=err)
        return EXIT_NOT_READY
    previous = f" (was {recorded.outcome})" if recorded else ""
    print(
        f"job {done.job_id}: decision record removed{previous}; re-sent as message {done.message_id} "
        f"(rerun {done.token})",
        file=out,
    )
    return EXIT_OK


def config_validate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    _, configuration = _report_validation(args.file, out)
    if configuration is None:
        return EXIT_USAGE
    print(f"{args.file}: valid configuration of company {configuration.company_id}", file=out)
    return EXIT_OK


def config_put(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    document, configuration = _report_validation(args.file, out)
    if configuration is None:
        print("nothing was written", file=out)
        return EXIT_USAGE
    try:
        version = _runtime().configurations.put(configuration, document)
    except ConfigurationChanged as error:
        print(f"refused: {error}", file=err)
        return EXIT_NOT_READY
    print(
        f"stored the configuration of company {configuration.company_id} as version {version}; "
        f"check it with: export-preflight check {configuration.company_id}",
        file=out,
    )
    return EXIT_OK


def config_get(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """The stored document with its ``version``: edit it and ``config put`` it back."""
    document, version = _runtime().configurations.document_of(args.company_id)
    if document is None:
        print(f"company {args.company_id} has no configuration item", file=err)
        return EXIT_NOT_READY
    json.dump({**document, "version": version}, out, indent=2)
    out.write("\n")
    return EXIT_OK


def readiness(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """The last known readiness of every company: not ready first, then unknown, then ready."""
    order = {"not_ready": 0, "unknown": 1, "ready": 2}
    runtime = _runtime()
    # Only configured companies: a removed company's record is no longer true (the sweep removes it).
    configured = set(runtime.configurations.company_ids())
    records = sorted(
        (r for r in runtime.readiness.all() if r.company_id in configured),
        key=lambda r: (order[r.status], r.display_name or "", r.company_id),
    )
    if args.json:
        json.dump([r.model_dump(mode="json") for r in records], out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not records:
        print("no readiness recorded yet (the sweep has not run, or no company is configured)", file=out)
        return EXIT_OK
    rows = [
        (
            r.company_id,
            (r.display_name or "-")[:24],
            r.accounting_system or "-",
            r.status,
            _when(r.checked_at),
            r.source,
            _when(r.grant_lapses_at) if r.grant_lapses_at else "-",
            f"{r.problems[0].reason_type or '-'}: {r.problems[0].reason}"
            if r.problems
            else f"note: {r.notices[0]}"
            if r.notices
            else "",
        )
        for r in records
    ]
    header = ("company", "name", "system", "readiness", "checked at", "by", "grant lapses", "first problem or note")
    _table([header, *rows], out, wrap_last=getattr(out, "isatty", lambda: False)())
    counts = {status: sum(r.status == status for r in records) for status in order}
    print(f"\n{counts['ready']} ready, {counts['not_ready']} not ready, {counts['unknown']} unknown", file=out)
    return EXIT_OK


# ---------------------------------------------------------------- output


def _print_readiness(readiness: Readiness, out: IO[str]) -> None:
    name = f" ({readiness.display_name})" if readiness.display_name else ""
    system = readiness.accounting_system or "no accounting system"
    print(f"company {readiness.company_id}{name}, {system}: {readiness.status.upper().replace('_', ' ')}", file=out)
    unfinished = {p.check for p in readiness.problems if (p.reason or "").startswith("could not finish")}
    for outcome in readiness.checks or readiness.problems:
        _print_check(outcome, out, unknown=outcome.check in unfinished)
    if readiness.grant_lapses_at:
        renewed = " (refreshed now to keep it alive)" if readiness.grant_renewed else ""
        ends = readiness.grant_ends_at
        when = "lapses" if ends is None or ends > readiness.grant_lapses_at else "ends for good"
        lapse = "if unused by" if when == "lapses" else "on"
        print(f"  OAuth grant {when} {lapse} {_when(readiness.grant_lapses_at)}{renewed}", file=out)
    for notice in readiness.notices:
        print(f"  note: {notice}", file=out)


def _print_check(outcome: CheckOutcome, out: IO[str], *, unknown: bool = False) -> None:
    mark = "????" if unknown else MARK[outcome.status]
    if outcome.status == "passed":
        print(f"  {mark} {outcome.check}", file=out)
    elif outcome.status == "skipped":
        print(f"  {mark} {outcome.check:<20} {outcome.reason}", file=out)
    else:
        print(f"  {mark} {outcome.check:<20} {outcome.reason_type}: {outcome.reason}", file=out)


def _print_decision(decision: Decision, *, dry_run: bool, out: IO[str]) -> None:
    verb = {
        "failed_early": "would be failed early" if dry_run else "failed early",
        "handed_off": "would be handed on" if dry_run else "handed on",
        "skipped": "left alone",
        "rejected": "rejected",
    }[decision.outcome]
    print(f"job {decision.job_id} (company {decision.company_id}): {verb}", file=out)
    if decision.reason_type or decision.reason:
        print(f"  {decision.reason_type or '-'}: {decision.reason}", file=out)
    for outcome in decision.checks:
        _print_check(outcome, out)


def _table(rows: list[tuple[str, ...]], out: IO[str], *, wrap_last: bool) -> None:
    """Columns padded to their widest cell; the last column as is (long reasons) unless a
    terminal is narrow, then cut with an ellipsis."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        if wrap_last and len(line) > 200:
            line = line[:199] + "…"
        print(line.rstrip(), file=out)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- configuration documents


def _report_validation(path: str, out: IO[str]) -> tuple[dict[str, Any], CompanyConfiguration | None]:
    """Print the document's errors and warnings; its configuration, None when invalid."""
    document, configuration, errors, warnings = _validated(path)
    for line in errors:
        print(f"error: {line}", file=out)
    for line in warnings:
        print(f"warning: {line}", file=out)
    return document, configuration


def _validated(path: str) -> tuple[dict[str, Any], CompanyConfiguration | None, list[str], list[str]]:
    """The document, its configuration (None when invalid), errors and warnings, each
    naming the field. Unknown fields are errors (a misspelt mapping would otherwise be
    silently ignored)."""
    from .connectors import CONNECTORS

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        document = json.loads(text)
    except (OSError, UnicodeDecodeError) as error:
        return {}, None, [f"{path}: cannot read it ({error})"], []
    except json.JSONDecodeError as error:
        return {}, None, [f"{path}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})"], []
    if not isinstance(document, dict):
        return {}, None, [f"{path}: not a JSON object"], []
    errors = _unknown_fields(document)
    try:
        configuration = CompanyConfiguration.model_validate(document)
    except ValidationError as error:
        errors += [f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in error.errors()]
        return document, None, errors, []
    warnings: list[str] = []
    spec = CONNECTORS.get(configuration.accounting_system or "")
    if configuration.accounting_system and spec is None:
        errors.append(
            f"accountingSystem: {configuration.accounting_system!r} is not supported "
            f"(one of: {', '.join(sorted(CONNECTORS))})"
        )
    numeric = spec.numeric_fields if spec else frozenset()
    errors += [_field_first(problem) for problem in configuration.reference_problems(numeric)]
    from .settings import get_settings

    for secret_field in ("pleoCredentialsSecretId", "accountingCredentialsSecretId"):
        secret_problem = configuration.secret_id_problem(secret_field, get_settings().secrets_prefix)  # type: ignore[arg-type]
        if secret_problem:
            errors.append(_field_first(secret_problem))
    for name, value in (
        ("pleoCredentialsSecretId", configuration.pleo_credentials_secret_id),
        ("accountingSystem", configuration.accounting_system),
        ("accountingCompanyRef", configuration.accounting_company_ref),
        ("accountingCredentialsSecretId", configuration.accounting_credentials_secret_id),
    ):
        if not value:
            warnings.append(f"{name}: not set; the company's jobs cannot be {'read' if 'pleo' in name else 'checked'}")
    if spec is not None:
        required = spec.required_mappings + (spec.vendor_mappings if configuration.vendor_bookkeeping_enabled else ())
        for attribute, label in required:
            if not getattr(configuration.mappings, attribute):
                warnings.append(f"mappings: {label} is not set; the company will not be ready")
    if errors:
        return document, None, errors, warnings
    return document, configuration, errors, warnings


def _unknown_fields(document: dict[str, Any]) -> list[str]:
    known = _aliases(CompanyConfiguration) | {"version"}  # the stored version it is based on (config get)
    unknown = [f"{key}: unknown field" for key in document if key not in known]
    version = document.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        unknown.append("version: must be the whole number `config get` printed (or absent for a new company)")
    mappings = document.get("mappings")
    if isinstance(mappings, dict):
        known_mappings = _aliases(Mappings)
        unknown += [f"mappings.{key}: unknown field" for key in mappings if key not in known_mappings]
    return unknown


def _aliases(model: type[CompanyConfiguration] | type[Mappings]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _field_first(problem: str) -> str:
    """``mappings.expenseAccount must be a number`` -> ``mappings.expenseAccount: must be a number``."""
    name, _, rest = problem.partition(" ")
    return f"{name}: {rest}"


# ---------------------------------------------------------------- plumbing


def _runtime() -> Any:
    """The operator's runtime: it never refreshes an OAuth token (a check that needs a new
    access token is unknown, exit 3), so the CLI cannot cost a company its grant."""
    from .runtime import get_runtime

    return get_runtime(operator=True)


@contextlib.contextmanager
def _quiet_service_logs(err: IO[str], *, verbose: bool) -> Iterator[None]:
    """The service's JSON logs go to stderr (WARNING and up; all with --verbose): stdout is the result."""
    from .observability import logger

    streams = [(h, h.stream) for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    level = logger.log_level
    for handler, _ in streams:
        handler.setStream(err)
    logger.setLevel("DEBUG" if verbose else "WARNING")
    try:
        yield
    finally:
        for handler, stream in streams:
            handler.setStream(stream)
        logger.setLevel(level)


@contextlib.contextmanager
def _world(sandbox: bool, err: IO[str]) -> Iterator[None]:
    if not sandbox:
        yield
        return
    try:
        from sandbox.readiness import demo_world
    except ImportError:
        raise SystemExit("--sandbox needs the repository checkout (the sandbox package); run it from there") from None
    with demo_world(err):
        yield


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="export-preflight",
        description="Operate export-preflight: check companies, preflight one job, re-run, manage configuration.",
        epilog="Exit codes: 0 ready/done, 1 not ready/failed/refused, 2 usage or input error, 3 unknown (retry).",
    )
    parser.add_argument("--sandbox", action="store_true", help="run against the embedded local world (no AWS)")
    parser.add_argument("--verbose", action="store_true", help="the service's logs on stderr, down to DEBUG")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    sub = commands.add_parser("check", help="dry-run every check for companies (nothing is written to Pleo)")
    sub.add_argument("company_ids", nargs="*", type=UUID, metavar="COMPANY_ID")
    sub.add_argument("--all", action="store_true", help="every configured company")
    sub.add_argument("--json", action="store_true", help="JSON on stdout")
    sub.add_argument("--no-record", action="store_true", help="do not store the result in the readiness table")
    sub.set_defaults(command=_checked_usage)

    sub = commands.add_parser("job", help="preflight one job now")
    sub.add_argument("job_id", type=UUID, metavar="JOB_ID")
    sub.add_argument("--company", type=UUID, required=True, metavar="COMPANY_ID")
    sub.add_argument("--dry-run", action="store_true", help="decide, but post nothing to Pleo and hand nothing on")
    sub.add_argument("--json", action="store_true", help="JSON on stdout")
    sub.set_defaults(command=job)

    sub = commands.add_parser("rerun", help="forget a job's decision and send its message again")
    sub.add_argument("job_id", type=UUID, metavar="JOB_ID")
    sub.add_argument("--company", type=UUID, metavar="COMPANY_ID", help="when the job has no decision record")
    sub.set_defaults(command=rerun_job)

    config = commands.add_parser("config", help="company configuration documents").add_subparsers(
        required=True, metavar="ACTION"
    )
    sub = config.add_parser("validate", help="validate a configuration document (FILE, or - for stdin)")
    sub.add_argument("file", metavar="FILE")
    sub.set_defaults(command=config_validate)
    sub = config.add_parser(
        "put", help="validate, then store a configuration document (refused if changed since its version)"
    )
    sub.add_argument("file", metavar="FILE")
    sub.set_defaults(command=config_put)
    sub = config.add_parser("get", help="print a company's stored configuration document, with its version")
    sub.add_argument("company_id", type=UUID, metavar="COMPANY_ID")
    sub.set_defaults(command=config_get)

    sub = commands.add_parser("readiness", help="the last known readiness of every company")
    sub.add_argument("--json", action="store_true", help="JSON on stdout")
    sub.set_defaults(command=readiness)
    return parser


def _checked_usage(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if bool(args.company_ids) == bool(args.all):
        print("check: name company ids, or --all (not both)", file=err)
        return EXIT_USAGE
    return check(args, out, err)


def run() -> None:
    """The console entry point."""
    sys.exit(main())
