"""The simulator: one pymodbus TCP server, one device id per simulated meter.

Each meter keeps a cumulative import-energy counter that advances with its
load profile while its relay is closed, and stops when the relay is open.
Register values are computed when a request arrives (a custom device
context), so what a client reads is always the meter's current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.server import ModbusTcpServer

#: The simulator's own register map (profile ``simulator`` in the integration):
#: holding registers (function 03, also answered on 04), 0-based addresses,
#: 32-bit values high word first; the relay is coil 0 (1 = closed, supply on).
REGISTER_MAP = {
    "energy_import": (0, "uint32", "0.01 kWh"),
    "power": (2, "int32", "1 W"),
    "voltage": (4, "uint16", "0.1 V"),
    "current": (5, "uint16", "0.01 A"),
}
_REGISTER_COUNT = 6
COUNTER_MAX = 0xFFFFFFFF


@dataclass
class SimulatedMeter:
    """One meter: an energy counter in 0.01 kWh steps, a load profile and a relay."""

    device_id: int
    base_power_w: float = 2000.0
    energy_centi_kwh: int = 0
    relay_closed: bool = True
    voltage_v: float = 230.0
    #: Daily swing of the load around its base, as a fraction of it.
    swing: float = 0.3
    _residual_wh: float = field(default=0.0, repr=False)

    def power_w(self, at: float) -> int:
        """Instantaneous power at simulated time ``at`` (seconds); 0 with the relay open."""
        if not self.relay_closed:
            return 0
        phase = 2 * math.pi * ((at / 86400.0) + self.device_id / 24.0)
        return round(self.base_power_w * (1 + self.swing * math.sin(phase)))

    def advance(self, seconds: float, at: float) -> None:
        """Let ``seconds`` of consumption pass, ending at simulated time ``at``."""
        self._residual_wh += self.power_w(at) * seconds / 3600.0
        steps = int(self._residual_wh // 10)  # one counter step is 10 Wh
        if steps:
            self._residual_wh -= steps * 10
            self.energy_centi_kwh = (self.energy_centi_kwh + steps) & COUNTER_MAX

    def registers(self, at: float) -> list[int]:
        """The holding-register image of the meter."""
        power = self.power_w(at)
        current = power / self.voltage_v if self.voltage_v else 0.0
        energy = self.energy_centi_kwh
        power_u32 = power & 0xFFFFFFFF
        return [
            (energy >> 16) & 0xFFFF,
            energy & 0xFFFF,
            (power_u32 >> 16) & 0xFFFF,
            power_u32 & 0xFFFF,
            round(self.voltage_v * 10) & 0xFFFF,
            round(current * 100) & 0xFFFF,
        ]


class _MeterContext(ModbusBaseDeviceContext):
    """Answers Modbus requests for one simulated meter from its live state."""

    def __init__(self, sim: MeterSimulator, meter: SimulatedMeter) -> None:
        self._sim = sim
        self._meter = meter

    def reset(self) -> None:
        """Nothing to reset: the state is the meter's."""

    async def async_getValues(
        self, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        if func_code in (3, 4):
            image = self._meter.registers(self._sim.now())
            if address + count > len(image):
                return ExcCodes.ILLEGAL_ADDRESS
            return image[address : address + count]
        if func_code in (1, 5, 15):
            if address != 0 or count != 1:
                return ExcCodes.ILLEGAL_ADDRESS
            return [self._meter.relay_closed]
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(
        self, func_code: int, address: int, values: list[int] | list[bool]
    ) -> None | ExcCodes:
        if func_code in (5, 15) and address == 0 and len(values) == 1:
            self._meter.relay_closed = bool(values[0])
            return None
        return ExcCodes.ILLEGAL_ADDRESS


class MeterSimulator:
    """A Modbus TCP server on loopback serving a set of simulated meters.

    ``speed`` runs simulated time faster than real time (the demo's fast mode).
    Tests call :meth:`advance` to let consumption pass deterministically; the
    command-line simulator runs a ticker that advances with the clock.
    """

    def __init__(
        self,
        meters: list[SimulatedMeter],
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
    ) -> None:
        self.meters = {m.device_id: m for m in meters}
        self.host = host
        self.port = port
        self.speed = speed
        self._sim_time = 0.0
        self._server: ModbusTcpServer | None = None
        self._ticker: asyncio.Task[None] | None = None

    def now(self) -> float:
        """Simulated seconds since the simulator started."""
        return self._sim_time

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass for every meter."""
        self._sim_time += seconds
        for meter in self.meters.values():
            meter.advance(seconds, self._sim_time)

    async def start(self, *, tick: float | None = None) -> None:
        """Start serving; with ``tick`` set, advance with the wall clock every ``tick`` s."""
        devices = {dev_id: _MeterContext(self, m) for dev_id, m in self.meters.items()}
        context = ModbusServerContext(devices=devices, single=False)
        if self.port == 0:
            self.port = _free_port(self.host)
        self._server = ModbusTcpServer(context, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        if tick:
            self._ticker = asyncio.create_task(self._tick(tick))

    async def _tick(self, tick: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self.advance((now - last) * self.speed)
            last = now

    async def stop(self) -> None:
        """Stop the ticker and the server, closing every connection."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
