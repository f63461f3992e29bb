"""Re-run preflight for one job: remove its decision record and send its message again.

A redrive of an already decided job is, on purpose, a no-op (one decision per job). When
an operator knows a decision must be made again (e.g. a ``hand_off_unknown`` message and
the next stage never saw the job), this is the way:

    python -m export_preflight.rerun JOB_ID COMPANY_ID

It uses the usual AWS environment (region, profile) and the function's table and queue
settings (``DECISIONS_TABLE``, ``CLAIMED_JOBS_QUEUE_URL``). The message carries a fresh
``rerun`` token, so the idempotency record and the ready queue's deduplication of the
earlier decision do not swallow it. A job that is no longer ``in_progress`` in Pleo is
left alone by the run itself.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


class DecisionRecords(Protocol):
    def forget(self, job_id: str) -> None: ...


class ClaimedQueue(Protocol):
    def send_claimed(self, body: dict[str, object]) -> str: ...


@dataclass(frozen=True)
class Rerun:
    job_id: str
    company_id: str
    token: str
    message_id: str


def rerun(job_id: UUID, company_id: UUID, *, decisions: DecisionRecords, queue: ClaimedQueue) -> Rerun:
    """Forget the job's decision, then send a claimed-jobs message for it with a new ``rerun`` token."""
    token = uuid.uuid4().hex
    decisions.forget(str(job_id))
    message_id = queue.send_claimed({"jobId": str(job_id), "companyId": str(company_id), "rerun": token})
    return Rerun(str(job_id), str(company_id), token, message_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export_preflight.rerun", description=__doc__.split("\n")[0])
    parser.add_argument("job_id", type=UUID)
    parser.add_argument("company_id", type=UUID)
    args = parser.parse_args(argv)

    from .aws import DynamoDBDecisionLog, Queues
    from .settings import get_settings

    settings = get_settings()
    if not settings.claimed_jobs_queue_url:
        print("CLAIMED_JOBS_QUEUE_URL is not set (see README, Settings)", file=sys.stderr)
        return 2
    done = rerun(args.job_id, args.company_id, decisions=DynamoDBDecisionLog(settings), queue=Queues(settings))
    print(f"job {done.job_id}: decision record removed; re-sent as message {done.message_id} (rerun {done.token})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
