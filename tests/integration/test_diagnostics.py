"""Diagnostics carry the state a bug report needs, and no names, hosts or database URL."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import DOMAIN


async def test_diagnostics_redact_personal_data(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    db_url: str,
) -> None:
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": "t1", "amount": "12.50", "reference": "diag-1"},
        blocking=True,
        return_response=True,
    )
    diag = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert diag["ledger"]["balanced"] is True
    assert diag["tenants"]["t1"]["balance"] == "12.50"
    assert diag["meters"]["m1"]["online"] is True
    text = json.dumps(diag)
    assert db_url not in text
    assert "Shop 01" not in text
    assert "Test mall" not in text
    assert diag["entry"]["data"]["host"] == "**REDACTED**"
