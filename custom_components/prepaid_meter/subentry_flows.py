"""Sub-entry flows: meters, tenants, tariffs and sharing rules of a site, added in the UI.

Every form checks its own fields, then the whole site as it would be with the
sub-entry saved (`SiteConfig.from_options` and the sharing check), so a
sub-entry that would stop the site from loading is refused with a translated
error and nothing is saved. Each sub-entry's data is its option shape (see
``subentries.py``); adding, changing or removing one reloads the site.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import voluptuous as vol
import yaml
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.helpers import selector
from homeassistant.util import dt as dt_util
from homeassistant.util import slugify
from sqlalchemy import select
from sqlalchemy.orm import Session

from .config_flow import parse_price, policy_errors
from .const import (
    CONF_BILLING_MODE,
    CONF_BUSES,
    CONF_CREDIT_LIMIT,
    CONF_CUT_OFF_WHEN_OVERDUE,
    CONF_DAYS_LEFT_LEVEL,
    CONF_EMERGENCY_CREDIT,
    CONF_FRIENDLY_HOURS,
    CONF_GRACE_MINUTES,
    CONF_HOLIDAYS,
    CONF_METERS,
    CONF_POLICY,
    CONF_TENANTS,
    CONF_WARNING_LEVELS,
    DEFAULT_BUS,
)
from .coordinator import SiteConfig
from .engine.sharing import SharingError, sharing_rule_from_dict
from .engine.tariffs import DEMAND_WINDOWS, TariffError, tariff_from_dict
from .meters.modbus import BusConfig, MeterIOError, ModbusBus
from .meters.profiles import (
    CUSTOM,
    MeterProfile,
    ProfileError,
    load_profile,
    parse_profile,
    shipped_profiles,
)
from .meters.reader import EntityMeter, MeterReader, ModbusMeter
from .sharing_runner import SharingConfigError, sharing_config
from .store import Store
from .store.models import Meter, MeterCursor, Tenant
from .subentries import (
    OPT_MASTER_METER,
    OPT_SHARING_RULES,
    OPT_TARIFFS,
    SUBENTRY_BUS,
    SUBENTRY_METER,
    SUBENTRY_SHARING,
    SUBENTRY_TARIFF,
    SUBENTRY_TENANT,
    fill_rule,
    merge_subentries,
)

UTILITIES = ("electricity", "water")
SOURCES = ("modbus", "entity")
BILLING_MODES = ("prepaid", "postpaid")
LANGUAGES = ("en", "zh-Hans")
#: Where a tariff's first version starts when none is given: before any reading.
FIRST_EFFECTIVE = "2000-01-01T00:00:00+00:00"
#: A test read must not hang the form: one short try.
TEST_READ_TIMEOUT = 2.0

#: Ids are database keys (64 characters at most).
MAX_ID = 48
#: What a meter's counter value depends on.
COUNTER_FIELDS = (
    "source", "bus", "device_id", "profile", "custom_profile",
    "ct_ratio", "pt_ratio", "multiplier", "energy_entity",
)  # fmt: skip


@dataclass(frozen=True)
class StoredIds:
    """Ids in a site's database: every meter and tenant ever set up, meters ever charged."""

    meters: set[str]
    tenants: set[str]
    charged: set[str]


def stored_ids(session: Session, site: str) -> StoredIds:
    """Read on the store's thread."""
    return StoredIds(
        meters=set(session.scalars(select(Meter.id).where(Meter.site == site))),
        tenants=set(session.scalars(select(Tenant.id).where(Tenant.site == site))),
        charged=set(session.scalars(select(MeterCursor.meter).where(MeterCursor.site == site))),
    )


#: Tenant policy overrides: empty means "the site's default".
POLICY_KEYS = (
    CONF_WARNING_LEVELS,
    CONF_DAYS_LEFT_LEVEL,
    CONF_CREDIT_LIMIT,
    CONF_GRACE_MINUTES,
    CONF_FRIENDLY_HOURS,
    CONF_HOLIDAYS,
    CONF_EMERGENCY_CREDIT,
)


# --------------------------------------------------------------------------- helpers


def _select(options: list[str], *, key: str | None = None, multiple: bool = False) -> Any:
    config = selector.SelectSelectorConfig(
        options=options, multiple=multiple, mode=selector.SelectSelectorMode.DROPDOWN
    )
    if key is not None:
        config["translation_key"] = key
    return selector.SelectSelector(config)


def _labelled(pairs: list[tuple[str, str]], *, multiple: bool = False) -> Any:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=[selector.SelectOptionDict(value=v, label=label) for v, label in pairs],
            multiple=multiple,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )


_TEXT_AREA = selector.TextSelector(selector.TextSelectorConfig(multiline=True))


def _number(text: Any, *, positive: bool = False) -> Decimal:
    """A non-negative (or positive) decimal from a form field; ValueError otherwise."""
    value = parse_price(text)
    if positive and value <= 0:
        raise ValueError(text)
    return value


def _optional_number(text: Any) -> str | None:
    if text in (None, ""):
        return None
    return str(_number(text))


def _pairs(text: str) -> list[tuple[str, str]]:
    """``name: value`` lines (or ``;``-separated) into pairs; ValueError on a bad line."""
    pairs = []
    for line in text.replace(";", "\n").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.rpartition(":")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(line)
        pairs.append((name.strip(), value.strip()))
    return pairs


class _SiteSubentryFlow(ConfigSubentryFlow):
    """What every sub-entry flow of a site shares."""

    def _options(self) -> dict[str, Any]:
        entry = self._get_entry()
        return merge_subentries(
            entry.options, entry.subentries.values(), entry.data.get("currency")
        )

    def _current(self) -> ConfigSubentry | None:
        return self._get_reconfigure_subentry() if self.source == SOURCE_RECONFIGURE else None

    def _site_problem(self, subentry_type: str, data: Mapping[str, Any]) -> str | None:
        """Why the site would not load with this sub-entry saved, or None."""
        entry = self._get_entry()
        current = self._current()
        subs = [s for s in entry.subentries.values() if current is None or s is not current]
        subs.append(
            ConfigSubentry(
                data=MappingProxyType(dict(data)),
                subentry_type=subentry_type,
                title="",
                unique_id=None,
            )
        )
        options = merge_subentries(entry.options, subs, entry.data.get("currency"))
        tz = str(self.hass.config.time_zone)
        try:
            site = SiteConfig.from_options(entry.data, options, tz)
            sharing_config(options, site, tz)
        except SharingConfigError as err:
            return str(err)
        except (ValueError, TypeError, KeyError) as err:
            return str(err) or type(err).__name__
        return None

    async def _history(self) -> StoredIds | None:
        """Meter and tenant ids the site's database knows, or None when the site is not loaded."""
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        store: Store = entry.runtime_data.store
        return await store.run(stored_ids, entry.entry_id)

    async def _new_id(self, name: str, taken: set[str], kind: str = "") -> str | None:
        """An id from the name (kept on reconfigure), or None when another item has it.

        An id a deleted meter or tenant had in the database gets a number
        added, so a new meter does not continue an old counter and a new
        tenant does not open an old (perhaps closed) wallet.
        """
        current = self._current()
        if current is not None:
            return str(current.data["id"])
        ident = slugify(name)[:MAX_ID]
        if not ident or ident in taken:
            return None
        history = await self._history() if kind else None
        used: set[str] = getattr(history, kind) if history is not None else set()
        base, n = ident, 1
        while ident in used or ident in taken:
            n += 1
            ident = f"{base}_{n}"
        return ident

    def _finish(
        self, title: str, data: dict[str, Any], unique_id: str | None = None
    ) -> SubentryFlowResult:
        current = self._current()
        if current is None:
            return self.async_create_entry(title=title, data=data, unique_id=unique_id)
        return self.async_update_and_abort(self._get_entry(), current, title=title, data=data)

    def _suggested(self, user_input: Mapping[str, Any] | None) -> dict[str, Any]:
        current = self._current()
        return {
            **(dict(current.data.get("form", current.data)) if current else {}),
            **(user_input or {}),
        }


# --------------------------------------------------------------------------- buses


class BusSubentryFlow(_SiteSubentryFlow):
    """Another bus: an RS-485 line on a serial port, or a Modbus TCP or RTU-over-TCP gateway."""

    def __init__(self) -> None:
        self._basics: dict[str, Any] = {}
        self._errors: dict[str, str] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name and kind of the bus."""
        errors: dict[str, str] = {}
        if user_input is not None:
            taken = {DEFAULT_BUS} | {str(b["id"]) for b in self._options().get(CONF_BUSES, [])}
            ident = await self._new_id(user_input["name"], taken)
            if ident is None:
                errors["name"] = "name_taken"
            else:
                self._basics = {**user_input, "id": ident}
                if user_input["kind"] == "serial":
                    return await self.async_step_serial()
                return await self.async_step_network()
        schema = vol.Schema(
            {
                vol.Required("name"): str,
                vol.Required("kind", default="tcp"): _select(
                    ["tcp", "rtu_over_tcp", "serial"], key="bus_kind"
                ),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
        )

    async_step_reconfigure = async_step_user

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Host and port of a gateway."""
        if user_input is not None:
            data = {
                "host": user_input["host"],
                "port": int(user_input["port"]),
                "timeout": float(user_input.get("timeout", 3)),
            }
            if (result := await self._save(data, user_input, "network")) is not None:
                return result
        schema = vol.Schema(
            {
                vol.Required("host"): str,
                vol.Required("port", default=502): vol.All(
                    vol.Coerce(int), vol.Range(min=1, max=65535)
                ),
                vol.Optional("timeout", default=3): vol.All(
                    vol.Coerce(float), vol.Range(min=0.1, max=30)
                ),
            }
        )
        return self.async_show_form(
            step_id="network",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=self._errors,
        )

    async def async_step_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Serial port and line settings of an RS-485 adapter."""
        if user_input is not None:
            data = {
                "serial_port": user_input["serial_port"],
                "baudrate": int(user_input["baudrate"]),
                "parity": user_input["parity"],
                "bytesize": int(user_input["bytesize"]),
                "stopbits": int(user_input["stopbits"]),
                "timeout": float(user_input.get("timeout", 1)),
            }
            if (result := await self._save(data, user_input, "serial")) is not None:
                return result
        schema = vol.Schema(
            {
                vol.Required("serial_port"): str,
                vol.Required("baudrate", default="9600"): _select(
                    ["1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200"]
                ),
                vol.Required("parity", default="N"): _select(["N", "E", "O"], key="parity"),
                vol.Required("bytesize", default="8"): _select(["7", "8"]),
                vol.Required("stopbits", default="1"): _select(["1", "2"]),
                vol.Optional("timeout", default=1): vol.All(
                    vol.Coerce(float), vol.Range(min=0.1, max=30)
                ),
            }
        )
        return self.async_show_form(
            step_id="serial",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=self._errors,
        )

    async def _save(
        self, fields: dict[str, Any], user_input: dict[str, Any], step: str
    ) -> SubentryFlowResult | None:
        """Check the bus is free and answers; save it, or keep the form's errors."""
        data = {"id": self._basics["id"], "kind": self._basics["kind"], **fields}
        config = BusConfig.from_dict({**data, "retries": 0})
        entry = self._get_entry()
        others = [
            BusConfig.from_dict(b)
            for b in self._options().get(CONF_BUSES, [])
            if b.get("id") != data["id"]
        ]
        own = BusConfig(host=entry.data["host"], port=int(entry.data["port"]))
        self._errors = {}
        if any(b.label == config.label for b in [own, *others]):
            self._errors["base"] = "bus_in_use"
            return None
        bus = ModbusBus(config)
        try:
            await bus.check()
        except MeterIOError:
            self._errors["base"] = "cannot_connect"
            return None
        finally:
            bus.close()
        form = {**self._basics, **user_input}
        return self._finish(self._basics["name"], {**data, "form": form}, f"bus_{data['id']}")


# --------------------------------------------------------------------------- meters


class MeterSubentryFlow(_SiteSubentryFlow):
    """A meter: a profile at a device id on a bus, or an existing energy sensor."""

    def __init__(self) -> None:
        self._basics: dict[str, Any] = {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name, utility and where the readings come from."""
        errors: dict[str, str] = {}
        if user_input is not None:
            taken = {str(m["id"]) for m in self._options().get(CONF_METERS, [])}
            ident = await self._new_id(user_input["name"], taken, "meters")
            if ident is None:
                errors["name"] = "name_taken"
            else:
                self._basics = {**user_input, "id": ident}
                if user_input["source"] == "entity":
                    return await self.async_step_entity()
                return await self.async_step_modbus()
        schema = vol.Schema(
            {
                vol.Required("name"): str,
                vol.Required("utility", default="electricity"): _select(
                    list(UTILITIES), key="utility"
                ),
                vol.Required("source", default="modbus"): _select(list(SOURCES), key="source"),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
        )

    async_step_reconfigure = async_step_user

    async def async_step_modbus(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Bus, device id, profile (or a custom register map) and ratios; then a test read."""
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        options = self._options()
        entry = self._get_entry()
        site = SiteConfig.from_options(entry.data, {**options, CONF_METERS: [], CONF_TENANTS: []})
        bus_ids = [b.id for b in site.buses]
        if user_input is not None:
            data: dict[str, Any] = {
                "id": self._basics["id"],
                "name": self._basics["name"],
                "utility": self._basics["utility"],
                "source": "modbus",
                "bus": user_input.get("bus", DEFAULT_BUS),
                "device_id": int(user_input["device_id"]),
                "profile": user_input["profile"],
            }
            for key in ("ct_ratio", "pt_ratio", "multiplier"):
                try:
                    data[key] = str(_number(user_input.get(key) or "1", positive=True))
                except ValueError:
                    errors[key] = "invalid_ratio"
            if any(
                m.get("bus", DEFAULT_BUS) == data["bus"]
                and int(m.get("device_id", 0)) == data["device_id"]
                and m.get("source", "modbus") == "modbus"
                and m["id"] != data["id"]
                for m in options.get(CONF_METERS, [])
            ):
                errors["device_id"] = "device_in_use"
            profile: MeterProfile | None = None
            try:
                if data["profile"] == CUSTOM:
                    custom = yaml.safe_load(user_input.get("custom_profile") or "") or {}
                    if isinstance(custom, dict):
                        custom.setdefault("utility", data["utility"])
                    profile = parse_profile(f"{CUSTOM}:{data['id']}", custom)
                    data["custom_profile"] = custom
                else:
                    profile = await self.hass.async_add_executor_job(load_profile, data["profile"])
            except (ProfileError, yaml.YAMLError) as err:
                errors["custom_profile"] = "invalid_profile"
                placeholders["error"] = str(err)
            if profile is not None and profile.utility != data["utility"]:
                errors["profile"] = "utility_mismatch"
            if not errors and await self._counter_would_change(data):
                errors["base"] = "meter_charged"
            if not errors and profile is not None:
                if problem := self._site_problem(SUBENTRY_METER, data):
                    errors["base"] = "invalid_site"
                    placeholders["error"] = problem
                elif not await self._test_read(site, data, profile):
                    errors["base"] = "meter_not_answering"
            if not errors:
                form = {**self._basics, **user_input}
                return self._finish(data["name"], {**data, "form": form}, f"meter_{data['id']}")
        schema = vol.Schema(
            {
                vol.Required("bus", default=DEFAULT_BUS): _select(bus_ids),
                vol.Required("device_id", default=1): vol.All(
                    vol.Coerce(int), vol.Range(min=1, max=247)
                ),
                vol.Required("profile", default="simulator"): _select(
                    [*shipped_profiles(), CUSTOM], key="profile"
                ),
                vol.Optional("custom_profile"): _TEXT_AREA,
                vol.Optional("ct_ratio", default="1"): str,
                vol.Optional("pt_ratio", default="1"): str,
                vol.Optional("multiplier", default="1"): str,
            }
        )
        return self.async_show_form(
            step_id="modbus",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _counter_would_change(self, data: Mapping[str, Any]) -> bool:
        """Whether a reconfigure points a meter that has charged at another counter.

        The charge cursor is the last counter value charged; another meter (or
        ratio) behind the same id would be charged the difference. Replacing a
        meter is adding a new one and moving the tenant to it.
        """
        current = self._current()
        if current is None:
            return False
        old = {k: current.data.get(k) for k in COUNTER_FIELDS}
        if old == {k: data.get(k) for k in COUNTER_FIELDS}:
            return False
        history = await self._history()
        return history is None or str(data["id"]) in history.charged

    async def _test_read(
        self, site: SiteConfig, data: Mapping[str, Any], profile: MeterProfile
    ) -> bool:
        """Read the meter once, on the site's live bus if it is a serial port in use."""
        entry = self._get_entry()
        config = next(b for b in site.buses if b.id == data["bus"])
        shared = (
            config.kind == "serial"
            and entry.state is ConfigEntryState.LOADED
            and data["bus"] in entry.runtime_data.buses
        )
        bus = (
            entry.runtime_data.buses[data["bus"]]
            if shared
            else ModbusBus(replace(config, timeout=TEST_READ_TIMEOUT, retries=0))
        )
        reader: MeterReader = ModbusMeter(
            bus,
            profile,
            int(data["device_id"]),
            ct_ratio=Decimal(data["ct_ratio"]),
            pt_ratio=Decimal(data["pt_ratio"]),
            multiplier=Decimal(data["multiplier"]),
        )
        try:
            await reader.read()
        except MeterIOError:
            return False
        finally:
            if not shared:
                bus.close()
        return True

    async def async_step_entity(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """An existing energy sensor (and optional power sensor and relay switch)."""
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        if user_input is not None:
            data: dict[str, Any] = {
                "id": self._basics["id"],
                "name": self._basics["name"],
                "utility": self._basics["utility"],
                "source": "entity",
                "energy_entity": user_input["energy_entity"],
                "power_entity": user_input.get("power_entity") or None,
                "relay_entity": user_input.get("relay_entity") or None,
            }
            try:
                await EntityMeter(
                    self.hass,
                    data["energy_entity"],
                    power_entity=data["power_entity"],
                    relay_entity=data["relay_entity"],
                ).read()
            except MeterIOError:
                errors["base"] = "entity_not_answering"
            if not errors and await self._counter_would_change(data):
                errors["base"] = "meter_charged"
            if not errors and (problem := self._site_problem(SUBENTRY_METER, data)):
                errors["base"] = "invalid_site"
                placeholders["error"] = problem
            if not errors:
                form = {**self._basics, **user_input}
                return self._finish(data["name"], {**data, "form": form}, f"meter_{data['id']}")
        schema = vol.Schema(
            {
                vol.Required("energy_entity"): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain="sensor")
                ),
                vol.Optional("power_entity"): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain="sensor")
                ),
                vol.Optional("relay_entity"): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain=["switch", "input_boolean"])
                ),
            }
        )
        return self.async_show_form(
            step_id="entity",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
            description_placeholders=placeholders,
        )


# --------------------------------------------------------------------------- tenants


def parse_fees(text: str) -> list[dict[str, str]]:
    """``Management fee: 50`` lines into the tenant's monthly ``fees``."""
    return [
        {"name": name, "amount": str(_number(amount)), "per": "month"}
        for name, amount in _pairs(text)
    ]


class TenantSubentryFlow(_SiteSubentryFlow):
    """A tenant account: who, how it pays, its meters, tariff and policy overrides."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The one tenant form."""
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        options = self._options()
        current = self._current()
        own = str(current.data["id"]) if current else None
        if user_input is not None:
            taken = {str(t["id"]) for t in options.get(CONF_TENANTS, [])}
            ident = await self._new_id(user_input["name"], taken, "tenants")
            if ident is None:
                errors["name"] = "name_taken"
            data: dict[str, Any] = {
                "id": ident,
                "name": user_input["name"],
                "meters": list(user_input.get("meters", [])),
                CONF_BILLING_MODE: user_input.get(CONF_BILLING_MODE, "prepaid"),
                "language": user_input.get("language", "en"),
                "contact": user_input.get("contact", ""),
            }
            if user_input.get("tariff"):
                data["tariff"] = user_input["tariff"]
            if user_input.get("move_in"):
                data["move_in"] = str(user_input["move_in"])
            for key in ("floor_area", "rated_capacity"):
                try:
                    if (value := _optional_number(user_input.get(key))) is not None:
                        data[key] = value
                except ValueError:
                    errors[key] = "invalid_number"
            try:
                data["fees"] = parse_fees(user_input.get("fees") or "")
            except ValueError:
                errors["fees"] = "invalid_fees"
            policy = {k: user_input[k] for k in POLICY_KEYS if user_input.get(k) not in (None, "")}
            for key in (CONF_DAYS_LEFT_LEVEL, CONF_GRACE_MINUTES):
                if key in policy:
                    policy[key] = int(policy[key])
            if user_input.get(CONF_CUT_OFF_WHEN_OVERDUE):
                policy[CONF_CUT_OFF_WHEN_OVERDUE] = True
            errors.update(policy_errors({**options, **policy}, str(self.hass.config.time_zone)))
            data[CONF_POLICY] = policy
            if not errors and (problem := self._site_problem(SUBENTRY_TENANT, data)):
                errors["base"] = "invalid_site"
                placeholders["error"] = problem
            if not errors:
                return self._finish(
                    data["name"], {**data, "form": user_input}, f"tenant_{data['id']}"
                )
        # Meters another tenant pays for, the master and common-area meters are not offered.
        used = {m for t in options.get(CONF_TENANTS, []) if t.get("id") != own for m in t["meters"]}
        used |= {options.get(OPT_MASTER_METER)}
        used |= {m for r in options.get(OPT_SHARING_RULES, []) for m in r.get("meters", [])}
        meters = [
            (str(m["id"]), str(m["name"]))
            for m in options.get(CONF_METERS, [])
            if m["id"] not in used
        ]
        tariffs = [("", "—")] + [
            (tid, str(t.get("name", tid))) for tid, t in (options.get(OPT_TARIFFS) or {}).items()
        ]
        schema = vol.Schema(
            {
                vol.Required("name"): str,
                vol.Optional("contact"): str,
                vol.Optional("meters", default=[]): _labelled(meters, multiple=True),
                vol.Optional("move_in"): selector.DateSelector(),
                vol.Required(CONF_BILLING_MODE, default="prepaid"): _select(
                    list(BILLING_MODES), key="billing"
                ),
                vol.Optional("tariff", default=""): _labelled(tariffs),
                vol.Optional("floor_area"): str,
                vol.Optional("rated_capacity"): str,
                vol.Optional("fees"): _TEXT_AREA,
                vol.Required("language", default="en"): _select(list(LANGUAGES), key="language"),
                vol.Optional(CONF_WARNING_LEVELS): str,
                vol.Optional(CONF_DAYS_LEFT_LEVEL): vol.All(vol.Coerce(int), vol.Range(0, 365)),
                vol.Optional(CONF_CREDIT_LIMIT): str,
                vol.Optional(CONF_GRACE_MINUTES): vol.All(vol.Coerce(int), vol.Range(0, 10080)),
                vol.Optional(CONF_FRIENDLY_HOURS): str,
                vol.Optional(CONF_HOLIDAYS): str,
                vol.Optional(CONF_EMERGENCY_CREDIT): str,
                vol.Optional(CONF_CUT_OFF_WHEN_OVERDUE, default=False): bool,
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
            description_placeholders=placeholders,
        )

    async_step_reconfigure = async_step_user


# --------------------------------------------------------------------------- tariffs


class TariffFormError(ValueError):
    """A tariff editor field that cannot be read; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _schedule(text: str, field: str) -> list[list[str]]:
    """``00:00 valley, 08:00 peak`` into the engine's switch list."""
    switches = []
    for part in text.replace(";", ",").replace("\n", ",").split(","):
        if not part.strip():
            continue
        at, _, period = part.strip().partition(" ")
        if not period.strip():
            raise TariffFormError(field)
        switches.append([at.strip(), period.strip()])
    if not switches:
        raise TariffFormError(field)
    return switches


def tariff_version(form: Mapping[str, Any], effective: str) -> dict[str, Any]:
    """One engine tariff version from the editor's fields (TariffFormError on a bad field)."""

    def pairs(field: str) -> list[tuple[str, str]]:
        try:
            return _pairs(str(form.get(field) or ""))
        except ValueError as err:
            raise TariffFormError(field) from err

    version: dict[str, Any] = {"effective": effective}
    if form.get("kind", "flat") == "tou":
        prices = dict(pairs("tou_prices"))
        if not prices:
            raise TariffFormError("tou_prices")
        schedules = {
            "weekday": _schedule(str(form.get("weekday_schedule") or ""), "weekday_schedule")
        }
        if form.get("weekend_schedule"):
            schedules["weekend"] = _schedule(str(form["weekend_schedule"]), "weekend_schedule")
        holidays = [d.strip() for d in str(form.get("holidays") or "").split(",") if d.strip()]
        if holidays:
            schedules["holiday"] = schedules.get("weekend", schedules["weekday"])
        version["energy"] = {
            "kind": "tou",
            "prices": prices,
            "calendar": {
                "weekend": [5, 6],
                "holidays": holidays,
                "seasons": [
                    {"name": "all year", "from": "01-01", "to": "12-31", "schedules": schedules}
                ],
            },
        }
    else:
        version["energy"] = {"kind": "flat", "price": str(form.get("price") or "")}
    if tiers := pairs("tiers"):
        blocks = [
            {"upto": None if upto in ("*", "+") else upto, "adder": adder} for upto, adder in tiers
        ]
        version["tiers"] = {
            "basis": form.get("tier_basis", "period"),
            "mode": "adder",
            "blocks": blocks,
        }
    standing = []
    for name, amount in pairs("standing"):
        value, _, per = amount.partition("/")
        standing.append({"name": name, "amount": value.strip(), "per": per.strip() or "month"})
    if standing:
        version["standing"] = standing
    if form.get("demand_price") not in (None, ""):
        version["demand"] = {
            "price": str(form["demand_price"]),
            "window_minutes": int(form.get("demand_window", 15)),
        }
    if form.get("capacity_price") not in (None, ""):
        version["capacity"] = {"price": str(form["capacity_price"])}
    if form.get("minimum") not in (None, ""):
        version["minimum"] = {"amount": str(form["minimum"])}
    if taxes := pairs("taxes"):
        version["taxes"] = [{"name": name, "percent": percent} for name, percent in taxes]
    return version


class TariffSubentryFlow(_SiteSubentryFlow):
    """A tariff in the engine's terms; a change is a new price version from a date on."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The tariff editor."""
        errors: dict[str, str] = {}
        placeholders = {"error": "", "path": ""}
        options = self._options()
        current = self._current()
        entry = self._get_entry()
        if user_input is not None:
            ident = await self._new_id(user_input["name"], set(options.get(OPT_TARIFFS) or {}))
            if ident is None:
                errors["name"] = "name_taken"
            others_default = [
                s
                for s in entry.subentries.values()
                if s.subentry_type == SUBENTRY_TARIFF and s.data.get("default") and s is not current
            ]
            if user_input.get("default") and others_default:
                errors["default"] = "default_taken"
            versions: list[dict[str, Any]] = []
            effective = FIRST_EFFECTIVE
            if current is not None:
                versions = list(current.data["tariff"]["versions"])
                try:
                    at = _instant(user_input.get("effective"))
                except ValueError:
                    errors["effective"] = "invalid_effective"
                else:
                    if at < dt_util.utcnow().replace(second=0, microsecond=0):
                        errors["effective"] = "effective_in_past"
                    effective = at.isoformat()
            elif user_input.get("effective"):
                try:
                    effective = _instant(user_input["effective"]).isoformat()
                except ValueError:
                    errors["effective"] = "invalid_effective"
            try:
                versions.append(tariff_version(user_input, effective))
            except TariffFormError as err:
                errors[err.field] = "invalid_lines"
            engine = {
                "name": user_input["name"],
                "commodity": user_input.get("commodity", "electricity"),
                "currency": entry.data["currency"],
                "timezone": str(self.hass.config.time_zone),
                "versions": versions,
            }
            if not errors:
                try:
                    tariff_from_dict(engine)
                except TariffError as err:
                    errors["base"] = f"tariff_{err.key}"
                    placeholders["error"] = str(err)
                    placeholders["path"] = err.path
            data = {"id": ident, "default": bool(user_input.get("default")), "tariff": engine}
            if not errors and (problem := self._site_problem(SUBENTRY_TARIFF, data)):
                errors["base"] = "invalid_site"
                placeholders["error"] = problem
            if not errors:
                form = {k: v for k, v in user_input.items() if k != "effective"}
                return self._finish(user_input["name"], {**data, "form": form}, f"tariff_{ident}")
        schema = vol.Schema(
            {
                vol.Required("name"): str,
                vol.Optional("default", default=False): bool,
                vol.Required("commodity", default="electricity"): _select(
                    list(UTILITIES), key="utility"
                ),
                vol.Optional("effective"): str,
                vol.Required("kind", default="flat"): _select(["flat", "tou"], key="tariff_kind"),
                vol.Optional("price"): str,
                vol.Optional("tou_prices"): _TEXT_AREA,
                vol.Optional("weekday_schedule"): _TEXT_AREA,
                vol.Optional("weekend_schedule"): _TEXT_AREA,
                vol.Optional("holidays"): str,
                vol.Optional("tiers"): _TEXT_AREA,
                vol.Optional("tier_basis", default="period"): _select(
                    ["period", "year"], key="tier_basis"
                ),
                vol.Optional("standing"): _TEXT_AREA,
                vol.Optional("demand_price"): str,
                vol.Optional("demand_window", default="15"): _select(
                    [str(w) for w in DEMAND_WINDOWS]
                ),
                vol.Optional("capacity_price"): str,
                vol.Optional("minimum"): str,
                vol.Optional("taxes"): _TEXT_AREA,
            }
        )
        suggested = self._suggested(user_input)
        if current is not None and user_input is None:
            suggested["effective"] = dt_util.now().replace(second=0, microsecond=0).isoformat()
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async_step_reconfigure = async_step_user


def _instant(value: Any) -> datetime:
    """An aware instant from the form (local time when no offset is given)."""
    parsed = dt_util.parse_datetime(str(value or "").strip())
    if parsed is None:
        raise ValueError(value)
    return dt_util.as_utc(
        parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_util.get_default_time_zone())
    )


# --------------------------------------------------------------------------- sharing rules


class SharingRuleSubentryFlow(_SiteSubentryFlow):
    """A common-area or line-loss rule: which meters, which tenants, shared how."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """The one rule form."""
        errors: dict[str, str] = {}
        placeholders = {"error": ""}
        options = self._options()
        current = self._current()
        if user_input is not None:
            names = {str(r.get("name")) for r in options.get(OPT_SHARING_RULES, [])}
            if current is None and user_input["name"] in names:
                errors["name"] = "name_taken"
            ratios: dict[str, str] = {}
            try:
                ratios = dict(_pairs(str(user_input.get("ratios") or "")))
            except ValueError:
                errors["ratios"] = "invalid_lines"
            rule: dict[str, Any] = {
                "name": current.data["rule"]["name"] if current else user_input["name"],
                "kind": user_input["kind"],
                "method": user_input["method"],
                "meters": list(user_input.get("meters", []))
                if user_input["kind"] == "common"
                else [],
                "participants": [
                    {"tenant": t, **({"ratio": ratios[t]} if t in ratios else {})}
                    for t in user_input.get("tenants", [])
                ],
                "owner_percent": str(user_input.get("owner_percent") or "0"),
                "cadence": user_input.get("cadence", "period"),
                "loss_pricing": user_input.get("loss_pricing", "master_average"),
            }
            if user_input.get("evasion_percent") not in (None, ""):
                rule["evasion_percent"] = str(user_input["evasion_percent"])
            master = user_input.get("master_meter") or None
            existing = options.get(OPT_MASTER_METER)
            own_master = current.data.get(OPT_MASTER_METER) if current else None
            if rule["kind"] == "loss" and not master:
                errors["master_meter"] = "master_required"
            elif master and existing and existing not in (master, own_master):
                errors["master_meter"] = "master_conflict"
            if not errors:
                try:
                    sharing_rule_from_dict(
                        fill_rule(
                            rule,
                            {str(m["id"]) for m in options.get(CONF_METERS, [])},
                            {str(t["id"]): t for t in options.get(CONF_TENANTS, [])},
                        )
                    )
                except SharingError as err:
                    errors["base"] = "invalid_rule"
                    placeholders["error"] = str(err)
            data = {"rule": rule, OPT_MASTER_METER: master}
            if not errors and (problem := self._site_problem(SUBENTRY_SHARING, data)):
                errors["base"] = "invalid_site"
                placeholders["error"] = problem
            if not errors:
                return self._finish(rule["name"], {**data, "form": user_input})
        tenant_meters = {m for t in options.get(CONF_TENANTS, []) for m in t.get("meters", [])}
        free = [
            (str(m["id"]), str(m["name"]))
            for m in options.get(CONF_METERS, [])
            if m["id"] not in tenant_meters
        ]
        tenants = [(str(t["id"]), str(t["name"])) for t in options.get(CONF_TENANTS, [])]
        schema = vol.Schema(
            {
                vol.Required("name"): str,
                vol.Required("kind", default="common"): _select(
                    ["common", "loss"], key="rule_kind"
                ),
                vol.Required("method", default="consumption"): _select(
                    ["consumption", "area", "equal", "ratio", "capacity"], key="method"
                ),
                vol.Optional("meters", default=[]): _labelled(free, multiple=True),
                vol.Required("tenants", default=[]): _labelled(tenants, multiple=True),
                vol.Optional("ratios"): _TEXT_AREA,
                vol.Optional("master_meter"): _labelled(free),
                vol.Optional("evasion_percent"): str,
                vol.Optional("owner_percent", default="0"): str,
                vol.Optional("cadence", default="period"): _select(
                    ["period", "daily"], key="cadence"
                ),
                vol.Optional("loss_pricing", default="master_average"): _select(
                    ["master_average", "tariff", "unit_price"], key="loss_pricing"
                ),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, self._suggested(user_input)),
            errors=errors,
            description_placeholders=placeholders,
        )

    async_step_reconfigure = async_step_user


SUBENTRY_FLOWS: dict[str, type[ConfigSubentryFlow]] = {
    SUBENTRY_BUS: BusSubentryFlow,
    SUBENTRY_METER: MeterSubentryFlow,
    SUBENTRY_TENANT: TenantSubentryFlow,
    SUBENTRY_TARIFF: TariffSubentryFlow,
    SUBENTRY_SHARING: SharingRuleSubentryFlow,
}
