"""What a poll costs beyond the reads: entities are written only when what they show
changed (money to the cent shown), and the days-left forecast does not query the
store on every poll."""

from __future__ import annotations

from decimal import Decimal

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.coordinator import FORECAST_REFRESH
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


async def test_unchanged_entities_are_not_rewritten(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    # A write with the same state and attributes fires state_reported, a
    # different one state_changed: both count as writes here.
    writes: list[str] = []

    @callback
    def count(event: Event) -> None:
        writes.append(event.data["entity_id"])

    hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    hass.bus.async_listen(EVENT_STATE_REPORTED, count, event_filter=callback(lambda _data: True))
    # Nothing moved on the simulator: the poll reads the same values.
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert writes == []

    # One meter consumes: its energy and its tenant's balance are written, the
    # other meters' entities and the relays, online and supply sensors are not.
    changed: list[Event] = []

    @callback
    def record(event: Event) -> None:  # on the loop, in order with ``count``
        changed.append(event)

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    assert hass.states.get("sensor.shop_02_balance") is not None
    for meter in simulator.meters.values():
        meter.base_power_w = 0.0
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": "t1", "amount": "50", "method": "cash", "reference": "r1"},
        blocking=True,
    )
    await coordinator.async_refresh()
    simulator.meters[1].base_power_w = 2000.0
    simulator.advance(600)
    await hass.async_block_till_done()  # the top-up's reconnection written before counting
    writes.clear()
    changed.clear()
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert "sensor.shop_01_meter_energy" in writes
    assert "sensor.shop_01_balance" in writes
    assert not [w for w in writes if w.startswith("sensor.shop_02")]
    assert not [w for w in writes if w.startswith(("switch.", "binary_sensor."))]
    assert {e.data["entity_id"] for e in changed} <= set(writes)


async def test_forecast_reads_costs_at_most_every_refresh_period(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    store = init_integration.runtime_data.store
    calls: list[str] = []
    run = store.run

    async def counting(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await run(fn, *args, **kwargs)

    store.run = counting  # type: ignore[method-assign]
    for _ in range(3):
        simulator.advance(30)
        await coordinator.async_refresh()
    assert calls.count("recent_costs") == 0
    # Once the cached costs are older than the refresh period they are read again.
    assert coordinator._costs_read is not None
    coordinator._costs_read -= FORECAST_REFRESH
    await coordinator.async_refresh()
    assert calls.count("recent_costs") == 1
    assert all(isinstance(s.balance, Decimal) for s in coordinator.data.tenants.values())


async def test_money_is_written_when_the_cent_shown_changes(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    # At 0.30 per kWh a counter step of 0.01 kWh costs 0.003: the balance and
    # the costs move in the third decimal, which their sensors do not show.
    entry = site_entry(simulator, db_url, price="0.30")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": "t1", "amount": "50", "method": "cash", "reference": "m1"},
        blocking=True,
    )
    for meter in simulator.meters.values():
        meter.base_power_w = 0.0
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    money = [f"sensor.shop_01_{key}" for key in ("balance", "cost_today", "total_cost")]
    # Remaining energy, 166.66 kWh at 0.30, is shown to the tenth.
    before = {e: hass.states.get(e) for e in [*money, "sensor.shop_01_remaining_energy"]}
    assert [s.state for s in before.values()] == ["50.00", "0.00", "0.00", "166.6"]

    async def step() -> None:
        """One counter step on meter 1, polled."""
        simulator.meters[1].energy_centi_kwh += 1
        await coordinator.async_refresh()
        await hass.async_block_till_done()

    await step()
    # Charged exactly 0.003: the ledger has it, the sensors show the same cent
    # (and tenth of a kWh) as before and were not written (not even reported).
    assert coordinator.data.tenants["t1"].balance == Decimal("49.997")
    for entity_id, state in before.items():
        assert hass.states.get(entity_id).last_reported == state.last_reported, entity_id
    await step()
    # 49.994 and 0.006: the cent shown changed, the states are written.
    assert coordinator.data.tenants["t1"].balance == Decimal("49.994")
    assert [hass.states.get(e).state for e in money] == ["49.99", "0.01", "0.01"]
