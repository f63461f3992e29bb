"""``make bench``: the performance benchmark of export-preflight.

The bench process runs the sandbox (moto and the simulators, ``--latency-ms`` on every
simulator request); the real handler runs in fresh child processes (``bench.child``) with
``--aws-latency-ms`` injected before every AWS request, so the simulators do not share
the handler's interpreter. Prints PASS or MISS per target and writes docs/performance.md.

    python -m bench.preflight_bench            # full run (about 1.5 minutes on 2 cores)
    python -m bench.preflight_bench --quick    # fewer samples; no docs unless --output
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import math
import os
import platform
import py_compile
import re
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL"  # before Powertools is imported anywhere
os.environ["MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR"] = "false"  # we purge the ready queue often

from bench import instrument, report
from bench.events import sqs_event
from bench.instrument import Call
from bench.layer import absent_from_layer
from sandbox.world import CODE_PATHS, Company, Sandbox

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
# AWS Lambda duration price per GB-second, US East (N. Virginia), first pricing tier
# (aws.amazon.com/lambda/pricing); requests cost $0.20 per million on top.
GB_SECOND_PRICE = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
# The e-conomic warm comparison (the handler, the handler without check concurrency, the
# reference handler) runs in this many interleaved rounds of one process each: the machine's
# drift over the run falls on all three alike, not on whichever ran while it was busy.
WARM_ROUNDS = 3
UNKNOWN_ACCOUNT = "7777"  # in no simulator's chart of accounts: the fail path fails mapped_accounts


@dataclass(frozen=True)
class Config:
    http_latency: float
    aws_latency: float
    quick: bool
    output: Path | None

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Item:
    """One invocation in a child process."""

    label: str
    seconds: float
    cpu: float  # the handler process's CPU
    server_cpu: float  # the bench process's CPU meanwhile (moto and the simulators)
    p0: float
    p1: float
    calls: list[Call]


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- the world and the children


class Bench:
    def __init__(self, sandbox: Sandbox, cfg: Config, code_root: Path) -> None:
        self.sandbox, self.cfg = sandbox, cfg
        for server in sandbox.accounting.values():
            if hasattr(server, "enforce_rate_limits"):  # Fortnox's 25 per 5 s window is not what we measure
                server.enforce_rate_limits = False
        self.hosts = {f"127.0.0.1:{s.port}": n for n, s in (("pleo", sandbox.pleo), *sandbox.accounting.items())}
        self._numbers = iter(range(300_001, 400_000))
        self._sqs = sandbox.aws.client("sqs")
        self.expected: list[tuple[str, str]] = []  # (job id, status) every child must leave behind
        # The children import a copy of the function and layer code and write no bytecode, as
        # on Lambda: the layer's modules come compiled (unchecked-hash .pyc, as its build makes
        # them: layers/preflight/Makefile), the function's app.py compiles from source.
        self.code_paths = []
        for path in CODE_PATHS:
            target = code_root / path.parent.name / path.name
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            if path.parent.name == "layers":
                compileall.compile_dir(target, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            self.code_paths.append(str(target))
        self.absent = absent_from_layer()  # the children import only what the layer ships

    def company(self, system: str, slug: str, *, fail: bool = False) -> Company:
        traits = {"agreement_number": next(self._numbers)} if system == "economic" else {}
        company = self.sandbox.add_company(system, f"{slug}-{os.urandom(3).hex()}", **traits)
        if fail:
            assert self.sandbox.resources is not None
            mappings = {**company.configuration["mappings"], "expenseAccount": UNKNOWN_ACCOUNT}
            company.configuration = {**company.configuration, "mappings": mappings}
            self.sandbox.aws.put_company_configuration(self.sandbox.resources, company.configuration)
        return company

    def event(self, companies: list[Company], status: str) -> dict[str, Any]:
        jobs = [self.sandbox.add_job(c) for c in companies]
        self.expected += [(job["id"], status) for job in jobs]
        return sqs_event(jobs)

    def purge(self) -> None:
        assert self.sandbox.resources is not None
        self._sqs.purge_queue(QueueUrl=self.sandbox.resources.ready_jobs_queue_url)

    @contextmanager
    def purging(self) -> Iterator[None]:
        """moto's SendMessage slows down as a queue grows: keep the ready-jobs queue short."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(1.0):
                self.purge()

        worker = threading.Thread(target=loop, daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join()

    def spawn(self, spec: dict[str, Any], *, flags: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Any:
        """Run ``bench.child`` in a fresh interpreter, started through /bin/sh so that its peak
        RSS is its own; returns (spawn time, result, stderr)."""
        spec = {
            "code_paths": self.code_paths,
            "absent": self.absent,
            "hosts": self.hosts,
            "server_pid": os.getpid(),
            **spec,
        }
        spec["aws_latency"] = self.cfg.aws_latency if spec.get("aws_latency") is None else spec["aws_latency"]
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp, self.purging():
            spec_path, result_path = Path(tmp, "spec.json"), Path(tmp, "result.json")
            spec_path.write_text(json.dumps(spec))
            command = [sys.executable, *flags, "-m", "bench.child", str(spec_path), str(result_path)]
            started = time.monotonic()
            done = subprocess.run(  # noqa: S603 - our interpreter, our module
                ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command],
                cwd=ROOT,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=170,
                check=False,
            )
            if done.returncode != 0 or not result_path.exists():
                raise BenchError(f"benchmark child failed ({done.returncode}):\n{done.stderr[-3000:]}")
            result = json.loads(result_path.read_text())
        if any(item["failures"] for item in result.get("items", [])):
            raise BenchError("a child reported batch item failures")
        for job_id, status in self.expected:
            if (seen := self.sandbox.pleo.job(job_id)["status"]) != status:
                raise BenchError(f"job {job_id} ended {seen!r}, expected {status!r}")
        self.expected = []
        return started, result, done.stderr

    def handler(
        self,
        items: list[dict[str, Any]],
        *,
        env: dict[str, str] | None = None,
        aws_latency: float | None = None,
        mode: str = "handler",
    ) -> tuple[dict[str, Any], list[Item]]:
        spec = {"mode": mode, "items": items, "aws_latency": aws_latency}
        _, result, _ = self.spawn(spec, env=env)
        instrument.CHECK_NEEDS.update({name: tuple(needs) for name, needs in result.get("check_needs", {}).items()})
        return result, [
            Item(i["label"], i["s"], i["cpu"], i["server_cpu"], i["p0"], i["p1"], [Call(*c) for c in i["calls"]])
            for i in result["items"]
        ]


# ---------------------------------------------------------------- the runs


def warm_items(bench: Bench, systems: dict[str, int], *, fail: bool = True) -> list[dict[str, Any]]:
    """Per system (``systems``: jobs per path), a passing and a failing company: two warm-up
    jobs each (token refresh, caches), then jobs alternating pass / fail, one per invocation."""
    items: list[dict[str, Any]] = []
    for system, jobs in systems.items():
        passing, failing = bench.company(system, f"bench-{system}"), bench.company(system, f"bench-{system}", fail=True)
        for _ in range(2):
            items.append({"label": "warm-up", "event": bench.event([passing], "in_progress")})
            items.append({"label": "warm-up", "event": bench.event([failing], "failed")})
        for _ in range(jobs):
            items.append({"label": f"{system}/pass", "event": bench.event([passing], "in_progress")})
            if fail:
                items.append({"label": f"{system}/fail", "event": bench.event([failing], "failed")})
    return items


def batch_items(bench: Bench, reps: int, *, singles: bool = True, size: int = 10) -> list[dict[str, Any]]:
    """Per repetition: 10 new e-conomic companies, their first batch (cold caches), a second
    batch (warm), then two jobs of them alone (warm)."""
    items = []
    for rep in range(reps):
        companies = [bench.company("economic", f"bench-batch{rep}-{i}") for i in range(size)]
        items.append({"label": "cold batch", "event": bench.event(companies, "in_progress")})
        items.append({"label": "warm batch", "event": bench.event(companies, "in_progress")})
        for company in (companies[rep % size], companies[(rep + 5) % size]) if singles else ():
            items.append({"label": "single", "event": bench.event([company], "in_progress")})
    return items


def run_cold(bench: Bench, reps: int) -> dict[str, list[dict[str, Any]]]:
    """Fresh processes, interleaved: the handler, the reference, and the reference after
    importing Powertools and pydantic as the handler does (the floor of any handler on that
    stack), each deciding one new e-conomic pass-path job; and a bare ``import boto3, httpx``."""
    company = bench.company("economic", "bench-cold")
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _ in range(reps):
        for mode in ("handler", "reference", "reference+frameworks", "baseline"):
            items = [] if mode == "baseline" else [{"label": "first", "event": bench.event([company], "in_progress")}]
            started, result, _ = bench.spawn({"mode": mode, "items": items})
            result["to_decision"] = result.get("t_decided", result.get("t_ready", 0)) - started
            result["to_main"] = result["t_main"] - started
            out[mode].append(result)
    return out


def import_profile(bench: Bench) -> list[tuple[str, float]]:
    """``-X importtime`` of the handler's imports and runtime: self time by top-level package."""
    _, _, stderr = bench.spawn({"mode": "import"}, flags=("-X", "importtime"))
    by_package: Counter[str] = Counter()
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[0].strip().isdigit():
            by_package[parts[2].strip().split(".")[0]] += int(parts[0]) / 1000
    return by_package.most_common()


# ---------------------------------------------------------------- analysis


@dataclass
class PathResult:
    """One warm path: latency, its floor chain, where the time beyond it went."""

    label: str
    seconds: list[float]
    chain: list[instrument.Step]
    attribution: dict[str, float]  # mean seconds per job
    calls_per_job: dict[str, float]  # by remote group
    redundant: list[str]  # names of redundant calls, over all jobs
    jobs: int
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def floor(self) -> float:
        return sum(step.cost for step in self.chain)


def call_base(items: list[Item], cfg: Config) -> dict[bool, float]:
    """The sandbox's own time per call beyond the injected latency (client, loopback, moto or
    simulator), by aws?: the median over the reference handler's calls. It is part of what
    each call on a floor chain costs here, whoever makes it."""
    over: dict[bool, list[float]] = {True: [], False: []}
    for item in items:
        for c in item.calls:
            over[c.aws].append(c.end - c.start - (cfg.aws_latency if c.aws else cfg.http_latency))
    return {aws: max(0.0, statistics.median(values or [0.0])) for aws, values in over.items()}


def analyse(label: str, items: list[Item], cfg: Config, base: dict[bool, float]) -> PathResult:
    http_cost, aws_cost = cfg.http_latency + base[False], cfg.aws_latency + base[True]
    chains = [instrument.floor_chain(i.calls, http_cost, aws_cost) for i in items]
    modal = Counter(instrument.describe_chain(c) for c in chains).most_common(1)[0][0]
    chain = next(c for c in chains if instrument.describe_chain(c) == modal)
    on_chain = {step.purpose for step in chain}
    sums: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    over: dict[bool, list[float]] = {True: [], False: []}  # aws? -> seconds beyond the injected latency
    for item in items:
        for key, value in instrument.attribute(item.p0, item.p1, item.calls, chain).items():
            sums[key] += value
        calls.update("Pleo" if c.remote == "pleo" else "AWS" if c.aws else "accounting" for c in item.calls)
        for c in item.calls:
            if c.purpose in on_chain:
                over[c.aws].append(c.end - c.start - (aws_cost if c.aws else http_cost))
    n = len(items)
    return PathResult(
        label,
        [i.seconds for i in items],
        chain,
        {k: v / n for k, v in sums.items()},
        {k: v / n for k, v in calls.items()},
        [c.name for i in items for c in instrument.redundant(i.calls)],
        n,
        {
            "cpu": statistics.fmean(i.cpu for i in items),
            "chain_aws": len(over[True]) / n,
            "chain_http": len(over[False]) / n,
            "aws_over": statistics.fmean(over[True] or [0.0]),
            "http_over": statistics.fmean(over[False] or [0.0]),
        },
    )


def mean_call(items: list[Item], aws: bool) -> float:
    return statistics.fmean([c.end - c.start for i in items for c in i.calls if c.aws == aws] or [float("nan")])


def local_time(item: Item) -> float:
    """Time of an invocation with no call in flight."""
    return instrument.attribute(item.p0, item.p1, item.calls, []).get("local work", 0.0)


def batch_stats(items: list[Item]) -> dict[str, float]:
    warm, single = [i for i in items if i.label == "warm batch"], [i for i in items if i.label == "single"]
    return {
        "batch": statistics.median(i.seconds for i in warm),
        "single": statistics.median(i.seconds for i in single),
        "cold_batch": statistics.median(i.seconds for i in items if i.label == "cold batch"),
        "handler_cpu": statistics.median(i.cpu for i in warm),
        "single_cpu": statistics.median(i.cpu for i in single),
        "server_share": statistics.fmean(i.server_cpu / i.seconds for i in warm),
        "aws_batch": mean_call(warm, True),
        "aws_single": mean_call(single, True),
        "http_batch": mean_call(warm, False),
        "http_single": mean_call(single, False),
    }


def cold_stats(cold: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(cold["handler"])}
    for mode in ("handler", "reference"):
        runs = cold[mode]
        firsts = [
            Item("first", i["s"], i["cpu"], 0, i["p0"], i["p1"], [Call(*c) for c in i["calls"]])
            for i in (run["items"][0] for run in runs)
        ]
        out[mode] = statistics.median(run["to_decision"] for run in runs)
        out[f"{mode}_main"] = statistics.median(run["to_main"] for run in runs)
        out[f"{mode}_init"] = statistics.median(run["import_s"] + run["init_s"] for run in runs)
        out[f"{mode}_first"] = statistics.median(i.seconds for i in firsts)
        out[f"{mode}_local"] = statistics.median(local_time(i) for i in firsts)
        out[f"{mode}_rss"] = statistics.median(run["rss_mb"] for run in runs)
    out["runtime"] = statistics.median(run["init_s"] for run in cold["handler"])
    out["clients"] = sum(cold["handler"][0]["clients_first"].values())
    out["client_seconds"] = statistics.median(run["client_seconds"] for run in cold["handler"])
    out["bare"] = statistics.median(run["import_s"] for run in cold["baseline"])
    out["powertools"] = statistics.median(run["powertools_s"] for run in cold["baseline"])
    out["pydantic"] = statistics.median(run["pydantic_s"] for run in cold["baseline"])
    out["bare_ready"] = statistics.median(run["to_decision"] for run in cold["baseline"])
    floor = cold["reference+frameworks"]
    out["floor"] = statistics.median(run["to_decision"] for run in floor)
    out["floor_init"] = statistics.median(run["import_s"] for run in floor)
    out["floor_first"] = statistics.median(run["items"][0]["s"] for run in floor)
    # ratios of runs started side by side (the machine's drift falls on both)
    out["floor_ratio"] = statistics.median(
        f["to_decision"] / r["to_decision"] for f, r in zip(floor, cold["reference"], strict=True)
    )
    return out


def memory_stats(memory: list[dict[str, Any]], cold: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    clients = memory[0]["clients_first"]
    return {
        "init": statistics.median(m["rss_init_mb"] for m in memory),
        "first": statistics.median(m["rss_first_mb"] for m in memory),
        "peak": statistics.median(m["rss_mb"] for m in memory),
        "bare": statistics.median(run["rss_mb"] for run in cold["baseline"]),
        "clients_total": sum(clients.values()),
        "clients": ", ".join(f"{k} {v}" for k, v in sorted(clients.items())),
        "first_cpu": statistics.median(m["items"][0]["cpu"] for m in memory),
        "threads": memory[0]["threads"],
    }


def aws_reads(items: list[Item], op: str) -> Counter[str]:
    """AWS reads of one kind by what they read (secret id, or table and key)."""
    return Counter(c.key.split(" ", 1)[1] for i in items for c in i.calls if c.aws and c.op == op)


def most_reads(runs: list[list[Item]], op: str) -> Counter[str]:
    """``aws_reads`` of each handler process (each has its own caches), the most of each key."""
    most: Counter[str] = Counter()
    for run in runs:
        most |= aws_reads(run, op)
    return most


def template_function() -> tuple[int, str]:
    """MemorySize and architecture of the preflight function (its own, else Globals)."""
    text = (ROOT / "template.yaml").read_text()
    own = re.search(r"\n  PreflightFunction:\n(.*?)(?=\n  \S)", text, re.S)
    found = {}
    for key, pattern in (("memory", r"MemorySize:\s*(\d+)"), ("arch", r"Architectures:\s*\[\s*(\w+)")):
        match = (re.search(pattern, own.group(1)) if own else None) or re.search(pattern, text)
        found[key] = match.group(1) if match else ""
    return int(found["memory"] or 128), found["arch"] or "x86_64"


def cost_per_1000(seconds: float, memory_mb: int, arch: str) -> float:
    """Duration charge of 1,000 invocations of ``seconds`` each (billed per started millisecond)."""
    return 1000 * math.ceil(seconds * 1000) / 1000 * memory_mb / 1024 * GB_SECOND_PRICE[arch]


# ---------------------------------------------------------------- main


def run_all(bench: Bench, cfg: Config, log: Any) -> dict[str, Any]:
    sandbox = bench.sandbox
    systems = {s: cfg.n(5, 2) for s in sandbox.accounting if s != "economic"}
    items = warm_items(bench, systems) + batch_items(bench, cfg.n(5, 2))
    log(f"handler process (default settings): {len(items)} invocations: warm paths of the other systems, batches")
    _, concurrent = bench.handler(items)
    rounds, handler_jobs, other_jobs = cfg.n(WARM_ROUNDS, 1), cfg.n(60, 15), cfg.n(30, 8)
    log(
        f"e-conomic warm paths in {rounds} interleaved round(s) of: the handler ({handler_jobs // rounds} jobs per "
        f"path), the handler with CHECK_CONCURRENCY=false ({other_jobs // rounds} pass-path jobs), the reference "
        f"handler ({other_jobs // rounds} per path)"
    )
    economic: list[list[Item]] = []
    sequential: list[Item] = []
    reference: list[Item] = []
    for _ in range(rounds):
        economic.append(bench.handler(warm_items(bench, {"economic": handler_jobs // rounds}))[1])
        sequential += bench.handler(
            warm_items(bench, {"economic": other_jobs // rounds}, fail=False), env={"CHECK_CONCURRENCY": "false"}
        )[1]
        reference += bench.handler(warm_items(bench, {"economic": other_jobs // rounds}), mode="reference")[1]
    log("batches again at 5 × the latencies")
    for server in sandbox.servers:
        server.latency = cfg.http_latency * 5
    try:
        _, probe = bench.handler(batch_items(bench, cfg.n(4, 1)), aws_latency=cfg.aws_latency * 5)
    finally:
        for server in sandbox.servers:
            server.latency = cfg.http_latency
    log(
        f"cold start: {cfg.n(5, 2)} × (handler, reference handler, reference + Powertools and pydantic, bare "
        "import) in fresh processes"
    )
    cold = run_cold(bench, cfg.n(5, 2))
    log(f"memory: {cfg.n(2, 1)} fresh process(es), a batch of 10 new companies, then a second batch of theirs")
    memory = [bench.handler(batch_items(bench, 1, singles=False))[0] for _ in range(cfg.n(2, 1))]
    log("-X importtime of the handler's imports and runtime")
    imports = import_profile(bench)
    config_table = sandbox.resources.company_config_table if sandbox.resources else ""
    by_label: dict[str, list[Item]] = defaultdict(list)
    for item in [*concurrent, *(item for run in economic for item in run)]:
        by_label[item.label].append(item)
    memory_mb, arch = template_function()
    base = call_base(reference, cfg)
    return {
        "cfg": cfg,
        "base": base,
        "paths": {label: analyse(label, found, cfg, base) for label, found in by_label.items() if "/" in label},
        "sequential": analyse("economic/pass", [i for i in sequential if i.label == "economic/pass"], cfg, base),
        "reference": {
            label: statistics.median(i.seconds for i in reference if i.label == label)
            for label in {i.label for i in reference if "/" in i.label}
        },
        "warm_rounds": rounds,
        "batch": batch_stats(concurrent),
        "probe": batch_stats(probe),
        "cold_stats": cold_stats(cold),
        "memory_stats": memory_stats(memory, cold),
        "imports": imports,
        "secret_reads": most_reads([concurrent, *economic], "GetSecretValue"),
        "config_reads": Counter(
            {k: v for k, v in most_reads([concurrent, *economic], "GetItem").items() if k.startswith(config_table)}
        ),
        "pass_calls": [c for i in by_label["economic/pass"] for c in i.calls],
        "template": (memory_mb, arch),
        "price": GB_SECOND_PRICE[arch],
        "cost": lambda seconds: cost_per_1000(seconds, memory_mb, arch),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="injected per HTTP request (default 20)")
    parser.add_argument("--aws-latency-ms", type=float, default=5.0, help="injected per AWS request (default 5)")
    parser.add_argument("--quick", action="store_true", help="fewer samples; docs only with --output")
    parser.add_argument("--output", help=f"where to write the report (default {DOC.relative_to(ROOT)})")
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args(argv)
    output = Path(args.output) if args.output else (None if args.quick or args.no_docs else DOC)
    cfg = Config(args.latency_ms / 1000, args.aws_latency_ms / 1000, args.quick, output)
    warnings.simplefilter("ignore")
    for name in ("werkzeug", "moto", "botocore", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    started, load_start = time.monotonic(), os.getloadavg()[0]

    def log(text: str) -> None:
        print(f"  {time.monotonic() - started:6.1f} s  {text}", flush=True)

    print(
        f"export-preflight benchmark: {args.latency_ms:g} ms per HTTP request, {args.aws_latency_ms:g} ms per AWS "
        f"request{' (quick)' if cfg.quick else ''}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-code-") as code_root,
        Sandbox(latency=cfg.http_latency, visibility_timeout=30) as sandbox,
    ):
        results = run_all(Bench(sandbox, cfg, Path(code_root)), cfg, log)
    results["elapsed"], results["load_start"] = time.monotonic() - started, load_start
    results["machine"] = {
        "python": platform.python_version(),
        "cores": str(os.cpu_count()),
        "platform": platform.platform(terse=True),
        "load_end": os.getloadavg()[0],
    }
    text, markdown = report.render(results)
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown)
        print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
