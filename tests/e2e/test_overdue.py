"""The postpaid overdue hook (``PrepaidCoordinator.async_set_overdue``) with a real site.

The bills engine calls the hook; here it is called directly, as that engine
would. A tenant whose policy has ``cut_off_when_overdue`` is cut off like a
prepaid tenant out of credit (grace period and friendly hours apply) and
reconnected when the bill is paid; other tenants are never cut off for it.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.prepaid_meter.const import DOMAIN, EVENT_CUT_OFF, EVENT_RECONNECTED
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry, ticking_clock

#: Monday 2026-09-28 10:00 in Shanghai: outside the weekday-evening friendly hours.
NOW = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
def meter_count() -> int:
    return 2


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from NOW (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock(NOW)


def supply(hass: HomeAssistant, n: int) -> str:
    state = hass.states.get(f"sensor.shop_0{n}_supply")
    assert state is not None
    return state.state


async def tick(hass: HomeAssistant, freezer: FrozenDateTimeFactory, **delta: Any) -> None:
    freezer.tick(timedelta(**delta))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_overdue_cuts_off_after_grace_and_friendly_hours_and_reconnects_when_paid(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    await hass.config.async_set_time_zone("Asia/Shanghai")
    entry: MockConfigEntry = site_entry(
        simulator, db_url, grace_minutes=30, friendly_hours="mon-fri 18:00-08:00"
    )
    options = dict(entry.options)
    options["tenants"] = [
        {**t, "policy": {"cut_off_when_overdue": True}} if t["id"] == "t1" else t
        for t in options["tenants"]
    ]
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    events: list[Event] = []

    @callback
    def _append(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_CUT_OFF, _append)
    hass.bus.async_listen(EVENT_RECONNECTED, _append)
    for tenant in ("t1", "t2"):
        await hass.services.async_call(
            DOMAIN, "top_up", {"tenant": tenant, "amount": "100", "reference": f"p-{tenant}"},
            blocking=True, return_response=True,
        )  # fmt: skip
    assert (supply(hass, 1), supply(hass, 2)) == ("on", "on")
    coordinator = entry.runtime_data.coordinator

    # A bill is overdue: credit is not the question, the grace period runs.
    await coordinator.async_set_overdue("t1", True)
    await coordinator.async_set_overdue("t2", True)
    await hass.async_block_till_done()
    assert supply(hass, 1) == "grace"
    assert supply(hass, 2) == "on", "t2's policy does not cut off for an overdue bill"
    assert simulator.meters[1].relay_closed
    await tick(hass, freezer, minutes=29)
    assert simulator.meters[1].relay_closed
    await tick(hass, freezer, minutes=1, seconds=2)
    assert not simulator.meters[1].relay_closed, "cut off on the simulator when the grace ends"
    assert simulator.meters[2].relay_closed
    assert supply(hass, 1) == "cut_off"
    assert [(e.event_type, e.data["tenant"]) for e in events] == [(EVENT_CUT_OFF, "t1")]

    # The bill is paid: reconnected at once.
    await coordinator.async_set_overdue("t1", False)
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed
    assert supply(hass, 1) == "on"
    assert events[-1].event_type == EVENT_RECONNECTED

    # Overdue again at 19:00 local: friendly hours hold the cut-off until 08:00.
    freezer.move_to(datetime(2026, 9, 28, 11, 0, tzinfo=UTC))
    await coordinator.async_set_overdue("t1", True)
    await hass.async_block_till_done()
    await tick(hass, freezer, hours=2)
    assert simulator.meters[1].relay_closed
    assert supply(hass, 1) == "friendly_hours"
    freezer.move_to(datetime(2026, 9, 28, 23, 59, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed
    freezer.move_to(datetime(2026, 9, 29, 0, 0, 2, tzinfo=UTC))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not simulator.meters[1].relay_closed
    assert supply(hass, 1) == "cut_off"
    assert simulator.meters[2].relay_closed
