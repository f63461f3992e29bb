"""What the benchmark measures and how much: the configuration, the run modes and the
result records (all plain dataclasses; times in seconds, sizes in MB)."""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Plan:
    """How much to measure in one mode. Each loop also has a time box: past it, the loop
    stops as soon as it has its minimum (so a busy machine cannot push the run far past
    3 minutes; the reported n shows when that happened)."""

    warm_jobs: int  # per path (concurrent >= 100: the call counts are per 100 warm jobs)
    batch_reps: int
    cold_reps: int
    memory_reps: int
    own_warm_jobs: int  # per path, handler in its own process (0: skip that cross-check)
    own_batch_reps: int
    warm_seconds: float = 15.0  # per path
    batch_seconds: float = 12.0
    cold_seconds: float = 12.0
    memory_seconds: float = 9.0


class Timebox:
    """``while box.more(done):`` runs until ``target`` is reached, or until ``seconds``
    have passed and at least ``minimum`` are done."""

    def __init__(self, target: int, minimum: int, seconds: float) -> None:
        self.target, self.minimum, self.seconds = target, min(minimum, target), seconds
        self.started = time.monotonic()

    def more(self, done: int) -> bool:
        if done >= self.target:
            return False
        return done < self.minimum or time.monotonic() - self.started < self.seconds


@dataclass(frozen=True)
class BenchConfig:
    latency_ms: float
    quick: bool
    concurrent: Plan
    sequential: Plan
    warmup_jobs: int
    min_warm_jobs: int
    baseline_reps: int
    baseline_seconds: float
    profile_jobs: int
    logging_jobs: int
    output: Path | None

    @property
    def latency(self) -> float:
        return self.latency_ms / 1000

    def plan(self, mode: Mode) -> Plan:
        return self.concurrent if mode.concurrency else self.sequential

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BenchConfig:
        quick = args.quick
        output = Path(args.output) if args.output else (None if quick or args.no_docs else DOC)
        if quick:
            concurrent = Plan(warm_jobs=20, batch_reps=1, cold_reps=2, memory_reps=1, own_warm_jobs=4, own_batch_reps=1)
            sequential = Plan(warm_jobs=10, batch_reps=1, cold_reps=1, memory_reps=1, own_warm_jobs=0, own_batch_reps=0)
        else:
            concurrent = Plan(
                warm_jobs=100,
                batch_reps=5,
                cold_reps=5,
                memory_reps=3,
                own_warm_jobs=20,
                own_batch_reps=3,
                warm_seconds=16,
                batch_seconds=11,
                cold_seconds=12,
                memory_seconds=9,
            )
            sequential = Plan(
                warm_jobs=60,
                batch_reps=3,
                cold_reps=3,
                memory_reps=1,
                own_warm_jobs=15,
                own_batch_reps=2,
                warm_seconds=14,
                batch_seconds=12,
                cold_seconds=8,
                memory_seconds=5,
            )
        if args.jobs:
            concurrent = replace(concurrent, warm_jobs=args.jobs)
            sequential = replace(sequential, warm_jobs=args.jobs)
        return cls(
            latency_ms=args.latency_ms,
            quick=quick,
            concurrent=concurrent,
            sequential=sequential,
            warmup_jobs=3,
            min_warm_jobs=10 if quick else 50,
            baseline_reps=2 if quick else 5,
            baseline_seconds=6 if quick else 8,
            profile_jobs=4 if quick else 20,
            logging_jobs=6 if quick else 30,
            output=output,
        )


@dataclass(frozen=True)
class Mode:
    name: str
    concurrency: bool

    @property
    def env(self) -> dict[str, str]:
        return {"CHECK_CONCURRENCY": "true" if self.concurrency else "false"}


CONCURRENT = Mode("concurrent (default)", True)
SEQUENTIAL = Mode("sequential (CHECK_CONCURRENCY=false)", False)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class Dist:
    """Seconds, summarised."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    def pct(self, q: float) -> float:
        ordered = sorted(self.values)
        if len(ordered) == 1:
            return ordered[0]
        pos = (len(ordered) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    @property
    def p95(self) -> float:
        return self.pct(0.95)


@dataclass
class PathResult:
    label: str  # "pass" / "fail"
    latency: Dist
    round_trips: int  # the modal number of sequential round trips
    round_trip_counts: Counter[int]
    critical_path: str  # the modal wave pattern
    floor: float
    requests_per_job: dict[str, float]  # by system
    attribution: dict[str, float]  # mean seconds per job by category
    http_overhead_per_request: float  # mean client-side duration minus the injected latency
    aws_per_job: dict[str, float]  # operation -> calls per job (measured jobs)
    aws_connects_per_job: float  # new TCP connections botocore opened per job

    @property
    def ratio(self) -> float:
        return self.latency.median / self.floor if self.floor else float("nan")


@dataclass
class CallCounts:
    jobs: int  # warm jobs counted
    secret_reads_warm: dict[str, int]  # GetSecretValue by secret id, warm jobs only
    secret_reads_all: dict[str, int]  # including the container's first (cold-cache) jobs
    get_item_warm: dict[str, int]  # GetItem by table
    get_item_all: dict[str, int]
    other_per_job: dict[str, float]  # every AWS operation (by name and table/queue) per warm job


@dataclass
class BatchResult:
    size: int
    warm_batch: Dist
    warm_single: Dist
    cold_batch: Dist
    cold_single: Dist
    warm_batch_cpu: Dist  # process CPU (handler + servers, one GIL) per warm batch
    warm_single_cpu: Dist
    max_economic_in_flight: int
    max_http_in_flight: int
    http_seconds_batch: float  # mean client-side duration of an HTTP request inside a warm batch
    aws_seconds_batch: float  # mean duration of an AWS call inside a warm batch
    cold_batch_aws: dict[str, float]  # per batch
    aws_calls_batch: int  # in one warm batch
    http_requests_batch: int
    probe: BatchProbe | None = None

    @property
    def warm_ratio(self) -> float:
        return self.warm_batch.median / self.warm_single.median

    @property
    def cold_ratio(self) -> float:
        return self.cold_batch.median / self.cold_single.median


@dataclass
class BatchProbe:
    """The warm batch and one job again at a much higher injected latency, where the
    servers' CPU no longer dominates: what is left is the batch's round-trip structure."""

    latency: float
    batch: Dist
    single: Dist
    batch_waves: list[int]  # requests per round trip of the batch (last repetition)
    single_round_trips: int
    max_economic_in_flight: int
    limits: dict[str, int]  # the handler's concurrency limits as configured (name -> value)

    @property
    def ratio(self) -> float:
        return self.batch.median / self.single.median


@dataclass
class ColdResult:
    to_first_decision: Dist  # process spawn -> first job decided
    to_main: Dist  # process spawn -> first statement (interpreter start-up)
    import_app: Dist
    init_runtime: Dist
    first_invocation: Dist

    @property
    def import_init(self) -> Dist:
        return Dist(tuple(a + b for a, b in zip(self.import_app.values, self.init_runtime.values, strict=True)))


@dataclass
class OwnProcess:
    """Warm figures with the handler in a process of its own (the servers stay in the
    parent): no GIL shared between the handler and moto/the simulators."""

    seconds: dict[str, Dist]  # by label: pass, fail, cold_batch, warm_batch, single
    server_cpu: dict[str, float]  # mean CPU seconds of the parent (the servers) per invocation, by label
    handler_cpu: dict[str, float]  # mean CPU seconds of the child (the handler) per invocation, by label
    attribution: dict[str, dict[str, float]]  # pass/fail: mean seconds per job by category (as in-process)
    round_trips: dict[str, int]  # pass/fail: modal round trips

    def ratio(self) -> float:
        return self.seconds["warm_batch"].median / self.seconds["single"].median


@dataclass
class MemoryResult:
    peak_rss_mb: Dist  # ru_maxrss, values in MB
    peak_hwm_mb: Dist  # VmHWM, the cross-check
    after_init_mb: Dist
    batch_seconds: Dist


@dataclass
class ModeResult:
    mode: Mode
    passed: PathResult
    failed: PathResult
    batch: BatchResult
    calls: CallCounts
    cold: ColdResult
    own: OwnProcess | None
    memory: MemoryResult


@dataclass
class Baseline:
    import_s: Dist
    to_ready: Dist
    rss_mb: Dist
    hwm_mb: Dist


@dataclass
class ImportProfile:
    by_package_ms: list[tuple[str, float]]
    total_ms: float
    init_profile: list[tuple[str, int, float]]  # get_runtime(): costliest functions (name, calls, self seconds)


@dataclass
class ProfileResult:
    label: str
    jobs: int
    work_items_per_job: float  # thread-pool work items (hand-offs) per job
    median_profiled: float
    busy_per_job: float
    packages: list[tuple[str, float]]  # seconds per job
    functions: list[tuple[str, float]]  # seconds per job
    cumulative: dict[str, float]  # seconds per job


@dataclass(frozen=True)
class SystemPath:
    """One accounting system's warm pass or fail path: remote calls per job by party, the
    median latency, and the round trips on its critical path (sequential request waves)."""

    system: str
    path: str
    calls: dict[str, float]
    latency: Dist
    round_trips: float


@dataclass
class Extras:
    logging_info_fail: Dist | None = None
    handoff_us: float = 0.0
    profiles: list[ProfileResult] = field(default_factory=list)
    imports: ImportProfile | None = None
    source_import_init: Dist | None = None  # interleaved with the next: own modules compiled from source
    cached_import_init: Dist | None = None  # the application's own bytecode cached
    systems: list[SystemPath] = field(default_factory=list)  # per accounting system (run_systems)


@dataclass
class Target:
    name: str
    measured: float
    limit: float
    unit: str
    lower_is_better: bool = True
    key: str = ""

    @property
    def ok(self) -> bool:
        return self.measured <= self.limit if self.lower_is_better else self.measured >= self.limit

    @property
    def ratio(self) -> float:
        return self.measured / self.limit if self.limit else float("inf")

    @property
    def label(self) -> str:
        return "n/a" if self.measured != self.measured else ("PASS" if self.ok else "MISS")

    def verdict(self) -> str:
        if self.measured != self.measured:  # NaN: e.g. no floor at --latency-ms 0
            return "n/a"
        if self.ok:
            return "PASS"
        if self.lower_is_better:
            return f"MISS by {self.measured - self.limit:.3g} {self.unit} ({(self.ratio - 1) * 100:.0f} % over)"
        return f"MISS by {self.limit - self.measured:.3g} {self.unit} ({(1 - self.ratio) * 100:.0f} % short)"
