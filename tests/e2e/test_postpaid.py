"""Postpaid accounts end to end: a real Home Assistant, the real simulator, a real SQLite file.

A postpaid tenant uses first (its wallet runs below zero, no cut-off, no
balance warnings) and pays against bills. A bill still open after its due
date and the site's grace days makes the tenant overdue: the overdue event
fires once, the overdue sensor turns on and, with ``cut_off_when_overdue``,
the relay opens on the simulator. Payments are applied oldest bill first; a
partial one keeps the tenant overdue, paying the rest reconnects within the
action call. The state is derived from the store, so a restart keeps it.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import (
    DOMAIN,
    EVENT_BILL_OVERDUE,
    EVENT_CUT_OFF,
    EVENT_LOW_BALANCE,
    EVENT_RECONNECTED,
)
from custom_components.prepaid_meter.store import receivables
from devtools.simulator import MeterSimulator
from tests.conftest import call, load_entry, move_to, site_entry, ticking_clock

#: Monday 2026-09-28 10:00 in Shanghai.
NOW = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
RENT = {"name": "Rent", "amount": "100", "per": "month"}


@pytest.fixture
def meter_count() -> int:
    return 2


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from NOW (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock(NOW)


def postpaid_site(simulator: MeterSimulator, db_url: str, **tenant: Any) -> MockConfigEntry:
    """t1 postpaid (rent on every bill), t2 prepaid; bills due in 3 days, 1 grace day."""
    entry = site_entry(simulator, db_url, warning_levels="50", due_days=3, overdue_grace_days=1)
    options = dict(entry.options)
    options["tenants"] = [
        {**t, "billing": "postpaid", "fees": [RENT], **tenant} if t["id"] == "t1" else t
        for t in options["tenants"]
    ]
    return MockConfigEntry(domain=DOMAIN, title=entry.title, data=entry.data, options=options)


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    await hass.config.async_set_time_zone(TZ)
    return await load_entry(hass, entry)


def record(hass: HomeAssistant, *types: str) -> list[Event]:
    events: list[Event] = []
    for event_type in types:
        hass.bus.async_listen(event_type, events.append)
    return events


async def use(
    hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator, hours: float
) -> None:
    sim.advance(hours * 3600)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


def state(hass: HomeAssistant, entity_id: str) -> str:
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return found.state


def amount_due(hass: HomeAssistant) -> Decimal:
    return Decimal(state(hass, "sensor.shop_01_amount_due"))


async def accounts(entry: MockConfigEntry) -> receivables.Account:
    found = await entry.runtime_data.store.run(
        receivables.accounts, entry.entry_id, ["t1"], now=datetime.now(UTC), grace_days=1,
        timezone=TZ,
    )  # fmt: skip
    return found["t1"]


async def test_overdue_cuts_off_once_and_paying_the_rest_reconnects_at_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    events = record(hass, EVENT_BILL_OVERDUE, EVENT_CUT_OFF, EVENT_RECONNECTED, EVENT_LOW_BALANCE)
    entry = await setup(
        hass, postpaid_site(simulator, db_url, policy={"cut_off_when_overdue": True})
    )
    # Nobody has credit: the prepaid shop is cut off, the postpaid one uses first.
    await use(hass, entry, simulator, 6)
    assert Decimal(state(hass, "sensor.shop_01_balance")) < -5
    assert state(hass, "sensor.shop_01_supply") == "on"
    assert hass.states.get("sensor.shop_01_warning_level") is None, "postpaid: no credit warnings"
    assert simulator.meters[1].relay_closed
    assert state(hass, "sensor.shop_02_supply") == "cut_off"
    assert not simulator.meters[2].relay_closed
    assert {(e.event_type, e.data["tenant"]) for e in events} == {
        (EVENT_LOW_BALANCE, "t2"),
        (EVENT_CUT_OFF, "t2"),
    }, "no low-balance warning or cut-off for the postpaid shop"
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "off"
    assert amount_due(hass) == 0
    assert hass.states.get("sensor.shop_02_amount_due") is None, "prepaid: no amount due"
    events.clear()

    response = await call(
        hass, "generate_bill", tenant="t1", start=(NOW - timedelta(days=1)).isoformat()
    )
    [bill] = response["bills"]
    total = Decimal(bill["total"])
    assert total > 100
    assert bill["document"]["tenant"]["mode"] == "postpaid"
    # Issued on 28 September (local), due 1 October, overdue from 3 October 00:00 local.
    assert bill["document"]["due_at"].startswith("2026-10-01T")
    assert amount_due(hass) == total
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "off"

    await move_to(hass, freezer, datetime(2026, 10, 2, 15, 59, tzinfo=UTC))
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "off"
    assert simulator.meters[1].relay_closed
    assert events == []
    await move_to(hass, freezer, datetime(2026, 10, 2, 16, 0, 1, tzinfo=UTC))
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "on"
    assert not simulator.meters[1].relay_closed, "cut off on the simulator"
    assert state(hass, "sensor.shop_01_supply") == "cut_off"
    [overdue, cut] = events
    assert overdue.event_type == EVENT_BILL_OVERDUE
    assert overdue.data == {
        "entry_id": entry.entry_id,
        "tenant": "t1",
        "tenant_name": "Shop 01",
        "device_id": overdue.data["device_id"],
        "bill_number": bill["bill_number"],
        "bill_id": bill["bill_id"],
        "amount_open": str(total),
        "due": "2026-10-01",
        "currency": "CNY",
    }
    assert overdue.data["device_id"]
    assert (cut.event_type, cut.data["tenant"]) == (EVENT_CUT_OFF, "t1")

    # A partial payment: still overdue, still off.
    await call(hass, "top_up", tenant="t1", amount="40.00", reference="part")
    await hass.async_block_till_done()
    assert amount_due(hass) == total - 40
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "on"
    assert not simulator.meters[1].relay_closed

    # A restart: the state comes back from the store, the event does not fire again.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await move_to(hass, freezer, datetime(2026, 10, 3, 16, 0, 1, tzinfo=UTC))  # a midnight
    assert amount_due(hass) == total - 40
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "on"
    assert not simulator.meters[1].relay_closed
    assert [e.event_type for e in events].count(EVENT_BILL_OVERDUE) == 1

    # Paying the rest reconnects within the action call.
    await call(hass, "top_up", tenant="t1", amount=str(total - 40), reference="rest")
    assert simulator.meters[1].relay_closed, "reconnected by the top-up itself"
    await hass.async_block_till_done()
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "off"
    assert amount_due(hass) == 0
    assert state(hass, "sensor.shop_01_supply") == "on"
    assert events[-1].event_type == EVENT_RECONNECTED
    assert [e.event_type for e in events].count(EVENT_BILL_OVERDUE) == 1


async def test_two_open_bills_are_paid_oldest_first_and_a_recalculation_changes_the_amount_due(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    events = record(hass, EVENT_BILL_OVERDUE, EVENT_CUT_OFF)
    entry = await setup(hass, postpaid_site(simulator, db_url))
    await use(hass, entry, simulator, 3)
    [first] = (await call(hass, "generate_bill", tenant="t1",
                          start=(NOW - timedelta(days=1)).isoformat()))["bills"]  # fmt: skip
    await move_to(hass, freezer, NOW + timedelta(days=1))
    await use(hass, entry, simulator, 3)
    [second] = (await call(hass, "generate_bill", tenant="t1",
                           start=first["period_end"]))["bills"]  # fmt: skip
    first_total, second_total = Decimal(first["total"]), Decimal(second["total"])
    assert amount_due(hass) == first_total + second_total

    # A bank statement's payments as a batch (the prepaid shop's too).
    payments = [
        {"tenant": "t1", "amount": str(first_total + 1), "reference": "p1"},
        {"tenant": "t2", "amount": "5.00", "reference": "p1-t2"},
    ]
    await call(hass, "top_up_batch", payments=payments)
    await hass.async_block_till_done()
    account = await accounts(entry)
    assert [(b.number, b.paid, b.open) for b in account.bills] == [
        (first["bill_number"], first_total, 0),
        (second["bill_number"], Decimal(1), second_total - 1),
    ]
    assert amount_due(hass) == second_total - 1

    # The rent was 100 and is 150: the recalculated bill asks 50 more.
    options = dict(entry.options)
    options["tenants"] = [
        {**t, "fees": [{**RENT, "amount": "150"}]} if t["id"] == "t1" else t
        for t in options["tenants"]
    ]
    hass.config_entries.async_update_entry(entry, options=options)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    revised = await call(hass, "recalculate_bill", bill=str(second["bill_id"]))
    await hass.async_block_till_done()
    assert Decimal(revised["total"]) == second_total + 50
    assert amount_due(hass) == second_total + 49

    # Home Assistant is down while the bill falls overdue (the revision's due date, a day's
    # grace): found at start-up. No cut-off: this tenant's policy has none.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await move_to(hass, freezer, datetime(2026, 10, 5, 16, 0, 1, tzinfo=UTC))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, "binary_sensor.shop_01_bill_overdue") == "on"
    assert simulator.meters[1].relay_closed
    overdue = [e.data["bill_number"] for e in events if e.event_type == EVENT_BILL_OVERDUE]
    assert overdue == [revised["bill_number"]]
    assert [e.data["tenant"] for e in events if e.event_type == EVENT_CUT_OFF] == ["t2"]


#: The tenant sensors of one mode only (entity id suffixes).
PREPAID_ONLY = ("days_of_credit_left", "remaining_energy", "emergency_credit_taken",
                "warning_level")  # fmt: skip


async def test_a_tenant_switched_to_prepaid_and_back_gets_that_modes_entities_only(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, postpaid_site(simulator, db_url))

    def shown(shop: str) -> set[str]:
        ids = [f"sensor.{shop}_{suffix}" for suffix in (*PREPAID_ONLY, "amount_due")]
        ids.append(f"binary_sensor.{shop}_bill_overdue")
        return {i.split(".", 1)[1].removeprefix(f"{shop}_") for i in ids if hass.states.get(i)}

    postpaid, prepaid = {"amount_due", "bill_overdue"}, set(PREPAID_ONLY)
    assert (shown("shop_01"), shown("shop_02")) == (postpaid, prepaid)

    async def switch(billing: str) -> None:
        options = dict(entry.options)
        options["tenants"] = [
            {**t, "billing": billing} if t["id"] == "t1" else t for t in options["tenants"]
        ]
        hass.config_entries.async_update_entry(entry, options=options)
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()

    registry = er.async_get(hass)
    await switch("prepaid")
    assert shown("shop_01") == prepaid
    # Gone from the registry too, not left behind as unavailable entities.
    assert registry.async_get("sensor.shop_01_amount_due") is None
    assert registry.async_get("binary_sensor.shop_01_bill_overdue") is None
    await switch("postpaid")
    assert shown("shop_01") == postpaid
    assert registry.async_get("sensor.shop_01_warning_level") is None
    assert shown("shop_02") == prepaid
