"""Simulator of the Visma e-conomic REST API (``restapi.e-conomic.com``), read side.

Real-shaped where the shape could be looked up:

- auth: the ``X-AppSecretToken`` + ``X-AgreementGrantToken`` pair selects one agreement;
- collections: ``{collection, pagination{maxPageSizeAllowed, skipPages, pageSize, results,
  resultsWithoutFilter, firstPage, nextPage?, lastPage}, self}``, ``pagesize`` default 20,
  max 1000, ``skippages`` zero-based, ``nextPage`` only while more pages remain;
- filters: ``field$op:value`` joined by ``$and:`` / ``$or:``, parentheses, ``$null:``,
  ``$`` escapes; ``$in:``/``$nin:`` take ``[a,b]`` lists, **numeric properties only**, at
  most 200 values (restdocs "Filtering"); an unfilterable property gives the live 400 body
  with ``allowedFilteringFields``;
- errors: ``{message, errorCode?, developerHint, logId, httpStatusCode, logTime}``
  (``E06000`` = not found);
- ``barred`` (and an accounting year's ``closed``) is omitted from answers when false
  (restdocs: "a false boolean is omitted"; seen live on /accounts);
- app roles gate resources as the e-conomic permission matrix says (``/self``: SuperUser
  and Sales only; ledger resources: SuperUser and Bookkeeping);
- every answer carries ``X-CallCost`` and ``X-RateLimiting``
  (``token-limit-10000-per-60-seconds: <used>/10000``);
- answers follow e-conomic's published draft-03 schemas (``self.get``, ``accounts.get``,
  ``journals.get``, ``vat-accounts.get``): ``settings.internationalLedger`` on /self is the
  *string* ``"true"``/``"false"`` the schema types it as, and only properties those schemas
  mark ``filterable`` can be filtered on (``vat-accounts`` marks none). The contract test
  ``tests/contract/test_economic_contract.py`` holds every recorded answer to our extract of
  those schemas (``tests/contract/vendors/economic/``).

Sources: restdocs (github.com/e-conomic/slate), restapi.e-conomic.com/schema/*.get.schema.json
(as vendored byte-for-byte in github.com/Pogoe/EConomic.NET specs/legacy/),
e-conomic.com/developer/permissions, github.com/Pogoe/EConomic.NET (live-verified behaviour
and captured error bodies).
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from .base import SimRequest, SimResponse, SimulatorServer
from .registry import AccountingSeed, AccountingSimulator

__all__ = [
    "RESOURCE_ROLES",
    "Agreement",
    "EconomicSimulator",
    "FilterError",
    "default_accounting_years",
    "default_accounts",
    "default_journals",
    "default_suppliers",
    "default_vat_accounts",
    "parse_filter",
]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 20
MAX_IN_VALUES = 200
RATE_LIMIT = 10_000
RATE_WINDOW_SECONDS = 60

# SIMULATOR CHOICE: e-conomic's role numbers were not found; names are the API's enum.
ROLE_NUMBERS = {"SuperUser": 1, "Bookkeeping": 2, "Sales": 3, "ProjectEmployee": 4}

# e-conomic.com/developer/permissions. vat-accounts is not on the matrix excerpt we could
# read; SuperUser + Bookkeeping is assumed [verify].
RESOURCE_ROLES: dict[str, frozenset[str]] = {
    "self": frozenset({"SuperUser", "Sales"}),
    "accounts": frozenset({"SuperUser", "Bookkeeping"}),
    "accounting-years": frozenset({"SuperUser", "Bookkeeping"}),
    "journals": frozenset({"SuperUser", "Bookkeeping"}),
    "suppliers": frozenset({"SuperUser", "Bookkeeping"}),
    "vat-accounts": frozenset({"SuperUser", "Bookkeeping"}),
}

# Filterable properties and their types, from e-conomic's published schemas
# ("filterable": true). vat-accounts.get.schema.json marks none, and restdocs lists no
# filterable properties for it, so none are (the schemas are known to under-report elsewhere,
# but nothing published says which vat-account properties would filter).
FILTERABLE: dict[str, dict[str, type]] = {
    "accounts": {
        "accountNumber": int,
        "accountType": str,
        "balance": float,
        "barred": bool,
        "blockDirectEntries": bool,
        "debitCredit": str,
        "name": str,
    },
    "vat-accounts": {},
    "journals": {"journalNumber": int, "name": str},
    "suppliers": {
        "supplierNumber": int,
        "name": str,
        "barred": bool,
        "currency": str,
        "corporateIdentificationNumber": str,
        "address": str,
        "bankAccount": str,
        "city": str,
        "country": str,
        "defaultInvoiceText": str,
        "email": str,
        "zip": str,
    },
    "accounting-years": {"fromDate": str, "toDate": str, "closed": bool, "year": str},
}

_FALSE_OMITTED = ("barred", "closed")


# ------------------------------------------------------------------ seeded data


def default_accounts() -> dict[int, dict[str, Any]]:
    """A small Danish chart of accounts (numbers -> account, without hypermedia links).

    Postable: 1010 (sales), 5820, 5850 (expenses), 6800, 6820 (bank), 7000 (payables),
    7700-7720 (VAT). Not postable: 1000/5800/6700 headings, 5999 totalFrom,
    5900 (blockDirectEntries), 9999 (barred).
    """

    def account(number: int, name: str, type_: str, debit_credit: str = "debit", **extra: Any) -> dict[str, Any]:
        return {
            "accountNumber": number,
            "accountType": type_,
            "balance": 0.0,
            "draftBalance": 0.0,
            "barred": False,
            "blockDirectEntries": False,
            "debitCredit": debit_credit,
            "name": name,
            **extra,
        }

    accounts = [
        account(1000, "RESULTATOPGØRELSE", "heading"),
        account(1010, "Salg af varer/ydelser m/moms", "profitAndLoss", "credit", vatAccount={"vatCode": "U25"}),
        account(5800, "Administrationsomkostninger", "heading"),
        account(5820, "Kontorartikler", "profitAndLoss", vatAccount={"vatCode": "I25"}),
        account(5850, "Telefon og internet", "profitAndLoss", vatAccount={"vatCode": "I25"}),
        account(5900, "Afskrivninger", "profitAndLoss", blockDirectEntries=True),
        account(5999, "Administrationsomkostninger i alt", "totalFrom", totalFromAccount={"accountNumber": 5800}),
        account(6700, "BALANCE", "heading"),
        account(6800, "Bank", "status", balance=125000.0, draftBalance=125000.0),
        account(6820, "Pleo kortkonto", "status"),
        account(7000, "Kreditorer", "status", "credit"),
        account(7700, "Indgående moms (købsmoms)", "status"),
        account(7710, "Udgående moms (salgsmoms)", "status", "credit"),
        account(7720, "Moms af varekøb i udlandet (EU)", "status", "credit"),
        account(9999, "Spærret konto", "profitAndLoss", barred=True),
    ]
    return {a["accountNumber"]: a for a in accounts}


def default_vat_accounts() -> dict[str, dict[str, Any]]:
    """VAT codes I25 (purchase 25 %), U25 (sales 25 %), IEUV (EU goods purchase, reverse charge)."""
    return {
        "I25": {
            "vatCode": "I25",
            "name": "Indgående moms 25%",
            "ratePercentage": 25.0,
            "barred": False,
            "vatType": {"vatTypeNumber": 2, "name": "Indgående moms (køb)"},
            "account": {"accountNumber": 7700},
        },
        "U25": {
            "vatCode": "U25",
            "name": "Udgående moms 25%",
            "ratePercentage": 25.0,
            "barred": False,
            "vatType": {"vatTypeNumber": 1, "name": "Udgående moms (salg)"},
            "account": {"accountNumber": 7710},
        },
        "IEUV": {
            "vatCode": "IEUV",
            "name": "Moms af varekøb i EU",
            "ratePercentage": 25.0,
            "barred": False,
            "vatType": {"vatTypeNumber": 3, "name": "Moms af varekøb i udlandet"},
            "account": {"accountNumber": 7700},
            "contraAccount": {"accountNumber": 7720},
        },
    }


def default_journals() -> dict[int, dict[str, Any]]:
    """Journals 1 "Daglig" (any entry type), 2 "Kreditorfakturaer" (supplierInvoice only),
    3 "Finansbilag" (financeVoucher only, contra account 6820)."""
    numbers = {"minimumVoucherNumber": 1, "maximumVoucherNumber": 999999999}
    return {
        1: {"journalNumber": 1, "name": "Daglig", "settings": {"voucherNumbers": dict(numbers)}},
        2: {
            "journalNumber": 2,
            "name": "Kreditorfakturaer",
            "settings": {"voucherNumbers": dict(numbers), "entryTypeRestrictedTo": "supplierInvoice"},
        },
        3: {
            "journalNumber": 3,
            "name": "Finansbilag",
            "settings": {
                "voucherNumbers": dict(numbers),
                "entryTypeRestrictedTo": "financeVoucher",
                "contraAccounts": {"financeVouchers": {"accountNumber": 6820}},
            },
        },
    }


def default_suppliers() -> dict[int, dict[str, Any]]:
    """Suppliers 1 Kontorland A/S, 2 Telia Danmark (DKK, domestic), 3 Amazon EU (EUR, EU),
    4 Gammel Leverandør ApS (barred)."""

    def supplier(number: int, name: str, currency: str = "DKK", zone: int = 1, **extra: Any) -> dict[str, Any]:
        return {
            "supplierNumber": number,
            "name": name,
            "currency": currency,
            "barred": False,
            "supplierGroup": {"supplierGroupNumber": 1},
            "paymentTerms": {"paymentTermsNumber": 1},
            "vatZone": {"vatZoneNumber": zone},
            "layout": {"layoutNumber": 19},
            **extra,
        }

    suppliers = [
        supplier(1, "Kontorland A/S", corporateIdentificationNumber="10150817", costAccount={"accountNumber": 5820}),
        supplier(2, "Telia Danmark", corporateIdentificationNumber="18530740", costAccount={"accountNumber": 5850}),
        supplier(3, "Amazon EU S.a.r.l.", "EUR", 2, country="Luxembourg"),
        supplier(4, "Gammel Leverandør ApS", barred=True),
    ]
    return {s["supplierNumber"]: s for s in suppliers}


def default_accounting_years(today: time.struct_time | None = None) -> dict[str, dict[str, Any]]:
    """Calendar accounting years: last year (closed) and this year (open)."""
    year = (today or time.gmtime()).tm_year
    return {
        str(y): {"year": str(y), "fromDate": f"{y}-01-01", "toDate": f"{y}-12-31", "closed": y < year}
        for y in (year - 1, year)
    }


# ------------------------------------------------------------------ agreement


@dataclass
class Agreement:
    """One customer agreement as the simulator serves it. Mutate freely between requests
    (e.g. ``agreement.accounts[5820]["barred"] = True`` or ``agreement.revoked = True``)."""

    app_secret_token: str
    agreement_grant_token: str
    agreement_number: int
    company_name: str
    vat_number: str = "DK12345678"
    roles: tuple[str, ...] = ("SuperUser",)
    modules: tuple[str, ...] = ()
    international_ledger: bool = False
    base_currency: str = "DKK"
    accounts: dict[int, dict[str, Any]] = field(default_factory=default_accounts)
    vat_accounts: dict[str, dict[str, Any]] = field(default_factory=default_vat_accounts)
    journals: dict[int, dict[str, Any]] = field(default_factory=default_journals)
    suppliers: dict[int, dict[str, Any]] = field(default_factory=default_suppliers)
    accounting_years: dict[str, dict[str, Any]] = field(default_factory=default_accounting_years)
    self_forbidden: bool | None = None
    """403 on GET /self. ``None``: derive from ``roles`` (forbidden unless SuperUser or Sales)."""
    revoked: bool = False
    """The customer revoked the grant: every authenticated call gets 401."""
    app_name: str = "Pleo export preflight"
    app_number: int = 4711

    def can_read_self(self) -> bool:
        """Whether GET /self answers 200 for this agreement."""
        if self.self_forbidden is not None:
            return not self.self_forbidden
        return bool(RESOURCE_ROLES["self"] & set(self.roles))

    def can_read(self, resource: str) -> bool:
        """Whether the app's role gives access to a resource (``accounts``, ``self``, ...)."""
        if resource == "self":
            return self.can_read_self()
        return bool(RESOURCE_ROLES[resource] & set(self.roles))


# ------------------------------------------------------------------ filter language


class FilterError(ValueError):
    """A filter e-conomic would answer with 400."""

    def __init__(self, detail: str, *, allowed: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.allowed = allowed


_NULL = object()
_WILDCARD = "\x00"
_OPERATORS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "like", "in", "nin"})
_ESCAPABLE = frozenset("$()*,[]")
_PREDICATE_HEAD = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)\$([a-z]+):")


class _FilterParser:
    """Recursive-descent parser: ``or := and ($or: and)*``, ``and := term ($and: term)*``,
    ``term := '(' or ')' | field$op:value``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> tuple[Any, ...]:
        node = self._or()
        if self.pos != len(self.text):
            raise FilterError(f"Unexpected text at position {self.pos}: {self.text[self.pos :]!r}.")
        return node

    def _or(self) -> tuple[Any, ...]:
        parts = [self._and()]
        while self.text.startswith("$or:", self.pos):
            self.pos += 4
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def _and(self) -> tuple[Any, ...]:
        parts = [self._term()]
        while self.text.startswith("$and:", self.pos):
            self.pos += 5
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def _term(self) -> tuple[Any, ...]:
        if self.text.startswith("(", self.pos):
            self.pos += 1
            node = self._or()
            if not self.text.startswith(")", self.pos):
                raise FilterError("Missing closing parenthesis.")
            self.pos += 1
            return node
        match = _PREDICATE_HEAD.match(self.text, self.pos)
        if match is None or match.group(2) not in _OPERATORS:
            raise FilterError(f"Expected 'property$operator:value' at position {self.pos}.")
        self.pos = match.end()
        name, op = match.groups()
        value: Any = self._list() if op in ("in", "nin") else self._value(stop=")")
        return ("pred", name, op, value)

    def _list(self) -> list[Any]:
        if not self.text.startswith("[", self.pos):
            raise FilterError("The $in: and $nin: operators take a list in square brackets, e.g. [1,2,3].")
        self.pos += 1
        values = [self._value(stop=",]")]
        while self.text.startswith(",", self.pos):
            self.pos += 1
            values.append(self._value(stop=",]"))
        if not self.text.startswith("]", self.pos):
            raise FilterError("Missing closing square bracket.")
        self.pos += 1
        return values

    def _value(self, *, stop: str) -> Any:
        if self.text.startswith("$null:", self.pos):
            self.pos += 6
            return _NULL
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "$":
                if self.text.startswith(("$and:", "$or:"), self.pos):
                    break
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in _ESCAPABLE:
                    raise FilterError(f"Invalid escape sequence at position {self.pos}.")
                out.append(escaped)
                self.pos += 2
                continue
            if char in stop:
                break
            out.append(_WILDCARD if char == "*" else char)
            self.pos += 1
        return "".join(out)


def parse_filter(text: str) -> tuple[Any, ...]:
    """Parse an e-conomic ``filter`` expression into a small tree (raises ``FilterError``)."""
    return _FilterParser(text).parse()


def _lookup(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _coerce(raw: Any, kind: type, name: str) -> Any:
    if raw is _NULL:
        return None
    text = raw.replace(_WILDCARD, "*")
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise FilterError(f"'{text}' is not a boolean value for property '{name}'.")
        return text.lower() == "true"
    if kind in (int, float):
        try:
            return float(text)
        except ValueError:
            raise FilterError(f"'{text}' is not a numeric value for property '{name}'.") from None
    return text.casefold()


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value).casefold()


def _predicate(item: dict[str, Any], name: str, op: str, raw: Any, kind: type) -> bool:
    actual = _normalise(_lookup(item, name))
    if op in ("in", "nin"):
        found = actual in [_coerce(v, kind, name) for v in raw]
        return found if op == "in" else not found
    if op == "like":
        pattern = raw.casefold()
        if _WILDCARD not in pattern:
            pattern = _WILDCARD + pattern + _WILDCARD
        regex = ".*".join(re.escape(part) for part in pattern.split(_WILDCARD))
        return isinstance(actual, str) and re.fullmatch(regex, actual, re.DOTALL) is not None
    wanted = _coerce(raw, kind, name)
    if op == "eq":
        return bool(actual == wanted)
    if op == "ne":
        return bool(actual != wanted)
    if actual is None or wanted is None:
        return False
    try:
        return bool(
            {"gt": actual > wanted, "gte": actual >= wanted, "lt": actual < wanted, "lte": actual <= wanted}[op]
        )
    except TypeError:
        return False


def _check_filter(node: tuple[Any, ...], fields: dict[str, type] | None, sample: list[dict[str, Any]]) -> None:
    """Reject what e-conomic rejects: unfilterable properties, $in on non-numeric ones, long lists."""
    if node[0] in ("and", "or"):
        for child in node[1]:
            _check_filter(child, fields, sample)
        return
    _, name, op, value = node
    if fields is not None and name not in fields:
        raise FilterError(f"Filtering is not allowed on property '{name}'.", allowed=sorted(fields))
    kind = _kind(name, fields, sample)
    if op in ("in", "nin"):
        if fields is not None and kind not in (int, float):
            raise FilterError(f"The ${op}: operator is only supported on numeric properties, not on '{name}'.")
        if len(value) > MAX_IN_VALUES:
            raise FilterError(f"The ${op}: operator takes at most {MAX_IN_VALUES} values.")
    if op == "like" and kind is not str:
        raise FilterError(f"The $like: operator is only supported on text properties, not on '{name}'.")
    values = value if op in ("in", "nin") else [value]
    for raw in values:
        if op != "like":
            _coerce(raw, kind, name)


def _kind(name: str, fields: dict[str, type] | None, sample: list[dict[str, Any]]) -> type:
    if fields is not None and name in fields:
        return fields[name]
    for item in sample:
        value = _lookup(item, name)
        if value is not None:
            return bool if isinstance(value, bool) else float if isinstance(value, int | float) else str
    return str


def _evaluate(node: tuple[Any, ...], item: dict[str, Any], kinds: Callable[[str], type]) -> bool:
    if node[0] == "and":
        return all(_evaluate(child, item, kinds) for child in node[1])
    if node[0] == "or":
        return any(_evaluate(child, item, kinds) for child in node[1])
    _, name, op, value = node
    return _predicate(item, name, op, value, kinds(name))


# ------------------------------------------------------------------ simulator


class EconomicSimulator(SimulatorServer):
    """e-conomic REST API: ``/``, ``/self``, ``/accounts``, ``/vat-accounts``, ``/journals``,
    ``/suppliers``, ``/accounting-years`` (collections and single resources), GET only.

    ``strict_filters=False`` accepts any property in a filter and ``$in:`` on text
    properties (real e-conomic rejects both).
    """

    credential_headers = frozenset({"x-appsecrettoken", "x-agreementgranttoken"})

    def __init__(
        self,
        *,
        latency: float = 0.0,
        strict_filters: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency)
        self.strict_filters = strict_filters
        self.clock = clock
        self._agreements: dict[tuple[str, str], Agreement] = {}
        self._rate: dict[int | None, tuple[float, int]] = {}
        self.route("GET", r"/", self._root)
        self.route("GET", r"/self", self._self)
        for resource, key_pattern in (
            ("accounts", r"\d+"),
            ("vat-accounts", r"[^/]+"),
            ("journals", r"\d+"),
            ("suppliers", r"\d+"),
            ("accounting-years", r"[^/]+"),
        ):
            self.route("GET", rf"/{resource}", self._collection_handler(resource))
            self.route("GET", rf"/{resource}/(?P<key>{key_pattern})", self._item_handler(resource))

    # ------------------------------------------------------------ seeding

    def add_agreement(
        self,
        *,
        app_secret_token: str,
        agreement_grant_token: str,
        agreement_number: int,
        company_name: str,
        vat_number: str = "DK12345678",
        roles: Iterable[str] = ("SuperUser",),
        modules: Iterable[str] = (),
        international_ledger: bool = False,
        base_currency: str = "DKK",
        accounts: dict[int, dict[str, Any]] | None = None,
        vat_accounts: dict[str, dict[str, Any]] | None = None,
        journals: dict[int, dict[str, Any]] | None = None,
        suppliers: dict[int, dict[str, Any]] | None = None,
        accounting_years: dict[str, dict[str, Any]] | None = None,
        self_forbidden: bool | None = None,
    ) -> Agreement:
        """Register an agreement reachable with this token pair and return it (mutable).

        ``None`` for a data set means the default Danish seed (see ``default_*``); pass ``{}``
        for an empty one.
        """
        agreement = Agreement(
            app_secret_token=app_secret_token,
            agreement_grant_token=agreement_grant_token,
            agreement_number=agreement_number,
            company_name=company_name,
            vat_number=vat_number,
            roles=tuple(roles),
            modules=tuple(modules),
            international_ledger=international_ledger,
            base_currency=base_currency,
            self_forbidden=self_forbidden,
        )
        if accounts is not None:
            agreement.accounts = accounts
        if vat_accounts is not None:
            agreement.vat_accounts = vat_accounts
        if journals is not None:
            agreement.journals = journals
        if suppliers is not None:
            agreement.suppliers = suppliers
        if accounting_years is not None:
            agreement.accounting_years = accounting_years
        with self.lock:
            self._agreements[(app_secret_token, agreement_grant_token)] = agreement
        return agreement

    def reset(self) -> None:
        """Drop agreements, rate-limit counters, recorded requests and faults."""
        with self.lock:
            super().reset()
            self._agreements.clear()
            self._rate.clear()

    def agreement(self, agreement_number: int) -> Agreement:
        """The registered agreement with this number (``KeyError`` if none)."""
        with self.lock:
            for agreement in self._agreements.values():
                if agreement.agreement_number == agreement_number:
                    return agreement
        raise KeyError(agreement_number)

    # ------------------------------------------------------------ response shaping

    def unknown_route(self, request: SimRequest, *, path_known: bool) -> SimResponse:
        if path_known:
            return self._error(405, f"The {request.method} method is not supported on this resource.")
        return self._error(404, "The requested resource does not exist.", code="E06000", hint=f"See {self._url('/')}.")

    def decorate(self, request: SimRequest, response: SimResponse) -> SimResponse:
        """Price every call against the agreement's token bucket (headers only; no 429)."""
        agreement = self._agreements.get(self._token_pair(request))
        key = agreement.agreement_number if agreement else None
        now = self.clock()
        with self.lock:
            started, used = self._rate.get(key, (now, 0))
            if now - started >= RATE_WINDOW_SECONDS:
                started, used = now, 0
            used += 1
            self._rate[key] = (started, used)
        response.headers = {
            "X-CallCost": "1",
            "X-RateLimiting": f"token-limit-{RATE_LIMIT}-per-{RATE_WINDOW_SECONDS}-seconds: {used}/{RATE_LIMIT}",
            **(response.headers or {}),
        }
        return response

    def _error(
        self, status: int, message: str, *, code: str | None = None, hint: str | None = None, **extra: Any
    ) -> SimResponse:
        body: dict[str, Any] = {"message": message}
        if code:
            body["errorCode"] = code
        if hint:
            body["developerHint"] = hint
        body["logId"] = f"{secrets.token_hex(8)}-SIM"
        body["httpStatusCode"] = status
        body["logTime"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.clock()))
        body.update(extra)
        return SimResponse(status, body)

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # ------------------------------------------------------------ auth

    @staticmethod
    def _token_pair(request: SimRequest) -> tuple[str, str]:
        return (request.headers.get("X-AppSecretToken", ""), request.headers.get("X-AgreementGrantToken", ""))

    def _guard(self, request: SimRequest, resource: str) -> tuple[Agreement | None, SimResponse | None]:
        app, grant = self._token_pair(request)
        if not app or not grant:
            return None, self._error(
                401,
                "Unauthorized access (401): the X-AppSecretToken and X-AgreementGrantToken headers are required.",
                hint="Supply both headers on every request. See https://www.e-conomic.com/developer/connect.",
            )
        with self.lock:
            agreement = self._agreements.get((app, grant))
        if agreement is None or agreement.revoked:
            return None, self._error(
                401,
                "Unauthorized access (401): the supplied tokens do not grant access to an agreement.",
                hint="The AgreementGrantToken may have been revoked by the agreement, or the tokens are wrong.",
            )
        if not agreement.can_read(resource):
            return None, self._error(
                403,
                f"Forbidden (403): the app's role ({', '.join(agreement.roles) or 'none'}) "
                f"does not give access to /{resource}.",
                hint="App roles are listed at https://www.e-conomic.com/developer/permissions.",
            )
        return agreement, None

    # ------------------------------------------------------------ handlers

    def _root(self, request: SimRequest) -> SimResponse:
        # SIMULATOR CHOICE: the live root document's exact layout was not found; it lists
        # every resource as "stable" and needs no tokens.
        resources = ["accounting-years", "accounts", "journals", "self", "suppliers", "vat-accounts"]
        return SimResponse(
            200,
            {
                "apiName": "e-conomic REST API (simulated)",
                "gettingStarted": "https://www.e-conomic.com/developer/connect",
                "resources": {
                    "stable": [{"name": name, "href": self._url(f"/{name}")} for name in resources],
                    "experimental": [],
                    "deprecated": [],
                },
                "self": self._url("/"),
            },
        )

    def _self(self, request: SimRequest) -> SimResponse:
        agreement, denied = self._guard(request, "self")
        if denied:
            return denied
        assert agreement is not None
        return SimResponse(200, self._render_self(agreement))

    def _collection_handler(self, resource: str) -> Callable[[SimRequest], SimResponse]:
        def handler(request: SimRequest) -> SimResponse:
            agreement, denied = self._guard(request, resource)
            if denied:
                return denied
            assert agreement is not None
            with self.lock:
                items = copy.deepcopy(list(self._data(agreement, resource).values()))
            return self._collection(request, resource, agreement, items)

        return handler

    def _item_handler(self, resource: str) -> Callable[..., SimResponse]:
        def handler(request: SimRequest, key: str) -> SimResponse:
            agreement, denied = self._guard(request, resource)
            if denied:
                return denied
            assert agreement is not None
            data = self._data(agreement, resource)
            lookup: Any = int(key) if resource in ("accounts", "journals", "suppliers") else key
            with self.lock:
                item = copy.deepcopy(data.get(lookup))
            if item is None:
                noun = resource.rstrip("s").replace("-", " ")
                return self._error(
                    404,
                    f"{noun.capitalize()} '{key}' not found.",
                    code="E06000",
                    hint=f"Find a list of {resource} at {self._url('/' + resource)}.",
                )
            return SimResponse(200, self._render(resource, item))

        return handler

    # ------------------------------------------------------------ collections

    def _collection(
        self, request: SimRequest, resource: str, agreement: Agreement, items: list[dict[str, Any]]
    ) -> SimResponse:
        query = {name.lower(): values for name, values in request.query.items()}
        try:
            page_size = int((query.get("pagesize") or [str(DEFAULT_PAGE_SIZE)])[0])
            skip_pages = int((query.get("skippages") or ["0"])[0])
        except ValueError:
            return self._error(400, "pagesize and skippages must be integers.")
        if not 1 <= page_size <= MAX_PAGE_SIZE or skip_pages < 0:
            return self._error(
                400,
                f"pagesize must be between 1 and {MAX_PAGE_SIZE}; skippages must not be negative.",
                hint="See https://restdocs.e-conomic.com/#pagination.",
            )
        total = len(items)
        filter_text = (query.get("filter") or [""])[0]
        if filter_text:
            fields = FILTERABLE[resource] if self.strict_filters else None
            try:
                tree = parse_filter(filter_text)
                _check_filter(tree, fields, items)
            except FilterError as error:
                extra: dict[str, Any] = {"errors": [error.detail]}
                if error.allowed is not None:
                    extra["allowedFilteringFields"] = error.allowed
                return self._error(
                    400,
                    "Could not parse query string filter.",
                    hint="Filtering on collections can be done using the querystring parameter 'filter'.",
                    **extra,
                )
            sample = items

            def kinds(name: str) -> type:
                return _kind(name, fields, sample)

            items = [item for item in sample if _evaluate(tree, item, kinds)]
        sort_text = (query.get("sort") or [""])[0]
        if sort_text:
            for key in reversed([k for k in sort_text.split(",") if k]):
                items.sort(key=_sort_key(key.lstrip("-~")), reverse=key.startswith("-"))
        results = len(items)
        page = items[skip_pages * page_size : (skip_pages + 1) * page_size]
        last_page = max(0, math.ceil(results / page_size) - 1)

        def page_url(skip: int) -> str:
            extra = f"&filter={quote(filter_text, safe='$:,()*')}" if filter_text else ""
            return self._url(f"/{resource}?pagesize={page_size}&skippages={skip}{extra}")

        pagination: dict[str, Any] = {
            "maxPageSizeAllowed": MAX_PAGE_SIZE,
            "skipPages": skip_pages,
            "pageSize": page_size,
            "results": results,
            "resultsWithoutFilter": total,
            "firstPage": page_url(0),
        }
        # No "previousPage": no e-conomic schema, page or recorded answer we read shows one.
        if skip_pages < last_page:
            pagination["nextPage"] = page_url(skip_pages + 1)
        pagination["lastPage"] = page_url(last_page)
        raw_query = urlencode(request.query, doseq=True, safe="$:,()*")
        return SimResponse(
            200,
            {
                "collection": [self._render(resource, item) for item in page],
                "pagination": pagination,
                "self": self._url(f"/{resource}" + (f"?{raw_query}" if raw_query else "")),
            },
        )

    @staticmethod
    def _data(agreement: Agreement, resource: str) -> dict[Any, dict[str, Any]]:
        data: dict[str, dict[Any, dict[str, Any]]] = {
            "accounts": agreement.accounts,
            "vat-accounts": agreement.vat_accounts,
            "journals": agreement.journals,
            "suppliers": agreement.suppliers,
            "accounting-years": agreement.accounting_years,
        }
        return data[resource]

    # ------------------------------------------------------------ rendering

    def _ref(self, ref: dict[str, Any] | None, key: str, collection: str) -> dict[str, Any] | None:
        if not ref:
            return None
        return {**ref, "self": self._url(f"/{collection}/{ref[key]}")}

    def _render(self, resource: str, item: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in item.items() if not (k in _FALSE_OMITTED and v is False)}
        if resource == "accounts":
            number = item["accountNumber"]
            for name in ("contraAccount", "totalFromAccount"):
                if item.get(name):
                    out[name] = self._ref(item[name], "accountNumber", "accounts")
            if item.get("vatAccount"):
                out["vatAccount"] = self._ref(item["vatAccount"], "vatCode", "vat-accounts")
            out["accountingYears"] = self._url(f"/accounts/{number}/accounting-years")
            out["self"] = self._url(f"/accounts/{number}")
        elif resource == "vat-accounts":
            for name in ("account", "contraAccount"):
                if item.get(name):
                    out[name] = self._ref(item[name], "accountNumber", "accounts")
            if item.get("vatType"):
                out["vatType"] = self._ref(item["vatType"], "vatTypeNumber", "vat-types")
            out["self"] = self._url(f"/vat-accounts/{item['vatCode']}")
        elif resource == "journals":
            base = f"/journals/{item['journalNumber']}"
            settings = copy.deepcopy(item.get("settings") or {})
            contra = settings.get("contraAccounts") or {}
            for name, ref in contra.items():
                contra[name] = self._ref(ref, "accountNumber", "accounts")
            out["settings"] = settings
            out["templates"] = {
                "financeVoucher": self._url(f"{base}/templates/financeVoucher"),
                "manualCustomerInvoice": self._url(f"{base}/templates/manualCustomerInvoice"),
                "self": self._url(f"{base}/templates"),
            }
            out["vouchers"] = self._url(f"{base}/vouchers")
            out["entries"] = self._url(f"{base}/entries")
            out["self"] = self._url(base)
        elif resource == "suppliers":
            number = item["supplierNumber"]
            for name, key, collection in (
                ("supplierGroup", "supplierGroupNumber", "supplier-groups"),
                ("paymentTerms", "paymentTermsNumber", "payment-terms"),
                ("vatZone", "vatZoneNumber", "vat-zones"),
                ("layout", "layoutNumber", "layouts"),
                ("costAccount", "accountNumber", "accounts"),
            ):
                if item.get(name):
                    out[name] = self._ref(item[name], key, collection)
            out["contacts"] = self._url(f"/suppliers/{number}/contacts")
            out["self"] = self._url(f"/suppliers/{number}")
        elif resource == "accounting-years":
            base = f"/accounting-years/{item['year']}"
            out.update(
                periods=self._url(f"{base}/periods"),
                entries=self._url(f"{base}/entries"),
                totals=self._url(f"{base}/totals"),
                vouchers=self._url(f"{base}/vouchers"),
                self=self._url(base),
            )
        return out

    def _render_self(self, agreement: Agreement) -> dict[str, Any]:
        number = agreement.agreement_number
        cvr = re.sub(r"\D", "", agreement.vat_number) or agreement.vat_number
        return {
            "agreementNumber": number,
            "agreementType": {"agreementTypeNumber": 1, "name": "denmark"},
            "userName": "Simulated Bookkeeper",
            "signupDate": "2020-01-01",
            "user": {
                "loginId": "bookkeeper",
                "email": "bookkeeper@example.com",
                "name": "Simulated Bookkeeper",
                "agreementNumber": number,
                "language": {
                    "languageNumber": 1,
                    "name": "Danish",
                    "culture": "da-DK",
                    "self": self._url("/languages/1"),
                },
            },
            "company": {
                "addressLine1": "Testvej 1",
                "zip": "1000",
                "city": "København K",
                "country": "Danmark",
                "name": agreement.company_name,
                "companyIdentificationNumber": cvr,
                "vatNumber": agreement.vat_number,
                "phoneNumber": "+45 12 34 56 78",
                "email": "info@example.com",
            },
            "application": {
                "appNumber": agreement.app_number,
                "name": agreement.app_name,
                "appPublicToken": f"sim-public-{agreement.app_number}",
                "created": "2024-01-01",
                "requiredRoles": [
                    {
                        "roleNumber": ROLE_NUMBERS.get(role, 0),
                        "name": role,
                        "self": self._url(f"/app-roles/{ROLE_NUMBERS.get(role, 0)}"),
                    }
                    for role in agreement.roles
                ],
                "self": self._url(f"/apps/{agreement.app_number}"),
            },
            "settings": {
                "baseCurrency": agreement.base_currency,
                # self.get.schema.json: a string, "If this value is 'true' then the
                # international ledger is used."
                "internationalLedger": "true" if agreement.international_ledger else "false",
            },
            "companyAffiliation": "E-conomic",
            "modules": [
                {"moduleNumber": index, "name": name, "self": self._url(f"/modules/{index}")}
                for index, name in enumerate(agreement.modules, start=1)
            ],
            "self": self._url("/self"),
        }


def _sort_key(name: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    """Sort key for a (dotted) property: missing values first, then numbers, then text."""

    def key(item: dict[str, Any]) -> tuple[int, Any]:
        value = _lookup(item, name)
        if value is None:
            return (0, 0.0)
        if isinstance(value, bool | int | float):
            return (1, float(value))
        return (2, str(value).casefold())

    return key


# ---------------------------------------------------------------- the sandbox's view


def _seed(
    sandbox: Any,
    simulator: EconomicSimulator,
    slug: str,
    *,
    company_id: str,
    agreement_number: int | None = None,
    agreement: dict[str, Any] | None = None,
    grant_token: str | None = None,
    store_accounting_secret: bool = True,
) -> AccountingSeed:
    """An e-conomic agreement for one company, and its token pair in Secrets Manager
    (``grant_token`` stores a wrong one; ``store_accounting_secret=False`` none)."""
    app_token = f"app-secret-{uuid.uuid4().hex}"
    real_grant = f"grant-{slug}-{uuid.uuid4().hex}"
    if agreement_number is None:  # any unused one
        agreement_number = 500_000 + uuid.uuid4().int % 400_000
    simulator.add_agreement(
        app_secret_token=app_token,
        agreement_grant_token=real_grant,
        agreement_number=agreement_number,
        company_name=f"{slug.replace('-', ' ').title()} ApS",
        **(agreement or {}),
    )
    secret_id = f"export-preflight/economic/{company_id}"  # the company's own (docs/contracts.md, "Secrets")
    if store_accounting_secret:
        sandbox.aws.put_secret(
            secret_id, {"appSecretToken": app_token, "agreementGrantToken": grant_token or real_grant}
        )
    return AccountingSeed(
        company_ref=str(agreement_number),
        secret_id=secret_id,
        mappings={"journal": 1, "expenseAccount": 5820, "contraAccount": 6800, "vatCodes": ["I25"]},
        secrets={"app": app_token, "grant": real_grant},
    )


SIMULATOR = AccountingSimulator(
    system="economic",
    create=lambda latency: EconomicSimulator(latency=latency),
    settings=lambda server: {"api_base_url": server.base_url},
    seed=_seed,
)
