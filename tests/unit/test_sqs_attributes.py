"""What goes into an SQS message attribute (``rejectKind``, ``rejectReason``): only the
characters SQS accepts (API reference, SendMessage / MessageAttributeValue:
#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF), bounded."""

from __future__ import annotations

import re

import pytest

from export_preflight.sanitize import MAX_ATTRIBUTE_LENGTH, sqs_attribute_text

SQS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@pytest.mark.parametrize(
    "text",
    [
        "jobId: Input should be a valid UUID, invalid character: found `\x00` at 0",
        "escape \x1b[31mred\x1b[0m and bell \x07",
        "a lone surrogate \ud800 and \udfff",
        "non-characters \ufffe \uffff",
        "line\nbreaks\r\nand\ttabs",
        "",
        "x" * 10_000,
    ],
)
def test_only_characters_sqs_accepts_within_the_bound(text):
    value = sqs_attribute_text(text)
    assert SQS_TEXT.fullmatch(value), repr(value)
    assert 0 < len(value) <= MAX_ATTRIBUTE_LENGTH
    assert "\n" not in value and "\r" not in value  # one line


def test_readable_text_is_kept_as_it_is():
    text = "message is not a claimed job (jobId: Input should be a valid UUID) — ÆØÅ 😀"
    assert sqs_attribute_text(text) == text
    assert sqs_attribute_text("found `\x00` at 0") == "found `\ufffd` at 0"


def test_every_code_point_sqs_refuses_is_replaced_and_no_other():
    """``_NOT_SQS_TEXT`` is written as the complement of SQS's set (cheaper to compile):
    checked against the set as the API reference states it, for every code point."""
    from export_preflight.sanitize import _NOT_SQS_TEXT

    refused = "".join(chr(c) for c in range(0x110000) if not SQS_TEXT.fullmatch(chr(c)))
    accepted = "".join(chr(c) for c in range(0x110000) if SQS_TEXT.fullmatch(chr(c)))
    assert _NOT_SQS_TEXT.sub("", refused) == ""
    assert _NOT_SQS_TEXT.sub("", accepted) == accepted
