"""Buildings of simulated sub-meters served over real Modbus servers, with faults.

Used by the tests, the benchmark and the demo; start it on its own with
``python -m devtools.simulator --port 5020 --meters 12`` (see ``--help`` for
several buses, profiles and faults).
"""

from .server import FAULT_KINDS, REGISTER_MAP, Fault, MeterSimulator, SimulatedMeter

__all__ = ["FAULT_KINDS", "REGISTER_MAP", "Fault", "MeterSimulator", "SimulatedMeter"]
