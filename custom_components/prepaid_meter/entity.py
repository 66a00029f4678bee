"""Base entities: one device per meter, one per tenant account.

A meter's device is linked to its tenant's (``via_device``), so a tenant's
device page lists the meters charged to its wallet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import (
    MeterConfig,
    MeterState,
    PrepaidConfigEntry,
    PrepaidCoordinator,
    TenantConfig,
    TenantState,
)


@callback
def async_drop_unprovided(
    hass: HomeAssistant, entry: PrepaidConfigEntry, domain: str, provided: Sequence[Any]
) -> None:
    """Remove the platform's registry entries of this site that setup no longer provides.

    Some entities exist only in one mode: a prepaid tenant has days of credit
    left, remaining energy, emergency credit and a warning level; a postpaid
    one has an amount due and a bill-overdue sensor. A tenant switched from
    one to the other (a reload) would otherwise keep the other mode's
    entities as unavailable for ever. The same holds for a usage-limit alarm
    switched off, or a register a meter's new profile does not have.
    """
    wanted = {entity.unique_id for entity in provided}
    registry = er.async_get(hass)
    for item in er.async_entries_for_config_entry(registry, entry.entry_id):
        if item.domain == domain and item.platform == DOMAIN and item.unique_id not in wanted:
            registry.async_remove(item.entity_id)


def tenant_device_info(coordinator: PrepaidCoordinator, tenant: TenantConfig) -> DeviceInfo:
    """The device of a tenant account."""
    return DeviceInfo(
        identifiers={(DOMAIN, f"{coordinator.site_id}_tenant_{tenant.id}")},
        name=tenant.name,
        manufacturer="Prepaid Meter",
        model="Tenant account",
    )


def meter_device_info(coordinator: PrepaidCoordinator, meter: MeterConfig) -> DeviceInfo:
    """The device of a sub-meter, linked to the tenant it is charged to."""
    reader = coordinator.readers[meter.id]
    info = DeviceInfo(
        identifiers={(DOMAIN, f"{coordinator.site_id}_meter_{meter.id}")},
        name=f"{meter.name} meter",
        manufacturer=reader.manufacturer,
        model=reader.model,
        serial_number=str(meter.device_id) if meter.source == "modbus" else None,
    )
    if (tenant := coordinator.site.tenant_of(meter.id)) is not None:
        info["via_device"] = (DOMAIN, f"{coordinator.site_id}_tenant_{tenant.id}")
    return info


@callback
def async_register_devices(hass: HomeAssistant, entry: PrepaidConfigEntry) -> None:
    """Create the tenant devices, then the meter devices that link to them.

    Done before the platforms add entities: a ``via_device`` must exist when
    the device naming it is created, whichever platform comes first.
    """
    coordinator = entry.runtime_data.coordinator
    registry = dr.async_get(hass)
    for tenant in coordinator.site.tenants:
        registry.async_get_or_create(
            config_entry_id=entry.entry_id, **tenant_device_info(coordinator, tenant)
        )
    for meter in coordinator.site.meters:
        registry.async_get_or_create(
            config_entry_id=entry.entry_id, **meter_device_info(coordinator, meter)
        )


class SiteEntity(CoordinatorEntity[PrepaidCoordinator]):
    """An entity of the site's coordinator that writes its state only when it changed.

    A refresh touches every entity of the site (a thousand or more on a big
    one) while most of them show the same as before (relays, online, supply,
    warnings); building and comparing a state object for each costs more than
    the Modbus reads. The comparison here is on what the entity would show.
    """

    _attr_has_entity_name = True
    _shown: Any = None

    def _shown_key(self) -> Any:
        """What the entity shows: availability, value and attributes.

        Sensors override it with their native value: their ``state`` (unit
        conversion, rounding) costs as much as the write it would save.
        """
        return (self.available, self.state, self.extra_state_attributes)

    def _show(self, shown: Any) -> None:
        """Take on what ``_shown_key`` found, before the state is written.

        Sensors set their ``_attr_`` values here, only when what they show
        changed: each such assignment also clears Home Assistant's cached
        properties of the entity.
        """

    @callback
    def _handle_coordinator_update(self) -> None:
        shown = self._shown_key()
        if shown == self._shown:
            return
        self._shown = shown
        self._show(shown)
        self.async_write_ha_state()


class MeterEntity(SiteEntity):
    """An entity of a sub-meter's device."""

    def __init__(self, coordinator: PrepaidCoordinator, meter: MeterConfig, key: str) -> None:
        super().__init__(coordinator)
        self.meter = meter
        self._attr_unique_id = f"{coordinator.site_id}_meter_{meter.id}_{key}"
        self._attr_device_info = meter_device_info(coordinator, meter)

    @property
    def meter_state(self) -> MeterState:
        """The meter's latest state."""
        return self.coordinator.data.meters[self.meter.id]

    @property
    def available(self) -> bool:
        """A meter's entities are unavailable while it does not answer."""
        return super().available and self.meter_state.online


class TenantEntity(SiteEntity):
    """An entity of a tenant account's device."""

    def __init__(self, coordinator: PrepaidCoordinator, tenant: TenantConfig, key: str) -> None:
        super().__init__(coordinator)
        self.tenant = tenant
        self._attr_unique_id = f"{coordinator.site_id}_tenant_{tenant.id}_{key}"
        self._attr_device_info = tenant_device_info(coordinator, tenant)

    @property
    def tenant_state(self) -> TenantState:
        """The tenant's wallet and supply state."""
        return self.coordinator.data.tenants[self.tenant.id]
