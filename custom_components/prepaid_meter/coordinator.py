"""The site coordinator: poll meters, charge wallets, apply the supply policy.

Glue only: meter values come from ``meters/``, money rules from ``engine/``,
persistence from ``store/``. Charging and the supply policy run under one
lock, so a top-up and a poll never interleave their balance updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Concatenate

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util
from sqlalchemy.orm import Session

from . import store_faults
from .alarms_runner import AlarmMonitor
from .charging import Charger
from .const import (
    CONF_BILLING_DAY,
    CONF_BILLING_MODE,
    CONF_BUSES,
    CONF_CREDIT_LIMIT,
    CONF_CURRENCY,
    CONF_CUT_OFF_ENABLED,
    CONF_CUT_OFF_WHEN_OVERDUE,
    CONF_DAYS_LEFT_LEVEL,
    CONF_EMERGENCY_CREDIT,
    CONF_FORECAST_DAYS,
    CONF_FRIENDLY_HOURS,
    CONF_GRACE_MINUTES,
    CONF_HOLIDAYS,
    CONF_INTERVAL,
    CONF_METERS,
    CONF_OFFLINE_AFTER,
    CONF_OFFLINE_REPAIR_MINUTES,
    CONF_POLICY,
    CONF_PRICE,
    CONF_SCAN_INTERVAL,
    CONF_TENANTS,
    CONF_WARNING_LEVELS,
    DEFAULT_BILLING_DAY,
    DEFAULT_BUS,
    DEFAULT_FORECAST_DAYS,
    DEFAULT_INTERVAL,
    DEFAULT_OFFLINE_AFTER,
    DEFAULT_OFFLINE_REPAIR_MINUTES,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    EVENT_ALARM,
    EVENT_CUT_OFF,
    EVENT_EMERGENCY_CREDIT,
    EVENT_LOW_BALANCE,
    EVENT_RECONNECTED,
    INTERVALS,
)
from .costs import CostBook
from .engine.alarms import UseLimits, limits_from_options
from .engine.calendars import BillingPeriod, as_zone, interval_number, local_midnight
from .engine.money import ZERO
from .engine.policy import (
    SupplyPolicy,
    SupplyState,
    decide_supply,
    is_due,
    may_grant_emergency,
    parse_friendly_hours,
    threshold,
)
from .engine.prepaid import share
from .engine.tariffs import Tariff
from .engine.warnings import WarningLevels, days_left, evaluate_warnings, parse_levels
from .meters.modbus import BusConfig, MeterIOError, ModbusBus
from .meters.reader import MeterReader, MeterSample, RelayMismatch
from .receivables_runner import ReceivablesMonitor
from .store import Store, ledger, period_charges, policy_state
from .store.ledger import BalanceCache, MeterCharge
from .store.period_charges import has_period_charges
from .store.receivables import Evaluation
from .store.tariffs import TariffVersionChanged, sync_tariffs
from .subentries import site_options
from .tariff_config import SiteTariffs, site_tariffs

_LOGGER = logging.getLogger(__name__)

type PrepaidConfigEntry = ConfigEntry[PrepaidRuntimeData]

#: How often the days-left forecast re-reads the recent costs from the store.
#: Between reads the forecast is recomputed every poll from the cached costs
#: and the current balance: a week of costs barely moves in a quarter hour,
#: and the query reads every charge of the window (it must not run per poll).
FORECAST_REFRESH = timedelta(minutes=15)

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
    #: ``electricity`` or ``water`` (what the meter counts).
    utility: str = "electricity"
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
    """A tenant account, the meters charged to its wallet, and its supply policy."""

    id: str
    name: str
    meters: tuple[str, ...]
    policy: SupplyPolicy = field(default_factory=SupplyPolicy)
    warnings: WarningLevels = field(default_factory=WarningLevels)
    #: Postpaid: cut off while a bill is overdue (see ``receivables_runner``).
    cut_off_when_overdue: bool = False
    #: Abnormal-use alarm limits (see ``engine/alarms.py``).
    use_limits: UseLimits = field(default_factory=UseLimits)
    #: Uses first and pays against bills (option ``billing``): never cut off or
    #: warned for its balance, only cut off for an overdue bill (see ``receivables_runner``).
    postpaid: bool = False
    #: Local midnight of the tenant's move-in day (sub-entry field ``move_in``):
    #: when its account opens if the store does not know it yet.
    moved_in: datetime | None = None


#: A meter read in a poll: its tenant, its counter and the use since its last stored reading.
type Read = tuple[MeterConfig, TenantConfig | None, Decimal, Decimal]


def _decimal(value: Any, default: str = "0") -> Decimal:
    text = str(value).strip() if value not in (None, "") else default
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(value)
    return number


def _interval(value: Any) -> int:
    """The site's interval in minutes; anything but a listed interval is refused (ValueError)."""
    minutes = int(value)
    if minutes not in INTERVALS:
        raise ValueError(value)
    return minutes


def policy_from_options(
    opts: Mapping[str, Any], tz: str
) -> tuple[SupplyPolicy, WarningLevels, bool]:
    """The supply policy, warning levels and overdue rule from options (site or tenant).

    Raises ValueError (or ``PolicyError``, a ValueError) on a value that cannot be used.
    """
    credit_limit = _decimal(opts.get(CONF_CREDIT_LIMIT))
    emergency = _decimal(opts.get(CONF_EMERGENCY_CREDIT))
    grace = int(opts.get(CONF_GRACE_MINUTES) or 0)
    if credit_limit < 0 or emergency < 0 or grace < 0:
        raise ValueError("negative policy value")
    policy = SupplyPolicy(
        cut_off_enabled=bool(opts.get(CONF_CUT_OFF_ENABLED, False)),
        cut_off_at=-credit_limit,
        grace=timedelta(minutes=grace),
        friendly=parse_friendly_hours(
            str(opts.get(CONF_FRIENDLY_HOURS) or ""), str(opts.get(CONF_HOLIDAYS) or ""), tz
        ),
        emergency_credit=emergency,
    )
    days = _decimal(opts.get(CONF_DAYS_LEFT_LEVEL))
    levels = WarningLevels(
        balances=parse_levels(str(opts.get(CONF_WARNING_LEVELS) or "")),
        days_left=days if days > 0 else None,
    )
    return policy, levels, bool(opts.get(CONF_CUT_OFF_WHEN_OVERDUE, False))


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
    #: Minutes of the stored interval data: readings and charges are stored when a
    #: poll enters a new interval of the local clock (0: at every poll).
    interval_minutes: int
    #: Days of recent cost the days-left forecast averages.
    forecast_days: int
    offline_after: int
    meters: tuple[MeterConfig, ...]
    tenants: tuple[TenantConfig, ...]
    #: Who is priced by which tariff (see ``tariff_config``).
    tariffs: SiteTariffs = field(default_factory=SiteTariffs)
    #: The day of the month billing periods start (tiers accumulate per period).
    billing_day: int = DEFAULT_BILLING_DAY
    #: Minutes a meter may be offline before a repair issue is raised.
    offline_repair_minutes: int = DEFAULT_OFFLINE_REPAIR_MINUTES

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any], tz: str = "UTC") -> SiteConfig:
        """Read the site from the entry's data (connection) and options (billing, building).

        ``tz`` is Home Assistant's time zone, the clock of friendly hours. Meters,
        tenants, tariffs and sharing rules may be sub-entries (see ``subentries``).
        """
        return cls.from_options(entry.data, site_options(entry), tz)

    @classmethod
    def from_options(
        cls, data: Mapping[str, Any], opts: Mapping[str, Any], tz: str = "UTC"
    ) -> SiteConfig:
        """Read the site from connection data and merged options (raises ValueError)."""
        policy, _levels, _overdue = policy_from_options(opts, tz)
        host, port = data[CONF_HOST], int(data[CONF_PORT])
        # The entry's own TCP bus is ``default``; more buses (RTU over a serial
        # port, RTU-over-TCP gateways, more TCP gateways) come from the options,
        # where a bus with id ``default`` replaces the entry's (timeouts, kind).
        buses = {DEFAULT_BUS: BusConfig(id=DEFAULT_BUS, host=host, port=port)}
        for spec in opts.get(CONF_BUSES, []):
            bus = BusConfig.from_dict(spec)
            buses[bus.id] = bus
        price = Decimal(str(opts[CONF_PRICE]))
        currency = data[CONF_CURRENCY]
        return cls(
            name=data[CONF_NAME],
            host=host,
            port=port,
            buses=tuple(buses.values()),
            currency=currency,
            price=price,
            policy=policy,
            scan_interval=int(opts.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)),
            interval_minutes=_interval(opts.get(CONF_INTERVAL, DEFAULT_INTERVAL)),
            forecast_days=max(1, int(opts.get(CONF_FORECAST_DAYS, DEFAULT_FORECAST_DAYS))),
            offline_after=max(1, int(opts.get(CONF_OFFLINE_AFTER, DEFAULT_OFFLINE_AFTER))),
            meters=tuple(MeterConfig(**m) for m in opts.get(CONF_METERS, [])),
            tenants=tuple(_tenant(t, opts, tz) for t in opts.get(CONF_TENANTS, [])),
            tariffs=site_tariffs(opts, currency=currency, timezone=tz, price=price),
            billing_day=int(opts.get(CONF_BILLING_DAY, DEFAULT_BILLING_DAY)),
            offline_repair_minutes=max(
                1, int(opts.get(CONF_OFFLINE_REPAIR_MINUTES, DEFAULT_OFFLINE_REPAIR_MINUTES))
            ),
        )

    def tenant_of(self, meter_id: str) -> TenantConfig | None:
        """The tenant whose wallet pays for the meter, if any."""
        return self._tenant_by_meter.get(meter_id)

    # Lookups by id, built once per site (a poll looks up every meter and
    # tenant: scanning the tuples would make a poll quadratic in the site).
    @cached_property
    def _tenant_by_meter(self) -> dict[str, TenantConfig]:
        found: dict[str, TenantConfig] = {}
        for tenant in self.tenants:
            for meter in tenant.meters:
                found.setdefault(meter, tenant)
        return found

    @cached_property
    def meter_by_id(self) -> dict[str, MeterConfig]:
        """The site's meters by id."""
        return {m.id: m for m in self.meters}

    @cached_property
    def tenant_by_id(self) -> dict[str, TenantConfig]:
        """The site's tenants by id."""
        return {t.id: t for t in self.tenants}


def _tenant(spec: Mapping[str, Any], site_opts: Mapping[str, Any], tz: str) -> TenantConfig:
    """A tenant with the site's policy, overridden by its own ``policy`` options."""
    opts = {**site_opts, **spec.get(CONF_POLICY, {})}
    policy, levels, overdue = policy_from_options(opts, tz)
    return TenantConfig(
        id=spec["id"],
        name=spec["name"],
        meters=tuple(spec["meters"]),
        policy=policy,
        warnings=levels,
        cut_off_when_overdue=overdue,
        use_limits=limits_from_options(opts),
        postpaid=spec.get(CONF_BILLING_MODE) == "postpaid",
        moved_in=_moved_in(spec.get("move_in"), tz),
    )


def _moved_in(value: Any, tz: str) -> datetime | None:
    """A ``move_in`` date (ISO) as the local midnight it begins; None without one."""
    if value in (None, ""):
        return None
    return local_midnight(date.fromisoformat(str(value)[:10]), as_zone(tz))


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
    #: Warning levels fired and not re-armed yet.
    warned: frozenset[str] = frozenset()
    #: Emergency credit taken since the last top-up.
    emergency: Decimal = ZERO
    #: When the balance fell to the cut-off point.
    due_since: datetime | None = None
    #: Whether the policy cut the supply off.
    cut_off: bool = False
    #: A postpaid bill is overdue (derived from the store by ``receivables_runner``).
    overdue: bool = False
    #: Postpaid: what is still owed on issued bills (site currency).
    amount_due: Decimal = ZERO
    #: Days of credit left at the recent daily cost (None: no recent use).
    days_left: Decimal | None = None

    def stored(self) -> policy_state.PolicyState:
        """What is kept across restarts."""
        return policy_state.PolicyState(
            locked=self.locked,
            forced_on=self.forced_on,
            warned=self.warned,
            emergency=self.emergency,
            due_since=self.due_since,
            cut_off=self.cut_off,
        )


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
        self._rechecks: dict[str, CALLBACK_TYPE] = {}
        self._balances = BalanceCache()
        self._cursors: dict[str, Decimal] = {}
        #: When each meter's last charged reading was taken (a tenant's poll interval starts there).
        self._read_at: dict[str, datetime] = {}
        #: The site interval (see `_slot_of`) of the last stored poll; None: none yet.
        self._slot: int | None = None
        #: The last poll's reads not stored yet (its interval is still open), and when.
        self._unstored: tuple[list[Read], datetime] | None = None
        #: What the unstored reads would charge each tenant; off the balances shown.
        self._pending: dict[str, Decimal] = {}
        self._ledger_balances: dict[str, Decimal] = {}
        self.charger = Charger({}, site.billing_day, site.tariffs.timezone)
        #: Tenants whose tariff has standing charges, and the midnight they were accrued to.
        self._standing: list[str] = []
        self._accrued: dict[str, datetime] = {}
        #: Recent cost per tenant (cost, first charge) and when it was read.
        self._costs: dict[str, tuple[Decimal, datetime]] = {}
        self._costs_read: datetime | None = None
        #: Tenants' running costs (today, this period, in all) for the sensors.
        self.costs = CostBook(
            hass.config.time_zone, int(entry.options.get(CONF_BILLING_DAY, DEFAULT_BILLING_DAY))
        )
        self.data = SiteData(
            meters={m.id: MeterState(offline_after=site.offline_after) for m in site.meters},
            tenants={t.id: TenantState() for t in site.tenants},
        )
        self.alarms = AlarmMonitor(self)
        self.receivables = ReceivablesMonitor(self)
        #: Counts the updates handed to the entities: what several entities derive
        #: from the same data is computed once per update (see ``sensor.TenantValues``).
        self.updates = 0

    @callback
    def async_update_listeners(self) -> None:
        """Tell the entities of new data (a new update for values they share)."""
        self.updates += 1
        super().async_update_listeners()

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
            opened={t.id: t.moved_in for t in self.site.tenants if t.moved_in is not None},
        )
        cursors = await self.store.run(ledger.cursors, self.site_id)
        self._cursors = {meter: c.value for meter, c in cursors.items()}
        self._read_at = {meter: c.taken_at for meter, c in cursors.items()}
        await self._setup_charger()
        balances = await self.store.run(self._balances.refresh, self.site_id)
        stored = await self.store.run(policy_state.load, self.site_id)
        self._set_balances(balances)
        for tenant_id, state in self.data.tenants.items():
            self._restore(state, stored.get(tenant_id, policy_state.PolicyState()))
        await self.costs.async_load(self.store, self.site_id)
        await self._refresh_forecast(dt_util.utcnow(), reread=True)
        self.alarms.restore()
        # Postpaid accounts (start first: a planned check is dropped when the entry unloads).
        self.receivables.async_start()
        now = dt_util.utcnow()
        self.receivables.apply(await self.store.run(self.receivables.evaluate, now), now)

    async def _setup_charger(self) -> None:
        """Keep the tariffs' versions, then rebuild each tenant's rating of the current period."""
        tariffs = self.site.tariffs
        try:
            stored = await self.store.run(sync_tariffs, self.site_id, tariffs.definitions())
        except TariffVersionChanged as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="tariff_version_changed",
                translation_placeholders={"tariff": err.tariff, "effective": err.effective},
            ) from err
        by_tenant = {}
        for tenant in self.site.tenants:
            tid = tariffs.tariff_id(tenant.id)
            by_tenant[tenant.id] = stored[tid] if tid is not None else tariffs.tariff(None)
        self.charger = Charger(by_tenant, self.site.billing_day, tariffs.timezone)
        self._standing = [t for t, tariff in by_tenant.items() if has_period_charges(tariff)]
        names = {m.id: m.name for m in self.site.meters}
        meters = {t.id: [(m, names.get(m, m)) for m in t.meters] for t in self.site.tenants}
        await self.store.run(self.charger.rebuild, self.site_id, meters, dt_util.utcnow())

    @staticmethod
    def _restore(state: TenantState, stored: policy_state.PolicyState) -> None:
        state.locked, state.forced_on = stored.locked, stored.forced_on
        state.warned, state.emergency = stored.warned, stored.emergency
        state.due_since, state.cut_off = stored.due_since, stored.cut_off
        if stored.cut_off:
            state.supply = SupplyState.CUT_OFF

    async def _refresh_forecast(self, now: datetime, *, reread: bool = False) -> None:
        """Days left per tenant from its cost over the last ``forecast_days`` days.

        The costs are read from the store at most every ``FORECAST_REFRESH``
        (or when ``reread``); the days are recomputed from the current balances.
        """
        window = timedelta(days=self.site.forecast_days)
        if reread or self._costs_read is None or now - self._costs_read >= FORECAST_REFRESH:
            self._costs = await self.store.run(
                policy_state.recent_costs, self.site_id, now - window
            )
            self._costs_read = now
        for tenant in self.site.tenants:
            state = self.data.tenants[tenant.id]
            cost, first = self._costs.get(tenant.id, (ZERO, now))
            span = min(window, now - first)
            # Less than an hour of history says nothing about a day.
            state.days_left = (
                days_left(state.balance, threshold(tenant.policy, state.emergency), cost, span)
                if span >= timedelta(hours=1)
                else None
            )

    async def _async_update_data(self) -> SiteData:
        now = dt_util.utcnow()
        data = self.data
        # Buses are polled concurrently, the meters of one bus in sequence.
        by_bus: dict[str, list[MeterConfig]] = {}
        for meter in self.site.meters:
            by_bus.setdefault(meter.bus if meter.source == "modbus" else "", []).append(meter)
        await asyncio.gather(*(self._poll_bus(meters) for meters in by_bus.values()))
        # A site whose meters were all removed (sub-entries) is not unreachable.
        if data.meters and not any(m.online for m in data.meters.values()):
            # The alarms still see the poll: a meter away too long gets its repair issue
            # even while every meter of the site is away.
            self.alarms.after_poll(now)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="bus_unreachable",
                translation_placeholders={"host": self.site.host, "port": str(self.site.port)},
            )
        async with self._lock:
            try:
                await self._charge(data, now)
                await self._refresh_forecast(now)
                # Decisions only on stored charges: none when the store failed (store_faults).
                for tenant in self.site.tenants:
                    await self._apply_policy(tenant)
            except store_faults.STORE_ERRORS as err:
                raise store_faults.poll_failed(self.hass, self.config_entry, err) from err
        store_faults.store_ok(self.hass, self.config_entry)
        self.alarms.after_poll(now)
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
                "device_id": self._device_id(f"{self.site_id}_meter_{meter.id}"),
                "kind": kind,
                **details,
            },
        )

    async def _charge(self, data: SiteData, now: datetime) -> None:
        """Charge every online meter's counter delta to its tenant's wallet, on its tariff.

        Readings and charges are stored at the site's interval: the first poll
        in a new interval of the local clock stores them (as does a meter's
        first reading and a counter that fell). Polls in between store nothing;
        what their reads would charge is held as pending and taken off the
        balances shown and used by the supply policy, so credit runs out on
        time. Pending use is never lost: the cursors stay at the last stored
        reading, and the next stored one charges all of it.
        """
        await self._accrue_standing(now)
        read: list[Read] = []
        due = self.site.interval_minutes == 0
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
            if previous is None:
                due = True  # the meter's first reading: where its charging starts
            elif value > previous:
                used = value - previous
            else:
                due = True  # charged (rollover) or alarmed (reset) once, not at every poll
                used = self._counter_fell(meter, previous, value)
            read.append((meter, tenant, value, used))
        slot = self._slot_of(now)
        if due or slot != self._slot:
            await self._post(read, now)
            self._slot = slot
        elif read:
            self._unstored = (read, now)
            self._set_pending(
                await self.hass.async_add_executor_job(self._tenant_amounts, read, now, True)
            )
        else:
            self._unstored = None
            self._set_pending({})

    def _slot_of(self, now: datetime) -> int:
        """The number of the site interval (on the local clock) ``now`` falls in."""
        minutes = self.site.interval_minutes
        return 0 if minutes == 0 else interval_number(dt_util.as_local(now), minutes)

    async def _post(self, read: list[Read], at: datetime) -> None:
        """Store readings taken ``at`` and charge their use (pending charges become entries).

        A failed write leaves the pending use as it was (the next poll tries again).
        """
        if not read:
            self._unstored, self._pending = None, {}
            self._set_balances(self._ledger_balances)
            return
        # Rated on the store's thread, with the write: a big site's rating
        # stays off the event loop.
        charges, balances = await self.store.run(self._rate_charge_and_balance, read, at)
        self._unstored, self._pending = None, {}
        for charge in charges:
            self._cursors[charge.meter] = charge.value
            self._read_at[charge.meter] = charge.taken_at
        self._set_balances(balances)
        self.costs.charged(charges)

    async def _settle(self) -> None:
        """Store the last poll's pending readings and charges now (under the charging lock).

        Before a ledger write or a bill run: refunds, move-outs and bills then see
        every use read so far, charged at the time it was read.
        """
        if self._unstored is not None:
            await self._post(*self._unstored)

    def _tenant_amounts(
        self, read: list[Read], now: datetime, quote: bool = False
    ) -> dict[str, Decimal]:
        """Each tenant's use since its last stored reading, priced as one interval.

        ``quote``: what it would be charged, the rating state left as it is.
        """
        by_tenant: dict[str, Decimal] = {}
        for _meter, tenant, _value, delta in read:
            if tenant is not None:
                by_tenant[tenant.id] = by_tenant.get(tenant.id, ZERO) + delta
        price = self.charger.quote if quote else self.charger.charge
        amounts: dict[str, Decimal] = {}
        for tenant_id, used in by_tenant.items():
            tenant = self.site.tenant_by_id[tenant_id]
            last = max(
                (self._read_at[m] for m in tenant.meters if m in self._read_at), default=None
            )
            amounts[tenant_id] = price(tenant_id, last, now, used)
        return amounts

    def _rate(self, read: list[Read], now: datetime) -> list[MeterCharge]:
        """Price each tenant's use since its last reading as one interval; split over its meters."""
        amounts = self._tenant_amounts(read, now)
        by_tenant: dict[str, list[Decimal]] = {}
        for _meter, tenant, _value, delta in read:
            if tenant is not None:
                by_tenant.setdefault(tenant.id, []).append(delta)
        parts = {t: iter(share(amounts[t], used)) for t, used in by_tenant.items()}
        return [
            MeterCharge(
                meter=meter.id,
                tenant=tenant.id if tenant else "",
                value=value,
                taken_at=now,
                amount=next(parts[tenant.id]) if tenant is not None else ZERO,
            )
            for meter, tenant, value, _used in read
        ]

    async def _accrue_standing(self, now: datetime) -> None:
        """Once a local day has ended, charge its standing charges (tariffs that have them)."""
        midnight = dt_util.start_of_local_day(dt_util.as_local(now))
        due = [t for t in self._standing if self._accrued.get(t) != midnight]
        if not due:
            return
        period = self.charger.period(midnight - timedelta(microseconds=1))
        items = [(t, self.charger.ratings[t].tariff, period, midnight) for t in due]
        balances = await self.store.run(self._accrue_and_balance, items)
        for tenant in due:
            self._accrued[tenant] = midnight
        self._set_balances(balances)
        await self.costs.async_catch_up(self.store, self.site_id)

    def _accrue_and_balance(
        self, session: Session, items: list[tuple[str, Tariff, BillingPeriod, datetime]]
    ) -> dict[str, Decimal]:
        period_charges.accrue(session, self.site_id, items)
        return self._balances.refresh(session, self.site_id)

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
        self.alarms.tamper(meter, previous, value)
        return ZERO

    def _rate_charge_and_balance(
        self,
        session: Session,
        read: list[Read],
        now: datetime,
    ) -> tuple[list[MeterCharge], dict[str, Decimal]]:
        """Rate and charge a poll; a failed write leaves the rating where it was."""
        saved = self.charger.snapshot()
        charges = self._rate(read, now)
        try:
            return charges, self._charge_and_balance(session, charges)
        except BaseException:
            self.charger.restore(saved)
            raise

    def _charge_and_balance(
        self, session: Session, charges: list[MeterCharge]
    ) -> dict[str, Decimal]:
        ledger.charge_meters(session, self.site_id, charges)
        return self._balances.refresh(session, self.site_id)

    def _set_balances(self, balances: dict[str, Decimal]) -> None:
        """The wallets' ledger balances, less what pending use would charge, as shown."""
        self._ledger_balances = balances
        pending = self._pending
        for tenant_id, state in self.data.tenants.items():
            state.balance = balances.get(tenant_id, ZERO) - pending.get(tenant_id, ZERO)

    def pending_charge(self, tenant_id: str) -> Decimal:
        """What the use read since the tenant's last stored interval would charge (not posted)."""
        return self._pending.get(tenant_id, ZERO)

    def _set_pending(self, pending: dict[str, Decimal]) -> None:
        self._pending = pending
        self._set_balances(self._ledger_balances)

    async def async_ledger_write[**P, R](
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run a store write (refund, adjustment, settlement, readings) and bring state in step.

        Under the charging lock: afterwards the balances, cursors and manual
        overrides are reloaded from the store and the supply policy is applied,
        so a refund can cut off and a move-out opens the relay at once.
        """

        def write(
            session: Session,
        ) -> tuple[R, dict[str, Decimal], dict[str, Any], Any, Evaluation | None]:
            result = fn(session, *args, **kwargs)
            balances = self._balances.refresh(session, self.site_id)
            charged = ledger.cursors(session, self.site_id)
            # Postpaid: a payment or a bill changes what is owed and overdue, before the policy.
            moved = {t for t, b in balances.items() if b != was.get(t)}
            owed = self.receivables.evaluate(session, now, changed=moved)
            return result, balances, charged, policy_state.load(session, self.site_id), owed

        async with self._lock:
            now = dt_util.utcnow()
            try:
                await self._settle()
                was = {t: s.balance for t, s in self.data.tenants.items()}
                result, balances, charged, stored, owed = await self.store.run(write)
            except store_faults.STORE_ERRORS as err:
                raise store_faults.write_failed(self.hass, self.config_entry, err) from err
            store_faults.store_ok(self.hass, self.config_entry)
            before = was
            self._set_balances(balances)
            self.receivables.apply(owed, now)
            self._cursors = {m: c.value for m, c in charged.items()}
            self._read_at = {m: c.taken_at for m, c in charged.items()}
            await self.costs.async_catch_up(self.store, self.site_id)
            for tenant in self.site.tenants:
                state = self.data.tenants[tenant.id]
                row = stored.get(tenant.id, policy_state.PolicyState())
                state.locked, state.forced_on = row.locked, row.forced_on
                await self._apply_policy(tenant, credited=state.balance > before[tenant.id])
        self.async_update_listeners()
        return result

    async def async_settle(self) -> None:
        """Store the pending readings and charges now (before a bill run, for example)."""
        async with self._lock:
            try:
                await self._settle()
            except store_faults.STORE_ERRORS as err:
                raise store_faults.write_failed(self.hass, self.config_entry, err) from err
        self.async_update_listeners()

    async def async_set_lock(self, tenant_id: str, locked: bool) -> None:
        """Lock a tenant's supply off (or release the lock) and apply it now."""
        await self.async_set_override(tenant_id, locked=locked)

    async def async_set_override(
        self, tenant_id: str, *, locked: bool | None = None, forced_on: bool | None = None
    ) -> SupplyState:
        """Set the manual lock and/or force-on (kept across restarts) and apply it now."""
        async with self._lock:
            state = self.data.tenants[tenant_id]
            was = state.locked, state.forced_on
            if locked is not None:
                state.locked = locked
            if forced_on is not None:
                state.forced_on = forced_on
            try:
                await self.store.run(policy_state.save, self.site_id, tenant_id, state.stored())
            except store_faults.STORE_ERRORS as err:
                state.locked, state.forced_on = was
                raise store_faults.write_failed(self.hass, self.config_entry, err) from err
            tenant = self.site.tenant_by_id[tenant_id]
            await self._apply_policy(tenant)
        self.async_update_listeners()
        return state.supply

    async def async_grant_emergency(self, tenant_id: str) -> Decimal | None:
        """Give the tenant its emergency credit (once until the next top-up); None if refused."""
        async with self._lock:
            tenant = self.site.tenant_by_id[tenant_id]
            state = self.data.tenants[tenant_id]
            if not may_grant_emergency(tenant.policy, state.emergency):
                return None
            was, state.emergency = state.emergency, tenant.policy.emergency_credit
            try:
                await self.store.run(policy_state.save, self.site_id, tenant_id, state.stored())
            except store_faults.STORE_ERRORS as err:
                state.emergency = was
                raise store_faults.write_failed(self.hass, self.config_entry, err) from err
            self.hass.bus.async_fire(
                EVENT_EMERGENCY_CREDIT,
                {
                    **self._tenant_payload(tenant),
                    "amount": str(state.emergency),
                },
            )
            await self._apply_policy(tenant)
        self.async_update_listeners()
        return state.emergency

    async def async_check_receivables(self) -> None:
        """Derive the postpaid accounts from the store now; apply the policy to those tenants.

        Run at local midnight and when a due date passes (``receivables_runner``).
        """
        async with self._lock:
            now = dt_util.utcnow()
            owed = await self.store.run(self.receivables.evaluate, now)
            self.receivables.apply(owed, now)
            for tenant in self.site.tenants:
                if tenant.postpaid:
                    await self._apply_policy(tenant)
        self.async_update_listeners()

    async def async_set_overdue(self, tenant_id: str, overdue: bool) -> None:
        """Set a tenant's overdue flag by hand (a bill is, or is no longer, overdue).

        For postpaid tenants the receivables monitor derives the flag from the
        store at every check, which replaces a flag set here.

        Tenants whose policy has ``cut_off_when_overdue`` are then cut off like
        a prepaid tenant out of credit (grace and friendly hours apply).
        """
        async with self._lock:
            self.data.tenants[tenant_id].overdue = overdue
            tenant = self.site.tenant_by_id[tenant_id]
            await self._apply_policy(tenant)
        self.async_update_listeners()

    def _device_id(self, identifier: str) -> str | None:
        """The device registry id of a meter or tenant device (for automations' filters).

        An event of the first poll comes before the entities have registered
        their devices: the device is registered here then (the entities fill
        in its name and model), so the payload always has the id.
        """
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={(DOMAIN, identifier)})
        if device is None and self.config_entry is not None:
            device = registry.async_get_or_create(
                config_entry_id=self.config_entry.entry_id, identifiers={(DOMAIN, identifier)}
            )
        return device.id if device else None

    def _tenant_payload(self, tenant: TenantConfig) -> dict[str, Any]:
        state = self.data.tenants[tenant.id]
        return {
            "entry_id": self.site_id,
            "tenant": tenant.id,
            "tenant_name": tenant.name,
            "device_id": self._device_id(f"{self.site_id}_tenant_{tenant.id}"),
            "balance": str(state.balance),
            "currency": self.site.currency,
        }

    def _schedule_recheck(self, tenant: TenantConfig, at: datetime | None) -> None:
        """Decide again when a grace period or friendly hours end, without waiting for a poll."""
        if cancel := self._rechecks.pop(tenant.id, None):
            cancel()
        if at is None:
            return

        @callback
        def _recheck(_now: datetime) -> None:
            self._rechecks.pop(tenant.id, None)
            self.config_entry.async_create_task(
                self.hass, self._async_recheck(tenant), f"{DOMAIN} recheck {tenant.id}"
            )

        self._rechecks[tenant.id] = async_track_point_in_utc_time(self.hass, _recheck, at)

    async def _async_recheck(self, tenant: TenantConfig) -> None:
        async with self._lock:
            await self._apply_policy(tenant)
        self.async_update_listeners()

    @callback
    def async_cancel_rechecks(self) -> None:
        """Drop pending rechecks (the entry unloads)."""
        for cancel in self._rechecks.values():
            cancel()
        self._rechecks.clear()

    def _check_warnings(self, tenant: TenantConfig, *, credited: bool) -> None:
        state = self.data.tenants[tenant.id]
        crossings, state.warned = evaluate_warnings(
            state.balance, state.days_left, tenant.warnings, state.warned, credited=credited
        )
        for crossing in crossings:
            self.hass.bus.async_fire(
                EVENT_LOW_BALANCE,
                {
                    **self._tenant_payload(tenant),
                    "kind": crossing.kind,
                    "level": str(crossing.level),
                    "days_left": None if state.days_left is None else str(state.days_left),
                },
            )

    async def _apply_policy(self, tenant: TenantConfig, *, credited: bool = False) -> None:
        """Switch the tenant's relays to what the policy wants; fire events on changes.

        ``credited``: the wallet was just credited (a top-up): emergency credit
        is offered again and the days-left warning re-arms.
        """
        state = self.data.tenants[tenant.id]
        before = state.stored()
        now = dt_util.utcnow()
        if credited:
            # A credit (a top-up) pays emergency credit back: it is offered again.
            state.emergency = ZERO
        if not tenant.postpaid:
            self._check_warnings(tenant, credited=credited)
        balance = state.balance
        overdue = state.overdue and tenant.cut_off_when_overdue
        due = is_due(
            balance,
            tenant.policy,
            emergency=state.emergency,
            postpaid=tenant.postpaid,
            overdue=overdue,
        )
        if not due:
            state.due_since = None
        elif state.due_since is None:
            state.due_since = now
        decision = decide_supply(
            balance,
            tenant.policy,
            locked=state.locked,
            forced_on=state.forced_on,
            now=now,
            due_since=state.due_since,
            cut_off=state.cut_off,
            emergency=state.emergency,
            postpaid=tenant.postpaid,
            overdue=overdue,
        )
        state.cut_off = decision.state is SupplyState.CUT_OFF
        self._schedule_recheck(tenant, decision.recheck_at)
        if state.stored() != before:
            await self.store.run(policy_state.save, self.site_id, tenant.id, state.stored())
        switched = False
        for meter_id in tenant.meters:
            meter = self.site.meter_by_id[meter_id]
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
                self.alarms.relay_mismatch(meter, err.wanted, err.confirmed)
                continue
            except MeterIOError as err:
                _LOGGER.warning("Relay of meter %s not switched: %s", meter.name, err)
                continue
            mstate.sample = MeterSample(values=sample.values, relay_closed=confirmed)
            self.alarms.relay_obeyed(meter)
            switched = True
        state.supply = decision.state
        if not switched:
            return
        payload = {**self._tenant_payload(tenant), "state": decision.state.value}
        if decision.state is SupplyState.CUT_OFF:
            self.hass.bus.async_fire(EVENT_CUT_OFF, payload)
        elif decision.relay_closed:
            self.hass.bus.async_fire(EVENT_RECONNECTED, payload)
