"""What a poll costs beyond the reads: entities are written only when what they show
changed, and the days-left forecast does not query the store on every poll."""

from __future__ import annotations

from decimal import Decimal

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
from homeassistant.core import Event, HomeAssistant, callback
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.coordinator import FORECAST_REFRESH
from devtools.simulator import MeterSimulator


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
    hass.bus.async_listen(EVENT_STATE_CHANGED, changed.append)
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
