"""Run the simulator on its own.

    python -m devtools.simulator --meters 12                 # one TCP server on :5020
    python -m devtools.simulator \\
        --bus tcp:5020:1-200:ddsy1352 \\                      # 200 prepaid meters on a gateway
        --bus rtu_over_tcp:5021:1-8:sdm120 \\                 # an RTU-over-TCP gateway
        --bus serial:/dev/pts/7:1-4 \\                        # RTU on a serial line (socat pty)
        --fault 5020:3:no_answer --fault 5021:2:slow:2.5

Faults can also be typed while it runs, one command a line on stdin:
``fault BUS DEVICE KIND [ARG]``, ``clear BUS DEVICE``, ``reset BUS DEVICE``
(counter to zero), ``roll BUS DEVICE [STEPS]`` (counter just below its wrap);
BUS is the port or serial device of the ``--bus``. Kinds: no_answer,
slow SECONDS, exception CODE, drop, garbage, relay_stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from .server import FAULT_KINDS, MeterSimulator, SimulatedMeter, Transport


def building(
    count: int, low_meter: int | None = None, *, ids: list[int] | None = None, profile: str = ""
) -> list[SimulatedMeter]:
    """A small building: shops with different base loads (1.2 to 4.5 kW)."""
    meters = []
    for i in ids or range(1, count + 1):
        base = 1200.0 + (i * 1237) % 3300
        if i == low_meter:
            base = 6000.0
        meters.append(
            SimulatedMeter(
                device_id=i,
                base_power_w=base,
                energy_centi_kwh=i * 10000,
                profile=profile or "simulator",
            )
        )
    return meters


def parse_ids(text: str) -> list[int]:
    """'1-12,15' -> [1..12, 15]."""
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


def parse_bus(spec: str, host: str, speed: float, heavy: int | None) -> MeterSimulator:
    """KIND:PORT_OR_DEVICE:IDS[:PROFILE] -> a simulator (not started)."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] not in ("tcp", "rtu_over_tcp", "serial"):
        raise SystemExit(f"--bus {spec}: expected KIND:PORT_OR_DEVICE:IDS[:PROFILE]")
    kind: Transport = parts[0]  # type: ignore[assignment]
    meters = building(
        0, heavy, ids=parse_ids(parts[2]), profile=parts[3] if len(parts) == 4 else ""
    )
    if kind == "serial":
        return MeterSimulator(meters, speed=speed, transport="serial", serial_port=parts[1])
    return MeterSimulator(meters, host=host, port=int(parts[1]), speed=speed, transport=kind)


def bus_key(sim: MeterSimulator) -> str:
    return sim.serial_port if sim.transport == "serial" else str(sim.port)


def apply(sims: dict[str, MeterSimulator], words: list[str]) -> str:
    """Apply one fault command; return what was done."""
    if len(words) < 3 or words[1] not in sims:
        return f"? {' '.join(words)} (buses: {', '.join(sims)})"
    verb, sim, device = words[0], sims[words[1]], int(words[2])
    if device not in sim.meters:
        return f"? no device {device} on {words[1]}"
    if verb == "fault" and len(words) >= 4 and words[3] in FAULT_KINDS:
        params: dict[str, Any] = {}
        if words[3] == "slow":
            params["delay"] = float(words[4]) if len(words) > 4 else 5.0
        if words[3] == "exception":
            params["code"] = int(words[4]) if len(words) > 4 else 4
        sim.set_fault(device, words[3], **params)  # type: ignore[arg-type]
    elif verb == "clear":
        sim.clear_fault(device)
    elif verb == "reset":
        sim.reset_counter(device)
    elif verb == "roll":
        sim.roll_counter(device, int(words[3]) if len(words) > 3 else 10)
    else:
        return f"? {' '.join(words)}"
    return f"ok {' '.join(words)}"


async def _commands(sims: dict[str, MeterSimulator]) -> None:
    # stdin as an asyncio stream: a blocked reader thread would keep the
    # process alive after SIGTERM.
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if words := line.decode().split():
            print(apply(sims, words), flush=True)


async def _main(args: argparse.Namespace) -> None:
    if args.bus:
        sims = [parse_bus(spec, args.host, args.speed, args.heavy) for spec in args.bus]
    else:
        sims = [
            MeterSimulator(
                building(args.meters, args.heavy), host=args.host, port=args.port, speed=args.speed
            )
        ]
    by_key: dict[str, MeterSimulator] = {}
    for sim in sims:
        await sim.start(tick=1.0)
        by_key[bus_key(sim)] = sim
        where = sim.serial_port if sim.transport == "serial" else f"{sim.host}:{sim.port}"
        print(f"simulator: {len(sim.meters)} meters ({sim.transport}) on {where}", flush=True)
    for fault in args.fault:
        print(apply(by_key, ["fault", *fault.split(":")]), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    commands = asyncio.create_task(_commands(by_key)) if args.commands else None
    await stop.wait()
    if commands is not None:
        commands.cancel()
    for sim in sims:
        await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--meters", type=int, default=12)
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--heavy", type=int, default=None, help="device id with a heavy load")
    parser.add_argument(
        "--bus", action="append", default=[], help="KIND:PORT_OR_DEVICE:IDS[:PROFILE], repeatable"
    )
    parser.add_argument(
        "--fault", action="append", default=[], help="BUS:DEVICE:KIND[:ARG], repeatable"
    )
    parser.add_argument(
        "--commands", action="store_true", help="read fault commands from stdin while running"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
