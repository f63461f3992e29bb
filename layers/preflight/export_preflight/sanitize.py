"""Make a text safe to send to Pleo or log: one line, bounded, no URLs with query
strings, no traceback, no known secret values."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_REASON_LENGTH = 1000

_URL_QUERY = re.compile(r"(https?://[^\s?#]+)[?#]\S*")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def sanitize_reason(text: str, secrets: Iterable[str] = ()) -> str:
    """The text as we may show it to a bookkeeper."""
    text = _TRACEBACK.sub("", text)
    text = _URL_QUERY.sub(r"\1", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > MAX_REASON_LENGTH:
        text = text[: MAX_REASON_LENGTH - 1].rstrip() + "…"
    return text
