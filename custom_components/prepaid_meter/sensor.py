"""Sensors: meter energy, power and the like; tenant balance, costs, supply and warning state."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import (
    MeterConfig,
    PrepaidConfigEntry,
    PrepaidCoordinator,
    TenantConfig,
    TenantState,
)
from .costs import unit_price
from .engine.costs import CostSums, remaining_energy
from .engine.money import DEFAULT_ROUNDING, minor_unit, quantum
from .engine.policy import SupplyState, threshold
from .engine.warnings import WarningLevel, warning_level
from .entity import MeterEntity, TenantEntity, async_drop_unprovided

PARALLEL_UPDATES = 0

#: The alias a tenant's balance sensor is given, for voice questions (English,
#: the language of Home Assistant's sentence "what is the <name>").
VOICE_ALIAS = "Balance of {tenant}"
VOICE_ALIAS_OFFERED = "voice_alias_offered"


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A meter value: which register of the sample it shows."""

    register: str
    #: Per-phase values: the meter's total of the same quantity. Where the
    #: meter has the total, the phases are off by default (the total is what
    #: a landlord watches); where it has not, they are its only reading.
    total: str | None = None


def _phases(
    key: str,
    device_class: SensorDeviceClass,
    unit: str,
) -> tuple[MeterSensorDescription, ...]:
    """Per-phase values of three-phase meters, off by default where the meter has the total."""
    return tuple(
        MeterSensorDescription(
            key=f"{key}_l{n}",
            translation_key=f"{key}_phase",
            translation_placeholders={"phase": f"L{n}"},
            register=f"{key}_l{n}",
            device_class=device_class,
            state_class=SensorStateClass.MEASUREMENT,
            native_unit_of_measurement=unit,
            entity_registry_enabled_default=False,
            total=key,
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
        # The grid's, the same on every meter: a diagnostic, off by default.
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
    ),
    *_phases("power", SensorDeviceClass.POWER, UnitOfPower.WATT),
    *_phases("voltage", SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT),
    *_phases("current", SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE),
)


@dataclass(frozen=True, slots=True)
class TenantReading:
    """One tenant as its sensors read it at a coordinator update."""

    coordinator: PrepaidCoordinator
    tenant: TenantConfig
    state: TenantState
    now: datetime

    @property
    def costs(self) -> CostSums:
        """Today's, this period's and all charges so far (kept in memory, no query)."""
        return self.coordinator.costs.sums(self.tenant.id, self.now)

    @property
    def cut_off_at(self) -> Decimal:
        """The balance at which the supply is due for a cut-off (emergency credit lowers it)."""
        return threshold(self.tenant.policy, self.state.emergency)


@dataclass(frozen=True, kw_only=True)
class TenantSensorDescription(SensorEntityDescription):
    """A tenant value computed from the tenant's state."""

    value_fn: Callable[[TenantReading], StateType | Decimal]
    #: When the value's sum last started again (``state_class`` total sensors).
    last_reset_fn: Callable[[TenantReading], datetime] | None = None
    monetary: bool = False


TENANT_SENSORS: tuple[TenantSensorDescription, ...] = (
    TenantSensorDescription(
        key="balance",
        translation_key="balance",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.state.balance,
    ),
    TenantSensorDescription(
        key="supply",
        translation_key="supply",
        device_class=SensorDeviceClass.ENUM,
        options=[s.value for s in SupplyState],
        value_fn=lambda r: r.state.supply.value,
    ),
    TenantSensorDescription(
        key="days_left",
        translation_key="days_left",
        native_unit_of_measurement=UnitOfTime.DAYS,
        suggested_display_precision=1,
        value_fn=lambda r: r.state.days_left,
    ),
    TenantSensorDescription(
        key="emergency_credit",
        translation_key="emergency_credit",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.state.emergency,
    ),
    TenantSensorDescription(
        key="remaining_energy",
        translation_key="remaining_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        value_fn=lambda r: remaining_energy(
            r.state.balance, unit_price(r.coordinator.site, r.tenant, r.now)
        ),
    ),
    TenantSensorDescription(
        key="warning_level",
        translation_key="warning_level",
        device_class=SensorDeviceClass.ENUM,
        options=[w.value for w in WarningLevel],
        # A postpaid account is not warned for its balance (it pays against bills).
        value_fn=lambda r: (
            WarningLevel.NONE.value
            if r.tenant.postpaid
            else warning_level(
                r.state.balance, r.state.days_left, r.tenant.warnings, r.cut_off_at
            ).value
        ),
    ),
    TenantSensorDescription(
        key="cost_today",
        translation_key="cost_today",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.costs.today,
        last_reset_fn=lambda r: r.coordinator.costs.day_start(r.now),
    ),
    TenantSensorDescription(
        key="cost_period",
        translation_key="cost_period",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.costs.period,
        last_reset_fn=lambda r: r.coordinator.costs.period_start(r.now),
    ),
    # The Energy dashboard's "entity tracking the total costs" of the tenant's
    # consumption: everything charged since the account opened, never reset.
    TenantSensorDescription(
        key="cost_total",
        translation_key="cost_total",
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.costs.total,
    ),
)

#: Sensors of prepaid accounts only: a postpaid one uses first and pays against
#: bills, so credit left, its forecast and low-balance warnings mean nothing there.
PREPAID_ONLY = frozenset({"days_left", "emergency_credit", "remaining_energy", "warning_level"})

#: Sensors of postpaid accounts only.
POSTPAID_SENSORS: tuple[TenantSensorDescription, ...] = (
    TenantSensorDescription(
        key="amount_due",
        translation_key="amount_due",
        device_class=SensorDeviceClass.MONETARY,
        suggested_display_precision=2,
        monetary=True,
        value_fn=lambda r: r.state.amount_due,
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
            MeterSensor(coordinator, meter, _for_meter(d, names))
            for d in METER_SENSORS
            if d.register in names
        )
    values = TenantValues(coordinator)
    for tenant in coordinator.site.tenants:
        entities.extend(TenantSensor(values, tenant, d) for d in _descriptions(tenant))
    async_drop_unprovided(hass, entry, "sensor", entities)
    async_add_entities(entities)


#: A postpaid account's sensors: no credit sensors, and what it owes.
_POSTPAID_ACCOUNT = (
    *(d for d in TENANT_SENSORS if d.key not in PREPAID_ONLY),
    *POSTPAID_SENSORS,
)


def _descriptions(tenant: TenantConfig) -> tuple[TenantSensorDescription, ...]:
    """The sensors of a tenant account (prepaid or postpaid)."""
    return _POSTPAID_ACCOUNT if tenant.postpaid else TENANT_SENSORS


def shown_money(amount: Decimal, currency: str) -> Decimal:
    """A money value as a sensor shows it: rounded half-up to the currency's minor unit.

    The ledger keeps full precision (a charge is price times energy, taxes
    included); a state with twenty decimals helps nobody in the UI, the
    history or the recorder, and would be written again for every change in
    its last digit. The exact figures stay in the ledger, the tenant page's
    ledger lines and the actions' responses.
    """
    return _to_minor_unit(amount, quantum(currency))


def _to_minor_unit(amount: Decimal, minor: Decimal) -> Decimal:
    shown = amount.quantize(minor, rounding=DEFAULT_ROUNDING)
    return shown.copy_abs() if shown.is_zero() else shown  # no "-0.00"


class TenantValues:
    """What every tenant sensor shows, computed once per tenant and coordinator update.

    An update reaches every sensor of every tenant (nine on a prepaid account);
    each one building the tenant's reading for itself (the clock, the cost
    sums, the price in force, the warning level) cost more than writing the
    states that changed. The first sensor of a tenant asked after an update
    computes the values of all the tenant's sensors; the others look theirs up.
    """

    def __init__(self, coordinator: PrepaidCoordinator) -> None:
        self.coordinator = coordinator
        self._minor = quantum(coordinator.site.currency)
        self._update = -1
        self._shown: dict[str, dict[str, tuple[Any, ...]]] = {}

    def shown(self, tenant: TenantConfig, key: str) -> tuple[Any, ...]:
        """Availability, the value and, for totals, when the sum started, as of this update."""
        coordinator = self.coordinator
        if self._update != coordinator.updates:
            self._update = coordinator.updates
            self._shown.clear()
        if (values := self._shown.get(tenant.id)) is None:
            values = self._shown[tenant.id] = self._values(tenant)
        return values[key]

    def _values(self, tenant: TenantConfig) -> dict[str, tuple[Any, ...]]:
        coordinator = self.coordinator
        available = coordinator.last_update_success
        reading = TenantReading(
            coordinator, tenant, coordinator.data.tenants[tenant.id], dt_util.utcnow()
        )
        values: dict[str, tuple[Any, ...]] = {}
        for description in _descriptions(tenant):
            value = description.value_fn(reading)
            if description.monetary and isinstance(value, Decimal):
                value = _to_minor_unit(value, self._minor)
            if description.last_reset_fn is None:
                values[description.key] = (available, value)
            else:
                values[description.key] = (available, value, description.last_reset_fn(reading))
        return values


def _for_meter(
    description: MeterSensorDescription, names: Collection[str]
) -> MeterSensorDescription:
    """A per-phase value is on by default on a meter without the total."""
    if description.total is None or description.total in names:
        return description
    return replace(description, entity_registry_enabled_default=True)


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
        self._show(self._shown_key())

    def _shown_key(self) -> Any:
        """Availability and the register's decoded value."""
        sample = self.meter_state.sample
        register = self.entity_description.register
        return (self.available, None if sample is None else sample.values.get(register))

    def _show(self, shown: Any) -> None:
        self._attr_native_value = shown[1]


class TenantSensor(TenantEntity, SensorEntity):
    """A value of a tenant account."""

    entity_description: TenantSensorDescription

    def __init__(
        self,
        values: TenantValues,
        tenant: TenantConfig,
        description: TenantSensorDescription,
    ) -> None:
        coordinator = values.coordinator
        super().__init__(coordinator, tenant, description.key)
        self.entity_description = description
        self._values = values
        if description.monetary:
            currency = coordinator.site.currency
            self._attr_native_unit_of_measurement = currency
            # Shown to the currency's minor unit (see ``shown_money``), no more, no less.
            self._attr_suggested_display_precision = minor_unit(currency)
        self._show(self._shown_key())

    def _shown_key(self) -> Any:
        """Availability, the tenant's value and, for totals, when its sum started."""
        return self._values.shown(self.tenant, self.entity_description.key)

    def _show(self, shown: Any) -> None:
        self._attr_native_value = shown[1]
        if len(shown) > 2:
            self._attr_last_reset = shown[2]

    async def async_added_to_hass(self) -> None:
        """Offer the balance's voice name once (see ``VOICE_ALIAS``)."""
        await super().async_added_to_hass()
        if self.entity_description.key == "balance":
            self._offer_voice_alias()

    def _offer_voice_alias(self) -> None:
        """Give a new balance sensor the alias "Balance of <tenant>", once.

        Home Assistant's assistant matches a question against entity names
        and aliases only, and the entity's name is "<tenant> Balance"; with
        the alias "what is the balance of Shop 12" is answered too. It is
        offered once (noted in the entity's options): an alias the landlord
        removes or changes stays as they left it.
        """
        entry = self.registry_entry
        if entry is None:
            return
        options: Mapping[str, Any] = entry.options.get(DOMAIN) or {}
        if options.get(VOICE_ALIAS_OFFERED):
            return
        registry = er.async_get(self.hass)
        alias = VOICE_ALIAS.format(tenant=self.tenant.name)
        registry.async_update_entity(self.entity_id, aliases={*entry.aliases, alias})
        registry.async_update_entity_options(
            self.entity_id, DOMAIN, {**options, VOICE_ALIAS_OFFERED: True}
        )
