"""One sandbox (moto + simulators on loopback) per test session, reset for each test."""

from __future__ import annotations

import json

import pytest

from sandbox.world import leaked
from tests.contract.openapi import validate_simulated_pleo_request
from tests.faults.aws_faults import AWS_FAULTS


@pytest.fixture
def sandbox(session_sandbox, capsys):
    session_sandbox.reset(settings={})
    yield session_sandbox
    # Whatever the test did: no request we sent to Pleo breaks the contract,
    # and no seeded credential appears in a log line or a request body.
    for request in session_sandbox.pleo.requests:
        validate_simulated_pleo_request(request)
    out, err = capsys.readouterr()
    bodies = [
        r.body.decode(errors="replace")
        for s in session_sandbox.servers
        for r in s.requests
        if r.path not in s.credential_paths  # e.g. the refresh token in a token request
    ]
    assert leaked(session_sandbox.secret_values(), [out, err, *bodies]) == []


@pytest.fixture
def aws_faults(monkeypatch):
    """Faults at the AWS SDK boundary (moto cannot throttle, refuse or time out), cleared after."""
    AWS_FAULTS.clear()
    AWS_FAULTS.install(monkeypatch)
    yield AWS_FAULTS
    AWS_FAULTS.clear()


def stored_tokens(sandbox, company) -> dict:
    """The company's accounting token set as Secrets Manager holds it."""
    secret = company.configuration["accountingCredentialsSecretId"]
    return json.loads(sandbox.aws.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"])


def ready_jobs(sandbox) -> list[dict]:
    return [json.loads(m["body"]) for m in sandbox.queue_bodies(sandbox.resources.ready_jobs_queue_url)]


def dead_letters(sandbox) -> list[dict]:
    return sandbox.queue_bodies(sandbox.resources.claimed_jobs_dlq_url)


def emf_metrics(text: str) -> list[dict]:
    """The EMF documents printed by Powertools Metrics."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found
