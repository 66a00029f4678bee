"""Demo helper: set a Prepaid Meter site's options in one call (demo only, never shipped).

The demo mall has 29 meters, tariffs, postpaid accounts and sharing rules. The
integration's UI for meters, tenants, tariffs and sharing rules is still being
built (config sub-entries), and Home Assistant's REST API has no call that sets
an entry's options outright. So the demo's provisioning creates the site with
the integration's real config flow, then calls the admin action
``prepaid_meter_demo.set_site_options`` with the mall's options (the same
shapes a site's options hold) and the site reloads with them.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.helpers.typing import ConfigType

DOMAIN = "prepaid_meter_demo"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)
SCHEMA = vol.Schema({vol.Required("entry_id"): str, vol.Required("options"): dict})


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the demo's one admin action."""

    async def set_site_options(call: ServiceCall) -> None:
        entry = hass.config_entries.async_get_entry(call.data["entry_id"])
        if entry is None or entry.domain != "prepaid_meter":
            raise HomeAssistantError(f"no Prepaid Meter site {call.data['entry_id']}")
        options: dict[str, Any] = call.data["options"]
        if dict(entry.options) == options:
            return
        hass.config_entries.async_update_entry(entry, options=options)
        if not await hass.config_entries.async_reload(entry.entry_id):
            raise HomeAssistantError("the site did not load with these options; see the log")

    async_register_admin_service(hass, DOMAIN, "set_site_options", set_site_options, SCHEMA)
    return True
