"""Modbus buses: TCP, RTU over a serial port, RTU over TCP (serial-to-Ethernet gateways).

One client and one lock per bus: a serial line or a gateway answers one
request at a time, so requests on a bus are strictly in sequence (with a
pause between them on serial lines, as RS-485 meters need a quiet line),
while different buses are polled concurrently. A request that times out,
drops the connection or returns an unreadable frame closes the client, and
the next request reconnects: a half-read frame never poisons the next answer.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)

from .profiles import MAX_BLOCK, RELAY_STATUS, MeterProfile, rtu_max_gap

_LOGGER = logging.getLogger(__name__)

BusKind = Literal["tcp", "rtu_over_tcp", "serial"]
BUS_KINDS: tuple[BusKind, ...] = ("tcp", "rtu_over_tcp", "serial")
#: Pause between requests on a serial line (Home Assistant's modbus uses 30 ms too).
DEFAULT_SERIAL_PAUSE = 0.03


class MeterIOError(Exception):
    """A meter did not answer, or answered with an error."""


class MeterExceptionResponse(MeterIOError):
    """The meter answered with a Modbus exception code (the line itself is fine)."""


@dataclass(frozen=True, kw_only=True)
class BusConfig:
    """Where a bus is and how to talk on it."""

    id: str = "default"
    kind: BusKind = "tcp"
    host: str = ""
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    timeout: float = 3.0
    retries: int = 1
    #: Seconds of silence between two requests; None: 30 ms on serial, none on TCP.
    pause: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BusConfig:
        """Build from a config entry's dict, refusing unknown kinds."""
        if data.get("kind", "tcp") not in BUS_KINDS:
            raise ValueError(f"unknown bus kind {data.get('kind')!r}")
        return cls(**data)

    @property
    def request_pause(self) -> float:
        """The pause between requests on this bus."""
        if self.pause is not None:
            return self.pause
        return DEFAULT_SERIAL_PAUSE if self.kind == "serial" else 0.0

    @property
    def max_gap(self) -> int:
        """The widest unused run of registers a read on this bus spans.

        On a serial line, what the line's speed makes worth it (`rtu_max_gap`);
        behind a TCP gateway the line's speed is not known, so the fewest
        requests, one per meter for the shipped profiles.
        """
        if self.kind != "serial":
            return MAX_BLOCK
        return rtu_max_gap(**self.line, pause=self.request_pause)

    @property
    def line(self) -> dict[str, Any]:
        """A serial line's settings, as pymodbus's serial client takes them."""
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }

    @property
    def label(self) -> str:
        """Where the bus is, for logs and messages."""
        if self.kind == "serial":
            return self.serial_port
        return f"{self.host}:{self.port}"


class _WholeAnswer:
    """A register read's answer decoded in one step, its bytes kept for ``Block.decode``.

    pymodbus decodes an answer word by word in Python (a struct call per
    register); a meter's block is up to 125 registers and a poll reads a block
    of every meter, so the words are unpacked at once and the values decoded
    from the bytes (the same words, the same checks).
    """

    dev_id: int
    transaction_id: int
    registers: list[int]
    raw: bytes = b""

    def decode(self, data: bytes) -> None:
        """Decode the byte count and the registers after it."""
        if (data_len := int(data[0])) >= len(data):
            # pymodbus's decoder drops the frame on a ValueError, as on its own check.
            raise ValueError(f"byte_count {data_len} > length of packet {len(data)}")
        self.raw = bytes(data[1 : 1 + data_len])
        self.registers = list(struct.unpack(f">{data_len // 2}H", self.raw[: data_len & ~1]))

    def __str__(self) -> str:
        """The answer for pymodbus's debug log, the words in hex.

        pymodbus formats every answer it decodes for that log, enabled or not:
        a list of a hundred words in decimal costs more than decoding them.
        """
        return (
            f"{type(self).__name__}(dev_id={self.dev_id}, "
            f"transaction_id={self.transaction_id}, "
            f"registers={len(self.raw) // 2} words 0x{self.raw.hex()})"
        )


class _HoldingAnswer(_WholeAnswer, ReadHoldingRegistersResponse):
    """Function 03's answer (see ``_WholeAnswer``)."""


class _InputAnswer(_WholeAnswer, ReadInputRegistersResponse):
    """Function 04's answer (see ``_WholeAnswer``)."""


def _answer_bytes(response: Any) -> bytes:
    """The register bytes of a read's answer (from the words if another decoder made it)."""
    if isinstance(response, _WholeAnswer):
        return response.raw
    return struct.pack(f">{len(response.registers)}H", *response.registers)


def _client(config: BusConfig) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    client = _new_client(config)
    client.register(_HoldingAnswer)
    client.register(_InputAnswer)
    return client


def _new_client(config: BusConfig) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
    # reconnect_delay=0: no background reconnect loop; the bus reconnects on
    # the next request, so a dead gateway costs one connect attempt per poll.
    if config.kind == "serial":
        return AsyncModbusSerialClient(
            config.serial_port,
            framer=FramerType.RTU,
            **config.line,
            timeout=config.timeout,
            retries=config.retries,
            reconnect_delay=0,
        )
    return AsyncModbusTcpClient(
        config.host,
        port=config.port,
        framer=FramerType.RTU if config.kind == "rtu_over_tcp" else FramerType.SOCKET,
        timeout=config.timeout,
        retries=config.retries,
        reconnect_delay=0,
    )


class ModbusBus:
    """One Modbus bus: one client, one lock, requests in sequence."""

    def __init__(self, config: BusConfig) -> None:
        self.config = config
        self._client = _client(config)
        self._lock = asyncio.Lock()
        self._max_gap = config.max_gap
        self._last_request = 0.0
        #: Requests sent since the bus was created (the benchmark counts them).
        self.requests = 0

    @classmethod
    def tcp(cls, host: str, port: int, *, timeout: float = 3.0, retries: int = 1) -> ModbusBus:
        """A Modbus TCP bus (a meter's own port or a gateway)."""
        return cls(BusConfig(host=host, port=port, timeout=timeout, retries=retries))

    async def _ensure_connected(self) -> None:
        try:
            connected = self._client.connected or await self._client.connect()
        except ValueError as err:
            # A host name the resolver cannot take (a NUL, a label over 63 characters).
            raise MeterIOError(f"cannot connect to {self.config.label}: {err}") from err
        if not connected:
            raise MeterIOError(f"cannot connect to {self.config.label}")

    async def check(self) -> None:
        """Open the connection, or raise MeterIOError."""
        async with self._lock:
            await self._ensure_connected()

    async def _call(self, method: str, *args: Any, device_id: int, **kwargs: Any) -> Any:
        """One request, after the bus's pause; errors close the client for a clean restart."""
        await self._ensure_connected()
        if pause := self.config.request_pause:
            wait = self._last_request + pause - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self.requests += 1
        try:
            response = await getattr(self._client, method)(*args, device_id=device_id, **kwargs)
        except ModbusException as err:
            self._client.close()
            raise MeterIOError(f"device {device_id} on {self.config.label}: {err}") from err
        finally:
            self._last_request = time.monotonic()
        if response.isError():
            raise MeterExceptionResponse(
                f"device {device_id} on {self.config.label}: exception code "
                f"{getattr(response, 'exception_code', '?')}"
            )
        return response

    async def read(
        self, profile: MeterProfile, device_id: int, *, coil_status: bool = False
    ) -> tuple[dict[str, Decimal], bool | None]:
        """Read every planned block of the profile; the relay state if it comes with them.

        ``coil_status`` adds a read of a coil relay's state (a second request),
        which callers ask for only now and then.
        """
        async with self._lock:
            values: dict[str, Decimal] = {}
            for block in profile.blocks(self._max_gap):
                method = (
                    "read_input_registers"
                    if block.function == "input"
                    else "read_holding_registers"
                )
                rr = await self._call(method, block.address, count=block.count, device_id=device_id)
                raw = _answer_bytes(rr)
                if len(raw) < 2 * block.count:
                    self._client.close()
                    raise MeterIOError(f"device {device_id}: short answer")
                values.update(block.decode(raw))
            relay_closed: bool | None = None
            if profile.relay is not None:
                status = profile.relay.status
                if status.kind == "register":
                    relay_closed = int(values.pop(RELAY_STATUS)) == status.closed
                elif coil_status:
                    relay_closed = await self._read_coil(status.address, device_id)
            return values, relay_closed

    async def _read_coil(self, address: int, device_id: int) -> bool:
        rc = await self._call("read_coils", address, count=1, device_id=device_id)
        return bool(rc.bits[0])

    async def read_relay(self, profile: MeterProfile, device_id: int) -> bool:
        """Read the relay's state alone (after a command)."""
        if profile.relay is None:
            raise MeterIOError(f"profile {profile.key} has no relay")
        status = profile.relay.status
        async with self._lock:
            if status.kind == "coil":
                return await self._read_coil(status.address, device_id)
            method = (
                "read_input_registers" if status.function == "input" else "read_holding_registers"
            )
            rr = await self._call(method, status.address, count=1, device_id=device_id)
            return int(rr.registers[0]) == status.closed

    async def write_relay(self, profile: MeterProfile, device_id: int, closed: bool) -> None:
        """Send the relay command (coil 05, register 06 or registers 16, per the profile)."""
        if profile.relay is None:
            raise MeterIOError(f"profile {profile.key} has no relay")
        control = profile.relay.control
        async with self._lock:
            if control.kind == "coil":
                await self._call("write_coil", control.address, closed, device_id=device_id)
                return
            values = list(control.on if closed else control.off)
            if control.kind == "register":
                await self._call("write_register", control.address, values[0], device_id=device_id)
            else:
                await self._call("write_registers", control.address, values, device_id=device_id)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
