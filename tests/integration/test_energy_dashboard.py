"""The tenant's Total cost sensor is accepted by the Energy dashboard as the cost of its meter.

Home Assistant's own energy component validates the preferences a landlord
would save (the meter's energy as grid consumption, the tenant's Total cost as
"use an entity tracking the total costs"), with the real recorder compiling
the statistics it checks.
"""

from __future__ import annotations

import pytest
from homeassistant.components.energy import data as energy_data
from homeassistant.components.energy.validate import async_validate
from homeassistant.components.recorder import Recorder
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)

from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


@pytest.fixture
def meter_count() -> int:
    return 1


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder must start before Home Assistant (the shared fixture starts it first)."""


async def test_total_cost_is_a_valid_energy_cost(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = site_entry(simulator, db_url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN, "top_up", {"tenant": "t1", "amount": "80", "reference": "e-1"}, blocking=True
    )
    now = dt_util.utcnow()
    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    for _ in range(3):
        simulator.advance(600)
        await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert float(hass.states.get("sensor.shop_01_total_cost").state) > 0

    assert await async_setup_component(hass, "energy", {})
    manager = await energy_data.async_get_manager(hass)

    async def issues_with_cost(stat_cost: str) -> list[str]:
        await manager.async_update(
            {
                "energy_sources": [
                    {
                        "type": "grid",
                        "flow_from": [
                            {
                                "stat_energy_from": "sensor.shop_01_meter_energy",
                                "stat_cost": stat_cost,
                                "entity_energy_price": None,
                                "number_energy_price": None,
                            }
                        ],
                        "flow_to": [],
                        "cost_adjustment_day": 0,
                    }
                ]
            }
        )
        validation = (await async_validate(hass)).as_dict()
        return [issue["type"] for issue in validation["energy_sources"][0]]

    await async_wait_recording_done(hass)
    do_adhoc_statistics(hass, start=start)
    await async_wait_recording_done(hass)

    assert await issues_with_cost("sensor.shop_01_total_cost") == []
    # The check has teeth: the balance (no state class, no statistics) is refused.
    assert "entity_unexpected_state_class" in await issues_with_cost("sensor.shop_01_balance")
