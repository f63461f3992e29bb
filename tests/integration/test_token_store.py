"""A token store that refuses rotated OAuth tokens for hours (e.g. a token-set secret without
the tag our role's policy asks for), and the token journal's client-side encryption: through
the real handler, moto (Secrets Manager, DynamoDB, KMS) and the Xero simulator, which
revokes the whole grant when a spent refresh token is presented again."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from tests.integration.conftest import emf_metrics, ready_jobs, stored_tokens

pytestmark = pytest.mark.integration


def _journal(sandbox, company) -> dict | None:
    secret = company.configuration["accountingCredentialsSecretId"]
    return (
        sandbox.aws.client("dynamodb")
        .get_item(TableName=sandbox.resources.credential_lock_table, Key={"lockId": {"S": f"journal#{secret}"}})
        .get("Item")
    )


def _presented(sandbox) -> list[str]:
    return [parse_qs(r.body.decode())["refresh_token"][0] for r in sandbox.xero.requests_to("POST", r"/connect/token")]


def test_three_hours_of_refused_saves_cost_no_grant_and_the_next_job_after_the_fix_is_handed_off(
    sandbox, aws_faults, capsys
):
    company = sandbox.add_company("xero", "xero-untagged", expired_token=True)
    secret = company.configuration["accountingCredentialsSecretId"]
    first_refresh = company.secrets["refresh"]
    refused = aws_faults.inject("PutSecretValue", "access-denied", times=None, when=lambda p: p["SecretId"] == secret)

    # Hour 0: the refresh is journalled, Secrets Manager refuses it; the job goes on with it.
    first = sandbox.add_job(company)
    sandbox.enqueue_job(first)
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [first["id"]]
    assert sandbox.xero.token_calls == 1 and refused.hits == 1  # a refusal is not retried
    assert stored_tokens(sandbox, company)["refreshToken"] == first_refresh
    out, _ = capsys.readouterr()
    assert any(m.get("TokenStoreRefused") for m in emf_metrics(out))  # the alarm's metric, at once

    # Hours 1 to 3: the journalled set's access token has expired. No refresh on top of a set
    # the store has not accepted: each job fails as our set-up problem, on its last attempt.
    late = []
    for _ in range(3):
        sandbox.xero.advance(3600)
        job = sandbox.add_job(company)
        late.append(job["id"])
        sandbox.enqueue_job(job)
        sandbox.poller().drain()
        failed = sandbox.pleo.job(job["id"])
        assert (failed["status"], failed["failureReasonType"]) == ("failed", "integration_unusable")
        assert "cannot store the company's Xero credentials" in failed["failureReason"]
        assert "too little time" not in failed["failureReason"]
    assert sandbox.xero.token_calls == 1
    assert not company.grant.revoked
    assert _journal(sandbox, company) is not None  # the one rotated set waits there

    # The store heals (the tag is added): the next job saves the journalled set first, then
    # refreshes from it, and is handed off with the grant intact.
    aws_faults.clear()
    sandbox.xero.advance(3600)
    healed = sandbox.add_job(company)
    sandbox.enqueue_job(healed)
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [healed["id"]]  # (the first was drained above)
    assert not company.grant.revoked and sandbox.xero.token_calls == 2
    presented = _presented(sandbox)
    assert len(presented) == len(set(presented)) == 2 and presented[0] == first_refresh
    assert stored_tokens(sandbox, company)["refreshToken"] == company.grant.refresh_token
    assert _journal(sandbox, company) is None


def test_the_token_journal_holds_no_readable_token(sandbox, aws_faults):
    """Whoever may read the credential lock table (or restore it) reads no refresh token: the
    answer is encrypted with the journal's KMS key, bound to the secret id."""
    company = sandbox.add_company("xero", "xero-sealed", expired_token=True)
    secret = company.configuration["accountingCredentialsSecretId"]
    aws_faults.inject("PutSecretValue", "throttled", times=None, when=lambda p: p["SecretId"] == secret)
    job = sandbox.add_job(company)
    sandbox.enqueue_job(job)
    sandbox.poller().drain()
    item = _journal(sandbox, company)
    assert item is not None and "answer" not in item
    raw = json.dumps({k: str(v) for k, v in item.items()})
    assert company.grant.refresh_token not in raw and company.grant.access_token not in raw
    kms = sandbox.aws.client("kms")
    opened = kms.decrypt(CiphertextBlob=item["sealedAnswer"]["B"], EncryptionContext={"secretId": secret})
    assert company.grant.refresh_token in opened["Plaintext"].decode()
    with pytest.raises(kms.exceptions.InvalidCiphertextException):  # not under another secret's id
        kms.decrypt(CiphertextBlob=item["sealedAnswer"]["B"], EncryptionContext={"secretId": secret + "-other"})


def test_a_journal_entry_written_before_the_encryption_is_still_recovered(sandbox, aws_faults):
    """Plaintext entries from before the encryption may hold the only copy of a live refresh
    token: the next refresh recovers the set from one (no spent token presented) and the
    entry is deleted once Secrets Manager has the set."""
    company = sandbox.add_company("xero", "xero-legacy", expired_token=True)
    secret = company.configuration["accountingCredentialsSecretId"]
    aws_faults.inject("PutSecretValue", "throttled", times=None, when=lambda p: p["SecretId"] == secret)
    first = sandbox.add_job(company)
    sandbox.enqueue_job(first)
    sandbox.poller().drain()
    # rewrite the entry as the code before the encryption wrote it: the answer in plaintext
    item = _journal(sandbox, company)
    assert item is not None
    sealed = item.pop("sealedAnswer")["B"]
    answer = sandbox.aws.client("kms").decrypt(CiphertextBlob=sealed, EncryptionContext={"secretId": secret})
    item["answer"] = {"S": answer["Plaintext"].decode()}
    sandbox.aws.client("dynamodb").put_item(TableName=sandbox.resources.credential_lock_table, Item=item)

    aws_faults.clear()
    sandbox.xero.expire_access_token(company.grant)
    second = sandbox.add_job(company)
    sandbox.enqueue_job(second)
    sandbox.poller().drain()
    assert [h["jobId"] for h in ready_jobs(sandbox)] == [first["id"], second["id"]]
    assert not company.grant.revoked and sandbox.xero.token_calls == 2
    assert stored_tokens(sandbox, company)["refreshToken"] == company.grant.refresh_token
    assert _journal(sandbox, company) is None
