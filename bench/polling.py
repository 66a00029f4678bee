"""Polling 200 meters on one Modbus TCP gateway: this integration vs Home Assistant's core modbus.

Both run in the same Home Assistant instance, in the same run, against the
same simulator (200 Acrel DDSY1352 prepaid meters, device ids 1..200, on one
TCP port, as behind one RS-485 gateway) and read the same values per meter:
energy, power, voltage, current and relay state.

- core ``modbus``: one sensor per value and a binary sensor for the relay
  state, as its documentation configures a meter: one request per entity.
- ``prepaid_meter``: the DDSY1352 profile's values and relay status planned
  into one block read per meter.

Both are set up side by side and the headline cycles are taken in turns (ours,
core, ours, core, ... PAIRS times): on this shared machine the CPU's speed
drifts by a third within minutes, and timing one side after the other put
the drift into the ratio (2.85x to 5.79x in three runs of one quarter hour).

A "cycle" is every meter read once. Requests are counted at the simulator
(what actually crossed the wire). Our site stores readings and charges at its
interval (15 minutes, the default): the first poll in an interval stores and
charges every wallet in SQLite, the polls in between rate the use read so far
as pending. The speedup is taken on a whole coordinator refresh inside an
interval (reads, pending charges rated, the supply policy, alarms, every
meter and tenant entity updated), against core modbus updating all its
entities. The refresh that opens an interval is timed too: whole, and less
its ledger write (the rating and SQLite work on the store's thread, which
core modbus does not do at all).

Both sides run on the event loop of one process with the simulator, on a
machine that other work may share: wall times move with the load (recorded as
``load_average``), so the loop thread's CPU time of each cycle is reported as
well (``*_cpu_s``, ``speedup_cpu``), and the states each side writes per cycle
(counted in an extra, untimed cycle: a listener on every write would slow both).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from homeassistant import loader
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.entity_platform import async_get_platforms
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.prepaid_meter.const import (
    CONF_BUSES,
    CONF_INTERVAL,
    CONF_METERS,
    CONF_TENANTS,
    DOMAIN,
)
from custom_components.prepaid_meter.entity import MeterEntity
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.site import site_entry

METERS = 200
CYCLES = 5
PAIRS = 9  # the headline: our cycle and core modbus's in turn
PROFILE = "ddsy1352"
#: One cycle of either side, as the bench times it.
type Cycle = Callable[[], Awaitable[None]]

IDLE = 86400  # scan interval while measuring: no background poll interferes
INTERVAL = 15  # minutes: the site's interval (the default)


def _core_modbus_config(sim: MeterSimulator) -> dict[str, Any]:
    """Core modbus reading the DDSY1352 values (manual p.15) the profile reads."""
    sensors: list[dict[str, Any]] = []
    binary_sensors: list[dict[str, Any]] = []
    for dev in sim.meters:
        common = {"slave": dev, "input_type": "holding", "scan_interval": IDLE}
        sensors += [
            {"name": f"m{dev} energy", "address": 0x0000, "data_type": "uint32",
             "scale": 0.01, "precision": 2, **common},
            {"name": f"m{dev} voltage", "address": 0x000B, "data_type": "uint16",
             "scale": 0.1, "precision": 1, **common},
            {"name": f"m{dev} current", "address": 0x000C, "data_type": "uint16",
             "scale": 0.01, "precision": 2, **common},
            {"name": f"m{dev} power", "address": 0x000D, "data_type": "int16", **common},
        ]  # fmt: skip
        binary_sensors.append({"name": f"m{dev} relay", "address": 0x0058, **common})
    return {
        "modbus": [
            {
                "name": "gateway",
                "type": "tcp",
                "host": sim.host,
                "port": sim.port,
                "timeout": 3,
                "sensors": sensors,
                "binary_sensors": binary_sensors,
            }
        ]
    }


def _site_entry(sim: MeterSimulator, db: Path) -> MockConfigEntry:
    meters = [
        {"id": f"m{d}", "name": f"Shop {d:03d}", "device_id": d, "profile": PROFILE}
        for d in sim.meters
    ]
    tenants = [{"id": f"t{d}", "name": f"Shop {d:03d}", "meters": [f"m{d}"]} for d in sim.meters]
    return site_entry(
        sim,
        f"sqlite:///{db}",
        title="Bench mall",
        price="1.00",
        cut_off=False,
        scan_interval=IDLE,
        options={
            CONF_BUSES: [{"id": "default", "host": sim.host, "port": sim.port, "timeout": 3}],
            CONF_METERS: meters,
            CONF_TENANTS: tenants,
            CONF_INTERVAL: INTERVAL,
        },
    )


async def _timed(
    sim: MeterSimulator, cycle: Any, cpu: list[float] | None = None
) -> tuple[list[float], float]:
    """Run ``cycle`` CYCLES times; seconds per cycle and requests per meter per cycle.

    ``cpu`` receives the event loop thread's CPU seconds of each cycle.
    """
    times: list[float] = []
    before = sim.requests.total()
    for _ in range(CYCLES):
        sim.advance(30)
        started, used = time.perf_counter(), time.thread_time()
        await cycle()
        times.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.thread_time() - used)
    return times, (sim.requests.total() - before) / (CYCLES * METERS)


async def _writes(hass: HomeAssistant, sim: MeterSimulator, cycle: Any) -> int:
    """States written in one more cycle, changed or not (untimed: counting costs a callback)."""
    count = 0

    @callback
    def _count(_event: Event) -> None:
        nonlocal count
        count += 1

    unsubscribe = [
        hass.bus.async_listen(EVENT_STATE_CHANGED, _count),
        hass.bus.async_listen(EVENT_STATE_REPORTED, _count, event_filter=callback(lambda _d: True)),
    ]
    sim.advance(30)
    await cycle()
    await hass.async_block_till_done()
    for remove in unsubscribe:
        remove()
    return count


async def _core_modbus(hass: HomeAssistant, sim: MeterSimulator) -> Cycle:
    """Core modbus set up on the simulator; its cycle (every entity updated once)."""
    assert await async_setup_component(hass, "modbus", _core_modbus_config(sim))
    await hass.async_block_till_done()
    entities = [e for p in async_get_platforms(hass, "modbus") for e in p.entities.values()]
    assert len(entities) == 5 * METERS
    # Wait for the first round of reads after connecting to be over (every entity
    # has a value and the simulator has gone quiet): timed in turns with ours,
    # a read of core's own still running would be counted on our side.
    seen = -1
    for _ in range(200):
        valid = all(
            hass.states.get(e.entity_id).state not in ("unknown", "unavailable") for e in entities
        )
        if valid and sim.requests.total() == seen:
            break
        seen = sim.requests.total()
        await asyncio.sleep(0.3)
    else:
        raise AssertionError("core modbus did not settle after its first round of reads")

    async def cycle() -> None:
        # Every entity's update, as its timers would run them: the hub's lock
        # serialises them on the one connection.
        await asyncio.gather(*(e.async_update() for e in entities))

    return cycle


async def _paired(sim: MeterSimulator, ours: Cycle, core: Cycle) -> dict[str, dict[str, Any]]:
    """Our cycle and core modbus's in turn, PAIRS times over.

    On a shared machine the CPU's speed drifts by a third within minutes; taken
    in turns, both sides are timed under the same conditions.
    """
    sides: dict[str, dict[str, Any]] = {
        name: {"times": [], "cpu": [], "requests": 0} for name in ("ours", "core")
    }
    for _ in range(PAIRS):
        sim.advance(30)  # 30 s of use, read by both (core modbus writes every value anyway)
        for name, cycle in (("ours", ours), ("core", core)):
            side = sides[name]
            before = sim.requests.total()
            started, used = time.perf_counter(), time.thread_time()
            await cycle()
            side["times"].append(time.perf_counter() - started)
            side["cpu"].append(time.thread_time() - used)
            side["requests"] += sim.requests.total() - before
    for side in sides.values():
        side["requests_per_meter"] = side.pop("requests") / (PAIRS * METERS)
    return sides


async def _prepaid_meter(
    hass: HomeAssistant, sim: MeterSimulator, db: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ours measured, with core modbus set up beside it for the paired cycles."""
    entry = _site_entry(sim, db)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    readers = list(coordinator.readers.values())

    async def reads() -> None:
        for reader in readers:  # one bus: in sequence, as the coordinator does
            await reader.read()

    read_times, read_per_meter = await _timed(sim, reads)

    # A refresh that opens an interval also charges 200 wallets in SQLite (the
    # store's work, which core modbus does not do at all): timed apart.
    post_times: list[float] = []
    post_cpu: list[float] = []
    post = coordinator._post

    async def timed_post(*args: Any) -> None:
        started, used = time.perf_counter(), time.thread_time()
        await post(*args)
        post_times.append(time.perf_counter() - started)
        post_cpu.append(time.thread_time() - used)

    coordinator._post = timed_post  # type: ignore[method-assign]

    async def refresh() -> None:
        await coordinator.async_refresh()
        assert coordinator.last_update_success

    async def inside_interval() -> None:
        await refresh()
        assert not post_times, "a poll inside the interval stored nothing"

    async def opening_interval() -> None:
        coordinator._slot = None  # as if the clock had just entered a new interval
        await refresh()

    core_cycle = await _core_modbus(hass, sim)
    await _clear_of_interval_edge()
    await refresh()  # the interval is open: the timed polls inside it store nothing
    post_times.clear()
    post_cpu.clear()
    paired = await _paired(sim, inside_interval, core_cycle)
    assert hass.states.get("sensor.m200_energy").state not in ("unknown", "unavailable")
    online = sum(1 for m in coordinator.data.meters.values() if m.online)
    assert online == METERS, f"{online} of {METERS} meters online"
    writes = await _writes(hass, sim, inside_interval)
    core = {**paired["core"], "writes": await _writes(hass, sim, core_cycle)}
    storing_cpu: list[float] = []
    storing_times, _ = await _timed(sim, opening_interval, storing_cpu)
    assert len(post_times) == CYCLES, "each opening refresh stored once"
    posted, posted_cpu = list(post_times), list(post_cpu)  # before the counted cycle
    storing_writes = await _writes(hass, sim, opening_interval)

    # Like for like with core modbus: the coordinator's reads and the meters'
    # own entities (values, relay, online, alarms), without charging, the
    # policy and the tenants' balance and cost sensors.
    meter_entities = [
        e
        for p in async_get_platforms(hass, DOMAIN)
        for e in p.entities.values()
        if isinstance(e, MeterEntity)
    ]
    meters = list(coordinator.site.meters)

    async def meter_side() -> None:
        await coordinator._poll_bus(meters)
        for entity in meter_entities:
            entity._handle_coordinator_update()

    meter_cpu: list[float] = []
    meter_times, _ = await _timed(sim, meter_side, meter_cpu)
    await hass.config_entries.async_unload(entry.entry_id)
    return {
        **paired["ours"],
        "writes": writes,
        "storing_times": storing_times,
        "storing_poll_times": [t - c for t, c in zip(storing_times, posted, strict=True)],
        # The loop thread's CPU of the refresh less its own part of the ledger write
        # (the SQL runs on the store's thread, not counted here).
        "storing_poll_cpu": [t - c for t, c in zip(storing_cpu, posted_cpu, strict=True)],
        "storing_writes": storing_writes,
        "post_times": posted,
        "read_times": read_times,
        "read_requests_per_meter": read_per_meter,
        "meter_side_times": meter_times,
        "meter_side_cpu": meter_cpu,
    }, core


async def _clear_of_interval_edge() -> None:
    """Wait while the clock is within 20 s of an interval edge: the timed polls stay inside one."""
    now = time.time()
    left = INTERVAL * 60 - now % (INTERVAL * 60)  # the zones of interest are whole hours off UTC
    if left < 20:
        await asyncio.sleep(left + 1)


def _fig(value: float, unit: str, target: str = "", digits: int = 3) -> dict[str, Any]:
    fig: dict[str, Any] = {"value": round(value, digits), "unit": unit}
    if target:
        fig["target"] = target
    return fig


GATEWAY_LATENCY = 0.005


async def _scenario(
    meters: list[SimulatedMeter], latency: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    sim = MeterSimulator(meters)
    if latency:
        for dev in sim.meters:
            sim.set_fault(dev, "slow", delay=latency)
    await sim.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with async_test_home_assistant(config_dir=tmp) as hass:
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
                ours, core = await _prepaid_meter(hass, sim, Path(tmp) / "bench.db")
                await hass.async_stop(force=True)
    finally:
        await sim.stop()
    return ours, core


async def run() -> dict[str, Any]:
    """Measure both integrations on the same simulator; figures for bench/results."""
    meters = [
        SimulatedMeter(device_id=d, profile=PROFILE, base_power_w=800.0 + 17 * d)
        for d in range(1, METERS + 1)
    ]
    load_before = os.getloadavg()
    ours, core = await _scenario(meters, latency=0.0)
    # A gateway in front of an RS-485 line answers in milliseconds, not
    # microseconds: the same comparison with every answer 5 ms late.
    slow_ours, slow_core = await _scenario(meters, latency=GATEWAY_LATENCY)
    core_cycle = statistics.median(core["times"])
    our_cycle = statistics.median(ours["times"])
    our_cpu = statistics.median(ours["cpu"])
    core_cpu = statistics.median(core["cpu"])
    storing_poll = statistics.median(ours["storing_poll_times"])
    slow_core_cycle = statistics.median(slow_core["times"])
    slow_cycle = statistics.median(slow_ours["times"])
    return {
        "meters": METERS,
        "profile": PROFILE,
        "cycles": CYCLES,
        "interval_minutes": INTERVAL,
        "requests_per_meter_per_poll": _fig(ours["requests_per_meter"], "requests", "1"),
        "speedup": _fig(core_cycle / our_cycle, "x", ">= 5", 2),
        "cycle_s": _fig(our_cycle, "s"),
        "core_modbus_cycle_s": _fig(core_cycle, "s"),
        "core_modbus_requests_per_meter_per_poll": _fig(core["requests_per_meter"], "requests"),
        "read_cycle_s": _fig(statistics.median(ours["read_times"]), "s"),
        "speedup_cpu": _fig(core_cpu / our_cpu, "x", "", 2),
        "cycle_cpu_s": _fig(our_cpu, "s", "", 4),
        "core_modbus_cycle_cpu_s": _fig(core_cpu, "s", "", 4),
        "state_writes_per_poll": _fig(ours["writes"], "states", "", 0),
        "core_modbus_state_writes_per_poll": _fig(core["writes"], "states", "", 0),
        "interval_refresh_s": _fig(statistics.median(ours["storing_times"]), "s"),
        "interval_ledger_write_s": _fig(statistics.median(ours["post_times"]), "s"),
        "interval_poll_s": _fig(storing_poll, "s"),
        "interval_poll_speedup": _fig(core_cycle / storing_poll, "x", "", 2),
        "interval_poll_cpu_s": _fig(statistics.median(ours["storing_poll_cpu"]), "s", "", 4),
        "interval_state_writes": _fig(ours["storing_writes"], "states", "", 0),
        "meter_side_speedup": _fig(
            core_cycle / statistics.median(ours["meter_side_times"]), "x", "", 2
        ),
        "meter_side_speedup_cpu": _fig(
            core_cpu / statistics.median(ours["meter_side_cpu"]), "x", "", 2
        ),
        "speedup_5ms_gateway": _fig(slow_core_cycle / slow_cycle, "x", "", 2),
        "cycle_5ms_gateway_s": _fig(slow_cycle, "s"),
        "core_modbus_cycle_5ms_gateway_s": _fig(slow_core_cycle, "s"),
        "notes": (
            "cycle_s: a whole coordinator refresh inside a site interval (every meter read "
            "once, the use so far rated as pending, the supply policy, alarms, every meter "
            "and tenant entity updated); core_modbus_cycle_s: every core modbus entity "
            "updated once; read_cycle_s: the reads alone. interval_*: the refresh that "
            "opens an interval (once per 15 minutes, 1 in 30 polls at 30 s): whole "
            "(interval_refresh_s), its ledger write storing 200 readings and charging 200 "
            "wallets in SQLite (interval_ledger_write_s, which core modbus does not do at "
            "all), and the rest (interval_poll_s, compared with core modbus in "
            "interval_poll_speedup). Loopback simulator in the same process: without line "
            "latency both sides are bound by pymodbus CPU time; the *_5ms_gateway figures "
            "delay every answer by 5 ms, as a gateway in front of an RS-485 line does, and "
            "approach the 6 to 1 ratio of requests. *_cpu_s: the event loop thread's CPU "
            "time of the same cycles (less sensitive to other work on the machine than "
            "wall time; the loop also runs the simulator, whose work per request both "
            "sides pay). state_writes_per_poll: states written in a cycle (ours: meter "
            "values and the tenants' money sensors whose shown cent changed; core modbus: "
            "every entity, changed or not). meter_side_*: the part of our cycle that does "
            "what core modbus does (the reads and the meters' own entities, no charging, "
            "policy or tenant entities), against the same core modbus cycle."
        ),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "raw_seconds": {
            "prepaid_meter_cycle": [round(t, 4) for t in ours["times"]],
            "prepaid_meter_cycle_cpu": [round(t, 4) for t in ours["cpu"]],
            "prepaid_meter_reads": [round(t, 4) for t in ours["read_times"]],
            "prepaid_meter_interval_refresh": [round(t, 4) for t in ours["storing_times"]],
            "prepaid_meter_interval_ledger_write": [round(t, 4) for t in ours["post_times"]],
            "prepaid_meter_meter_side": [round(t, 4) for t in ours["meter_side_times"]],
            "prepaid_meter_meter_side_cpu": [round(t, 4) for t in ours["meter_side_cpu"]],
            "core_modbus": [round(t, 4) for t in core["times"]],
            "core_modbus_cpu": [round(t, 4) for t in core["cpu"]],
            "speedup_per_pair": [
                round(c / o, 2) for o, c in zip(ours["times"], core["times"], strict=True)
            ],
        },
    }
