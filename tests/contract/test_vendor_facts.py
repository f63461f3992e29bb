"""Every vendor facts list (``tests/contract/vendors/<system>/facts.yaml``) separates what a
vendor source says from what we assume, and every assumption that decides an outcome names a
test that exists (so the behaviour resting on it is pinned, and a wrong assumption has one
place to be corrected)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_preflight.connectors import CONNECTORS

ROOT = Path(__file__).resolve().parents[2]
VENDORS = Path(__file__).resolve().parent / "vendors"
# Every registered connector has its vendor folder (a new one cannot be forgotten here).
SYSTEMS = tuple(sorted(CONNECTORS))


def facts_of(system: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((VENDORS / system / "facts.yaml").read_text(encoding="utf-8"))
    facts = document["facts"] if isinstance(document, dict) else document
    assert isinstance(facts, list) and facts, f"{system}: facts.yaml holds no list of facts"
    return facts


def test_every_registered_connector_has_a_facts_list_and_a_source_note() -> None:
    from export_preflight.connectors import CONNECTORS

    for system in CONNECTORS:
        assert (VENDORS / system / "facts.yaml").is_file(), f"{system}: no vendors/{system}/facts.yaml"
        assert (VENDORS / system / "SOURCE.md").is_file(), f"{system}: no vendors/{system}/SOURCE.md"


def _test_exists(node: str) -> bool:
    path, _, name = node.partition("::")
    name = re.sub(r"\[.*\]$", "", name.split("::")[-1])
    file = ROOT / path
    return (
        file.is_file()
        and re.search(rf"^\s*def {re.escape(name)}\(", file.read_text(encoding="utf-8"), re.M) is not None
    )


@pytest.mark.parametrize("system", SYSTEMS)
def test_facts_are_vendor_or_assumed_and_deciding_assumptions_name_a_test(system: str) -> None:
    seen: set[str] = set()
    for fact in facts_of(system):
        ident = fact.get("id")
        assert ident and ident not in seen, f"{system}: missing or repeated id {ident!r}"
        seen.add(ident)
        assert str(fact.get("fact", "")).strip(), f"{system}/{ident}: no fact"
        assert fact.get("kind") in ("vendor", "assumed"), f"{system}/{ident}: kind must be vendor or assumed"
        assert isinstance(fact.get("decides_outcome"), bool), f"{system}/{ident}: decides_outcome must be true/false"
        if fact["kind"] == "vendor":
            assert str(fact.get("source", "")).strip(), f"{system}/{ident}: a vendor fact needs its source"
        if fact["kind"] == "assumed" and fact["decides_outcome"]:
            assert fact.get("test"), f"{system}/{ident}: an assumption that decides an outcome needs a test row"
        if fact.get("test"):
            assert _test_exists(str(fact["test"])), f"{system}/{ident}: test {fact['test']} does not exist"
