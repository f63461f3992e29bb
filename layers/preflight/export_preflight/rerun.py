"""Re-run preflight for one job: remove its decision record and send its message again.

A redrive of an already decided job is, on purpose, a no-op (one decision per job). When
an operator knows a decision must be made again (e.g. a ``hand_off_unknown`` message and
the next stage never saw the job), ``export-preflight rerun JOB_ID`` does this (see
``cli``; it refuses a job that is no longer ``in_progress``). The message carries a fresh
``rerun`` token, so the ready queue's deduplication of the earlier decision does not
swallow it. It refuses (``DecisionInFlight``) while the earlier
decision is still ``acting`` and young enough that a delivery may yet finish it
(``RERUN_WAIT_SECONDS``): the record is removed only by a conditional delete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


class DecisionRecords(Protocol):
    def forget(self, job_id: str, *, in_flight_seconds: float) -> None:
        """Remove the record, unless it is ``acting`` and younger than ``in_flight_seconds``
        (then raise ``DecisionInFlight``)."""
        ...


class ClaimedQueue(Protocol):
    def send_claimed(self, body: dict[str, object]) -> str: ...


@dataclass(frozen=True)
class Rerun:
    job_id: str
    company_id: str
    token: str
    message_id: str


def rerun(job_id: UUID, company_id: UUID, *, decisions: DecisionRecords, queue: ClaimedQueue) -> Rerun:
    """Forget the job's decision, then send a claimed-jobs message for it with a new ``rerun`` token.
    Raises ``DecisionInFlight`` (nothing done) while a delivery may still be acting on it."""
    from .service import RERUN_WAIT_SECONDS

    token = uuid.uuid4().hex
    decisions.forget(str(job_id), in_flight_seconds=RERUN_WAIT_SECONDS)
    message_id = queue.send_claimed({"jobId": str(job_id), "companyId": str(company_id), "rerun": token})
    return Rerun(str(job_id), str(company_id), token, message_id)
