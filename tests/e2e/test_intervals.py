"""The site's interval: readings and charges stored once per interval, use in between pending.

A real Home Assistant, the real simulator, a real SQLite file, a site on
15-minute intervals and a ticking clock from 10:01 local (Shanghai). Polls
inside an interval store nothing: what their use would charge is taken off
the balance shown (and the supply policy's balance) at once. The first poll
of the next interval stores the reading and posts the charge, to the cent
what the pending balance showed. A restart, a ledger write and a bill run
never lose pending use: the cursors stayed at the last stored reading.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.diagnostics import async_get_config_entry_diagnostics
from custom_components.prepaid_meter.engine.money import round_money
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import MeterReading
from devtools.simulator import MeterSimulator
from tests.conftest import ReadOnlySQLite, call, load_entry, move_to, site_entry, ticking_clock

#: Monday 2026-09-28 10:01 in Shanghai: one minute into a 15-minute interval.
NOW = datetime(2026, 9, 28, 2, 1, tzinfo=UTC)
TZ = "Asia/Shanghai"
PRICE = Decimal("1.50")


@pytest.fixture
def meter_count() -> int:
    return 1


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from NOW (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock(NOW)


async def setup(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, **options: Any
) -> MockConfigEntry:
    await hass.config.async_set_time_zone(TZ)
    return await load_entry(hass, site_entry(simulator, db_url, interval_minutes=15, **options))


async def poll(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


def kwh(sim: MeterSimulator) -> Decimal:
    return Decimal(sim.meters[1].energy_centi_kwh) / 100


def shown(hass: HomeAssistant, entity_id: str) -> Decimal:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return Decimal(state.state)


async def stored(entry: MockConfigEntry) -> tuple[list[tuple[datetime, Decimal]], Decimal]:
    """The meter's stored readings (time, value) and the wallet's ledger balance."""

    def read(session: Session) -> tuple[list[tuple[datetime, Decimal]], Decimal]:
        rows = session.execute(
            select(MeterReading.taken_at, MeterReading.value)
            .where(MeterReading.site == entry.entry_id, MeterReading.meter == "m1")
            .order_by(MeterReading.id)
        ).all()
        return [(t, v) for t, v in rows], ledger.balance(session, entry.entry_id, "t1")

    return await entry.runtime_data.store.run(read)


async def an_hour_pending(
    hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator
) -> tuple[Decimal, datetime]:
    """An hour of use read in one poll inside the interval: the counter before, and when read."""
    start = kwh(sim)
    sim.advance(3600)
    await poll(hass, entry)
    unstored = entry.runtime_data.coordinator._unstored
    assert unstored is not None, "pending, not stored"
    return start, unstored[1]


async def reading_count(entry: MockConfigEntry) -> int:
    def count(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(MeterReading)) or 0)

    return await entry.runtime_data.store.run(count)


async def test_use_is_pending_within_an_interval_and_stored_at_the_next(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    entry = await setup(hass, simulator, db_url, cut_off=False)
    await call(hass, "top_up", tenant="t1", amount="100.00", method="cash", reference="r1")
    await hass.async_block_till_done()
    start = kwh(simulator)
    readings, balance = await stored(entry)
    assert [v for _t, v in readings] == [start], "the first reading is stored at once"
    assert balance == Decimal("100.00")

    # Two polls in the 10:00-10:15 interval: nothing stored, the balance shown moves.
    for _ in range(2):
        simulator.advance(1800)
        await poll(hass, entry)
    used = kwh(simulator) - start
    assert used > 1
    pending = used * PRICE
    assert shown(hass, "sensor.shop_01_balance") == round_money(Decimal(100) - pending, "CNY")
    assert shown(hass, "sensor.shop_01_meter_energy") == kwh(simulator)
    readings, balance = await stored(entry)
    assert len(readings) == 1
    assert balance == Decimal("100.00"), "no charge posted inside the interval"
    assert shown(hass, "sensor.shop_01_total_cost") == 0, "costs follow the stored charges"
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["tenants"]["t1"]["pending_charge"] == str(pending)

    # The first poll after 10:15 stores the reading and posts the whole use, once.
    await move_to(hass, freezer, NOW + timedelta(minutes=14, seconds=5))
    simulator.advance(600)
    await poll(hass, entry)
    used = kwh(simulator) - start
    readings, balance = await stored(entry)
    assert [v for _t, v in readings] == [start, kwh(simulator)]
    assert readings[1][0] >= NOW + timedelta(minutes=14)
    assert balance == Decimal(100) - used * PRICE
    assert shown(hass, "sensor.shop_01_balance") == round_money(balance, "CNY")
    assert shown(hass, "sensor.shop_01_total_cost") == round_money(used * PRICE, "CNY")

    # The next poll in the same interval: pending again, nothing stored.
    simulator.advance(600)
    await poll(hass, entry)
    assert len((await stored(entry))[0]) == 2


async def test_pending_use_cuts_off_on_time(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, simulator, db_url)
    await call(hass, "top_up", tenant="t1", amount="2.00", method="cash", reference="r1")
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed
    simulator.advance(3 * 3600)  # about 3 kWh: 4.50 CNY of use on 2.00 of credit
    await poll(hass, entry)
    assert not simulator.meters[1].relay_closed, "cut off on the pending balance"
    assert hass.states.get("sensor.shop_01_supply").state == "cut_off"
    readings, balance = await stored(entry)
    assert (len(readings), balance) == (1, Decimal("2.00")), "the interval is still open"


async def test_pending_use_is_charged_after_a_restart(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, simulator, db_url, cut_off=False)
    start, read_at = await an_hour_pending(hass, entry, simulator)
    assert len((await stored(entry))[0]) == 1

    # Home Assistant restarts inside the interval: the use read so far is
    # stored as the entry unloads, at the time it was read.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    readings, balance = await stored(entry)
    assert readings[-1] == (read_at, kwh(simulator))
    assert balance == -(kwh(simulator) - start) * PRICE

    # Had it not been stored (the database away at the stop), the cursor is
    # where it was, and the first poll at start-up charges it all.
    simulator.advance(3600)
    await poll(hass, entry)
    coordinator = entry.runtime_data.coordinator
    coordinator._unstored = None
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    readings, balance = await stored(entry)
    assert readings[-1][1] == kwh(simulator)
    assert balance == -(kwh(simulator) - start) * PRICE, "nothing lost, nothing twice"
    assert readings[-1][1] == kwh(simulator)
    assert balance == -(kwh(simulator) - start) * PRICE
    assert shown(hass, "sensor.shop_01_balance") == round_money(balance, "CNY")


async def test_a_ledger_write_and_a_bill_store_pending_use_as_read(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    entry = await setup(hass, simulator, db_url, cut_off=False)
    start, read_at = await an_hour_pending(hass, entry, simulator)
    value = kwh(simulator)

    # Three minutes later (same interval) the landlord corrects the balance:
    # the pending reading is stored first, at the time it was read.
    await move_to(hass, freezer, NOW + timedelta(minutes=3))
    await call(hass, "adjust_balance", tenant="t1", amount="5.00", reason="Welcome credit")
    readings, balance = await stored(entry)
    assert readings[-1] == (read_at, value)
    assert balance == Decimal(5) - (value - start) * PRICE
    assert shown(hass, "sensor.shop_01_balance") == round_money(balance, "CNY")

    # A bill ending now counts the use read since, stored first.
    simulator.advance(1200)
    await poll(hass, entry)
    count = await reading_count(entry)
    [bill] = (await call(hass, "generate_bill", tenant="t1", start=NOW.isoformat()))["bills"]
    assert await reading_count(entry) == count + 1
    readings, balance = await stored(entry)
    assert readings[-1][1] == kwh(simulator)
    assert Decimal(bill["total"]) == round_money((kwh(simulator) - start) * PRICE, "CNY")


async def test_a_counter_that_fell_is_stored_at_once_and_alarmed_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await setup(hass, simulator, db_url, cut_off=False)
    kinds: list[str] = []
    hass.bus.async_listen(f"{DOMAIN}_alarm", lambda e: kinds.append(e.data["kind"]))
    simulator.reset_counter(1)
    for _ in range(3):  # three polls inside one interval
        simulator.advance(600)
        await poll(hass, entry)
    assert kinds.count("counter_reset") == 1, "the fall is stored, not seen again each poll"
    readings, balance = await stored(entry)
    assert len(readings) == 2, "the reading after the fall; the use since it is pending"
    assert balance == 0, "a counter that went back is never charged"
    assert shown(hass, "sensor.shop_01_balance") == round_money(
        -(kwh(simulator) - readings[-1][1]) * PRICE, "CNY"
    )


async def test_a_failed_interval_write_keeps_the_use_pending_until_it_is_stored(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, freezer: FrozenDateTimeFactory
) -> None:
    entry = await setup(hass, simulator, db_url, cut_off=False)
    coordinator = entry.runtime_data.coordinator
    start = kwh(simulator)
    simulator.advance(3600)
    await poll(hass, entry)
    assert coordinator.pending_charge("t1") > 0

    # The database turns read-only as the clock enters the next interval.
    fault = ReadOnlySQLite(entry.runtime_data.store)
    await fault.break_it()
    await move_to(hass, freezer, NOW + timedelta(minutes=14, seconds=5))
    simulator.advance(600)
    await poll(hass, entry)
    assert not coordinator.last_update_success
    pending = (kwh(simulator) - start) * PRICE
    assert coordinator.pending_charge("t1") > 0, "still pending, not dropped"

    # Mended: the next poll (same interval) stores it all, once.
    await fault.mend_it()
    await poll(hass, entry)
    assert coordinator.last_update_success
    readings, balance = await stored(entry)
    assert readings[-1][1] == kwh(simulator)
    assert balance == -pending
    assert coordinator.pending_charge("t1") == 0
