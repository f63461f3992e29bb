"""What one container keeps between invocations, held in one place: the settings, the AWS
clients, the runtimes and
state scoped to a connector (QuickBooks' per-realm request slots). Each is built on first
use by the module that owns it (``settings.get_settings``, ``aws.aws_clients``,
``runtime.get_runtime``, ...) through ``PROCESS.once``.

``reset()`` forgets all of it: the next use builds everything anew, as in a new container
(the sandbox between tests, the CLI's tests between commands)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Process:
    """Values kept under names for the life of the process (or until ``reset``)."""

    def __init__(self) -> None:
        # re-entrant: building one value (the runtime) asks for others (the settings)
        self._lock = threading.RLock()
        self._kept: dict[str, Any] = {}

    def once(self, name: str, build: Callable[[], T]) -> T:
        """The value kept under ``name``; built by ``build`` on first use, once across threads."""
        kept = self._kept.get(name, _MISSING)
        if kept is _MISSING:
            with self._lock:
                kept = self._kept.get(name, _MISSING)
                if kept is _MISSING:
                    kept = self._kept[name] = build()
        return kept  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Forget every value: a new container."""
        with self._lock:
            self._kept.clear()


_MISSING = object()
PROCESS = Process()


def reset() -> None:
    """A new container: settings, clients, runtimes and every other kept value built anew."""
    PROCESS.reset()
