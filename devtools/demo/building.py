"""The demo building on the simulator, with its meters' state kept across restarts.

``python -m devtools.demo.building --state .demo/simulator.json`` serves 12
shops on 127.0.0.1:5020; the counters and relays are saved every few seconds
and on exit, so a second start continues where the first stopped (a counter
that went back to its start would read as a meter reset).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path

from devtools.demo.provision import HEAVY_SHOP, SHOPS
from devtools.simulator import MeterSimulator, SimulatedMeter


def shops() -> list[SimulatedMeter]:
    """Twelve shops from 1.2 to 4.5 kW; the heavy one draws 6 kW."""
    meters = []
    for i in range(1, SHOPS + 1):
        base = 6000.0 if i == HEAVY_SHOP else 1200.0 + (i * 1237) % 3300
        meters.append(SimulatedMeter(device_id=i, base_power_w=base, energy_centi_kwh=i * 123_456))
    return meters


def load(meters: list[SimulatedMeter], path: Path) -> None:
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    for meter in meters:
        if (state := saved.get(str(meter.device_id))) is not None:
            meter.energy_centi_kwh = int(state["energy_centi_kwh"])
            meter.relay_closed = bool(state["relay_closed"])


def save(meters: list[SimulatedMeter], path: Path) -> None:
    state = {
        str(m.device_id): {"energy_centi_kwh": m.energy_centi_kwh, "relay_closed": m.relay_closed}
        for m in meters
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


async def serve(port: int, speed: float, state: Path) -> None:
    meters = shops()
    load(meters, state)
    sim = MeterSimulator(meters, port=port, speed=speed)
    await sim.start(tick=1.0)
    print(f"simulator: {len(meters)} shops on 127.0.0.1:{port} (speed x{speed:g})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
        save(meters, state)
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
