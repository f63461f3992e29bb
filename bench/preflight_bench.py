"""``make bench``: the performance benchmark of export-preflight.

Drives the real Lambda handler in-process (``app.lambda_handler`` called directly with
Lambda-shaped SQS events) against the Pleo and e-conomic simulators and moto on
127.0.0.1, with ``--latency-ms`` of injected latency on every simulator request (moto,
i.e. AWS, gets none). Cold start and memory are measured in fresh subprocesses that
use the parent's servers. Everything is measured twice: with the default concurrency
and with ``CHECK_CONCURRENCY=false`` (the naive, one-at-a-time baseline).

Prints every figure with PASS/MISS against the targets and writes docs/performance.md.

    python -m bench.preflight_bench               # full run (< 3 min on 2 cores)
    python -m bench.preflight_bench --quick       # ~35 s, fewer samples; no docs unless --output
    python -m bench.preflight_bench --latency-ms 50
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Quiet before anything imports Powertools (the logger reads the level at construction).
os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# The benchmark empties the ready-jobs queue often (see World.purge_ready_jobs); moto
# otherwise allows one PurgeQueue per 60 s, as SQS does.
os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"

from bench import instrument
from bench.events import sqs_event
from bench.instrument import Call, CallRecorder, Received
from bench.results import (
    CONCURRENT,
    DOC,
    ROOT,
    SEQUENTIAL,
    Baseline,
    BatchProbe,
    BatchResult,
    BenchConfig,
    CallCounts,
    ColdResult,
    Dist,
    Extras,
    ImportProfile,
    MemoryResult,
    Mode,
    ModeResult,
    OwnProcess,
    PathResult,
    ProfileResult,
    SystemPath,
    Target,
    Timebox,
)
from sandbox.lambda_context import LocalLambdaContext
from sandbox.world import CODE_PATHS, Company, Sandbox

# ---------------------------------------------------------------- the world


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@dataclass
class Invocation:
    seconds: float
    start: float
    end: float
    cpu: float  # process CPU during the invocation (handler and servers)
    response: dict[str, Any]
    calls: list[Call]
    requests: list[Received]

    @property
    def failures(self) -> int:
        return len(self.response.get("batchItemFailures", []))


class World:
    """The sandbox plus what the benchmark seeds in it and how it invokes the handler."""

    def __init__(self, sandbox: Sandbox, cfg: BenchConfig) -> None:
        self.sandbox = sandbox
        self.cfg = cfg
        self.recorder = CallRecorder()
        self.recorder.install(
            {f"127.0.0.1:{sandbox.pleo.port}": "pleo"}
            | {f"127.0.0.1:{server.port}": name for name, server in sandbox.accounting.items()}
        )
        self.app = sandbox.app
        self._agreements = iter(range(300_001, 400_000))
        self.pass_company = self.company("bench-pass")
        # barred mapped expense account -> mapped_accounts fails (invalid_configuration)
        self.fail_company = self.company(
            "bench-fail",
            mappings={"journal": 1, "expenseAccount": 9999, "contraAccount": 6800, "vatCodes": ["I25"]},
        )
        self.distinct = [self.company(f"bench-distinct-{i}") for i in range(10)]
        self._sqs = sandbox.aws.client("sqs")
        self._unpurged = 0

    def company(self, slug: str, **configuration: Any) -> Company:
        number = next(self._agreements)
        return self.sandbox.add_company(
            "economic", f"{slug}-{number}", agreement_number=number, configuration=configuration
        )

    def job(self, company: Company) -> dict[str, Any]:
        return self.sandbox.add_job(company)

    def switch(self, mode: Mode) -> None:
        """Settings are read once per process: set the variable, drop the cached runtime."""
        os.environ.update(mode.env)
        self.sandbox.reset_handler_caches()

    def purge_ready_jobs(self) -> None:
        """Empty the ready-jobs queue. moto's SendMessage slows down as a queue grows
        (about 5 ms with 200 messages, 20 ms with 600), which would make the pass path
        look slower the longer the run: the benchmark keeps the queue short, outside
        the timed windows."""
        assert self.sandbox.resources is not None
        self._sqs.purge_queue(QueueUrl=self.sandbox.resources.ready_jobs_queue_url)
        self._unpurged = 0

    @contextlib.contextmanager
    def purging(self, interval: float = 1.0) -> Iterator[None]:
        """Purge the ready-jobs queue every ``interval`` seconds meanwhile (for a child
        process that hands off many jobs; one purge costs moto about 5 ms)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                self.purge_ready_jobs()

        worker = threading.Thread(target=loop, name="bench-purger", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()

    def invoke(self, jobs: list[dict[str, Any]]) -> Invocation:
        if self._unpurged + len(jobs) > 10:
            self.purge_ready_jobs()
        self._unpurged += len(jobs)
        event = sqs_event(jobs)
        context = LocalLambdaContext(timeout_ms=60_000)
        for simulator in self.sandbox.servers:
            simulator.reset_requests()
        with self.recorder.recording() as calls, contextlib.redirect_stdout(_Sink()):  # type: ignore[type-var]
            cpu = time.process_time()
            start = time.perf_counter()
            response = self.app.lambda_handler(event, context)
            end = time.perf_counter()
            cpu = time.process_time() - cpu
        requests = [
            Received(system, r.method, r.path, r.received_at)
            for system, simulator in (("pleo", self.sandbox.pleo), *self.sandbox.accounting.items())
            for r in simulator.requests
        ]
        return Invocation(end - start, start, end, cpu, response, calls, requests)

    def expect(self, invocation: Invocation, jobs: list[dict[str, Any]], status: str) -> None:
        if invocation.failures:
            raise BenchError(f"the handler reported {invocation.failures} batch item failure(s)")
        for job in jobs:
            seen = self.sandbox.pleo.job(job["id"])
            if seen["status"] != status:
                raise BenchError(f"job {job['id']} ended {seen['status']!r}, expected {status!r}")

    @contextlib.contextmanager
    def log_level(self, level: str) -> Iterator[None]:
        self.app.logger.setLevel(level)
        try:
            yield
        finally:
            self.app.logger.setLevel("CRITICAL")


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- warm paths


def run_path(
    world: World, company: Company, label: str, expected_status: str, jobs: int, time_box: float
) -> tuple[PathResult, list[Call]]:
    """One job per invocation, same company (caches warm), a new job (and so a new
    idempotency record) each time. Returns the result and every AWS/HTTP call made,
    warm-up included (for the call counts)."""
    cfg = world.cfg
    every_call: list[Call] = []
    for _ in range(cfg.warmup_jobs):
        job = world.job(company)
        invocation = world.invoke([job])
        world.expect(invocation, [job], expected_status)
        every_call += invocation.calls
    seconds: list[float] = []
    waves_seen: Counter[int] = Counter()
    patterns: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    sums: dict[str, float] = defaultdict(float)
    overheads: list[float] = []
    aws_ops: Counter[str] = Counter()
    connects = world.recorder.connects
    box = Timebox(jobs, cfg.min_warm_jobs, time_box)
    while box.more(len(seconds)):
        job = world.job(company)
        invocation = world.invoke([job])
        world.expect(invocation, [job], expected_status)
        waves = instrument.round_trip_waves(invocation.requests, cfg.latency)
        seconds.append(invocation.seconds)
        waves_seen[len(waves)] += 1
        patterns[instrument.describe_waves(waves)] += 1
        requests.update(r.system for r in invocation.requests)
        for call in invocation.calls:
            if call.kind == "http":
                overheads.append(call.seconds - cfg.latency)
            else:
                aws_ops[call.name] += 1
        for category, value in instrument.attribute(
            invocation.start, invocation.end, invocation.calls, len(waves), cfg.latency
        ).items():
            sums[category] += value
        every_call += invocation.calls
    done = len(seconds)
    round_trips = waves_seen.most_common(1)[0][0]
    result = PathResult(
        label=label,
        latency=Dist(tuple(seconds)),
        round_trips=round_trips,
        round_trip_counts=waves_seen,
        critical_path=patterns.most_common(1)[0][0],
        floor=round_trips * cfg.latency,
        requests_per_job={system: requests[system] / done for system in ("pleo", "economic")},
        attribution={k: v / done for k, v in sums.items()},
        http_overhead_per_request=statistics.fmean(overheads) if overheads else 0.0,
        aws_per_job={k: v / done for k, v in sorted(aws_ops.items())},
        aws_connects_per_job=(world.recorder.connects - connects) / done,
    )
    return result, every_call


def count_calls(company: Company, all_calls: list[Call], warm_jobs: int) -> CallCounts:
    """AWS reads of one company's configuration and secrets: from the first job after the
    runtime was (re)built (cold caches) and over the warm jobs only (last ``warm_jobs``)."""
    secrets = {
        company.configuration["pleoCredentialsSecretId"],
        company.configuration["accountingCredentialsSecretId"],
    }
    # every job makes exactly one idempotency PutItem; use it to find where the warm jobs start
    starts = [i for i, c in enumerate(all_calls) if c.name == "dynamodb PutItem" and "idempotency" in c.detail]
    warm_from = starts[-warm_jobs] if len(starts) >= warm_jobs else 0
    warm = all_calls[warm_from:]

    def secret_reads(calls: list[Call]) -> dict[str, int]:
        found = Counter(c.detail for c in calls if c.name == "secretsmanager GetSecretValue")
        return {secret: found.get(secret, 0) for secret in sorted(secrets)}

    def get_items(calls: list[Call]) -> dict[str, int]:
        return dict(Counter(c.detail for c in calls if c.name == "dynamodb GetItem"))

    other = Counter(f"{c.name} ({c.detail})" for c in warm if c.kind == "aws")
    return CallCounts(
        jobs=warm_jobs,
        secret_reads_warm=secret_reads(warm),
        secret_reads_all=secret_reads(all_calls),
        get_item_warm=get_items(warm),
        get_item_all=get_items(all_calls),
        other_per_job={k: v / warm_jobs for k, v in sorted(other.items())},
    )


# ---------------------------------------------------------------- batch


UNKNOWN_ACCOUNT = "7777"  # in no simulator's chart of accounts: the fail path fails mapped_accounts


def run_systems(world: World, jobs: int = 5) -> list[SystemPath]:
    """Per registered accounting system: a passing and a failing company (an unknown mapped
    expense account), one warm-up job each (token refresh, caches), then ``jobs`` warm jobs,
    one per invocation."""
    sandbox = world.sandbox
    assert sandbox.resources is not None
    rows = []
    for system, server in sandbox.accounting.items():
        if hasattr(server, "enforce_rate_limits"):  # a rate window (Fortnox: 25 per 5 s) is not what we measure
            server.enforce_rate_limits = False
        passing = sandbox.add_company(system, f"bench-{system}-pass")
        failing = sandbox.add_company(system, f"bench-{system}-fail")
        mappings = {**failing.configuration["mappings"], "expenseAccount": UNKNOWN_ACCOUNT}
        sandbox.aws.put_company_configuration(sandbox.resources, {**failing.configuration, "mappings": mappings})
        for path, company, status in (("pass", passing, "in_progress"), ("fail", failing, "failed")):
            world.invoke([world.job(company)])
            counts: Counter[str] = Counter()
            seconds, waves = [], []
            for _ in range(jobs):
                job = world.job(company)
                invocation = world.invoke([job])
                world.expect(invocation, [job], status)
                counts.update(r.system for r in invocation.requests)
                counts.update("aws" for call in invocation.calls if call.kind == "aws")
                seconds.append(invocation.seconds)
                waves.append(len(instrument.round_trip_waves(invocation.requests, world.cfg.latency)))
            calls = {party: counts[party] / jobs for party in ("pleo", system, "aws")}
            rows.append(SystemPath(system, path, calls, Dist(tuple(seconds)), statistics.median(waves)))
    return rows


def run_batch(world: World, box: Timebox, size: int = 10) -> BatchResult:
    """Per repetition: 10 new companies; their first batch (caches cold), then a batch of
    new jobs of the same 10 (caches warm) and two jobs alone; plus one job of a company
    never seen before (cold single)."""
    warm_batch, warm_single, cold_batch, cold_single, batch_cpu, single_cpu = [], [], [], [], [], []
    http_in_batch: list[float] = []
    aws_in_batch: list[float] = []
    max_economic = max_http = 0
    cold_aws: Counter[str] = Counter()
    rep = 0
    while box.more(rep):
        companies = [world.company(f"bench-batch{rep}-{i}") for i in range(size)]
        jobs = [world.job(c) for c in companies]
        invocation = world.invoke(jobs)
        world.expect(invocation, jobs, "in_progress")
        cold_batch.append(invocation.seconds)
        cold_aws.update(c.name for c in invocation.calls if c.kind == "aws")

        jobs = [world.job(c) for c in companies]
        invocation = world.invoke(jobs)
        world.expect(invocation, jobs, "in_progress")
        warm_batch.append(invocation.seconds)
        batch_cpu.append(invocation.cpu)
        latency = world.cfg.latency
        max_economic = max(max_economic, instrument.max_concurrent_at_server(invocation.requests, latency, "economic"))
        max_http = max(max_http, instrument.max_concurrent_at_server(invocation.requests, latency))
        http_in_batch += [c.seconds for c in invocation.calls if c.kind == "http"]
        aws_in_batch += [c.seconds for c in invocation.calls if c.kind == "aws"]
        aws_calls = sum(1 for c in invocation.calls if c.kind == "aws")
        http_requests = sum(1 for c in invocation.calls if c.kind == "http")

        for company in (companies[rep % size], companies[(rep + 5) % size]):
            job = world.job(company)
            invocation = world.invoke([job])
            world.expect(invocation, [job], "in_progress")
            warm_single.append(invocation.seconds)
            single_cpu.append(invocation.cpu)

        fresh = world.company(f"bench-single{rep}")
        job = world.job(fresh)
        invocation = world.invoke([job])
        world.expect(invocation, [job], "in_progress")
        cold_single.append(invocation.seconds)
        rep += 1
    return BatchResult(
        size=size,
        warm_batch=Dist(tuple(warm_batch)),
        warm_single=Dist(tuple(warm_single)),
        cold_batch=Dist(tuple(cold_batch)),
        cold_single=Dist(tuple(cold_single)),
        warm_batch_cpu=Dist(tuple(batch_cpu)),
        warm_single_cpu=Dist(tuple(single_cpu)),
        max_economic_in_flight=max_economic,
        max_http_in_flight=max_http,
        http_seconds_batch=statistics.fmean(http_in_batch),
        aws_seconds_batch=statistics.fmean(aws_in_batch),
        cold_batch_aws={k: v / rep for k, v in sorted(cold_aws.items())},
        aws_calls_batch=aws_calls,
        http_requests_batch=http_requests,
    )


def probe_batch(world: World, *, factor: float = 5.0, reps: int = 2, size: int = 10) -> BatchProbe:
    """Warm batch vs one job at ``factor`` × the latency (``Sandbox`` latency is per
    simulator and may change at run time); the default latency is restored after."""
    sandbox = world.sandbox
    latency = world.cfg.latency * factor
    companies = [world.company(f"bench-probe-{i}") for i in range(size)]
    jobs = [world.job(c) for c in companies]
    world.expect(world.invoke(jobs), jobs, "in_progress")  # warm the caches for these companies
    batches: list[float] = []
    singles: list[float] = []
    waves: list[int] = []
    single_waves = in_flight = 0
    sandbox.pleo.latency = sandbox.economic.latency = latency
    try:
        for rep in range(reps):
            jobs = [world.job(c) for c in companies]
            invocation = world.invoke(jobs)
            world.expect(invocation, jobs, "in_progress")
            batches.append(invocation.seconds)
            waves = [len(w) for w in instrument.round_trip_waves(invocation.requests, latency)]
            in_flight = max(in_flight, instrument.max_concurrent_at_server(invocation.requests, latency, "economic"))
            job = world.job(companies[rep])
            invocation = world.invoke([job])
            world.expect(invocation, [job], "in_progress")
            singles.append(invocation.seconds)
            single_waves = len(instrument.round_trip_waves(invocation.requests, latency))
    finally:
        sandbox.pleo.latency = sandbox.economic.latency = world.cfg.latency
    return BatchProbe(
        latency, Dist(tuple(batches)), Dist(tuple(singles)), waves, single_waves, in_flight, concurrency_limits()
    )


def concurrency_limits() -> dict[str, int]:
    """The handler's concurrency limits as the code now sets them (read, not changed)."""
    import inspect

    from export_preflight import http, runtime
    from export_preflight.settings import get_settings

    limits = {"MAX_PARALLEL_RECORDS (record threads)": get_settings().max_parallel_records}
    if hasattr(runtime, "CHECK_WORKERS"):
        limits["CHECK_WORKERS (check threads, shared by the records)"] = int(runtime.CHECK_WORKERS)
    default = inspect.signature(http.new_client).parameters.get("max_connections")
    if default is not None and isinstance(default.default, int):
        limits["connections per HTTP client (new_client max_connections)"] = default.default
    return limits


# ---------------------------------------------------------------- subprocesses


def spawn(
    spec: dict[str, Any], *, python_flags: tuple[str, ...] = (), env: dict[str, str | None] | None = None
) -> tuple[float, dict[str, Any], str]:
    """Run ``bench.child`` in a fresh interpreter; returns (spawn time, result, stderr).

    The child is started through ``/bin/sh`` (which forks it, then waits): a process
    made by fork + exec straight from this one would report this process's peak RSS
    (moto, the simulators) as its own ``ru_maxrss``. The shell costs about a millisecond
    of the measured start-up, for the baseline and the handler alike."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
        spec_path.write_text(json.dumps(spec))
        command = [sys.executable, *python_flags, "-m", "bench.child", str(spec_path), str(result_path)]
        started = time.monotonic()
        done = subprocess.run(  # noqa: S603 - our own interpreter and module, arguments we built
            ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
            cwd=ROOT,
            env=_child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=150,
            check=False,
        )
        if done.returncode != 0 or not result_path.exists():
            raise BenchError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-2000:]}")
        result = json.loads(result_path.read_text())
        result["profile_stats"] = {group["label"]: pstats.Stats(group["path"]) for group in spec.get("profiles", [])}
        return started, result, done.stderr


class ChildCode:
    """The code the subprocesses import: a snapshot of the layer package and the function
    module, copied without any ``__pycache__``. Children run with
    ``PYTHONDONTWRITEBYTECODE=1``, so the application's own modules are compiled from
    source in every fresh process, as in a Lambda deployment (the function and layer
    code ship as ``.py`` files on a read-only file system), whatever the state of the
    working tree; dependencies load from the bytecode pip compiled at install time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = self._copy(root / "source")
        self.cached = self._copy(root / "cached")  # gets __pycache__ (see run_cached_imports)

    @staticmethod
    def _copy(target: Path) -> list[str]:
        paths = []
        for path in CODE_PATHS:
            destination = target / path.name / path.parent.name
            shutil.copytree(path, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            paths.append(str(destination))
        return paths


CHILD_CODE: ChildCode | None = None


def _child_env(overrides: dict[str, str | None] | None) -> dict[str, str]:
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name, value in (overrides or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def _handler_spec(
    events: list[dict[str, Any]],
    warm_events: list[dict[str, Any]] | None = None,
    profiles: list[dict[str, Any]] | None = None,
    *,
    code_paths: list[str] | None = None,
) -> dict[str, Any]:
    assert CHILD_CODE is not None
    return {
        "mode": "handler",
        "code_paths": code_paths or CHILD_CODE.source,
        "events": events,
        "warm_events": warm_events or [],
        "profiles": profiles or [],
    }


def _check_jobs(world: World, expected: list[tuple[dict[str, Any], str]], who: str) -> None:
    for job, status in expected:
        if world.sandbox.pleo.job(job["id"])["status"] != status:
            raise BenchError(f"{who}: job {job['id']} did not end {status}")


def run_cold(world: World, mode: Mode) -> ColdResult:
    """Fresh processes: spawn -> imports -> runtime -> first job decided."""
    to_decision: list[float] = []
    to_main: list[float] = []
    imports: list[float] = []
    inits: list[float] = []
    firsts: list[float] = []
    plan = world.cfg.plan(mode)
    box = Timebox(plan.cold_reps, 2, plan.cold_seconds)
    while box.more(len(to_decision)):
        first = world.job(world.pass_company)
        world.purge_ready_jobs()
        started, result, _ = spawn(_handler_spec([sqs_event([first])]))
        if result["first_failures"]:
            raise BenchError("the cold-start child reported batch item failures")
        _check_jobs(world, [(first, "in_progress")], "cold-start child")
        to_decision.append(result["t_decided"] - started)
        to_main.append(result["t_main"] - started)
        imports.append(result["import_s"])
        inits.append(result["init_s"])
        firsts.append(result["first_invocation_s"])
    return ColdResult(
        to_first_decision=Dist(tuple(to_decision)),
        to_main=Dist(tuple(to_main)),
        import_app=Dist(tuple(imports)),
        init_runtime=Dist(tuple(inits)),
        first_invocation=Dist(tuple(firsts)),
    )


def run_own_process(
    world: World, mode: Mode, *, profile_jobs: int = 0
) -> tuple[OwnProcess | None, list[ProfileResult]]:
    """The warm paths and the batch again, with the handler in a child process (one
    invocation each) while this process serves; this process's CPU is sampled to see
    how busy the servers (moto and the simulators, under one GIL) were. With
    ``profile_jobs``, the child then profiles that many warm jobs of each path."""
    plan = world.cfg.plan(mode)
    if not plan.own_warm_jobs:
        return None, []
    items: list[dict[str, Any]] = []
    expected: list[tuple[dict[str, Any], str]] = []

    def event(jobs: list[dict[str, Any]], status: str) -> dict[str, Any]:
        expected.extend((job, status) for job in jobs)
        return sqs_event(jobs)

    paths = (("pass", world.pass_company, "in_progress"), ("fail", world.fail_company, "failed"))
    for label, company, status in paths:
        items.append({"label": "warm-up", "event": event([world.job(company)], status)})
        for _ in range(plan.own_warm_jobs):
            items.append({"label": label, "event": event([world.job(company)], status)})
    for rep in range(plan.own_batch_reps):
        companies = [world.company(f"bench-own{rep}-{i}") for i in range(10)]
        items.append({"label": "cold_batch", "event": event([world.job(c) for c in companies], "in_progress")})
        items.append({"label": "warm_batch", "event": event([world.job(c) for c in companies], "in_progress")})
        for company in (companies[rep % 10], companies[(rep + 5) % 10]):
            items.append({"label": "single", "event": event([world.job(company)], "in_progress")})
    profiles = [
        {
            "label": label,
            "events": [event([world.job(company)], status) for _ in range(profile_jobs)],
            "path": "",  # set below, inside the child's temporary directory
        }
        for label, company, status in paths
        if profile_jobs
    ]
    first = world.job(world.pass_company)
    spec = {
        **_handler_spec([event([first], "in_progress")], items, profiles),
        "record_labels": ["pass", "fail"],
        "hosts": world.recorder.hosts,
    }
    for simulator in (world.sandbox.pleo, world.sandbox.economic):
        simulator.reset_requests()
    world.purge_ready_jobs()
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        for group in profiles:
            group["path"] = str(Path(tmp, f"{group['label']}.pstats"))
        with instrument.CpuSampler().running() as sampler, world.purging():
            _, result, _ = spawn(spec)
    if result["first_failures"]:
        raise BenchError("the own-process child reported batch item failures")
    _check_jobs(world, expected, "own-process child")
    seconds: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    handler_cpu: dict[str, list[float]] = defaultdict(list)
    requests = [
        Received(system, r.method, r.path, r.received_at)
        for system, simulator in (("pleo", world.sandbox.pleo), ("economic", world.sandbox.economic))
        for r in simulator.requests
    ]
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    waves_seen: dict[str, Counter[int]] = defaultdict(Counter)
    for item in result["warm"]:
        label = item["label"]
        if label == "warm-up":
            continue
        seconds[label].append(item["s"])
        cpu[label].append(sampler.cpu_between(item["t0"], item["t1"]))
        handler_cpu[label].append(item["cpu"])
        if "calls" in item:
            mine = [r for r in requests if item["w0"] <= r.received_at <= item["w1"]]
            waves = len(instrument.round_trip_waves(mine, world.cfg.latency))
            waves_seen[label][waves] += 1
            calls = [Call(*c) for c in item["calls"]]
            for category, value in instrument.attribute(
                item["p0"], item["p1"], calls, waves, world.cfg.latency
            ).items():
                sums[label][category] += value
    own = OwnProcess(
        seconds={k: Dist(tuple(v)) for k, v in seconds.items()},
        server_cpu={k: statistics.fmean(v) for k, v in cpu.items()},
        handler_cpu={k: statistics.fmean(v) for k, v in handler_cpu.items()},
        attribution={k: {c: v / len(seconds[k]) for c, v in cats.items()} for k, cats in sums.items()},
        round_trips={k: c.most_common(1)[0][0] for k, c in waves_seen.items()},
    )
    profiled = result["profiled"]
    return own, [
        summarise_profile(label, stats, profiled[label]["seconds"], profiled[label]["work_items"])
        for label, stats in result["profile_stats"].items()
    ]


def run_memory(world: World, mode: Mode) -> MemoryResult:
    """Peak RSS of a fresh process whose first invocation is a batch of 10 distinct companies."""
    peaks: list[float] = []
    hwms: list[float] = []
    inits: list[float] = []
    seconds: list[float] = []
    plan = world.cfg.plan(mode)
    box = Timebox(plan.memory_reps, 1, plan.memory_seconds)
    while box.more(len(peaks)):
        jobs = [world.job(c) for c in world.distinct]
        world.purge_ready_jobs()
        _, result, _ = spawn(_handler_spec([sqs_event(jobs)]))
        if result["first_failures"]:
            raise BenchError("the memory child reported batch item failures")
        _check_jobs(world, [(job, "in_progress") for job in jobs], "memory child")
        peaks.append(result["rss_mb"])
        hwms.append(result["hwm_mb"])
        inits.append(result["rss_init_mb"])
        seconds.append(result["first_invocation_s"])
    return MemoryResult(Dist(tuple(peaks)), Dist(tuple(hwms)), Dist(tuple(inits)), Dist(tuple(seconds)))


def run_cached_imports(cfg: BenchConfig) -> tuple[Dist, Dist]:
    """Import + init with and without the application's own bytecode, interleaved fresh
    processes (one child first writes ``__pycache__`` into the second copy of the code).
    Returns (from source, bytecode cached)."""
    assert CHILD_CODE is not None
    cached = {**_handler_spec([], code_paths=CHILD_CODE.cached), "import_only": True}
    source = {**_handler_spec([]), "import_only": True}
    spawn(cached, env={"PYTHONDONTWRITEBYTECODE": None})
    from_source: list[float] = []
    with_bytecode: list[float] = []
    box = Timebox(3, 2, cfg.baseline_seconds)
    while box.more(len(from_source)):
        for spec, into in ((source, from_source), (cached, with_bytecode)):
            _, result, _ = spawn(spec)
            into.append(result["import_s"] + result["init_s"])
    return Dist(tuple(from_source)), Dist(tuple(with_bytecode))


def run_baseline(cfg: BenchConfig) -> Baseline:
    imports: list[float] = []
    ready: list[float] = []
    rss: list[float] = []
    hwm: list[float] = []
    box = Timebox(cfg.baseline_reps, 3, cfg.baseline_seconds)
    while box.more(len(imports)):
        started, result, _ = spawn({"mode": "baseline"})
        imports.append(result["import_s"])
        ready.append(result["t_ready"] - started)
        rss.append(result["rss_mb"])
        hwm.append(result["hwm_mb"])
    return Baseline(Dist(tuple(imports)), Dist(tuple(ready)), Dist(tuple(rss)), Dist(tuple(hwm)))


def profile_imports() -> ImportProfile:
    """``-X importtime`` of a child that only imports the handler and builds the runtime:
    self time by top-level package (module bodies included, e.g. the DynamoDB client the
    idempotency layer builds at import), and a cProfile of ``get_runtime()``."""
    spec = {**_handler_spec([]), "profile_init": True, "import_only": True}
    _, result, stderr = spawn(spec, python_flags=("-X", "importtime"))
    by_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line.split("|")
        try:
            self_us = int(parts[0].split(":")[1])
        except (IndexError, ValueError):
            continue
        name = parts[2].strip()
        top = name.split(".")[0]
        if top in ("bench",):
            continue
        by_package[top] += self_us / 1000
    total = sum(by_package.values())
    return ImportProfile(
        sorted(by_package.items(), key=lambda kv: -kv[1])[:12],
        total,
        [(name, calls, seconds) for name, calls, seconds in result.get("init_profile", [])],
    )


# ---------------------------------------------------------------- diagnosis extras


def summarise_profile(label: str, stats: pstats.Stats, seconds: list[float], work_items: int) -> ProfileResult:
    n = len(seconds)
    busy, packages, functions = instrument.hot_spots(stats, top=100)
    cumulative = instrument.cumulative(
        stats,
        {
            "Powertools idempotency: save in progress (PutItem)": (
                "idempotency/persistence/base.py",
                "save_inprogress",
            ),
            "Powertools idempotency: save success (UpdateItem)": ("idempotency/persistence/base.py", "save_success"),
            "hand-off: SQS SendMessage": ("export_preflight/aws.py", "hand_off"),
            "every AWS call (botocore client side + moto)": ("botocore/client.py", "_make_api_call"),
            "HTTP requests (httpx + simulators; parallel requests summed)": ("httpx/_client.py", "send"),
            "PreflightService.decide": ("export_preflight/service.py", "decide"),
            "run_checks (waits for the checks)": ("export_preflight/checks.py", "run_checks"),
        },
    )
    return ProfileResult(
        label=label,
        jobs=n,
        work_items_per_job=work_items / n,
        median_profiled=statistics.median(seconds),
        busy_per_job=busy / n,
        packages=[(k, v / n) for k, v in packages],
        functions=[(k, v / n) for k, v in functions],
        cumulative={k: v / n for k, v in cumulative.items()},
    )


def measure_logging(world: World) -> Dist:
    """The fail path with the logger at INFO (the production default), stdout to a sink."""
    seconds = []
    with world.log_level("INFO"):
        for _ in range(world.cfg.logging_jobs):
            job = world.job(world.fail_company)
            invocation = world.invoke([job])
            world.expect(invocation, [job], "failed")
            seconds.append(invocation.seconds)
    return Dist(tuple(seconds))


def measure_handoff() -> float:
    """Microseconds for one submit + result on an idle, warm thread pool."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(200):
            pool.submit(int).result()
        started = time.perf_counter()
        rounds = 2000
        for _ in range(rounds):
            pool.submit(int).result()
        return (time.perf_counter() - started) / rounds * 1e6


# ---------------------------------------------------------------- orchestration


def run_mode(world: World, mode: Mode, log: Any) -> tuple[ModeResult, list[ProfileResult]]:
    cfg = world.cfg
    plan = cfg.plan(mode)
    name = mode.name.split(" ")[0]
    world.switch(mode)
    log(f"[{name}] warm pass path: {cfg.warmup_jobs} warm-up + {plan.warm_jobs} jobs, one per invocation")
    passed, pass_calls = run_path(world, world.pass_company, "pass", "in_progress", plan.warm_jobs, plan.warm_seconds)
    calls = count_calls(world.pass_company, pass_calls, passed.latency.n)
    log(f"[{name}] warm fail path: {cfg.warmup_jobs} warm-up + {plan.warm_jobs} jobs")
    failed, _ = run_path(world, world.fail_company, "fail", "failed", plan.warm_jobs, plan.warm_seconds)
    log(f"[{name}] batch of 10 distinct companies vs one job: {plan.batch_reps} repetition(s)")
    batch = run_batch(world, Timebox(plan.batch_reps, 2, plan.batch_seconds))
    if mode.concurrency and cfg.latency > 0:
        log(f"[{name}] batch vs one job at 5 × the latency ({cfg.latency_ms * 5:g} ms)")
        batch.probe = probe_batch(world, reps=1 if cfg.quick else 2)
    log(f"[{name}] cold start: {plan.cold_reps} fresh process(es)")
    cold = run_cold(world, mode)
    profile_jobs = cfg.profile_jobs if mode.concurrency else 0
    if plan.own_warm_jobs:
        log(
            f"[{name}] handler in its own process: {plan.own_warm_jobs} jobs per path, "
            f"{plan.own_batch_reps} batch(es)" + (f", cProfile of {profile_jobs} jobs per path" if profile_jobs else "")
        )
    own, profiles = run_own_process(world, mode, profile_jobs=profile_jobs)
    log(f"[{name}] memory: {plan.memory_reps} fresh process(es), one batch of 10 distinct companies")
    memory = run_memory(world, mode)
    return ModeResult(mode, passed, failed, batch, calls, cold, own, memory), profiles


def targets(conc: ModeResult, seq: ModeResult, baseline: Baseline, config_table: str) -> list[Target]:
    secrets_max = max(conc.calls.secret_reads_all.values(), default=0)
    config_reads = conc.calls.get_item_all.get(config_table, 0)
    return [
        Target("warm fail path, median ≤ 1.15 × floor", conc.failed.ratio, 1.15, "× floor", key="fail"),
        Target("warm pass path, median ≤ 1.15 × floor", conc.passed.ratio, 1.15, "× floor", key="pass"),
        Target("batch of 10 distinct companies ≤ 1.5 × one job (warm)", conc.batch.warm_ratio, 1.5, "×", key="batch"),
        Target(
            "handler import+init ≤ 1.5 × bare import boto3, httpx",
            conc.cold.import_init.median / baseline.import_s.median,
            1.5,
            "×",
            key="import",
        ),
        Target("GetSecretValue per secret per container per TTL ≤ 1", secrets_max, 1, "reads", key="secrets"),
        Target("company config GetItem per company per TTL ≤ 1", config_reads, 1, "reads", key="config"),
        Target("peak RSS, fresh process, batch of 10 ≤ 120 MB", conc.memory.peak_rss_mb.median, 120, "MB", key="rss"),
        Target(
            "concurrent ≥ 2 × faster than sequential (fail path)",
            seq.failed.latency.median / conc.failed.latency.median,
            2.0,
            "×",
            lower_is_better=False,
            key="speedup",
        ),
    ]


def cpu_probe() -> float:
    """Seconds for a fixed pure-Python loop (best of 3): a speed reference, so that runs
    on the same machine at different times (virtual CPUs vary) can be compared."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def quiet() -> None:
    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    for name in ("werkzeug", "moto", "botocore", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="injected per-request latency (default 20)")
    parser.add_argument("--quick", action="store_true", help="fewer samples (~35 s); docs only with --output")
    parser.add_argument(
        "--jobs", type=int, default=0, help="warm jobs per path and mode (default 100 concurrent, 60 sequential)"
    )
    parser.add_argument("--output", help=f"where to write the report (default {DOC.relative_to(ROOT)})")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    cfg = BenchConfig.from_args(args)
    quiet()
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    probe_start = cpu_probe()
    if load_start > 0.5:
        print(
            f"warning: 1-minute load average {load_start:.2f} before the start: other processes are using the "
            "CPU (2 cores here); the figures will be inflated",
            file=sys.stderr,
        )

    foreign = instrument.ForeignCpu()
    current = ["set-up"]

    def log(text: str) -> None:
        foreign.phase_ended(current[0])
        current[0] = text
        print(f"  {time.monotonic() - started:6.1f} s  {text}", flush=True)

    from bench import report

    quick = " (quick)" if cfg.quick else ""
    print(f"export-preflight benchmark: latency {cfg.latency_ms:g} ms per simulator request{quick}")
    global CHILD_CODE
    with (
        tempfile.TemporaryDirectory(prefix="bench-code-") as code_root,
        Sandbox(latency=cfg.latency, visibility_timeout=30) as sandbox,
    ):
        CHILD_CODE = ChildCode(Path(code_root))
        world = World(sandbox, cfg)
        extras = Extras()
        conc, extras.profiles = run_mode(world, CONCURRENT, log)
        log("[concurrent] fail path with the logger at INFO; one thread-pool hand-off")
        extras.logging_info_fail = measure_logging(world)
        extras.handoff_us = measure_handoff()
        log("[concurrent] per accounting system: pass and fail path, 5 warm jobs each")
        extras.systems = run_systems(world)
        seq, _ = run_mode(world, SEQUENTIAL, log)
        log("baseline: bare `import boto3, httpx` in fresh processes; -X importtime of the handler")
        baseline = run_baseline(cfg)
        extras.imports = profile_imports()
        if not cfg.quick:
            extras.source_import_init, extras.cached_import_init = run_cached_imports(cfg)
        world.switch(CONCURRENT)
        assert sandbox.resources is not None
        config_table = sandbox.resources.company_config_table
    elapsed = time.monotonic() - started
    foreign.phase_ended(current[0])
    mean_foreign, busiest, worst = foreign.summary()
    if worst > 0.25:
        print(
            f"warning: other processes used {worst:.2f} cores during '{busiest}' ({mean_foreign:.2f} on average): "
            "the figures are inflated; re-run on a quiet machine",
            file=sys.stderr,
        )
    checks = targets(conc, seq, baseline, config_table)
    meta = {
        **machine(),
        "load": f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end",
        "probe": f"{probe_start * 1000:.0f} ms at the start, {cpu_probe() * 1000:.0f} ms at the end",
        "foreign": f"{mean_foreign:.2f} cores on average over the phases, at most {worst:.2f} ({busiest})",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench.preflight_bench", *(sys.argv[1:] if argv is None else argv)])
        + ("  (= make bench)" if not (sys.argv[1:] if argv is None else argv) else ""),
        "elapsed": f"{elapsed:.0f} s",
    }
    print()
    print(report.text(cfg, meta, conc, seq, baseline, extras, checks))
    if cfg.output is not None:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
        cfg.output.write_text(report.markdown(cfg, meta, conc, seq, baseline, extras, checks))
        print(f"wrote {cfg.output.relative_to(ROOT) if cfg.output.is_relative_to(ROOT) else cfg.output}")
    print(f"total {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
