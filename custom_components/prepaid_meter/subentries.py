"""Sub-entries (meters, tenants, tariffs, sharing rules) as the options the site reads.

A site can be described in two ways: lists in the entry's options (older
sites, the tests' builder, the demo) and config sub-entries edited in the UI.
`site_options` merges both into one options dict of the option shapes, so the
coordinator, the sharing runner and the actions read a site one way only.

Each sub-entry's data is already in its option shape:

``bus``
    a `BusConfig` dict (``id``, ``kind``, ``host``/``port`` or ``serial_port``...).
``meter``
    a `MeterConfig` dict (``id``, ``name``, ``bus``, ``device_id``, ...).
``tenant``
    a tenant spec (``id``, ``name``, ``meters``, ``billing``, ``tariff``,
    ``policy``, ``fees``, ``language``, ...) plus ``contact``, ``floor_area``,
    ``rated_capacity`` and ``move_in``, which the sharing rules and bills read.
``tariff``
    ``{"id", "default", "tariff": engine dict, "form": the editor's fields}``;
    it becomes ``tariffs[id]`` (and ``tariff = id`` when ``default``).
``sharing_rule``
    ``{"rule": engine rule dict, "master_meter": id or None}``; floor areas
    and rated capacities of its participants come from the tenants at merge
    time, so a tenant's edit reaches its rules.

References from a sub-entry to a sub-entry that was deleted (a removed meter
in a tenant's list, a removed tariff, the bus of a meter) are dropped here:
deleting a meter unassigns it, deleting a bus removes its meters, rather than
breaking the site.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigSubentry,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import CONF_BUSES, CONF_METERS, CONF_TENANTS, DEFAULT_BUS, DOMAIN

SUBENTRY_METER: Final = "meter"
SUBENTRY_TENANT: Final = "tenant"
SUBENTRY_TARIFF: Final = "tariff"
SUBENTRY_SHARING: Final = "sharing_rule"
SUBENTRY_BUS: Final = "bus"

#: Option keys the sharing runner and the tariff wiring read.
OPT_TARIFFS: Final = "tariffs"
OPT_TARIFF: Final = "tariff"
OPT_SHARING_RULES: Final = "sharing_rules"
OPT_MASTER_METER: Final = "master_meter"


def site_options(entry: ConfigEntry[Any]) -> dict[str, Any]:
    """The entry's options with its sub-entries merged in (see the module docstring)."""
    return merge_subentries(entry.options, entry.subentries.values(), entry.data.get("currency"))


def merge_subentries(
    options: Mapping[str, Any],
    subentries: Iterable[ConfigSubentry],
    currency: str | None = None,
) -> dict[str, Any]:
    """Options plus sub-entries, in the option shapes; the inputs are not changed.

    Tariff sub-entries are priced in the site's ``currency`` when it is given.
    """
    subs = list(subentries)
    if not subs:
        return dict(options)
    opts = dict(options)
    of_type: dict[str, list[Mapping[str, Any]]] = {}
    for sub in subs:
        of_type.setdefault(sub.subentry_type, []).append(sub.data)

    buses = [dict(b) for b in opts.get(CONF_BUSES, [])]
    buses += [_spec(data) for data in of_type.get(SUBENTRY_BUS, [])]
    bus_ids = {DEFAULT_BUS} | {str(b.get("id")) for b in buses}

    meters = [dict(m) for m in opts.get(CONF_METERS, [])]
    meters += [
        _spec(data)
        for data in of_type.get(SUBENTRY_METER, [])
        if data.get("source") == "entity" or data.get("bus", DEFAULT_BUS) in bus_ids
    ]
    meter_ids = {str(m.get("id")) for m in meters}

    tariffs = dict(opts.get(OPT_TARIFFS) or {})
    for data in of_type.get(SUBENTRY_TARIFF, []):
        tariffs[str(data["id"])] = dict(data["tariff"])
        if currency:
            tariffs[str(data["id"])]["currency"] = currency
        if data.get("default"):
            opts[OPT_TARIFF] = str(data["id"])

    tenants = [dict(t) for t in opts.get(CONF_TENANTS, [])]
    for data in of_type.get(SUBENTRY_TENANT, []):
        spec = _spec(data)
        spec["meters"] = [m for m in spec.get("meters", []) if m in meter_ids]
        if spec.get(OPT_TARIFF) and spec[OPT_TARIFF] not in tariffs:
            spec.pop(OPT_TARIFF)
        tenants.append(spec)
    by_id = {str(t.get("id")): t for t in tenants}

    rules = list(opts.get(OPT_SHARING_RULES) or [])
    for data in of_type.get(SUBENTRY_SHARING, []):
        rules.append(fill_rule(data["rule"], meter_ids, by_id))
        master = data.get(OPT_MASTER_METER)
        if master and master in meter_ids and not opts.get(OPT_MASTER_METER):
            opts[OPT_MASTER_METER] = master

    if buses:
        opts[CONF_BUSES] = buses
    opts[CONF_METERS] = meters
    opts[CONF_TENANTS] = tenants
    if tariffs:
        opts[OPT_TARIFFS] = tariffs
    if rules:
        opts[OPT_SHARING_RULES] = rules
    return opts


def _spec(data: Mapping[str, Any]) -> dict[str, Any]:
    """A sub-entry's option shape without the form it was entered with."""
    return {k: v for k, v in data.items() if k != "form"}


def fill_rule(
    raw: Mapping[str, Any], meter_ids: set[str], tenants: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """A sub-entry's rule with deleted meters and tenants left out, figures from the tenants."""
    rule = dict(raw)
    rule["meters"] = [m for m in rule.get("meters", []) if m in meter_ids]
    participants = []
    for raw_p in rule.get("participants", []):
        tenant = tenants.get(str(raw_p.get("tenant")))
        if tenant is None:
            continue
        p = dict(raw_p)
        if p.get("area") is None and tenant.get("floor_area") not in (None, ""):
            p["area"] = str(tenant["floor_area"])
        if p.get("capacity") is None and tenant.get("rated_capacity") not in (None, ""):
            p["capacity"] = str(tenant["rated_capacity"])
        participants.append(p)
    rule["participants"] = participants
    return rule


def device_identifiers(site_id: str, meters: Iterable[str], tenants: Iterable[str]) -> set[str]:
    """The device identifiers a site's entities use (see entity.py)."""
    return {f"{site_id}_meter_{m}" for m in meters} | {f"{site_id}_tenant_{t}" for t in tenants}


@callback
def async_remove_stale_devices(hass: HomeAssistant, entry: ConfigEntry[Any], live: set[str]) -> int:
    """Remove the entry from devices of meters and tenants no longer configured."""
    registry = dr.async_get(hass)
    removed = 0
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ours = {ident for domain, ident in device.identifiers if domain == DOMAIN}
        if ours and not ours & live:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
            removed += 1
    return removed


@callback
def async_reload_on_subentry_change(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    """Reload the site when a sub-entry is added, changed or removed.

    Not an update listener: the options and reconfigure flows reload by
    themselves (``OptionsFlowWithReload``, ``async_update_reload_and_abort``),
    and Home Assistant refuses update listeners next to them.
    """

    # Home Assistant changes a sub-entry in place: keep copies of what was loaded.
    def _snapshot() -> dict[str, tuple[str, str, dict[str, Any]]]:
        return {
            sid: (sub.subentry_type, sub.title, dict(sub.data))
            for sid, sub in entry.subentries.items()
        }

    loaded = _snapshot()

    @callback
    def _changed(change: ConfigEntryChange, changed: ConfigEntry[Any]) -> None:
        if (
            change is ConfigEntryChange.UPDATED
            and changed.entry_id == entry.entry_id
            and _snapshot() != loaded
        ):
            hass.config_entries.async_schedule_reload(entry.entry_id)

    entry.async_on_unload(async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _changed))
