"""Demo helper: set a Prepaid Meter site's options in one call (demo only, never shipped).

The demo mall has 29 meters, 24 tenants, three tariffs and four sharing rules.
A landlord enters them as config sub-entries (Add meter, Add tenant, Add
tariff, Add sharing rule), and Home Assistant's REST API can drive those
flows (``/api/config/config_entries/subentries/flow``). The demo does not,
for three reasons:

- the tariff form has one all-year season, so the mall's time-of-use tariff
  (a summer season with a sharp peak from 12:00 to 14:00) cannot be entered
  through it; the engine and the options hold it, the form does not;
- every sub-entry added reloads the whole site (all meters reconnected and
  read again): some 60 reloads on the first start, where the demo promises
  a login within minutes;
- the demo's ids (``t12``, ``m12``, used by its check, its automations and
  the README's examples) come from the quick-start step; sub-entry ids are
  made from names (``shop_12``).

So the site is created with the integration's real config flow (site and
quick start, as a landlord does), and this admin action
``prepaid_meter_demo.set_site_options`` gives it the mall's options: the same
shapes sub-entries are stored in (``subentries.site_options`` merges both),
and the site reloads once with them.
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
