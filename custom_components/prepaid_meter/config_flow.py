"""Set-up in the UI: a site (its Modbus bus), then its meters and tenants.

The skeleton's building step creates one tenant per meter; sub-entries for
meters, tenants, tariffs and sharing rules replace it in the full UI.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlowWithReload
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import selector

from .const import (
    CONF_CURRENCY,
    CONF_CUT_OFF_ENABLED,
    CONF_DEVICE_IDS,
    CONF_METERS,
    CONF_NAME_PREFIX,
    CONF_PRICE,
    CONF_SCAN_INTERVAL,
    CONF_TENANTS,
    DEFAULT_PORT,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from .coordinator import PrepaidConfigEntry
from .meters.modbus import MeterIOError, ModbusBus


def parse_device_ids(text: str) -> list[int]:
    """Parse '1-12, 15' into [1..12, 15]; raise ValueError on anything else."""
    ids: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, sep, last = part.partition("-")
        low, high = int(first), int(last) if sep else int(first)
        if not 1 <= low <= high <= 247:
            raise ValueError(part)
        ids.extend(range(low, high + 1))
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(text)
    return ids


def parse_price(value: Any) -> Decimal:
    """A unit price: a non-negative finite decimal."""
    try:
        price = Decimal(str(value))
    except InvalidOperation as err:
        raise ValueError(value) from err
    if not price.is_finite() or price < 0:
        raise ValueError(value)
    return price


def building(device_ids: list[int], prefix: str) -> dict[str, list[dict[str, Any]]]:
    """One meter and one tenant per device id (the skeleton's building)."""
    meters = [
        {"id": f"m{d}", "name": f"{prefix} {d:02d}", "device_id": d, "profile": DEFAULT_PROFILE}
        for d in device_ids
    ]
    tenants = [
        {"id": f"t{d}", "name": f"{prefix} {d:02d}", "meters": [f"m{d}"]} for d in device_ids
    ]
    return {CONF_METERS: meters, CONF_TENANTS: tenants}


class PrepaidMeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create a site: connection first (tested), then the building."""

    VERSION = 1

    def __init__(self) -> None:
        self._site: dict[str, Any] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the site and give its Modbus TCP bus; the connection is tested."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match(
                {CONF_HOST: user_input[CONF_HOST], CONF_PORT: user_input[CONF_PORT]}
            )
            bus = ModbusBus.tcp(user_input[CONF_HOST], int(user_input[CONF_PORT]), retries=0)
            try:
                await bus.check()
            except MeterIOError:
                errors["base"] = "cannot_connect"
            finally:
                bus.close()
            if not errors:
                self._site = user_input
                return await self.async_step_building()
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): str,
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_PORT): vol.All(
                    vol.Coerce(int), vol.Range(min=1, max=65535)
                ),
                vol.Required(CONF_CURRENCY, default=self.hass.config.currency): str,
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_building(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Give the meters' device ids, a flat price and whether cut-off is allowed."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                ids = parse_device_ids(user_input[CONF_DEVICE_IDS])
            except ValueError:
                errors[CONF_DEVICE_IDS] = "invalid_device_ids"
            try:
                price = parse_price(user_input[CONF_PRICE])
            except ValueError:
                errors[CONF_PRICE] = "invalid_price"
            if not errors:
                options = {
                    CONF_PRICE: str(price),
                    CONF_CUT_OFF_ENABLED: user_input[CONF_CUT_OFF_ENABLED],
                    CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
                    **building(ids, user_input[CONF_NAME_PREFIX]),
                }
                return self.async_create_entry(
                    title=self._site[CONF_NAME], data=self._site, options=options
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE_IDS, default="1-12"): str,
                vol.Required(CONF_NAME_PREFIX, default="Shop"): str,
                vol.Required(CONF_PRICE, default="1.00"): str,
                vol.Required(CONF_CUT_OFF_ENABLED, default=False): bool,
            }
        )
        return self.async_show_form(
            step_id="building",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PrepaidConfigEntry) -> PrepaidOptionsFlow:
        """Options: price, cut-off and poll interval."""
        return PrepaidOptionsFlow()


class PrepaidOptionsFlow(OptionsFlowWithReload):
    """Change the price, the cut-off setting and the poll interval."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The one options step."""
        errors: dict[str, str] = {}
        options = dict(self.config_entry.options)
        if user_input is not None:
            try:
                price = parse_price(user_input[CONF_PRICE])
            except ValueError:
                errors[CONF_PRICE] = "invalid_price"
            if not errors:
                options.update(
                    {
                        CONF_PRICE: str(price),
                        CONF_CUT_OFF_ENABLED: user_input[CONF_CUT_OFF_ENABLED],
                        CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL]),
                    }
                )
                return self.async_create_entry(data=options)
        schema = vol.Schema(
            {
                vol.Required(CONF_PRICE): str,
                vol.Required(CONF_CUT_OFF_ENABLED): bool,
                vol.Required(CONF_SCAN_INTERVAL): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=1,
                        max=3600,
                        step=1,
                        unit_of_measurement="s",
                        mode=selector.NumberSelectorMode.BOX,
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or options),
            errors=errors,
        )
