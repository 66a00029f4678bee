"""Prepaid wallets charged on real tariffs: the bill of the period equals what was deducted.

A real Home Assistant polls the real simulator and keeps a real SQLite file.
The clock starts three seconds before 08:00 UTC, where the tariff switches
from valley to peak, and ticks on; the test moves the meters' counters by
hand between polls, so every kWh and every interval is known.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.tariffs import stored_tariff
from devtools.simulator import MeterSimulator
from devtools.site import site_entry
from tests.conftest import call

CENT = Decimal("0.01")
SWITCH = datetime.fromisoformat("2026-03-10T08:00:00+00:00")

TOU_TIERS: dict[str, Any] = {
    "name": "Shops TOU with tiers",
    "currency": "CNY",
    "timezone": "UTC",
    "versions": [
        {
            "effective": "2026-01-01T00:00:00+00:00",
            "energy": {
                "kind": "tou",
                "prices": {"valley": "0.40", "peak": "1.20"},
                "calendar": {
                    "seasons": [
                        {
                            "name": "all year",
                            "schedules": {
                                "weekday": [["00:00", "valley"], ["08:00", "peak"],
                                            ["22:00", "valley"]],
                            },
                        }
                    ]
                },
            },
            "tiers": {
                "basis": "period",
                "mode": "adder",
                "blocks": [{"upto": "5", "adder": "0"}, {"upto": None, "adder": "0.30"}],
            },
            "taxes": [{"name": "VAT", "percent": "13", "on": ["energy"]}],
        }
    ],
}  # fmt: skip

FLAT_TWO: dict[str, Any] = {
    "name": "Flat 2.00",
    "currency": "CNY",
    "timezone": "UTC",
    "versions": [
        {"effective": "2026-01-01T00:00:00+00:00", "energy": {"kind": "flat", "price": "2.00"}}
    ],
}


def tariff_site(simulator: MeterSimulator, db_url: str, **options: Any) -> MockConfigEntry:
    return site_entry(
        simulator,
        db_url,
        cut_off=False,
        options={
            "tariffs": {"tou": TOU_TIERS, "flat2": FLAT_TWO},
            "tariff": "tou",
            "interval_minutes": 0,  # every poll charged (the site interval: test_intervals.py)
            **options,
        },
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def balance(entry: MockConfigEntry, tenant: str) -> Decimal:
    return await entry.runtime_data.store.run(ledger.balance, entry.entry_id, tenant)


async def charge(entry: MockConfigEntry, simulator: MeterSimulator, kwh: dict[int, str]) -> None:
    """Move meters' counters by ``kwh`` and poll once."""
    for device, used in kwh.items():
        simulator.meters[device].energy_centi_kwh += int(Decimal(used) * 100)
    await entry.runtime_data.coordinator.async_refresh()


async def after(at: datetime) -> None:
    await asyncio.sleep(max((at - dt_util.utcnow()).total_seconds(), 0) + 0.2)
    assert dt_util.utcnow() > at


def period_start(hass: HomeAssistant) -> str:
    return billing_period(dt_util.utcnow(), 1, hass.config.time_zone).start.isoformat()


@pytest.mark.freeze_time("2026-03-10T07:59:57+00:00", tick=True)
async def test_tou_and_tiers_bill_equals_deductions_across_a_restart(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = tariff_site(simulator, db_url)
    await setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    await call(hass, "top_up", tenant="t1", amount="100", method="cash", reference="p1")

    # 2 kWh in the valley, tier 1: 2 x 0.40 x 1.13.
    await charge(entry, simulator, {1: "2"})
    assert await balance(entry, "t1") == Decimal("100") - Decimal("0.904")

    # 2 kWh over a poll across 08:00: spread by time, partly valley, partly peak.
    await after(SWITCH)
    before = await balance(entry, "t1")
    await charge(entry, simulator, {1: "2"})
    spent = before - await balance(entry, "t1")
    assert 2 * Decimal("0.40") * Decimal("1.13") < spent < 2 * Decimal("1.20") * Decimal("1.13")

    # Restart mid-period: the 4 kWh of tier use so far are rebuilt from the store.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # 2 kWh at peak across the 5 kWh tier limit: 1 kWh at 1.20, 1 kWh at 1.20 + 0.30.
    before = await balance(entry, "t1")
    await charge(entry, simulator, {1: "2"})
    assert before - await balance(entry, "t1") == (Decimal("1.20") + Decimal("1.50")) * Decimal(
        "1.13"
    )

    response = await call(hass, "generate_bill", tenant="t1", start=period_start(hass))
    [bill] = response["bills"]
    doc = bill["document"]
    deducted = Decimal("100") - await balance(entry, "t1")
    assert Decimal(bill["total"]) == deducted.quantize(CENT)
    assert doc["matches_deducted"] is True
    assert doc["wallet"]["deducted"] == bill["total"]
    energy = {(ln["tou_period"], ln["tier"]) for ln in doc["lines"] if ln["section"] == "energy"}
    assert energy == {("valley", 1), ("peak", 1), ("peak", 2)}
    assert Decimal(doc["energy"]) == 6

    # Recalculating from the stored tariff versions changes nothing.
    revised = await call(hass, "recalculate_bill", bill=str(bill["bill_id"]))
    assert revised["correction"] == "0.00"


@pytest.mark.freeze_time("2026-03-10T10:00:00+00:00", tick=True)
async def test_each_tenant_is_charged_by_its_own_tariff(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = site_entry(simulator, db_url, cut_off=False)
    tenants = [dict(t) for t in entry.options["tenants"]]
    tenants[1]["tariff"] = "flat2"
    entry = tariff_site(simulator, db_url, tenants=tenants)
    await setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED

    await charge(entry, simulator, {1: "3", 2: "3", 3: "3"})
    # t1 on the site's default (peak, tier 1, VAT), t2 on its own flat tariff,
    # t3 too on the default.
    assert await balance(entry, "t1") == -3 * Decimal("1.20") * Decimal("1.13")
    assert await balance(entry, "t2") == -3 * Decimal("2.00")
    assert await balance(entry, "t3") == -3 * Decimal("1.20") * Decimal("1.13")

    response = await call(hass, "generate_bill", start=period_start(hass))
    for bill in response["bills"]:
        assert bill["document"]["matches_deducted"] is True, bill["tenant"]
    totals = {b["tenant"]: b["total"] for b in response["bills"]}
    assert totals == {"t1": "4.07", "t2": "6.00", "t3": "4.07"}


async def test_an_invalid_tariff_stops_the_entry_with_a_reason(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    broken = {**FLAT_TWO, "versions": [{"effective": "2026-01-01T00:00:00+00:00"}]}
    entry = site_entry(simulator, db_url, options={"tariffs": {"x": broken}, "tariff": "x"})
    await setup(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert "Tariff x is not valid" in entry.reason

    unknown = site_entry(simulator, db_url, options={"tariff": "nowhere"})
    await setup(hass, unknown)
    assert unknown.state is ConfigEntryState.SETUP_ERROR


async def test_a_stored_version_is_never_edited(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = tariff_site(simulator, db_url)
    await setup(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)

    # The same version with another price: refused, the stored one stays.
    edited = {**FLAT_TWO, "versions": [{**FLAT_TWO["versions"][0],
                                        "energy": {"kind": "flat", "price": "2.50"}}]}  # fmt: skip
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "tariffs": {"tou": TOU_TIERS, "flat2": edited}}
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR

    # A new version from a later date is appended.
    new = {"effective": "2026-06-01T00:00:00+00:00", "energy": {"kind": "flat", "price": "2.50"}}
    later = {**FLAT_TWO, "versions": [*FLAT_TWO["versions"], new]}
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, "tariffs": {"tou": TOU_TIERS, "flat2": later}}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    tariff = await entry.runtime_data.store.run(stored_tariff, entry.entry_id, "flat2")
    assert [str(v.energy.price) for v in tariff.versions] == ["2.00", "2.50"]  # type: ignore[union-attr]


TWO_PART: dict[str, Any] = {
    "name": "Two-part with standing and minimum",
    "currency": "CNY",
    "timezone": "US/Pacific",
    "versions": [
        {
            "effective": "2026-01-01T00:00:00+00:00",
            "energy": {"kind": "flat", "price": "1.00"},
            "demand": {"price": "10", "window_minutes": 15},
            "standing": [{"name": "meter service", "amount": "1.00", "per": "day"}],
            "minimum": {"amount": "5000"},
            "taxes": [{"name": "VAT", "percent": "10"}],
        }
    ],
}


@pytest.mark.freeze_time("2026-03-11T06:59:57+00:00", tick=True)  # 23:59:57 in US/Pacific
async def test_standing_demand_and_minimum_reach_the_wallet(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    assert hass.config.time_zone == "US/Pacific"
    midnight = dt_util.start_of_local_day(dt_util.as_local(dt_util.utcnow())) + timedelta(days=1)
    entry = site_entry(
        simulator,
        db_url,
        cut_off=False,
        options={"tariffs": {"2p": TWO_PART}, "tariff": "2p", "interval_minutes": 0},
    )
    await setup(hass, entry)
    # The tenant moved in on March 10 (the site was set up then): no standing
    # charges for March 1-9, and March 10's only once the day has ended.
    assert await balance(entry, "t1") == Decimal("0")

    await charge(entry, simulator, {1: "2"})
    assert await balance(entry, "t1") == Decimal("-2.20")

    # Past midnight: March 10's standing charge (1.00 + 10 % VAT), and 1 kWh more.
    await after(midnight)
    await charge(entry, simulator, {1: "1"})
    assert await balance(entry, "t1") == Decimal("-2.20") - Decimal("1.10") - Decimal("1.10")

    # A restart and a poll in the same day charge nothing again.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await entry.runtime_data.coordinator.async_refresh()
    assert await balance(entry, "t1") == Decimal("-4.40")

    # The bill for March 1 on: 3 kWh, a day and a bit of standing (from the move-in
    # day), 8 kW of demand (2 kWh in the 15 minutes to midnight): 84.00 and a
    # little, raised to the minimum (5000.00 a month, pro-rated for the days
    # occupied, 9 fewer than the days billed); VAT on all.
    response = await call(hass, "generate_bill", tenant="t1", start=period_start(hass))
    [bill] = response["bills"]
    doc = bill["document"]
    days = Decimal(doc["period"]["days"])
    assert 10 < days < Decimal("10.01")
    assert Decimal(bill["total"]) == (Decimal("5500") * (days - 9) / 31).quantize(CENT)
    assert doc["matches_deducted"] is True
    assert -Decimal(bill["total"]) == (await balance(entry, "t1")).quantize(CENT)
    sections = {ln["section"] for ln in doc["lines"]}
    assert sections >= {"energy", "standing", "demand", "minimum", "tax"}
