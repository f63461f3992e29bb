"""The operator CLI's conventions (docs/operations.md, "Operator CLI"): --version; global flags before
or after the command; --json always a list with the documents' camelCase keys, errors
too; a summary line and a documented exit-code precedence for several companies; output
that fits the terminal; Ctrl-C and a closed pipe end quietly; bad JSON input is one line."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import export_preflight.aws  # noqa: F401 - imported with the tests: the service log handler on pytest's stream
from export_preflight import cli

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).parent / "export-preflight")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = out or io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def economic_company(sandbox, slug: str, number: int, **traits):
    return sandbox.add_company("economic", slug, agreement_number=number, **traits)


def economic_down(sandbox, slug: str) -> None:
    sandbox.economic.inject(
        "GET",
        "/self",
        status=503,
        times=None,
        when=lambda request: request.headers.get("X-AgreementGrantToken", "").startswith(f"grant-{slug}-"),
    )


# ---------------------------------------------------------------- --version, flags anywhere


def test_version_prints_the_package_version():
    code, out, _ = run("--version")
    assert code == 0 and re.fullmatch(r"export-preflight \d+\.\d+\.\d+\n", out), out


def test_global_flags_are_accepted_before_and_after_the_command(sandbox):
    company = economic_company(sandbox, "flags", 420001)
    sandbox.sweep()

    before = run("--json", "--verbose", "readiness")
    after = run("readiness", "--json", "--verbose")
    nested = run("config", "get", company.company_id, "--verbose")

    assert before[0] == after[0] == 0
    assert json.loads(before[1]) == json.loads(after[1])
    assert nested[0] == 0 and json.loads(nested[1])["companyId"] == company.company_id


# ---------------------------------------------------------------- --json: always a list, camelCase, errors too


def test_json_is_always_a_list_with_camel_case_keys(sandbox):
    company = economic_company(
        sandbox,
        "barred",
        420002,
        configuration={"mappings": {"journal": 1, "expenseAccount": 9999, "contraAccount": 6800}},
    )
    job = sandbox.add_job(company)

    code, out, _ = run("check", company.company_id, "--json", "--no-record")
    (readiness,) = json.loads(out)
    assert code == 1 and readiness["companyId"] == company.company_id and readiness["status"] == "not_ready"
    assert {"checkedAt", "accountingSystem", "displayName", "grantLapsesAt"} <= readiness.keys()
    assert [(p["check"], p["reasonType"]) for p in readiness["problems"]] == [
        ("mapped_accounts", "invalid_configuration")
    ]
    assert not any("_" in key for key in readiness) and "reason_type" not in out

    code, out, _ = run("job", job["id"], "--company", company.company_id, "--dry-run", "--json")
    (decision,) = json.loads(out)
    assert code == 1 and decision["outcome"] == "failed_early" and decision["jobId"] == job["id"]
    assert decision["reasonType"] == "invalid_configuration"


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (("check", "--json"), 2, "check: name company ids, or --all (not both)"),
        (("--json", "check", "not-a-uuid"), 2, "usage: argument COMPANY_ID"),
        (("config", "get", "99999999-9999-4999-8999-999999999999", "--json"), 1, "no configuration item"),
    ],
)
def test_errors_are_json_too_with_json(sandbox, argv, code, said):
    exit_code, out, err = run(*argv)

    (document,) = json.loads(out)
    assert exit_code == code and document["exitCode"] == code
    assert said in document["error"] and said in err
    assert set(document) == {"error", "exitCode"}


# ---------------------------------------------------------------- several companies


def test_check_all_ends_with_a_summary_line(sandbox):
    economic_company(sandbox, "ready-one", 420003)
    economic_company(sandbox, "revoked", 420004, grant_token="grant-that-was-revoked")

    code, out, _ = run("check", "--all", "--no-record")

    assert code == 1
    assert out.splitlines()[-1] == "2 checked: 1 ready, 1 not ready, 0 unknown"


def test_a_company_not_ready_outranks_one_whose_check_could_not_finish(sandbox):
    """Precedence (docs/operations.md, "Operator CLI"): 2, then 1, then 3, then 0. A definite 'not ready' needs fixing
    whatever the retry of the unknown one finds."""
    economic_company(sandbox, "revoked", 420005, grant_token="grant-that-was-revoked")
    economic_company(sandbox, "flaky", 420006)
    economic_down(sandbox, "flaky")

    code, out, _ = run("check", "--all", "--no-record")

    assert "1 not ready, 1 unknown" in out.splitlines()[-1]
    assert code == 1
    assert [cli.worst(codes) for codes in ([0, 3], [3, 1, 0], [1, 2, 3], [])] == [3, 1, 2, 0]


# ---------------------------------------------------------------- the terminal's width


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("width", "with_rich"), [(150, True), (80, True), (80, False)], ids=["wide-rich", "narrow", "without-rich"]
)
def test_the_readiness_table_fits_the_terminal(sandbox, monkeypatch, width, with_rich):
    companies = [
        economic_company(sandbox, "a-company-with-a-rather-long-display-name", 420007),
        economic_company(sandbox, "revoked", 420008, grant_token="grant-that-was-revoked"),
    ]
    sandbox.sweep()
    monkeypatch.setenv("COLUMNS", str(width))
    if not with_rich:
        for name in ("rich", "rich.console", "rich.table"):
            monkeypatch.setitem(sys.modules, name, None)  # as if not installed

    code, out, _ = run("readiness", out=Terminal())

    plain = ANSI.sub("", out)
    lines = plain.splitlines()
    assert code == 0 and lines
    assert max(len(line) for line in lines) <= width, plain
    for company in companies:  # every company is still there, whole
        assert company.company_id in plain
    assert "not_ready" in plain and "rejected" in plain, plain  # the first problem (wrapped or folded)


def test_without_a_terminal_each_row_is_one_line(sandbox):
    economic_company(sandbox, "revoked", 420009, grant_token="grant-that-was-revoked")
    sandbox.sweep()

    _, out, _ = run("readiness")

    assert len(out.splitlines()[1]) > 80 and "\x1b[" not in out


# ---------------------------------------------------------------- Ctrl-C and a closed pipe


def sandbox_process(*argv: str, **options) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own installed command
        [COMMAND, "--sandbox", *argv], text=True, stderr=subprocess.PIPE, **options
    )


def test_ctrl_c_ends_with_one_line_and_exit_130():
    process = sandbox_process("check", "--all", "--no-record", stdout=subprocess.DEVNULL)
    assert process.stderr is not None
    said = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the checks run
        line = process.stderr.readline()
        said.append(line)
        if not line or line.startswith("[2/"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    code = process.wait(timeout=60)

    assert code == 130, "".join(said) + rest
    assert rest.strip().splitlines() == ["interrupted"], rest
    assert "Traceback" not in rest


def test_a_closed_pipe_ends_quietly_with_exit_141():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written (`| head` that has had enough)
    try:
        process = sandbox_process("readiness", stdout=write)
    finally:
        os.close(write)
    _, err = process.communicate(timeout=120)

    assert process.returncode == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err


def test_piping_into_head_is_quiet():
    answer = subprocess.run(  # noqa: S603 - a shell pipeline of our own command
        ["/bin/sh", "-c", f"'{COMMAND}' --sandbox readiness | head -1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert answer.stdout.split()[:4] == ["company", "name", "system", "readiness"]
    assert "Traceback" not in answer.stderr and "Exception ignored" not in answer.stderr


# ---------------------------------------------------------------- bad JSON input


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError in the parser
        '{"companyId": "11111111-1111-4111-8111-111111111111", "n": ' + "7" * 5_000 + "}",  # int() refuses
        "\ud800",  # not valid UTF-8 once written
        "",
    ],
    ids=["deep", "long-number", "not-utf-8", "empty"],
)
def test_bad_json_input_is_one_line_and_exit_2(tmp_path, text):
    path = tmp_path / "company.json"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))

    code, out, err = run("config", "validate", str(path))

    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out + err
    assert "Traceback" not in out + err
