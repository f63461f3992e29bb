"""Stateful simulator of the Pleo Export API v3 surface the preflight uses.

Shapes follow docs/pleo-export-api-v3.openapi.yaml (ExportJob, PageInfo,
ApiError ``{type, message}``) and the job state machine of export-api.md section 4.
Where Pleo does not document an answer (401/403/400 bodies, ordering), the
simulator's choice is marked "SIMULATOR CHOICE".
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .base import SimRequest, SimResponse, SimulatorServer

__all__ = [
    "EVENT_TYPES",
    "JOB_FAILURE_REASON_TYPES",
    "JOB_STATUSES",
    "PleoSimulator",
]

JOB_STATUSES = ("pending", "in_progress", "failed", "completed", "completed_with_errors")
EVENT_TYPES = ("started", "failed", "completed", "completed_with_errors")
JOB_FAILURE_REASON_TYPES = (
    "invalid_configuration",
    "missing_configuration",
    "authentication_failure",
    "accounting_system_authentication_failure",
    "pleo_rate_limit",
    "accounting_system_rate_limit",
    "service_unreachable",
    "accounting_system_unreachable",
    "validation_failure",
    "authorization_failure",
    "integration_unusable",
    "job_expired",
    "service_timeout",
    "accounting_system_timeout",
    "canceled_by_user",
)
# event -> (status it must come from, status it leads to)
_TRANSITIONS = {
    "started": ("pending", "in_progress"),
    "failed": ("in_progress", "failed"),
    "completed": ("in_progress", "completed"),
    "completed_with_errors": ("in_progress", "completed_with_errors"),
}
# LOCAL RULE of the project's OpenAPI (additionalProperties: false): unknown fields are rejected.
_EVENT_FIELDS = frozenset({"jobId", "event", "failureReason", "failureReasonType"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _error(status: int, type_: str, message: str) -> SimResponse:
    return SimResponse(status, {"type": type_, "message": message})


def _not_found() -> SimResponse:
    return _error(404, "EXPORT_NOT_FOUND", "Export job not found.")


def _bad_request(message: str) -> SimResponse:
    return _error(400, "BAD_REQUEST", message)  # SIMULATOR CHOICE: Pleo documents no 400 type here


class PleoSimulator(SimulatorServer):
    """Pleo Export API v3: export jobs, job events, API keys and OAuth access tokens.

    Credentials: ``Authorization: Basic base64(<api key> + ":")`` (API key, empty
    password) or ``Authorization: Bearer <access token>``, each covering a set of
    company ids. A missing, unknown or expired credential gets 401; a valid one that
    does not cover the job's company gets 403.
    """

    credential_headers = frozenset({"authorization"})

    def __init__(self, *, latency: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(latency=latency)
        self.clock = clock
        """Seconds since the epoch; replace to control timestamps and token expiry."""
        self._jobs: dict[str, dict[str, Any]] = {}
        self._api_keys: dict[str, frozenset[str]] = {}
        self._tokens: dict[str, tuple[frozenset[str], float | None]] = {}
        self._events: list[dict[str, Any]] = []
        self.route("GET", r"/v3/export-jobs", self._list_jobs)
        self.route("GET", r"/v3/export-jobs/(?P<job_id>[^/]+)", self._get_job)
        self.route("POST", r"/v3/export-job-events", self._post_event)

    # ------------------------------------------------------------ seeding

    def add_api_key(self, key: str, company_ids: Iterable[str]) -> None:
        """Accept ``key`` as a Basic-auth API key for these companies."""
        with self.lock:
            self._api_keys[key] = frozenset(str(c) for c in company_ids)

    def add_access_token(self, token: str, company_ids: Iterable[str], expires_at: float | None = None) -> None:
        """Accept ``token`` as a Bearer token for these companies until ``expires_at``
        (epoch seconds, compared with ``clock()``; ``None`` never expires)."""
        with self.lock:
            self._tokens[token] = (frozenset(str(c) for c in company_ids), expires_at)

    def revoke(self, credential: str) -> None:
        """Forget an API key or access token (it then gets 401)."""
        with self.lock:
            self._api_keys.pop(credential, None)
            self._tokens.pop(credential, None)

    def add_job(
        self,
        *,
        company_id: str,
        job_id: str | None = None,
        status: str = "in_progress",
        vendor_based_bookkeeping: bool = False,
        expires_in: int = 3600,
        idle_seconds: float = 0,
        number_of_items: int = 3,
        is_interactive: bool = True,
        created_by: str | None = None,
    ) -> dict[str, Any]:
        """Seed an export job and return a copy of it (an ``ExportJob`` object).

        Jobs seeded past ``pending`` get ``startedAt``; ``completed*`` ones also ``completedAt``.
        ``idle_seconds`` dates the job's last action (and creation) that far back: its
        ``expiresIn`` counts from ``lastUpdatedAt``.
        """
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}; use one of {JOB_STATUSES}")
        now = self._timestamp(idle_seconds)
        job: dict[str, Any] = {
            "id": str(job_id or uuid.uuid4()),
            "companyId": str(company_id),
            "status": status,
            "createdAt": now,
            "createdBy": created_by,
            "startedAt": None if status == "pending" else now,
            "lastUpdatedAt": now,
            "completedAt": now if status in ("completed", "completed_with_errors") else None,
            "expiredAt": None,
            "expiresIn": expires_in,
            "isInteractive": is_interactive,
            "numberOfItems": number_of_items,
            "vendorBasedBookkeeping": vendor_based_bookkeeping,
            "failureReason": None,
            "failureReasonType": None,
        }
        with self.lock:
            self._jobs[job["id"]] = job
            return copy.deepcopy(job)

    def expire_job(self, job_id: str) -> dict[str, Any]:
        """Let the job expire as Pleo would: status ``failed``, ``failureReasonType``
        ``job_expired``, ``expiredAt`` set. Returns a copy of the job."""
        now = self._timestamp()
        with self.lock:
            job = self._jobs[job_id]
            job.update(
                status="failed",
                failureReason="The export job expired.",
                failureReasonType="job_expired",
                expiredAt=now,
                lastUpdatedAt=now,
            )
            return copy.deepcopy(job)

    def reset(self) -> None:
        """Drop jobs, credentials, events, recorded requests and faults."""
        with self.lock:
            super().reset()
            self._jobs.clear()
            self._api_keys.clear()
            self._tokens.clear()
            self._events.clear()

    # ------------------------------------------------------------ inspection

    def job(self, job_id: str) -> dict[str, Any]:
        """A copy of one job (``KeyError`` if unknown)."""
        with self.lock:
            return copy.deepcopy(self._jobs[job_id])

    def jobs(self) -> list[dict[str, Any]]:
        """Copies of all jobs, in creation order."""
        with self.lock:
            return [copy.deepcopy(job) for job in self._jobs.values()]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Bodies of every accepted ``POST /v3/export-job-events``, in order."""
        with self.lock:
            return copy.deepcopy(self._events)

    # ------------------------------------------------------------ handlers

    def unknown_route(self, request: SimRequest, *, path_known: bool) -> SimResponse:
        if path_known:
            return _error(405, "METHOD_NOT_ALLOWED", f"{request.method} is not supported on {request.path}")
        return _error(404, "NOT_FOUND", f"No such endpoint: {request.path}")

    def _list_jobs(self, request: SimRequest) -> SimResponse:
        companies, denied = self._authenticate(request)
        if denied:
            return denied
        company_id = request.param("company_id")
        if company_id is not None and not _UUID.match(company_id):
            return _bad_request("company_id must be a UUID.")
        statuses = request.query.get("statuses", [])
        unknown = [s for s in statuses if s not in JOB_STATUSES]
        if unknown:
            return _bad_request(f"Unknown statuses {unknown}; allowed: {list(JOB_STATUSES)}.")
        if company_id is not None and company_id not in companies:
            return _error(403, "FORBIDDEN", "The credential does not give access to this company.")
        wanted = {company_id} if company_id is not None else companies
        with self.lock:
            data = [
                copy.deepcopy(job)
                for job in self._jobs.values()
                if job["companyId"] in wanted and (not statuses or job["status"] in statuses)
            ]
        data.sort(key=lambda job: job["createdAt"])  # SIMULATOR CHOICE: Pleo documents no order
        pagination = {
            "currentRequestPagination": {"parameters": {k: list(v) for k, v in request.query.items()}},
            "hasNextPage": False,
            "hasPreviousPage": False,
            "total": len(data),
        }
        return SimResponse(200, {"data": data, "pagination": pagination})

    def _get_job(self, request: SimRequest, job_id: str) -> SimResponse:
        companies, denied = self._authenticate(request)
        if denied:
            return denied
        if not _UUID.match(job_id):
            return _bad_request("jobId must be a UUID.")
        with self.lock:
            job = self._jobs.get(job_id)
            if job is None:
                return _not_found()
            if job["companyId"] not in companies:
                return _error(403, "FORBIDDEN", "The credential does not give access to this export job's company.")
            return SimResponse(200, {"data": copy.deepcopy(job)})

    def _post_event(self, request: SimRequest) -> SimResponse:
        companies, denied = self._authenticate(request)
        if denied:
            return denied
        problem = self._event_problem(request)
        if problem:
            return _bad_request(problem)
        body: dict[str, Any] = request.json
        event = body["event"]
        with self.lock:
            job = self._jobs.get(body["jobId"])
            if job is None:
                return _not_found()
            if job["companyId"] not in companies:
                return _error(403, "FORBIDDEN", "The credential does not give access to this export job's company.")
            from_status, to_status = _TRANSITIONS[event]
            if job["status"] != from_status:
                return _error(422, "INVALID_EXPORT_JOB_STATUS_CHANGE", "Export Job status change failed")
            now = self._timestamp()
            job["status"] = to_status
            job["lastUpdatedAt"] = now
            if event == "started":
                job["startedAt"] = now
            if event in ("completed", "completed_with_errors"):
                job["completedAt"] = now
            if event in ("failed", "completed_with_errors"):
                job["failureReason"] = body.get("failureReason")
                job["failureReasonType"] = body.get("failureReasonType")
            self._events.append(copy.deepcopy(body))
        return SimResponse(202)

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _event_problem(request: SimRequest) -> str | None:
        body = request.json
        if request.body_is_invalid_json:
            return "The request body is not valid JSON."
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        extra = sorted(set(body) - _EVENT_FIELDS)
        if extra:
            return f"Unknown field(s) {extra}; allowed: {sorted(_EVENT_FIELDS)}."
        job_id = body.get("jobId")
        if not isinstance(job_id, str) or not _UUID.match(job_id):
            return "jobId is required and must be a UUID."
        if body.get("event") not in EVENT_TYPES:
            return f"event is required and must be one of {list(EVENT_TYPES)}."
        reason = body.get("failureReason")
        if reason is not None and not isinstance(reason, str):
            return "failureReason must be a string."
        reason_type = body.get("failureReasonType")
        if reason_type is not None and reason_type not in JOB_FAILURE_REASON_TYPES:
            return f"failureReasonType must be one of {list(JOB_FAILURE_REASON_TYPES)}."
        return None

    def _authenticate(self, request: SimRequest) -> tuple[frozenset[str], SimResponse | None]:
        """Companies the request's credential covers, or a 401 answer."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        with self.lock:
            if scheme.lower() == "basic" and value:
                try:
                    key = base64.b64decode(value, validate=True).decode().partition(":")[0]
                except (binascii.Error, UnicodeDecodeError):
                    key = ""
                companies = self._api_keys.get(key)
                if companies is not None:
                    return companies, None
            elif scheme.lower() == "bearer" and value:
                entry = self._tokens.get(value)
                if entry is not None:
                    companies, expires_at = entry
                    if expires_at is not None and self.clock() >= expires_at:
                        return frozenset(), _error(401, "UNAUTHORIZED", "The access token has expired.")
                    return companies, None
        if not header:
            return frozenset(), _error(401, "UNAUTHORIZED", "Authentication is required.")
        return frozenset(), _error(401, "UNAUTHORIZED", "The credential is not valid.")

    def _timestamp(self, ago: float = 0) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock() - ago))
