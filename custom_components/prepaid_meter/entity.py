"""Base entities: one device per meter, one per tenant account.

A meter's device is linked to its tenant's (``via_device``), so a tenant's
device page lists the meters charged to its wallet.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
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


class PrepaidEntity(CoordinatorEntity[PrepaidCoordinator]):
    """An entity of the site; it can write its state only when what it shows changed.

    A site of hundreds of meters updates every entity on every poll; most
    values (voltage, relay, online, supply state) rarely move, and writing an
    unchanged state still builds all its attributes. An entity that overrides
    ``_compute`` (bring its values up to date, return what it shows) is
    written only when that, or its availability, changed.
    """

    _shown: tuple[object, ...] | None = None

    def _compute(self) -> tuple[object, ...] | None:
        """Update the shown values and return them; None: write on every update."""
        return None

    @callback
    def _handle_coordinator_update(self) -> None:
        shown = self._compute()
        if shown is not None:
            shown = (*shown, self.available)
            if shown == self._shown:
                return
            self._shown = shown
        self.async_write_ha_state()


class MeterEntity(PrepaidEntity):
    """An entity of a sub-meter's device."""

    _attr_has_entity_name = True

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


class TenantEntity(PrepaidEntity):
    """An entity of a tenant account's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: PrepaidCoordinator, tenant: TenantConfig, key: str) -> None:
        super().__init__(coordinator)
        self.tenant = tenant
        self._attr_unique_id = f"{coordinator.site_id}_tenant_{tenant.id}_{key}"
        self._attr_device_info = tenant_device_info(coordinator, tenant)

    @property
    def tenant_state(self) -> TenantState:
        """The tenant's wallet and supply state."""
        return self.coordinator.data.tenants[self.tenant.id]
