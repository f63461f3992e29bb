"""Pleo Export API v3 client: read a job, post the ``failed`` event, confirm it."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any, Protocol
from uuid import UUID

import httpx
from pydantic import ValidationError

from .errors import (
    AccountingSystemError,
    CredentialsMissing,
    CredentialsUnreadable,
    JobNotConfirmed,
    PleoUnavailable,
    UnprocessableMessage,
)
from .http import PLEO_ANSWER_BYTES, RemoteErrors, send
from .models import ExportJob, FailureReasonType, JobStatus, PleoApiKey, PleoCredentials, TokenSet
from .oauth import OAuthBearer, OAuthTokens, TokenEndpoint
from .sanitize import sanitize_reason

JSON_UTF8 = "application/json;charset=UTF-8"
PLEO_ERRORS = RemoteErrors(
    error=PleoUnavailable,
    timeout=FailureReasonType.SERVICE_TIMEOUT,
    unreachable=FailureReasonType.SERVICE_UNREACHABLE,
    rate_limit=FailureReasonType.PLEO_RATE_LIMIT,
    answer_bytes=PLEO_ANSWER_BYTES,
)


class StaticBearer(httpx.Auth):
    """A bearer token that cannot be renewed (a bare Pleo access token)."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


def pleo_auth(
    credentials: PleoCredentials, *, secret_id: str = "", oauth: tuple[OAuthTokens, TokenEndpoint] | None = None
) -> httpx.Auth:
    """How one company's requests to Pleo authenticate: an API key (HTTP Basic user name,
    empty password), OAuth tokens kept fresh by ``OAuthBearer``, or a bare access token."""
    if isinstance(credentials, PleoApiKey):
        return httpx.BasicAuth(credentials.api_key.get_secret_value(), "")
    if isinstance(credentials, TokenSet) and oauth is not None:
        tokens, endpoint = oauth
        return OAuthBearer(tokens, secret_id, endpoint)
    return StaticBearer(credentials.access_token.get_secret_value())


class PleoClient:
    """Talks to ``PLEO_API_BASE_URL`` with one company's credentials."""

    def __init__(self, http: httpx.Client, auth: httpx.Auth | PleoCredentials) -> None:
        self._http = http
        self._auth = auth if isinstance(auth, httpx.Auth) else pleo_auth(auth)

    def get_job(self, job_id: UUID) -> ExportJob | None:
        """The job, or None when Pleo does not know it (404)."""
        response = self._send("GET", f"/v3/export-jobs/{job_id}", what="reading the export job")
        if response.status_code == 404:
            return None
        _raise_for_answer(response, what="reading the export job")
        try:
            return ExportJob.model_validate(response.json()["data"])
        except (ValueError, RecursionError, KeyError, TypeError, ValidationError):
            # An HTML page, a body of another shape: Pleo's trouble, retried like an outage.
            raise PleoUnavailable(
                f"Pleo answered {response.status_code} with something that is not an export job while reading it",
                reason_type=FailureReasonType.SERVICE_UNREACHABLE,
            ) from None

    def fail_job(self, job_id: UUID, reason_type: FailureReasonType, reason: str) -> ExportJob:
        """Post ``failed`` and return the job as re-read afterwards.

        A 422 (illegal transition) is not an error by itself: a previous attempt may
        have failed the job already, so the job is re-read and judged by its status.
        Raises ``JobNotConfirmed`` when the job does not end up ``failed``.
        """
        body = {
            "event": "failed",
            "jobId": str(job_id),
            "failureReason": sanitize_reason(reason),
            "failureReasonType": reason_type.value,
        }
        response = self._send(
            "POST",
            "/v3/export-job-events",
            what="posting the failed event",
            json=body,
            headers={"Content-Type": JSON_UTF8},
        )
        if response.status_code not in (202, 422):
            _raise_for_answer(response, what="posting the failed event")
        job = self.get_job(job_id)
        if job is None:
            raise JobNotConfirmed(f"job {job_id} disappeared after the failed event")
        if job.status != JobStatus.FAILED:
            raise JobNotConfirmed(
                f"job {job_id} shows status {job.status!r} after the failed event (event answer {response.status_code})"
            )
        return job

    def _send(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return send(
                self._http, method, path, remote="Pleo", what=what, errors=PLEO_ERRORS, auth=self._auth, **kwargs
            )
        except AccountingSystemError:  # the OAuth grant is gone: nobody can fail the job for us
            raise UnprocessableMessage(
                "Pleo no longer accepts the integration's OAuth grant for this company: reconnect Pleo, then redrive",
                kind="pleo_credentials_rejected",
            ) from None


class PleoCredentialSource(Protocol):
    def pleo(self, secret_id: str, *, refresh: bool = False) -> PleoCredentials: ...


class PleoCompanies:
    """``PleoAccess``: a ``PleoClient`` per company, from its credentials secret."""

    def __init__(
        self,
        http: httpx.Client,
        credentials: PleoCredentialSource,
        oauth: tuple[OAuthTokens, TokenEndpoint] | None = None,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._oauth = oauth

    def for_company(self, secret_id: str, *, refresh: bool = False) -> PleoClient:
        try:
            credentials = self._credentials.pleo(secret_id, refresh=refresh)
        except (CredentialsMissing, CredentialsUnreadable) as error:
            state = "missing" if isinstance(error, CredentialsMissing) else "unreadable"
            raise UnprocessableMessage(
                f"the company's Pleo credentials secret is {state}: the job cannot be read or failed; "
                "fix the secret, then redrive",
                kind="pleo_credentials_unusable",
            ) from None
        return PleoClient(self._http, pleo_auth(credentials, secret_id=secret_id, oauth=self._oauth))


def _raise_for_answer(response: httpx.Response, *, what: str) -> None:
    if response.is_success:
        return
    if response.status_code == 401:
        # Without working Pleo credentials we cannot fail the job: nothing we can do
        # by retrying, so the message goes to the DLQ for an operator.
        raise UnprocessableMessage(
            f"Pleo rejected our credentials (401) while {what}: replace the company's Pleo credentials secret",
            kind="pleo_credentials_rejected",
        )
    if response.status_code == 403:
        raise UnprocessableMessage(
            f"Pleo refused access (403) while {what}: the company's Pleo credentials do not cover this job "
            "(is the message routed to the right company?); nothing was done to the job",
            kind="pleo_job_not_covered",
        )
    error_type = _error_type(response)
    raise UnprocessableMessage(
        f"Pleo answered {response.status_code} {error_type} while {what}", kind="pleo_request_rejected"
    )


def _error_type(response: httpx.Response) -> str:
    """Pleo's error ``type`` (an upper-case code) when the body has one; never free text."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    value = body.get("type") if isinstance(body, dict) else None
    return value if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", value) else ""
