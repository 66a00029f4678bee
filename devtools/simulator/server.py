"""The simulator: Modbus servers whose device ids are simulated meters, with faults.

Each meter keeps a cumulative import-energy counter that advances with its
load profile while its relay is closed, and stops when the relay is open.
A meter speaks one of the integration's profiles (the YAML register maps
shipped in ``custom_components/prepaid_meter/meters/profiles``): its register
image is computed from the live state when a request arrives (a custom device
context), encoded with that profile's addresses, types, word order and scale,
so every shipped profile is exercised by the same reader code that reads real
meters. A server speaks Modbus TCP, RTU over TCP (a serial-to-Ethernet
gateway), or RTU on a serial port (a pty from ``socat`` in the tests).

Faults are injected per meter on command (:meth:`MeterSimulator.set_fault`):
no answer, slow answer, a Modbus exception code, a dropped connection, a
garbage frame, a relay that does not obey; and counter events
(:meth:`MeterSimulator.reset_counter`, :meth:`MeterSimulator.roll_counter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

from custom_components.prepaid_meter.meters.profiles import (
    MeterProfile,
    Register,
    load_profile,
)

#: The simulator's own register map (profile ``simulator`` in the integration):
#: holding registers (function 03, also answered on 04), 0-based addresses,
#: 32-bit values high word first; the relay is coil 0 (1 = closed, supply on),
#: mirrored in holding register 6.
REGISTER_MAP = {
    "energy_import": (0, "uint32", "0.01 kWh"),
    "power": (2, "int32", "1 W"),
    "voltage": (4, "uint16", "0.1 V"),
    "current": (5, "uint16", "0.01 A"),
    "relay_status": (6, "uint16", "1 = closed"),
}
COUNTER_MAX = 0xFFFFFFFF

FaultKind = Literal["no_answer", "slow", "exception", "drop", "garbage", "relay_stuck"]
FAULT_KINDS: tuple[str, ...] = ("no_answer", "slow", "exception", "drop", "garbage", "relay_stuck")
#: Profiles whose meters answer their registers on both 03 and 04 (the
#: simulator's own map; Chint's single-phase meter is read either way in the field).
_BOTH_FUNCTIONS = {"simulator", "ddsu666"}


@cache
def _profile(key: str) -> MeterProfile:
    return load_profile(key)


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of one meter: ``delay`` for slow answers, ``code`` for exceptions."""

    kind: FaultKind
    delay: float = 0.0
    code: int = 4  # SLAVE_FAILURE / server device failure


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
    #: Which shipped profile the meter speaks.
    profile: str = "simulator"
    power_factor: float = 1.0
    frequency_hz: float = 50.0
    fault: Fault | None = None
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
            self.energy_centi_kwh += steps

    @property
    def energy_kwh(self) -> Decimal:
        """The counter in kWh (what an unscaled, unwrapped register would show)."""
        return Decimal(self.energy_centi_kwh) / 100

    def values(self, at: float) -> dict[str, Decimal]:
        """Every quantity a profile may ask for, in canonical units (kWh, W, V, A, Hz)."""
        power = self.power_w(at)
        volts = self.voltage_v
        current = power / (volts * self.power_factor) if volts and self.power_factor else 0.0
        values = {
            "energy_import": self.energy_kwh,
            "energy_export": Decimal(0),
            "power": Decimal(power),
            "voltage": _dec(volts, 1),
            "current": _dec(current, 2),
            "power_factor": _dec(self.power_factor, 3),
            "frequency": _dec(self.frequency_hz, 2),
        }
        # A three-phase meter: the load split evenly over the phases.
        for n in (1, 2, 3):
            values[f"power_l{n}"] = _dec(power / 3, 1)
            values[f"voltage_l{n}"] = _dec(volts, 1)
            values[f"current_l{n}"] = _dec(current / 3, 2)
        return values

    def image(self, at: float, function: str) -> dict[int, int]:
        """The register words (address -> value) the meter holds for a read function."""
        profile = _profile(self.profile)
        values = self.values(at)
        words: dict[int, int] = {}
        both = self.profile in _BOTH_FUNCTIONS
        for reg in profile.registers:
            if reg.function == function or both:
                for i, word in enumerate(reg.encode(values[reg.name])):
                    words[reg.address + i] = word
        if profile.relay is not None and profile.relay.status.kind == "register":
            status = profile.relay.status
            if status.function == function or both:
                words[status.address] = status.closed if self.relay_closed else status.closed ^ 1
        return words

    def registers(self, at: float) -> list[int]:
        """The holding-register image of a ``simulator``-profile meter (addresses 0..6)."""
        image = self.image(at, "holding")
        return [image.get(a, 0) for a in range(7)]


def _dec(value: float, places: int) -> Decimal:
    return Decimal(str(round(value, places)))


class _MeterContext(ModbusBaseDeviceContext):
    """Answers Modbus requests for one simulated meter from its live state."""

    def __init__(self, sim: MeterSimulator, meter: SimulatedMeter) -> None:
        self._sim = sim
        self._meter = meter

    def reset(self) -> None:
        """Nothing to reset: the state is the meter's."""

    def _exception(self) -> ExcCodes | None:
        fault = self._meter.fault
        if fault is not None and fault.kind == "exception":
            return ExcCodes(fault.code)
        return None

    async def async_getValues(
        self, func_code: int, address: int, count: int = 1
    ) -> list[int] | list[bool] | ExcCodes:
        if (exc := self._exception()) is not None:
            return exc
        meter = self._meter
        if func_code in (3, 4):
            image = meter.image(self._sim.now(), "holding" if func_code == 3 else "input")
            wanted = range(address, address + count)
            # Unused addresses inside a read read as 0 (as the meters we model
            # do); a read touching no register of the map is refused.
            if not any(a in image for a in wanted):
                return ExcCodes.ILLEGAL_ADDRESS
            return [image.get(a, 0) for a in wanted]
        relay = _profile(meter.profile).relay
        if func_code in (1, 5, 15):
            if relay is None or relay.status.kind != "coil" or count != 1:
                return ExcCodes.ILLEGAL_ADDRESS
            if address != relay.status.address:
                return ExcCodes.ILLEGAL_ADDRESS
            return [meter.relay_closed]
        if func_code in (6, 16):
            return [0] * count  # pymodbus reads before a register write: any value will do
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(
        self, func_code: int, address: int, values: list[int] | list[bool]
    ) -> None | ExcCodes:
        if (exc := self._exception()) is not None:
            return exc
        meter = self._meter
        relay = _profile(meter.profile).relay
        if relay is None or address != relay.control.address:
            return ExcCodes.ILLEGAL_ADDRESS
        control = relay.control
        closed: bool
        if func_code in (5, 15) and control.kind == "coil" and len(values) == 1:
            closed = bool(values[0])
        elif func_code in (6, 16) and control.kind != "coil":
            written = tuple(int(v) for v in values)
            if written == control.on:
                closed = True
            elif written == control.off:
                closed = False
            else:
                return ExcCodes.ILLEGAL_VALUE
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        if meter.fault is None or meter.fault.kind != "relay_stuck":
            meter.relay_closed = closed
        return None


class _FaultyHandler(ServerRequestHandler):  # type: ignore[misc]
    """A connection of the simulator's server: answers like a meter, misbehaves on command."""

    async def handle_request(self) -> None:
        pdu = self.last_pdu
        if not pdu:
            return
        sim: MeterSimulator = self.server.simulator
        sim.requests[pdu.function_code] += 1
        meter = sim.meters.get(pdu.dev_id)
        if meter is None:
            return  # nobody at that address on the line: no answer, like RS-485
        fault = meter.fault
        if fault is not None:
            if fault.kind == "no_answer":
                return
            if fault.kind == "drop":
                self.close()
                return
            if fault.kind == "garbage":
                self.send(b"\x13\x37garbage\xff\x00\xfe" * 3)
                return
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
        try:
            response = await pdu.update_datastore(self.server.context[pdu.dev_id])
        except Exception:  # a server answers a failure, it does not crash
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = pdu.transaction_id
        response.dev_id = pdu.dev_id
        self.server_send(response, self.last_addr)


class _TcpServer(ModbusTcpServer):  # type: ignore[misc]
    simulator: MeterSimulator

    def callback_new_connection(self) -> _FaultyHandler:
        return _FaultyHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class _SerialServer(ModbusSerialServer):  # type: ignore[misc]
    simulator: MeterSimulator

    def callback_new_connection(self) -> _FaultyHandler:
        return _FaultyHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


Transport = Literal["tcp", "rtu_over_tcp", "serial"]


class MeterSimulator:
    """A Modbus server (TCP, RTU over TCP, or RTU on a serial port) of simulated meters.

    ``speed`` runs simulated time faster than real time (the demo's fast mode).
    Tests call :meth:`advance` to let consumption pass deterministically; the
    command-line simulator runs a ticker that advances with the clock.
    Device ids 1..247 can be served by one server; run several simulators for
    several buses.
    """

    def __init__(
        self,
        meters: list[SimulatedMeter],
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        *,
        transport: Transport = "tcp",
        serial_port: str = "",
        baudrate: int = 9600,
        clock: float = 0.0,
    ) -> None:
        for meter in meters:
            if not 1 <= meter.device_id <= 247:
                raise ValueError(f"device id {meter.device_id} is outside 1..247")
            _profile(meter.profile)  # fail early on an unknown profile
        self.meters = {m.device_id: m for m in meters}
        self.host = host
        self.port = port
        self.speed = speed
        self.transport = transport
        self.serial_port = serial_port
        self.baudrate = baudrate
        #: Requests received, by function code (the benchmark counts them).
        self.requests: Counter[int] = Counter()
        #: Simulated seconds; the demo starts it at a Unix time so load profiles follow a calendar.
        self._sim_time = clock
        self._server: _TcpServer | _SerialServer | None = None
        self._ticker: asyncio.Task[None] | None = None

    def now(self) -> float:
        """Simulated seconds: since the simulator started, or from the ``clock`` it was given."""
        return self._sim_time

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass for every meter."""
        self._sim_time += seconds
        for meter in self.meters.values():
            meter.advance(seconds, self._sim_time)

    # --- faults -----------------------------------------------------------------------------

    def set_fault(self, device_id: int, kind: FaultKind, **params: Any) -> None:
        """Make a meter misbehave until :meth:`clear_fault`: see ``FAULT_KINDS``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        self.meters[device_id].fault = Fault(kind, **params)

    def clear_fault(self, device_id: int) -> None:
        """Let the meter behave again."""
        self.meters[device_id].fault = None

    def reset_counter(self, device_id: int) -> None:
        """The meter's energy counter starts again from zero (a reset or a swapped meter)."""
        self.meters[device_id].energy_centi_kwh = 0

    def roll_counter(self, device_id: int, steps_before: int = 10) -> None:
        """Put the counter ``steps_before`` register steps below its wrap point.

        The next ``steps_before`` steps of consumption take it past the
        maximum, and the register starts again from zero.
        """
        meter = self.meters[device_id]
        reg: Register = _profile(meter.profile).energy
        if reg.wrap is None:
            raise ValueError(f"profile {meter.profile}: the energy counter does not wrap")
        centi_per_step = reg.scale * 100
        meter.energy_centi_kwh = int((reg.wrap * 100) - steps_before * centi_per_step)

    # --- serving ----------------------------------------------------------------------------

    async def start(self, *, tick: float | None = None) -> None:
        """Start serving; with ``tick`` set, advance with the wall clock every ``tick`` s."""
        devices = {dev_id: _MeterContext(self, m) for dev_id, m in self.meters.items()}
        context = ModbusServerContext(devices=devices, single=False)
        server: _TcpServer | _SerialServer
        if self.transport == "serial":
            server = _SerialServer(
                context, framer=FramerType.RTU, port=self.serial_port, baudrate=self.baudrate
            )
        else:
            if self.port == 0:
                self.port = _free_port(self.host)
            framer = FramerType.RTU if self.transport == "rtu_over_tcp" else FramerType.SOCKET
            server = _TcpServer(context, address=(self.host, self.port), framer=framer)
        server.simulator = self
        self._server = server
        await server.serve_forever(background=True)
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
