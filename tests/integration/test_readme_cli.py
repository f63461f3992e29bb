"""Every command of the "Operator CLI" section (docs/operations.md) runs, as written, against the sandbox:
each `export-preflight` line of the section's ``bash`` blocks is run as its own process (as a
person types it), with the exit code its comment names (``exit N``; 0 when it names none).
When the docs and the CLI (or the sandbox's seeding and ids) drift apart, this fails."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
SECTION = "## Operator CLI"


def readme_commands() -> list[tuple[str, int]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL):
        for line in block.splitlines():
            command, _, comment = line.partition("#")
            if not command.strip().startswith("export-preflight"):
                continue
            found = re.search(r"\bexit (\d+)", comment)
            commands.append((command.strip(), int(found.group(1)) if found else 0))
    return commands


COMMANDS = readme_commands()


def test_the_section_has_commands_for_the_sandbox():
    assert sum("--sandbox" in command for command, _ in COMMANDS) >= 8
    for command, _ in COMMANDS:  # what cannot run here belongs in a `text` block
        assert "--sandbox" in command or command in ("export-preflight --version",), command


def executable() -> list[str]:
    installed = Path(sys.executable).parent / "export-preflight"
    if installed.exists():
        return [str(installed)]
    return [sys.executable, "-c", "from export_preflight.cli import run; run()"]


def test_every_readme_command_runs_as_written_against_the_sandbox(tmp_path):
    environment = {
        name: value
        for name, value in os.environ.items()
        # the sandbox, not this test session's world
        if not name.startswith(("AWS_", "COMPANY_CONFIG_TABLE", "EXPORT_PREFLIGHT_"))
    }
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])

    def run(command: str, expected: int) -> str | None:
        words = shlex.split(command)
        stdout_file = None
        if ">" in words:
            at = words.index(">")
            words, stdout_file = words[:at], words[at + 1]
        done = subprocess.run(  # noqa: S603 - our own CLI, words from our docs
            executable() + words[1:],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if stdout_file:
            (tmp_path / stdout_file).write_text(done.stdout, encoding="utf-8")
        if done.returncode != expected or "Traceback" in done.stderr:
            return f"{command}\n  exit {done.returncode}, expected {expected}\n  stderr: {done.stderr[-800:]}"
        return None

    # Each command builds its own (identical) world: independent ones run two at a time; a
    # command reading a file an earlier one wrote (`> FILE`) runs after it.
    chains: list[list[tuple[str, int]]] = []
    written: dict[str, list[tuple[str, int]]] = {}
    for command, expected in COMMANDS:
        words = shlex.split(command)
        chain = next((written[w] for w in words if w in written), None)
        if chain is None:
            chain = []
            chains.append(chain)
        chain.append((command, expected))
        if ">" in words:
            written[words[words.index(">") + 1]] = chain
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda chain: [run(c, e) for c, e in chain], chains)
        failures = [failure for chain in results for failure in chain if failure]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("command", [c for c, _ in COMMANDS if "--sandbox" in c])
def test_sandbox_ids_in_the_readme_are_the_sandboxs(command):
    from sandbox.readiness import DEMO, DEMO_JOBS
    from sandbox.world import sandbox_id

    known = {sandbox_id(company.slug) for company in DEMO} | {job.job_id for job in DEMO_JOBS}
    for word in re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", command):
        assert word in known, f"{word} is no id of the sandbox's companies or jobs"
