"""The operator CLI's target: a deployed stack, found by name (docs/operations.md, "Operator CLI").

``--stack NAME`` (or ``EXPORT_PREFLIGHT_STACK``) reads the stack's CloudFormation Outputs
(``DescribeStacks``) and turns them into the functions' settings (table names, queue URLs,
``SecretsPrefix``, the token journal's KMS key, base URLs), so the CLI reads and writes
exactly what the deployed functions do. Whatever keeps the CLI from reaching the stack (no
Region, no credentials, no stack named, a stack or table that does not exist, access
denied) is a ``SetupError``: exit 2, with a message that names the fix.

Only the CLI imports this module; boto3 is imported when a stack is looked up.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import IntegrationMisconfigured, PreflightError

STACK_ENV = "EXPORT_PREFLIGHT_STACK"
HOW_TO_NAME_IT = f"name the stack with --stack NAME or {STACK_ENV}=NAME (docs/operations.md, 'Operator CLI')"

# The stack's Outputs (template.yaml) -> the functions' settings (docs/contracts.md, "Settings"): the
# stack-wide ones; each connector's come from its declaration (``connector_outputs``).
OUTPUT_SETTINGS: dict[str, str] = {
    "CompanyConfigTableName": "COMPANY_CONFIG_TABLE",
    "CredentialLockTableName": "CREDENTIAL_LOCK_TABLE",
    "JobDecisionsTableName": "DECISIONS_TABLE",
    "ReadinessTableName": "READINESS_TABLE",
    "ClaimedJobsQueueUrl": "CLAIMED_JOBS_QUEUE_URL",
    "ClaimedJobsDlqUrl": "CLAIMED_JOBS_DLQ_URL",
    "ReadyJobsQueueUrl": "READY_JOBS_QUEUE_URL",
    "ReadinessQueueUrl": "READINESS_QUEUE_URL",
    "ReadinessDlqUrl": "READINESS_DLQ_URL",
    "SecretsPrefix": "SECRETS_PREFIX",
    "TokenJournalKeyArn": "JOURNAL_KMS_KEY_ID",
    "PleoApiBaseUrl": "PLEO_API_BASE_URL",
    "PleoAuthBaseUrl": "PLEO_AUTH_BASE_URL",
}
# Secret ids the template derives from SecretsPrefix (its function environment): the
# stack-wide ones; each connector's come from its declaration (``connector_secrets``).
PREFIXED_SECRETS: dict[str, str] = {
    "PLEO_OAUTH_CLIENT_SECRET_ID": "pleo/oauth-client",
}
# Without one of these (and without a stack) the CLI would fall back to table names no
# deployed stack has: refused.
NEEDED = "COMPANY_CONFIG_TABLE"

_MISSING_CODES = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFoundException",
}
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "AuthorizationError", "UnauthorizedOperation"}
_BAD_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
}
_EXPIRED_CODES = {"ExpiredTokenException", "ExpiredToken", "RequestExpired"}


class SetupError(PreflightError):
    """The CLI cannot reach the stack as set up: exit 2. The message names the fix."""


def connector_outputs() -> dict[str, str]:
    """Each registered connector's base-URL Outputs -> its settings (``ConnectorSpec.stack_outputs``)."""
    from .connectors import CONNECTORS

    return {
        output: spec.variables()[name] for spec in CONNECTORS.values() for name, output in spec.stack_outputs().items()
    }


def connector_secrets() -> dict[str, str]:
    """Each registered connector's secret-id settings -> their suffix after SecretsPrefix
    (``ConnectorSpec.prefixed_secrets``)."""
    from .connectors import CONNECTORS

    return {
        spec.variables()[name]: suffix
        for spec in CONNECTORS.values()
        for name, suffix in spec.prefixed_secrets().items()
    }


def settings_of(outputs: Mapping[str, str]) -> dict[str, str]:
    """The environment variables a stack's Outputs stand for."""
    names = {**OUTPUT_SETTINGS, **connector_outputs()}
    settings = {names[key]: value for key, value in outputs.items() if key in names}
    prefix = outputs.get("SecretsPrefix")
    if prefix:
        secrets = {**PREFIXED_SECRETS, **connector_secrets()}
        settings.update({name: prefix + suffix for name, suffix in secrets.items()})
    return settings


def region_settings(stack: str | None = None) -> dict[str, str]:
    """boto3 reads ``AWS_DEFAULT_REGION`` (not ``AWS_REGION``, which docs/operations.md and Lambda
    use): the Region from ``AWS_REGION``, or from a stack named by its ARN, when
    ``AWS_DEFAULT_REGION`` is not set."""
    if os.environ.get("AWS_DEFAULT_REGION"):
        return {}
    region = os.environ.get("AWS_REGION") or _arn_region(stack)
    return {"AWS_DEFAULT_REGION": region} if region else {}


def _arn_region(stack: str | None) -> str | None:
    parts = (stack or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[2] == "cloudformation" and parts[3] else None


def session() -> Any:
    """A boto3 session with a Region and credentials; ``SetupError`` naming the fix otherwise."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        found = boto3.session.Session()
        if not found.region_name:
            raise SetupError(
                "no AWS Region: set AWS_REGION (e.g. AWS_REGION=eu-west-1), or a region in your AWS_PROFILE, "
                "or name the stack by its ARN"
            )
        if found.get_credentials() is None:
            raise SetupError(
                "no AWS credentials: set AWS_PROFILE to a profile of the stack's account "
                "(and `aws sso login --profile ...` if it uses SSO), or export AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            )
    except BotoCoreError as error:  # e.g. a profile that does not exist, an SSO session that expired
        raise SetupError(f"the AWS credentials cannot be loaded ({error}): fix AWS_PROFILE or log in again") from None
    return found


def ensure_ready() -> None:
    """Before the CLI's first AWS call: a Region, credentials and a target (a stack, or settings)."""
    session()
    if not os.environ.get(NEEDED):
        raise SetupError(
            f"which stack? {HOW_TO_NAME_IT}; or set its settings ({NEEDED}, ...: docs/contracts.md, 'Settings')"
        )


def outputs_of(stack: str) -> dict[str, str]:
    """The stack's Outputs (OutputKey -> OutputValue)."""
    from botocore.exceptions import BotoCoreError, ClientError

    region = session().region_name
    from .aws import CLIENTS

    try:
        answer = CLIENTS.client("cloudformation").describe_stacks(StackName=stack)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        text = str(error.response.get("Error", {}).get("Message", ""))
        if code == "ValidationError" and "does not exist" in text:
            raise SetupError(
                f"no stack {stack!r} in Region {region}: check the name (samconfig.toml's stack_name, e.g. "
                "export-preflight-staging), AWS_REGION and AWS_PROFILE"
            ) from None
        raise SetupError(
            setup_problem(error) or f"cannot read stack {stack!r} ({code}): check AWS_PROFILE and AWS_REGION"
        ) from None
    except BotoCoreError as error:
        raise SetupError(
            setup_problem(error) or f"cannot reach CloudFormation in {region} ({type(error).__name__}): try again"
        ) from None
    stacks = answer.get("Stacks") or []
    if not stacks:
        raise SetupError(f"no stack {stack!r} in Region {region}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    if "CompanyConfigTableName" not in outputs:
        raise SetupError(
            f"stack {stack!r} has no CompanyConfigTableName output: is it an export-preflight stack "
            f"({stacks[0].get('StackStatus', '?')})? Deploy it with `make deploy` (docs/deploying.md, 'Deploying')"
        )
    return outputs


@contextlib.contextmanager
def applied(settings: Mapping[str, str]) -> Iterator[None]:
    """These environment variables, for the CLI's one command (restored afterwards: the
    tests run the CLI in-process); the settings and the runtime are read anew."""
    from . import process

    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    process.reset()
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        process.reset()


def setup_problem(error: BaseException) -> str | None:
    """What in our set-up ``error`` (or an error it was raised from) shows, and the fix; None
    when it is not a set-up problem (transient trouble, a bug)."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError

    for found in _chain(error):
        if isinstance(found, SetupError):
            return str(found)
        if isinstance(found, NoRegionError):
            return "no AWS Region: set AWS_REGION (e.g. AWS_REGION=eu-west-1) or a region in your AWS_PROFILE"
        if isinstance(found, NoCredentialsError | PartialCredentialsError):
            return "no usable AWS credentials: set AWS_PROFILE (and log in), or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        if isinstance(found, IntegrationMisconfigured) and "does not exist" in str(found):
            return f"{found}: {HOW_TO_NAME_IT}, with AWS_REGION and AWS_PROFILE of its account"
        if isinstance(found, ClientError):
            code = str(found.response.get("Error", {}).get("Code", ""))
            what = f"{error} " if error is not found else ""
            if code in _MISSING_CODES:
                return (
                    f"{what}({code}): a table or queue the CLI uses does not exist in this account and Region; "
                    f"{HOW_TO_NAME_IT}, with AWS_REGION and AWS_PROFILE of its account"
                )
            if code in _DENIED_CODES:
                return (
                    f"{what}({code}): AWS refused access; use a profile (AWS_PROFILE) or role with the operator's "
                    "permissions on the stack's tables, queues and secrets (docs/operations.md, 'Operator CLI')"
                )
            if code in _BAD_CREDENTIAL_CODES:
                return f"{what}({code}): AWS does not accept these credentials; check AWS_PROFILE or the access key"
            if code in _EXPIRED_CODES:
                return f"{what}({code}): the AWS credentials have expired; log in again (aws sso login --profile ...)"
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it was raised from or during (``raise ... from None`` keeps
    ``__context__``)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        found = pending.pop(0)
        if found is None or id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        pending += [found.__cause__, found.__context__]
