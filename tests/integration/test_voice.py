"""Voice: Home Assistant's own assistant answers "what is the balance of Shop 12".

The built-in conversation agent (hassil and the home-assistant-intents
sentences) asked in English, with the tenants' sensors exposed to it as a
landlord would expose them; the answer must carry the wallet's balance.
"""

from __future__ import annotations

import pytest
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry


@pytest.fixture
def meter_count() -> int:
    return 12


async def ask(hass: HomeAssistant, text: str) -> str:
    result = await conversation.async_converse(hass, text, None, Context(), language="en")
    speech: str = result.response.speech["plain"]["speech"]
    return speech


async def test_the_assistant_answers_the_balance_of_a_shop(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, "intent", {})
    entry = site_entry(simulator, db_url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    balances = [
        s.entity_id for s in hass.states.async_all("sensor") if s.entity_id.endswith("_balance")
    ]
    assert len(balances) == 12
    for entity_id in balances:
        async_expose_entity(hass, "conversation", entity_id, True)
    await hass.services.async_call(
        DOMAIN, "top_up", {"tenant": "t12", "amount": "42.5", "reference": "v-1"}, blocking=True
    )
    await hass.services.async_call(
        DOMAIN, "top_up", {"tenant": "t11", "amount": "7", "reference": "v-2"}, blocking=True
    )

    answer = await ask(hass, "what is the balance of Shop 12")
    assert "42.50" in answer
    assert "CNY" in answer
    # The name the entity has without the alias works too.
    assert "42.50" in await ask(hass, "what is Shop 12 balance")
    assert "7.00" in await ask(hass, "what's the balance of Shop 11")


async def test_the_voice_alias_is_offered_once(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    """A landlord who removes the alias does not get it back at the next start."""
    entry = site_entry(simulator, db_url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    balance = registry.async_get("sensor.shop_01_balance")
    assert balance is not None
    assert balance.aliases == {"Balance of Shop 01"}
    assert registry.async_get("sensor.shop_01_days_of_credit_left").aliases == set()

    registry.async_update_entity("sensor.shop_01_balance", aliases=set())
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get("sensor.shop_01_balance").aliases == set()
