"""Alarms in a real Home Assistant against the real simulator.

Each alarm starts once and clears once (``prepaid_meter_alarm`` with
``active`` true, then false), shows on its problem binary sensor on the right
device, and where a person must act raises a repair issue that goes away
when the condition clears. The clock is frozen but ticking (pymodbus needs
a running monotonic clock).
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import DOMAIN, EVENT_ALARM
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry, ticking_clock

#: A Monday morning; the spike test's history is on the Mondays before.
NOW = datetime(2026, 9, 28, 2, 20, tzinfo=UTC)


@pytest.fixture
def meter_count() -> int:
    return 2


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from NOW (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock(NOW)


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


def record(hass: HomeAssistant) -> list[Event]:
    events: list[Event] = []

    @callback
    def _append(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_ALARM, _append)
    return events


async def poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


def flips(events: list[Event], kind: str) -> list[bool]:
    return [e.data["active"] for e in events if e.data["kind"] == kind]


def state(hass: HomeAssistant, entity_id: str) -> str:
    st = hass.states.get(entity_id)
    assert st is not None, entity_id
    return st.state


def device_id(hass: HomeAssistant, entry: MockConfigEntry, kind: str, key: str) -> str:
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_{kind}_{key}")}
    )
    assert device is not None
    return device.id


def issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


def set_load(sim: MeterSimulator, device: int, watts: float) -> None:
    sim.meters[device].base_power_w = watts
    sim.meters[device].swing = 0.0


async def test_overload_and_sustained_load_start_once_and_clear_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    set_load(simulator, 1, 1000)
    entry = await setup(
        hass,
        site_entry(
            simulator,
            db_url,
            cut_off=False,
            capacity_kw="5",
            sustained_kw="3",
            sustained_minutes=10,
        ),
    )
    events = record(hass)
    overload, sustained = "binary_sensor.shop_01_overload", "binary_sensor.shop_01_sustained_load"
    assert state(hass, overload) == "off"
    assert state(hass, sustained) == "off"
    assert hass.states.get(overload).attributes["device_class"] == "problem"

    # 6 kW: above the 5 kW capacity at once; above 3 kW, but not yet for 10 minutes.
    set_load(simulator, 1, 6000)
    await poll(hass, entry)
    assert flips(events, "overload") == [True]
    assert flips(events, "sustained_load") == []
    assert state(hass, overload) == "on"
    started = next(e for e in events if e.data["kind"] == "overload")
    assert started.data["tenant"] == "t1"
    assert started.data["tenant_name"] == "Shop 01"
    assert started.data["device_id"] == device_id(hass, entry, "tenant", "t1")
    assert started.data["load_kw"] == "6"
    assert started.data["limit_kw"] == "5"
    assert started.data["entry_id"] == entry.entry_id

    for _ in range(3):
        freezer.tick(timedelta(minutes=4))
        await poll(hass, entry)
    assert flips(events, "overload") == [True], "once per start, not per poll"
    assert flips(events, "sustained_load") == [True]
    assert state(hass, sustained) == "on"
    held = next(e for e in events if e.data["kind"] == "sustained_load")
    assert datetime.fromisoformat(held.data["since"]) <= NOW + timedelta(minutes=1)

    # 4 kW: under the capacity (and its 90 % clear level) but still sustained.
    set_load(simulator, 1, 4000)
    await poll(hass, entry)
    assert flips(events, "overload") == [True, False]
    assert flips(events, "sustained_load") == [True]
    assert state(hass, overload) == "off"
    # 1 kW: the sustained load clears too.
    set_load(simulator, 1, 1000)
    await poll(hass, entry)
    await poll(hass, entry)
    assert flips(events, "sustained_load") == [True, False]
    assert state(hass, sustained) == "off"
    # The other tenant never alarmed.
    assert {e.data["tenant"] for e in events} == {"t1"}
    assert state(hass, "binary_sensor.shop_02_overload") == "off"


async def test_spike_against_the_usual_load_of_that_hour(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    set_load(simulator, 1, 1000)
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=False))
    events = record(hass)
    spike = "binary_sensor.shop_01_abnormal_use"
    # No history yet: even 20 kW is no spike.
    set_load(simulator, 1, 20000)
    await poll(hass, entry)
    assert flips(events, "spike") == []
    assert hass.states.get(spike).attributes["usual_kw"] is None

    # Two earlier Mondays used 0.5 kWh in this hour (02:00-03:00 UTC).
    rows = ["meter,time,value"]
    for weeks, base in ((2, "900"), (1, "950")):
        hour = datetime(2026, 9, 28, 2, tzinfo=UTC) - timedelta(weeks=weeks)
        rows.append(f"m1,{(hour - timedelta(minutes=1)).isoformat()},{base}")
        rows.append(f"m1,{(hour + timedelta(minutes=59)).isoformat()},{base}.5")
    await hass.services.async_call(
        DOMAIN, "import_readings", {"csv": "\n".join(rows)}, blocking=True, return_response=True
    )
    # The history is loaded when the site starts, and hourly after.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    set_load(simulator, 1, 1000)
    await poll(hass, entry)
    assert hass.states.get(spike).attributes["usual_kw"] == "0.5"
    assert flips(events, "spike") == []

    # The level is max(3 x 0.5, 0.5 + 1) = 1.5 kW.
    set_load(simulator, 1, 4000)
    await poll(hass, entry)
    await poll(hass, entry)
    assert flips(events, "spike") == [True]
    assert state(hass, spike) == "on"
    started = next(e for e in events if e.data["kind"] == "spike")
    assert (started.data["usual_kw"], started.data["limit_kw"]) == ("0.5", "1.5")
    assert started.data["device_id"] == device_id(hass, entry, "tenant", "t1")
    set_load(simulator, 1, 1000)
    await poll(hass, entry)
    assert flips(events, "spike") == [True, False]
    assert state(hass, spike) == "off"


async def test_relay_mismatch_alarm_sensor_and_repair(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    events = record(hass)
    simulator.set_fault(1, "relay_stuck")
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=True))
    sensor = "binary_sensor.shop_01_meter_relay_mismatch"
    issue_id = f"relay_mismatch_{entry.entry_id}_m1"
    assert flips(events, "relay_mismatch") == [True]
    started = next(e for e in events if e.data["kind"] == "relay_mismatch")
    assert started.data["meter"] == "m1"
    assert started.data["wanted_closed"] is False
    assert started.data["device_id"] == device_id(hass, entry, "meter", "m1")
    assert state(hass, sensor) == "on"
    assert hass.states.get(sensor).attributes["device_class"] == "problem"
    found = issue(hass, issue_id)
    assert found is not None
    assert found.translation_key == "relay_mismatch"
    assert found.translation_placeholders == {"site": "Test mall", "meter": "Shop 01"}
    assert state(hass, "binary_sensor.shop_02_meter_relay_mismatch") == "off"

    await poll(hass, entry)
    assert flips(events, "relay_mismatch") == [True], "still stuck: no new event"
    simulator.clear_fault(1)
    await poll(hass, entry)
    assert simulator.meters[1].relay_closed is False
    assert flips(events, "relay_mismatch") == [True, False]
    assert state(hass, sensor) == "off"
    assert issue(hass, issue_id) is None


async def test_tamper_alarm_waits_for_a_person_to_confirm_the_repair(
    hass: HomeAssistant,
    simulator: MeterSimulator,
    db_url: str,
    hass_client: ClientSessionGenerator,
) -> None:
    assert await async_setup_component(hass, "repairs", {})
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=False))
    events = record(hass)
    sensor = "binary_sensor.shop_01_meter_tamper"
    issue_id = f"tamper_{entry.entry_id}_m1"
    assert state(hass, sensor) == "off"
    simulator.advance(600)
    await poll(hass, entry)
    simulator.reset_counter(1)
    simulator.advance(600)
    await poll(hass, entry)
    assert sorted(e.data["kind"] for e in events) == ["counter_reset", "tamper"]
    tamper = next(e.data for e in events if e.data["kind"] == "tamper")
    assert tamper["active"] is True
    assert tamper["meter"] == "m1"
    assert tamper["device_id"] == device_id(hass, entry, "meter", "m1")
    assert tamper["value"] == "0" or tamper["value"].startswith("0.")
    assert state(hass, sensor) == "on"
    found = issue(hass, issue_id)
    assert found is not None
    assert found.is_fixable
    assert found.severity is ir.IssueSeverity.ERROR
    assert found.translation_placeholders is not None
    assert found.translation_placeholders["previous"] == tamper["previous"]

    # Another fall while the alarm is on: the event for the fall, no second tamper start.
    simulator.reset_counter(1)
    simulator.advance(60)
    await poll(hass, entry)
    assert [e.data["kind"] for e in events].count("tamper") == 1

    # A restart keeps the alarm (it waits for a person).
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, sensor) == "on"

    # The person confirms the repair.
    client = await hass_client()
    resp = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id}
    )
    assert resp.status == 200
    flow = await resp.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["meter"] == "Shop 01"
    resp = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert resp.status == 200
    assert (await resp.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert flips(events, "tamper") == [True, False]
    assert state(hass, sensor) == "off"
    assert issue(hass, issue_id) is None


async def test_offline_meter_repair_after_the_configured_time(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    bus = {"id": "default", "kind": "tcp", "host": simulator.host, "port": simulator.port,
           "timeout": 0.3, "retries": 0}  # fmt: skip
    entry = await setup(
        hass,
        site_entry(simulator, db_url, cut_off=False, buses=[bus], offline_repair_minutes=30),
    )
    issue_id = f"offline_{entry.entry_id}_m2"
    simulator.set_fault(2, "no_answer")
    await poll(hass, entry)
    await poll(hass, entry)
    assert state(hass, "binary_sensor.shop_02_meter_online") == "off"
    assert issue(hass, issue_id) is None, "not before 30 minutes"
    freezer.tick(timedelta(minutes=31))
    await poll(hass, entry)
    found = issue(hass, issue_id)
    assert found is not None
    assert found.translation_key == "meter_offline"
    assert found.translation_placeholders is not None
    assert found.translation_placeholders["meter"] == "Shop 02"
    assert int(found.translation_placeholders["minutes"]) >= 30
    assert issue(hass, f"offline_{entry.entry_id}_m1") is None
    simulator.clear_fault(2)
    await poll(hass, entry)
    assert state(hass, "binary_sensor.shop_02_meter_online") == "on"
    assert issue(hass, issue_id) is None


async def test_alarm_sensors_only_where_a_rule_applies(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    """Sustained load and overload need their limits; the spike rule can be turned off."""
    await setup(hass, site_entry(simulator, db_url, cut_off=False, spike_factor=""))
    for name in ("abnormal_use", "sustained_load", "overload"):
        assert hass.states.get(f"binary_sensor.shop_01_{name}") is None
    assert state(hass, "binary_sensor.shop_01_meter_tamper") == "off"


def _options(entry: MockConfigEntry, **tenant_policy: dict[str, Any]) -> dict[str, Any]:
    options = dict(entry.options)
    options["tenants"] = [
        {**t, "policy": tenant_policy[t["id"]]} if t["id"] in tenant_policy else t
        for t in options["tenants"]
    ]
    return options


async def test_a_tenant_overrides_the_site_limits(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    set_load(simulator, 1, 3000)
    set_load(simulator, 2, 3000)
    entry = site_entry(simulator, db_url, cut_off=False, capacity_kw="10")
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=_options(entry, t2={"capacity_kw": "2"}))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "binary_sensor.shop_01_overload") == "off"
    assert state(hass, "binary_sensor.shop_02_overload") == "on"


async def test_removing_the_site_removes_its_repair_issues(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    simulator.set_fault(1, "relay_stuck")
    entry = await setup(hass, site_entry(simulator, db_url, cut_off=True))
    issue_id = f"relay_mismatch_{entry.entry_id}_m1"
    assert issue(hass, issue_id) is not None
    # A reload finds the stuck relay again: one issue, still there.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert issue(hass, issue_id) is not None
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert issue(hass, issue_id) is None


@pytest.mark.parametrize(
    "bad",
    [{"capacity_kw": "-2"}, {"spike_factor": "0.5"}, {"sustained_minutes": "soon"}],
)
async def test_unusable_alarm_options_stop_the_setup_with_a_clear_error(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, bad: dict[str, str]
) -> None:
    entry = site_entry(simulator, db_url, **bad)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert next(iter(bad)) in entry.reason
