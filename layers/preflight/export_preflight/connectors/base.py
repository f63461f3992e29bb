"""The accounting-system connector protocol: everything preflight asks of an
accounting system, read-only. One module per system implements it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, cast

import httpx
from pydantic import BaseModel

from ..errors import AccountingSystemError, AccountingSystemUnavailable
from ..http import ACCOUNTING_ANSWER_BYTES, RemoteErrors, send
from ..models import Capability, ClientCredentials, CompanyConfiguration, CompanyRefRule, FailureReasonType, TokenSet
from ..oauth import OAuthBearer, OAuthTokens, TokenEndpoint
from ..process import PROCESS
from ..settings import DEFAULT_SECRETS_PREFIX, ConnectorSettings, get_settings

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class ConnectionProfile:
    """What authenticating told us: which company our credentials reach, and with what rights.

    ``company_ref`` is the configured company when the credentials reach it, else the one
    they do reach (or None when the system does not tell); ``reachable`` lists every
    company the credentials reach, by reference, with its name.
    """

    company_ref: str | None
    company_name: str | None
    permissions: frozenset[str]
    facts: dict[str, Any] = field(default_factory=dict)
    reachable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Support:
    """Whether a capability is available; ``detail`` says why not (actionable). ``notice``:
    something an operator should know even though it is available (shown in readiness)."""

    supported: bool
    detail: str = ""
    notice: str | None = None


def utc_today() -> date:
    """ "Today" for a connector's date rules (financial years, closed books): the UTC date."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class LedgerEntry:
    """A mapped thing in the accounting system (account, tax code, journal), normalised."""

    ref: str
    name: str | None
    usable: bool
    problem: str = ""


class AccountingConnector(Protocol):
    """One configured connection to one company in one accounting system.

    Every method is read-only. Permanent answers raise ``AccountingSystemError``;
    transient ones raise ``AccountingSystemUnavailable`` (the message is retried).
    Implementations cache lookups for their own lifetime (one job).
    """

    display_name: str
    where_to_fix: str
    # What to do about missing permissions, after the list; None: "Reconnect <system> in the
    # integration settings with the needed access". A system whose missing permissions each
    # say how to fix them (licences to buy, users to change) says only "Then export again."
    permission_advice: str | None
    # The OAuth grant behind the connection (None: static credentials); the readiness
    # sweep reads when it would lapse and keeps it alive.
    grant: OAuthBearer | None

    def authenticate(self) -> ConnectionProfile:
        """Prove reachability and credentials with the cheapest authenticated call."""
        ...

    def missing_permissions(self, profile: ConnectionProfile, needs: set[Capability]) -> list[str]:
        """Human-readable permissions that are needed but not granted."""
        ...

    def supports(self, profile: ConnectionProfile, capability: Capability) -> Support: ...

    def accounts(self, refs: Iterable[str]) -> dict[str, LedgerEntry | None]:
        """The mapped accounts, looked up in one batch; None where unknown."""
        ...

    def tax_codes(self, codes: Iterable[str]) -> dict[str, LedgerEntry | None]: ...


class CredentialLoader(Protocol):
    def load(self, secret_id: str, model: type[ModelT], *, refresh: bool = False) -> ModelT: ...


@dataclass(frozen=True)
class ConnectorEnvironment:
    """What a connector is built from: its own settings, its pooled HTTP clients by name,
    the credentials store and the OAuth token manager (container-wide, shared)."""

    settings: ConnectorSettings
    http: Mapping[str, httpx.Client]
    credentials: CredentialLoader
    tokens: OAuthTokens | None = None


JOURNAL_MAPPINGS: tuple[tuple[str, str], ...] = (
    ("journal", "journal"),
    ("expense_account", "default expense account (expenseAccount)"),
    ("contra_account", "contra account for card spend (contraAccount)"),
)


@dataclass(frozen=True)
class ConnectorSpec:
    """How to build a connector: its id in configuration, its settings, its HTTP clients
    and factory.

    ``settings`` is the connector's own ``ConnectorSettings`` class (its environment
    prefix); ``base_urls`` maps client names to base URLs read from those settings;
    ``create`` raises ``CredentialsMissing`` / ``CredentialsUnreadable`` when the secret is
    unusable.
    """

    system_id: str
    display_name: str
    settings: type[ConnectorSettings]
    base_urls: Callable[[ConnectorSettings], dict[str, str]]
    create: Callable[[ConnectorEnvironment, CompanyConfiguration, bool], AccountingConnector]
    required_mappings: tuple[tuple[str, str], ...] = JOURNAL_MAPPINGS
    # Re-read the secret and re-run once when the credentials are rejected (static
    # credentials may have been rotated). OAuth connectors re-read under their lease instead.
    reread_on_rejection: bool = True
    vendor_mappings: tuple[tuple[str, str], ...] = (
        ("vendor_payables_account", "vendor payables account (vendorPayablesAccount)"),
    )
    # Configuration fields the system wants as numbers (see CompanyConfiguration.reference_problems).
    numeric_fields: frozenset[str] = frozenset()
    # The shape of accountingCompanyRef, when the system has one (checked by `config validate`
    # and `config put`, and by the connector before it calls the system).
    company_ref: CompanyRefRule | None = None
    # What the company's credentials secret holds (`company add` checks a file against it).
    # An OAuth token set carries the export-preflight:secret-kind tag (docs/contracts.md, "Secrets").
    credentials: type[BaseModel] = TokenSet
    # OAuth: days a refresh token may go unused before it lapses (None: it does not).
    refresh_token_idle_days: int | None = None
    # The stack Outputs of base URLs not named by the rule of ``stack_outputs()``, by field.
    output_names: Mapping[str, str] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        """Each setting's environment variable, by field: declared once, as the settings'
        ``env_prefix`` and field name; template.yaml and the simulators are checked against it."""
        prefix = str(self.settings.model_config.get("env_prefix", ""))
        return {name: f"{prefix}{name}".upper() for name in self.settings.model_fields}

    def stack_outputs(self) -> dict[str, str]:
        """The stack Output (template.yaml's ``Outputs``) that carries each base-URL setting, by
        field: the display name's letters and digits, capitalised, then the field in PascalCase
        (Xero's ``identity_base_url``: ``XeroIdentityBaseUrl``), unless ``output_names`` names it. The
        operator CLI reads a deployed stack's settings from them (``stack.py``)."""
        name = re.sub(r"\W", "", self.display_name)
        stem = name[:1].upper() + name[1:]
        urls = [field_name for field_name in self.settings.model_fields if field_name.endswith("_base_url")]
        return {
            url: self.output_names.get(url) or stem + "".join(word.capitalize() for word in url.split("_"))
            for url in urls
        }

    def prefixed_secrets(self) -> dict[str, str]:
        """Secret-id settings the template writes as ``${SecretsPrefix}<suffix>``, by field: the
        suffix is the default's part after ``DEFAULT_SECRETS_PREFIX``
        (``export-preflight/xero/client``: ``xero/client``)."""
        defaults = {name: info.default for name, info in self.settings.model_fields.items()}
        return {
            name: default.removeprefix(DEFAULT_SECRETS_PREFIX)
            for name, default in defaults.items()
            if name.endswith("_secret_id") and isinstance(default, str) and default.startswith(DEFAULT_SECRETS_PREFIX)
        }

    def environment(self, **values: str) -> dict[str, str]:
        """Settings (by field name) as the environment variables the connector reads."""
        variables = self.variables()
        unknown = set(values) - set(variables)
        if unknown:
            raise ValueError(f"{self.system_id} has no settings {sorted(unknown)} (it has {sorted(variables)})")
        return {variables[name]: value for name, value in values.items()}


ACCOUNTING_ERRORS = RemoteErrors(
    error=AccountingSystemUnavailable,
    timeout=FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT,
    unreachable=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
    rate_limit=FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
    answer_bytes=ACCOUNTING_ANSWER_BYTES,
)


def oauth_bearer(
    env: ConnectorEnvironment,
    config: CompanyConfiguration,
    refresh: bool,
    *,
    auth_client: str,
    auth_path: str,
    client_secret_id: str,
    system: str,
    refusal: Callable[[httpx.Response], bool] = lambda response: False,
    endpoint: type[TokenEndpoint] = TokenEndpoint,
) -> OAuthBearer:
    """The bearer auth of an OAuth connector: the company's token set (checked readable now,
    raising ``CredentialsMissing`` / ``CredentialsUnreadable``), our client credentials under
    ``client_secret_id``, and the token endpoint at ``auth_path`` of the ``auth_client`` HTTP client."""
    assert config.accounting_credentials_secret_id is not None and env.tokens is not None
    env.credentials.load(config.accounting_credentials_secret_id, TokenSet, refresh=refresh)  # usable at all?
    token_endpoint = endpoint(
        env.http[auth_client],
        auth_path,
        lambda: env.credentials.load(client_secret_id, ClientCredentials),
        system,
        errors=ACCOUNTING_ERRORS,
    )
    return OAuthBearer(env.tokens, config.accounting_credentials_secret_id, token_endpoint, refusal=refusal)


def request_or_raise(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    system: str,
    what: str,
    inspect: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """``send`` for accounting systems: transient errors are ``AccountingSystemUnavailable``."""
    return send(http, method, path, remote=system, what=what, errors=ACCOUNTING_ERRORS, inspect=inspect, **kwargs)


# A check's independent reads (a connector's permission probes) run side by side in threads
# of their own: a batch of ten jobs probes at most a few dozen at once. The pool's tasks
# never wait on it, so a full pool only queues.
READ_WORKERS = 32


def read_pool() -> Executor | None:
    """The pool of connectors' side-by-side reads (``concurrency.side_by_side``); None with
    ``CHECK_CONCURRENCY=false``, which makes every read one at a time."""
    if not get_settings().check_concurrency:
        return None
    return PROCESS.once(
        "connectors/read-pool", lambda: ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="read")
    )


# Answers no read of ours should get, that say nothing is wrong with the request itself: a
# redirect (never followed: it would carry our credentials to whatever host it names), a
# resource that is not there (404: every path we read exists for every company), a conflict
# or a lock (409, 423), a timeout or "too early" (408, 425). The system's fault, retried.
SYSTEM_FAULT_STATUSES = frozenset({404, 408, 409, 423, 425})


def unexpected_answer(
    system: str, response: httpx.Response, what: str
) -> AccountingSystemError | AccountingSystemUnavailable:
    """An answer the connector did not expect. A 3xx or one of ``SYSTEM_FAULT_STATUSES``
    is the system's fault (``AccountingSystemUnavailable``, retried; on the last attempt
    ``accounting_system_unreachable``); any other (e.g. 400) says our request is wrong, a
    job failure (``validation_failure``)."""
    status = response.status_code
    if 300 <= status < 400 or status in SYSTEM_FAULT_STATUSES:
        kind = "a redirect, which we do not follow" if status < 400 else "an unexpected answer"
        return AccountingSystemUnavailable(
            f"{system} answered {status} ({kind}) while {what}",
            reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
        )
    return AccountingSystemError(
        f"{system} answered {status} while {what}; contact support if this persists",
        reason_type=FailureReasonType.VALIDATION_FAILURE,
    )


# ---------------------------------------------------------------- reading answers

JsonObject = dict[str, Any]
"""A JSON object as ``json`` decodes it."""


def not_the_data_expected(system: str, what: str) -> AccountingSystemUnavailable:
    """The remote system answered something we cannot read: its fault, retried like an outage.

    The message names neither the body (it may carry anything) nor a Python exception.
    """
    return AccountingSystemUnavailable(
        f"{system} answered with something that is not the data we expected while {what}",
        reason_type=FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
    )


def json_body(response: httpx.Response, *, system: str, what: str) -> object:
    """The decoded JSON of ``response``: the one place connectors decode a body.

    Not JSON, not UTF-8, an integer too long to convert or nesting too deep to decode all
    raise ``not_the_data_expected``.
    """
    try:
        return cast(object, json.loads(response.content))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise not_the_data_expected(system, what) from None


@dataclass(frozen=True)
class BodyReader:
    """Reads the bodies of one kind of answer (``what``) from one system, checking each shape
    it relies on: whatever is not of the expected shape raises ``not_the_data_expected``.

    Absent and ``null`` members mean "not given" (``None``, ``{}``, ``[]`` or the default);
    present members of the wrong type make the answer malformed.
    """

    system: str
    what: str

    def malformed(self) -> AccountingSystemUnavailable:
        return not_the_data_expected(self.system, self.what)

    def parse_object(self, response: httpx.Response) -> JsonObject:
        """The body, which must be a JSON object."""
        body = json_body(response, system=self.system, what=self.what)
        if not isinstance(body, dict):
            raise self.malformed()
        return body

    def parse_array(self, response: httpx.Response) -> list[JsonObject]:
        """The body, which must be a JSON array of objects."""
        return self._objects(json_body(response, system=self.system, what=self.what))

    def objects(self, parent: Mapping[str, Any], key: str, *, required: bool = True) -> list[JsonObject]:
        """``parent[key]``, an array of objects; when not ``required``, absent or null is ``[]``."""
        value = parent.get(key)
        if value is None and not required:
            return []
        return self._objects(value)

    def member(self, parent: Mapping[str, Any], key: str) -> JsonObject:
        """``parent[key]``, an object (absent or null: ``{}``)."""
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.malformed()
        return value

    def text(self, parent: Mapping[str, Any], key: str, *, numbers: bool = False) -> str | None:
        """``parent[key]``, a string (absent or null: ``None``); with ``numbers``, an integer
        is taken as its decimal text (identifiers such as e-conomic's account numbers)."""
        value = parent.get(key)
        if value is None or isinstance(value, str):
            return value
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self.malformed()

    def flag(self, parent: Mapping[str, Any], key: str, *, default: bool) -> bool:
        """``parent[key]``, a boolean (absent or null: ``default``)."""
        value = parent.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.malformed()
        return value

    def _objects(self, value: object) -> list[JsonObject]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.malformed()
        return cast(list[JsonObject], value)
