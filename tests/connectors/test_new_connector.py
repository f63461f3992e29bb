"""``make new-connector NAME=acme`` writes a skeleton that compiles, is registered everywhere
the suite looks (the stack's Outputs included: the operator CLI reads its settings from them),
and fails its conformance row until filled in. It is generated into a copy of the project
(nothing is left in the tree)."""

from __future__ import annotations

import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.new_connector import generate
from sandbox.stack import load_template

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = shutil.ignore_patterns(".git", ".venv*", ".aws-sam", "__pycache__", ".*_cache", "bench", "docs", "events")
WRITTEN = {  # what the generator writes: its two new modules and four files that name every system
    "layers/preflight/export_preflight/connectors/acme.py",
    "sandbox/simulators/acme.py",
    "layers/preflight/export_preflight/connectors/__init__.py",
    "tests/connectors/table.py",
    "sandbox/scenarios.py",
    "template.yaml",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("project") / "export-preflight"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT)
    written = generate("acme", copy)
    assert {path.relative_to(copy).as_posix() for path in written} == WRITTEN
    return copy


def test_the_connector_docs_name_every_file_the_generator_writes() -> None:
    guide = (ROOT / "docs" / "connectors.md").read_text(encoding="utf-8")
    for path in sorted(WRITTEN):
        assert f"`{path}`" in guide, f"docs/connectors.md does not name {path}, which make new-connector writes"


def pytest_in(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(str(project / p) for p in ("layers/preflight", "."))}
    return subprocess.run(  # noqa: S603 - our own interpreter on our own tests
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_skeleton_compiles(project: Path) -> None:
    for path in (
        "layers/preflight/export_preflight/connectors/acme.py",
        "layers/preflight/export_preflight/connectors/__init__.py",
        "sandbox/simulators/acme.py",
        "sandbox/scenarios.py",
        "tests/connectors/table.py",
    ):
        py_compile.compile(str(project / path), doraise=True)


def test_the_skeleton_is_registered_and_declares_its_settings(project: Path) -> None:
    result = pytest_in(
        project,
        "tests/connectors/test_environment.py",
        "tests/connectors/test_conformance.py::test_table_covers_every_registered_connector",
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_skeletons_settings_reach_the_cli_through_the_stack_outputs(project: Path) -> None:
    outputs = load_template(project / "template.yaml")["Outputs"]
    assert outputs["AcmeApiBaseUrl"]["Value"] == {"Ref": "AcmeApiBaseUrl"}
    assert outputs["AcmeAuthBaseUrl"]["Value"] == {"Ref": "AcmeAuthBaseUrl"}
    result = pytest_in(project, "tests/connectors/test_environment.py", "-k", "stack_outputs and acme")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout, result.stdout[-3000:]


def test_the_skeleton_has_its_scenarios_and_a_readiness_company(project: Path) -> None:
    scenarios = (project / "sandbox/scenarios.py").read_text(encoding="utf-8")
    assert "*ACME_SCENARIOS," in scenarios
    readiness_demo = scenarios[scenarios.index("READINESS_DEMO: tuple") :]
    assert 'DemoCompany("acme-ready", "acme", "ready"),' in readiness_demo[: readiness_demo.index("\n)\n")]


def test_the_skeleton_fails_its_conformance_row_until_filled_in(project: Path) -> None:
    result = pytest_in(project, "tests/connectors/test_conformance.py", "-k", "acme and authentication_accepted")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed" in result.stdout
    assert "conformance row skeleton: fill in seed_acme()" in result.stdout
