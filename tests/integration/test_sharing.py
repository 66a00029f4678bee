"""Common-area cost and line loss shared in a real Home Assistant, on real SQLite and simulator.

The building: meters m1..m3 are the shops of tenants t1..t3, m4 lights the
lobby (no tenant) and m5 is the utility's master meter. Over one local day
the shops use 10, 20 and 40 kWh, the lobby 5 kWh, and the master shows
78 kWh: 3 kWh (3.85 %) were lost on the way. At 1.50 CNY/kWh the lobby
costs 7.50 and the loss 4.50, both shared by consumption (10:20:40).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.prepaid_meter.config_flow import building
from custom_components.prepaid_meter.const import CONF_METERS, CONF_TENANTS, DOMAIN, EVENT_ALARM
from custom_components.prepaid_meter.engine.money import round_money
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.sharing import share_entries
from devtools.simulator import MeterSimulator
from tests.conftest import move_to, site_entry

#: The clock jumps with ``freezer`` and ticks on from there (Modbus timeouts need it).
pytestmark = pytest.mark.freeze_time(tick=True)


@pytest.fixture
def meter_count() -> int:
    """Three shops, a lobby and the master."""
    return 5


RULES = [
    {
        "name": "lobby",
        "kind": "common",
        "method": "consumption",
        "meters": ["m4"],
        "cadence": "daily",
        "participants": [{"tenant": "t1"}, {"tenant": "t2"}, {"tenant": "t3"}],
    },
    {
        "name": "loss",
        "kind": "loss",
        "method": "consumption",
        "cadence": "daily",
        "evasion_percent": "5",
        "participants": [{"tenant": "t1"}, {"tenant": "t2"}, {"tenant": "t3"}],
    },
]


def day_start(days: int = 0) -> datetime:
    """Local midnight of 2025-06-10 plus ``days`` (no DST change near it)."""
    zone = dt_util.get_default_time_zone()
    return datetime(2025, 6, 10, tzinfo=zone) + timedelta(days=days)


def sharing_site(
    simulator: MeterSimulator, db_url: str, *, hand_read_master: bool = False, **extra: Any
) -> MockConfigEntry:
    site = building(sorted(simulator.meters), "Shop")
    site[CONF_METERS][3]["name"] = "Lobby"
    site[CONF_METERS][4]["name"] = "Master"
    if hand_read_master:  # read off the utility's meter by hand: never polled
        site[CONF_METERS][4] |= {"source": "entity", "energy_entity": "sensor.not_connected"}
    return site_entry(
        simulator,
        db_url,
        cut_off=False,
        **{
            CONF_METERS: site[CONF_METERS],
            CONF_TENANTS: site[CONF_TENANTS][:3],
            "master_meter": "m5",
            "sharing_rules": RULES,
            **extra,
        },
    )


async def start_day(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    simulator: MeterSimulator,
    db_url: str,
    **options: Any,
) -> MockConfigEntry:
    """Set the site up at the start of the day: the first poll reads every counter."""
    freezer.move_to(day_start())
    entry = sharing_site(simulator, db_url, **options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def use(simulator: MeterSimulator, kwh: dict[int, int]) -> None:
    for device, amount in kwh.items():
        simulator.meters[device].energy_centi_kwh += amount * 100


async def end_day(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry, day: int = 1
) -> None:
    """The day's last poll, half a minute before midnight (the clock ticks on from there)."""
    freezer.move_to(day_start(day) - timedelta(seconds=30))
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def midnight(hass: HomeAssistant, freezer: FrozenDateTimeFactory, day: int = 1) -> None:
    """Midnight, and the daily sharing job that runs there, waited for (see ``move_to``)."""
    await move_to(hass, freezer, day_start(day))


async def shares(entry: MockConfigEntry) -> list[tuple[str, str, Decimal, str]]:
    return await entry.runtime_data.store.run(share_entries, entry.entry_id)


async def share_costs(hass: HomeAssistant, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, "share_costs", data, blocking=True, return_response=True
    )


def by_tenant(rows: list[tuple[str, str, Decimal, str]], kind: str) -> dict[str, Decimal]:
    return {tenant: amount for _, tenant, amount, k in rows if k == kind}


async def test_a_day_of_common_cost_and_loss_is_shared_once_to_the_cent(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await start_day(hass, freezer, simulator, db_url)
    use(simulator, {1: 10, 2: 20, 3: 40, 4: 5, 5: 78})
    await end_day(hass, freezer, entry)
    alarms = async_capture_events(hass, EVENT_ALARM)
    balances_before = await entry.runtime_data.store.run(ledger.wallet_balances, entry.entry_id)

    # The daily job at local midnight shares the day that ended.
    await midnight(hass, freezer)

    rows = await shares(entry)
    common, loss = by_tenant(rows, "shared"), by_tenant(rows, "loss")
    # Lobby 5 kWh x 1.50 = 7.50 by 10:20:40 -> 1.0714, 2.1429, 4.2857: the largest
    # remainder gets the last cent.
    assert common == {"t1": Decimal("1.07"), "t2": Decimal("2.14"), "t3": Decimal("4.29")}
    # Loss 78 - 75 = 3 kWh at the master's average 1.50 = 4.50 -> 0.6429, 1.2857, 2.5714.
    assert loss == {"t1": Decimal("0.64"), "t2": Decimal("1.29"), "t3": Decimal("2.57")}
    assert sum(common.values()) == Decimal("7.50")
    assert sum(loss.values()) == Decimal("4.50")
    assert sum(common.values()) + sum(loss.values()) == Decimal("7.50") + Decimal("4.50")
    assert [r[0] for r in rows][:1] == [
        f"share:lobby:{day_start().astimezone(dt_util.UTC).isoformat()}:t1"
    ]
    balances = await entry.runtime_data.store.run(ledger.wallet_balances, entry.entry_id)
    for tenant in ("t1", "t2", "t3"):
        assert balances[tenant] == balances_before[tenant] - common[tenant] - loss[tenant]
    # The sensor shows the exact balance to the fen.
    assert hass.states.get("sensor.shop_03_balance").state == str(
        round_money(balances["t3"], "CNY")
    )
    assert await entry.runtime_data.store.run(ledger.journal_sum, entry.entry_id) == 0
    assert not [e for e in alarms if e.data["kind"] == "evasion"]

    # The same window again, on demand: the answer explains every share, nothing is posted.
    again = await share_costs(hass, start=day_start().isoformat(), end=day_start(1).isoformat())
    assert again["posted"] == 0
    assert again["duplicates"] == 6
    lobby = next(w for w in again["windows"] if w["rule"] == "lobby")
    assert lobby["total"] == "7.50"
    assert [s["amount"] for s in lobby["shares"]] == ["1.07", "2.14", "4.29"]
    assert lobby["shares"][0]["explain"] == (
        "Common area 'lobby' (5 kWh, 7.50 CNY) shared by consumption: "
        "your 10 kWh of 70 kWh → 14.29% = 1.07 CNY"
    )
    lost = next(w for w in again["windows"] if w["rule"] == "loss")
    assert lost["loss"] == {
        "master_energy": "78.00",
        "sub_energy": "75.00",
        "energy": "3.00",
        "percent": "3.85",
    }, lost["loss"]
    assert await shares(entry) == rows
    assert await entry.runtime_data.store.run(ledger.wallet_balances, entry.entry_id) == balances


async def test_loss_above_the_threshold_raises_the_evasion_alarm(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await start_day(hass, freezer, simulator, db_url)
    use(simulator, {1: 10, 2: 20, 3: 40, 4: 5, 5: 90})  # 15 of 90 kWh lost: 16.67 %
    await end_day(hass, freezer, entry)
    alarms = async_capture_events(hass, EVENT_ALARM)
    await midnight(hass, freezer)  # the daily job shares the day and raises the alarm

    # Shared again on demand: the same anomaly is explained, the alarm is not raised again.
    result = await share_costs(hass, start=day_start().isoformat(), end=day_start(1).isoformat())

    evasion = [e.data for e in alarms if e.data["kind"] == "evasion"]
    assert evasion == [
        {
            "entry_id": entry.entry_id,
            "kind": "evasion",
            "active": True,
            "rule": "loss",
            "loss_percent": "16.67",
            "threshold": "5",
            "start": day_start().astimezone(dt_util.UTC).isoformat(),
            "end": day_start(1).astimezone(dt_util.UTC).isoformat(),
        }
    ]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"evasion_{entry.entry_id}_loss")
    assert issue is not None
    assert issue.translation_key == "evasion_suspected"
    lost = next(w for w in result["windows"] if w["rule"] == "loss")
    assert [a["key"] for a in lost["anomalies"]] == ["evasion_suspected"]
    # The loss is still shared: 15 kWh x 1.50 = 22.50.
    assert sum(by_tenant(await shares(entry), "loss").values()) == Decimal("22.50")
    # The master meter's evasion sensor is on until a window with a normal loss.
    evasion_sensor = "binary_sensor.master_meter_energy_evasion_suspected"
    assert hass.states.get(evasion_sensor).state == "on"
    # A reload takes the alarm back from the repair issue.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(evasion_sensor).state == "on"
    use(simulator, {1: 10, 2: 20, 3: 40, 4: 5, 5: 76})  # 1 of 76 kWh lost: 1.3 %
    await end_day(hass, freezer, entry, 2)
    await midnight(hass, freezer, 2)
    await share_costs(hass, start=day_start(1).isoformat(), end=day_start(2).isoformat())
    await hass.async_block_till_done()
    # Once when it starts (not again when the daily run re-shares a window), once when it clears.
    flips = [(e.data["active"], e.data["start"]) for e in alarms if e.data["kind"] == "evasion"]
    assert flips == [
        (True, day_start().astimezone(dt_util.UTC).isoformat()),
        (False, day_start(1).astimezone(dt_util.UTC).isoformat()),
    ]
    assert hass.states.get(evasion_sensor).state == "off"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"evasion_{entry.entry_id}_loss") is None


async def record_master(hass: HomeAssistant, at: datetime, value: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "record_reading",
        {"meter": "m5", "time": at.isoformat(), "value": value},
        blocking=True,
        return_response=True,
    )


async def test_master_readings_entered_by_hand_are_used(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await start_day(hass, freezer, simulator, db_url, hand_read_master=True)
    # The landlord reads the utility meter at midnight and the next midnight... but
    # the second reading comes in late, so the loss waits for it.
    await record_master(hass, day_start(), "1000")
    use(simulator, {1: 10, 2: 20, 3: 40, 4: 5})
    await end_day(hass, freezer, entry)
    await midnight(hass, freezer)  # the daily job shares the lobby; the loss waits
    window = {"start": day_start().isoformat(), "end": day_start(1).isoformat()}

    waiting = await share_costs(hass, **window)
    assert waiting["posted"] == 0
    assert waiting["duplicates"] == 3  # the lobby, shared at midnight
    loss_window = next(w for w in waiting["windows"] if w["rule"] == "loss")
    assert loss_window["skipped"] == "master_not_covered"
    assert by_tenant(await shares(entry), "loss") == {}

    await record_master(hass, day_start(1), "1078")
    done = await share_costs(hass, **window)
    assert done["posted"] == 3  # the loss only: the lobby was shared already
    assert by_tenant(await shares(entry), "loss") == {
        "t1": Decimal("0.64"),
        "t2": Decimal("1.29"),
        "t3": Decimal("2.57"),
    }


async def test_bad_sharing_options_refuse_setup_with_a_translated_error(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = sharing_site(simulator, db_url, master_meter="m1")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == "invalid_sharing_config"
    placeholders = entry.error_reason_translation_placeholders or {}
    assert placeholders["error"] == "master_meter: 'm1' is charged to a tenant"
