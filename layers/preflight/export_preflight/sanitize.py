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


# SQS accepts in a String message attribute value what it accepts in a message body (API
# reference, MessageAttributeValue): #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD |
# #x10000 to #x10FFFF (API reference, SendMessage, MessageBody); a request with any other
# character is refused (InvalidMessageContents). Lone surrogates (#xD800 to #xDFFF), which a
# Python str may hold after JSON parsing, are outside the set too. Written as the complement
# of that set (the same characters as "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]",
# checked for every code point in tests/unit/test_sqs_attributes.py): a negated class over
# those wide ranges takes re about 10 ms to compile, a cold start's time.
_NOT_SQS_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_ATTRIBUTE_LENGTH = 256


def sqs_attribute_text(text: str, limit: int = MAX_ATTRIBUTE_LENGTH) -> str:
    """``text`` as a String message attribute value SQS accepts: one line, every character
    SQS refuses replaced by U+FFFD, at most ``limit`` characters, never empty."""
    text = _WHITESPACE.sub(" ", _NOT_SQS_TEXT.sub("\ufffd", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "(none given)"
