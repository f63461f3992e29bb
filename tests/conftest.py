"""The session-wide sandbox (moto + simulators on loopback). One per process."""

from __future__ import annotations

import logging

import pytest

from sandbox.world import Sandbox


@pytest.fixture(scope="session")
def session_sandbox():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with Sandbox(visibility_timeout=1) as sandbox:
        yield sandbox
