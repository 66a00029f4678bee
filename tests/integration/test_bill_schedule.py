"""Scheduled bills in a real Home Assistant: caught up at start, issued after the period, once."""

from __future__ import annotations

from datetime import datetime, timedelta

from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.prepaid_meter.bill_schedule import last_period
from custom_components.prepaid_meter.const import EVENT_BILL_ISSUED
from custom_components.prepaid_meter.store import Store, ledger
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


def _next_run(now: datetime) -> datetime:
    """00:30 local on the first of next month: the day after a billing_day 1 period ends."""
    local = dt_util.as_local(now)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, 0, 30, tzinfo=local.tzinfo)


async def test_bills_caught_up_at_start_then_issued_after_each_period_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    events: list[Event] = async_capture_events(hass, EVENT_BILL_ISSUED)
    entry = site_entry(simulator, db_url, cut_off=False, billing_day=1)
    # The tenants moved in 40 days ago (the site ran before, on another hub):
    # the period before this one is theirs to be billed for.
    store = Store(db_url)
    await store.async_open()
    await store.run(
        ledger.sync_site,
        site=entry.entry_id,
        name="Test",
        currency="CNY",
        meters=[
            (m["id"], m["name"], m.get("device_id"), "simulator") for m in entry.options["meters"]
        ],
        tenants=[(t["id"], t["name"], tuple(t["meters"])) for t in entry.options["tenants"]],
        at=dt_util.utcnow() - timedelta(days=40),
    )
    await store.async_close()
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    tenants = [t.id for t in entry.runtime_data.site.tenants]
    tz = str(hass.config.time_zone)

    # The start catches up the period that ended before it (nobody issued it).
    missed = last_period(dt_util.utcnow(), 1, tz)
    assert sorted(e.data["tenant"] for e in events) == tenants
    assert {e.data["period_start"] for e in events} == {missed.start.isoformat()}
    assert all(e.data["device_id"] for e in events)

    # Time moves to the day after the current period ends: its bills go out.
    simulator.advance(3600)
    await entry.runtime_data.coordinator.async_refresh()
    run_at = _next_run(dt_util.utcnow())
    async_fire_time_changed(hass, run_at)
    await hass.async_block_till_done()
    ended = last_period(run_at, 1, tz)
    assert ended.start == missed.end
    fresh = [e for e in events if e.data["period_start"] == ended.start.isoformat()]
    assert sorted(e.data["tenant"] for e in fresh) == tenants
    assert all(float(e.data["total"]) > 0 for e in fresh)  # the hour just used is on them

    # The same run again, and a restart, issue nothing new.
    async_fire_time_changed(hass, run_at)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert len(events) == 2 * len(tenants)
    numbers = sorted(int(e.data["bill_number"]) for e in events)
    assert numbers == list(range(1, 2 * len(tenants) + 1))  # gap-free, none twice


async def test_no_schedule_without_a_billing_day(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    events: list[Event] = async_capture_events(hass, EVENT_BILL_ISSUED)
    async_fire_time_changed(hass, _next_run(dt_util.utcnow()))
    await hass.async_block_till_done()
    assert events == []


async def test_a_new_site_bills_nobody_for_the_period_before_it(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    """Tenants who moved in this period get no catch-up bill for the last one."""
    events: list[Event] = async_capture_events(hass, EVENT_BILL_ISSUED)
    entry = site_entry(simulator, db_url, cut_off=False, billing_day=1)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert events == []
    balances = entry.runtime_data.coordinator.data.tenants
    assert all(state.balance == 0 for state in balances.values())


async def test_tenants_with_a_move_in_day_are_billed_for_the_period_before(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    """A tenant's ``move_in`` (tenant sub-entry) opens its account on that day."""
    events: list[Event] = async_capture_events(hass, EVENT_BILL_ISSUED)
    base = site_entry(simulator, db_url, cut_off=False, billing_day=1)
    tenants = [dict(t) for t in base.options["tenants"]]
    tenants[0]["move_in"] = (dt_util.now() - timedelta(days=40)).date().isoformat()
    entry = site_entry(simulator, db_url, cut_off=False, billing_day=1, tenants=tenants)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert [e.data["tenant"] for e in events] == [tenants[0]["id"]]
