"""The whole prepaid loop in a real Home Assistant against the real simulator.

consume -> balance falls -> cut-off (relay open on the simulator) -> top-up ->
reconnect (relay closed on the simulator); the ledger sums to zero, the
balance equals top-ups minus charges exactly, and its sensor shows it to the fen.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from homeassistant.core import Event, HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN, EVENT_CUT_OFF, EVENT_RECONNECTED
from custom_components.prepaid_meter.engine.money import round_money
from custom_components.prepaid_meter.store import ledger
from devtools.simulator import MeterSimulator

PRICE = Decimal("1.50")


async def top_up(hass: HomeAssistant, tenant: str, amount: str, reference: str) -> dict:
    return await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": tenant, "amount": amount, "method": "wechat", "reference": reference},
        blocking=True,
        return_response=True,
    )


def kwh(sim: MeterSimulator, device_id: int) -> Decimal:
    return Decimal(sim.meters[device_id].energy_centi_kwh) / 100


async def test_consume_cut_off_top_up_reconnect(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    store = init_integration.runtime_data.store
    events: list[Event] = []
    hass.bus.async_listen(EVENT_CUT_OFF, events.append)
    hass.bus.async_listen(EVENT_RECONNECTED, events.append)
    meter = simulator.meters[1]

    # With no credit and cut-off enabled, the first poll opened every relay.
    assert not meter.relay_closed
    assert hass.states.get("switch.shop_01_meter_relay").state == "off"
    assert hass.states.get("sensor.shop_01_supply").state == "cut_off"

    response = await top_up(hass, "t1", "10.00", "pay-1")
    assert response["balance"] == "10.00"
    assert response["duplicate"] is False
    assert meter.relay_closed, "a top-up reconnects at once, without waiting for a poll"
    await hass.async_block_till_done()
    assert [e.event_type for e in events] == [EVENT_RECONNECTED]
    assert events[0].data["tenant"] == "t1"

    # Consume: each poll charges the counter delta at the flat price.
    start = kwh(simulator, 1)
    simulator.advance(3600)  # one hour at about 1 kW
    await coordinator.async_refresh()
    used = kwh(simulator, 1) - start
    assert used > Decimal("0.5")
    # The sensor shows the ledger's exact balance rounded to the fen.
    balance = Decimal(hass.states.get("sensor.shop_01_balance").state)
    assert balance == round_money(Decimal("10.00") - used * PRICE, "CNY")
    assert Decimal(hass.states.get("sensor.shop_01_meter_energy").state) == kwh(simulator, 1)

    # Run the credit down: the poll that takes the balance to zero cuts off.
    polls = 0
    while meter.relay_closed:
        simulator.advance(3600)
        await coordinator.async_refresh()
        polls += 1
        assert polls < 20
    await hass.async_block_till_done()
    assert events[-1].event_type == EVENT_CUT_OFF
    assert Decimal(events[-1].data["balance"]) <= 0
    assert hass.states.get("sensor.shop_01_supply").state == "cut_off"
    assert hass.states.get("switch.shop_01_meter_relay").state == "off"

    # An open relay stops consumption: nothing more is charged.
    stopped_at = kwh(simulator, 1)
    simulator.advance(3600)
    await coordinator.async_refresh()
    assert kwh(simulator, 1) == stopped_at

    # Top up: reconnected within the action call; the same reference twice credits once.
    debt = await store.run(ledger.balance, init_integration.entry_id, "t1")
    response = await top_up(hass, "t1", "20.00", "pay-2")
    assert meter.relay_closed
    await hass.async_block_till_done()
    assert events[-1].event_type == EVENT_RECONNECTED
    repeat = await top_up(hass, "t1", "20.00", "pay-2")
    assert repeat["duplicate"] is True
    assert Decimal(repeat["balance"]) == Decimal(response["balance"]) == debt + 20
    await hass.async_block_till_done()
    assert hass.states.get("sensor.shop_01_supply").state == "on"

    # The ledger: every entry balances, and the wallet is top-ups minus charges.
    charged = (kwh(simulator, 1) - start) * PRICE
    site = init_integration.entry_id
    assert await store.run(ledger.journal_sum, site) == 0
    assert await store.run(ledger.balance, site, "t1") == Decimal("30.00") - charged
    shown = Decimal(hass.states.get("sensor.shop_01_balance").state)
    assert shown == round_money(Decimal("30.00") - charged, "CNY")


async def test_cut_off_stays_off_until_enabled(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    from tests.conftest import site_entry

    entry = site_entry(simulator, db_url, cut_off=False)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    simulator.advance(3600)
    await entry.runtime_data.coordinator.async_refresh()
    assert all(m.relay_closed for m in simulator.meters.values())
    assert Decimal(hass.states.get("sensor.shop_02_balance").state) < 0
    assert hass.states.get("sensor.shop_02_supply").state == "on"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"tenant": "t1", "amount": "-5"}, "invalid_amount"),
        ({"tenant": "t1", "amount": "0"}, "invalid_amount"),
        ({"tenant": "t1", "amount": "1.001"}, "invalid_amount"),
        ({"tenant": "t1", "amount": "NaN"}, "invalid_amount"),
        ({"tenant": "t1", "amount": "ten"}, "invalid_amount"),
        ({"tenant": "t1", "amount": "5", "method": "barter"}, "invalid_method"),
        ({"tenant": "nobody", "amount": "5"}, "unknown_tenant"),
        ({"tenant": "t1", "amount": "5", "reference": "x" * 200}, "invalid_reference"),
    ],
)
async def test_bad_top_up_is_refused_and_changes_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry, data: dict, key: str
) -> None:
    from homeassistant.exceptions import ServiceValidationError

    store = init_integration.runtime_data.store
    site = init_integration.entry_id
    before = await store.run(ledger.balance, site, "t1")
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "top_up", data, blocking=True, return_response=True)
    assert err.value.translation_key == key
    assert await store.run(ledger.balance, site, "t1") == before
    assert await store.run(ledger.journal_sum, site) == 0


async def test_reused_reference_with_other_amount_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    from homeassistant.exceptions import ServiceValidationError

    await top_up(hass, "t2", "5.00", "dup")
    with pytest.raises(ServiceValidationError) as err:
        await top_up(hass, "t2", "6.00", "dup")
    assert err.value.translation_key == "reference_conflict"
    store = init_integration.runtime_data.store
    assert await store.run(ledger.balance, init_integration.entry_id, "t2") == Decimal("5.00")
