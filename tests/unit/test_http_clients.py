"""The shared HTTP clients: no cookie of one company rides along with another's request, and
every answer is read within bounds (bytes, decompressed, and a total deadline)."""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import threading
import time
import tracemalloc
import uuid
import zlib
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from export_preflight.connectors.base import request_or_raise
from export_preflight.errors import AccountingSystemUnavailable, PleoUnavailable
from export_preflight.http import ACCOUNTING_ANSWER_BYTES, new_client, retry_after_seconds
from export_preflight.models import FailureReasonType, PleoApiKey
from export_preflight.pleo import PleoClient
from sandbox.simulators.base import SimulatorServer


@respx.mock
def test_a_cookie_set_by_an_answer_is_never_sent_again():
    route = respx.get("https://api.example.test/self").mock(
        return_value=httpx.Response(200, json={}, headers={"Set-Cookie": "session=company-a; Path=/"})
    )
    client = new_client("https://api.example.test", timeout_seconds=2)

    client.get("/self", headers={"X-Company": "a"})
    client.get("/self", headers={"X-Company": "b"})

    assert route.call_count == 2
    assert "cookie" not in route.calls[1].request.headers
    assert len(client.cookies.jar) == 0


# ---------------------------------------------------------------- every answer bounded
# A real loopback server (SimulatorServer with nothing but injected answers) behind the
# real clients: the Pleo client and a connector's request (request_or_raise).

BOMB_INFLATED = 100_000_000


def gzip_bomb(inflated: int = BOMB_INFLATED, *, layers: int = 1) -> bytes:
    """About 100 KB of gzip that inflate to ``inflated`` zeros (``layers`` times gzipped)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    zeros = bytes(1_000_000)
    bomb = b"".join([*(packer.compress(zeros) for _ in range(inflated // len(zeros))), packer.flush()])
    for _ in range(layers - 1):
        bomb = gzip.compress(bomb, compresslevel=9)
    return bomb


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as running:
        yield running


def pleo_get_job(server: SimulatorServer, timeout: float = 2.0, auth: httpx.Auth | None = None) -> None:
    with new_client(server.base_url, timeout_seconds=timeout) as http:
        PleoClient(http, auth or PleoApiKey(apiKey="pleo-k3y")).get_job(uuid.uuid4())


def connector_get(server: SimulatorServer, timeout: float = 2.0) -> None:
    with new_client(server.base_url, timeout_seconds=timeout) as http:
        request_or_raise(http, "GET", "/accounts", system="e-conomic", what="looking up the mapped accounts")


REMOTES = {
    "pleo": (pleo_get_job, PleoUnavailable, FailureReasonType.SERVICE_UNREACHABLE, FailureReasonType.SERVICE_TIMEOUT),
    "connector": (
        connector_get,
        AccountingSystemUnavailable,
        FailureReasonType.ACCOUNTING_SYSTEM_UNREACHABLE,
        FailureReasonType.ACCOUNTING_SYSTEM_TIMEOUT,
    ),
}


def peak_bytes(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        call()
        raised = None
    except BaseException as error:
        raised = error
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, raised


@pytest.mark.parametrize("remote", list(REMOTES))
def test_a_gzip_bomb_is_cut_at_the_cap_in_bounded_memory(server, remote):
    call, error, unreachable, _ = REMOTES[remote]
    bomb = gzip_bomb()
    server.inject("GET", ".*", status=200, raw=bomb, headers={"Content-Encoding": "gzip"}, times=None)

    peak, raised = peak_bytes(lambda: call(server))

    assert isinstance(raised, error), raised
    assert raised.reason_type is unreachable
    assert "longer than our limit" in str(raised) and "\0" not in str(raised)
    # Before: the whole 100 MB inflated (peak about 200 MB). Now: the cap plus a slice's inflation.
    assert peak < ACCOUNTING_ANSWER_BYTES + 8_000_000 < BOMB_INFLATED / 8, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("remote", list(REMOTES))
def test_gzip_inside_gzip_is_not_read(server, remote):
    call, error, unreachable, _ = REMOTES[remote]
    server.inject("GET", ".*", status=200, raw=gzip_bomb(layers=2), headers={"Content-Encoding": "gzip, gzip"})

    peak, raised = peak_bytes(lambda: call(server))

    assert isinstance(raised, error) and raised.reason_type is unreachable, raised
    assert peak < 4_000_000, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("remote", list(REMOTES))
def test_a_body_that_does_not_inflate_is_the_remotes_fault(server, remote):
    call, error, unreachable, _ = REMOTES[remote]
    server.inject("GET", ".*", status=200, raw=b"this is not gzip", headers={"Content-Encoding": "gzip"})

    with pytest.raises(error) as raised:
        call(server)

    assert raised.value.reason_type is unreachable and "could not read" in str(raised.value)


@pytest.mark.parametrize("remote", list(REMOTES))
def test_a_trickling_server_is_cut_at_the_deadline(server, remote):
    call, error, _, timeout = REMOTES[remote]
    # 200 bytes, one every 50 ms: every read is quick, the whole answer would take 10 s.
    server.inject("GET", ".*", status=200, raw=b"{" + b" " * 198 + b"}", trickle=0.05)

    started = time.monotonic()
    with pytest.raises(error) as raised:
        call(server, timeout=1.0)
    elapsed = time.monotonic() - started

    assert raised.value.reason_type is timeout
    assert "did not finish answering within 1 s" in str(raised.value)
    # Before: the whole 10 s (each read well within the 1 s timeout). Now: the deadline.
    assert 0.9 < elapsed < 1.6, f"{elapsed:.2f} s"


class TricklingServer:
    """A loopback server that answers every connection with its status line and headers one
    byte every 50 ms, then a short body: a single read never stalls long enough for the read
    timeout, the head alone takes ``len(HEAD) * 0.05`` s (about 5 s)."""

    HEAD = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
        + b"x" * 40
        + b"\r\nContent-Length: 2\r\n\r\n"
    )

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                try:
                    for byte in self.HEAD:
                        if self._stop.wait(0.05):
                            return
                        connection.sendall(bytes([byte]))
                    connection.sendall(b"{}")
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._socket.close()


@pytest.mark.parametrize("remote", list(REMOTES))
def test_a_server_trickling_its_headers_is_cut_at_the_deadline(remote):
    call, error, _, timeout = REMOTES[remote]
    server = TricklingServer()
    try:
        started = time.monotonic()
        with pytest.raises(error) as raised:
            call(server, timeout=1.0)  # type: ignore[arg-type]
        elapsed = time.monotonic() - started
    finally:
        server.close()

    assert raised.value.reason_type is timeout
    assert "did not finish answering within 1 s" in str(raised.value)
    # Before: the whole head, ~5 s (each byte well within the 1 s read timeout). Now: the deadline.
    assert 0.9 < elapsed < 1.6, f"{elapsed:.2f} s"


class ReadsEveryAnswer(httpx.Auth):
    """An auth flow that reads each answer's body (as OAuthBearer does, to judge a 401)."""

    requires_response_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield request


def test_an_answer_an_auth_flow_reads_is_bounded_too(server):
    server.inject("GET", ".*", status=401, raw=gzip_bomb(), headers={"Content-Encoding": "gzip"})

    peak, raised = peak_bytes(lambda: pleo_get_job(server, auth=ReadsEveryAnswer()))

    assert isinstance(raised, PleoUnavailable), raised
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def test_a_legitimate_large_gzip_answer_is_read_whole(server):
    """Just under the accounting cap, gzipped: read and inflated in full."""
    body = json.dumps({"collection": [{"accountNumber": n, "name": "x" * 100} for n in range(30_000)]}).encode()
    assert 3_000_000 < len(body) < ACCOUNTING_ANSWER_BYTES
    server.inject("GET", ".*", status=200, raw=gzip.compress(body), headers={"Content-Encoding": "gzip"})

    with new_client(server.base_url, timeout_seconds=2) as http:
        response = request_or_raise(http, "GET", "/accounts", system="e-conomic", what="listing")

    assert response.content == body and "content-encoding" not in response.headers


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("soon", None),
        ("", None),
        ("nan", None),
        ("inf", None),
        ("Mon, 99 Foo 2024 00:00:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 2015 07:28:00", 0.0),  # no zone: GMT, in the past
    ],
)
def test_retry_after_is_seconds_or_an_http_date_and_anything_else_is_ignored(value, seconds):
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": value})) == seconds


def test_a_retry_after_in_the_future_counts_down():
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 100 < (retry_after_seconds(httpx.Response(429, headers={"Retry-After": when})) or 0) <= 120


@pytest.mark.parametrize("remote", list(REMOTES))
def test_a_429_whose_retry_after_is_not_a_time_is_a_rate_limit_without_a_hint(server, remote):
    call, error, _, _ = REMOTES[remote]
    server.inject("GET", ".*", status=429, headers={"Retry-After": "soon"})

    with pytest.raises(error) as raised:
        call(server)

    assert raised.value.retry_after is None
    assert raised.value.reason_type in (
        FailureReasonType.PLEO_RATE_LIMIT,
        FailureReasonType.ACCOUNTING_SYSTEM_RATE_LIMIT,
    )
