"""Check JSON against our extract of Business Central API v2.0 (``vendors/businesscentral/api_v2.json``).

Microsoft publishes no ``$metadata`` or OpenAPI for API v2.0 (SOURCE.md), so this is the
validator: an entity must carry exactly the AL page's properties, in page order (a ``$select``
narrows them, never adds), each of its EDM type (GUID, date, datetime, decimal, int, boolean,
string), enum values among the wire values the extract lists, never ``null``; ``@odata.etag``
on every entity of an AL page; stream properties only as ``@odata.mediaReadLink`` /
``@odata.mediaEditLink`` annotations. Collections carry ``@odata.context`` and ``value`` (and
``@odata.nextLink`` / ``@odata.count``); errors ``{"error": {"code", "message"}}`` with a code of
a documented family. Each function returns a list of problems (empty: valid).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXTRACT = Path(__file__).resolve().parent / "vendors" / "businesscentral" / "api_v2.json"
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})")
ETAG = re.compile(r'W/"[^"]+"')
ENTITY_SET_PATH = re.compile(
    r"/v2\.0/(?:[^/]+/)?[^/]+/api/v2\.0/companies(?:\((?P<company>[^)]*)\)(?:/(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?)?)?"
)
MEDIA_ANNOTATIONS = ("@odata.mediaReadLink", "@odata.mediaEditLink")


@cache
def extract() -> dict[str, Any]:
    loaded = json.loads(EXTRACT.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def entity_sets() -> list[str]:
    return list(extract()["entities"])


def properties(entity_set: str) -> dict[str, dict[str, Any]]:
    return dict(extract()["entities"][entity_set]["properties"])


def has_etag(entity_set: str) -> bool:
    """Entities of AL pages carry ``@odata.etag``; the platform's companies do not (Microsoft's example)."""
    return entity_set != "companies"


def entity_problems(entity_set: str, entity: Any, *, selected: set[str] | None = None, where: str = "$") -> list[str]:
    """What is wrong with ``entity`` as one ``entity_set`` entity (``selected``: its ``$select``)."""
    if not isinstance(entity, dict):
        return [f"{where}: not an object"]
    described = properties(entity_set)
    streams = {name for name, prop in described.items() if prop["edmType"] == "stream"}
    problems: list[str] = []
    expected = [name for name in described if name not in streams and (selected is None or name in selected)]
    data_keys = [key for key in entity if "@" not in key]
    for key in entity:
        if key == "@odata.etag":
            if not has_etag(entity_set):
                problems.append(f"{where}: @odata.etag on {entity_set}, which Microsoft's example does not carry")
            elif not isinstance(entity[key], str) or not ETAG.fullmatch(entity[key]):
                problems.append(f'{where}.@odata.etag: {entity[key]!r} is not a weak ETag W/"..."')
            continue
        if "@" in key:
            name, _, annotation = key.partition("@")
            if name not in streams or f"@{annotation}" not in MEDIA_ANNOTATIONS:
                problems.append(f"{where}: annotation {key!r} is not a media link of a stream property")
            elif not isinstance(entity[key], str):
                problems.append(f"{where}.{key}: not a URL")
            continue
        if key in streams:
            problems.append(f"{where}.{key}: a stream property travels as media links, not as a value")
    if has_etag(entity_set) and "@odata.etag" not in entity:
        problems.append(f"{where}: no @odata.etag")
    unknown = [key for key in data_keys if key not in described]
    if unknown:
        problems.append(f"{where}: properties {unknown} are not in the {entity_set} page")
    missing = [name for name in expected if name not in entity]
    if missing:
        problems.append(f"{where}: properties {missing} of the {entity_set} page are missing")
    known = [key for key in data_keys if key in described]
    if not unknown and not missing and known != [name for name in expected if name in known]:
        problems.append(f"{where}: properties not in page order: {known}")
    for key in known:
        problems.extend(value_problems(described[key], entity[key], f"{where}.{key}"))
    return problems


def value_problems(prop: dict[str, Any], value: Any, where: str) -> list[str]:
    """One property value against its extract entry (EDM type, format, enum, never null)."""
    if value is None:
        return [f"{where}: null (Business Central writes blank values, never null)"]
    kind = prop["type"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: {value!r} is not a boolean"]
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not an integer"]
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: {value!r} is not a number"]
    if not isinstance(value, str):
        return [f"{where}: {value!r} is not a string"]
    form = prop.get("format")
    if form == "uuid" and not GUID.fullmatch(value):
        return [f"{where}: {value!r} is not a GUID"]
    if form == "date" and not DATE.fullmatch(value):
        return [f"{where}: {value!r} is not an Edm.Date (YYYY-MM-DD)"]
    if form == "date-time" and not DATETIME.fullmatch(value):
        return [f"{where}: {value!r} is not an Edm.DateTimeOffset"]
    if "enum" in prop and value not in prop["enum"]:
        return [f"{where}: {value!r} is not a wire value of {prop['edmType']} ({', '.join(prop['enum'])})"]
    return []


def collection_problems(
    entity_set: str, body: Any, *, request_path: str | None = None, selected: set[str] | None = None
) -> list[str]:
    """What is wrong with ``body`` as a collection answer of ``entity_set``."""
    if not isinstance(body, dict):
        return ["$: not an object"]
    allowed = {"@odata.context", "value", "@odata.nextLink", "@odata.count"}
    problems = [f"$: {key!r} is not part of a collection answer" for key in body if key not in allowed]
    context = body.get("@odata.context")
    expected_end = "$metadata#companies" if entity_set == "companies" else f"/{entity_set}"
    if not isinstance(context, str) or "/api/v2.0/$metadata#" not in context or not context.endswith(expected_end):
        problems.append(f"$.@odata.context: {context!r} does not name {entity_set} under {{root}}/$metadata#")
    value = body.get("value")
    if not isinstance(value, list):
        return [*problems, "$.value: not an array"]
    for index, item in enumerate(value):
        problems.extend(entity_problems(entity_set, item, selected=selected, where=f"$.value[{index}]"))
    link = body.get("@odata.nextLink")
    if link is not None:
        problems.extend(next_link_problems(link, request_path))
    return problems


def next_link_problems(link: Any, request_path: str | None) -> list[str]:
    """``@odata.nextLink``: absolute, under the same API root and entity set, with a ``$skiptoken``
    and no ``$skip`` (facts.yaml next-link-absolute-same-base [assumed], paging-server-driven)."""
    if not isinstance(link, str):
        return ["$.@odata.nextLink: not a string"]
    parts = urlsplit(link)
    problems = []
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"$.@odata.nextLink: {link!r} is not absolute")
    query = parse_qs(parts.query)
    if "$skiptoken" not in query:
        problems.append(f"$.@odata.nextLink: {link!r} carries no $skiptoken")
    if "$skip" in query:
        problems.append(f"$.@odata.nextLink: {link!r} pages with $skip")
    if request_path is not None and parts.path != request_path:
        problems.append(f"$.@odata.nextLink: path {parts.path!r} is not the request's {request_path!r}")
    return problems


def single_problems(entity_set: str, body: Any, *, selected: set[str] | None = None) -> list[str]:
    """One entity answered on its own (``companies({id})``, ``accounts({id})``)."""
    if not isinstance(body, dict):
        return ["$: not an object"]
    context = body.get("@odata.context")
    problems = []
    if not isinstance(context, str) or not context.endswith("/$entity"):
        problems.append(f"$.@odata.context: {context!r} does not end with /$entity")
    rest = {k: v for k, v in body.items() if k != "@odata.context"}
    return problems + entity_problems(entity_set, rest, selected=selected)


def error_problems(body: Any) -> list[str]:
    """The OData error body: ``{"error": {"code", "message"}}``, the code of a documented family."""
    shape = extract()["odata"]["error"]
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return [f"$: {body!r} is not {{'error': {{code, message}}}}"]
    error = body["error"]
    problems = []
    if set(error) != set(shape["properties"]["error"]["required"]):
        problems.append(f"$.error: keys {sorted(error)} are not code and message")
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not code.startswith(tuple(shape["codePrefixes"])):
        problems.append(f"$.error.code: {code!r} is of no documented family ({', '.join(shape['codePrefixes'])})")
    if not isinstance(message, str) or not message:
        problems.append("$.error.message: not a non-empty string")
    return problems


TOKEN_ANSWER = {"token_type", "expires_in", "ext_expires_in", "access_token"}
TOKEN_ERROR = {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}


def token_answer_problems(body: Any) -> list[str]:
    """A successful client-credentials answer (facts.yaml token-answer: no refresh token)."""
    if not isinstance(body, dict):
        return ["$: not an object"]
    problems = [f"$: {key!r} is not in a client-credentials token answer" for key in body if key not in TOKEN_ANSWER]
    if body.get("token_type") != "Bearer":
        problems.append(f"$.token_type: {body.get('token_type')!r} is not Bearer")
    if not isinstance(body.get("expires_in"), int) or not isinstance(body.get("access_token"), str):
        problems.append("$: expires_in (seconds) and access_token are required")
    return problems


def token_error_problems(body: Any) -> list[str]:
    """A refused token request (facts.yaml token-error-body)."""
    if not isinstance(body, dict):
        return ["$: not an object"]
    problems = [f"$: {key!r} is not in an Entra error answer" for key in body if key not in TOKEN_ERROR]
    codes = body.get("error_codes")
    if not isinstance(body.get("error"), str):
        problems.append("$.error: not a string")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, int) for c in codes):
        problems.append("$.error_codes: not a list of integers")
    description = body.get("error_description")
    if not isinstance(description, str) or not re.match(r"AADSTS\d+: ", description):
        problems.append("$.error_description: does not start with AADSTSnnnnn:")
    elif isinstance(codes, list) and codes and not description.startswith(f"AADSTS{codes[0]}:"):
        problems.append("$.error_description: names another code than error_codes[0]")
    return problems
