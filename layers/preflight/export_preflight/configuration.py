"""Company configuration items: reading a document, and the one validation both the
function (``aws.CompanyConfigurations.get``) and the operator CLI (``config validate``,
``config put``, ``company add``) use (docs/contracts.md, "Company configuration item").

``validate_item`` reports every problem in one round, each naming its field by JSON path
(``configuration.mappings.expenseAccount``): the model's errors (unknown fields, wrong
types: nothing is coerced) and, for the fields that did parse, what the accounting system
would refuse (references, the company reference's shape, the secret ids' names)."""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from .models import CompanyConfiguration, CompanyConfigurationItem, Mappings

# DynamoDB's item size limit (names and values of every attribute): 400 KB.
MAX_ITEM_BYTES = 400 * 1024
# Errors shown at most (a huge document can have thousands).
MAX_SHOWN = 50
_PLACEHOLDER_COMPANY = "00000000-0000-4000-8000-000000000000"
_SECRET_FIELDS: tuple[Literal["pleoCredentialsSecretId", "accountingCredentialsSecretId"], ...] = (
    "pleoCredentialsSecretId",
    "accountingCredentialsSecretId",
)


class DocumentError(ValueError):
    """A document that is not a JSON object: one line, no input echoed."""


@dataclass(frozen=True)
class Finding:
    path: str  # JSON path of the field, "(document)" for the whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ItemReport:
    """What ``validate_item`` found. ``configuration`` is set when the item parsed (its
    structure is valid); it is ``accepted`` when nothing at all is wrong."""

    configuration: CompanyConfiguration | None = None
    structure: list[Finding] = field(default_factory=list)  # the model refused these
    values: list[Finding] = field(default_factory=list)  # the accounting system / rules would
    warnings: list[Finding] = field(default_factory=list)  # what keeps the company from being ready

    @property
    def errors(self) -> list[Finding]:
        return [*self.structure, *self.values]

    @property
    def accepted(self) -> bool:
        return self.configuration is not None and not self.errors


def read_source(path: str, *, limit: int = 4 * MAX_ITEM_BYTES) -> bytes:
    """The bytes of FILE (``-``: stdin), at most ``limit``: anything longer is refused
    before it is parsed (``DocumentError``). Never echoes the content."""
    try:
        if path == "-":
            stream: Any = getattr(sys.stdin, "buffer", sys.stdin)
            data = stream.read(limit + 1)
        else:
            with open(path, "rb") as file:
                data = file.read(limit + 1)
    except OSError as error:
        raise DocumentError(f"cannot read it ({error.strerror or type(error).__name__})") from None
    data = data.encode("utf-8") if isinstance(data, str) else data
    if len(data) > limit:
        raise DocumentError(
            f"larger than {limit} bytes; a configuration item holds at most {MAX_ITEM_BYTES} "
            "(DynamoDB's 400 KB item limit)"
        )
    return bytes(data)


def parse_document(data: bytes | str) -> dict[str, Any]:
    """A JSON object from ``data``, or ``DocumentError`` saying in one line why not: not
    UTF-8, not JSON, nested too deeply, a number Python will not convert, a duplicate key,
    ``NaN``/``Infinity``, not an object."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DocumentError(f"not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise DocumentError(f"not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except RecursionError:
        raise DocumentError("not a usable JSON document (nested too deeply)") from None
    except DocumentError:
        raise
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        digits = "digits" in str(error)
        reason = "a number of more than 4300 digits" if digits else "a value that cannot be read"
        raise DocumentError(f"not a usable JSON document ({reason})") from None
    if not isinstance(document, dict):
        raise DocumentError(f"not a JSON object (a configuration item is an object; this is {_kind(document)})")
    return document


def validate_item(document: dict[str, Any], *, secrets_prefix: str, measure_size: bool = True) -> ItemReport:
    """Every problem of a configuration item document in one round (see module doc)."""
    from .connectors import CONNECTORS

    report = ItemReport()
    if measure_size:
        size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_ITEM_BYTES:
            report.structure.append(
                Finding(
                    "(document)",
                    f"{size} bytes; a configuration item holds at most {MAX_ITEM_BYTES} (DynamoDB's 400 KB item limit)",
                )
            )
    partial: CompanyConfigurationItem | None
    try:
        partial, company_ok = CompanyConfigurationItem.model_validate(document), True
    except ValidationError as error:
        failed = [tuple(e["loc"]) for e in error.errors()]
        report.structure += [Finding(_path(e["loc"]), _message(e)) for e in error.errors()]
        partial, company_ok = _parsed_part(document, failed)
    if partial is None:
        return report
    configuration = partial.company_configuration()
    failed_paths = {f.path for f in report.structure}

    def unflagged(path: str) -> bool:
        return not any(p == path or p.startswith(path + ".") or p.startswith(path + "[") for p in failed_paths)

    system = configuration.accounting_system
    spec = CONNECTORS.get(system or "")
    if system and spec is None:
        report.values.append(
            Finding(
                "configuration.accountingSystem",
                f"{system!r} is not supported (one of: {', '.join(sorted(CONNECTORS))})",
            )
        )
    for problem in configuration.reference_problems(
        spec.numeric_fields if spec else frozenset(), spec.company_ref if spec else None
    ):
        name, _, rest = problem.partition(" ")
        report.values.append(Finding(f"configuration.{name}", rest))
    if company_ok:
        for secret_field in _SECRET_FIELDS:
            if secret_field == _SECRET_FIELDS[1] and (spec is None or not unflagged("configuration.accountingSystem")):
                continue  # named after the system: checked once the system is right
            secret_problem = configuration.secret_id_problem(secret_field, secrets_prefix)
            if secret_problem and unflagged(f"configuration.{secret_field}"):
                report.values.append(Finding(f"configuration.{secret_field}", secret_problem.partition(" ")[2]))

    for name, value in (
        ("pleoCredentialsSecretId", configuration.pleo_credentials_secret_id),
        ("accountingSystem", system),
        ("accountingCompanyRef", configuration.accounting_company_ref),
        ("accountingCredentialsSecretId", configuration.accounting_credentials_secret_id),
    ):
        if not value and unflagged(f"configuration.{name}"):
            verb = "read" if name == "pleoCredentialsSecretId" else "checked"
            report.warnings.append(Finding(f"configuration.{name}", f"not set; the company's jobs cannot be {verb}"))
    if spec is not None:
        required = spec.required_mappings + (spec.vendor_mappings if configuration.vendor_bookkeeping_enabled else ())
        for attribute, label in required:
            path = f"configuration.mappings.{Mappings.model_fields[attribute].alias or attribute}"
            if (
                not getattr(configuration.mappings, attribute)
                and unflagged(path)
                and unflagged("configuration.mappings")
            ):
                report.warnings.append(Finding(path, f"{label} is not set; the company will not be ready"))
    if not report.structure:
        report.configuration = configuration
    return report


def item_document(company_id: str, configuration: Any, version: int | None = None) -> dict[str, Any]:
    """The item document of a stored item's attributes (``configuration`` a map, or the same
    document as a JSON string; docs/contracts.md, "Company configuration item")."""
    if isinstance(configuration, str | bytes):
        configuration = parse_document(configuration)
    document: dict[str, Any] = {"companyId": company_id, "configuration": configuration}
    if version is not None:
        document["version"] = version
    return document


# ---------------------------------------------------------------- helpers


def _parsed_part(
    document: dict[str, Any], failed: list[tuple[Any, ...]]
) -> tuple[CompanyConfigurationItem | None, bool]:
    """The item without the fields the model refused (so the rest can still be checked in
    this round), and whether its company id is the document's own."""
    pruned = copy.deepcopy(document)
    company_ok = True
    for loc in failed:
        if not loc or loc[0] == "companyId":
            company_ok = False
            pruned["companyId"] = _PLACEHOLDER_COMPANY
        elif loc[0] == "configuration" and (len(loc) == 1 or not isinstance(pruned.get("configuration"), dict)):
            pruned["configuration"] = {}
        else:
            _remove(pruned, loc)
    try:
        return CompanyConfigurationItem.model_validate(pruned), company_ok
    except ValidationError:
        return None, company_ok


def _remove(document: Any, loc: tuple[Any, ...]) -> None:
    parent = document
    for step in loc[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(parent, dict):
        parent.pop(loc[-1], None)
    elif isinstance(parent, list) and isinstance(loc[-1], int) and loc[-1] < len(parent):
        parent[loc[-1]] = "x"  # keep the positions of the others; its own error is reported


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    path = ""
    for step in loc:
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path += ("." if path else "") + str(step)
    return path or "(document)"


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required",
    "bool_type": "must be true or false (JSON booleans; nothing is coerced)",
    "string_type": "must be a JSON string",
    "int_type": "must be a whole number",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "tuple_type": "must be a JSON array",
}


def _message(error: Any) -> str:
    known = _MESSAGES.get(error["type"])
    if known:
        return known
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise DocumentError(f"not a usable JSON document (the key {key[:64]!r} appears twice in one object)")
        document[key] = value
    return document


def _no_constant(name: str) -> Any:
    raise DocumentError(f"not a usable JSON document ({name} is not JSON)")
