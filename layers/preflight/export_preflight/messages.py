"""Queue messages (a claimed job, a company to check for readiness): parsing and
validation. Anything else raises ``UnprocessableMessage`` (it goes to the DLQ at once,
with the reason)."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from .errors import UnprocessableMessage
from .models import ClaimedJobMessage

MessageT = TypeVar("MessageT", bound=BaseModel)


def parse_message(
    body: str | None,
    *,
    max_bytes: int,
    model: type[MessageT] = ClaimedJobMessage,  # type: ignore[assignment]
    what: str = "a claimed job",
) -> MessageT:
    """Validate a message as ``model`` (a claimed job unless told otherwise); anything else
    raises ``UnprocessableMessage``."""
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
        return model.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise UnprocessableMessage(f"message is not {what} ({problems})", kind="malformed_message") from None
