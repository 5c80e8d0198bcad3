"""An embedded, deterministic emulator of Capillary's bulk customer and hierarchy endpoints.

Use it in-process through ``Sandbox().transport()`` (or ``sync_transport()``), or over real HTTP
on a loopback port with :func:`serve`.
"""

from ._handler import FAULT_KINDS, Faults, RequestRecord, Sandbox
from ._org import Family
from ._server import SandboxServer, serve

__all__ = [
    "FAULT_KINDS",
    "Family",
    "Faults",
    "RequestRecord",
    "Sandbox",
    "SandboxServer",
    "serve",
]
