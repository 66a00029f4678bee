"""Base entities: one device per meter, one per tenant account."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MeterConfig, MeterState, PrepaidCoordinator, TenantConfig, TenantState


class MeterEntity(CoordinatorEntity[PrepaidCoordinator]):
    """An entity of a sub-meter's device."""

    _attr_has_entity_name = True

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


class TenantEntity(CoordinatorEntity[PrepaidCoordinator]):
    """An entity of a tenant account's device."""

    _attr_has_entity_name = True

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
