"""Make ``api_v2.json`` (our extract) from Microsoft's own description of Business Central API v2.0.

Microsoft publishes no downloadable ``$metadata`` or OpenAPI for API v2.0 (its own docs say so:
``dev-itpro/api-reference/v2.0/dynamics-open-api.md``). What it does publish:

* the AL source of the API v2.0 pages (``microsoft/BCApps`` ``src/Apps/W1/APIV2/app/src/pages``):
  the entity and entity-set names, the property names in order, what each property is bound to,
  which properties are read-only, which entity sets allow insert/modify/delete, the navigation
  parts and the bound actions (``[ServiceEnabled]`` procedures). The server builds ``$metadata``
  from these pages, so they are the most authoritative machine-readable source there is;
* the API v2.0 reference pages (``MicrosoftDocs/dynamics365smb-devitpro-pb``
  ``dev-itpro/api-reference/v2.0/resources/*.md`` and ``.../api/*_get.md``): each property's EDM type
  (``GUID``, ``string``, ``NAV.vendorBlocked``, ...) and the example answers;
* optionally, the AL enums behind the ``NAV.*`` types (Base Application source; see SOURCE.md):
  the enum member names. The wire value of an enum is its member *name*, XML-encoded
  (``" "`` -> ``"_x0020_"``, ``"Begin-Total"`` -> ``"Begin_x002D_Total"``), not its caption.

Run by hand; the vendor files are never committed:

    git --git-dir=<BCApps snapshot> archive <commit> src/Apps/W1/APIV2/app/src/pages | tar -x -C <s>/bcapps
    git --git-dir=<docs snapshot> archive <commit> dev-itpro/api-reference/v2.0 | tar -x -C <s>/docs
    .venv/bin/python tests/contract/vendors/businesscentral/extract.py \\
        --bcapps <s>/bcapps --bcapps-commit <commit> \\
        --docs <s>/docs --docs-commit <commit> \\
        [--enums <s>/enums --enums-note "<where the .al enum files came from>"] > api_v2.json

Nothing is copied but names, types, enum members, flags and the example answers' shapes; no
description text is kept.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

PAGES = Path("src/Apps/W1/APIV2/app/src/pages")
RESOURCES = Path("dev-itpro/api-reference/v2.0/resources")
API = Path("dev-itpro/api-reference/v2.0/api")

# entity set -> (AL page file or None when the entity is served by the platform, docs resource
# page, docs GET page). Only what a preflight (and the later export) touches.
ENTITIES: dict[str, tuple[str | None, str, str]] = {
    "companies": (None, "dynamics_company.md", "dynamics_company_get.md"),
    "accounts": ("APIV2Accounts.Page.al", "dynamics_account.md", "dynamics_account_get.md"),
    "vendors": ("APIV2Vendors.Page.al", "dynamics_vendor.md", "dynamics_vendor_get.md"),
    "journals": ("APIV2Journals.Page.al", "dynamics_journal.md", "dynamics_journal_get.md"),
    "journalLines": ("APIV2JournalLines.Page.al", "dynamics_journalline.md", "dynamics_journalline_get.md"),
    "taxGroups": ("APIV2TaxGroups.Page.al", "dynamics_taxGroup.md", "dynamics_taxgroup_get.md"),
    "generalLedgerSetup": (
        "APIV2GLSetup.Page.al",
        "dynamics_generalledgersetup.md",
        "dynamics_generalledgersetup_get.md",
    ),
    "accountingPeriods": (
        "APIV2AccountingPeriods.Page.al",
        "dynamics_accountingperiod.md",
        "dynamics_accountingperiod_get.md",
    ),
    "bankAccounts": ("APIV2BankAccounts.Page.al", "dynamics_bankAccount.md", "dynamics_bankaccount_get.md"),
    "dimensions": ("APIV2Dimensions.Page.al", "dynamics_dimension.md", "dynamics_dimension_get.md"),
    "dimensionValues": (
        "APIV2DimensionValuesEntity.Page.al",
        "dynamics_dimensionvalue.md",
        "dynamics_dimensionvalue_get.md",
    ),
    "purchaseInvoices": (
        "APIV2PurchaseInvoices.Page.al",
        "dynamics_purchaseinvoice.md",
        "dynamics_purchaseinvoice_get.md",
    ),
    "purchaseInvoiceLines": (
        "APIV2PurchaseInvoiceLines.Page.al",
        "dynamics_purchaseinvoiceline.md",
        "dynamics_purchaseinvoiceline_get.md",
    ),
    "attachments": ("APIV2Attachments.Page.al", "dynamics_attachment.md", "dynamics_attachment_get.md"),
    "documentAttachments": (
        "APIV2DocumentAttachments.Page.al",
        "dynamics_documentattachment.md",
        "dynamics_documentattachment_get.md",
    ),
}

# Docs' type names -> JSON. The EDM names behind them are Edm.Guid, Edm.String, Edm.Boolean,
# Edm.Decimal, Edm.Int32, Edm.Int64, Edm.Date, Edm.DateTimeOffset, Edm.Stream; NAV.* are enums.
JSON_TYPES: dict[str, dict[str, str]] = {
    "guid": {"type": "string", "format": "uuid"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "decimal": {"type": "number"},
    "integer": {"type": "integer"},
    "int32": {"type": "integer"},
    "int64": {"type": "integer"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "stream": {"type": "string", "format": "stream"},
}

BASE = "https://api.businesscentral.dynamics.com"
URLS = {
    "token": {
        "template": "https://login.microsoftonline.com/{tenantId}/oauth2/v2.0/token",
        "source": "dev-itpro/administration/automation-apis-using-s2s-authentication.md (Token URL)",
    },
    "scope": {
        "template": f"{BASE}/.default",
        "source": "dev-itpro/administration/automation-apis-using-s2s-authentication.md",
    },
    "environments": {
        "template": f"{BASE}/environments/v1.2",
        "source": "dev-itpro/webservices/api-get-environments.md",
    },
    "apiRoot": {
        "template": f"{BASE}/v2.0/{{tenant}}/{{environment}}/api/v2.0",
        "alternatives": [f"{BASE}/v2.0/{{environment}}/api/v2.0"],
        "note": "{tenant}: Entra tenant id (GUID) or a verified domain; may be left out (endpoints table: "
        "'Common endpoint service' vs 'Direct tenant'). The S2S sample calls the form without tenant.",
        "source": "dev-itpro/api-reference/v2.0/endpoints-apis-for-dynamics.md; "
        "dev-itpro/webservices/api-endpoint-structure.md",
    },
    "companies": {"template": "{apiRoot}/companies", "source": "dynamics_company_get.md"},
    "company": {"template": "{apiRoot}/companies({companyId})", "source": "dynamics_company_get.md"},
    "entitySet": {"template": "{apiRoot}/companies({companyId})/{entitySet}", "source": "api/*_get.md"},
    "entity": {"template": "{apiRoot}/companies({companyId})/{entitySet}({id})", "source": "api/*_get.md"},
    "journalPost": {
        "template": "{apiRoot}/companies({companyId})/journals({id})/Microsoft.NAV.post",
        "method": "POST",
        "source": "resources/dynamics_journal.md (Bound actions); APIV2Journals.Page.al procedure post",
    },
    "purchaseInvoicePost": {
        "template": "{apiRoot}/companies({companyId})/purchaseInvoices({id})/Microsoft.NAV.post",
        "method": "POST",
        "source": "resources/dynamics_purchaseinvoice.md (Bound actions); APIV2PurchaseInvoices.Page.al procedure Post",
    },
    "attachmentContent": {
        "template": "{apiRoot}/companies({companyId})/attachments({id})/attachmentContent",
        "method": "PATCH",
        "source": "api/dynamics_attachment_update.md",
    },
}

# OData v4 JSON answers as Business Central writes them. Sources: OASIS OData JSON Format v4.0
# ("Control information": odata.context, odata.nextLink, odata.etag; "Error Response") and the
# Business Central examples named below.
ODATA = {
    "collection": {
        "required": ["value"],
        "properties": {
            "@odata.context": {"type": "string", "note": "{apiRoot}/$metadata#companies({companyId})/{entitySet}"},
            "value": {"type": "array"},
            "@odata.nextLink": {
                "type": "string",
                "note": "present only when the server cut the page; follow it verbatim (server-driven paging)",
            },
        },
        "source": "OData JSON Format v4.0 (odata.context, odata.nextLink); "
        "dev-itpro/webservices/Server-Driven-Paging-in-OData-Web-Services.md; "
        "api-reference/v1.0/api/*_defaultdimensions.md examples ('@odata.context', '@odata.etag', 'value')",
    },
    "entityControl": {
        "@odata.etag": {"type": "string", "note": "W/\"...\"; on each entity, also inside 'value'"},
        "source": "api-reference/v1.0/api/dynamics_customer_get_defaultdimensions.md example",
    },
    "error": {
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
        "codePrefixes": ["BadRequest_", "Authentication_", "Authorization_", "Internal_", "Application_", "Request_"],
        "source": "OData JSON Format v4.0 'Error Response'; "
        "dev-itpro/webservices/dynamics-error-codes.md (code families and table)",
    },
    "paging": {
        "preferHeader": "Prefer: odata.maxpagesize=<n>",
        "maxPageSizeOnline": 20000,
        "clientPagingWithTopSkip": "discouraged",
        "source": "dev-itpro/webservices/Server-Driven-Paging-in-OData-Web-Services.md; "
        "dev-itpro/webservices/odata-client-performance.md",
    },
    "blankValues": {
        "date": "0001-01-01",
        "datetime": "0001-01-01T00:00:00Z",
        "guid": "00000000-0000-0000-0000-000000000000",
        "source": "api/dynamics_employee_get.md (terminationDate), api/dynamics_journalline_get.md "
        "(lastModifiedDateTime), api/dynamics_vendor_get.md (currencyId)",
    },
    "enumEncoding": {
        "rule": "member name; every character other than A-Z, a-z, 0-9 and '_' written as _xHHHH_ "
        "(UTF-16, upper-case hex)",
        "examples": {
            " ": "_x0020_",
            "Positive Adjmt.": "Positive_x0020_Adjmt_x002E_",
            "Not Started": "Not_x0020_Started",
        },
        "source": "api/dynamics_itemledgerentry_get.md, api/dynamics_opportunity_get.md, "
        "api/dynamics_opportunity_create.md",
    },
}


# Fields the platform maintains; never writable whatever the page says.
SYSTEM_FIELDS = frozenset(
    {"Rec.SystemId", "Rec.SystemModifiedAt", "Rec.SystemCreatedAt", "Rec.SystemModifiedBy", "Rec.SystemCreatedBy"}
)


def wire_name(member: str) -> str:
    """An AL enum member name as Business Central writes it in JSON."""
    out = []
    for index, char in enumerate(member):
        plain = (char.isascii() and char.isalnum()) or char == "_"
        if plain and not (index == 0 and char.isdigit()):
            out.append(char)
        else:
            out.append("".join(f"_x{unit:04X}_" for unit in _utf16(char)))
    return "".join(out)


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def edm_enum_name(al_name: str) -> str:
    """'G/L Account Type' -> 'glAccountType': the NAV.* type name the server derives from an AL enum."""
    squashed = re.sub(r"[^A-Za-z0-9]", "", al_name)
    run = re.match(r"[A-Z]+", squashed)
    if not run:
        return squashed
    upper = run.group(0)
    if len(upper) > 1 and len(squashed) > len(upper) and squashed[len(upper)].islower():
        upper = upper[:-1]
    return upper.lower() + squashed[len(upper) :]


# ------------------------------------------------------------------ AL


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(
        line.split("//", 1)[0] if "'" not in line.split("//", 1)[0] else line for line in text.splitlines()
    )


def _block(text: str, start: int) -> tuple[str, int]:
    """The text between the '{' at or after ``start`` and its matching '}'."""
    open_at = text.index("{", start)
    depth = 0
    in_string = False
    for index in range(open_at, len(text)):
        char = text[index]
        if char == "'":
            in_string = not in_string
        elif not in_string and char == "{":
            depth += 1
        elif not in_string and char == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : index], index + 1
    raise ValueError("unbalanced braces")


def _parenthesised(text: str, start: int) -> tuple[str, int]:
    """The text from ``start`` up to the ')' that closes the '(' just before it (quotes respected)."""
    depth = 1
    quote = ""
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[start:index], index + 1
    raise ValueError("unbalanced parentheses")


def _props(block: str) -> dict[str, str]:
    """Top-level ``Name = value;`` pairs of a block (nested blocks and triggers skipped)."""
    flat = []
    depth = 0
    for char in block:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0:
            flat.append(char)
    text = re.sub(r"\btrigger\b.*?\bend;", "", "".join(flat), flags=re.S | re.I)
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"(?m)^\s*(\w+)\s*=\s*(.+?);\s*$", text)}


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_page(path: Path) -> dict[str, Any]:
    text = _strip_comments(path.read_text(encoding="utf-8-sig"))
    header = re.search(r'(?m)^page\s+(\d+)\s+"([^"]+)"', text)
    assert header, f"{path}: no page header"
    body, _ = _block(text, header.end())
    page_props = _props(body)
    global_vars = _global_vars(body)
    layout_at = re.search(r"\blayout\b", body)
    layout, _ = _block(body, layout_at.end()) if layout_at else ("", 0)
    properties: dict[str, Any] = {}
    navigation: dict[str, Any] = {}
    position = 0
    while match := re.compile(r"\b(field|part)\(").search(layout, position):
        kind = match.group(1)
        inner, end = _parenthesised(layout, match.end())
        name, _, source = inner.partition(";")
        name, source = _unquote(name), source.strip()
        block, position = _block(layout, end)
        props = _props(block)
        if kind == "field":
            entry: dict[str, Any] = {"al": source}
            variable = global_vars.get(source)
            if variable:
                entry["alVariableType"] = variable
            if props.get("Editable", "").lower() == "false":
                entry["editable"] = False
            properties[name] = entry
        else:
            navigation[name] = {
                "page": _unquote(source),
                "entitySet": _unquote(props.get("EntitySetName", "")) or None,
                "entity": _unquote(props.get("EntityName", "")) or None,
            }
    actions = [
        m.group(1) for m in re.finditer(r"\[ServiceEnabled\][^\n]*\n(?:\s*\[[^\]]*\]\s*\n)*\s*procedure\s+(\w+)", body)
    ]
    flags = {
        key: page_props.get(key, "").lower() != "false"
        for key in ("InsertAllowed", "ModifyAllowed", "DeleteAllowed", "Editable")
    }
    return {
        "page": {"id": int(header.group(1)), "name": header.group(2), "file": path.name},
        "entityName": _unquote(page_props.get("EntityName", "")),
        "entitySetName": _unquote(page_props.get("EntitySetName", "")),
        "apiVersion": _unquote(page_props.get("APIVersion", "")),
        "sourceTable": _unquote(page_props.get("SourceTable", "")),
        "sourceTableTemporary": page_props.get("SourceTableTemporary", "").lower() == "true",
        "keyFields": page_props.get("ODataKeyFields", ""),
        "insertAllowed": flags["InsertAllowed"] and flags["Editable"],
        "modifyAllowed": flags["ModifyAllowed"] and flags["Editable"],
        "deleteAllowed": flags["DeleteAllowed"] and flags["Editable"],
        "pageEditable": flags["Editable"],
        "boundActions": actions,
        "properties": properties,
        "navigation": navigation,
    }


def _global_vars(body: str) -> dict[str, str]:
    """Declarations in the page's own ``var`` sections (not those of procedures or triggers)."""
    found: dict[str, str] = {}
    lines = body.splitlines()
    for index, line in enumerate(lines):
        previous = next((before for before in reversed(lines[:index]) if before.strip()), "")
        if re.fullmatch(r"    var\s*", line) and not re.match(
            r"\s{4}(local |internal )?(procedure|trigger)\b", previous
        ):
            for declaration in lines[index + 1 :]:
                if declaration.strip() and not declaration.startswith("        "):
                    break
                match = re.fullmatch(r"\s+(\w+)\s*:\s*(.+?);\s*", declaration)
                if match:
                    found[match.group(1)] = match.group(2)
    return found


def parse_enums(folder: Path) -> dict[str, dict[str, Any]]:
    """AL enums and enum extensions in ``folder``: edm name -> {alName, members[{ordinal,name,caption,wire}]}."""
    enums: dict[str, dict[str, Any]] = {}
    extensions: list[tuple[str, str, list[dict[str, Any]]]] = []
    for path in sorted(folder.glob("*.al")):
        text = _strip_comments(path.read_text(encoding="utf-8-sig"))
        head = re.search(r'(?m)^enum\s+\d+\s+"([^"]+)"', text)
        ext = re.search(r'(?m)^enumextension\s+\d+\s+"([^"]+)"\s+extends\s+"([^"]+)"', text)
        values: list[dict[str, Any]] = [
            {"ordinal": int(m.group(1)), "name": _unquote(m.group(2)), "caption": (m.group(3) or "").replace("''", "'")}
            for m in re.finditer(
                r"value\(\s*(\d+)\s*;\s*(\"[^\"]*\"|\w+)\s*\)\s*\{[^}]*?Caption\s*=\s*'((?:[^']|'')*)'", text
            )
        ]
        for value in values:
            value["wire"] = wire_name(str(value["name"]))
        if head:
            enums[head.group(1)] = {"alName": head.group(1), "members": values, "files": [path.name]}
        elif ext:
            extensions.append((ext.group(2), f"{path.name} ({ext.group(1)})", values))
    for base, file, values in extensions:
        if base in enums:
            enums[base]["members"].extend(values)
            enums[base]["files"].append(file)
            enums[base]["partial"] = True
    return {
        edm_enum_name(name): entry | {"members": sorted(entry["members"], key=lambda v: v["ordinal"])}
        for name, entry in enums.items()
    }


# ------------------------------------------------------------------ docs


def parse_resource(path: Path) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    text = path.read_text(encoding="utf-8-sig")
    section = text.split("## Properties", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.fullmatch(r"[a-z]\w*", cells[0]):
            continue
        name, doc_type = cells[0], cells[1]
        description = "|".join(cells[2:])
        entry: dict[str, Any] = {"docType": doc_type}
        if doc_type.startswith("NAV."):
            tail = description.split("It can be", 1)[1] if "It can be" in description else ""
            entry["docEnumCaptions"] = re.findall(r'"([^"]*)"', tail)
        if re.search(r"read-only|non-editable", description, re.I):
            entry["docReadOnly"] = True
        rows[name] = entry
    return rows


def parse_example(path: Path) -> dict[str, Any]:
    """The JSON answer in a docs GET page: its keys (in order) and whether it parses."""
    if not path.is_file():
        return {"missing": True}
    text = path.read_text(encoding="utf-8-sig")
    answer = text.split("**Response**", 1)[-1]
    block = re.search(r"```(?:json)?\s*\n(.*?)```", answer, re.S)
    if not block:
        return {"missing": True}
    raw = block.group(1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"parses": False, "keys": re.findall(r'^\s*"([^"]+)"\s*:', raw, re.M)}
    if isinstance(value, dict) and isinstance(value.get("value"), list) and value["value"]:
        value = value["value"][0]
    return {"parses": True, "keys": list(value) if isinstance(value, dict) else [], "example": value}


# ------------------------------------------------------------------ merge


def property_entry(
    name: str, al: dict[str, Any] | None, doc: dict[str, Any] | None, enums: dict[str, Any], page: dict[str, Any] | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    in_docs = doc is not None
    doc = doc or {}
    doc_type = doc.get("docType")
    if doc_type:
        entry["edmType"] = doc_type
        if doc_type.startswith("NAV."):
            entry["type"] = "string"
            edm = doc_type[4:]
            if edm in enums:
                entry["enum"] = [member["wire"] for member in enums[edm]["members"]]
                entry["enumAl"] = {"name": enums[edm]["alName"], "members": [m["name"] for m in enums[edm]["members"]]}
                if enums[edm].get("partial"):
                    entry["enumAl"]["partial"] = True
            if doc.get("docEnumCaptions"):
                entry["docEnumCaptions"] = doc["docEnumCaptions"]
        else:
            entry.update(JSON_TYPES.get(doc_type.lower(), {"type": None, "unknownDocType": doc_type}))
    else:
        entry["type"] = None
    entry["nullable"] = False
    read_only = (
        bool(al and (al.get("editable") is False or al["al"] in SYSTEM_FIELDS))
        or bool(page and not page["pageEditable"])
        or bool(doc.get("docReadOnly"))
    )
    entry["readOnly"] = read_only
    if al:
        entry["al"] = al["al"]
        if "alVariableType" in al:
            entry["alVariableType"] = al["alVariableType"]
    entry["inAlPage"] = al is not None if page is not None else None
    entry["inDocs"] = in_docs
    return entry


def build(bcapps: Path, docs: Path, enums_dir: Path | None, meta: dict[str, Any]) -> dict[str, Any]:
    enums = parse_enums(enums_dir) if enums_dir else {}
    entities: dict[str, Any] = {}
    for entity_set, (page_file, resource, get_page) in ENTITIES.items():
        page = parse_page(bcapps / PAGES / page_file) if page_file else None
        doc_rows = parse_resource(docs / RESOURCES / resource)
        example = parse_example(docs / API / get_page)
        al_props = page["properties"] if page else {}
        names = list(al_props) + [name for name in doc_rows if name not in al_props]
        properties = {name: property_entry(name, al_props.get(name), doc_rows.get(name), enums, page) for name in names}
        entry: dict[str, Any] = {
            "entitySet": entity_set,
            "entity": page["entityName"] if page else None,
            "servedBy": f'AL page {page["page"]["id"]} "{page["page"]["name"]}" ({page["page"]["file"]})'
            if page
            else "platform (no AL page; docs only)",
            "docs": {"resource": str(RESOURCES / resource), "get": str(API / get_page)},
        }
        if page:
            assert page["entitySetName"] == entity_set, (
                f"{page_file}: entity set {page['entitySetName']} != {entity_set}"
            )
            assert page["apiVersion"] == "v2.0", f"{page_file}: APIVersion {page['apiVersion']}"
            entry.update(
                {
                    "sourceTable": page["sourceTable"],
                    "sourceTableTemporary": page["sourceTableTemporary"],
                    "keyFields": page["keyFields"],
                    "insertAllowed": page["insertAllowed"],
                    "modifyAllowed": page["modifyAllowed"],
                    "deleteAllowed": page["deleteAllowed"],
                    "boundActions": page["boundActions"],
                    "navigation": page["navigation"],
                }
            )
        entry["properties"] = properties
        discrepancies = []
        if page:
            only_al = [n for n in al_props if n not in doc_rows]
            only_docs = [n for n in doc_rows if n not in al_props]
            if only_al:
                discrepancies.append({"kind": "in AL page, not in docs resource page", "properties": only_al})
            if only_docs:
                discrepancies.append({"kind": "in docs resource page, not in AL page", "properties": only_docs})
        if example.get("keys"):
            unknown = [key for key in example["keys"] if key not in properties and not key.startswith("@odata.")]
            if unknown:
                discrepancies.append({"kind": "in the docs GET example, not a property", "properties": unknown})
        for name, prop in properties.items():
            captions = prop.get("docEnumCaptions")
            al_enum = prop.get("enumAl")
            if captions is not None and al_enum:
                al_captions = [m["caption"] for m in enums[prop["edmType"][4:]]["members"]]
                missing = [c for c in captions if c not in al_captions]
                if missing:
                    discrepancies.append(
                        {"kind": f"{name}: docs enum values that are no AL caption", "values": missing}
                    )
        if example.get("example") is not None:
            bad = []
            for key, value in example["example"].items():
                known = properties.get(key)
                if known and known.get("enum") and value not in known["enum"]:
                    bad.append({"property": key, "value": value, "wire": known["enum"]})
            if bad:
                discrepancies.append({"kind": "docs GET example enum value not in wire form", "values": bad})
        entry["docsExample"] = {k: v for k, v in example.items() if k != "keys"} | {"keys": example.get("keys", [])}
        entry["discrepancies"] = discrepancies
        entities[entity_set] = entry
    return {
        "about": "Our extract of Microsoft's description of Business Central API v2.0 (see SOURCE.md). "
        "Property names, order, read-only flags and navigation from the AL API pages; EDM types from the "
        "docs reference pages; enum wire values from the AL enum member names.",
        "source": meta,
        "urls": URLS,
        "odata": ODATA,
        "enums": enums,
        "entities": entities,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bcapps", type=Path, required=True)
    parser.add_argument("--bcapps-commit", required=True)
    parser.add_argument("--docs", type=Path, required=True)
    parser.add_argument("--docs-commit", required=True)
    parser.add_argument("--enums", type=Path)
    parser.add_argument("--enums-note", default="")
    args = parser.parse_args(argv)
    meta = {
        "alPages": {"repo": "microsoft/BCApps", "path": str(PAGES), "commit": args.bcapps_commit, "licence": "MIT"},
        "docs": {
            "repo": "MicrosoftDocs/dynamics365smb-devitpro-pb",
            "path": "dev-itpro/api-reference/v2.0",
            "commit": args.docs_commit,
            "licence": "CC-BY-4.0 (docs), MIT (code samples)",
        },
    }
    if args.enums:
        meta["alEnums"] = {"note": args.enums_note}
    json.dump(build(args.bcapps, args.docs, args.enums, meta), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
