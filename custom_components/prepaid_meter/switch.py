"""The relay switch of a meter.

Turning it off locks the tenant's supply (kept off whatever the balance);
turning it on releases the lock, and the supply policy decides again.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchDeviceClass, SwitchEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterConfig, PrepaidConfigEntry, PrepaidCoordinator
from .entity import MeterEntity

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a relay switch for every meter whose profile has a relay and that has a tenant."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        RelaySwitch(coordinator, meter)
        for meter in coordinator.site.meters
        if coordinator.readers[meter.id].has_relay
        and coordinator.site.tenant_of(meter.id) is not None
    )


class RelaySwitch(MeterEntity, SwitchEntity):
    """The meter's supply relay (on = closed, supply on)."""

    _attr_device_class = SwitchDeviceClass.SWITCH
    _attr_translation_key = "relay"

    def __init__(self, coordinator: PrepaidCoordinator, meter: MeterConfig) -> None:
        super().__init__(coordinator, meter, "relay")
        tenant = coordinator.site.tenant_of(meter.id)
        assert tenant is not None
        self.tenant_id = tenant.id

    @property
    def is_on(self) -> bool | None:
        """Whether the relay is closed, as last read back from the meter."""
        sample = self.meter_state.sample
        return None if sample is None else sample.relay_closed

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Release a manual lock; the policy then closes the relay if credit allows."""
        await self.coordinator.async_set_lock(self.tenant_id, locked=False)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Lock the supply off."""
        await self.coordinator.async_set_lock(self.tenant_id, locked=True)
