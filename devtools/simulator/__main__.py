"""Run the simulator on its own: ``python -m devtools.simulator --meters 12``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .server import MeterSimulator, SimulatedMeter


def building(count: int, low_meter: int | None = None) -> list[SimulatedMeter]:
    """A small building: shops with different base loads (1.2 to 4.5 kW)."""
    meters = []
    for i in range(1, count + 1):
        base = 1200.0 + (i * 1237) % 3300
        if i == low_meter:
            base = 6000.0
        meters.append(SimulatedMeter(device_id=i, base_power_w=base, energy_centi_kwh=i * 10000))
    return meters


async def _main(args: argparse.Namespace) -> None:
    sim = MeterSimulator(
        building(args.meters, args.heavy), host=args.host, port=args.port, speed=args.speed
    )
    await sim.start(tick=1.0)
    print(f"simulator: {args.meters} meters on {args.host}:{sim.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--meters", type=int, default=12)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--heavy", type=int, default=None, help="device id with a heavy load")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
