"""Local HTTP simulators of the APIs export-preflight talks to (standard library only).

- ``PleoSimulator``: Pleo Export API v3 (export jobs, job events, API keys / tokens).
- one simulator per accounting system (``economic``, ``xero``), registered in ``registry``.

All record every request, can add latency, and take injected faults; see ``base``.
"""

from .base import Fault, SimRequest, SimResponse, SimulatorServer
from .economic import Agreement, EconomicSimulator
from .pleo import PleoSimulator

__all__ = [
    "Agreement",
    "EconomicSimulator",
    "Fault",
    "PleoSimulator",
    "SimRequest",
    "SimResponse",
    "SimulatorServer",
]
