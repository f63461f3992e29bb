"""Instruments for a process that runs a handler, installed after its imports: every
remote call on the wire (remote, operation, purpose, start, end), injected latency on AWS
calls, and the dependency model that turns one job's calls into its floor."""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from typing import Any

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DIGITS = re.compile(r"/\d{4,}(?=/|$)")
AWS_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "SendMessage", "PutSecretValue", "ChangeMessageVisibility"}


@dataclass(frozen=True)
class Call:
    """One request on the wire (``time.perf_counter`` of the process that made it)."""

    remote: str  # pleo, economic, ... or dynamodb, secretsmanager, sqs
    op: str  # "GET /v3/export-jobs/{id}", "PutItem"
    purpose: str  # what the handler made it for (see ``purpose_of``)
    key: str  # the exact request: an identical read repeated is a redundant call
    start: float
    end: float
    aws: bool

    @property
    def name(self) -> str:
        return f"{self.remote} {self.op}"

    @property
    def is_read(self) -> bool:
        return self.op.startswith("GET ") if not self.aws else self.op not in AWS_WRITES

    def row(self) -> list[Any]:
        return list(astuple(self))


# ---------------------------------------------------------------- purposes (from the call stack)

# qualified function name -> purpose; the innermost match on the stack wins
PURPOSES = {
    "CompanyConfigurations.get": "config read",
    "Credentials._raw": "secret read",
    "Credentials.write": "secret write",
    "OAuthTokens.refresh": "token refresh",
    "OAuthTokens._refresh_holding_lease": "token refresh",
    "TokenEndpoint.refresh": "token refresh",
    "PreflightService._settled": "decision read",
    "PreflightService._read_job": "job read",
    "PreflightService._claim": "decision claim",
    "PreflightService._settle": "decision settle",
    "PreflightService._fail": "fail job in Pleo",
    "PreflightService._hand_on": "hand-off",
    "handle_error": "dead letter / back off",
}
# Reads made side by side (concurrency.side_by_side): all but the first run in a pool's thread,
# whose stack does not show the check that asked for them; named here when nothing else is.
SIDE_BY_SIDE_PURPOSES = {
    "FortnoxConnector._probe": "check: permissions",
    "FortnoxConnector._accounts": "check: mapped_accounts",  # or mapped_tax_codes: one chart, read once
    "FortnoxConnector._voucher_series": "check: capabilities",
    "BusinessCentralConnector._probe": "check: permissions",
    "BusinessCentralConnector.accounts.<locals>.lookup": "check: mapped_accounts",
}
# The remote system each of the service's own steps talks to: a call to another one made inside
# the step (e.g. a best-effort write during the action) is a side call, not the step.
STEP_REMOTES = {
    "job read": "pleo",
    "fail job in Pleo": "pleo",
    "hand-off": "sqs",
    "decision read": "dynamodb",
    "decision claim": "dynamodb",
    "decision settle": "dynamodb",
}
CHECK_NEEDS: dict[str, tuple[str, ...]] = {}


def check_needs() -> dict[str, tuple[str, ...]]:
    """The checks' declared prerequisites (read from the handler's code, once; the bench
    process gets them from a child)."""
    module = sys.modules.get("export_preflight.checks")  # never imported here: the reference has none
    if not CHECK_NEEDS and module is not None:
        CHECK_NEEDS.update({check.name: check.needs for check in module.CHECKS})
    return CHECK_NEEDS


def purpose_of(frame: Any) -> str:
    checks = check_needs()
    fallback, side = "other", None
    while frame is not None:
        code = frame.f_code
        found = PURPOSES.get(code.co_qualname)
        if found:
            return found
        side = side or SIDE_BY_SIDE_PURPOSES.get(code.co_qualname)
        if code.co_name in checks and code.co_filename.endswith("checks.py"):
            return f"check: {code.co_name}"
        if code.co_name == "authenticate" and "/connectors/" in code.co_filename:  # the prefetch
            return "check: authentication"
        if fallback == "other" and ("export_preflight" in code.co_filename or code.co_filename.endswith("app.py")):
            fallback = f"other: {code.co_qualname}"
        frame = frame.f_back
    return side or fallback


# ---------------------------------------------------------------- the recorder


class Recorder:
    """Patches the two transports (httpx's and botocore's) of this process: records every
    request while ``recording()`` is active, and sleeps ``aws_latency`` before each AWS
    request (every attempt, whichever client or session made it)."""

    def __init__(self, hosts: dict[str, str], aws_latency: float) -> None:
        self.hosts = hosts  # "127.0.0.1:port" -> remote
        self.aws_latency = aws_latency
        self._calls: list[Call] | None = None
        self._lock = threading.Lock()
        self.clients: Counter[str] = Counter()  # boto3/botocore clients created, by service
        self.client_seconds = 0.0  # spent creating them (summed over threads)

    def install(self) -> Recorder:
        import botocore.httpsession
        import botocore.session
        import httpx

        recorder = self
        http_send = httpx.HTTPTransport.handle_request
        aws_send = botocore.httpsession.URLLib3Session.send
        create_client = botocore.session.Session.create_client

        def counted_create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return create_client(session, service_name, *args, **kwargs)
            finally:
                with recorder._lock:
                    recorder.clients[service_name] += 1
                    recorder.client_seconds += time.perf_counter() - started

        def handle_request(transport: Any, request: Any) -> Any:
            started = time.perf_counter()
            try:
                return http_send(transport, request)
            finally:
                url = request.url
                remote = recorder.hosts.get(f"{url.host}:{url.port}", str(url.host))
                path = _DIGITS.sub("/{n}", _UUID.sub("{id}", url.path))
                recorder._add(remote, f"{request.method} {path}", f"{request.method} {url}", started, False)

        def send(session: Any, request: Any) -> Any:
            started = time.perf_counter()
            if recorder.aws_latency:
                time.sleep(recorder.aws_latency)
            try:
                return aws_send(session, request)
            finally:
                target = request.headers.get("X-Amz-Target", b"")
                target = target.decode() if isinstance(target, bytes) else str(target)
                service, _, op = target.rpartition(".")
                remotes = {"DynamoDB_20120810": "dynamodb", "secretsmanager": "secretsmanager", "AmazonSQS": "sqs"}
                recorder._add(remotes.get(service, service), op, _aws_key(op, request.body), started, True)

        setattr(httpx.HTTPTransport, "handle_request", handle_request)  # noqa: B010 - a patch, on purpose
        setattr(botocore.httpsession.URLLib3Session, "send", send)  # noqa: B010
        setattr(botocore.session.Session, "create_client", counted_create_client)  # noqa: B010
        return self

    def _add(self, remote: str, op: str, key: str, started: float, aws: bool) -> None:
        if self._calls is None:
            return
        purpose = purpose_of(sys._getframe(2))
        if STEP_REMOTES.get(purpose, remote) != remote:
            purpose = f"other: beside {purpose}"
        call = Call(remote, op, purpose, key, started, time.perf_counter(), aws)
        with self._lock:
            if self._calls is not None:
                self._calls.append(call)

    @contextmanager
    def recording(self) -> Iterator[list[Call]]:
        calls: list[Call] = []
        with self._lock:
            self._calls = calls
        try:
            yield calls
        finally:
            with self._lock:
                self._calls = None
            calls.sort(key=lambda c: c.start)


def _aws_key(op: str, body: Any) -> str:
    try:
        params = json.loads(body or b"{}")
    except (TypeError, ValueError):
        params = {}
    where = params.get("TableName") or params.get("SecretId") or str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
    return f"{op} {where} {json.dumps(params.get('Key'), sort_keys=True) if 'Key' in params else ''}".strip()


def aws_detail(call: Call) -> str:
    """The table, secret or queue of an AWS call."""
    return call.key.split(" ")[1] if call.aws and " " in call.key else ""


# ---------------------------------------------------------------- the floor


@dataclass(frozen=True)
class Step:
    purpose: str
    calls: tuple[str, ...]
    cost: float


def needs(purpose: str) -> tuple[str, ...]:
    """What a step must wait for: the data it needs, or the order the guarantees need
    (decision recorded before acting, settled after). Everything else may overlap."""
    checks = check_needs()
    if purpose.startswith("check: "):
        name = purpose.removeprefix("check: ")
        before = tuple(f"check: {n}" for n in checks.get(name, ()))
        if name == "authentication":
            return (*before, "config read", "secret read", "token refresh")
        if name in ("connection_settings", "company_context"):
            return before  # they do not look at the job
        return (*before, "job read")
    every_check = tuple(f"check: {n}" for n in checks)
    return {
        "secret read": ("config read",),
        "token refresh": ("secret read",),
        "job read": ("config read", "secret read"),
        "decision claim": ("job read", *every_check),
        "fail job in Pleo": ("decision claim",),
        "hand-off": ("decision claim",),
        "decision settle": ("fail job in Pleo", "hand-off"),
    }.get(purpose, ())


# Steps whose calls need nothing of each other: a company's configuration and secrets, and a
# connector's permission probes (one read per area or entity set, side by side).
INDEPENDENT_READS = frozenset({"config read", "secret read", "check: permissions"})


def floor_chain(calls: list[Call], http_latency: float, aws_latency: float) -> list[Step]:
    """The longest chain of needed steps through ``needs``, each step costing the injected
    latency of its calls (one after the other; reads that need nothing of each other, as
    ``INDEPENDENT_READS`` lists them, in parallel)."""
    by_purpose: dict[str, list[Call]] = {}
    for call in calls:
        by_purpose.setdefault(call.purpose, []).append(call)

    def cost(purpose: str) -> float:
        costs = [aws_latency if c.aws else http_latency for c in by_purpose[purpose]]
        return max(costs) if purpose in INDEPENDENT_READS else sum(costs)

    best: dict[str, tuple[float, list[str]]] = {}

    def longest(purpose: str) -> tuple[float, list[str]]:
        if purpose not in best:
            before = [longest(p) for p in needs(purpose) if p in by_purpose]
            total, chain = max(before, key=lambda b: b[0], default=(0.0, []))
            best[purpose] = (total + cost(purpose), [*chain, purpose])
        return best[purpose]

    _, chain = max((longest(p) for p in sorted(by_purpose)), key=lambda b: b[0])
    return [Step(p, tuple(c.name for c in by_purpose[p]), cost(p)) for p in chain]


def describe_chain(chain: list[Step]) -> str:
    steps = [f"{s.purpose} ({', '.join(s.calls)}) {s.cost * 1000:.0f} ms" for s in chain if s.cost]
    return " → ".join(steps) + f" = {sum(s.cost for s in chain) * 1000:.0f} ms"


# ---------------------------------------------------------------- where the time goes


def attribute(start: float, end: float, calls: list[Call], chain: list[Step]) -> dict[str, float]:
    """Split one invocation's wall time by what was in flight: a call of a floor-chain step
    ("floor chain"), else calls off the chain (by purpose: these could have overlapped), else
    nothing ("local work": Python with no call in flight)."""
    on_chain = {s.purpose for s in chain}
    points = sorted({start, end, *(t for c in calls for t in (c.start, c.end) if start < t < end)})
    out: dict[str, float] = {}
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        flying = [c for c in calls if c.start <= mid < c.end]
        if any(c.purpose in on_chain for c in flying):
            label = "floor chain"
        elif flying:
            label = f"off the chain: {flying[0].purpose} ({flying[0].name})"
        else:
            label = "local work"
        out[label] = out.get(label, 0.0) + (b - a)
    return out


def redundant(calls: list[Call]) -> list[Call]:
    """Reads whose answer nothing needs: a read for no known purpose, or the same read
    again with no write of ours to that remote system in between."""
    seen: set[str] = set()
    found = []
    for call in calls:
        if not call.is_read:
            seen = {key for key in seen if not key.startswith(call.remote + "|")}
            continue
        key = f"{call.remote}|{call.key}"
        if key in seen or call.purpose.startswith("other"):
            found.append(call)
        seen.add(key)
    return found
