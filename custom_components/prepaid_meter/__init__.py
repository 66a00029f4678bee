"""Prepaid Meter: prepaid and postpaid energy billing for sub-metered buildings."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady, HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from .bill_schedule import async_start_billing
from .const import CONF_DATABASE_URL, DB_FILENAME, DOMAIN
from .coordinator import (
    MeterConfig,
    PrepaidConfigEntry,
    PrepaidCoordinator,
    PrepaidRuntimeData,
    SiteConfig,
)
from .entity import async_register_devices
from .meters.modbus import ModbusBus
from .meters.profiles import CUSTOM, MeterProfile, ProfileError, load_profile, parse_profile
from .meters.reader import EntityMeter, MeterReader, ModbusMeter
from .services import async_setup_bill_services, async_setup_services, async_setup_supply_services
from .sharing_runner import async_setup_sharing_service, async_start_sharing, validate_sharing
from .store import Store, StoreError
from .subentries import (
    async_reload_on_subentry_change,
    async_remove_stale_devices,
    device_identifiers,
)
from .tariff_config import TariffConfigError
from .tenant_page import async_setup_tenant_page

_LOGGER = logging.getLogger(__name__)

PLATFORMS = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR, Platform.SWITCH]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, for every site."""
    async_setup_services(hass)
    async_setup_bill_services(hass)
    async_setup_supply_services(hass)
    async_setup_sharing_service(hass)
    async_setup_tenant_page(hass)
    return True


def database_url(hass: HomeAssistant, entry: PrepaidConfigEntry) -> str:
    """The site's database: a SQLAlchemy URL if set, else a SQLite file in the config dir."""
    if url := entry.data.get(CONF_DATABASE_URL):
        return str(url)
    return f"sqlite:///{Path(hass.config.path(DB_FILENAME))}"


async def _async_profile(hass: HomeAssistant, meter: MeterConfig) -> MeterProfile:
    if meter.profile == CUSTOM:
        return parse_profile(f"{CUSTOM}:{meter.id}", meter.custom_profile)
    return await hass.async_add_executor_job(load_profile, meter.profile)


async def async_build_meters(
    hass: HomeAssistant, site: SiteConfig
) -> tuple[dict[str, ModbusBus], dict[str, MeterReader]]:
    """One bus object per configured bus, one reader per meter (profiles validated here)."""
    buses = {b.id: ModbusBus(b) for b in site.buses}
    readers: dict[str, MeterReader] = {}
    for meter in site.meters:
        if meter.source == "entity":
            if not meter.energy_entity:
                raise ProfileError(f"meter {meter.id}: an energy entity is required")
            readers[meter.id] = EntityMeter(
                hass,
                meter.energy_entity,
                power_entity=meter.power_entity,
                relay_entity=meter.relay_entity,
            )
            continue
        if meter.bus not in buses:
            raise ProfileError(f"meter {meter.id}: unknown bus {meter.bus}")
        readers[meter.id] = ModbusMeter(
            buses[meter.bus],
            await _async_profile(hass, meter),
            meter.device_id,
            ct_ratio=Decimal(meter.ct_ratio),
            pt_ratio=Decimal(meter.pt_ratio),
            multiplier=Decimal(meter.multiplier),
        )
    return buses, readers


def _close_buses(buses: dict[str, ModbusBus]) -> None:
    for bus in buses.values():
        bus.close()


async def _async_close(
    coordinator: PrepaidCoordinator, buses: dict[str, ModbusBus], store: Store
) -> None:
    """Store the use read in the interval still open, then close the buses and the store."""
    try:
        await coordinator.async_settle()
    except HomeAssistantError as err:
        # Not lost: the meters' positions did not move, and the next start charges it.
        _LOGGER.warning("Use read since the last stored interval not stored: %s", err)
    _close_buses(buses)
    await store.async_close()


async def async_setup_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Open the store, connect the buses and start polling."""
    try:
        site = SiteConfig.from_entry(entry, hass.config.time_zone)
        buses, readers = await async_build_meters(hass, site)
    except TariffConfigError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key=err.key,
            translation_placeholders={"tariff": err.tariff, "error": err.error},
        ) from err
    except (ProfileError, ValueError, TypeError) as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_meter_config",
            translation_placeholders={"error": str(err)},
        ) from err
    sharing = validate_sharing(hass, entry, site)
    store = Store(database_url(hass, entry))
    try:
        await store.async_open()
    except StoreError as err:
        await store.async_close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="store_unavailable"
        ) from err
    coordinator = PrepaidCoordinator(hass, entry, site, store, readers)
    entry.runtime_data = PrepaidRuntimeData(
        site=site, store=store, buses=buses, coordinator=coordinator
    )
    try:
        await coordinator.async_config_entry_first_refresh()
    except (ConfigEntryNotReady, ConfigEntryError):
        _close_buses(buses)
        await store.async_close()
        raise
    async_register_devices(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    async_start_sharing(hass, entry, sharing)
    async_start_billing(hass, entry)
    async_remove_stale_devices(hass, entry, _live_devices(entry, site))
    async_reload_on_subentry_change(hass, entry)

    async def _async_close_on_stop(_event: Event) -> None:
        # Entries are not unloaded when Home Assistant stops: close the store's
        # thread and the buses here so a shutdown waits for the last write.
        await _async_close(coordinator, buses, store)

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_close_on_stop)
    )
    return True


async def async_remove_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> None:
    """A removed site leaves no repair issues behind."""
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and entry.entry_id in issue_id:
            ir.async_delete_issue(hass, DOMAIN, issue_id)


def _live_devices(entry: PrepaidConfigEntry, site: SiteConfig) -> set[str]:
    return device_identifiers(
        entry.entry_id, (m.id for m in site.meters), (t.id for t in site.tenants)
    )


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PrepaidConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A device may be deleted by hand once its meter or tenant is no longer configured."""
    try:
        site = SiteConfig.from_entry(entry, hass.config.time_zone)
    except (ValueError, TypeError, KeyError):
        return True
    live = _live_devices(entry, site)
    return not any(domain == DOMAIN and ident in live for domain, ident in device.identifiers)


async def async_unload_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Stop polling, close the bus and the store."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        runtime = entry.runtime_data
        runtime.coordinator.async_cancel_rechecks()
        await _async_close(runtime.coordinator, runtime.buses, runtime.store)
    return unloaded
