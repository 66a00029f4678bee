"""Set-up in the UI: a site (its Modbus bus and database), then its meters and tenants.

The building step creates one meter and one tenant per device id in the
options, for a quick start; meters, tenants, tariffs and sharing rules are
then added and edited as sub-entries (``subentry_flows.py``). The site's
connection is changed by the reconfigure flow, its billing defaults by the
options flow.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal, InvalidOperation
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import selector
from sqlalchemy import select
from sqlalchemy.orm import Session

from .const import (
    CONF_BILLING_DAY,
    CONF_CREDIT_LIMIT,
    CONF_CURRENCY,
    CONF_CUT_OFF_ENABLED,
    CONF_DATABASE_URL,
    CONF_DAYS_LEFT_LEVEL,
    CONF_DEVICE_IDS,
    CONF_DUE_DAYS,
    CONF_EMERGENCY_CREDIT,
    CONF_FRIENDLY_HOURS,
    CONF_GRACE_MINUTES,
    CONF_HOLIDAYS,
    CONF_INTERVAL,
    CONF_METERS,
    CONF_NAME_PREFIX,
    CONF_OVERDUE_GRACE_DAYS,
    CONF_PRICE,
    CONF_SCAN_INTERVAL,
    CONF_TENANTS,
    CONF_WARNING_LEVELS,
    DEFAULT_BILLING_DAY,
    DEFAULT_DUE_DAYS,
    DEFAULT_INTERVAL,
    DEFAULT_PORT,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    INTERVALS,
)
from .coordinator import PrepaidConfigEntry, policy_from_options
from .engine.policy import PolicyError
from .engine.warnings import parse_levels
from .meters.modbus import MeterIOError, ModbusBus
from .store import Store, StoreError
from .store.models import JournalEntry

_LOGGER = logging.getLogger(__name__)


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


#: The supply-policy fields of the options step and their defaults.
POLICY_DEFAULTS: dict[str, Any] = {
    CONF_WARNING_LEVELS: "",
    CONF_DAYS_LEFT_LEVEL: 0,
    CONF_CREDIT_LIMIT: "0",
    CONF_GRACE_MINUTES: 0,
    CONF_FRIENDLY_HOURS: "",
    CONF_HOLIDAYS: "",
    CONF_EMERGENCY_CREDIT: "0",
}


def policy_errors(values: dict[str, Any], tz: str) -> dict[str, str]:
    """Field errors of the supply-policy options (translation keys), empty if valid."""
    errors: dict[str, str] = {}
    try:
        parse_levels(str(values.get(CONF_WARNING_LEVELS) or ""))
    except ValueError:
        errors[CONF_WARNING_LEVELS] = "invalid_warning_levels"
    for key in (CONF_CREDIT_LIMIT, CONF_EMERGENCY_CREDIT):
        try:
            parse_price(values.get(key) or "0")
        except ValueError:
            errors[key] = "invalid_amount"
    if errors:
        return errors
    try:
        policy_from_options(values, tz)
    except PolicyError as err:
        field = CONF_HOLIDAYS if err.key == "invalid_holidays" else CONF_FRIENDLY_HOURS
        errors[field] = err.key
    except ValueError:
        errors["base"] = "invalid_policy"
    return errors


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


def _site_data(user_input: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in user_input.items() if v not in (None, "")}
    data[CONF_PORT] = int(data[CONF_PORT])
    data[CONF_CURRENCY] = str(data[CONF_CURRENCY]).upper()
    return data


def _currency_errors(user_input: dict[str, Any]) -> dict[str, str]:
    currency = str(user_input.get(CONF_CURRENCY, ""))
    if len(currency) != 3 or not currency.isalpha():
        return {CONF_CURRENCY: "invalid_currency"}
    return {}


def _first_entry(session: Session, site: str) -> int | None:
    return session.scalars(
        select(JournalEntry.id).where(JournalEntry.site == site).limit(1)
    ).first()


async def _has_money(entry: ConfigEntry) -> bool:
    """Whether the site's ledger has an entry (unknown, so True, when the site is not loaded).

    A ledger's amounts are in the site's currency: it changes only before any money moved.
    """
    if entry.state is not ConfigEntryState.LOADED:
        return True
    store: Store = entry.runtime_data.store
    return await store.run(_first_entry, entry.entry_id) is not None


class PrepaidMeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create a site: connection first (tested), then the building."""

    VERSION = 1

    def __init__(self) -> None:
        self._site: dict[str, Any] = {}

    async def _connection_errors(self, user_input: dict[str, Any]) -> dict[str, str]:
        """Test the Modbus connection and the database (if a URL is given)."""
        errors: dict[str, str] = {}
        bus = ModbusBus.tcp(user_input[CONF_HOST], int(user_input[CONF_PORT]), retries=0)
        try:
            await bus.check()
        except MeterIOError:
            errors["base"] = "cannot_connect"
        finally:
            bus.close()
        if url := user_input.get(CONF_DATABASE_URL):
            store = Store(str(url))
            try:
                await store.async_open()
            except (StoreError, ValueError) as err:
                _LOGGER.debug("database check failed: %s", err)
                errors[CONF_DATABASE_URL] = "cannot_connect_database"
            finally:
                await store.async_close()
        return errors

    def _site_schema(self, currency: str) -> vol.Schema:
        return vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_PORT): vol.All(
                    vol.Coerce(int), vol.Range(min=1, max=65535)
                ),
                vol.Required(CONF_CURRENCY, default=currency): str,
                vol.Optional(CONF_DATABASE_URL): str,
            }
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name the site and give its Modbus TCP bus; the connection is tested."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._async_abort_entries_match(
                {CONF_HOST: user_input[CONF_HOST], CONF_PORT: user_input[CONF_PORT]}
            )
            errors = _currency_errors(user_input) or await self._connection_errors(user_input)
            if not errors:
                self._site = _site_data(user_input)
                return await self.async_step_building()
        schema = vol.Schema({vol.Required(CONF_NAME): str}).extend(
            self._site_schema(self.hass.config.currency).schema
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the site to another host, port, currency or database; tested like a new one."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            for other in self._async_current_entries(include_ignore=False):
                if other.entry_id != entry.entry_id and (
                    other.data.get(CONF_HOST) == user_input[CONF_HOST]
                    and int(other.data.get(CONF_PORT, 0)) == int(user_input[CONF_PORT])
                ):
                    return self.async_abort(reason="already_configured")
            errors = _currency_errors(user_input) or await self._connection_errors(user_input)
            if (
                not errors
                and str(user_input[CONF_CURRENCY]).upper() != entry.data[CONF_CURRENCY]
                and await _has_money(entry)
            ):
                errors[CONF_CURRENCY] = "currency_in_use"
            if not errors:
                data = {**entry.data, **_site_data(user_input)}
                if not user_input.get(CONF_DATABASE_URL):
                    data.pop(CONF_DATABASE_URL, None)
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                self._site_schema(entry.data[CONF_CURRENCY]), user_input or dict(entry.data)
            ),
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

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Meters, tenants, tariffs and sharing rules are sub-entries of a site."""
        from .subentry_flows import SUBENTRY_FLOWS  # imports this module

        return SUBENTRY_FLOWS

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
            policy = {k: user_input.get(k, v) for k, v in POLICY_DEFAULTS.items()}
            boxes: dict[str, int] = {}
            for key, default in (
                (CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL),
                (CONF_BILLING_DAY, DEFAULT_BILLING_DAY),
                (CONF_DUE_DAYS, DEFAULT_DUE_DAYS),
                (CONF_OVERDUE_GRACE_DAYS, 0),
                (CONF_DAYS_LEFT_LEVEL, 0),
                (CONF_GRACE_MINUTES, 0),
            ):
                try:
                    boxes[key] = _whole(user_input.get(key), default)
                except ValueError:
                    errors[key] = "invalid_number"
            policy[CONF_DAYS_LEFT_LEVEL] = boxes.get(CONF_DAYS_LEFT_LEVEL, 0)
            policy[CONF_GRACE_MINUTES] = boxes.get(CONF_GRACE_MINUTES, 0)
            errors.update(policy_errors(policy, self.hass.config.time_zone))
            if not errors:
                options.update(
                    {
                        CONF_PRICE: str(price),
                        CONF_CUT_OFF_ENABLED: user_input[CONF_CUT_OFF_ENABLED],
                        CONF_SCAN_INTERVAL: boxes[CONF_SCAN_INTERVAL],
                        # The selector has let through only the listed intervals.
                        CONF_INTERVAL: int(user_input.get(CONF_INTERVAL, DEFAULT_INTERVAL)),
                        CONF_BILLING_DAY: boxes[CONF_BILLING_DAY],
                        CONF_DUE_DAYS: boxes[CONF_DUE_DAYS],
                        CONF_OVERDUE_GRACE_DAYS: boxes[CONF_OVERDUE_GRACE_DAYS],
                        **policy,
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
                vol.Optional(CONF_INTERVAL, default=str(DEFAULT_INTERVAL)): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[str(m) for m in INTERVALS],
                        translation_key="interval",
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Optional(CONF_BILLING_DAY, default=DEFAULT_BILLING_DAY): _box(1, 31, "d"),
                vol.Optional(CONF_DUE_DAYS, default=DEFAULT_DUE_DAYS): _box(0, 365, "d"),
                vol.Optional(CONF_OVERDUE_GRACE_DAYS, default=0): _box(0, 365, "d"),
                vol.Optional(CONF_WARNING_LEVELS): str,
                vol.Optional(CONF_DAYS_LEFT_LEVEL): _box(0, 365, "d"),
                vol.Optional(CONF_CREDIT_LIMIT): str,
                vol.Optional(CONF_GRACE_MINUTES): _box(0, 10080, "min"),
                vol.Optional(CONF_FRIENDLY_HOURS): selector.TextSelector(
                    selector.TextSelectorConfig(multiline=True)
                ),
                vol.Optional(CONF_HOLIDAYS): selector.TextSelector(
                    selector.TextSelectorConfig(multiline=True)
                ),
                vol.Optional(CONF_EMERGENCY_CREDIT): str,
            }
        )
        suggested = {**POLICY_DEFAULTS, **options, **(user_input or {})}
        suggested[CONF_INTERVAL] = str(suggested.get(CONF_INTERVAL, DEFAULT_INTERVAL))
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )


def _whole(value: Any, default: int) -> int:
    """A number box's value as an integer (the selector lets ``nan`` through its range check)."""
    if value in (None, ""):
        return default
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return int(number)


def _box(low: int, high: int, unit: str) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=low,
            max=high,
            step=1,
            unit_of_measurement=unit,
            mode=selector.NumberSelectorMode.BOX,
        )
    )
