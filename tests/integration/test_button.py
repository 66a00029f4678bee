"""The emergency-credit button, pressed through Home Assistant's ``button.press``."""

from __future__ import annotations

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import EVENT_EMERGENCY_CREDIT
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


@pytest.fixture
def meter_count() -> int:
    return 2


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def press(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call("button", "press", {"entity_id": entity_id}, blocking=True)


async def test_pressing_grants_emergency_credit_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    await setup(hass, site_entry(simulator, db_url, price="1.00", emergency_credit="5"))
    events: list[Event] = []

    @callback
    def _append(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(EVENT_EMERGENCY_CREDIT, _append)
    button = "button.shop_01_emergency_credit"
    assert hass.states.get(button) is not None
    assert not simulator.meters[1].relay_closed, "no credit: cut off"

    await press(hass, button)
    await hass.async_block_till_done()
    assert simulator.meters[1].relay_closed, "reconnected by the emergency credit"
    assert hass.states.get("sensor.shop_01_supply").state == "emergency"
    assert [(e.data["tenant"], e.data["amount"]) for e in events] == [("t1", "5")]
    assert not simulator.meters[2].relay_closed, "only that tenant"

    with pytest.raises(HomeAssistantError) as err:
        await press(hass, button)
    assert err.value.translation_key == "emergency_credit_used"
    assert err.value.translation_placeholders == {"tenant": "Shop 01"}
    assert len(events) == 1


async def test_pressing_without_emergency_credit_configured_is_refused(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    await setup(hass, site_entry(simulator, db_url))
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, "button.shop_02_emergency_credit")
    assert err.value.translation_key == "emergency_credit_disabled"
    assert not simulator.meters[2].relay_closed
    assert hass.states.get("sensor.shop_02_supply").state == "cut_off"
