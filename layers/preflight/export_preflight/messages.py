"""The claimed-jobs message: parsing and validation. Anything that is not a claimed job
raises ``UnprocessableMessage`` (it goes to the DLQ at once, with the reason)."""

from __future__ import annotations

import json

from pydantic import ValidationError

from .errors import UnprocessableMessage
from .models import ClaimedJobMessage


def parse_message(body: str | None, *, max_bytes: int) -> ClaimedJobMessage:
    """Validate a claimed-jobs message; anything else raises ``UnprocessableMessage``."""
    if body is None or not body.strip():
        raise UnprocessableMessage("message body is empty", kind="malformed_message")
    size = len(body.encode(errors="replace"))
    if size > max_bytes:
        raise UnprocessableMessage(f"message body is {size} bytes, more than {max_bytes}", kind="malformed_message")
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise UnprocessableMessage(f"message body is not JSON ({error.msg})", kind="malformed_message") from None
    except RecursionError:
        raise UnprocessableMessage("message body is JSON nested too deeply", kind="malformed_message") from None
    except ValueError:  # e.g. an integer longer than Python converts (4,300 digits)
        raise UnprocessableMessage(
            "message body holds a value JSON parsing refuses", kind="malformed_message"
        ) from None
    if not isinstance(document, dict):
        raise UnprocessableMessage("message body is not a JSON object", kind="malformed_message")
    try:
        return ClaimedJobMessage.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UnprocessableMessage(f"message is not a claimed job ({problems})", kind="malformed_message") from None
