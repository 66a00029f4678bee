"""Fixtures for the meter layer: simulators on loopback (TCP, RTU over TCP) and on a pty pair."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.simulator import MeterSimulator, SimulatedMeter

type StartSim = Callable[..., Awaitable[MeterSimulator]]


@pytest.fixture
async def start_sim(socket_enabled: None) -> AsyncGenerator[StartSim]:
    """Start simulators (stopped after the test): ``await start_sim(meters, transport=...)``."""
    started: list[MeterSimulator] = []

    async def start(meters: list[SimulatedMeter], **kwargs: Any) -> MeterSimulator:
        sim = MeterSimulator(meters, **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def pty_pair(tmp_path: Path) -> AsyncGenerator[tuple[str, str]]:
    """Two linked pseudo-terminals from socat: a real serial line without hardware."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is not installed (scripts/setup installs it)")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = await asyncio.create_subprocess_exec(
        socat,
        f"pty,raw,echo=0,link={a}",
        f"pty,raw,echo=0,link={b}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(100):
        if a.exists() and b.exists():
            break
        await asyncio.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("socat did not create the pty pair")
    yield str(a), str(b)
    proc.terminate()
    await proc.wait()
