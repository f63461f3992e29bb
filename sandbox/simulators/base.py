"""A tiny threaded HTTP server for API simulators (standard library only).

``SimulatorServer`` binds ``127.0.0.1`` on an ephemeral port, serves from a daemon
thread and speaks HTTP/1.1 with keep-alive. Subclasses register handlers for
(method, path regex); every request is recorded, and faults (status answers, delays,
dropped connections) can be injected per route to exercise a client's error paths.
"""

from __future__ import annotations

import itertools
import json as jsonlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Fault", "Headers", "SimRequest", "SimResponse", "SimulatorServer"]


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive view of request headers (last value wins)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = list(items)
        self._by_lower = {name.lower(): value for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._by_lower[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_lower)

    def __len__(self) -> int:
        return len(self._by_lower)

    def raw_items(self) -> list[tuple[str, str]]:
        """All headers as received, original casing, duplicates kept."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass(frozen=True)
class SimRequest:
    """One request as the simulator received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any
    """Parsed JSON body; ``None`` when there is no body or it is not JSON."""
    connection_id: int
    """Sequence number of the TCP connection; equal ids mean a reused (keep-alive) connection."""
    received_at: float = field(default_factory=time.time)

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter, or ``default``."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def body_is_invalid_json(self) -> bool:
        """True when a body was sent but could not be parsed as JSON."""
        return bool(self.body.strip()) and self.json is None and self.body.strip() != b"null"


@dataclass
class SimResponse:
    """What a handler answers. ``json=None`` sends an empty body (``Content-Length: 0``)."""

    status: int
    json: Any | None = None
    headers: dict[str, str] | None = None
    raw: bytes | None = None  # sent as is instead of ``json`` (a malformed answer a real server may send)
    trickle: float = 0.0  # seconds between the body's bytes (a server that trickles), 0: all at once


@dataclass
class Fault:
    """An injected answer for matching requests; see ``SimulatorServer.inject``."""

    method: str
    path_regex: re.Pattern[str]
    status: int | None = None
    json: Any | None = None
    headers: dict[str, str] | None = None
    times: int | None = 1
    delay: float = 0.0
    disconnect: bool = False
    when: Callable[[SimRequest], bool] | None = None
    hits: int = 0
    raw: bytes | None = None
    trickle: float = 0.0

    def matches(self, request: SimRequest) -> bool:
        """True while the fault has uses left and the request matches it."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", request.method) or self.path_regex.fullmatch(request.path) is None:
            return False
        return self.when is None or self.when(request)


@dataclass(frozen=True)
class Exchange:
    """One request and the answer the simulator gave it (contract tests read these)."""

    request: SimRequest
    response: SimResponse
    injected: bool
    """True when an injected fault answered, not the simulator's own handler."""


Handler = Callable[..., SimResponse]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # benchmarks open many connections at once
    simulator: SimulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or vanish mid-answer are expected in fault tests.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _connection_ids = itertools.count(1)

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_id = next(self._connection_ids)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        url = urlsplit(self.path)
        try:
            parsed = jsonlib.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
        request = SimRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers=Headers(list(self.headers.items())),
            body=body,
            json=parsed,
            connection_id=self.connection_id,
        )
        response = self.server.simulator._handle(request)
        if response is None:  # injected disconnect: close without a single byte
            self.close_connection = True
            return
        self._send(response)

    def _send(self, response: SimResponse) -> None:
        if response.raw is not None:
            payload = response.raw
        else:
            payload = b"" if response.json is None else jsonlib.dumps(response.json).encode()
        try:
            self.send_response(response.status)
            headers = {k.lower(): (k, v) for k, v in (response.headers or {}).items()}
            if payload and "content-type" not in headers:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in headers.values():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if response.trickle > 0:
                for index in range(len(payload)):
                    self.wfile.write(payload[index : index + 1])
                    self.wfile.flush()
                    if self.server.simulator._stopping.wait(response.trickle):
                        break
            else:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class SimulatorServer:
    """Base class: an HTTP/1.1 server on ``127.0.0.1:<ephemeral>`` with routes, a request
    log, per-request latency and fault injection.

    Use as a context manager (``with PleoSimulator() as pleo: ...``) or call
    ``start()`` / ``stop()``. Subclasses call ``route()`` in ``__init__`` and may
    override ``unknown_route()`` and ``decorate()`` to give answers their API's shape.
    """

    # Paths whose request bodies carry credentials by protocol (an OAuth token endpoint):
    # the leak checks allow them there and nowhere else.
    credential_paths: frozenset[str] = frozenset()
    # Request headers that carry credentials by protocol (lower case): the only headers
    # the leak checks allow a credential in.
    credential_headers: frozenset[str] = frozenset()

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        """Seconds slept before answering every request (simulated network round trip)."""
        self.lock = threading.RLock()
        """Guards subclass state; handlers run on many threads."""
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self._requests: list[SimRequest] = []
        self._exchanges: list[Exchange] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SimulatorServer:
        """Bind an ephemeral port and serve from a daemon thread. Returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _RequestHandler)
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; sleeping (delayed) handlers are woken."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ routing

    def route(self, method: str, path_regex: str, handler: Handler) -> None:
        """Register ``handler(request, **named_groups) -> SimResponse`` for a method and a
        path regex (matched in full against the path, without the query string)."""
        self._routes.append((method.upper(), re.compile(path_regex), handler))

    def unknown_route(self, request: SimRequest, *, path_known: bool) -> SimResponse:
        """Answer for a path no route matches (404) or a method the path does not take (405)."""
        if path_known:
            return SimResponse(405, {"type": "METHOD_NOT_ALLOWED", "message": f"{request.method} not allowed"})
        return SimResponse(404, {"type": "NOT_FOUND", "message": f"No route for {request.method} {request.path}"})

    def decorate(self, request: SimRequest, response: SimResponse) -> SimResponse:
        """Hook to add headers to every answer (including injected ones). Default: unchanged."""
        return response

    # ------------------------------------------------------------ request log

    @property
    def requests(self) -> list[SimRequest]:
        """A copy of every request received so far, in arrival order (faulted ones included)."""
        with self.lock:
            return list(self._requests)

    @property
    def exchanges(self) -> list[Exchange]:
        """A copy of every request with the answer it got, in arrival order (dropped
        connections have no answer and are not listed)."""
        with self.lock:
            return list(self._exchanges)

    def reset_requests(self) -> None:
        """Forget the recorded requests and exchanges."""
        with self.lock:
            self._requests.clear()
            self._exchanges.clear()

    def requests_to(self, method: str, path_regex: str) -> list[SimRequest]:
        """Recorded requests whose method and (full) path match."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and pattern.fullmatch(r.path)]

    # ------------------------------------------------------------ faults

    def inject(
        self,
        method: str,
        path_regex: str,
        *,
        status: int | None = None,
        json: Any | None = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
        delay: float = 0.0,
        disconnect: bool = False,
        when: Callable[[SimRequest], bool] | None = None,
        raw: bytes | None = None,
        trickle: float = 0.0,
    ) -> Fault:
        """Make the next ``times`` requests matching ``method`` (``"*"`` for any) and
        ``path_regex`` (full match) misbehave; ``times=None`` means forever.

        - ``status`` (with optional ``json``/``headers``, or ``raw`` bytes sent as they are):
          answer that instead of the normal answer;
        - ``delay`` alone: sleep that long, then answer normally (to trigger client timeouts);
          combined with ``status`` or ``disconnect`` the sleep comes first;
        - ``disconnect=True``: close the socket without sending any response;
        - ``trickle`` (with ``status``): send the body one byte every ``trickle`` seconds.

        ``when`` narrows the fault to requests it returns true for (e.g. one agreement's
        token); other requests neither trigger nor consume it. Faults are consumed in
        registration order; the returned ``Fault`` counts its ``hits``.
        """
        if status is None and not disconnect and delay <= 0:
            raise ValueError("inject() needs status=, delay= or disconnect=True")
        fault = Fault(
            method=method.upper(),
            path_regex=re.compile(path_regex),
            status=status,
            json=json,
            headers=headers,
            times=times,
            delay=delay,
            disconnect=disconnect,
            when=when,
            raw=raw,
            trickle=trickle,
        )
        with self.lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self.lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget recorded requests and injected faults; subclasses also drop their seeded
        state. The server keeps running on the same port."""
        with self.lock:
            self._requests.clear()
            self._exchanges.clear()
            self._faults.clear()

    # ------------------------------------------------------------ dispatch

    def _take_fault(self, request: SimRequest) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.hits += 1
                    return fault
        return None

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _handle(self, request: SimRequest) -> SimResponse | None:
        """Record, apply latency and faults, route. ``None`` means: drop the connection."""
        with self.lock:
            self._requests.append(request)
        self._sleep(self.latency)
        fault = self._take_fault(request)
        if fault is not None:
            self._sleep(fault.delay)
            if fault.disconnect:
                return None
            if fault.status is not None:
                injected = SimResponse(fault.status, fault.json, raw=fault.raw, trickle=fault.trickle)
                decorated = self.decorate(request, injected)
                decorated.headers = {**(decorated.headers or {}), **(fault.headers or {})}
                return self._record(request, decorated, injected=True)
        try:
            response = self._route(request)
        except Exception as error:  # a simulator bug must reach the test as a 500, not a dropped socket
            response = SimResponse(500, {"type": "SIMULATOR_ERROR", "message": f"{type(error).__name__}: {error}"})
        return self._record(request, self.decorate(request, response), injected=False)

    def _record(self, request: SimRequest, response: SimResponse, *, injected: bool) -> SimResponse:
        with self.lock:
            self._exchanges.append(Exchange(request, response, injected))
        return response

    def _route(self, request: SimRequest) -> SimResponse:
        path_known = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            path_known = True
            if method == request.method:
                return handler(request, **match.groupdict())
        return self.unknown_route(request, path_known=path_known)


class OAuthProvider:
    """What every OAuth simulator shares (mixed in before ``SimulatorServer``): its grants,
    the tokens they issued (for the leak checks), the number of token calls, and a one-shot
    quirk for the next token answer. A subclass sets ``token_path`` and keeps ``_grants``
    (under ``self.lock``) and ``next_token_answer_quirk``."""

    token_path: str
    lock: threading.RLock
    _grants: list[Any]
    # Fields to overwrite in the next successful token answer only (e.g. {"expires_in": None}):
    # a rotation whose answer does not fully parse, which must still keep the new refresh token.
    next_token_answer_quirk: dict[str, Any]

    @property
    def grants(self) -> list[Any]:
        """Every grant made so far (revoked ones included)."""
        with self.lock:
            return list(self._grants)

    def issued_secrets(self) -> list[str]:
        """Every token the grants currently hold or held last (for the leak checks)."""
        return [
            token
            for grant in self.grants
            for token in (grant.access_token, grant.refresh_token, grant.previous_refresh_token)
            if token
        ]

    @property
    def token_calls(self) -> int:
        """Requests received at the token endpoint."""
        return len(self.requests_to("POST", "(?i)" + re.escape(self.token_path)))  # type: ignore[attr-defined]

    def _token_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """A successful token answer, with the one-shot quirk applied (and used up)."""
        answer = {**body, **self.next_token_answer_quirk}
        self.next_token_answer_quirk = {}
        return answer
