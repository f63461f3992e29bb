"""Exceptions. A failed *check* is a value (``CheckOutcome``), not an exception:
exceptions here are infrastructure errors (retry) or messages we can never act on
(dead-letter). Messages are written by us and never carry credentials or raw bodies.
"""

from __future__ import annotations

import math

from .models import FailureReasonType


class PreflightError(Exception):
    """Base class of every error raised on purpose by export-preflight."""


class TransientError(PreflightError):
    """A problem that may go away: the record is retried by SQS.

    ``reason_type`` is what the job is failed with when the retry budget is spent,
    ``retry_after`` a hint (seconds) from the remote side, when it gave one.
    """

    reason_type: FailureReasonType = FailureReasonType.SERVICE_UNREACHABLE
    # Which remote system is at fault, for metrics: "pleo", "aws", an accounting system id;
    # None: our own side.
    remote: str | None = None

    def __init__(
        self,
        message: str,
        *,
        reason_type: FailureReasonType | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if reason_type is not None:
            self.reason_type = reason_type
        self.retry_after = retry_after


class PleoUnavailable(TransientError):
    """Pleo answered 429/5xx, timed out, or could not be reached."""

    remote = "pleo"


class AwsUnavailable(TransientError):
    """An AWS dependency (Secrets Manager, DynamoDB, SQS) throttled or failed."""

    remote = "aws"


class AccountingSystemUnavailable(TransientError):
    """The accounting system answered 429/5xx, timed out, or could not be reached."""

    reason_type = FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE
    remote = "accounting"  # the service names the company's system when it knows it


class IntegrationMisconfigured(TransientError):
    """Our own side is not set up (e.g. the OAuth client secret is missing): an operator must
    act. Retried; on the last attempt the job fails with ``integration_unusable``."""

    reason_type = FailureReasonType.INTEGRATION_UNUSABLE


class TokenStoreRefused(IntegrationMisconfigured):
    """The token store refuses to keep a company's rotated OAuth tokens (e.g. Secrets Manager
    answers ``AccessDeniedException``: the secret lacks the tag our role's policy asks for).
    Retrying will not help: our set-up is wrong (``TokenStoreRefused`` metric and alarm)."""


class HandOffNotSent(AwsUnavailable):
    """SQS refused the hand-off's one attempt with an error answer: nothing was enqueued
    (unlike a timeout, a dropped connection or a 5xx, whose outcome is unknown)."""


class DecisionInFlight(PreflightError):
    """A re-run was refused: the job's decision is still being acted on (recorded ``age``
    seconds ago, state ``acting``) and a delivery may yet finish it; ``wait`` seconds more."""

    def __init__(self, job_id: str, outcome: str, age: float, wait: float) -> None:
        super().__init__(
            f"job {job_id}'s decision ({outcome}) was recorded {int(age)} s ago and is still being acted on: "
            f"a delivery of its message may yet finish it; re-run it in {max(1, int(wait) + 1)} s at the earliest"
        )
        self.outcome = outcome
        self.age = age
        self.wait = wait


class DecisionBusy(PreflightError):
    """Another delivery of the same job is acting on its decision (a concurrent duplicate):
    this one is retried after ``wait`` seconds, when that delivery has finished or ended."""

    def __init__(self, job_id: str, wait: float) -> None:
        super().__init__(f"job {job_id}'s decision is being acted on by another delivery; retried later")
        self.retry_after = float(math.ceil(max(0.0, wait)))  # whole seconds, never early


class ConfigurationChanged(PreflightError):
    """A configuration put based on a stale read was refused (optimistic concurrency)."""

    def __init__(self, company_id: str, based_on: int, current: int) -> None:
        super().__init__(
            f"the stored configuration of company {company_id} is at version {current}, but this document is "
            f"based on version {based_on}: it was changed meanwhile. Nothing was written. Get the current one "
            f"(export-preflight config get {company_id} > FILE), apply your change to it, then put it again"
        )
        self.based_on = based_on
        self.current = current


class JobNotConfirmed(TransientError):
    """Pleo accepted our event but the job does not (yet) show the new status."""


class UnprocessableMessage(PreflightError):
    """A message we can never act on (malformed, or for a company we cannot reach).

    It goes straight to the dead-letter queue with ``reason`` attached.
    """

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class AccountingSystemError(PreflightError):
    """A permanent answer from the accounting system (bad credentials, no access...).

    ``reason_type`` and the message are what the bookkeeper will see.
    """

    def __init__(self, message: str, *, reason_type: FailureReasonType) -> None:
        super().__init__(message)
        self.reason_type = reason_type


class CredentialsMissing(PreflightError):
    """The credentials secret does not exist (never set up, or deleted). Carries the secret id."""


class CredentialsUnreadable(PreflightError):
    """The credentials secret exists but is not the JSON document we expect. Carries the secret id."""
