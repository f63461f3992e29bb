"""``make deploy``'s check before it builds anything (docs/deploying.md, "Deploying").

    python -m deploy.check ENV [--config samconfig.toml]

Refuses (exit 1, one clear line per problem) when:

- samconfig.toml has no ``[ENV.deploy.parameters]`` section;
- no Region: neither that section's ``region`` nor ``AWS_REGION`` / ``AWS_DEFAULT_REGION``
  nor the profile's;
- no working AWS credentials (``sts get-caller-identity`` through boto3 fails);
- ``AlarmEmail`` is empty or still the placeholder in that section's
  ``parameter_overrides``: without it nobody hears an alarm.

On success it prints the account, Region and stack it will deploy to. ``python -m
deploy.check --next-steps ENV`` prints what to do after the first deploy.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import IO, Any

PLACEHOLDER = "SET-ME@example.com"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class CheckFailed(Exception):
    pass


def section(config: dict[str, Any], env: str) -> dict[str, Any]:
    found = config.get(env, {}).get("deploy", {}).get("parameters")
    if not isinstance(found, dict):
        raise CheckFailed(
            f"samconfig.toml has no [{env}.deploy.parameters]: use ENV=staging or ENV=prod, "
            f"or create it with: make deploy-guided ENV={env}"
        )
    return found


def overrides(parameters: dict[str, Any]) -> dict[str, str]:
    """``parameter_overrides`` (a string ``Key=Value Key2="a b"``, or a list of them) as a dict."""
    raw = parameters.get("parameter_overrides", "")
    items = raw if isinstance(raw, list) else shlex.split(str(raw))
    return dict(item.split("=", 1) for item in items if "=" in item)


def alarm_email_problem(parameters: dict[str, Any], env: str) -> str | None:
    email = overrides(parameters).get("AlarmEmail", "").strip()
    where = f'parameter_overrides of [{env}.deploy.parameters] in samconfig.toml (AlarmEmail="ops@yourcompany.com")'
    if not email:
        return f"AlarmEmail is not set for {env}: set it in the {where}; without it nobody is told when an alarm fires"
    if email == PLACEHOLDER:
        return f"AlarmEmail for {env} is still the placeholder {PLACEHOLDER}: set a real address in the {where}"
    if not _EMAIL.fullmatch(email):
        return f"AlarmEmail for {env} ({email!r}) is not an e-mail address: correct it in the {where}"
    return None


def region_of(parameters: dict[str, Any], session: Any) -> str | None:
    return str(parameters.get("region") or session.region_name or "") or None


def identity(session: Any, region: str) -> dict[str, Any]:
    """The caller's identity, or ``CheckFailed`` saying how to get credentials."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    how = (
        "set AWS_PROFILE (after aws sso login --profile NAME) or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY for the account of this environment"
    )
    try:
        found: dict[str, Any] = session.client("sts", region_name=region).get_caller_identity()
    except NoCredentialsError:
        raise CheckFailed(f"no AWS credentials: {how}") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise CheckFailed(f"the AWS credentials do not work ({code}): {how}") from None
    except BotoCoreError as error:
        raise CheckFailed(f"cannot reach AWS STS to check the credentials ({type(error).__name__}): {how}") from None
    return found


def check(env: str, config_path: Path, out: IO[str], err: IO[str]) -> int:
    import boto3
    from botocore.exceptions import ProfileNotFound

    problems: list[str] = []
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8"))
        parameters = section(config, env)
    except (OSError, tomllib.TOMLDecodeError) as error:
        print(f"ERROR: cannot read {config_path}: {error}", file=err)
        return 1
    except CheckFailed as error:
        print(f"ERROR: {error}", file=err)
        return 1
    email = alarm_email_problem(parameters, env)
    if email:
        problems.append(email)
    try:
        session = boto3.session.Session()
    except ProfileNotFound as error:
        problems.append(f"{error}: set AWS_PROFILE to a profile in ~/.aws/config")
        session = None
    region = region_of(parameters, session) if session is not None else None
    if session is not None and not region:
        problems.append(f"no AWS Region: set region in [{env}.deploy.parameters] of samconfig.toml, or AWS_REGION")
    account = None
    if session is not None and region:
        try:
            account = identity(session, region)
        except CheckFailed as error:
            problems.append(str(error))
    if problems:
        for problem in problems:
            print(f"ERROR: {problem}", file=err)
        print(f"Nothing was built or deployed for {env}.", file=err)
        return 1
    assert account is not None
    stack = parameters.get("stack_name", "export-preflight")
    print(
        f"Deploying {env}: stack {stack} to account {account.get('Account')} in {region} as {account.get('Arn')}",
        file=out,
    )
    return 0


def next_steps(env: str, config_path: Path, out: IO[str]) -> int:
    config = tomllib.loads(config_path.read_text(encoding="utf-8"))
    parameters = config.get(env, {}).get("deploy", {}).get("parameters", {})
    stack = parameters.get("stack_name", "export-preflight")
    prefix = overrides(parameters).get("SecretsPrefix", "export-preflight/")
    print(
        f"""
Next steps for {stack} (docs/deploying.md, "Deploying"):
  1. Our OAuth client secrets, once per system you use ({{"clientId", "clientSecret"}}; no tag):
       aws secretsmanager create-secret --name {prefix}xero/client --secret-string file://xero-client.json
       (likewise {prefix}fortnox/client, {prefix}quickbooks/client, {prefix}pleo/oauth-client)
  2. Confirm the AlarmEmail subscription (a mail from AWS Notifications).
  3. Each company: credentials secrets named {prefix}pleo/<companyId> and {prefix}<system>/<companyId>;
     OAuth token sets tagged export-preflight:secret-kind=oauth-token-set, or the function cannot
     store rotated tokens. company add does both, its configuration item, and checks it:
       export-preflight --stack {stack} company add --company-id ID --system SYSTEM \\
         --config item.json --credentials tokens.json --pleo-credentials pleo.json
  4. export-preflight --stack {stack} readiness""",
        file=out,
    )
    return 0


def main(argv: list[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.check", description=__doc__.splitlines()[0])
    parser.add_argument("env")
    parser.add_argument("--config", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--next-steps", action="store_true", help="print what to do after a deploy")
    args = parser.parse_args(argv)
    if args.next_steps:
        return next_steps(args.env, args.config, out or sys.stdout)
    return check(args.env, args.config, out or sys.stdout, err or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
