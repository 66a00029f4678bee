"""Each supply-policy rule in a real Home Assistant against the real simulator.

Warning levels fire once per crossing and re-arm after a top-up (also across
a restart); friendly hours and a grace period hold a cut-off until they end
(on Home Assistant's time zone, with the clock moved by freezer); emergency
credit is granted once until the next top-up; the manual lock and force-on
win over the policy; a top-up reconnects within the action call.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.prepaid_meter.const import (
    EVENT_CUT_OFF,
    EVENT_EMERGENCY_CREDIT,
    EVENT_LOW_BALANCE,
    EVENT_RECONNECTED,
)
from devtools.simulator import MeterSimulator
from tests.conftest import call, site_entry, ticking_clock


@pytest.fixture
def meter_count() -> int:
    return 2


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from now (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock()


def record(hass: HomeAssistant, *types: str) -> list[Event]:
    events: list[Event] = []
    for event_type in types:
        hass.bus.async_listen(event_type, events.append)
    return events


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def top_up(hass: HomeAssistant, tenant: str, amount: str, reference: str) -> Any:
    return await call(hass, "top_up", tenant=tenant, amount=amount, reference=reference)


async def poll(
    hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator, hours: float
) -> None:
    sim.advance(hours * 3600)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


def balance(hass: HomeAssistant, n: int = 1) -> Decimal:
    return Decimal(hass.states.get(f"sensor.shop_0{n}_balance").state)


def supply(hass: HomeAssistant, n: int = 1) -> str:
    return hass.states.get(f"sensor.shop_0{n}_supply").state


async def test_warning_levels_fire_once_per_crossing_and_re_arm_after_top_up(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(
        hass, site_entry(simulator, db_url, cut_off=False, price="1.00", warning_levels="100, 50")
    )
    events = record(hass, EVENT_LOW_BALANCE)
    await top_up(hass, "t1", "120.00", "p1")
    await hass.async_block_till_done()
    assert [e for e in events if e.data["tenant"] == "t1"] == []

    # Meter 1 draws about 1 kW: 1.00 an hour. 120 -> about 100 -> about 40.
    levels: list[str] = []
    for _ in range(12):
        await poll(hass, entry, simulator, 2)
        levels = [e.data["level"] for e in events if e.data["tenant"] == "t1"]
    assert balance(hass) < 100
    assert levels == ["100"], "one event for the 100 crossing, none on later polls"
    while balance(hass) > 50:
        await poll(hass, entry, simulator, 2)
    await poll(hass, entry, simulator, 2)
    levels = [e.data["level"] for e in events if e.data["tenant"] == "t1"]
    assert levels == ["100", "50"]
    low = next(e for e in events if e.data["level"] == "50")
    assert low.data["kind"] == "balance"
    assert Decimal(low.data["balance"]) <= 50
    assert low.data["currency"] == "CNY"
    assert low.data["tenant_name"] == "Shop 01"

    # A restart remembers what fired: no repeat.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await poll(hass, entry, simulator, 1)
    assert [e.data["level"] for e in events if e.data["tenant"] == "t1"] == ["100", "50"]

    # A top-up to above 100 re-arms both; the next fall below 100 fires again.
    await top_up(hass, "t1", "70.00", "p2")
    assert balance(hass) > 100
    while balance(hass) > 100:
        await poll(hass, entry, simulator, 2)
    await hass.async_block_till_done()
    assert [e.data["level"] for e in events if e.data["tenant"] == "t1"] == ["100", "50", "100"]


async def test_friendly_hours_hold_a_cut_off_until_they_end(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_set_time_zone("Asia/Shanghai")
    # Monday 2026-09-28 20:00 in Shanghai (UTC+8): inside weekday-evening friendly hours.
    freezer.move_to(datetime(2026, 9, 28, 12, 0, tzinfo=UTC))
    events = record(hass, EVENT_CUT_OFF, EVENT_RECONNECTED)
    await setup(
        hass,
        site_entry(simulator, db_url, friendly_hours="mon-fri 18:00-08:00", holidays="2026-10-01"),
    )
    # No credit, cut-off enabled: due, but held by friendly hours.
    assert simulator.meters[1].relay_closed
    assert supply(hass) == "friendly_hours"
    assert events == []

    # 07:59 local: still held.
    freezer.move_to(datetime(2026, 9, 28, 23, 59, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed

    # 08:00 local: friendly hours end and the cut-off happens.
    freezer.move_to(datetime(2026, 9, 29, 0, 0, 1, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not simulator.meters[1].relay_closed
    assert not simulator.meters[2].relay_closed
    assert supply(hass) == "cut_off"
    assert {e.data["tenant"] for e in events if e.event_type == EVENT_CUT_OFF} == {"t1", "t2"}

    # Friendly hours never reconnect a tenant already cut off (18:00 the same day).
    freezer.move_to(datetime(2026, 9, 29, 10, 30, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not simulator.meters[1].relay_closed


async def test_holiday_holds_a_cut_off(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_set_time_zone("Asia/Shanghai")
    freezer.move_to(datetime(2026, 10, 1, 4, 0, tzinfo=UTC))  # Thursday noon, National Day
    await setup(hass, site_entry(simulator, db_url, friendly_hours="", holidays="2026-10-01"))
    assert simulator.meters[1].relay_closed
    freezer.move_to(datetime(2026, 10, 1, 16, 0, 1, tzinfo=UTC))  # Friday 00:00:01 local
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not simulator.meters[1].relay_closed


async def test_grace_period_holds_a_cut_off_until_it_ends(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(datetime(2026, 9, 28, 4, 0, tzinfo=UTC))
    await setup(hass, site_entry(simulator, db_url, grace_minutes=30))
    assert simulator.meters[1].relay_closed
    assert supply(hass) == "grace"
    freezer.tick(timedelta(minutes=29))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not simulator.meters[1].relay_closed
    assert supply(hass) == "cut_off"


async def test_emergency_credit_is_granted_once_until_the_next_top_up(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url, price="1.00", emergency_credit="5"))
    events = record(hass, EVENT_EMERGENCY_CREDIT, EVENT_RECONNECTED, EVENT_CUT_OFF)
    meter = simulator.meters[1]
    assert not meter.relay_closed

    response = await call(hass, "emergency_credit", tenant="t1")
    assert meter.relay_closed, "emergency credit reconnects at once"
    assert response["supply"] == "emergency"
    assert response["emergency_credit"] == "5"
    await hass.async_block_till_done()
    assert [e.event_type for e in events] == [EVENT_EMERGENCY_CREDIT, EVENT_RECONNECTED]
    assert events[0].data["amount"] == "5"
    assert supply(hass) == "emergency"

    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "emergency_credit", tenant="t1")
    assert err.value.translation_key == "emergency_credit_used"

    # ... also after a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError):
        await call(hass, "emergency_credit", tenant="t1")

    # Using it up cuts off at -5.
    while meter.relay_closed:
        await poll(hass, entry, simulator, 1)
    assert balance(hass) <= -5
    assert events[-1].event_type == EVENT_CUT_OFF

    # A top-up that pays it back reconnects, and emergency credit is offered again.
    await top_up(hass, "t1", "20.00", "p1")
    assert meter.relay_closed
    await call(hass, "emergency_credit", tenant="t1")
    await hass.async_block_till_done()
    assert [e.event_type for e in events].count(EVENT_EMERGENCY_CREDIT) == 2


async def test_lock_and_force_on_win_over_the_policy(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url))
    m1, m2 = simulator.meters[1], simulator.meters[2]
    await top_up(hass, "t1", "50.00", "p1")
    assert m1.relay_closed
    assert not m2.relay_closed

    # Lock a tenant in credit: off, and a top-up does not reconnect.
    response = await call(hass, "lock_supply", tenant="t1")
    assert response["supply"] == "locked"
    assert not m1.relay_closed
    await top_up(hass, "t1", "10.00", "p2")
    await poll(hass, entry, simulator, 1)
    assert not m1.relay_closed
    assert supply(hass, 1) == "locked"

    # Force on a tenant in debt: on, and polls keep it on.
    response = await call(hass, "force_supply", tenant="t2")
    assert response["supply"] == "forced_on"
    assert m2.relay_closed
    await poll(hass, entry, simulator, 3)
    assert balance(hass, 2) < 0
    assert m2.relay_closed
    assert supply(hass, 2) == "forced_on"

    # Both survive a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert not m1.relay_closed
    assert m2.relay_closed
    assert supply(hass, 1) == "locked"
    assert supply(hass, 2) == "forced_on"

    # Release: the policy decides again.
    await call(hass, "release_supply", tenant="t1")
    await call(hass, "release_supply", tenant="t2")
    assert m1.relay_closed
    assert not m2.relay_closed
    assert supply(hass, 1) == "on"
    assert supply(hass, 2) == "cut_off"


async def test_options_flow_validates_and_saves_the_policy(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, tmp_path: Path
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url))
    base = {"price": "1.50", "cut_off_enabled": True, "scan_interval": 30}
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**base, "warning_levels": "100, lots", "friendly_hours": "mon-fri 18:00"},
    )
    assert result["errors"] == {"warning_levels": "invalid_warning_levels"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, "warning_levels": "100", "friendly_hours": "mon-fri 18:00"}
    )
    assert result["errors"] == {"friendly_hours": "invalid_friendly_hours"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **base,
            "warning_levels": "100, 50",
            "friendly_hours": "mon-fri 18:00-08:00; sat-sun 00:00-24:00",
            "holidays": "2026-10-01",
            "grace_minutes": 15,
            "credit_limit": "20",
            "emergency_credit": "5",
            "days_left_level": 3,
        },
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    tenant = entry.runtime_data.site.tenants[0]
    assert tenant.policy.cut_off_at == Decimal(-20)
    assert tenant.policy.grace == timedelta(minutes=15)
    assert tenant.policy.emergency_credit == Decimal(5)
    assert tenant.warnings.balances == (Decimal(100), Decimal(50))
    assert tenant.warnings.days_left == Decimal(3)
