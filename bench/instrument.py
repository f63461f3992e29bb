"""Measuring instruments for the benchmark process only (nothing here touches the
application's code): a recorder of remote calls (httpx requests, boto3 API calls), the
round-trip analysis of the simulators' request logs, the time attribution of one
invocation, and a profiler that follows the handler's worker threads."""

from __future__ import annotations

import bisect
import cProfile
import itertools
import os
import pstats
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import thread as futures_thread
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import botocore.client
import httpx
import urllib3.connection

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def normalise_path(path: str) -> str:
    return _UUID.sub("{id}", path)


# ---------------------------------------------------------------- remote calls


@dataclass(frozen=True)
class Call:
    """One remote call as the handler made it (client side, ``time.perf_counter`` clock)."""

    kind: str  # "http" or "aws"
    name: str  # "pleo GET /v3/export-jobs/{id}", "dynamodb PutItem"
    detail: str  # table, secret id or queue for AWS calls
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


class CallRecorder:
    """Wraps ``httpx.Client.send`` and ``botocore.client.BaseClient._make_api_call`` (in
    this process) and records every call made while ``recording()`` is active."""

    def __init__(self) -> None:
        self.hosts: dict[str, str] = {}
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._active = False
        self._installed = False
        self.connects = 0  # new TCP connections opened by botocore (urllib3) while recording

    def install(self, hosts: dict[str, str]) -> None:
        """``hosts`` maps ``host:port`` to a short system name (``pleo``, ``economic``)."""
        self.hosts = dict(hosts)
        if self._installed:
            return
        self._installed = True
        recorder = self
        original_send = httpx.Client.send
        original_call = botocore.client.BaseClient._make_api_call

        def send(client: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
            if not recorder._active:
                return original_send(client, request, *args, **kwargs)
            started = time.perf_counter()
            try:
                return original_send(client, request, *args, **kwargs)
            finally:
                system = recorder.hosts.get(f"{request.url.host}:{request.url.port}", str(request.url.host))
                name = f"{system} {request.method} {normalise_path(request.url.path)}"
                recorder._add(Call("http", name, "", started, time.perf_counter()))

        def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if not recorder._active:
                return original_call(client, operation_name, api_params)
            started = time.perf_counter()
            try:
                return original_call(client, operation_name, api_params)
            finally:
                service = client.meta.service_model.service_name
                detail = str(
                    api_params.get("TableName")
                    or api_params.get("SecretId")
                    or str(api_params.get("QueueUrl", "")).rsplit("/", 1)[-1]
                )
                recorder._add(Call("aws", f"{service} {operation_name}", detail, started, time.perf_counter()))

        original_connect = urllib3.connection.HTTPConnection.connect

        def connect(connection: Any) -> None:
            if recorder._active:
                with recorder._lock:
                    recorder.connects += 1
            original_connect(connection)

        setattr(urllib3.connection.HTTPConnection, "connect", connect)  # noqa: B010 - a patch, on purpose
        setattr(httpx.Client, "send", send)  # noqa: B010
        setattr(botocore.client.BaseClient, "_make_api_call", make_api_call)  # noqa: B010

    def _add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    @contextmanager
    def recording(self) -> Iterator[list[Call]]:
        """Record calls into the yielded list (filled when the block ends)."""
        calls: list[Call] = []
        with self._lock:
            self._calls = []
            self._active = True
        try:
            yield calls
        finally:
            with self._lock:
                self._active = False
                calls.extend(sorted(self._calls, key=lambda c: c.start))
                self._calls = []


# ---------------------------------------------------------------- round trips


@dataclass(frozen=True)
class Received:
    """One request as a simulator recorded it (``received_at`` is ``time.time()``)."""

    system: str
    method: str
    path: str
    received_at: float

    @property
    def label(self) -> str:
        return f"{self.system} {self.method} {normalise_path(self.path)}"


def round_trip_waves(requests: list[Received], latency: float) -> list[list[Received]]:
    """Group requests into sequential round trips, from the simulators' records alone.

    A response leaves a simulator no earlier than ``latency`` after its request arrived,
    so a request that arrives sooner than that after the first request of the current
    wave cannot depend on any answer of that wave: it is in the same wave (sent in
    parallel). A later one starts the next wave. (With ``latency`` 0 this cannot tell
    and every request is its own wave.)
    """
    waves: list[list[Received]] = []
    threshold = latency * 0.95  # clock jitter between time.time() stamps and the simulator's sleep
    for request in sorted(requests, key=lambda r: r.received_at):
        if waves and request.received_at - waves[-1][0].received_at < threshold:
            waves[-1].append(request)
        else:
            waves.append([request])
    return waves


def describe_waves(waves: list[list[Received]]) -> str:
    return " → ".join(" ∥ ".join(sorted(r.label for r in wave)) for wave in waves)


# ---------------------------------------------------------------- time attribution

LOCAL_BEFORE = "local work before the first remote call"
LOCAL_BETWEEN = "local work between round trips"
LOCAL_AFTER = "local work after the last remote call"
HTTP_FLOOR = "remote HTTP: injected latency (the floor)"
HTTP_OVERHEAD = "remote HTTP: beyond the injected latency"


def attribute(start: float, end: float, calls: list[Call], round_trips: int, latency: float) -> dict[str, float]:
    """Split one invocation's wall time ``[start, end]`` into what was in flight.

    Sweep line over the recorded calls: a moment with any HTTP request in flight is
    remote HTTP (split into the floor, ``round_trips * latency``, and the rest); else
    with an AWS call in flight it is that AWS operation (moto, no injected latency);
    else it is local work (Python: parsing, pydantic, logging, thread hand-offs, the
    check engine), labelled by where it falls relative to the HTTP round trips.
    """
    http = [c for c in calls if c.kind == "http"]
    aws = [c for c in calls if c.kind == "aws"]
    first_http = min((c.start for c in http), default=end)
    last_http = max((c.end for c in http), default=start)
    points = sorted({start, end, *(t for c in calls for t in (c.start, c.end) if start <= t <= end)})
    out: dict[str, float] = defaultdict(float)
    http_busy = 0.0
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        width = b - a
        if any(c.start <= mid < c.end for c in http):
            http_busy += width
            continue
        in_aws = [c for c in aws if c.start <= mid < c.end]
        if in_aws:
            out[f"AWS (moto): {in_aws[0].name}"] += width
        elif mid < first_http:
            out[LOCAL_BEFORE] += width
        elif mid > last_http:
            out[LOCAL_AFTER] += width
        else:
            out[LOCAL_BETWEEN] += width
    floor = min(http_busy, round_trips * latency)
    out[HTTP_FLOOR] = floor
    out[HTTP_OVERHEAD] = http_busy - floor
    return dict(out)


def max_concurrent_at_server(requests: list[Received], latency: float, system: str = "") -> int:
    """Most requests (of ``system``) being served at once, from the simulators' records:
    each is taken to occupy its server for the injected latency after it arrived. Unlike
    client-side timings, this does not count requests still waiting for a pooled connection."""
    edges = sorted(
        [(r.received_at, 1) for r in requests if r.system.startswith(system)]
        + [(r.received_at + latency, -1) for r in requests if r.system.startswith(system)],
        key=lambda edge: (edge[0], edge[1]),
    )
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def max_in_flight(calls: list[Call], prefix: str = "") -> int:
    """Most requests in flight at once (HTTP calls whose name starts with ``prefix``)."""
    edges = sorted(
        [(c.start, 1) for c in calls if c.kind == "http" and c.name.startswith(prefix)]
        + [(c.end, -1) for c in calls if c.kind == "http" and c.name.startswith(prefix)]
    )
    peak = level = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def count_aws(calls: list[Call]) -> Counter[tuple[str, str]]:
    """AWS calls by (operation, detail)."""
    return Counter((c.name, c.detail) for c in calls if c.kind == "aws")


# ---------------------------------------------------------------- CPU of this process


class CpuSampler:
    """Samples this process's CPU time (``time.process_time``) on a background thread, so
    that the CPU used in any ``time.monotonic`` window (e.g. while a child process runs
    one invocation against the servers living here) can be read afterwards."""

    def __init__(self, interval: float = 0.002) -> None:
        self._interval = interval
        self._times: list[float] = []
        self._cpu: list[float] = []
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[CpuSampler]:
        def sample() -> None:
            while not self._stop.is_set():
                self._times.append(time.monotonic())
                self._cpu.append(time.process_time())
                self._stop.wait(self._interval)

        worker = threading.Thread(target=sample, name="bench-cpu-sampler", daemon=True)
        worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            worker.join()

    def _at(self, moment: float) -> float:
        i = bisect.bisect_left(self._times, moment)
        if i <= 0:
            return self._cpu[0]
        if i >= len(self._times):
            return self._cpu[-1]
        t0, t1 = self._times[i - 1], self._times[i]
        c0, c1 = self._cpu[i - 1], self._cpu[i]
        return c0 + (c1 - c0) * ((moment - t0) / (t1 - t0) if t1 > t0 else 0.0)

    def cpu_between(self, start: float, end: float) -> float:
        return self._at(end) - self._at(start)


class ForeignCpu:
    """CPU used by *other* processes on this machine (busy time in ``/proc/stat`` minus
    this process's and its waited-for children's CPU), per phase: a noise indicator,
    since other work on a 2-core machine inflates every figure."""

    def __init__(self) -> None:
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._snapshot()
        self.phases: list[tuple[str, float]] = []  # (phase, other processes' CPU in cores)

    def _snapshot(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / self._hz  # all but idle and iowait
        own = os.times()
        return time.monotonic(), busy, own.user + own.system + own.children_user + own.children_system

    def phase_ended(self, phase: str) -> None:
        now = self._snapshot()
        if now is not None and self._last is not None and now[0] > self._last[0]:
            foreign = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2]))
            self.phases.append((phase, foreign / (now[0] - self._last[0])))
        self._last = now

    def summary(self) -> tuple[float, str, float]:
        """(mean cores, busiest phase, its cores)."""
        if not self.phases:
            return 0.0, "", 0.0
        phase, worst = max(self.phases, key=lambda p: p[1])
        return sum(c for _, c in self.phases) / len(self.phases), phase, worst


# ---------------------------------------------------------------- profiling

_WAITING = ("acquire", "poll", "select", "recv", "sleep", "wait", "_wait_for_tstate_lock", "run_forever")


@dataclass
class ThreadedProfile:
    """cProfile over the calling thread and every ``concurrent.futures`` work item run
    while active (the handler decides records and runs checks on pool threads, which
    plain cProfile would not see). One ``Profile`` per work item, enabled and disabled
    on the thread that runs it."""

    profiles: list[cProfile.Profile] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def active(self) -> Iterator[None]:
        original: Callable[[Any], None] = futures_thread._WorkItem.run  # type: ignore[attr-defined]
        profiles, lock = self.profiles, self._lock

        def run(work_item: Any) -> None:
            if sys.version_info >= (3, 12):
                # cProfile runs on sys.monitoring: one profiler, already seeing every thread
                # (a second one cannot be enabled, and the work item would never run).
                original(work_item)
                return
            profile = cProfile.Profile()
            profile.enable()
            try:
                original(work_item)
            finally:
                profile.disable()
                with lock:
                    profiles.append(profile)

        setattr(futures_thread._WorkItem, "run", run)  # noqa: B010 - a patch, on purpose
        main = cProfile.Profile()
        main.enable()
        try:
            yield
        finally:
            main.disable()
            setattr(futures_thread._WorkItem, "run", original)  # noqa: B010
            with lock:
                profiles.append(main)

    def stats(self) -> pstats.Stats:
        with self._lock:
            stats = pstats.Stats(self.profiles[0])
            for profile in self.profiles[1:]:
                stats.add(profile)
        return stats


def _package(func: tuple[str, int, str]) -> str:
    filename = func[0]
    if filename == "~":
        if "socket" in func[2]:
            return "socket calls (C; wall time, incl. waiting for the GIL back)"
        return "other C built-ins"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker, name in (("export_preflight/", "export_preflight"), ("functions/preflight/", "app.py")):
        if marker in filename:
            return name
    parts = filename.rsplit("/", 2)
    name = parts[-1].removesuffix(".py")
    if name == "__init__" and len(parts) > 1:
        name = parts[-2]
    return "stdlib: " + name


def _is_waiting(func: tuple[str, int, str]) -> bool:
    return func[0] == "~" and any(word in func[2] for word in _WAITING)


def hot_spots(stats: pstats.Stats, *, top: int = 12) -> tuple[float, list[tuple[str, float]], list[tuple[str, float]]]:
    """(busy seconds, seconds by package, seconds by function), excluding blocking waits
    (lock acquires, selects, socket reads, sleeps), which are time spent off the CPU."""
    by_package: dict[str, float] = defaultdict(float)
    by_function: list[tuple[str, float]] = []
    busy = 0.0
    for func, (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if _is_waiting(func):
            continue
        busy += tottime
        by_package[_package(func)] += tottime
        where = func[0] if func[0] == "~" else func[0].rsplit("site-packages/", 1)[-1].rsplit("/preflight/", 1)[-1]
        by_function.append((f"{where}:{func[1]}({func[2]})" if func[0] != "~" else func[2], tottime))
    packages = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    functions = sorted(by_function, key=lambda kv: -kv[1])[:top]
    return busy, packages, functions


def cumulative(stats: pstats.Stats, wanted: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Cumulative seconds of chosen functions: ``{label: (filename substring, function name)}``.
    Summed over every thread's profile (so nested pool work is counted where it ran)."""
    out: dict[str, float] = {}
    for label, (file_part, name) in wanted.items():
        out[label] = sum(
            ct
            for func, (_cc, _nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
            if func[2] == name and file_part in func[0]
        )
    return out
