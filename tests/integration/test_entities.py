"""Tenant and meter entities in a real Home Assistant, on the simulator and a real SQLite ledger.

The money sensors show the ledger's exact figures rounded to the currency's
minor unit: the costs what the ledger charged (also after a correction made
through the ledger and after a restart, when they are read back from it);
remaining energy is the balance at the current price; the warning level and
the supply state follow the balance down to the cut-off; unchanged values are
not written again; names are translated.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy import select
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import CONF_WARNING_LEVELS, DOMAIN
from custom_components.prepaid_meter.engine.money import round_money
from custom_components.prepaid_meter.sensor import shown_money
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.costs import scan_costs
from custom_components.prepaid_meter.store.models import JournalEntry
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


@pytest.fixture
def meter_count() -> int:
    return 2


def value(hass: HomeAssistant, entity_id: str) -> Decimal:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return Decimal(state.state)


def costs(hass: HomeAssistant, shop: str) -> tuple[Decimal, Decimal, Decimal]:
    return (
        value(hass, f"sensor.{shop}_cost_today"),
        value(hass, f"sensor.{shop}_cost_this_period"),
        value(hass, f"sensor.{shop}_total_cost"),
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def top_up(hass: HomeAssistant, tenant: str, amount: str, reference: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": tenant, "amount": amount, "reference": reference},
        blocking=True,
    )


async def poll(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator, s: float) -> None:
    sim.advance(s)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def exact(entry: MockConfigEntry, tenant: str) -> tuple[Decimal, Decimal]:
    """The tenant's balance and everything it was charged, exact, from the ledger."""
    charged: list[Decimal] = []

    def read(session: Session) -> Decimal:
        scan_costs(
            session,
            entry.entry_id,
            0,
            lambda who, amount, _at: charged.append(amount) if who == tenant else None,
        )
        return ledger.balance(session, entry.entry_id, tenant)

    balance = await entry.runtime_data.store.run(read)
    return balance, sum(charged, Decimal(0))


def cents(amount: Decimal) -> Decimal:
    """What a money sensor shows: the exact figure rounded half-up to the fen."""
    return round_money(amount, "CNY")


async def test_costs_are_what_the_ledger_charged(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url))
    await top_up(hass, "t1", "100", "c-1")
    await top_up(hass, "t2", "30", "c-2")
    for _ in range(3):
        await poll(hass, entry, simulator, 1200)

    # Only top-ups and charges so far: what left the wallet is the cost. The
    # sensors show the ledger's exact figures rounded to the fen.
    balance, charged = await exact(entry, "t1")
    assert charged == Decimal(100) - balance > 0
    assert value(hass, "sensor.shop_01_balance") == cents(balance)
    assert costs(hass, "shop_01") == (cents(charged),) * 3
    balance_2, charged_2 = await exact(entry, "t2")
    assert charged_2 == Decimal(30) - balance_2
    assert value(hass, "sensor.shop_02_balance") == cents(balance_2)
    assert costs(hass, "shop_02") == (cents(charged_2),) * 3

    # A charge reversed through the ledger (a correction) lowers the costs;
    # the poll charges since start-up are not counted twice.
    store, site = entry.runtime_data.store, entry.entry_id

    def first_charge(session: Session) -> int | None:
        return session.scalars(
            select(JournalEntry.id)
            .where(JournalEntry.kind == "charge", JournalEntry.tenant == "t1")
            .order_by(JournalEntry.id)
        ).first()

    charge_id = await store.run(first_charge)
    assert charge_id is not None
    await entry.runtime_data.coordinator.async_ledger_write(
        ledger.reverse_entry, site, charge_id, at=dt_util.utcnow(), reason="meter test", actor=None
    )
    await hass.async_block_till_done()
    _balance, after = await exact(entry, "t1")
    assert after < charged
    assert costs(hass, "shop_01") == (cents(after),) * 3

    await poll(hass, entry, simulator, 1200)
    balance, now = await exact(entry, "t1")
    assert now > after
    assert value(hass, "sensor.shop_01_balance") == cents(balance)
    assert costs(hass, "shop_01") == (cents(now),) * 3
    assert costs(hass, "shop_02") == (cents((await exact(entry, "t2"))[1]),) * 3

    # After a restart the sums are read back from the ledger: the same figures.
    before = costs(hass, "shop_01"), costs(hass, "shop_02")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert (costs(hass, "shop_01"), costs(hass, "shop_02")) == before

    total = hass.states.get("sensor.shop_01_total_cost")
    assert total.attributes["device_class"] == "monetary"
    assert total.attributes["state_class"] == "total"
    assert total.attributes["unit_of_measurement"] == "CNY"
    assert "last_reset" not in total.attributes
    today = hass.states.get("sensor.shop_01_cost_today")
    assert today.attributes["state_class"] == "total"
    assert dt_util.parse_datetime(today.attributes["last_reset"]) == dt_util.start_of_local_day()


@pytest.mark.parametrize(
    ("exact_amount", "currency", "shown"),
    [
        (Decimal("12.345000000000000001"), "CNY", "12.35"),
        (Decimal("12.344999999999999999"), "CNY", "12.34"),
        (Decimal("0.015"), "CNY", "0.02"),  # half-up, as bills round
        (Decimal("-0.015"), "CNY", "-0.02"),
        (Decimal("-0.004"), "CNY", "0.00"),  # not "-0.00"
        (Decimal("1234.5"), "JPY", "1235"),
        (Decimal("1.2345"), "KWD", "1.235"),
    ],
)
def test_money_is_shown_to_the_minor_unit(exact_amount: Decimal, currency: str, shown: str) -> None:
    assert str(shown_money(exact_amount, currency)) == shown


async def test_remaining_energy_warning_level_and_supply_follow_the_balance(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, site_entry(simulator, db_url, **{CONF_WARNING_LEVELS: "100, 50"}))
    await top_up(hass, "t1", "101", "w-1")
    assert hass.states.get("sensor.shop_01_warning_level").state == "none"
    # 101 / 1.50 = 67.33 kWh, shown to the tenth rounded down.
    assert value(hass, "sensor.shop_01_remaining_energy") == Decimal("67.3")

    seen: list[str] = []
    for _ in range(200):
        await poll(hass, entry, simulator, 3600)
        balance, _charged = await exact(entry, "t1")
        assert value(hass, "sensor.shop_01_balance") == cents(balance)
        level = hass.states.get("sensor.shop_01_warning_level").state
        if not seen or seen[-1] != level:
            seen.append(level)
        expected = max(balance, Decimal(0)) / Decimal("1.50")
        assert value(hass, "sensor.shop_01_remaining_energy") == expected.quantize(
            Decimal("0.1"), rounding="ROUND_DOWN"
        )
        if balance <= 0:
            break
    assert seen == ["low", "very_low", "exhausted"]
    assert hass.states.get("sensor.shop_01_supply").state == "cut_off"
    assert hass.states.get("switch.shop_01_meter_relay").state == "off"

    await top_up(hass, "t1", "60", "w-2")
    assert hass.states.get("sensor.shop_01_supply").state == "on"
    assert hass.states.get("sensor.shop_01_warning_level").state == "low"


async def test_unchanged_values_are_not_written_again(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    await top_up(hass, "t1", "50", "u-1")
    voltage = hass.states.get("sensor.shop_01_meter_voltage")
    balance = hass.states.get("sensor.shop_01_balance")
    await poll(hass, init_integration, simulator, 600)
    # The voltage did not move: its state was not written (not even reported).
    assert hass.states.get("sensor.shop_01_meter_voltage").last_reported == voltage.last_reported
    assert hass.states.get("sensor.shop_01_balance").last_updated > balance.last_updated


async def test_meters_are_listed_under_their_tenant(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    site = init_integration.entry_id
    for n in (1, 2):
        tenant = device_registry.async_get_device(identifiers={(DOMAIN, f"{site}_tenant_t{n}")})
        meter = device_registry.async_get_device(identifiers={(DOMAIN, f"{site}_meter_m{n}")})
        assert tenant is not None
        assert meter is not None
        assert meter.via_device_id == tenant.id
        assert (tenant.name, tenant.model) == (f"Shop 0{n}", "Tenant account")


async def test_names_are_translated(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    hass.config.language = "zh-Hans"
    await setup(hass, site_entry(simulator, db_url))
    names = {s.name for s in hass.states.async_all("sensor")}
    assert {"Shop 01 余额", "Shop 01 预警级别", "Shop 01 累计费用", "Shop 01 剩余电量"} <= names
    assert "Shop 01 meter 电能" in names
