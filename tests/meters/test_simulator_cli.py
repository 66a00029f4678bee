"""The simulator's command line: several buses, profiles, faults at start and on stdin."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

import pytest

from custom_components.prepaid_meter.meters.modbus import (
    BusConfig,
    MeterExceptionResponse,
    ModbusBus,
)
from custom_components.prepaid_meter.meters.profiles import load_profile
from custom_components.prepaid_meter.meters.reader import ModbusMeter
from devtools.simulator.server import _free_port


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    # Generous: a loaded CI machine may take many seconds to start a Python process.
    return (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()


@pytest.mark.usefixtures("socket_enabled")
async def test_command_line_buses_and_faults() -> None:
    tcp, gateway = _free_port("127.0.0.1"), _free_port("127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.simulator",
        "--bus",
        f"tcp:{tcp}:1-3:sdm120",
        "--bus",
        f"rtu_over_tcp:{gateway}:5,7:ddsy1352",
        "--fault",
        f"{tcp}:2:exception:2",
        "--commands",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        assert "3 meters (tcp)" in await _line(proc)
        assert "2 meters (rtu_over_tcp)" in await _line(proc)
        assert (await _line(proc)).startswith("ok fault")
        bus = ModbusBus(BusConfig(host="127.0.0.1", port=tcp, timeout=1))
        sdm120 = load_profile("sdm120")
        assert (await ModbusMeter(bus, sdm120, 1).read()).energy == Decimal("100.0")
        with pytest.raises(MeterExceptionResponse):
            await ModbusMeter(bus, sdm120, 2).read()
        proc.stdin.write(f"clear {tcp} 2\n".encode())
        await proc.stdin.drain()
        assert (await _line(proc)).startswith("ok clear")
        assert (await ModbusMeter(bus, sdm120, 2).read()).energy == Decimal("200.0")
        bus.close()
        rtu = ModbusBus(BusConfig(kind="rtu_over_tcp", host="127.0.0.1", port=gateway, timeout=1))
        sample = await ModbusMeter(rtu, load_profile("ddsy1352"), 7).read()
        assert sample.energy == Decimal("700.00")
        rtu.close()
    finally:
        proc.terminate()
        await proc.wait()
