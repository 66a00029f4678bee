"""The site coordinator: poll meters, charge wallets, apply the supply policy.

Glue only: meter values come from ``meters/``, money rules from ``engine/``,
persistence from ``store/``. Charging and the supply policy run under one
lock, so a top-up and a poll never interleave their balance updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Concatenate

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from sqlalchemy.orm import Session

from .const import (
    CONF_BUSES,
    CONF_CURRENCY,
    CONF_CUT_OFF_ENABLED,
    CONF_METERS,
    CONF_OFFLINE_AFTER,
    CONF_PRICE,
    CONF_SCAN_INTERVAL,
    CONF_TENANTS,
    DEFAULT_BUS,
    DEFAULT_OFFLINE_AFTER,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    EVENT_ALARM,
    EVENT_CUT_OFF,
    EVENT_RECONNECTED,
)
from .engine.money import ZERO
from .engine.policy import SupplyPolicy, SupplyState, decide_supply
from .meters.modbus import BusConfig, MeterIOError, ModbusBus
from .meters.reader import MeterReader, MeterSample, RelayMismatch
from .store import Store, ledger
from .store.ledger import BalanceCache, MeterCharge, TopUpResult

_LOGGER = logging.getLogger(__name__)

type PrepaidConfigEntry = ConfigEntry[PrepaidRuntimeData]

#: Where in its counter's range a value must be for a fall to count as a
#: rollover (last and first tenth) rather than a reset or a swapped meter.
ROLLOVER_BAND = Decimal("0.1")


@dataclass(frozen=True, kw_only=True)
class MeterConfig:
    """A sub-meter: a profile at a device id on a bus, or an existing entity."""

    id: str
    name: str
    device_id: int = 0
    profile: str = DEFAULT_PROFILE
    #: The bus id (``default`` is the entry's own TCP bus).
    bus: str = DEFAULT_BUS
    #: ``modbus`` or ``entity`` (an existing Home Assistant energy sensor).
    source: str = "modbus"
    #: Current and voltage transformer ratios and a multiplier, as decimal strings.
    ct_ratio: str = "1"
    pt_ratio: str = "1"
    multiplier: str = "1"
    #: The register map when ``profile`` is ``custom`` (validated like a profile file).
    custom_profile: dict[str, Any] | None = None
    energy_entity: str | None = None
    power_entity: str | None = None
    relay_entity: str | None = None


@dataclass(frozen=True, kw_only=True)
class TenantConfig:
    """A tenant account and the meters charged to its wallet."""

    id: str
    name: str
    meters: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    """Everything the coordinator needs from the config entry."""

    name: str
    host: str
    port: int
    buses: tuple[BusConfig, ...]
    currency: str
    price: Decimal
    policy: SupplyPolicy
    scan_interval: int
    offline_after: int
    meters: tuple[MeterConfig, ...]
    tenants: tuple[TenantConfig, ...]

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any]) -> SiteConfig:
        """Read the site from the entry's data (connection) and options (billing, building)."""
        opts = entry.options
        host, port = entry.data[CONF_HOST], int(entry.data[CONF_PORT])
        # The entry's own TCP bus is ``default``; more buses (RTU over a serial
        # port, RTU-over-TCP gateways, more TCP gateways) come from the options,
        # where a bus with id ``default`` replaces the entry's (timeouts, kind).
        buses = {DEFAULT_BUS: BusConfig(id=DEFAULT_BUS, host=host, port=port)}
        for spec in opts.get(CONF_BUSES, []):
            bus = BusConfig.from_dict(spec)
            buses[bus.id] = bus
        return cls(
            name=entry.data[CONF_NAME],
            host=host,
            port=port,
            buses=tuple(buses.values()),
            currency=entry.data[CONF_CURRENCY],
            price=Decimal(str(opts[CONF_PRICE])),
            policy=SupplyPolicy(cut_off_enabled=bool(opts.get(CONF_CUT_OFF_ENABLED, False))),
            scan_interval=int(opts.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)),
            offline_after=max(1, int(opts.get(CONF_OFFLINE_AFTER, DEFAULT_OFFLINE_AFTER))),
            meters=tuple(MeterConfig(**m) for m in opts.get(CONF_METERS, [])),
            tenants=tuple(
                TenantConfig(id=t["id"], name=t["name"], meters=tuple(t["meters"]))
                for t in opts.get(CONF_TENANTS, [])
            ),
        )

    def tenant_of(self, meter_id: str) -> TenantConfig | None:
        """The tenant whose wallet pays for the meter, if any."""
        return next((t for t in self.tenants if meter_id in t.meters), None)


@dataclass
class MeterState:
    """The latest known state of a meter."""

    sample: MeterSample | None = None
    failures: int = 0
    #: Failed polls in a row after which the meter is shown offline.
    offline_after: int = DEFAULT_OFFLINE_AFTER

    @property
    def online(self) -> bool:
        """Whether the meter answered recently enough."""
        return self.sample is not None and self.failures < self.offline_after


@dataclass
class TenantState:
    """A tenant's wallet balance (from the ledger) and supply state."""

    balance: Decimal = ZERO
    supply: SupplyState = SupplyState.ON
    locked: bool = False
    forced_on: bool = False


@dataclass
class SiteData:
    """What the entities show."""

    meters: dict[str, MeterState] = field(default_factory=dict)
    tenants: dict[str, TenantState] = field(default_factory=dict)


@dataclass(kw_only=True)
class PrepaidRuntimeData:
    """Everything a loaded site entry owns."""

    site: SiteConfig
    store: Store
    buses: dict[str, ModbusBus]
    coordinator: PrepaidCoordinator


class PrepaidCoordinator(DataUpdateCoordinator[SiteData]):
    """Polls the site's meters and keeps wallets and relays in step."""

    config_entry: PrepaidConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PrepaidConfigEntry,
        site: SiteConfig,
        store: Store,
        readers: dict[str, MeterReader],
    ) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {site.name}",
            update_interval=timedelta(seconds=site.scan_interval),
        )
        self.site = site
        self.store = store
        self.readers = readers
        self.site_id = entry.entry_id
        self._lock = asyncio.Lock()
        self._balances = BalanceCache()
        self._cursors: dict[str, Decimal] = {}
        self.data = SiteData(
            meters={m.id: MeterState(offline_after=site.offline_after) for m in site.meters},
            tenants={t.id: TenantState() for t in site.tenants},
        )

    async def _async_setup(self) -> None:
        """Load where charging got to, the balances and the manual overrides."""
        await self.store.run(
            ledger.sync_site,
            site=self.site_id,
            name=self.site.name,
            currency=self.site.currency,
            meters=[(m.id, m.name, m.device_id, m.profile) for m in self.site.meters],
            tenants=[(t.id, t.name, t.meters) for t in self.site.tenants],
            at=dt_util.utcnow(),
        )
        cursors = await self.store.run(ledger.cursors, self.site_id)
        self._cursors = {meter: c.value for meter, c in cursors.items()}
        balances = await self.store.run(self._balances.refresh, self.site_id)
        controls = await self.store.run(ledger.tenant_controls, self.site_id)
        for tenant_id, state in self.data.tenants.items():
            state.balance = balances.get(tenant_id, ZERO)
            state.locked, state.forced_on = controls.get(tenant_id, (False, False))

    async def _async_update_data(self) -> SiteData:
        now = dt_util.utcnow()
        data = self.data
        # Buses are polled concurrently, the meters of one bus in sequence.
        by_bus: dict[str, list[MeterConfig]] = {}
        for meter in self.site.meters:
            by_bus.setdefault(meter.bus if meter.source == "modbus" else "", []).append(meter)
        await asyncio.gather(*(self._poll_bus(meters) for meters in by_bus.values()))
        if not any(m.online for m in data.meters.values()):
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="bus_unreachable",
                translation_placeholders={"host": self.site.host, "port": str(self.site.port)},
            )
        async with self._lock:
            await self._charge(data, now)
            for tenant in self.site.tenants:
                await self._apply_policy(tenant)
        return data

    async def _poll_bus(self, meters: list[MeterConfig]) -> None:
        for meter in meters:
            await self._poll_meter(meter)

    async def _poll_meter(self, meter: MeterConfig) -> None:
        """Read one meter; log and raise an alarm once when it goes away and comes back."""
        state = self.data.meters[meter.id]
        try:
            sample = await self.readers[meter.id].read()
        except MeterIOError as err:
            state.failures += 1
            if state.failures == state.offline_after:
                _LOGGER.warning("Meter %s stopped answering: %s", meter.name, err)
                self._alarm(meter, "offline", error=str(err))
            return
        if state.failures >= state.offline_after:
            _LOGGER.info("Meter %s is answering again", meter.name)
            self._alarm(meter, "online", missed_polls=state.failures)
        state.sample, state.failures = sample, 0

    def _alarm(self, meter: MeterConfig, kind: str, **details: Any) -> None:
        self.hass.bus.async_fire(
            EVENT_ALARM,
            {
                "entry_id": self.site_id,
                "meter": meter.id,
                "meter_name": meter.name,
                "kind": kind,
                **details,
            },
        )

    async def _charge(self, data: SiteData, now: datetime) -> None:
        """Charge every online meter's counter delta to its tenant's wallet."""
        charges: list[MeterCharge] = []
        for meter in self.site.meters:
            state = data.meters[meter.id]
            if not state.online or state.sample is None:
                continue
            value = state.sample.energy
            previous = self._cursors.get(meter.id)
            if previous is not None and value == previous:
                continue
            tenant = self.site.tenant_of(meter.id)
            used = ZERO
            if previous is not None and value > previous:
                used = value - previous
            elif previous is not None and value < previous:
                used = self._counter_fell(meter, previous, value)
            amount = used * self.site.price if tenant is not None else ZERO
            charges.append(
                MeterCharge(
                    meter=meter.id,
                    tenant=tenant.id if tenant else "",
                    value=value,
                    taken_at=now,
                    amount=amount,
                )
            )
        if not charges:
            return
        balances = await self.store.run(self._charge_and_balance, charges)
        for charge in charges:
            self._cursors[charge.meter] = charge.value
        self._set_balances(balances)

    def _counter_fell(self, meter: MeterConfig, previous: Decimal, value: Decimal) -> Decimal:
        """Energy used when a counter reads lower than before: the wrapped delta or nothing.

        A fall from the last tenth of the counter's range into the first tenth
        is a rollover and the energy across the wrap is charged; any other fall
        (reset, swapped meter) is never charged as negative and raises an alarm.
        """
        wrap = self.readers[meter.id].energy_wrap
        band = None if wrap is None else wrap * ROLLOVER_BAND
        if wrap is not None and band is not None and previous >= wrap - band and value < band:
            used = wrap - previous + value
            _LOGGER.info("Meter %s counter rolled over (%s -> %s)", meter.name, previous, value)
            self._alarm(meter, "counter_rollover", previous=str(previous), value=str(value))
            return used
        _LOGGER.warning(
            "Meter %s counter went backwards (%s -> %s): not charged", meter.name, previous, value
        )
        self._alarm(meter, "counter_reset", previous=str(previous), value=str(value))
        return ZERO

    def _charge_and_balance(
        self, session: Session, charges: list[MeterCharge]
    ) -> dict[str, Decimal]:
        ledger.charge_meters(session, self.site_id, charges)
        return self._balances.refresh(session, self.site_id)

    def _top_up_and_balance(
        self, session: Session, /, **kwargs: Any
    ) -> tuple[TopUpResult, dict[str, Decimal]]:
        result = ledger.top_up(session, site=self.site_id, **kwargs)
        return result, self._balances.refresh(session, self.site_id)

    def _set_balances(self, balances: dict[str, Decimal]) -> None:
        for tenant_id, state in self.data.tenants.items():
            state.balance = balances.get(tenant_id, ZERO)

    async def async_top_up(
        self, tenant_id: str, amount: Decimal, method: str, reference: str, memo: str
    ) -> TopUpResult:
        """Credit a wallet and reconnect at once if the balance allows it."""
        async with self._lock:
            result, balances = await self.store.run(
                self._top_up_and_balance,
                tenant=tenant_id,
                amount=amount,
                method=method,
                reference=reference,
                at=dt_util.utcnow(),
                memo=memo,
            )
            self._set_balances(balances)
            tenant = next(t for t in self.site.tenants if t.id == tenant_id)
            await self._apply_policy(tenant)
        self.async_update_listeners()
        return result

    async def async_ledger_write[**P, R](
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a store write (refund, adjustment, settlement, readings) and bring state in step.

        Under the charging lock: afterwards the balances, cursors and manual
        overrides are reloaded from the store and the supply policy is applied,
        so a refund can cut off and a move-out opens the relay at once.
        """

        def write(session: Session) -> tuple[R, dict[str, Decimal], dict[str, Decimal], Any]:
            result = fn(session, *args, **kwargs)
            balances = self._balances.refresh(session, self.site_id)
            charged = {m: c.value for m, c in ledger.cursors(session, self.site_id).items()}
            return result, balances, charged, ledger.tenant_controls(session, self.site_id)

        async with self._lock:
            result, balances, charged, controls = await self.store.run(write)
            self._set_balances(balances)
            self._cursors = charged
            for tenant in self.site.tenants:
                state = self.data.tenants[tenant.id]
                state.locked, state.forced_on = controls.get(tenant.id, (False, False))
                await self._apply_policy(tenant)
        self.async_update_listeners()
        return result

    async def async_set_lock(self, tenant_id: str, locked: bool) -> None:
        """Lock a tenant's supply off (or release the lock) and apply it now."""
        async with self._lock:
            state = self.data.tenants[tenant_id]
            await self.store.run(
                ledger.set_tenant_control, self.site_id, tenant_id, locked, state.forced_on
            )
            state.locked = locked
            tenant = next(t for t in self.site.tenants if t.id == tenant_id)
            await self._apply_policy(tenant)
        self.async_update_listeners()

    async def _apply_policy(self, tenant: TenantConfig) -> None:
        """Switch the tenant's relays to what the policy wants; fire an event on a change."""
        state = self.data.tenants[tenant.id]
        decision = decide_supply(
            state.balance, self.site.policy, locked=state.locked, forced_on=state.forced_on
        )
        switched = False
        for meter_id in tenant.meters:
            meter = next(m for m in self.site.meters if m.id == meter_id)
            mstate = self.data.meters[meter_id]
            sample = mstate.sample
            if not mstate.online or sample is None or sample.relay_closed is None:
                continue
            if sample.relay_closed == decision.relay_closed:
                continue
            try:
                confirmed = await self.readers[meter_id].set_relay(decision.relay_closed)
            except RelayMismatch as err:
                _LOGGER.warning("Relay of meter %s did not obey: %s", meter.name, err)
                mstate.sample = MeterSample(values=sample.values, relay_closed=err.confirmed)
                self._alarm(
                    meter, "relay_mismatch", wanted_closed=err.wanted, relay_closed=err.confirmed
                )
                continue
            except MeterIOError as err:
                _LOGGER.warning("Relay of meter %s not switched: %s", meter.name, err)
                continue
            mstate.sample = MeterSample(values=sample.values, relay_closed=confirmed)
            switched = True
        state.supply = decision.state
        if not switched:
            return
        payload = {
            "entry_id": self.site_id,
            "tenant": tenant.id,
            "tenant_name": tenant.name,
            "balance": str(state.balance),
            "currency": self.site.currency,
        }
        if decision.state is SupplyState.CUT_OFF:
            self.hass.bus.async_fire(EVENT_CUT_OFF, payload)
        elif decision.relay_closed:
            self.hass.bus.async_fire(EVENT_RECONNECTED, payload)
