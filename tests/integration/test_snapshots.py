"""Snapshots (syrupy) of a small demo site's devices, entity registry entries and states.

Three shops on the real simulator: a prepaid meter with a relay in credit, a
three-phase SDM630 (no relay) below the first warning level, and a shop with
no credit that the policy cut off. The snapshots hold every entity the site
creates (also the ones off by default) and every state after half an hour of
use; ids that Home Assistant makes up are masked by the snapshot extension,
the entry id is fixed, and the only clock-dependent attribute (``last_reset``
of the daily and period costs) is checked apart.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.prepaid_meter.const import (
    CONF_METERS,
    CONF_TENANTS,
    CONF_WARNING_LEVELS,
    DOMAIN,
)
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.site import site_entry

ENTRY_ID = "01JDEMOSITE0000000000000000"


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncGenerator[MeterSimulator]:
    sim = MeterSimulator(
        [
            SimulatedMeter(device_id=1, base_power_w=1000.0, energy_centi_kwh=100_001),
            SimulatedMeter(
                device_id=2, profile="sdm630", base_power_w=3000.0, energy_centi_kwh=50_000
            ),
            SimulatedMeter(device_id=3, base_power_w=2000.0, energy_centi_kwh=7_000),
        ]
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def demo_site(hass: HomeAssistant, simulator: MeterSimulator, db_url: str) -> MockConfigEntry:
    meters = [
        {"id": "m1", "name": "Shop 01", "device_id": 1, "profile": "simulator"},
        {"id": "m2", "name": "Shop 02", "device_id": 2, "profile": "sdm630"},
        {"id": "m3", "name": "Shop 03", "device_id": 3, "profile": "simulator"},
    ]
    tenants = [{"id": f"t{n}", "name": f"Shop 0{n}", "meters": [f"m{n}"]} for n in (1, 2, 3)]
    entry = site_entry(
        simulator,
        db_url,
        title="Demo mall",
        entry_id=ENTRY_ID,
        options={
            CONF_METERS: meters,
            CONF_TENANTS: tenants,
            CONF_WARNING_LEVELS: "100, 50",
            "interval_minutes": 0,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for tenant, amount in (("t1", "120"), ("t2", "90")):
        await hass.services.async_call(
            DOMAIN,
            "top_up",
            {"tenant": tenant, "amount": amount, "reference": f"snap-{tenant}"},
            blocking=True,
        )
    simulator.advance(1800)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    return entry


def shown(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    attributes = {k: v for k, v in state.attributes.items() if k != "last_reset"}
    return {"state": state.state, "attributes": attributes}


async def test_demo_site_entities(
    hass: HomeAssistant,
    demo_site: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, demo_site.entry_id),
        key=lambda e: e.entity_id,
    )
    assert entries
    for entry in entries:
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        if entry.disabled_by is None:
            assert shown(hass, entry.entity_id) == snapshot(name=f"{entry.entity_id}-state")
        else:
            assert hass.states.get(entry.entity_id) is None

    # The daily and period sums say when they started: local midnight, and the
    # billing day's local midnight (billing day 1 by default).
    def last_reset(entity_id: str) -> Any:
        return dt_util.parse_datetime(hass.states.get(entity_id).attributes["last_reset"])

    today = dt_util.start_of_local_day()
    assert last_reset("sensor.shop_01_cost_today") == today
    assert last_reset("sensor.shop_01_cost_this_period") == dt_util.start_of_local_day(
        today.date().replace(day=1)
    )
    assert "last_reset" not in hass.states.get("sensor.shop_01_total_cost").attributes


async def test_demo_site_devices(
    hass: HomeAssistant,
    demo_site: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    devices = sorted(
        dr.async_entries_for_config_entry(device_registry, demo_site.entry_id),
        key=lambda d: d.name or "",
    )
    assert devices == snapshot
    # A tenant's device lists its meter (the meter's device is linked through it).
    by_name = {d.name: d for d in devices}
    for n in (1, 2, 3):
        assert by_name[f"Shop 0{n} meter"].via_device_id == by_name[f"Shop 0{n}"].id
