"""Rebuild accounting.openapi.yaml and identity.openapi.yaml from Xero's published descriptions.

    .venv/bin/python tests/contract/vendors/xero/extract.py <dir with Xero-OpenAPI's files>

<dir> holds ``xero_accounting.yaml`` and ``xero-identity.yaml`` of XeroAPI/Xero-OpenAPI (see
SOURCE.md for the commit). Only the operations the connector calls are kept, with their
parameters and their response schemas; the schemas keep Xero's property names, types,
formats, enums and length limits, and drop descriptions, examples and vendor ``x-`` keys.
Every object gets ``additionalProperties: false``. Deliberate departures from Xero's text
are listed in ``DEPARTURES`` and written into the extract as ``x-departure``.

Before writing, every example Xero gives for a kept operation is validated against the
extract: the extract must never be stricter than Xero's own examples.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_schema_validator import OAS30Validator, validate

HERE = Path(__file__).resolve().parent

ACCOUNTING_OPERATIONS = {  # path -> the one method the connector uses
    "/Organisation": "get",
    "/Organisation/Actions": "get",
    "/Accounts": "get",
    "/TaxRates": "get",
}
IDENTITY_OPERATIONS = {"/Connections": "get"}
ENVELOPES = ("Organisations", "Actions", "Accounts", "TaxRates")
KEEP = {"type", "format", "enum", "items", "properties", "$ref", "maxLength", "minLength", "readOnly", "nullable"}
ENVELOPE_NOTE = (
    "Id, Status, ProviderName and DateTimeUTC are not in Xero's schema; every example Xero gives for "
    "these operations carries them, typed here from those examples."
)
CONNECTION_DATE_NOTE = (
    "Xero declares format date-time, but its own example (2019-12-07T18:46:19.5165400) has no offset, "
    "which RFC 3339 requires; the format is dropped and the shape of Xero's example kept as a pattern."
)
DOTNET_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?$"


def clean(node: Any) -> Any:
    """Types, formats, enums, limits and structure; no prose, examples, defaults or x- keys."""
    if isinstance(node, list):
        return [clean(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:  # OpenAPI 3.0 ignores siblings of $ref (Xero adds ``type: string`` beside some)
        return {"$ref": node["$ref"]}
    out = {key: clean(value) for key, value in node.items() if key in KEEP}
    if "properties" in node:
        out["properties"] = {name: clean(schema) for name, schema in node["properties"].items()}
        out.setdefault("type", "object")
        out["additionalProperties"] = False
    return out


def referenced(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(referenced(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(referenced(item) for item in node))
    return set()


def close_over(schemas: dict[str, Any], roots: set[str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        kept[name] = clean(schemas[name])
        todo.extend(sorted(referenced(kept[name]) - kept.keys()))
    return dict(sorted(kept.items()))


def operation(source: dict[str, Any], path: str, method: str, parameters: dict[str, Any]) -> dict[str, Any]:
    item = source["paths"][path]
    op = item[method]
    params = [resolve_param(p, parameters) for p in [*item.get("parameters", []), *op.get("parameters", [])]]
    responses = {}
    for status, answer in op["responses"].items():
        content = {media: {"schema": clean(body["schema"])} for media, body in answer.get("content", {}).items()}
        responses[str(status)] = {"description": f"Xero: {answer.get('description', '')}".strip()}
        if content:
            responses[str(status)]["content"] = content
    out: dict[str, Any] = {"operationId": op["operationId"]}
    if "security" in op:
        out["security"] = op["security"]
    if params:
        out["parameters"] = params
    out["responses"] = responses
    return out


def resolve_param(param: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in param:
        param = parameters[param["$ref"].rsplit("/", 1)[1]]
    kept = {key: param[key] for key in ("name", "in", "required") if key in param}
    kept["schema"] = clean(param["schema"])
    return kept


def examples(source: dict[str, Any], operations: dict[str, str]) -> list[tuple[str, str, Any]]:
    found = []
    for path, method in operations.items():
        for status, answer in source["paths"][path][method]["responses"].items():
            for body in answer.get("content", {}).values():
                if "example" in body:
                    value = body["example"]
                    found.append((path, str(status), json.loads(value) if isinstance(value, str) else value))
    return found


def accounting(source: dict[str, Any], commit: str) -> dict[str, Any]:
    schemas = source["components"]["schemas"]
    parameters = source["components"]["parameters"]
    paths = {
        path: {method: operation(source, path, method, parameters)} for path, method in ACCOUNTING_OPERATIONS.items()
    }
    kept = close_over(schemas, referenced(paths))
    for name in ENVELOPES:
        kept[name]["properties"] = {
            "Id": {"type": "string"},
            "Status": {"type": "string"},
            "ProviderName": {"type": "string"},
            "DateTimeUTC": {"type": "string"},
            **kept[name]["properties"],
        }
        kept[name]["x-departure"] = ENVELOPE_NOTE
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Xero Accounting API: the operations export-preflight calls (extract)",
            "version": source["info"]["version"],
            "x-source": f"XeroAPI/Xero-OpenAPI xero_accounting.yaml@{commit}; see SOURCE.md",
        },
        "servers": [{"url": source["servers"][0]["url"]}],
        "paths": paths,
        "components": {
            "securitySchemes": {"OAuth2": scheme(source, paths)},
            "schemas": kept,
        },
    }


def identity(source: dict[str, Any], commit: str) -> dict[str, Any]:
    schemas = source["components"]["schemas"]
    paths = {path: {method: operation(source, path, method, {})} for path, method in IDENTITY_OPERATIONS.items()}
    kept = close_over(schemas, referenced(paths) | {"AccessToken"})
    for field in ("createdDateUtc", "updatedDateUtc"):
        kept["Connection"]["properties"][field] = {
            "type": "string",
            "pattern": DOTNET_DATETIME,
            "x-departure": CONNECTION_DATE_NOTE,
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Xero OAuth 2 Identity Service API: the operations export-preflight calls (extract)",
            "version": source["info"]["version"],
            "x-source": f"XeroAPI/Xero-OpenAPI xero-identity.yaml@{commit}; see SOURCE.md",
        },
        "servers": [{"url": source["servers"][0]["url"]}],
        "paths": paths,
        "components": {"securitySchemes": {"OAuth2": scheme(source, paths)}, "schemas": kept},
    }


def scheme(source: dict[str, Any], paths: dict[str, Any]) -> dict[str, Any]:
    """Xero's OAuth2 scheme, with only the scopes the kept operations name."""
    used = {
        scope
        for item in paths.values()
        for op in item.values()
        for requirement in op.get("security", [])
        for scope in requirement.get("OAuth2", [])
    }
    oauth = copy.deepcopy(source["components"]["securitySchemes"]["OAuth2"])
    oauth.pop("description", None)
    for flow in oauth.get("flows", {}).values():
        flow["scopes"] = {name: "" for name in flow.get("scopes", {}) if name in used}
    return oauth


def check_examples(extract: dict[str, Any], source: dict[str, Any], operations: dict[str, str]) -> None:
    OpenAPI.from_dict(copy.deepcopy(extract))  # checked by openapi-spec-validator: a broken extract fails here
    for path, status, body in examples(source, operations):
        method = operations[path]
        schema = extract["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        root = {"components": extract["components"], "allOf": [schema]}
        validate(body, root, cls=OAS30Validator, format_checker=OAS30Validator.FORMAT_CHECKER)
        print(f"  Xero's example for {method.upper()} {path} {status} validates against the extract")


def main(directory: str, commit: str) -> None:
    folder = Path(directory)
    for name, build, operations, target in (
        ("xero_accounting.yaml", accounting, ACCOUNTING_OPERATIONS, "accounting.openapi.yaml"),
        ("xero-identity.yaml", identity, IDENTITY_OPERATIONS, "identity.openapi.yaml"),
    ):
        source = yaml.safe_load((folder / name).read_text())
        extract = build(source, commit)
        check_examples(extract, source, operations)
        header = f"# Generated by extract.py from XeroAPI/Xero-OpenAPI {name}@{commit} (MIT); see SOURCE.md.\n"
        (HERE / target).write_text(
            header + yaml.safe_dump(extract, sort_keys=False, width=120, default_flow_style=None)
        )
        print(f"wrote {target}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2].strip() + " <commit>")
    main(sys.argv[1], sys.argv[2])
