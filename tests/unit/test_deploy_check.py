"""`make deploy`'s check before it builds (deploy/check.py): credentials, Region and a real
AlarmEmail for the environment, each refusal one clear line; moto's STS for credentials."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from moto import mock_aws

from deploy import check

ROOT = Path(__file__).resolve().parents[2]


def samconfig(tmp_path: Path, overrides: str, *, region: str | None = "eu-west-1") -> Path:
    path = tmp_path / "samconfig.toml"
    lines = ["version = 0.1", "[staging.deploy.parameters]", 'stack_name = "export-preflight-staging"']
    if region:
        lines.append(f'region = "{region}"')
    lines.append(f"parameter_overrides = {json.dumps(overrides)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def credentials(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = check.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@mock_aws
def test_a_complete_environment_passes_and_names_account_region_and_stack(tmp_path, credentials):
    path = samconfig(tmp_path, "Stage=staging AlarmEmail=ops@example.org")
    code, out, err = run("staging", "--config", str(path))
    assert code == 0 and err == ""
    assert "export-preflight-staging" in out and "eu-west-1" in out and "123456789012" in out


def test_the_committed_placeholders_refuse_to_deploy(credentials):
    for env in ("staging", "prod"):
        with mock_aws():
            code, _, err = run(env, "--config", str(ROOT / "samconfig.toml"))
        assert code == 1 and f"AlarmEmail for {env} is still the placeholder" in err
        assert "Nothing was built or deployed" in err


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ("Stage=staging", "AlarmEmail is not set for staging"),
        ('Stage=staging AlarmEmail=""', "AlarmEmail is not set for staging"),
        ("Stage=staging AlarmEmail=ops", "is not an e-mail address"),
    ],
)
@mock_aws
def test_an_empty_or_invalid_alarm_email_is_refused(tmp_path, credentials, overrides, says):
    code, _, err = run("staging", "--config", str(samconfig(tmp_path, overrides)))
    assert code == 1 and says in err


@mock_aws
def test_no_region_is_refused(tmp_path, credentials):
    code, _, err = run("staging", "--config", str(samconfig(tmp_path, "AlarmEmail=ops@example.org", region=None)))
    assert code == 1 and "no AWS Region" in err


def test_no_credentials_is_refused_before_anything_is_built(tmp_path, credentials, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    code, out, err = run("staging", "--config", str(samconfig(tmp_path, "AlarmEmail=ops@example.org")))
    assert code == 1 and out == ""
    assert "no AWS credentials" in err and "AWS_PROFILE" in err


def test_credentials_sts_refuses_are_named(tmp_path, credentials, monkeypatch):
    from botocore.exceptions import ClientError

    class Refusing:
        region_name = "eu-west-1"

        def client(self, *args, **kwargs):
            class Sts:
                def get_caller_identity(self):
                    raise ClientError({"Error": {"Code": "ExpiredToken"}}, "GetCallerIdentity")

            return Sts()

    monkeypatch.setattr("boto3.session.Session", Refusing)
    code, _, err = run("staging", "--config", str(samconfig(tmp_path, "AlarmEmail=ops@example.org")))
    assert code == 1 and "the AWS credentials do not work (ExpiredToken)" in err


def test_an_unknown_environment_is_refused(tmp_path, credentials):
    code, _, err = run("qa", "--config", str(samconfig(tmp_path, "AlarmEmail=ops@example.org")))
    assert code == 1 and "no [qa.deploy.parameters]" in err


def test_next_steps_name_the_client_secrets_the_tag_and_company_add():
    code, out, _ = run("prod", "--next-steps", "--config", str(ROOT / "samconfig.toml"))
    assert code == 0
    assert "export-preflight/xero/client" in out and "export-preflight:secret-kind=oauth-token-set" in out
    assert "export-preflight --stack export-preflight-prod company add" in out


def test_make_deploy_checks_before_it_builds():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\ndeploy: ") :].split("\n\n")[0]
    assert recipe.index("deploy-check") < recipe.index("validate") < recipe.index("sam deploy")
