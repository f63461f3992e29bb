"""What a cold start of the preflight function imports: the handler module and its runtime
(``get_runtime()``), in a fresh interpreter that can import only what the deployed layer
ships (bench/layer.py), as on Lambda. What the first decision does not need stays out:
the operator CLI and its modules, the connectors of systems no company has used yet,
pydantic-settings, Powertools' parser models (see export_preflight/__init__.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
sys.path[:0] = [ROOT]
from bench.layer import NotInLayer, absent_from_layer
sys.meta_path.insert(0, NotInLayer(absent_from_layer()))
sys.path[:0] = [FUNCTION, LAYER]
FIRST
from export_preflight.runtime import get_runtime
get_runtime()
print(json.dumps(sorted(sys.modules)))
"""

# Modules of the operator CLI (export-preflight): never needed by the functions.
CLI_ONLY = ("export_preflight.cli", "export_preflight.onboarding", "export_preflight.stack", "export_preflight.rerun")


def modules_after(first: str) -> list[str]:
    """``sys.modules`` of a fresh interpreter after ``first`` (an import statement) and
    ``get_runtime()``."""
    code = (
        CHILD.replace("ROOT", repr(str(ROOT)))
        .replace("FUNCTION", repr(str(ROOT / "functions" / "preflight")))
        .replace("LAYER", repr(str(ROOT / "layers" / "preflight")))
        .replace("FIRST", first)
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.splitlines()[-1]))


@cache
def handler_modules() -> frozenset[str]:
    return frozenset(modules_after("import app"))


def test_the_handler_imports_nothing_the_layer_does_not_ship():
    # (an import of one would have failed in the child: NotInLayer)
    assert "export_preflight.runtime" in handler_modules()
    assert not {"rich", "click", "pygments", "moto", "httpx._main"} & handler_modules()


@pytest.mark.parametrize("module", CLI_ONLY)
def test_the_handler_does_not_import_the_cli(module):
    assert module not in handler_modules()


def test_connectors_are_imported_on_first_use_only():
    from export_preflight.connectors import CONNECTORS

    connectors = {f"export_preflight.connectors.{name}" for name in CONNECTORS} | {
        "export_preflight.connectors.oauth_system",
        "export_preflight.connectors.paging",
    }
    assert not connectors & handler_modules()


def test_settings_are_read_without_pydantic_settings():
    assert not any(m.split(".")[0] == "pydantic_settings" for m in handler_modules())


def test_powertools_parser_models_are_not_built():
    """Powertools' batch utility imports its parser models only when pydantic is imported
    before it; export_preflight imports it first."""
    modules = handler_modules()
    if "aws_lambda_powertools.utilities.idempotency.serialization.pydantic" in modules:
        pytest.skip("the handler imports pydantic before export_preflight (Powertools idempotency's serializer)")
    assert "export_preflight.records" in modules
    assert not any(m.startswith("aws_lambda_powertools.utilities.parser") for m in modules)


def test_the_package_keeps_the_parser_models_out_when_it_is_first():
    modules = modules_after("import export_preflight.records")
    assert "aws_lambda_powertools.utilities.batch" in modules
    assert not any(m.startswith("aws_lambda_powertools.utilities.parser") for m in modules)
