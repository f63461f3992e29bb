"""The engine that runs the preflight checks (see checks.py): dependencies respected,
independent checks concurrently on an executor, a check whose prerequisite did not pass
skipped, and a check's trouble classified (a failure, or transient: retried)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from functools import partial

from .checks import CHECKS, PreflightCheck, PreflightContext
from .errors import AccountingSystemError, TransientError
from .models import CheckOutcome
from .observability import count, logger


@dataclass(frozen=True)
class CheckReport:
    """All outcomes in ``CHECKS`` order, plus transient errors that kept checks from finishing."""

    outcomes: tuple[CheckOutcome, ...]
    errors: tuple[TransientError, ...]
    unfinished: tuple[str, ...] = ()  # the checks that raised ``errors``, in the same order

    @property
    def failures(self) -> list[CheckOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    def passed(self, name: str) -> bool:
        return any(o.check == name and o.status == "passed" for o in self.outcomes)


def run_checks(
    ctx: PreflightContext, checks: tuple[PreflightCheck, ...] = CHECKS, executor: Executor | None = None
) -> CheckReport:
    """Run ``checks`` respecting their dependencies; concurrently when given an executor.

    A check that raises ``AccountingSystemError`` failed (a permanent answer); one that
    raises ``TransientError`` neither passed nor failed, and its dependents are skipped.

    With an executor, only checks that may wait on a remote system go to it, and not all of
    those: the calling thread would only wait, so it runs one itself whenever that cannot
    delay another check (it is the only check in flight, or no check is left to start).
    Local checks run in the calling thread as soon as they are ready.
    """
    pending = {check.name: check for check in checks}
    results: dict[str, CheckOutcome] = {}
    errors: dict[str, TransientError] = {}
    running: dict[Future[CheckOutcome], str] = {}

    while pending or running:
        ready: list[PreflightCheck] = []
        progressed = True
        while progressed:
            progressed = False
            for name, check in list(pending.items()):
                blocker = _blocker(check, results, errors)
                if blocker is None and not all(need in results for need in check.needs):
                    continue
                del pending[name]
                progressed = True
                if blocker is not None:
                    results[name] = CheckOutcome.skipped(name, because=blocker)
                elif executor is None or check.local:
                    _record(name, partial(_run_one, check, ctx), results, errors)
                else:
                    ready.append(check)
        if ready:
            mine = ready.pop() if not pending or (not running and len(ready) == 1) else None
            assert executor is not None
            for check in ready:
                running[executor.submit(_run_one, check, ctx)] = check.name
            if mine is not None:
                _record(mine.name, partial(_run_one, mine, ctx), results, errors)
                continue
        if not running:
            if pending:
                raise ValueError(f"checks with unknown or circular prerequisites: {sorted(pending)}")
            break
        if not pending:  # nothing left to start: collect what runs, in any order
            for future, name in running.items():
                _record(name, future.result, results, errors)
            break
        done, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            _record(running.pop(future), future.result, results, errors)

    return CheckReport(
        outcomes=tuple(results[c.name] for c in checks if c.name in results),
        errors=tuple(errors[c.name] for c in checks if c.name in errors),
        unfinished=tuple(c.name for c in checks if c.name in errors),
    )


def _blocker(check: PreflightCheck, results: Mapping[str, CheckOutcome], errors: Mapping[str, object]) -> str | None:
    for need in check.needs:
        if need in errors or (need in results and results[need].status != "passed"):
            return need
    return None


def _record(
    name: str,
    produce: Callable[[], CheckOutcome],
    results: dict[str, CheckOutcome],
    errors: dict[str, TransientError],
) -> None:
    try:
        results[name] = produce()
    except TransientError as error:
        errors[name] = error


def _run_one(check: PreflightCheck, ctx: PreflightContext) -> CheckOutcome:
    try:
        return check.run(ctx)
    except AccountingSystemError as error:
        return CheckOutcome.failed(check.name, error.reason_type, str(error))
    except TransientError:
        raise
    except Exception:  # a fault of ours (connectors classify malformed remote answers themselves): retry, then give up
        logger.exception("check raised unexpectedly", extra={"check": check.name})
        count("UnexpectedError")
        raise UnexpectedCheckError(f"the {check.name.replace('_', ' ')} check could not finish") from None


class UnexpectedCheckError(TransientError):
    """A check raised something we did not plan for. Retried like transient trouble; on the
    last attempt the job fails with ``service_unreachable`` (our side could not finish)."""
