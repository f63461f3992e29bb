"""A connector setting's environment variable is declared once: the settings' ``env_prefix``
and field name (``ConnectorSpec.variables``). template.yaml and the simulators are held to it,
and the stack's Outputs carry each setting to the operator CLI (``--stack``: ``stack.py``)."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from export_preflight.connectors import CONNECTORS
from export_preflight.stack import settings_of
from sandbox.simulators.registry import accounting_simulators
from sandbox.stack import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
DECLARED = {variable: system for system, spec in CONNECTORS.items() for variable in spec.variables().values()}
PREFIXES = {str(spec.settings.model_config.get("env_prefix", "")): system for system, spec in CONNECTORS.items()}


def function_environments() -> dict[str, dict[str, Any]]:
    """Each function's environment: the template's Globals' variables and its own."""
    template = load_template()
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {
        name: {**shared, **resource.get("Properties", {}).get("Environment", {}).get("Variables", {})}
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def checking_functions() -> dict[str, dict[str, Any]]:
    """The functions that check companies: those whose environment sets any connector setting."""
    return {name: env for name, env in function_environments().items() if set(env) & set(DECLARED)}


def test_the_preflight_function_checks_companies() -> None:
    assert "PreflightFunction" in checking_functions()


@pytest.mark.parametrize("system", list(CONNECTORS))
def test_every_setting_is_in_the_template_or_has_a_default(system: str) -> None:
    spec = CONNECTORS[system]
    for function, env in checking_functions().items():
        for field, variable in spec.variables().items():
            required = spec.settings.model_fields[field].is_required()
            assert variable in env or not required, f"{function} does not set {variable}, which {system} needs"


def test_the_template_names_connector_settings_exactly_as_declared() -> None:
    for function, env in function_environments().items():
        for variable in env:
            system = next((s for prefix, s in PREFIXES.items() if prefix and variable.startswith(prefix)), None)
            if system is not None:
                assert variable in DECLARED, (
                    f"{function} sets {variable}, which no {system} setting reads "
                    f"(declared: {sorted(CONNECTORS[system].variables().values())})"
                )


def deployed_values() -> Resolver:
    """The template's values in a stack where every parameter and resource has a value of its own."""
    template = load_template()
    parameters = {name: f"https://{name}.stack.test" for name in template["Parameters"]}
    parameters["SecretsPrefix"] = "stack-prefix/"
    return Resolver(template, parameters, ref=lambda name: f"ref:{name}", attribute=lambda name, key: f"{name}.{key}")


@pytest.mark.parametrize("system", list(CONNECTORS))
def test_the_stack_outputs_give_the_cli_every_setting_the_functions_get(system: str) -> None:
    """``--stack`` reads a deployed stack's Outputs as the functions' settings: each setting of
    the system that a function gets has an Output that ``settings_of`` turns into that value."""
    values = deployed_values()
    outputs = {key: str(values.resolve(output["Value"])) for key, output in load_template()["Outputs"].items()}
    from_the_stack = settings_of(outputs)
    variables = set(CONNECTORS[system].variables().values())
    for function, env in checking_functions().items():
        for variable in sorted(variables & set(env)):
            expected = str(values.resolve(env[variable]))
            assert from_the_stack.get(variable) == expected, (
                f"{function} gets {variable} = {env[variable]}, which no stack Output in template.yaml carries "
                f"to the CLI (settings_of: {from_the_stack.get(variable)!r}; ConnectorSpec.stack_outputs: "
                f"{CONNECTORS[system].stack_outputs()})"
            )


@pytest.mark.parametrize("simulator", accounting_simulators(), ids=lambda simulator: simulator.system)
def test_simulators_name_settings_the_connector_declares(simulator: Any) -> None:
    environment = simulator.environment(SimpleNamespace(base_url="http://127.0.0.1:1"))  # unknown fields raise
    assert set(environment) <= set(CONNECTORS[simulator.system].variables().values())


def test_simulators_do_not_spell_variable_names() -> None:
    for path in sorted((ROOT / "sandbox" / "simulators").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in DECLARED:
                pytest.fail(f"{path.name}:{node.lineno} spells {node.value}: name the setting's field instead")
