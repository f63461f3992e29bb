"""The fault matrix's world: the session's one sandbox, reset for every row with settings
that keep the suite fast, and the AWS SDK fault injector installed (and cleared). (moto's
DynamoDB writes are made atomic by the sandbox itself: see sandbox/aws.py.)"""

from __future__ import annotations

import pytest

from .aws_faults import AWS_FAULTS
from .matrix import SETTINGS


@pytest.fixture
def world(session_sandbox, monkeypatch):
    session_sandbox.reset(settings=dict(SETTINGS))
    AWS_FAULTS.clear()
    AWS_FAULTS.install(monkeypatch)
    yield session_sandbox
    AWS_FAULTS.clear()
    for simulator in session_sandbox.servers:
        simulator.clear_faults()
