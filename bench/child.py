"""A fresh interpreter, as a new Lambda container would be: ``python -m bench.child SPEC RESULT``.

The sandbox (moto and the simulators) runs in the parent; the environment points here at
it. Modes: ``baseline`` (``import boto3, httpx``; then, timed apart, the frameworks the
handler adds: Powertools and pydantic), ``handler`` (import the real
handler, build the runtime, then one invocation per item of ``items``), ``reference``
(the same with ``bench.reference``), ``reference+frameworks`` (the reference after importing
what the handler imports of Powertools and pydantic: the floor of a handler on that stack),
``import`` (the handler's imports and runtime only).
Nothing but the standard library is imported before the measured imports, and nothing the
deployed layer does not ship can be imported (``absent``: the dev environment's rich, click, ...).
"""

from __future__ import annotations

import time

T_MAIN = time.monotonic()  # first statement: interpreter start-up is behind us

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

from bench.layer import NotInLayer  # noqa: E402 - standard library only


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def rss_mb() -> float:
    """Peak RSS of this process (the parent starts it through /bin/sh, so that the peak is
    not inherited from the parent across exec)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def server_cpu(pid: int) -> float:
    """CPU seconds used so far by the process serving moto and the simulators."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def load(spec: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Import the handler (or the reference) and build what it builds on first use."""
    sys.path[:0] = spec.get("code_paths", [])
    out: dict[str, Any] = {}
    started = time.perf_counter()
    if spec["mode"] in ("reference", "reference+frameworks"):
        if spec["mode"] == "reference+frameworks":
            out.update(frameworks())
        from bench import reference as module

        out["import_s"], out["init_s"] = time.perf_counter() - started, 0.0
        return module, out
    import app as module

    imported = time.perf_counter()
    from export_preflight.runtime import get_runtime

    get_runtime()
    out["import_s"], out["init_s"] = imported - started, time.perf_counter() - imported
    return module, out


def frameworks() -> dict[str, float]:
    """After the bare import: what importing the frameworks the handler uses costs on top,
    in the handler's order (Powertools' batch before pydantic, see export_preflight/__init__):
    Powertools (what the handler imports of it), then pydantic. The reference imports neither."""
    started = time.perf_counter()
    import aws_lambda_powertools.utilities.batch  # noqa: F401
    from aws_lambda_powertools import Logger, Metrics, Tracer  # noqa: F401
    from aws_lambda_powertools.utilities import parameters  # noqa: F401
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: F401

    powertools = time.perf_counter()
    import pydantic  # noqa: F401
    from pydantic import BaseModel, Field, HttpUrl  # noqa: F401

    return {"powertools_s": powertools - started, "pydantic_s": time.perf_counter() - powertools}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    sys.meta_path.insert(0, NotInLayer(spec.get("absent", [])))  # type: ignore[arg-type]
    if spec["mode"] == "baseline":
        started = time.perf_counter()
        import boto3  # noqa: F401
        import httpx  # noqa: F401

        out = {"import_s": time.perf_counter() - started, "t_ready": time.monotonic(), "rss_mb": rss_mb()}
        out.update(frameworks())
        return out
    module, out = load(spec)
    out["rss_init_mb"] = rss_mb()
    if spec["mode"] == "import":
        return out
    from bench.instrument import Recorder, check_needs
    from sandbox.lambda_context import LocalLambdaContext  # standard library only

    recorder = Recorder(spec["hosts"], spec["aws_latency"]).install()
    pid = spec["server_pid"]
    out["items"] = []
    with contextlib.redirect_stdout(_Sink()):  # type: ignore[type-var]
        for n, item in enumerate(spec["items"]):
            with recorder.recording() as calls:
                s0, c0, p0 = server_cpu(pid), time.process_time(), time.perf_counter()
                answer = module.lambda_handler(item["event"], LocalLambdaContext(timeout_ms=60_000))
                p1 = time.perf_counter()
                c1, s1 = time.process_time(), server_cpu(pid)
            if n == 0:
                out["t_decided"], out["rss_first_mb"] = time.monotonic(), rss_mb()
                out["clients_first"], out["client_seconds"] = dict(recorder.clients), recorder.client_seconds
            out["items"].append(
                {
                    "label": item["label"],
                    "s": p1 - p0,
                    "cpu": c1 - c0,
                    "server_cpu": s1 - s0,
                    "p0": p0,
                    "p1": p1,
                    "failures": len(answer.get("batchItemFailures", [])),
                    "calls": [c.row() for c in calls],
                }
            )
    out["rss_mb"], out["threads"] = rss_mb(), threading.active_count()
    out["check_needs"] = check_needs() if spec["mode"] == "handler" else {}
    return out


def main() -> int:
    warnings.simplefilter("ignore")
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    result = run(spec)
    result["t_main"] = T_MAIN
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
