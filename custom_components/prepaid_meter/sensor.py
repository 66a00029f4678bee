"""Sensors: meter energy and power; tenant balance and supply state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import (
    MeterConfig,
    MeterState,
    PrepaidConfigEntry,
    PrepaidCoordinator,
    TenantConfig,
    TenantState,
)
from .engine.policy import SupplyState
from .entity import MeterEntity, TenantEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A meter value: which register of the sample it shows."""

    register: str


def _phases(
    key: str,
    device_class: SensorDeviceClass,
    unit: str,
) -> tuple[MeterSensorDescription, ...]:
    """Per-phase values of three-phase meters, off by default (the totals are what bills use)."""
    return tuple(
        MeterSensorDescription(
            key=f"{key}_l{n}",
            translation_key=f"{key}_phase",
            translation_placeholders={"phase": f"L{n}"},
            register=f"{key}_l{n}",
            device_class=device_class,
            state_class=SensorStateClass.MEASUREMENT,
            native_unit_of_measurement=unit,
        )
        for n in (1, 2, 3)
    )


METER_SENSORS: tuple[MeterSensorDescription, ...] = (
    MeterSensorDescription(
        key="energy",
        translation_key="energy",
        register="energy_import",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    ),
    MeterSensorDescription(
        key="energy_export",
        translation_key="energy_export",
        register="energy_export",
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    ),
    MeterSensorDescription(
        key="power",
        translation_key="power",
        register="power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.WATT,
    ),
    MeterSensorDescription(
        key="voltage",
        translation_key="voltage",
        register="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
    ),
    MeterSensorDescription(
        key="current",
        translation_key="current",
        register="current",
        device_class=SensorDeviceClass.CURRENT,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
    ),
    MeterSensorDescription(
        key="power_factor",
        translation_key="power_factor",
        register="power_factor",
        device_class=SensorDeviceClass.POWER_FACTOR,
        state_class=SensorStateClass.MEASUREMENT,
    ),
    MeterSensorDescription(
        key="frequency",
        translation_key="frequency",
        register="frequency",
        device_class=SensorDeviceClass.FREQUENCY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
    ),
    *_phases("power", SensorDeviceClass.POWER, UnitOfPower.WATT),
    *_phases("voltage", SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT),
    *_phases("current", SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE),
)


@dataclass(frozen=True, kw_only=True)
class TenantSensorDescription(SensorEntityDescription):
    """A tenant value computed from the tenant's state."""

    value_fn: Callable[[TenantState], StateType | Decimal]
    monetary: bool = False


TENANT_SENSORS: tuple[TenantSensorDescription, ...] = (
    TenantSensorDescription(
        key="balance",
        translation_key="balance",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda s: s.balance,
    ),
    TenantSensorDescription(
        key="supply",
        translation_key="supply",
        device_class=SensorDeviceClass.ENUM,
        options=[s.value for s in SupplyState],
        value_fn=lambda s: s.supply.value,
    ),
    TenantSensorDescription(
        key="days_left",
        translation_key="days_left",
        native_unit_of_measurement=UnitOfTime.DAYS,
        suggested_display_precision=1,
        value_fn=lambda s: s.days_left,
    ),
    TenantSensorDescription(
        key="emergency_credit",
        translation_key="emergency_credit",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda s: s.emergency,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every meter and tenant."""
    coordinator = entry.runtime_data.coordinator
    entities: list[SensorEntity] = []
    for meter in coordinator.site.meters:
        names = coordinator.readers[meter.id].names
        entities.extend(
            MeterSensor(coordinator, meter, d) for d in METER_SENSORS if d.register in names
        )
    for tenant in coordinator.site.tenants:
        entities.extend(TenantSensor(coordinator, tenant, d) for d in TENANT_SENSORS)
    async_add_entities(entities)


class MeterSensor(MeterEntity, SensorEntity):
    """A value read from a meter."""

    entity_description: MeterSensorDescription

    def __init__(
        self,
        coordinator: PrepaidCoordinator,
        meter: MeterConfig,
        description: MeterSensorDescription,
    ) -> None:
        super().__init__(coordinator, meter, description.key)
        self.entity_description = description

    def _shown_key(self) -> Any:
        return (self.available, self.native_value)

    @property
    def native_value(self) -> Decimal | None:
        """The register's decoded value."""
        state: MeterState = self.meter_state
        if state.sample is None:
            return None
        return state.sample.values.get(self.entity_description.register)


class TenantSensor(TenantEntity, SensorEntity):
    """A value of a tenant account."""

    entity_description: TenantSensorDescription

    def __init__(
        self,
        coordinator: PrepaidCoordinator,
        tenant: TenantConfig,
        description: TenantSensorDescription,
    ) -> None:
        super().__init__(coordinator, tenant, description.key)
        self.entity_description = description
        if description.monetary:
            self._attr_native_unit_of_measurement = coordinator.site.currency

    def _shown_key(self) -> Any:
        return (self.available, self.native_value, self.extra_state_attributes)

    @property
    def native_value(self) -> StateType | Decimal:
        """The tenant's value."""
        return self.entity_description.value_fn(self.tenant_state)
