"""The demo mall on the simulator, with its meters' state kept across restarts.

``python -m devtools.demo.building --state .demo/simulator.json`` serves the
mall of :mod:`devtools.demo.mall` on 127.0.0.1:5020: 24 shops with load
profiles by kind of shop, three common-area meters, a water main and the
utility's master meter (the sum of all of them plus line loss).

The simulator keeps its own clock (Unix seconds) so the load follows the local
time of day and the weekend. At speed 1 that clock is the wall clock; with
``--speed N`` it runs N times faster. The counters, relays and the clock are
saved every few seconds and on exit, so a second start continues where the
first stopped (a counter back at its start would read as a meter reset).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.demo import mall
from devtools.simulator import MeterSimulator, SimulatedMeter

STATE_VERSION = 2


@dataclass
class LoadMeter(SimulatedMeter):
    """A simulated meter whose load (kW) is a function of the simulated Unix time."""

    load_kw: Callable[[float], float] = field(default=lambda _at: 0.0, repr=False)

    def power_w(self, at: float) -> int:
        """The load at ``at``; nothing flows with the relay open."""
        if not self.relay_closed:
            return 0
        return round(self.load_kw(at) * 1000)


def _shop_load(shop: mall.Shop) -> Callable[[float], float]:
    return lambda at: mall.shop_load_kw(shop, at)


def _common_load(common: mall.Common) -> Callable[[float], float]:
    return lambda at: mall.common_load_kw(common, at)


def meters() -> list[SimulatedMeter]:
    """Every meter of the mall, counters at their (seeded) installation readings."""
    result: list[SimulatedMeter] = [
        LoadMeter(
            device_id=s.device_id,
            energy_centi_kwh=s.number * 987_654 % 4_000_000,
            load_kw=_shop_load(s),
        )
        for s in mall.shops()
    ]
    result += [
        LoadMeter(device_id=c.device_id, energy_centi_kwh=5_000_000, load_kw=_common_load(c))
        for c in mall.COMMONS
    ]
    # The water main's register counts m³ in the simulator's 0.01-step energy
    # register: a "load" of 1 kW is a flow of 1 m³ an hour.
    result.append(
        LoadMeter(
            device_id=mall.WATER.device_id,
            energy_centi_kwh=1_234_500,
            load_kw=_common_load(mall.WATER),
        )
    )
    metered = list(result)

    def master_load(at: float) -> float:
        electric = sum(m.power_w(at) for m in metered if m.device_id != mall.WATER.device_id)
        return electric / 1000 * (1 + mall.LINE_LOSS)

    start = sum(m.energy_centi_kwh for m in metered if m.device_id != mall.WATER.device_id)
    result.append(
        LoadMeter(
            device_id=mall.MASTER_DEVICE,
            energy_centi_kwh=round(start * (1 + mall.LINE_LOSS)),
            load_kw=master_load,
        )
    )
    return result


def load(meters: list[SimulatedMeter], path: Path) -> float | None:
    """Put saved counters and relays back; the saved clock, or None without a state."""
    if not path.is_file():
        return None
    saved: dict[str, Any] = json.loads(path.read_text())
    if saved.get("version") != STATE_VERSION:
        raise SystemExit(f"{path}: data of an older demo; start with scripts/demo --reset")
    for meter in meters:
        if (state := saved["meters"].get(str(meter.device_id))) is not None:
            meter.energy_centi_kwh = int(state["energy_centi_kwh"])
            meter.relay_closed = bool(state["relay_closed"])
    return float(saved["clock"])


def save(sim: MeterSimulator, path: Path) -> None:
    """Write the state atomically (a stop in the middle leaves the previous one)."""
    state = {
        "version": STATE_VERSION,
        "clock": sim.now(),
        "speed": sim.speed,
        "saved_at": time.time(),
        "meters": {
            str(m.device_id): {
                "energy_centi_kwh": m.energy_centi_kwh,
                "relay_closed": m.relay_closed,
            }
            for m in sim.meters.values()
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


async def serve(port: int, speed: float, state: Path) -> None:
    """Serve the mall until SIGINT or SIGTERM, saving the state as it goes."""
    all_meters = meters()
    clock = load(all_meters, state)
    if clock is None or speed == 1:
        # In real time the simulated clock is the wall clock (not earlier than saved).
        clock = max(clock or 0.0, time.time())
    sim = MeterSimulator(all_meters, port=port, speed=speed, clock=clock)
    # Fast mode ticks more often, so a tick stays a short stretch of simulated time.
    await sim.start(tick=1.0 if speed <= 60 else 0.25)
    print(f"simulator: {len(all_meters)} meters on 127.0.0.1:{port} (speed x{speed:g})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    save(sim, state)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5 if speed == 1 else 1)
        save(sim, state)
    await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.speed, args.state))


if __name__ == "__main__":
    main()
