"""The one place HTTP clients are made: TLS verification on, bounded timeouts,
no redirects (a redirect would carry our credentials to another host), no cookies (one
client serves every company of the container: a cookie one company's answer set must never
ride along with another company's request)."""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import certifi
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


@cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle costs ~25 ms each time."""
    return ssl.create_default_context(cafile=certifi.where())


def new_client(base_url: str, *, timeout_seconds: float, max_connections: int = MAX_CONNECTIONS) -> httpx.Client:
    """A pooled, thread-safe client bound to one base URL."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        verify=_tls_context(),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # accepts none, sends none
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), when present and sane."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def is_transient_status(status_code: int) -> bool:
    """429 and 5xx may succeed later; everything else is an answer."""
    return status_code == 429 or status_code >= 500


def describe_transport_error(error: httpx.TransportError) -> str:
    """A short, secret-free description of a transport failure (no URL, no query)."""
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or host unreachable"
    return "connection failed"


@dataclass(frozen=True)
class Trouble:
    """How one remote party's transient trouble is reported: the exception to raise and
    the reason type each kind of trouble gets when the retry budget is spent."""

    error: type[TransientError]
    timeout: FailureReasonType
    unreachable: FailureReasonType
    rate_limit: FailureReasonType


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
    party: str,
    what: str,
    trouble: Trouble,
    max_bytes: int = 65_536,
    **kwargs: Any,
) -> Answer:
    """One request whose *total* time (connect, send, every read) stays within
    ``deadline_seconds``; per-read timeouts alone let a trickling server run on for ever.
    Transport trouble, a spent deadline, 429 and 5xx raise ``trouble.error``."""
    end = time.monotonic() + deadline_seconds
    timeout = httpx.Timeout(deadline_seconds, connect=min(deadline_seconds, 3.0))
    try:
        with http.stream(method, path, timeout=timeout, **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if time.monotonic() > end or size > max_bytes:
                    raise httpx.ReadTimeout("deadline spent") if size <= max_bytes else httpx.DecodingError("too big")
                chunks.append(chunk)
    except httpx.TransportError as error:
        timed_out = isinstance(error, httpx.TimeoutException)
        raise trouble.error(
            f"{party} {describe_transport_error(error)} while {what}",
            reason_type=trouble.timeout if timed_out else trouble.unreachable,
        ) from None
    except httpx.DecodingError:
        raise trouble.error(
            f"{party} sent an answer we could not read while {what}", reason_type=trouble.unreachable
        ) from None
    if is_transient_status(response.status_code):
        raise _transient_status(response, party=party, what=what, trouble=trouble)
    return Answer(response.status_code, response.headers, b"".join(chunks))


def _transient_status(response: httpx.Response, *, party: str, what: str, trouble: Trouble) -> TransientError:
    rate_limited = response.status_code == 429
    return trouble.error(
        f"{party} {'is rate limiting us (429)' if rate_limited else f'answered {response.status_code}'} while {what}",
        reason_type=trouble.rate_limit if rate_limited else trouble.unreachable,
        retry_after=retry_after_seconds(response),
    )


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    party: str,
    what: str,
    trouble: Trouble,
    inspect: Callable[[httpx.Response], None] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; transport trouble, 429 and 5xx raise ``trouble.error`` (a retry).

    ``inspect`` sees every response first and may raise a permanent, party-specific error.
    """
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as error:
        timed_out = isinstance(error, httpx.TimeoutException)
        raise trouble.error(
            f"{party} {describe_transport_error(error)} while {what}",
            reason_type=trouble.timeout if timed_out else trouble.unreachable,
        ) from None
    if inspect is not None:
        inspect(response)
    if is_transient_status(response.status_code):
        raise _transient_status(response, party=party, what=what, trouble=trouble)
    return response
