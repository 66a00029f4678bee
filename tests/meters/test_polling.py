"""Polling in a real Home Assistant: offline and back, faults, counters, relays, buses.

Every test runs the integration against the real simulator over loopback and
checks what a landlord would see: entity states, alarm events, log lines,
and the wallet (never a wrong charge).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import EVENT_ALARM
from custom_components.prepaid_meter.store import ledger
from devtools.simulator import MeterSimulator, SimulatedMeter
from tests.conftest import site_entry
from tests.meters.conftest import StartSim

PRICE = Decimal("1.50")


def fast_bus(sim: MeterSimulator, bus_id: str = "default", **extra: Any) -> dict[str, Any]:
    """A bus that gives up quickly, so a silent meter costs the test little time."""
    kind = {"tcp": "tcp", "rtu_over_tcp": "rtu_over_tcp"}[sim.transport]
    return {
        "id": bus_id,
        "kind": kind,
        "host": sim.host,
        "port": sim.port,
        "timeout": 0.3,
        "retries": 0,
        **extra,
    }


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def alarms(hass: HomeAssistant) -> list[Event]:
    events: list[Event] = []
    hass.bus.async_listen(EVENT_ALARM, events.append)
    return events


def kwh(sim: MeterSimulator, device_id: int) -> Decimal:
    return Decimal(sim.meters[device_id].energy_centi_kwh) / 100


async def balance(entry: MockConfigEntry, tenant: str) -> Decimal:
    store = entry.runtime_data.store
    return await store.run(ledger.balance, entry.entry_id, tenant)


async def refresh(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("no_answer", {}),
        ("slow", {"delay": 0.6}),
        ("exception", {"code": 4}),
        ("drop", {}),
        ("garbage", {}),
    ],
)
async def test_meter_goes_away_and_comes_back(
    hass: HomeAssistant,
    simulator: MeterSimulator,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    params: dict[str, float],
) -> None:
    entry = await setup(
        hass, site_entry(simulator, db_url, cut_off=False, buses=[fast_bus(simulator)])
    )
    events = alarms(hass)
    start = kwh(simulator, 2)
    energy, online = "sensor.shop_02_meter_energy", "binary_sensor.shop_02_meter_online"
    assert hass.states.get(online).state == "on"
    assert hass.states.get(online).attributes["device_class"] == "connectivity"

    simulator.set_fault(2, fault, **params)  # type: ignore[arg-type]
    simulator.advance(3600)
    await refresh(hass, entry)
    # One failed poll is not yet "offline" (offline_after defaults to 2).
    assert hass.states.get(energy).state == str(start)
    assert hass.states.get(online).state == "on"
    assert events == []

    simulator.advance(3600)
    await refresh(hass, entry)
    assert hass.states.get(energy).state == "unavailable"
    assert hass.states.get(online).state == "off"
    assert [e.data["kind"] for e in events] == ["offline"]
    assert events[0].data["entry_id"] == entry.entry_id
    assert events[0].data["meter"] == "m2"
    # Other meters keep working, and the silent one is not charged meanwhile.
    assert hass.states.get("sensor.shop_01_meter_energy").state == str(kwh(simulator, 1))
    assert await balance(entry, "t2") == 0

    simulator.advance(3600)
    await refresh(hass, entry)
    assert len(events) == 1, "one alarm per outage, not one per poll"

    simulator.clear_fault(2)
    await asyncio.sleep(0.6 if fault == "slow" else 0)
    await refresh(hass, entry)
    assert [e.data["kind"] for e in events] == ["offline", "online"]
    assert hass.states.get(energy).state == str(kwh(simulator, 2))
    assert hass.states.get(online).state == "on"
    # The gap is charged once, when the meter is back: three hours of use.
    used = kwh(simulator, 2) - start
    assert used > Decimal("5")
    assert await balance(entry, "t2") == -used * PRICE
    await refresh(hass, entry)
    assert await balance(entry, "t2") == -used * PRICE
    assert caplog.text.count("Meter Shop 02 stopped answering") == 1
    assert caplog.text.count("Meter Shop 02 is answering again") == 1


async def test_offline_after_is_configurable(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(
        hass,
        site_entry(simulator, db_url, buses=[fast_bus(simulator)], offline_after=3),
    )
    events = alarms(hass)
    simulator.set_fault(3, "no_answer")
    for _ in range(2):
        await refresh(hass, entry)
    assert hass.states.get("binary_sensor.shop_03_meter_online").state == "on"
    await refresh(hass, entry)
    assert hass.states.get("binary_sensor.shop_03_meter_online").state == "off"
    assert [e.data["kind"] for e in events] == ["offline"]


async def test_counter_reset_is_not_charged_and_raises_an_alarm(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=False))
    events = alarms(hass)
    simulator.advance(3600)
    await refresh(hass, entry)
    charged = await balance(entry, "t1")
    assert charged < 0
    simulator.reset_counter(1)
    simulator.advance(3600)
    await refresh(hass, entry)
    # counter_reset for the fall; tamper starts (see tests/integration/test_alarms.py).
    assert sorted(e.data["kind"] for e in events) == ["counter_reset", "tamper"]
    assert await balance(entry, "t1") == charged, "a counter that went back is never charged"
    # Charging goes on from the new counter.
    base = kwh(simulator, 1)
    simulator.advance(3600)
    await refresh(hass, entry)
    assert await balance(entry, "t1") == charged - (kwh(simulator, 1) - base) * PRICE


async def test_counter_rollover_charges_the_energy_across_the_wrap(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    simulator.roll_counter(1, steps_before=30)  # 0.30 kWh before 42949672.96
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=False))
    events = alarms(hass)
    before = simulator.meters[1].energy_centi_kwh
    simulator.advance(3600)  # about 1 kWh: past the maximum
    await refresh(hass, entry)
    assert Decimal(hass.states.get("sensor.shop_01_meter_energy").state) < 1
    used = Decimal(simulator.meters[1].energy_centi_kwh - before) / 100
    assert used > Decimal("0.3")
    assert [e.data["kind"] for e in events] == ["counter_rollover"]
    assert await balance(entry, "t1") == -used * PRICE


async def test_relay_that_does_not_obey_raises_relay_mismatch(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    simulator.set_fault(1, "relay_stuck")
    events = alarms(hass)
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=True))
    mismatch = [e for e in events if e.data["kind"] == "relay_mismatch"]
    assert len(mismatch) == 1
    assert mismatch[0].data["meter"] == "m1"
    assert mismatch[0].data["wanted_closed"] is False
    assert simulator.meters[1].relay_closed is True
    assert hass.states.get("switch.shop_01_meter_relay").state == "on"
    # Meters that obey were cut off normally.
    assert simulator.meters[2].relay_closed is False
    assert entry.state is ConfigEntryState.LOADED


async def test_several_buses_polled_concurrently(
    hass: HomeAssistant, start_sim: StartSim, db_url: str
) -> None:
    """Meters on one bus are read in turn, buses at the same time."""
    tcp = await start_sim([SimulatedMeter(device_id=d, energy_centi_kwh=1000 * d) for d in (1, 2)])
    gateway = await start_sim(
        [
            SimulatedMeter(device_id=d, profile="ddsy1352", energy_centi_kwh=5000 * d)
            for d in (1, 2)
        ],
        transport="rtu_over_tcp",
    )
    meters = [
        {"id": "a1", "name": "A1", "device_id": 1},
        {"id": "a2", "name": "A2", "device_id": 2},
        {"id": "b1", "name": "B1", "device_id": 1, "bus": "gw", "profile": "ddsy1352"},
        {"id": "b2", "name": "B2", "device_id": 2, "bus": "gw", "profile": "ddsy1352"},
    ]
    tenants = [{"id": f"t{m['id']}", "name": m["name"], "meters": [m["id"]]} for m in meters]
    entry = await setup(
        hass,
        site_entry(
            tcp,
            db_url,
            cut_off=False,
            buses=[fast_bus(tcp, timeout=2), fast_bus(gateway, "gw", timeout=2)],
            meters=meters,
            tenants=tenants,
        ),
    )
    assert hass.states.get("sensor.a2_meter_energy").state == "20.00"
    assert hass.states.get("sensor.b2_meter_energy").state == "100.00"
    for sim in (tcp, gateway):
        for d in (1, 2):
            sim.set_fault(d, "slow", delay=0.25)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await refresh(hass, entry)
    elapsed = loop.time() - started
    assert 0.5 <= elapsed < 0.9, f"two buses of two slow meters took {elapsed:.2f} s"
    assert hass.states.get("binary_sensor.b1_meter_online").state == "on"


async def test_custom_profile_from_the_meter_config(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    custom = {
        "name": "Hand-made map of the simulator",
        "registers": {
            "energy_import": {"address": 0, "type": "uint32", "scale": "0.01"},
            "voltage": {"address": 4, "type": "uint16", "scale": "0.1"},
        },
    }
    meters = [{"id": "c1", "name": "Custom", "device_id": 1, "profile": "custom",
               "custom_profile": custom, "ct_ratio": "2"}]  # fmt: skip
    await setup(
        hass,
        site_entry(simulator, db_url, meters=meters, tenants=[]),
    )
    assert hass.states.get("sensor.custom_meter_energy").state == str(kwh(simulator, 1) * 2)
    assert hass.states.get("sensor.custom_meter_power") is None  # not in the map


async def test_invalid_meter_config_fails_setup(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    no_energy = {"registers": {"power": {"address": 0, "type": "int16"}}}
    meters = [
        {"id": "c1", "name": "C", "device_id": 1, "profile": "custom", "custom_profile": no_energy}
    ]
    entry = await setup(hass, site_entry(simulator, db_url, meters=meters, tenants=[]))
    assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_home_assistant_entity_as_meter(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    """A Shelly (or any energy sensor) is a meter; any switch-like entity its relay."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"kiosk_relay": {"initial": True}}}
    )
    hass.states.async_set("sensor.kiosk_energy", "125000", {"unit_of_measurement": "Wh"})
    hass.states.async_set("sensor.kiosk_power", "0.8", {"unit_of_measurement": "kW"})
    meters = [
        {
            "id": "k",
            "name": "Kiosk",
            "source": "entity",
            "energy_entity": "sensor.kiosk_energy",
            "power_entity": "sensor.kiosk_power",
            "relay_entity": "input_boolean.kiosk_relay",
        }
    ]
    tenants = [{"id": "tk", "name": "Kiosk", "meters": ["k"]}]
    events = alarms(hass)
    entry = await setup(
        hass, site_entry(simulator, db_url, cut_off=True, meters=meters, tenants=tenants)
    )
    assert hass.states.get("sensor.kiosk_meter_energy").state == "125.000"
    assert hass.states.get("sensor.kiosk_meter_power").state == "800.0"
    # No credit: the switch entity was turned off, and confirmed off.
    assert hass.states.get("input_boolean.kiosk_relay").state == "off"
    assert hass.states.get("switch.kiosk_meter_relay").state == "off"
    hass.states.async_set("sensor.kiosk_energy", "127500", {"unit_of_measurement": "Wh"})
    await refresh(hass, entry)
    assert await balance(entry, "tk") == Decimal("-2.5") * PRICE
    # The source sensor goes away: after two polls the meter is offline.
    hass.states.async_set("sensor.kiosk_energy", "unavailable")
    await refresh(hass, entry)
    await refresh(hass, entry)
    assert hass.states.get("binary_sensor.kiosk_meter_online").state == "off"
    assert [e.data["kind"] for e in events] == ["offline"]
