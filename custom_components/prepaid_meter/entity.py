"""Base entities: one device per meter, one per tenant account."""

from __future__ import annotations

from typing import Any

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterConfig, MeterState, PrepaidCoordinator, TenantConfig, TenantState


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

    @callback
    def _handle_coordinator_update(self) -> None:
        shown = self._shown_key()
        if shown == self._shown:
            return
        self._shown = shown
        self.async_write_ha_state()


class MeterEntity(SiteEntity):
    """An entity of a sub-meter's device."""

    def __init__(self, coordinator: PrepaidCoordinator, meter: MeterConfig, key: str) -> None:
        super().__init__(coordinator)
        self.meter = meter
        reader = coordinator.readers[meter.id]
        self._attr_unique_id = f"{coordinator.site_id}_meter_{meter.id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{coordinator.site_id}_meter_{meter.id}")},
            name=f"{meter.name} meter",
            manufacturer=reader.manufacturer,
            model=reader.model,
            serial_number=str(meter.device_id) if meter.source == "modbus" else None,
        )

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
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{coordinator.site_id}_tenant_{tenant.id}")},
            name=tenant.name,
            manufacturer="Prepaid Meter",
            model="Tenant account",
        )

    @property
    def tenant_state(self) -> TenantState:
        """The tenant's wallet and supply state."""
        return self.coordinator.data.tenants[self.tenant.id]
