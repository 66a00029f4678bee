"""Meter status and alarms: online, relay mismatch, tamper, evasion; tenant abnormal use.

Every alarm has a ``problem`` sensor on the device it concerns (a meter or a
tenant account); the state comes from the site's ``AlarmMonitor``. A postpaid
account has an ``overdue`` problem sensor (``receivables_runner``). Like every
site entity they write their state only when it changed (``SiteEntity``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .alarms_runner import RELAY_MISMATCH, TAMPER, AlarmMonitor, kw_text
from .coordinator import MeterConfig, PrepaidConfigEntry, PrepaidCoordinator, TenantConfig
from .engine.alarms import KINDS, SPIKE
from .entity import MeterEntity, TenantEntity, async_drop_unprovided
from .sharing_runner import CONF_MASTER_METER

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the status and alarm sensors of every meter and tenant."""
    coordinator = entry.runtime_data.coordinator
    site = coordinator.site
    entities: list[BinarySensorEntity] = [OnlineSensor(coordinator, meter) for meter in site.meters]
    entities.extend(
        MeterAlarmSensor(coordinator, meter, description)
        for meter in site.meters
        for description in METER_ALARMS
        if description.has_fn(coordinator, meter)
    )
    entities.extend(
        TenantAlarmSensor(coordinator, tenant, description)
        for tenant in site.tenants
        for description in TENANT_ALARMS
        if tenant.use_limits.enabled(description.key)
    )
    entities.extend(
        OverdueSensor(coordinator, tenant) for tenant in site.tenants if tenant.postpaid
    )
    async_drop_unprovided(hass, entry, "binary_sensor", entities)
    async_add_entities(entities)


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


@dataclass(frozen=True, kw_only=True)
class MeterAlarmDescription(BinarySensorEntityDescription):
    """A meter alarm: whether the meter has it, and whether it is on."""

    has_fn: Callable[[PrepaidCoordinator, MeterConfig], bool]
    is_on_fn: Callable[[AlarmMonitor, str], bool]


METER_ALARMS = (
    MeterAlarmDescription(
        key=RELAY_MISMATCH,
        translation_key=RELAY_MISMATCH,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        has_fn=lambda c, m: c.readers[m.id].has_relay and c.site.tenant_of(m.id) is not None,
        is_on_fn=lambda a, meter: meter in a.relay_wanted,
    ),
    MeterAlarmDescription(
        key=TAMPER,
        translation_key=TAMPER,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        has_fn=lambda c, m: True,
        is_on_fn=lambda a, meter: meter in a.tampered,
    ),
    MeterAlarmDescription(
        key="evasion",
        translation_key="evasion",
        device_class=BinarySensorDeviceClass.PROBLEM,
        has_fn=lambda c, m: c.config_entry.options.get(CONF_MASTER_METER) == m.id,
        is_on_fn=lambda a, meter: bool(a.evasion),
    ),
)


class MeterAlarmSensor(MeterEntity, BinarySensorEntity):
    """A meter alarm; like the online sensor it stays available while the meter is away."""

    entity_description: MeterAlarmDescription

    def __init__(
        self,
        coordinator: PrepaidCoordinator,
        meter: MeterConfig,
        description: MeterAlarmDescription,
    ) -> None:
        super().__init__(coordinator, meter, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Available whenever the coordinator has run once."""
        return self.coordinator.last_update_success or self.meter_state.sample is not None

    @property
    def is_on(self) -> bool:
        """Whether the alarm is on."""
        return self.entity_description.is_on_fn(self.coordinator.alarms, self.meter.id)


TENANT_ALARMS = tuple(
    BinarySensorEntityDescription(
        key=kind, translation_key=kind, device_class=BinarySensorDeviceClass.PROBLEM
    )
    for kind in KINDS
)


class TenantAlarmSensor(TenantEntity, BinarySensorEntity):
    """An abnormal-use alarm of a tenant (spike, sustained load, overload)."""

    def __init__(
        self,
        coordinator: PrepaidCoordinator,
        tenant: TenantConfig,
        description: BinarySensorEntityDescription,
    ) -> None:
        super().__init__(coordinator, tenant, description.key)
        self.entity_description = description

    @property
    def is_on(self) -> bool:
        """Whether the alarm is on."""
        return self.coordinator.alarms.tenant_active(self.tenant.id, self.entity_description.key)

    @property
    def extra_state_attributes(self) -> dict[str, str | None] | None:
        """(spike) The usual load for this hour of the week, kW (changes once an hour)."""
        if self.entity_description.key != SPIKE:
            return None
        usual = self.coordinator.alarms.tenants[self.tenant.id].usual_kw
        return {"usual_kw": None if usual is None else kw_text(usual)}


class OverdueSensor(TenantEntity, BinarySensorEntity):
    """On while a postpaid account has a bill open after its due date (and grace days)."""

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _attr_translation_key = "overdue"

    def __init__(self, coordinator: PrepaidCoordinator, tenant: TenantConfig) -> None:
        super().__init__(coordinator, tenant, "overdue")

    @property
    def is_on(self) -> bool:
        """Whether a bill is overdue."""
        return self.tenant_state.overdue
