"""The one place HTTP clients are made: TLS verification on, bounded timeouts,
no redirects (a redirect would carry our credentials to another host), no cookies (one
client serves every company of the container: a cookie one company's answer set must never
ride along with another company's request), and every answer bounded (``AnswerBounds``):
at most so many bytes once decompressed, the whole exchange within a deadline, so that one
company's upstream cannot take the memory or the time of the whole batch."""

from __future__ import annotations

import email.utils
import math
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import certifi
import httpcore
import httpx

from .errors import TransientError
from .models import FailureReasonType

USER_AGENT = "export-preflight/1.0"
# Connections per client (one client per remote base URL, shared by every job of the
# container). A batch of ten jobs has up to 30 requests in flight to one accounting system
# at once (three look-ups per job side by side); a request beyond the pool's size waits for
# another one's connection, a whole round trip (at 20, ten of those 30 did). The check
# pool's size (runtime.CHECK_WORKERS): a request waits only beyond that.
MAX_CONNECTIONS = 64

# Caps on one answer, decompressed (a gzip answer is counted as it inflates, so 100 KB that
# inflate to 100 MB are cut at the cap). Sized from the largest legitimate answers
# (docs/checks.md, "The checks"): Pleo's export job and event answers are a few KB; an accounting
# system's largest are its chart pages (QuickBooks 1000 accounts, about 1 MB; e-conomic
# 1000 VAT accounts or journals; Fortnox 500 accounts, about 0.3 MB; Xero's unpaged chart,
# about 0.6 KB an account); token answers are under 2 KB.
PLEO_ANSWER_BYTES = 1024 * 1024
ACCOUNTING_ANSWER_BYTES = 4 * 1024 * 1024
TOKEN_ANSWER_BYTES = 64 * 1024
# Compressed bytes are handed to the decompressor in slices of this size: one slice inflates
# to at most ~1032 times its size (deflate's limit), about 1 MB, so a bomb takes no more than
# the cap and a couple of MB before it is cut.
INFLATE_SLICE = 1024
# The request extension that carries a call's bounds to ``BoundedTransport``.
ANSWER_BOUNDS = "export_preflight.answer_bounds"


@dataclass(frozen=True)
class AnswerBounds:
    """How much of one answer is read, and for how long: at most ``max_bytes`` (decompressed),
    and the whole exchange (waiting for a connection, connecting, sending, every read) within
    ``deadline_seconds``. A read that stalls is cut by the read timeout, which never exceeds
    the deadline; a server that trickles is cut at the first byte past the deadline."""

    max_bytes: int
    deadline_seconds: float


class AnswerTooLarge(httpx.TransportError):
    """An answer longer than its cap (``AnswerBounds.max_bytes``); read no further."""

    def __init__(self, max_bytes: int, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"answer longer than {max_bytes} bytes", request=request)
        self.max_bytes = max_bytes


class AnswerTooSlow(httpx.TimeoutException):
    """An exchange still unfinished at its deadline (``AnswerBounds.deadline_seconds``)."""

    def __init__(self, deadline_seconds: float, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"answer unfinished after {deadline_seconds:g} s", request=request)
        self.deadline_seconds = deadline_seconds


class AnswerUnreadable(httpx.DecodingError):
    """An answer in an encoding we do not read (e.g. gzip inside gzip: a bomb's multiplier)."""


# When the exchange under way in this thread must be over (``time.monotonic()``), if any.
_EXCHANGE_END: ContextVar[float | None] = ContextVar("export_preflight_exchange_end", default=None)


@contextmanager
def _exchange_until(end: float, bounds: AnswerBounds, request: httpx.Request | None = None) -> Iterator[None]:
    """Every socket wait inside ends by ``end``; a timeout once ``end`` has passed is the
    exchange's deadline (``AnswerTooSlow``), an earlier one stays a plain timeout."""
    token = _EXCHANGE_END.set(end)
    try:
        yield
    except httpx.TimeoutException:
        if time.monotonic() >= end:
            raise AnswerTooSlow(bounds.deadline_seconds, request=request) from None
        raise
    finally:
        _EXCHANGE_END.reset(token)


def _wait_at_most(timeout: float | None, timed_out: type[Exception]) -> float | None:
    """One socket wait of the exchange under way: ``timeout``, but never past the exchange's
    end; ``timed_out`` once the end has passed."""
    end = _EXCHANGE_END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise timed_out("the exchange's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline of the exchange using it (a pooled
    connection serves one exchange at a time). Without it a server trickling its status line
    and headers, a byte at a time inside the read timeout, holds the exchange as long as it
    likes: the deadline is otherwise checked only once the headers are in."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _wait_at_most(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _wait_at_most(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        wait = _wait_at_most(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """httpcore's own sockets, as ``_DeadlineStream``s."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        wait = _wait_at_most(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(super().connect_tcp(host, port, wait, local_address, socket_options))


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport, on a connection pool of ``_DeadlineBackend`` connections (the same
    pool ``HTTPTransport`` builds; httpx has no parameter for its network backend, so the pool
    is replaced: tests/unit/test_http_clients.py holds a trickled header to the deadline)."""

    def __init__(self, *, verify: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


class _Slices(httpx.SyncByteStream):
    """The raw (possibly compressed) body in slices of ``INFLATE_SLICE``, cut at the deadline."""

    def __init__(self, raw: httpx.Response, bounds: AnswerBounds, end: float) -> None:
        self._raw = raw
        self._bounds = bounds
        self._end = end

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        chunks = self._raw.iter_raw()
        while True:
            with _exchange_until(self._end, self._bounds):
                chunk = next(chunks, None)
            if chunk is None:
                return
            if time.monotonic() > self._end:
                raise AnswerTooSlow(self._bounds.deadline_seconds)
            size += len(chunk)
            if size > self._bounds.max_bytes:  # compressed, already past the cap
                raise AnswerTooLarge(self._bounds.max_bytes)
            for start in range(0, len(chunk), INFLATE_SLICE):
                yield chunk[start : start + INFLATE_SLICE]

    def close(self) -> None:
        self._raw.close()


class _Bounded(httpx.SyncByteStream):
    """The decompressed body (httpx's own decoders), cut at the cap and at the deadline."""

    def __init__(self, raw: httpx.Response, bounds: AnswerBounds, end: float) -> None:
        self._raw = raw
        self._bounds = bounds
        self._decoded = httpx.Response(raw.status_code, headers=raw.headers, stream=_Slices(raw, bounds, end))

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._decoded.iter_bytes():
            size += len(chunk)
            if size > self._bounds.max_bytes:
                raise AnswerTooLarge(self._bounds.max_bytes)
            yield chunk

    def close(self) -> None:
        self._raw.close()


class BoundedTransport(httpx.BaseTransport):
    """Wraps a transport so that every answer is read within its ``AnswerBounds`` (the
    request's ``ANSWER_BOUNDS`` extension, else the client's default). The answer it hands
    on is already decompressed (no ``Content-Encoding``), so whoever reads it — ``send``,
    an auth flow reading a 401, a direct ``client.get`` — reads a bounded body."""

    def __init__(self, inner: httpx.BaseTransport, default: AnswerBounds) -> None:
        self._inner = inner
        self._default = default

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        bounds = request.extensions.get(ANSWER_BOUNDS, self._default)
        end = time.monotonic() + bounds.deadline_seconds
        timeouts = request.extensions.get("timeout")
        if isinstance(timeouts, dict):  # no single wait may outlast the whole deadline
            request.extensions["timeout"] = {
                phase: bounds.deadline_seconds if seconds is None else min(seconds, bounds.deadline_seconds)
                for phase, seconds in timeouts.items()
            }
        with _exchange_until(end, bounds, request):
            raw = self._inner.handle_request(request)
        encodings = [
            coding
            for coding in (
                value.strip().lower() for value in raw.headers.get_list("Content-Encoding", split_commas=True)
            )
            if coding not in ("", "identity")
        ]
        if time.monotonic() > end or len(encodings) > 1:
            raw.close()
            if len(encodings) > 1:
                raise AnswerUnreadable("stacked content encodings", request=request)
            raise AnswerTooSlow(bounds.deadline_seconds, request=request)
        headers = [
            (name, value)
            for name, value in raw.headers.raw
            if name.lower() not in (b"content-encoding", b"content-length")
        ]
        return httpx.Response(
            raw.status_code, headers=headers, stream=_Bounded(raw, bounds, end), extensions=raw.extensions
        )

    def close(self) -> None:
        self._inner.close()


@cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle costs ~25 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


def new_client(
    base_url: str,
    *,
    timeout_seconds: float,
    max_connections: int = MAX_CONNECTIONS,
    max_answer_bytes: int = PLEO_ANSWER_BYTES,
) -> httpx.Client:
    """A pooled, thread-safe client bound to one base URL. ``timeout_seconds`` bounds each
    wait and each whole exchange; answers are capped at ``max_answer_bytes`` unless the call
    says otherwise (``send`` passes its remote system's cap). Proxies and credentials from the
    environment (``trust_env``) are ignored: every request goes through ``BoundedTransport``."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
        follow_redirects=False,
        transport=BoundedTransport(
            _DeadlineTransport(verify=_tls_context(), limits=limits),
            AnswerBounds(max_answer_bytes, timeout_seconds),
        ),
        trust_env=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # accepts none, sends none
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), when present and sane;
    anything else (``soon``, ``nan``, a malformed date) is ignored: None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (ValueError, TypeError, OverflowError):
            return None
        if parsed.tzinfo is None:  # an HTTP date is GMT
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def is_transient_status(status_code: int) -> bool:
    """429 and 5xx may succeed later; everything else is an answer."""
    return status_code == 429 or status_code >= 500


def describe_transport_error(error: httpx.TransportError) -> str:
    """A short, secret-free description of a transport failure (no URL, no query, no body)."""
    if isinstance(error, AnswerTooSlow):
        return f"did not finish answering within {error.deadline_seconds:g} s"
    if isinstance(error, AnswerTooLarge):
        return f"sent an answer longer than our limit of {error.max_bytes // 1024} KB (cut off)"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unreachable"
    return "connection failed"


@dataclass(frozen=True)
class RemoteErrors:
    """How one remote system's transient errors are reported: the exception to raise and
    the reason type each kind of error gets when the retry budget is spent."""

    error: type[TransientError]
    timeout: FailureReasonType
    unreachable: FailureReasonType
    rate_limit: FailureReasonType
    answer_bytes: int = PLEO_ANSWER_BYTES
    """The cap on one of this remote system's answers, decompressed (token answers: ``TOKEN_ANSWER_BYTES``)."""


@dataclass(frozen=True)
class Answer:
    """A whole answer read within a deadline (see ``fetch_within``)."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def fetch_within(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    deadline_seconds: float,
    remote: str,
    what: str,
    errors: RemoteErrors,
    max_bytes: int = TOKEN_ANSWER_BYTES,
    **kwargs: Any,
) -> Answer:
    """One request whose *total* time (connect, send, every read) stays within
    ``deadline_seconds``; per-read timeouts alone let a trickling server run on for ever.
    A transport error, a spent deadline, an answer over ``max_bytes``, 429 and 5xx raise
    ``errors.error``. (A client from ``new_client`` enforces the same bounds in its
    transport; the checks here hold for any client.)"""
    end = time.monotonic() + deadline_seconds
    timeout = httpx.Timeout(deadline_seconds, connect=min(deadline_seconds, 3.0))
    bounds = {ANSWER_BOUNDS: AnswerBounds(max_bytes, deadline_seconds)}
    try:
        with http.stream(method, path, timeout=timeout, extensions=bounds, **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise AnswerTooLarge(max_bytes)
                if time.monotonic() > end:
                    raise AnswerTooSlow(deadline_seconds)
                chunks.append(chunk)
    except httpx.TransportError as error:
        raise _transport_error(error, remote=remote, what=what, errors=errors) from None
    except httpx.DecodingError:
        raise _unreadable(remote=remote, what=what, errors=errors) from None
    if is_transient_status(response.status_code):
        raise _transient_status(response, remote=remote, what=what, errors=errors)
    return Answer(response.status_code, response.headers, b"".join(chunks))


def _transport_error(error: httpx.TransportError, *, remote: str, what: str, errors: RemoteErrors) -> TransientError:
    timed_out = isinstance(error, httpx.TimeoutException)
    return errors.error(
        f"{remote} {describe_transport_error(error)} while {what}",
        reason_type=errors.timeout if timed_out else errors.unreachable,
    )


def _unreadable(*, remote: str, what: str, errors: RemoteErrors) -> TransientError:
    return errors.error(f"{remote} sent an answer we could not read while {what}", reason_type=errors.unreachable)


def _transient_status(response: httpx.Response, *, remote: str, what: str, errors: RemoteErrors) -> TransientError:
    rate_limited = response.status_code == 429
    return errors.error(
        f"{remote} {'is rate limiting us (429)' if rate_limited else f'answered {response.status_code}'} while {what}",
        reason_type=errors.rate_limit if rate_limited else errors.unreachable,
        retry_after=retry_after_seconds(response),
    )


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    remote: str,
    what: str,
    errors: RemoteErrors,
    inspect: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and read its whole answer within bounds: at most
    ``errors.answer_bytes`` decompressed, the exchange within the client's timeout (see
    ``AnswerBounds``). A transport error, an answer over the cap or past the deadline, an
    answer we cannot decode, 429 and 5xx raise ``errors.error`` (a retry).

    ``inspect`` sees every response first and may raise a permanent error of that remote system.
    """
    deadline = http.timeout.read or http.timeout.connect or 30.0
    bounds = {ANSWER_BOUNDS: AnswerBounds(errors.answer_bytes, deadline)}
    try:
        response = http.request(method, path, extensions=bounds, **kwargs)
    except httpx.TransportError as error:
        raise _transport_error(error, remote=remote, what=what, errors=errors) from None
    except httpx.DecodingError:
        raise _unreadable(remote=remote, what=what, errors=errors) from None
    if inspect is not None:
        inspect(response)
    if is_transient_status(response.status_code):
        raise _transient_status(response, remote=remote, what=what, errors=errors)
    return response
