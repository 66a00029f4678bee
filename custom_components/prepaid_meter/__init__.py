"""Prepaid Meter: prepaid and postpaid energy billing for sub-metered buildings."""

from __future__ import annotations

from pathlib import Path

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import CONF_DATABASE_URL, DB_FILENAME, DOMAIN
from .coordinator import PrepaidConfigEntry, PrepaidCoordinator, PrepaidRuntimeData, SiteConfig
from .meters.modbus import ModbusBus
from .meters.profiles import load_profile
from .services import async_setup_services
from .store import Store, StoreError

PLATFORMS = [Platform.SENSOR, Platform.SWITCH]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions once, for every site."""
    async_setup_services(hass)
    return True


def database_url(hass: HomeAssistant, entry: PrepaidConfigEntry) -> str:
    """The site's database: a SQLAlchemy URL if set, else a SQLite file in the config dir."""
    if url := entry.data.get(CONF_DATABASE_URL):
        return str(url)
    return f"sqlite:///{Path(hass.config.path(DB_FILENAME))}"


async def async_setup_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Open the store, connect the bus and start polling."""
    site = SiteConfig.from_entry(entry)
    profile_keys = {m.profile for m in site.meters}
    profiles = {key: await hass.async_add_executor_job(load_profile, key) for key in profile_keys}
    store = Store(database_url(hass, entry))
    try:
        await store.async_open()
    except StoreError as err:
        await store.async_close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="store_unavailable"
        ) from err
    bus = ModbusBus(site.host, site.port)
    coordinator = PrepaidCoordinator(hass, entry, site, store, bus, profiles)
    entry.runtime_data = PrepaidRuntimeData(
        site=site, store=store, bus=bus, profiles=profiles, coordinator=coordinator
    )
    try:
        await coordinator.async_config_entry_first_refresh()
    except ConfigEntryNotReady:
        bus.close()
        await store.async_close()
        raise
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)

    async def _async_close_on_stop(_event: Event) -> None:
        # Entries are not unloaded when Home Assistant stops: close the store's
        # thread and the bus here so a shutdown waits for the last write.
        bus.close()
        await store.async_close()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_close_on_stop)
    )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bool:
    """Stop polling, close the bus and the store."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        runtime = entry.runtime_data
        runtime.bus.close()
        await runtime.store.async_close()
    return unloaded
