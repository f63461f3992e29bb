"""``make new-connector NAME=acme``: the skeleton of a new OAuth accounting system.

Writes the connector and simulator modules, registers the connector, adds its conformance
row, its settings to template.yaml (function environment, base-URL parameters and the
stack Outputs the operator CLI reads them from), its scenarios to ``make run`` and a company to
``make readiness``; every
piece that needs the vendor raises ``NotImplementedError`` naming what to fill in, so the
conformance suite fails for the new row until it is done. Prints the list of what to fill in.

Files changed besides its two new modules: ``connectors/__init__.py``,
``tests/connectors/table.py``, ``sandbox/scenarios.py``, ``template.yaml``; by hand, the
README, docs/contracts.md and docs/checks.md. Outside the system's own modules and tests
that is 6 files (docs/connectors.md, "Adding an accounting system").

    python -m sandbox.new_connector acme [--root DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

from export_preflight.connectors.base import AccountingConnector
from export_preflight.connectors.oauth_system import OAuthSystem, TokenService

ROOT = Path(__file__).resolve().parents[1]
TOKEN_ROLE = "auth"
TOKEN_PATH = "/oauth2/token"


def system_of(name: str) -> OAuthSystem:
    """The new system as the kit declares it (its settings' variable names come from here)."""
    title = name.capitalize()
    return OAuthSystem(
        system_id=name,
        display_name=title,
        env_prefix=f"{name.upper()}_",
        api_base_url=f"https://api.{name}.example",
        token_service=TokenService(TOKEN_ROLE, f"https://auth.{name}.example", TOKEN_PATH),
        client_credentials=f"export-preflight/{name}/client",
    )


def connector_module(name: str) -> str:
    title = name.capitalize()
    return f'''"""{title} connector (skeleton of `make new-connector`).

TODO: the vendor's API, its auth and its quirks, each fact with its source (see fortnox.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from ..models import Capability, CompanyConfiguration
from ..oauth import OAuthBearer
from .base import ConnectionProfile, LedgerEntry, Support
from .oauth_system import OAuthSystem, TokenService

NAME = "{title}"
TOKEN_PATH = "{TOKEN_PATH}"  # noqa: S105 - a URL path. TODO: the vendor's token path


def _fill_in(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"{{NAME}} connector skeleton: fill in {{what}} in connectors/{name}.py (docs/connectors.md)"
    )


class {title}Connector:
    """``AccountingConnector`` for one {title} company."""

    display_name = NAME
    where_to_fix = "{title} (TODO: where mappings are fixed) or the integration settings"
    permission_advice: str | None = None

    def __init__(self, api: httpx.Client, auth: OAuthBearer, config: CompanyConfiguration) -> None:
        self._api = api
        self._auth = auth
        self.grant: OAuthBearer | None = auth
        self._company_ref = config.accounting_company_ref or ""

    def authenticate(self) -> ConnectionProfile:
        raise _fill_in("authenticate()")

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        raise _fill_in("missing_permissions()")

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support:
        raise _fill_in("supports()")

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        raise _fill_in("accounts()")

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]:
        raise _fill_in("tax_codes()")


{name.upper()} = OAuthSystem(
    system_id="{name}",
    display_name=NAME,
    env_prefix="{name.upper()}_",
    api_base_url="https://api.{name}.example",  # TODO: the vendor's API
    token_service=TokenService("{TOKEN_ROLE}", "https://auth.{name}.example", TOKEN_PATH),  # TODO
    client_credentials="export-preflight/{name}/client",
)
{title}Settings = {name.upper()}.settings

# TODO: required_mappings, vendor_mappings, numeric_fields, company_ref, refresh_token_idle_days
SPEC = {name.upper()}.spec({title}Connector)
'''


def simulator_module(name: str) -> str:
    title = name.capitalize()
    return f'''"""A local simulator of {title}'s API (skeleton of `make new-connector`): only what the
connector calls and the conformance suite needs, following the vendor's own description.
"""

from __future__ import annotations

from typing import Any

from .base import SimulatorServer
from .registry import AccountingSeed, AccountingSimulator

CLIENT_ID = "pleo-preflight-local"
CLIENT_SECRET_ID = "export-preflight/{name}/client"


class {title}Simulator(SimulatorServer):
    """TODO: ``self.route(...)`` for the token endpoint and every call the connector makes."""


def _seed(sandbox: Any, simulator: {title}Simulator, slug: str, *, company_id: str, **traits: Any) -> AccountingSeed:
    raise NotImplementedError(
        "{title} simulator skeleton: fill in _seed() in sandbox/simulators/{name}.py (one company, its token set)"
    )


SIMULATOR = AccountingSimulator(
    system="{name}",
    create=lambda latency: {title}Simulator(latency=latency),
    settings=lambda server: {{
        "api_base_url": server.base_url,
        "{TOKEN_ROLE}_base_url": server.base_url,
        "client_credentials_secret_id": CLIENT_SECRET_ID,
    }},
    seed=_seed,
    # TODO: prepare=... (our OAuth app at the simulator: see seed_oauth_app)
)
'''


def conformance_row(name: str) -> str:
    title = name.capitalize()
    return f'''# ------------------------------------------------------------------ {title} (skeleton: fill in)


def seed_{name}(server: SimulatorServer, traits: Traits) -> Seeded:
    """TODO: one company with ``traits`` in the simulator; its configuration, secrets, settings."""
    raise NotImplementedError(
        "{title} conformance row skeleton: fill in seed_{name}(), first_call and ledger in tests/connectors/table.py"
    )


{name.upper()} = ConnectorUnderTest(
    spec=CONNECTORS["{name}"],
    simulator={title}Simulator,
    seed=seed_{name},
    first_call=("GET", r"/TODO"),
    ledger=Ledger(
        active_account="TODO",
        unusable_account="TODO",
        unknown_account="TODO",
        active_tax_code="TODO",
        inactive_tax_code="TODO",
        unknown_tax_code="TODO",
    ),
    token_endpoint=r"{TOKEN_PATH}",
)

'''


def scenarios(name: str) -> str:
    title = name.capitalize()
    return f'''def {name}_passes(sandbox: Sandbox) -> list[Seeded]:
    """TODO: a healthy {title} company passes; add a scenario per failure it adds."""
    return _scenario(sandbox, "{name}", "{name}-passes", "handed_off", None)


{name.upper()}_SCENARIOS: tuple[Seeder, ...] = ({name}_passes,)


'''


def template_settings(name: str) -> tuple[str, str, str]:
    """(function environment lines, parameters, Outputs) for template.yaml. Each base URL's
    parameter and Output are named as ``ConnectorSpec.stack_outputs()`` says (the operator
    CLI reads the Output: ``stack.py``); the secret id is ``${SecretsPrefix}`` and the
    default's suffix (``ConnectorSpec.prefixed_secrets()``)."""
    system = system_of(name)
    spec = system.spec(_no_connector)
    variables = spec.variables()
    named = spec.stack_outputs()
    title = name.capitalize()
    what = {"api_base_url": f"the {title} API", f"{TOKEN_ROLE}_base_url": f"{title}'s OAuth 2.0 token service"}
    environment = "".join(f"            {variables[field]}: !Ref {named[field]}\n" for field in what) + "".join(
        f'            {variables[field]}: !Sub "${{SecretsPrefix}}{suffix}"\n'
        for field, suffix in spec.prefixed_secrets().items()
    )
    defaults = {"api_base_url": system.api_base_url, f"{TOKEN_ROLE}_base_url": system.token_service.default_base_url}
    parameters = "".join(
        f"  {named[field]}:\n    Type: String\n    Default: {defaults[field]}\n"
        f'    AllowedPattern: "^https://.+"\n    Description: Base URL of {what[field]} ({variables[field]}).\n'
        for field in what
    )
    outputs = "".join(
        f"  {named[field]}:\n    Description: Base URL of {what[field]} ({variables[field]}).\n"
        f"    Value: !Ref {named[field]}\n"
        for field in what
    )
    return environment, parameters, outputs


def _no_connector(*_: object) -> AccountingConnector:
    raise NotImplementedError("only the skeleton's settings are asked for here")


def _insert(path: Path, anchor: str, text: str, *, after: bool = False, within: str = "") -> None:
    """``text`` before (or after) the first line that matches ``anchor`` (a regex), from the
    first line that matches ``within`` on (when given: a section, e.g. ``^Outputs:``)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((index for index, line in enumerate(lines) if re.search(within, line)), len(lines))
    for index, line in enumerate(lines[start:], start):
        if re.search(anchor, line):
            lines.insert(index + 1 if after else index, text)
            path.write_text("".join(lines), encoding="utf-8")
            return
    raise SystemExit(f"new-connector: {path} has no line matching {anchor!r}; add the {text!r} by hand")


def _replace(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.DOTALL)
    if not count:
        raise SystemExit(f"new-connector: {path} has nothing matching {pattern!r}")
    path.write_text(new, encoding="utf-8")


def generate(name: str, root: Path = ROOT) -> list[Path]:
    """Write the skeleton of ``name`` under ``root``; the files written or changed."""
    if not re.fullmatch(r"[a-z][a-z0-9]{1,30}", name):
        raise SystemExit(f"new-connector: NAME must be a lower-case system id (letters, digits), not {name!r}")
    title = name.capitalize()
    connector = root / "layers/preflight/export_preflight/connectors" / f"{name}.py"
    simulator = root / "sandbox/simulators" / f"{name}.py"
    if connector.exists() or simulator.exists():
        raise SystemExit(f"new-connector: {name} exists already")
    connector.write_text(connector_module(name), encoding="utf-8")
    simulator.write_text(simulator_module(name), encoding="utf-8")

    registry = root / "layers/preflight/export_preflight/connectors/__init__.py"
    _replace(
        registry,
        # a formatted (one entry a line) dict ends with a comma: the new entry goes after it
        r"(CONNECTORS: Mapping\[str, ConnectorSpec\] = _Connectors\(\s*\{.*?),?(\s*\}\s*\))",
        rf'\1, "{name}": "{name}"\2',
    )

    table = root / "tests/connectors/table.py"
    _insert(table, r"^from sandbox\.simulators\.", f"from sandbox.simulators.{name} import {title}Simulator\n")
    _insert(table, r"^CONNECTORS_UNDER_TEST", conformance_row(name))
    _replace(table, r"(CONNECTORS_UNDER_TEST: list\[ConnectorUnderTest\] = \[.*?)\]", rf"\1, {name.upper()}]")

    scenario_file = root / "sandbox/scenarios.py"
    _insert(scenario_file, r"^# -+ the readiness demo", scenarios(name))
    _replace(
        scenario_file,
        r"(READINESS_DEMO: tuple\[DemoCompany, \.\.\.\] = \(.*?)(\n\))",
        rf'\1\n    DemoCompany("{name}-ready", "{name}", "ready"),\2',
    )
    _replace(
        scenario_file,
        r"(DEFAULT_SCENARIOS: tuple\[Seeder, \.\.\.\] = \(.*?)(\n\))",
        rf"\1\n    *{name.upper()}_SCENARIOS,\2",
    )

    template = root / "template.yaml"
    environment, parameters, outputs = template_settings(name)
    _insert(template, r"^\s+COMPANY_CONFIG_TABLE: !Ref CompanyConfigTable", environment)
    _insert(template, r"^  EconomicApiBaseUrl:$", parameters, within=r"^Parameters:$")
    _insert(template, r"^  EconomicApiBaseUrl:$", outputs, within=r"^Outputs:$")
    written = [connector, simulator, registry, table, scenario_file, template]
    _tidy([path for path in written if path.suffix == ".py"])
    return written


def _tidy(paths: list[Path]) -> None:
    """Sort the imports and format the Python written, when ruff is at hand (the dev venv)."""
    ruff = [sys.executable, "-m", "ruff"]
    if subprocess.run([*ruff, "--version"], capture_output=True, check=False).returncode != 0:  # noqa: S603
        return
    subprocess.run([*ruff, "check", "--quiet", "--fix", "--select", "I", *map(str, paths)], check=False)  # noqa: S603
    subprocess.run([*ruff, "format", "--quiet", *map(str, paths)], check=False)  # noqa: S603


TO_FILL_IN = """\
Skeleton of {name} written; its conformance row fails until these are filled in:
  connectors/{name}.py (layer)    the connector's five methods, base URLs, token path, SPEC's mappings
  sandbox/simulators/{name}.py    the simulator's routes, _seed(), prepare (our OAuth app)
  tests/connectors/table.py       seed_{name}(), first_call, ledger refs (not_applicable: one line each)
  sandbox/scenarios.py            {name}_passes and the failures it adds; its make readiness companies
  template.yaml                   the base-URL parameters' defaults
  tests/contract/vendors/{name}/ and tests/contract/test_{name}_contract.py: the vendor's description, facts
  README.md, docs/contracts.md, docs/checks.md: the system, its configuration, secrets, settings, checks
Then: make test (first: pytest tests/connectors -k {name}).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("name", help="the system id (accountingSystem), e.g. acme")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project to write into (default: this one)")
    arguments = parser.parse_args(argv)
    for path in generate(arguments.name, arguments.root):
        print(f"wrote {path.relative_to(arguments.root)}")
    print(TO_FILL_IN.format(name=arguments.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
