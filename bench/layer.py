"""What the deployed layer ships, for processes that stand in for a Lambda container (the
benchmark's children, tests/unit/test_cold_imports.py). Standard library only.

The dev environment has packages the layer does not (its lock is layers/preflight/
requirements.txt): with click and rich installed, ``import httpx`` also imports httpx's
command-line client (``httpx._main``), which the deployed layer never does. ``NotInLayer``
makes such packages unimportable, as they are on Lambda."""

from __future__ import annotations

import os
from typing import Any

# (The benchmark's child imports this module before its measured imports: nothing here
# imports more than it needs at import time.)
LAYER_LOCK = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layers", "preflight", "requirements.txt"
)


def absent_from_layer(lock: str = LAYER_LOCK) -> list[str]:
    """Top-level modules installed here by distributions the layer's lock does not pin
    (rich, click, pygments, moto, ...); our own package (export-preflight) is not among them."""
    import importlib.metadata

    with open(lock) as handle:
        pinned = {_dist_name(line.split("==")[0]) for line in handle if line[:1].isalnum()}
    return sorted(
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if "export-preflight" not in dists and not any(_dist_name(d) in pinned for d in dists)
    )


def _dist_name(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


class NotInLayer:
    """A meta path finder (first on ``sys.meta_path``) under which ``names`` (top-level
    modules, see ``absent_from_layer``) cannot be imported, as on Lambda."""

    def __init__(self, names: list[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the layer)", name=name)
