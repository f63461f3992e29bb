"""Check QuickBooks Online JSON against our extract of Intuit's XSDs
(``vendors/quickbooks/entities.json``; provenance in ``vendors/quickbooks/SOURCE.md``).

QBO's JSON renders an entity as an object whose keys are the XSD's element and attribute
names (``{"CompanyInfo": {"CompanyName": ..., "domain": "QBO"}, "time": ...}`` is an
``IntuitResponse``); a simple-content type (``ReferenceType``) puts its content under
``value``. ``problems(value, type)`` lists every way a value strays from a type:

- a key that is no element or attribute of the type or of its base types (names compared
  exactly: ``Bookclosedate`` is not ``BookCloseDate``);
- an array where the element is not repeatable, a lone value where it is (QBO's JSON
  renders repeatable elements as arrays);
- a missing required element or attribute; more than one branch of a choice;
- a simple value of the wrong JSON kind (boolean, number, string), a malformed date or
  dateTime, a value outside an enumeration; ``null`` anywhere;
- a type the extract names but does not describe (an entity the connector never reads).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

EXTRACT = Path(__file__).resolve().parent / "vendors" / "quickbooks" / "entities.json"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_NUMBER_TYPES = {"xs:decimal", "xs:double", "xs:float"}
_INTEGER_TYPES = {"xs:int", "xs:integer", "xs:long", "xs:short", "xs:byte", "xs:nonNegativeInteger",
                  "xs:positiveInteger", "xs:unsignedInt"}  # fmt: skip
_STRING_TYPES = {"xs:string", "xs:anyURI", "xs:normalizedString", "xs:token", "xs:base64Binary", "xs:ID"}


@cache
def extract() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXTRACT.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Member:
    """One JSON key a complex type allows."""

    name: str
    type: str
    repeated: bool
    required: bool
    choice: bool
    attribute: bool


def members(type_name: str) -> dict[str, Member]:
    """Every element and attribute of ``type_name`` and its base types, by JSON key."""
    types = extract()["complexTypes"]
    groups = extract()["substitutionGroups"]
    found: dict[str, Member] = {}
    chain: list[str] = []
    current: str | None = type_name
    while current is not None:
        chain.append(current)
        current = types[current].get("base")
    for name in reversed(chain):  # base members first, as in the XSD's sequence
        described = types[name]
        if "value" in described:
            found["value"] = Member("value", described["value"], False, False, False, False)
        for element in described.get("elements", []):
            repeated = element["maxOccurs"] is None or element["maxOccurs"] > 1
            choice = bool(element.get("choice"))
            if "substitutionGroup" in element:
                for member, member_type in groups[element["substitutionGroup"]].items():
                    found[member] = Member(member, member_type, repeated, False, True, False)
                continue
            required = element["minOccurs"] > 0 and not choice
            found[element["name"]] = Member(element["name"], element["type"], repeated, required, choice, False)
        for attribute in described.get("attributes", []):
            required = attribute["use"] == "required"
            found[attribute["name"]] = Member(attribute["name"], attribute["type"], False, required, False, True)
    return found


def problems(value: Any, type_name: str, path: str = "$") -> list[str]:
    """Every way ``value`` strays from ``type_name`` (a complex or simple type of the extract,
    or an ``xs:`` type), each naming where (``$.CompanyInfo.NameValue[0]``)."""
    return list(_check(value, type_name, path))


def check(value: Any, type_name: str) -> None:
    """Raise AssertionError listing every problem of ``value`` as a ``type_name``."""
    found = problems(value, type_name)
    if found:
        raise AssertionError(f"not a valid {type_name} per Intuit's XSD:\n  " + "\n  ".join(found))


def simple_type_of(type_name: str) -> tuple[str, list[str] | None]:
    """The built-in ``xs:`` type under a simple type and its enumeration (if any)."""
    simple = extract()["simpleTypes"]
    enumeration: list[str] | None = None
    while type_name in simple:
        described = simple[type_name]
        if enumeration is None and "enumeration" in described:
            enumeration = list(described["enumeration"])
        type_name = described["base"]
    return type_name, enumeration


def _check(value: Any, type_name: str, path: str) -> Iterator[str]:
    if value is None:
        yield f"{path}: null (QBO omits absent elements)"
        return
    data = extract()
    if type_name in data["complexTypes"]:
        yield from _check_complex(value, type_name, path)
    elif type_name in data["opaqueTypes"]:
        yield f"{path}: {type_name} is not described in our extract (not an answer the connector reads)"
    elif type_name.startswith("xs:") or type_name in data["simpleTypes"]:
        yield from _check_simple(value, type_name, path)
    else:
        yield f"{path}: unknown type {type_name}"


def _check_complex(value: Any, type_name: str, path: str) -> Iterator[str]:
    described = extract()["complexTypes"][type_name]
    if described.get("any"):
        if not isinstance(value, dict):
            yield f"{path}: expected an object ({type_name}), got {type(value).__name__}"
        return
    if not isinstance(value, dict):
        yield f"{path}: expected an object ({type_name}), got {type(value).__name__}"
        return
    allowed = members(type_name)
    by_lower = {name.lower(): name for name in allowed}
    chosen: list[str] = []
    for key, item in value.items():
        member = allowed.get(key)
        if member is None:
            hint = by_lower.get(str(key).lower())
            suggestion = f" (the XSD spells it {hint!r})" if hint else ""
            yield f"{path}: {key!r} is no element or attribute of {type_name}{suggestion}"
            continue
        if member.choice:
            chosen.append(key)
        where = f"{path}.{key}"
        if member.repeated:
            if not isinstance(item, list):
                yield f"{where}: {key} repeats (maxOccurs > 1): QBO renders it as an array"
                continue
            for index, entry in enumerate(item):
                yield from _check(entry, member.type, f"{where}[{index}]")
        elif isinstance(item, list):
            yield f"{where}: {key} occurs at most once in {type_name}: an array is not allowed"
        else:
            yield from _check(item, member.type, where)
    for name, member in allowed.items():
        if member.required and name not in value:
            yield f"{path}: {type_name} requires {name!r}"
    if len(chosen) > 1:
        yield f"{path}: {type_name} holds one branch of its choice, not {sorted(chosen)}"


def _check_simple(value: Any, type_name: str, path: str) -> Iterator[str]:
    builtin, enumeration = simple_type_of(type_name)
    label = type_name if builtin == type_name else f"{type_name} ({builtin})"
    if builtin == "xs:boolean":
        if not isinstance(value, bool):
            yield f"{path}: expected a boolean ({label}), got {value!r}"
    elif builtin in _INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            yield f"{path}: expected an integer ({label}), got {value!r}"
    elif builtin in _NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            yield f"{path}: expected a number ({label}), got {value!r}"
    elif builtin == "xs:date":
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            yield f"{path}: expected a date YYYY-MM-DD ({label}), got {value!r}"
    elif builtin == "xs:dateTime":
        if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
            yield f"{path}: expected an ISO dateTime ({label}), got {value!r}"
    elif builtin in _STRING_TYPES:
        if not isinstance(value, str):
            yield f"{path}: expected a string ({label}), got {value!r}"
    else:
        yield f"{path}: no check for simple type {builtin}"
        return
    if enumeration is not None and value not in enumeration:
        yield f"{path}: {value!r} is not one of {type_name}'s values {enumeration}"


def element_names(type_name: str) -> set[str]:
    """The element names (not attributes) a query may name for an entity type."""
    return {name for name, member in members(type_name).items() if not member.attribute and name != "value"}


def queryable_entities() -> dict[str, str]:
    """Entity element name -> type for everything a query can select (``IntuitObject``'s group)."""
    return dict(extract()["substitutionGroups"]["IntuitObject"])
