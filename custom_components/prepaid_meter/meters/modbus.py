"""One Modbus bus: a pymodbus client, one lock, meters read one block request at a time."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from .profiles import MeterProfile

_LOGGER = logging.getLogger(__name__)


class MeterIOError(Exception):
    """A meter did not answer, or answered with an error."""


@dataclass(frozen=True, kw_only=True)
class MeterSample:
    """What one poll read from a meter: decoded values and the relay state."""

    values: dict[str, Decimal]
    relay_closed: bool | None

    @property
    def energy(self) -> Decimal:
        """Cumulative import energy (kWh, or the profile's unit)."""
        return self.values["energy_import"]


class ModbusBus:
    """A Modbus TCP bus (a meter's own port, or a gateway): one client, one lock."""

    def __init__(self, host: str, port: int, *, timeout: float = 3.0, retries: int = 1) -> None:
        self.host = host
        self.port = port
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout, retries=retries)
        self._lock = asyncio.Lock()

    async def _ensure_connected(self) -> None:
        if not self._client.connected and not await self._client.connect():
            raise MeterIOError(f"cannot connect to {self.host}:{self.port}")

    async def check(self) -> None:
        """Open the connection, or raise MeterIOError."""
        async with self._lock:
            await self._ensure_connected()

    async def read(self, profile: MeterProfile, device_id: int) -> MeterSample:
        """Read every register of the profile (one request per planned block) and the relay."""
        async with self._lock:
            await self._ensure_connected()
            values: dict[str, Decimal] = {}
            try:
                for block in profile.blocks():
                    if profile.read_function == "input":
                        rr = await self._client.read_input_registers(
                            block.address, count=block.count, device_id=device_id
                        )
                    else:
                        rr = await self._client.read_holding_registers(
                            block.address, count=block.count, device_id=device_id
                        )
                    if rr.isError():
                        raise MeterIOError(f"device {device_id}: {rr}")
                    for reg in block.registers:
                        offset = reg.address - block.address
                        values[reg.name] = reg.decode(rr.registers[offset : offset + reg.width])
                relay_closed = None
                if profile.relay is not None:
                    rc = await self._client.read_coils(
                        profile.relay.address, count=1, device_id=device_id
                    )
                    if rc.isError():
                        raise MeterIOError(f"device {device_id}: {rc}")
                    relay_closed = bool(rc.bits[0])
            except ModbusException as err:
                raise MeterIOError(f"device {device_id}: {err}") from err
            return MeterSample(values=values, relay_closed=relay_closed)

    async def set_relay(self, profile: MeterProfile, device_id: int, closed: bool) -> bool:
        """Switch the relay, read it back, and return the state the meter confirms."""
        if profile.relay is None:
            raise MeterIOError(f"profile {profile.key} has no relay")
        async with self._lock:
            await self._ensure_connected()
            try:
                wr = await self._client.write_coil(
                    profile.relay.address, closed, device_id=device_id
                )
                if wr.isError():
                    raise MeterIOError(f"device {device_id}: {wr}")
                rc = await self._client.read_coils(
                    profile.relay.address, count=1, device_id=device_id
                )
                if rc.isError():
                    raise MeterIOError(f"device {device_id}: {rc}")
            except ModbusException as err:
                raise MeterIOError(f"device {device_id}: {err}") from err
            return bool(rc.bits[0])

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
