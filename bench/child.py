"""The benchmark's subprocess: a fresh interpreter, as a new Lambda container would be.

``python -m bench.child SPEC.json RESULT.json``. The sandbox (moto and the simulators)
runs in the parent; the environment given to this process points at it. Modes:

- ``baseline``: ``import boto3, httpx`` and nothing else (the reference for import cost);
- ``handler``: import the real handler module, build the runtime, handle ``events[0]``
  (the first decision of a cold container), then any ``warm_events`` one invocation
  each (warm latency with the handler in a process of its own, i.e. not sharing a GIL
  with the servers), and report times and peak RSS.

Only the standard library is imported before the measured imports.
"""

from __future__ import annotations

import time

T_MAIN = time.monotonic()  # first statement of the program: interpreter start-up is behind us

import contextlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402


class _Sink:
    """Swallows the handler's stdout (EMF metrics, log lines) at the cost of a method call."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _rss_mb() -> float:
    """Peak RSS, ``ru_maxrss`` (Linux: KiB). The parent starts this process through
    ``/bin/sh`` so that the value is this process's own: a process created by fork/vfork
    + exec inherits its parent's peak (the kernel keeps it across exec)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    """The same from ``/proc/self/status`` (VmHWM: this address space only), as a cross-check."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def baseline() -> dict[str, Any]:
    started = time.perf_counter()
    import boto3  # noqa: F401
    import httpx  # noqa: F401

    return {
        "import_s": time.perf_counter() - started,
        "t_ready": time.monotonic(),
        "rss_mb": _rss_mb(),
        "hwm_mb": _hwm_mb(),
    }


def handler(spec: dict[str, Any]) -> dict[str, Any]:
    sys.path[:0] = spec["code_paths"]
    started = time.perf_counter()
    import app

    imported = time.perf_counter()
    from export_preflight.runtime import get_runtime

    if spec.get("profile_init"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        get_runtime()
        profiler.disable()
    else:
        get_runtime()
    initialised = time.perf_counter()
    rss_init = _rss_mb()
    from sandbox.lambda_context import LocalLambdaContext  # standard library only

    result: dict[str, Any] = {
        "import_s": imported - started,
        "init_s": initialised - imported,
        "rss_init_mb": rss_init,
    }
    if spec.get("profile_init"):
        result["init_profile"] = _top_self(profiler)
    if spec.get("import_only"):
        return result
    with contextlib.redirect_stdout(_Sink()):  # type: ignore[type-var]
        first_started = time.perf_counter()
        response = app.lambda_handler(spec["events"][0], LocalLambdaContext(timeout_ms=60_000))
        result["t_decided"] = time.monotonic()
        result["first_invocation_s"] = time.perf_counter() - first_started
        result["first_failures"] = len(response.get("batchItemFailures", []))
        result["rss_mb"] = _rss_mb()
        result["hwm_mb"] = _hwm_mb()
        warm: list[dict[str, Any]] = []
        recorder = _recorder(spec)
        for item in spec.get("warm_events", []):
            record = recorder is not None and item["label"] in spec.get("record_labels", [])
            with contextlib.ExitStack() as stack:
                calls = stack.enter_context(recorder.recording()) if record else None  # type: ignore[union-attr]
                w0, m0, c0 = time.time(), time.monotonic(), time.process_time()
                p0 = time.perf_counter()
                answer = app.lambda_handler(item["event"], LocalLambdaContext(timeout_ms=60_000))
                p1 = time.perf_counter()
                entry = {
                    "label": item["label"],
                    "s": p1 - p0,
                    "cpu": time.process_time() - c0,
                    "t0": m0,
                    "t1": time.monotonic(),
                    "w0": w0,
                    "w1": time.time(),
                    "p0": p0,
                    "p1": p1,
                }
            if calls is not None:
                entry["calls"] = [[c.kind, c.name, c.detail, c.start, c.end] for c in calls]
            warm.append(entry)
            result["first_failures"] += len(answer.get("batchItemFailures", []))
        result["warm"] = warm
        result["profiled"] = _profiles(app, spec.get("profiles", []), LocalLambdaContext)
    return result


def _recorder(spec: dict[str, Any]) -> Any:
    """The benchmark's call recorder, in this process, when asked for (after the cold start)."""
    if not spec.get("record_labels"):
        return None
    from bench.instrument import CallRecorder

    recorder = CallRecorder()
    recorder.install(spec.get("hosts", {}))
    return recorder


def _top_self(profiler: Any, top: int = 6) -> list[tuple[str, int, float]]:
    """The costliest functions under ``get_runtime()`` by self time: (name, calls, seconds)."""
    import pstats

    rows = []
    for (filename, _line, name), (_cc, calls, self_time, _ct, _callers) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        where = filename.rsplit("site-packages/", 1)[-1].rsplit("/preflight/", 1)[-1].rsplit("/lib/python3", 1)[-1]
        rows.append((name if filename == "~" else f"{where}:{name}", calls, self_time))
    return sorted(rows, key=lambda row: -row[2])[:top]


def _profiles(app: Any, profiles: list[dict[str, Any]], context: Any) -> dict[str, dict[str, Any]]:
    """Invocations under cProfile (following the handler's pool threads); the merged
    statistics of each group go to its ``path`` (``pstats`` format)."""
    if not profiles:
        return {}
    from bench.instrument import ThreadedProfile

    out: dict[str, dict[str, Any]] = {}
    for group in profiles:
        profiler = ThreadedProfile()
        seconds: list[float] = []
        with profiler.active():
            for event in group["events"]:
                t0 = time.perf_counter()
                app.lambda_handler(event, context(timeout_ms=60_000))
                seconds.append(time.perf_counter() - t0)
        profiler.stats().dump_stats(group["path"])
        # one Profile per thread-pool work item, plus the calling thread's
        out[group["label"]] = {"seconds": seconds, "work_items": len(profiler.profiles) - 1}
    return out


def main() -> int:
    warnings.simplefilter("ignore")
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    result = baseline() if spec["mode"] == "baseline" else handler(spec)
    result["t_main"] = T_MAIN
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
