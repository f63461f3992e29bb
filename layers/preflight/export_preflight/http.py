"""The one place HTTP clients are made: TLS verification on, bounded timeouts,
no redirects (a redirect would carry our credentials to another host)."""

from __future__ import annotations

import email.utils
import time

import httpx

USER_AGENT = "export-preflight/1.0"


def new_client(base_url: str, *, timeout_seconds: float, max_connections: int = 20) -> httpx.Client:
    """A pooled, thread-safe client bound to one base URL."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 3.0)),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        verify=True,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
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
