"""``export-preflight company add``: from a deployed stack to a company that is ready to
export (docs/operations.md, "Operator CLI" and "Deploying").

Creates the company's credentials secrets under the names the function accepts
(``<SecretsPrefix>pleo/<companyId>``, ``<SecretsPrefix><accountingSystem>/<companyId>``),
OAuth token sets with the tag the functions' IAM policy requires before they may store a
rotated set (``export-preflight:secret-kind`` = ``oauth-token-set``); the secret material
comes from files or stdin, never from the command line (argv is visible to every user of
the machine and kept in shell history). Then it stores the configuration item through the
same validation and versioned put as ``config put``, and runs the readiness check.

Nothing is written until everything has been checked: the configuration document, the
credential files against what each secret must hold, and that no existing secret or
configuration would be overwritten unasked.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, TypeAdapter, ValidationError

from .configuration import DocumentError, ItemReport, parse_document, read_source, validate_item
from .errors import AwsUnavailable, PreflightError
from .models import PleoCredentials, Readiness, TokenSet

TOKEN_SET_TAG = {"Key": "export-preflight:secret-kind", "Value": "oauth-token-set"}
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_SETUP_CODES = {
    "AccessDeniedException",
    "ValidationException",
    "InvalidParameterException",
    "InvalidRequestException",
    "ResourceExistsException",
    "EncryptionFailure",
    "LimitExceededException",
}
_NAMES = {
    "describe_secret": "DescribeSecret",
    "create_secret": "CreateSecret",
    "put_secret_value": "PutSecretValue",
    "tag_resource": "TagResource",
}


@dataclass(frozen=True)
class SecretPlan:
    what: str  # "Pleo credentials", "Xero credentials"
    name: str
    value: str | None  # None: no file given, the secret must exist already
    token_set: bool


def add_company(
    args: argparse.Namespace,
    out: IO[str],
    err: IO[str],
    *,
    runtime: Any,
    secrets_prefix: str,
    report_findings: Callable[[ItemReport, IO[str]], None],
    show_readiness: Callable[[Readiness, IO[str]], None],
    status_exit: dict[str, int],
) -> int:
    from .connectors import CONNECTORS

    company_id, system = str(args.company_id), args.system
    spec = CONNECTORS.get(system)
    if spec is None:
        print(f"error: --system: {system!r} is not supported (one of: {', '.join(sorted(CONNECTORS))})", file=out)
        return EXIT_USAGE
    if args.config == "-" and "-" in (args.credentials, args.pleo_credentials):
        print("error: only one of the files may be - (stdin)", file=out)
        return EXIT_USAGE

    # 1. The configuration item: the names fixed by the rule are filled in when absent.
    try:
        document = parse_document(read_source(args.config))
    except DocumentError as error:
        print(f"error: {args.config}: {error}", file=out)
        return EXIT_USAGE
    pleo_secret = f"{secrets_prefix}pleo/{company_id}"
    accounting_secret = f"{secrets_prefix}{system}/{company_id}"
    document.setdefault("companyId", company_id)
    body = document.get("configuration")
    if isinstance(body, dict):
        body.setdefault("accountingSystem", system)
        body.setdefault("pleoCredentialsSecretId", pleo_secret)
        body.setdefault("accountingCredentialsSecretId", accounting_secret)
    report = validate_item(document, secrets_prefix=secrets_prefix)
    mismatches = []
    if document.get("companyId") != company_id:
        mismatches.append(f"companyId: {document.get('companyId')!r} is not --company-id {company_id}")
    if isinstance(body, dict) and body.get("accountingSystem") != system:
        mismatches.append(f"configuration.accountingSystem: {body.get('accountingSystem')!r} is not --system {system}")
    for line in mismatches:
        print(f"error: {line}", file=out)
    report_findings(report, out)
    if mismatches or not report.accepted or report.configuration is None:
        print("nothing was written", file=out)
        return EXIT_USAGE
    configuration = report.configuration

    # 2. The credential files, checked against what each secret must hold.
    pleo_adapter: TypeAdapter[Any] = TypeAdapter(PleoCredentials)
    plans = []
    for what, name, path, model, option in (
        ("Pleo credentials", pleo_secret, args.pleo_credentials, pleo_adapter, "--pleo-credentials"),
        (f"{spec.display_name} credentials", accounting_secret, args.credentials, spec.credentials, "--credentials"),
    ):
        if path is None:
            plans.append(SecretPlan(what, name, None, token_set=model is TokenSet))
            continue
        try:
            value, token_set = _credentials(path, model)
        except DocumentError as error:  # named by its option: the path is never echoed (it may be a secret)
            print(f"error: {option}: {error}", file=out)
            print("nothing was written", file=out)
            return EXIT_USAGE
        plans.append(SecretPlan(what, name, value, token_set))

    # 3. Nothing overwritten unasked: the secrets and the configuration item.
    secrets = _secretsmanager()
    existing = {plan.name: _describe(secrets, plan.name) for plan in plans}
    refused = [
        f"refused: the secret {plan.name} ({plan.what}) exists already; pass --replace-credentials to store "
        "the file's value as its new version"
        for plan in plans
        if plan.value is not None and existing[plan.name] is not None and not args.replace_credentials
    ]
    stored, version = runtime.configurations.document_of(UUID(company_id))
    based_on = document.get("version") or 0
    if stored is not None and based_on != version:
        refused.append(
            f"refused: company {company_id} is configured already (version {version}): change its configuration "
            f"with export-preflight config get {company_id} > FILE, then config put FILE"
        )
    if refused:
        for line in refused:
            print(line, file=err)
        print("nothing was written", file=out)
        return EXIT_REFUSED

    # 4. Write: the secrets, then the item (versioned: refused if someone else put one meanwhile).
    for plan in plans:
        found = existing[plan.name]
        tag = " and the tag export-preflight:secret-kind=oauth-token-set" if plan.token_set else ""
        if plan.value is None:
            if found is None:
                print(
                    f"note: the secret {plan.name} ({plan.what}) does not exist yet: the company will not be ready "
                    f"until it is created (pass its file with --{_option(plan)})",
                    file=out,
                )
            elif plan.token_set and not _tagged(found):
                _call(secrets.tag_resource, SecretId=plan.name, Tags=[TOKEN_SET_TAG])
                print(f"tagged the secret {plan.name} ({plan.what}){tag[5:]}", file=out)
            continue
        if found is None:
            tags = [TOKEN_SET_TAG] if plan.token_set else []
            _call(secrets.create_secret, Name=plan.name, SecretString=plan.value, Tags=tags)
            print(f"created the secret {plan.name} ({plan.what}){tag}", file=out)
        else:
            _call(secrets.put_secret_value, SecretId=plan.name, SecretString=plan.value)
            if plan.token_set and not _tagged(found):
                _call(secrets.tag_resource, SecretId=plan.name, Tags=[TOKEN_SET_TAG])
            print(f"stored a new version of the secret {plan.name} ({plan.what}){tag}", file=out)
    stored_version = runtime.configurations.put(configuration, document)
    print(f"stored the configuration of company {company_id} as version {stored_version}", file=out)

    # 5. Is it ready?
    readiness = runtime.service.check_company(UUID(company_id), source="cli", record=True)
    show_readiness(readiness, out)
    return status_exit[readiness.status]


def _credentials(path: str, model: type[BaseModel] | TypeAdapter[Any]) -> tuple[str, bool]:
    """The file's secret value (compact JSON) and whether it is an OAuth token set. Errors
    name fields only, never a value."""
    document = parse_document(read_source(path, limit=64 * 1024))
    try:
        parsed = model.validate_python(document) if isinstance(model, TypeAdapter) else model.model_validate(document)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(document)" for e in error.errors()})
        raise DocumentError(
            f"not the credentials this secret holds (docs/contracts.md, 'Secrets'): check {', '.join(fields)}"
        ) from None
    return json.dumps(document, separators=(",", ":")), isinstance(parsed, TokenSet)


def _option(plan: SecretPlan) -> str:
    return "pleo-credentials" if plan.what.startswith("Pleo") else "credentials"


def _secretsmanager() -> Any:
    from .aws import CLIENTS

    return CLIENTS.client("secretsmanager")


def _describe(secrets: Any, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = _call(secrets.describe_secret, SecretId=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return found


def _tagged(described: dict[str, Any]) -> bool:
    return any(
        tag.get("Key") == TOKEN_SET_TAG["Key"] and tag.get("Value") == TOKEN_SET_TAG["Value"]
        for tag in described.get("Tags", [])
    )


def _call(operation: Callable[..., Any], **kwargs: Any) -> Any:
    """A Secrets Manager call: a refusal that retrying cannot change is the operator's set-up
    (exit 2); throttling and service trouble are transient (exit 3). Not found is the caller's."""
    try:
        return operation(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise
        if code in _SETUP_CODES:
            raise PreflightError(
                f"Secrets Manager refused {_NAMES.get(operation.__name__, 'the call')} ({code})"
            ) from None
        raise AwsUnavailable(f"Secrets Manager {operation.__name__} failed ({code})") from None
    except BotoCoreError as error:
        raise AwsUnavailable(f"Secrets Manager {operation.__name__} failed ({type(error).__name__})") from None
