"""Make ``entities.json`` (our extract) from Intuit's QuickBooks Online v3 XSDs.

Run by hand when Intuit publishes new schemas; the XSDs themselves are never committed:

    git --git-dir=<mirror of intuit/QuickBooks-V3-DotNET-SDK> archive HEAD \\
        IPPDotNetDevKitCSV3/Tools/XsdExtension/Intuit.Ipp.XsdExtension/Schema | tar -x -C <scratch>
    .venv/bin/python tests/contract/vendors/quickbooks/extract.py <scratch>/.../Schema > entities.json

What is kept, for the types reachable from ``ROOTS``: each complex type's base type, its
elements (name, type, minOccurs, maxOccurs, whether it sits in a choice) and attributes
(name, type, use); a simple-content type's value type; each simple type's base and
enumeration values. Element refs to the abstract ``IntuitObject`` become the list of its
substitution-group members (name -> type). Types named in ``OPAQUE`` (and every entity
outside ``ROOTS``) are listed by name only: the connector never reads them. Documentation
text is not copied.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

XS = "{http://www.w3.org/2001/XMLSchema}"
FILES = ("IntuitBaseTypes.xsd", "IntuitNamesTypes.xsd", "Finance.xsd", "Report.xsd", "SalesTax.xsd",
         "IntuitRestServiceDef.xsd")  # fmt: skip
# The fault types are an enumeration nothing references (Fault's ``type`` is a string).
EXTRA_SIMPLE = ("FaultTypeEnum",)
ROOTS = ("IntuitResponse", "QueryResponse", "Fault", "Error", "CompanyInfo", "Preferences", "Account", "TaxCode")
# Not expanded: answers the connector never asks for.
OPAQUE = frozenset(
    {
        "Report",
        "BatchItemResponse",
        "CDCResponse",
        "AttachableResponse",
        "SyncErrorResponse",
        "OLBTransaction",
        "OLBStatus",
    }
)


def _local(name: str | None) -> str | None:
    """A type or element name without its namespace prefix; XML Schema's own types keep ``xs:``."""
    if name is None:
        return None
    prefix, _, local = name.rpartition(":")
    return f"xs:{local}" if prefix in ("xs", "xsd") else local


def _occurs(node: ET.Element, default_min: str = "1") -> tuple[int, int | None]:
    low = int(node.get("minOccurs", default_min))
    high = node.get("maxOccurs", "1")
    return low, None if high == "unbounded" else int(high)


class Schema:
    def __init__(self, folder: Path) -> None:
        self.complex: dict[str, ET.Element] = {}
        self.simple: dict[str, ET.Element] = {}
        self.elements: dict[str, ET.Element] = {}
        self.groups: dict[str, ET.Element] = {}
        for file in FILES:
            root = ET.parse(folder / file).getroot()  # noqa: S314 - Intuit's own schema files
            for node in root:
                name = node.get("name")
                if node.tag == f"{XS}complexType":
                    self.complex[name] = node
                elif node.tag == f"{XS}simpleType":
                    self.simple[name] = node
                elif node.tag == f"{XS}element":
                    self.elements[name] = node
                elif node.tag == f"{XS}group":
                    self.groups[name] = node
        self.substitutes: dict[str, dict[str, str]] = {}
        for name, node in self.elements.items():
            group = _local(node.get("substitutionGroup"))
            if group:
                self.substitutes.setdefault(group, {})[name] = _local(node.get("type")) or name

    # ------------------------------------------------------------ complex types

    def complex_type(self, name: str, node: ET.Element) -> tuple[dict[str, Any], list[tuple[str, ET.Element]]]:
        """The description of one complex type and the anonymous types it defines inline."""
        out: dict[str, Any] = {}
        inline: list[tuple[str, ET.Element]] = []
        if node.get("abstract") == "true":
            out["abstract"] = True
        body = node
        content = node.find(f"{XS}complexContent")
        simple = node.find(f"{XS}simpleContent")
        if content is not None or simple is not None:
            holder = content if content is not None else simple
            assert holder is not None
            derivation = holder.find(f"{XS}extension")
            if derivation is None:
                derivation = holder.find(f"{XS}restriction")
            assert derivation is not None
            base = _local(derivation.get("base"))
            if simple is not None:
                out["value"] = base
            else:
                out["base"] = base
            body = derivation
        elements: list[dict[str, Any]] = []
        self._particles(name, body, elements, inline, in_choice=False, repeated=False)
        if elements:
            out["elements"] = elements
        attributes = [
            {"name": a.get("name"), "type": _local(a.get("type")) or "xs:string", "use": a.get("use", "optional")}
            for a in body.findall(f"{XS}attribute")
        ]
        if attributes:
            out["attributes"] = attributes
        if body.find(f".//{XS}any") is not None:
            out["any"] = True
        return out, inline

    def _particles(
        self,
        owner: str,
        node: ET.Element,
        out: list[dict[str, Any]],
        inline: list[tuple[str, ET.Element]],
        *,
        in_choice: bool,
        repeated: bool,
    ) -> None:
        for child in node:
            if child.tag in (f"{XS}sequence", f"{XS}choice", f"{XS}all"):
                _, high = _occurs(child)
                self._particles(
                    owner,
                    child,
                    out,
                    inline,
                    in_choice=in_choice or child.tag == f"{XS}choice",
                    repeated=repeated or high is None or high > 1,
                )
            elif child.tag == f"{XS}group":
                group = self.groups[_local(child.get("ref")) or ""]
                self._particles(owner, group, out, inline, in_choice=in_choice, repeated=repeated)
            elif child.tag == f"{XS}element":
                low, high = _occurs(child)
                if repeated:
                    high = None
                ref = _local(child.get("ref"))
                if ref is not None:
                    target = self.elements[ref]
                    if target.get("abstract") == "true":
                        out.append(
                            {
                                "substitutionGroup": ref,
                                "minOccurs": low,
                                "maxOccurs": high,
                                "choice": in_choice,
                            }
                        )
                        continue
                    element = {"name": ref, "type": _local(target.get("type"))}
                else:
                    type_name = _local(child.get("type"))
                    if type_name is None:
                        anonymous = child.find(f"{XS}complexType")
                        if anonymous is None:
                            anonymous = child.find(f"{XS}simpleType")
                        type_name = f"{owner}.{child.get('name')}" if anonymous is not None else "xs:anyType"
                        if anonymous is not None:
                            inline.append((type_name, anonymous))
                    element = {"name": child.get("name"), "type": type_name}
                element.update({"minOccurs": low, "maxOccurs": high})
                if in_choice:
                    element["choice"] = True
                out.append(element)

    # ------------------------------------------------------------ simple types

    def simple_type(self, node: ET.Element) -> dict[str, Any]:
        restriction = node.find(f"{XS}restriction")
        if restriction is None:
            return {"base": "xs:string"}
        out: dict[str, Any] = {"base": _local(restriction.get("base"))}
        values = [e.get("value") for e in restriction.findall(f"{XS}enumeration")]
        if values:
            out["enumeration"] = values
        for facet in ("maxLength", "minLength", "pattern"):
            found = restriction.find(f"{XS}{facet}")
            if found is not None:
                out[facet] = found.get("value")
        return out


def extract(folder: Path) -> dict[str, Any]:
    schema = Schema(folder)
    complex_out: dict[str, Any] = {}
    simple_out: dict[str, Any] = {}
    opaque: set[str] = set()
    pending: list[tuple[str, ET.Element]] = [(name, schema.complex[name]) for name in ROOTS]
    members = schema.substitutes.get("IntuitObject", {})
    for name in EXTRA_SIMPLE:
        simple_out[name] = schema.simple_type(schema.simple[name])

    def want(type_name: str | None) -> None:
        if type_name is None or type_name.startswith("xs:") or type_name in complex_out or type_name in simple_out:
            return
        if type_name in OPAQUE:
            opaque.add(type_name)
        elif type_name in schema.complex:
            pending.append((type_name, schema.complex[type_name]))
        elif type_name in schema.simple:
            simple_out[type_name] = schema.simple_type(schema.simple[type_name])
            want(simple_out[type_name].get("base"))

    while pending:
        name, node = pending.pop()
        if name in complex_out:
            continue
        if node.tag == f"{XS}simpleType":
            simple_out[name] = schema.simple_type(node)
            want(simple_out[name].get("base"))
            continue
        described, inline = schema.complex_type(name, node)
        complex_out[name] = described
        pending.extend(inline)
        want(described.get("base"))
        want(described.get("value"))
        for element in described.get("elements", []):
            if "substitutionGroup" in element:
                for entity in members.values():
                    if entity in ROOTS:
                        want(entity)
                    elif entity not in complex_out:
                        opaque.add(entity)
            else:
                want(element["type"])
        for attribute in described.get("attributes", []):
            want(attribute["type"])
    return {
        "substitutionGroups": {"IntuitObject": dict(sorted(members.items()))},
        "complexTypes": dict(sorted(complex_out.items())),
        "simpleTypes": dict(sorted(simple_out.items())),
        "opaqueTypes": sorted(opaque - set(complex_out)),
    }


def dump(extracted: dict[str, Any], source: dict[str, str]) -> str:
    """JSON with one line per element, attribute and simple type (short diffs on updates)."""
    lines = ["{", f' "source": {json.dumps(source)},']
    lines.append(
        f' "substitutionGroups": {{"IntuitObject": {json.dumps(extracted["substitutionGroups"]["IntuitObject"])}}},'
    )
    lines.append(' "complexTypes": {')
    types = extracted["complexTypes"]
    for i, (name, described) in enumerate(types.items()):
        lines.append(f"  {json.dumps(name)}: {{")
        parts = []
        for key in ("abstract", "base", "value", "any"):
            if key in described:
                parts.append(f"   {json.dumps(key)}: {json.dumps(described[key])}")
        for key in ("elements", "attributes"):
            if key in described:
                rows = ",\n".join(f"    {json.dumps(row)}" for row in described[key])
                parts.append(f"   {json.dumps(key)}: [\n{rows}\n   ]")
        lines.append(",\n".join(parts))
        lines.append("  }" + ("," if i < len(types) - 1 else ""))
    lines.append(" },")
    lines.append(' "simpleTypes": {')
    simple = extracted["simpleTypes"]
    lines.append(",\n".join(f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in simple.items()))
    lines.append(" },")
    lines.append(f' "opaqueTypes": {json.dumps(extracted["opaqueTypes"])}')
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # argv: the Schema folder, then the provenance to record (repo, path, commit, version)
    folder, repo, path, commit, version = sys.argv[1:6]
    text = dump(extract(Path(folder)), {"repo": repo, "path": path, "commit": commit, "version": version})
    json.loads(text)  # the hand-made layout is still JSON
    sys.stdout.write(text)
