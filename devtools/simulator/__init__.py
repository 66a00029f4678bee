"""A building of simulated sub-meters served over a real Modbus TCP server.

Used by the tests and by the demo; start it on its own with
``python -m devtools.simulator --port 5020 --meters 12``.
"""

from .server import REGISTER_MAP, MeterSimulator, SimulatedMeter

__all__ = ["REGISTER_MAP", "MeterSimulator", "SimulatedMeter"]
