"""``export-preflight``: the operator CLI (docs/operations.md, "Operator CLI").

    export-preflight check COMPANY_ID... | --all [--json] [--no-record]
    export-preflight job JOB_ID --company COMPANY_ID [--dry-run] [--json]
    export-preflight rerun JOB_ID [--company COMPANY_ID]
    export-preflight config validate FILE
    export-preflight config put FILE
    export-preflight config get COMPANY_ID
    export-preflight config schema
    export-preflight company add --company-id ID --system SYSTEM --config FILE [--credentials FILE]
        [--pleo-credentials FILE] [--replace-credentials]
    export-preflight readiness [--json]

Global flags (before or after the command): ``--stack NAME`` (or ``EXPORT_PREFLIGHT_STACK``),
``--sandbox``, ``--json``, ``--verbose``; ``--version``.

It works against a deployed stack, found by name (``--stack``: its CloudFormation Outputs
give the table and queue names, ``SecretsPrefix``, ...; see ``stack``), with the usual AWS
environment (``AWS_PROFILE``, ``AWS_REGION``); or against the function's settings
(``COMPANY_CONFIG_TABLE``, ...: docs/contracts.md, "Settings"); or, with ``--sandbox``, against the
embedded local world (moto and the simulators, seeded with the readiness demo companies
and swept once).

Results go to stdout (a table, or with ``--json`` always a JSON list, errors too:
``[{"error": ..., "exitCode": ...}]``); progress and logs to stderr. Exit codes: 0 ready /
done; 1 not ready, failed or refused; 2 usage, input or set-up errors (no Region,
credentials or stack; a missing table; access denied); 3 unknown (transient trouble kept
a check from finishing: try again later); 130 interrupted (Ctrl-C); 141 the reader of
stdout went away (``| head``). Several companies: 2 before 1 before 3 before 0.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any, NoReturn, cast
from uuid import UUID

from .errors import ConfigurationChanged, DecisionInFlight, PreflightError, TransientError
from .models import CheckOutcome, ClaimedJobMessage, CompanyConfiguration, Decision, Readiness

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`| head`), as for other tools
# Several results (check of several companies): the most telling code wins. A set-up or
# usage error first, then a definite "not ready" (retrying will not change it), then
# "unknown" (retry), then ready.
PRECEDENCE = (EXIT_USAGE, EXIT_NOT_READY, EXIT_UNKNOWN, EXIT_OK)
STATUS_EXIT = {"ready": EXIT_OK, "not_ready": EXIT_NOT_READY, "unknown": EXIT_UNKNOWN}
MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
GLOBAL_FLAGS = ("json", "sandbox", "stack", "verbose")
WIDE = 140  # a terminal at least this wide shows every column of the readiness table
PROGRESS = re.compile(r"^\[\d+/\d+\] ")


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    arguments = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in arguments[: arguments.index("--")] if "--" in arguments else "--json" in arguments
    try:
        args = _parser().parse_args(arguments)
    except _UsageError as error:
        return _failed(f"usage: {error} (export-preflight --help)", EXIT_USAGE, as_json=as_json, out=out, err=err)
    except _VersionAsked as version:
        print(version, file=out)
        return EXIT_OK
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else EXIT_OK
    said = _Recorder(err)
    shown = _Recorder(out)
    try:
        with _quiet_service_logs(err, verbose=args.verbose), _target(args, err):
            code: int = args.command(args, cast(IO[str], shown), cast(IO[str], said))
    except KeyboardInterrupt:
        print("interrupted", file=err, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_PIPE
    except Exception as error:  # classified below; anything else is raised again
        return _error_exit(error, as_json=args.json, out=out, err=err)
    if args.json and code != EXIT_OK and not shown.text:
        # the command said why on stderr only: the same words, as a JSON error document
        said_lines = [line for line in said.text.splitlines() if line.strip() and not PROGRESS.match(line)]
        error_text = "; ".join(said_lines) or f"exit code {code}"
        json.dump([{"error": error_text, "exitCode": code}], out, indent=2)
        out.write("\n")
    return code


def _error_exit(error: Exception, *, as_json: bool, out: IO[str], err: IO[str]) -> int:
    """An error that ended the command: a set-up problem (exit 2, naming the fix), transient
    trouble (3), another of our errors (2); anything else is a bug and raised again."""
    from .stack import setup_problem

    problem = setup_problem(error)
    if problem is not None:
        return _failed(f"set-up: {problem}", EXIT_USAGE, as_json=as_json, out=out, err=err)
    if isinstance(error, TransientError):
        message = f"unknown: {error} (transient trouble; try again later)"
        return _failed(message, EXIT_UNKNOWN, as_json=as_json, out=out, err=err)
    if isinstance(error, PreflightError | OSError):
        return _failed(f"error: {error}", EXIT_USAGE, as_json=as_json, out=out, err=err)
    raise error


def _failed(message: str, code: int, *, as_json: bool, out: IO[str], err: IO[str]) -> int:
    """One line on stderr; with --json also ``[{"error": ..., "exitCode": ...}]`` on stdout."""
    print(message, file=err)
    if as_json:
        json.dump([{"error": message, "exitCode": code}], out, indent=2)
        out.write("\n")
    return code


def worst(codes: Sequence[int]) -> int:
    """The exit code of several results (``PRECEDENCE``)."""
    return min(codes, key=PRECEDENCE.index) if codes else EXIT_OK


class _Recorder(io.TextIOBase):
    """A stream that remembers what was written through it (for --json error documents)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self._stream = stream
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())


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
        json.dump([_document(r) for r in results], out, indent=2)
        out.write("\n")
    else:
        for readiness in results:
            _print_readiness(readiness, out)
        if len(results) > 1 or args.all:
            counts = {status: sum(r.status == status for r in results) for status in STATUS_EXIT}
            print(
                f"\n{len(results)} checked: {counts['ready']} ready, {counts['not_ready']} not ready, "
                f"{counts['unknown']} unknown",
                file=out,
            )
    return worst([STATUS_EXIT[r.status] for r in results])


def job(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Preflight one job now (``--dry-run``: decide without acting)."""
    service = _runtime().service
    message = ClaimedJobMessage(jobId=args.job_id, companyId=args.company)
    if args.dry_run:
        decision = service.preview(message)
    else:
        from .company_checks import Attempt

        # Not a last attempt: transient trouble is reported (exit 3), not used to fail the job.
        decision = service.decide(message, attempt=Attempt(receive_count=1, max_receive_count=2))
    if args.json:
        json.dump([_document(decision)], out, indent=2)
        out.write("\n")
    else:
        _print_decision(decision, dry_run=args.dry_run, out=out)
    return EXIT_NOT_READY if decision.outcome == "failed_early" else EXIT_OK


def rerun_job(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Forget the job's decision and send its message again, if the job is still in progress."""
    from .rerun import rerun

    runtime = _runtime()
    if not runtime.settings.claimed_jobs_queue_url:
        print("CLAIMED_JOBS_QUEUE_URL is not set (docs/contracts.md, 'Settings')", file=err)
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
    if args.json:
        document: dict[str, Any] = {"jobId": done.job_id, "companyId": done.company_id, "messageId": done.message_id}
        document |= {"rerun": done.token, "previousOutcome": recorded.outcome if recorded else None}
        json.dump([document], out, indent=2)
        out.write("\n")
        return EXIT_OK
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


def config_schema(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """The JSON Schema of a configuration item, generated from the model the function and
    ``config validate`` use (the values that depend on the stack or the accounting system,
    such as secret names and reference shapes, are checked by ``config validate``)."""
    from .connectors import CONNECTORS
    from .models import CompanyConfigurationItem

    schema = CompanyConfigurationItem.model_json_schema()
    # The systems are the registered connectors (one list: a new connector needs no edit here).
    system = schema["$defs"]["ConfigurationFields"]["properties"]["accountingSystem"]
    system["anyOf"] = [{"type": "string", "enum": sorted(CONNECTORS)}, {"type": "null"}]
    json.dump(schema, out, indent=2)
    out.write("\n")
    return EXIT_OK


def company_add(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Onboard a company: its credentials secrets, its configuration item, its readiness."""
    from .onboarding import add_company
    from .settings import get_settings

    try:
        return add_company(
            args,
            out,
            err,
            runtime=_runtime(),
            secrets_prefix=get_settings().secrets_prefix,
            report_findings=_report_findings,
            show_readiness=_print_readiness,
            status_exit=STATUS_EXIT,
        )
    except ConfigurationChanged as error:
        print(f"refused: {error}", file=err)
        return EXIT_NOT_READY


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
        json.dump([_document(r) for r in records], out, indent=2)
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
    table: list[tuple[str, ...]] = [header, *rows]
    width = _terminal_width(out)
    if width is not None and width < WIDE:  # a narrow terminal: company, name, system, readiness, problem
        table = [_columns(row, (0, 1, 2, 3, 7)) for row in table]
    _table(table, out, width=width, rich=width is not None and width >= WIDE)
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


def _table(rows: list[tuple[str, ...]], out: IO[str], *, width: int | None, rich: bool = False) -> None:
    """On a terminal (``width``): a rich table that fits it (``rich``, when rich is
    installed), or plain columns, each row wrapped to fit. Otherwise (a pipe, a file) plain
    columns padded to their widest cell, one line per row (for grep and scripts)."""
    if rich and width is not None and _rich_table(rows, out, width):
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        print(_fit(line.rstrip(), width), file=out)


def _columns(row: tuple[str, ...], keep: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(row[i] for i in keep)


def _rich_table(rows: list[tuple[str, ...]], out: IO[str], width: int) -> bool:
    """The table with rich (imported only here: the Lambda layer does not ship it); False
    when rich is not installed."""
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        return False
    table = Table(box=None, pad_edge=False, header_style="bold")
    last = len(rows[0]) - 1
    for number, header in enumerate(rows[0]):  # the id whole; the name and the last column wrapped
        wraps = number in (1, last)
        table.add_column(header, no_wrap=not wraps, ratio=1 if number == last else None, overflow="fold")
    for row in rows[1:]:
        table.add_row(*(Text(cell) for cell in row))  # as text: no rich markup in reasons
    Console(file=out, width=width, highlight=False, soft_wrap=False).print(table)
    return True


def _terminal_width(out: IO[str]) -> int | None:
    """The terminal's width when ``out`` is one (``COLUMNS`` overrides it), else None."""
    if not getattr(out, "isatty", lambda: False)():
        return None
    return max(40, shutil.get_terminal_size().columns)


def _fit(line: str, width: int | None) -> str:
    """``line`` wrapped to ``width`` (continuation lines indented), as is without one."""
    if width is None or len(line) <= width:
        return line
    indent = " " * min(len(line) - len(line.lstrip()) + 7, width // 3)
    return "\n".join(textwrap.wrap(line, width=width, subsequent_indent=indent, break_on_hyphens=False))


def _document(model: Any) -> Any:
    """A result as JSON, keys in camelCase as docs/operations.md ("Operator CLI") documents them (``checkedAt``,
    ``reasonType``); the values of ``facts`` as the checks gave them."""
    return _camel(model.model_dump(mode="json"))


def _camel(value: Any) -> Any:
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    return {_camel_key(k): (v if k == "facts" else _camel(v)) for k, v in value.items()}


def _camel_key(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- configuration documents


def _report_validation(path: str, out: IO[str]) -> tuple[dict[str, Any], CompanyConfiguration | None]:
    """Validate the item document in FILE (docs/contracts.md, "Company configuration item") with the
    function's own validation (``configuration.validate_item``): print every error and
    warning, each naming its field by JSON path; the configuration, None when invalid. A
    file that is not a JSON object is one line."""
    from .configuration import DocumentError, parse_document, read_source, validate_item
    from .settings import get_settings

    try:
        document = parse_document(read_source(path))
    except DocumentError as error:
        print(f"error: {path}: {error}", file=out)
        return {}, None
    report = validate_item(document, secrets_prefix=get_settings().secrets_prefix)
    _report_findings(report, out)
    return document, report.configuration if report.accepted else None


def _report_findings(report: Any, out: IO[str]) -> None:
    """Errors, then warnings, one per line (at most ``MAX_SHOWN`` of each)."""
    from .configuration import MAX_SHOWN

    for label, findings in (("error", report.errors), ("warning", report.warnings)):
        for finding in findings[:MAX_SHOWN]:
            print(f"{label}: {finding}", file=out)
        if len(findings) > MAX_SHOWN:
            print(f"{label}: ... and {len(findings) - MAX_SHOWN} more", file=out)


# ---------------------------------------------------------------- plumbing


def _runtime() -> Any:
    """The operator's runtime: it never refreshes an OAuth token (a check that needs a new
    access token is unknown, exit 3), so the CLI cannot cost a company its grant."""
    from .runtime import get_runtime
    from .stack import ensure_ready

    ensure_ready()  # a Region, credentials and a stack (or its settings), before any AWS call
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
def _target(args: argparse.Namespace, err: IO[str]) -> Iterator[None]:
    """What the command runs against: the local world (--sandbox), a stack named by --stack
    or EXPORT_PREFLIGHT_STACK (its Outputs are the settings), or the settings as they are."""
    from .stack import STACK_ENV, SetupError, applied, outputs_of, region_settings, settings_of

    name = args.stack or os.environ.get(STACK_ENV) or None
    if args.sandbox:
        if args.stack:
            raise SetupError("--sandbox and --stack name two different targets: use one")
        with _world(err), applied(settings_of(_local_stack_outputs())):
            yield
        return
    with applied(region_settings(name)):
        if not name:
            yield
            return
        with applied(settings_of(outputs_of(name))):
            yield


def _local_stack_outputs() -> dict[str, str]:
    """The local stack's Outputs (``sandbox.stack``: read with DescribeStacks from the local
    world's moto, as ``--stack`` reads a deployed one). Without a local stack, the local
    world's environment already holds its settings."""
    from botocore.exceptions import ClientError

    from .aws import CLIENTS

    try:
        from sandbox.stack import local_stack_outputs
    except ImportError:
        return {}
    try:
        return dict(local_stack_outputs(CLIENTS.client))
    except ClientError as error:
        if "does not exist" in str(error):
            return {}
        raise


@contextlib.contextmanager
def _world(err: IO[str]) -> Iterator[None]:
    try:
        from sandbox.readiness import demo_world
    except ImportError:
        raise SystemExit("--sandbox needs the repository checkout (the sandbox package); run it from there") from None
    with demo_world(err):
        yield


class _UsageError(Exception):
    """A command line argparse refuses (raised instead of printing usage and exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _Version(argparse.Action):
    """``--version``: the installed package's version (looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("export-preflight")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        raise _VersionAsked(f"export-preflight {found}")


class _VersionAsked(Exception):
    """``--version`` (main prints it on its stdout)."""


def _global_flags(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--json, --sandbox, --stack and --verbose. On the top parser with their defaults; on
    every command too (so they may follow it), without defaults: a command's default must
    not undo a flag given before the command."""
    given = {option for action in parser._actions for option in action.option_strings}
    flags: list[tuple[str, Any, dict[str, Any]]] = [
        ("--json", False, {"action": "store_true", "help": 'JSON on stdout, always a list; errors [{"error": ...}]'}),
        ("--sandbox", False, {"action": "store_true", "help": "run against the embedded local world (no AWS)"}),
        ("--stack", None, {"metavar": "NAME", "help": "the deployed stack (its Outputs); or $EXPORT_PREFLIGHT_STACK"}),
        ("--verbose", False, {"action": "store_true", "help": "the service's logs on stderr, down to DEBUG"}),
    ]
    for option, default, options in flags:
        if option not in given:
            parser.add_argument(option, default=default if defaults else argparse.SUPPRESS, **options)
    for action in parser._actions:
        if action.dest in GLOBAL_FLAGS and not defaults:
            action.default = argparse.SUPPRESS
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                _global_flags(command, defaults=False)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="export-preflight",
        description="Operate export-preflight: check companies, preflight one job, re-run, manage configuration.",
        epilog="Exit codes: 0 ready/done, 1 not ready/failed/refused, 2 usage, input or set-up error, 3 unknown "
        "(retry), 130 interrupted, 141 stdout closed. Several companies: 2, then 1, then 3, then 0 wins.",
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
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
    sub = config.add_parser("schema", help="print the JSON Schema of a configuration document")
    sub.set_defaults(command=config_schema)

    company = commands.add_parser("company", help="onboard a company").add_subparsers(required=True, metavar="ACTION")
    sub = company.add_parser(
        "add",
        help="create a company's credentials secrets and configuration item, then check its readiness",
        description="Secret material is read from files (- for stdin), never from the command line.",
    )
    sub.add_argument("--company-id", type=UUID, required=True, metavar="ID", help="the Pleo company id")
    sub.add_argument(
        "--system", required=True, metavar="SYSTEM", help="the system's connector id (config schema lists them)"
    )
    sub.add_argument("--config", required=True, metavar="FILE", help="the configuration item document")
    sub.add_argument("--credentials", metavar="FILE", help="the accounting-system credentials secret's JSON")
    sub.add_argument("--pleo-credentials", metavar="FILE", help="the Pleo credentials secret's JSON")
    sub.add_argument("--replace-credentials", action="store_true", help="store the files' values over existing secrets")
    sub.set_defaults(command=company_add)

    sub = commands.add_parser("readiness", help="the last known readiness of every company")
    sub.add_argument("--json", action="store_true", help="JSON on stdout")
    sub.set_defaults(command=readiness)
    _global_flags(parser, defaults=True)
    return parser


def _checked_usage(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    if bool(args.company_ids) == bool(args.all):
        print("check: name company ids, or --all (not both)", file=err)
        return EXIT_USAGE
    return check(args, out, err)


def run() -> None:
    """The console entry point. Ctrl-C: one line, exit 130, without waiting for checks still
    on the network; stdout's reader gone (``| head``): quiet, exit 141."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = EXIT_PIPE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if code == EXIT_PIPE:  # nothing more reaches the reader: no flush at exit to fail again
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if code == EXIT_INTERRUPTED:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
