"""The online status of every meter (diagnostic): does it answer its polls?"""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MeterConfig, PrepaidConfigEntry, PrepaidCoordinator
from .entity import MeterEntity

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an online sensor for every meter."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(OnlineSensor(coordinator, meter) for meter in coordinator.site.meters)


class OnlineSensor(MeterEntity, BinarySensorEntity):
    """On while the meter answers; off once it missed the configured number of polls.

    Unlike the meter's other entities it stays available while the meter is
    away: showing that it is away is its job.
    """

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "online"

    def __init__(self, coordinator: PrepaidCoordinator, meter: MeterConfig) -> None:
        super().__init__(coordinator, meter, "online")

    @property
    def available(self) -> bool:
        """Available whenever the coordinator runs (even with the meter away)."""
        return self.coordinator.last_update_success or self.meter_state.sample is not None

    @property
    def is_on(self) -> bool:
        """Whether the meter answers."""
        return self.meter_state.online
