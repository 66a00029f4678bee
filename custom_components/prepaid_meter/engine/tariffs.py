"""Tariffs as data: what a unit costs when, plus the fixed, demand and tax parts of a bill.

A tariff is a list of versions, each in force from its effective instant until
the next one. A version prices energy (flat, time-of-use by local time, or a
live price series), optionally in tiers (ladder blocks counted per billing
period or per year), and adds demand or capacity charges, standing charges,
a minimum charge and taxes. Tariffs round-trip through plain JSON-able dicts
(`tariff_from_dict` / `tariff_to_dict`), Decimals as strings, so the store and
the UI can keep them; bad config raises `TariffError` with a translation key.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from .calendars import CalendarError, as_zone, utc

ZERO = Decimal(0)

#: Commodities and the units they may be billed in.
UNITS: Final[Mapping[str, tuple[str, ...]]] = {
    "electricity": ("kWh", "MWh"),
    "water": ("m³", "L"),
    "gas": ("m³", "kWh"),
    "heating": ("kWh", "MWh", "GJ"),
    "cooling": ("kWh", "MWh", "GJ"),
}
#: The power unit a demand charge is priced in, for energy units that have one.
DEMAND_UNITS: Final[Mapping[str, str]] = {"kWh": "kW", "MWh": "MW"}

DAY_TYPES: Final = ("weekday", "weekend", "holiday")
CHARGE_KINDS: Final = ("energy", "demand", "capacity", "standing", "minimum", "tax")
TAXABLE_KINDS: Final = ("energy", "demand", "capacity", "standing", "minimum")
DEMAND_WINDOWS: Final = (15, 30, 60)

TierBasis = Literal["period", "year"]
TierMode = Literal["adder", "price"]
ChargeBasis = Literal["day", "month"]


class TariffError(ValueError):
    """A tariff that cannot be used as configured.

    ``key`` is a machine-readable reason (a translation key), ``path`` points
    at the offending field (``versions[0].tiers.blocks[1].upto``).
    """

    def __init__(self, key: str, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.key = key
        self.path = path


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class DaySchedule:
    """Which time-of-use period applies from each local time of day until the next switch."""

    switches: tuple[tuple[time, str], ...]

    def period_at(self, minute_of_day: int) -> str:
        """The period in force at a local minute of the day (0-1439)."""
        index = bisect_right([t.hour * 60 + t.minute for t, _ in self.switches], minute_of_day)
        return self.switches[index - 1][1]


@dataclass(frozen=True, slots=True)
class Season:
    """A date range within every year (inclusive, may wrap over New Year) and its day schedules.

    A weekend falls back to the weekday schedule, a holiday to the weekend's.
    """

    name: str
    start: tuple[int, int]
    end: tuple[int, int]
    weekday: DaySchedule
    weekend: DaySchedule | None = None
    holiday: DaySchedule | None = None

    def contains(self, day: date) -> bool:
        """Whether the date lies in this season."""
        md = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end

    def schedule(self, day_type: str) -> DaySchedule:
        """The schedule for a day type, with the documented fallbacks."""
        if day_type == "holiday" and self.holiday is not None:
            return self.holiday
        if day_type in ("holiday", "weekend") and self.weekend is not None:
            return self.weekend
        return self.weekday


@dataclass(frozen=True, slots=True)
class TouCalendar:
    """Seasons, weekend days (Monday = 0) and holidays: the local-time rules of time of use."""

    seasons: tuple[Season, ...]
    weekend_days: frozenset[int] = frozenset({5, 6})
    holidays: frozenset[date] = frozenset()

    def day_type(self, day: date) -> str:
        """``holiday``, ``weekend`` or ``weekday`` (a holiday wins over a weekend)."""
        if day in self.holidays:
            return "holiday"
        if day.weekday() in self.weekend_days:
            return "weekend"
        return "weekday"

    def period_at(self, local: datetime) -> str:
        """The time-of-use period of a local wall-clock time."""
        day = local.date()
        for season in self.seasons:
            if season.contains(day):
                return season.schedule(self.day_type(day)).period_at(local.hour * 60 + local.minute)
        raise TariffError("season_gap", f"no season covers {day.isoformat()}")


@dataclass(frozen=True, slots=True)
class FlatPrice:
    """One price per unit at all times."""

    price: Decimal


@dataclass(frozen=True, slots=True)
class TouPrice:
    """A price per time-of-use period (sharp peak, peak, flat, valley; names are free)."""

    prices: Mapping[str, Decimal]
    calendar: TouCalendar


@dataclass(frozen=True, slots=True)
class DynamicPrice:
    """The price comes from a price series (e.g. a live price sensor) passed in at rating.

    ``fallback`` is used before the series' first point; without it, rating an
    interval the series does not cover is an error.
    """

    fallback: Decimal | None = None


EnergyPricing = FlatPrice | TouPrice | DynamicPrice


@dataclass(frozen=True, slots=True)
class Tier:
    """One ladder block: use up to ``upto`` (cumulative, None = no limit) at this tier."""

    upto: Decimal | None
    price: Decimal | None = None
    adder: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Tiers:
    """Ladder blocks counted per billing period or per local calendar year.

    ``mode="adder"`` adds the tier's adder to the energy price (China, NDRC
    2012: tier 2 +0.05, tier 3 +0.30 CNY/kWh on top of the period price);
    ``mode="price"`` uses the tier's own price instead of any energy price.
    """

    basis: TierBasis
    mode: TierMode
    blocks: tuple[Tier, ...]

    @property
    def thresholds(self) -> tuple[Decimal, ...]:
        """The cumulative upper bounds of all but the last (open-ended) tier."""
        return tuple(b.upto for b in self.blocks if b.upto is not None)


@dataclass(frozen=True, slots=True)
class DemandCharge:
    """A price per kW of the period's maximum average demand over a fixed clock window.

    Singapore integrates over 30 minutes; many utilities use 15.
    """

    price: Decimal
    window_minutes: int = 15


@dataclass(frozen=True, slots=True)
class CapacityCharge:
    """A price per kVA of contracted (transformer) capacity per month, pro-rated.

    Shenzhen two-part tariff: 24 CNY per kVA-month as the alternative to demand.
    """

    price: Decimal


@dataclass(frozen=True, slots=True)
class StandingCharge:
    """A fixed charge per local day or per billing month, pro-rated for part periods."""

    name: str
    amount: Decimal
    per: ChargeBasis = "day"


@dataclass(frozen=True, slots=True)
class MinimumCharge:
    """The least a billing month costs before tax; replaces a lower total, is never added on top."""

    amount: Decimal


@dataclass(frozen=True, slots=True)
class Tax:
    """A percentage on chosen charge kinds (VAT, electricity duty)."""

    name: str
    percent: Decimal
    on: frozenset[str] = frozenset(TAXABLE_KINDS)


@dataclass(frozen=True, slots=True)
class TariffVersion:
    """The whole price definition in force from ``effective`` until the next version."""

    effective: datetime
    label: str
    energy: EnergyPricing | None
    tiers: Tiers | None = None
    demand: DemandCharge | None = None
    capacity: CapacityCharge | None = None
    standing: tuple[StandingCharge, ...] = ()
    minimum: MinimumCharge | None = None
    taxes: tuple[Tax, ...] = ()

    def energy_taxes(self) -> tuple[Tax, ...]:
        """Taxes that apply to energy charges."""
        return tuple(t for t in self.taxes if "energy" in t.on)


@dataclass(frozen=True, slots=True)
class Tariff:
    """A named tariff for one commodity in one currency, read on one local clock."""

    name: str
    commodity: str
    unit: str
    currency: str
    timezone: str
    versions: tuple[TariffVersion, ...]
    _starts: tuple[datetime, ...] = field(init=False, repr=False, compare=False)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", tuple(v.effective for v in self.versions))
        object.__setattr__(self, "_zone", as_zone(self.timezone))

    @property
    def zone(self) -> ZoneInfo:
        """The tariff's local time zone."""
        return self._zone

    @property
    def version_starts(self) -> tuple[datetime, ...]:
        """Effective instants of the versions, in order."""
        return self._starts

    def version_index(self, at: datetime) -> int:
        """Index of the version in force at ``at``."""
        index = bisect_right(self._starts, at) - 1
        if index < 0:
            raise TariffError(
                "no_version_in_force", f"tariff {self.name!r} has no price before {at.isoformat()}"
            )
        return index

    def version_at(self, at: datetime) -> TariffVersion:
        """The version in force at ``at``."""
        return self.versions[self.version_index(at)]

    @property
    def demand_unit(self) -> str:
        """The unit demand is measured in (kW for kWh)."""
        return DEMAND_UNITS.get(self.unit, self.unit + "/h")


# --------------------------------------------------------------------------- parsing


def _decimal(value: object, path: str, *, allow_negative: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise TariffError("invalid_number", f"{value!r} is not a number (use a string)", path)
    try:
        number = Decimal(value)
    except InvalidOperation as err:
        raise TariffError("invalid_number", f"{value!r} is not a number", path) from err
    if not number.is_finite():
        raise TariffError("invalid_number", f"{value!r} is not a finite number", path)
    if number < 0 and not allow_negative:
        raise TariffError("negative_number", f"{value!r} must not be negative", path)
    return number


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TariffError("invalid_section", "expected an object", path)
    return value


def _list(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise TariffError("invalid_section", "expected a list", path)
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TariffError("invalid_text", "expected a non-empty text", path)
    return value


def _choice(value: object, allowed: Sequence[str], path: str) -> str:
    if value not in allowed:
        raise TariffError("invalid_choice", f"{value!r} is not one of {list(allowed)}", path)
    return str(value)


def _instant(value: object, path: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(_text(value, path))
        except ValueError as err:
            raise TariffError(
                "invalid_datetime", f"{value!r} is not an ISO date-time", path
            ) from err
    try:
        return utc(parsed)
    except CalendarError as err:
        raise TariffError("naive_datetime", "a date-time needs its UTC offset", path) from err


def _time_of_day(value: object, path: str) -> time:
    try:
        parsed = time.fromisoformat(_text(value, path))
    except ValueError as err:
        raise TariffError("invalid_time", f"{value!r} is not a time HH:MM", path) from err
    if parsed.second or parsed.microsecond:
        raise TariffError("invalid_time", "time-of-use switches are whole minutes", path)
    return parsed


def _month_day(value: object, path: str) -> tuple[int, int]:
    text = _text(value, path)
    try:
        month, day = (int(part) for part in text.split("-"))
        date(2024, month, day)  # a leap year, so 02-29 is accepted
    except ValueError as err:
        raise TariffError("invalid_month_day", f"{value!r} is not MM-DD", path) from err
    return month, day


def _schedule(value: object, periods: set[str], path: str) -> DaySchedule:
    rows = _list(value, path)
    switches: list[tuple[time, str]] = []
    for i, row in enumerate(rows):
        row_path = f"{path}[{i}]"
        pair = _list(row, row_path)
        if len(pair) != 2:
            raise TariffError("invalid_switch", "a switch is [time, period]", row_path)
        at = _time_of_day(pair[0], f"{row_path}[0]")
        name = _text(pair[1], f"{row_path}[1]")
        if name not in periods:
            raise TariffError("unknown_period", f"period {name!r} has no price", f"{row_path}[1]")
        if switches and at <= switches[-1][0]:
            raise TariffError("switches_not_increasing", "switch times must increase", row_path)
        switches.append((at, name))
    if not switches or switches[0][0] != time(0):
        raise TariffError("schedule_not_from_midnight", "a day schedule starts at 00:00", path)
    return DaySchedule(tuple(switches))


def _calendar(value: object, periods: set[str], path: str) -> TouCalendar:
    data = _mapping(value, path)
    weekend_raw = _list(data.get("weekend", [5, 6]), f"{path}.weekend")
    weekend: set[int] = set()
    for i, day in enumerate(weekend_raw):
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
            raise TariffError(
                "invalid_weekday", "weekdays are 0 (Monday) to 6", f"{path}.weekend[{i}]"
            )
        weekend.add(day)
    holidays: set[date] = set()
    for i, raw in enumerate(_list(data.get("holidays", []), f"{path}.holidays")):
        try:
            holidays.add(date.fromisoformat(_text(raw, f"{path}.holidays[{i}]")))
        except ValueError as err:
            raise TariffError(
                "invalid_date", f"{raw!r} is not a date", f"{path}.holidays[{i}]"
            ) from err
    seasons: list[Season] = []
    raw_seasons = _list(data.get("seasons"), f"{path}.seasons")
    for i, raw in enumerate(raw_seasons):
        spath = f"{path}.seasons[{i}]"
        s = _mapping(raw, spath)
        schedules = _mapping(s.get("schedules"), f"{spath}.schedules")
        for key in schedules:
            if key not in DAY_TYPES:
                raise TariffError("invalid_day_type", f"{key!r} is not a day type", spath)
        if "weekday" not in schedules:
            raise TariffError(
                "missing_weekday_schedule", "a season needs a weekday schedule", spath
            )
        built = {
            key: _schedule(schedules[key], periods, f"{spath}.schedules.{key}") for key in schedules
        }
        seasons.append(
            Season(
                name=_text(s.get("name", f"season {i + 1}"), f"{spath}.name"),
                start=_month_day(s.get("from", "01-01"), f"{spath}.from"),
                end=_month_day(s.get("to", "12-31"), f"{spath}.to"),
                weekday=built["weekday"],
                weekend=built.get("weekend"),
                holiday=built.get("holiday"),
            )
        )
    if not seasons:
        raise TariffError("no_seasons", "a time-of-use calendar needs a season", f"{path}.seasons")
    # Every day of a leap year must fall in exactly one season.
    day = date(2024, 1, 1)
    while day.year == 2024:
        owners = [season.name for season in seasons if season.contains(day)]
        if len(owners) != 1:
            key = "season_gap" if not owners else "seasons_overlap"
            raise TariffError(key, f"{day:%m-%d} is in {len(owners)} seasons", f"{path}.seasons")
        day = date.fromordinal(day.toordinal() + 1)
    return TouCalendar(tuple(seasons), frozenset(weekend), frozenset(holidays))


def _energy(value: object, path: str) -> EnergyPricing:
    data = _mapping(value, path)
    kind = _choice(data.get("kind"), ("flat", "tou", "dynamic"), f"{path}.kind")
    if kind == "flat":
        return FlatPrice(_decimal(data.get("price"), f"{path}.price"))
    if kind == "dynamic":
        raw = data.get("fallback")
        fallback = None if raw is None else _decimal(raw, f"{path}.fallback", allow_negative=True)
        return DynamicPrice(fallback)
    raw_prices = _mapping(data.get("prices"), f"{path}.prices")
    if not raw_prices:
        raise TariffError("no_periods", "time of use needs at least one period", f"{path}.prices")
    prices = {
        _text(name, f"{path}.prices"): _decimal(price, f"{path}.prices.{name}")
        for name, price in raw_prices.items()
    }
    return TouPrice(prices, _calendar(data.get("calendar"), set(prices), f"{path}.calendar"))


def _tiers(value: object, path: str) -> Tiers:
    data = _mapping(value, path)
    basis = _choice(data.get("basis", "period"), ("period", "year"), f"{path}.basis")
    mode = _choice(data.get("mode", "adder"), ("adder", "price"), f"{path}.mode")
    blocks: list[Tier] = []
    raw_blocks = _list(data.get("blocks"), f"{path}.blocks")
    if not raw_blocks:
        raise TariffError("no_tiers", "tiers need at least one block", f"{path}.blocks")
    for i, raw in enumerate(raw_blocks):
        bpath = f"{path}.blocks[{i}]"
        b = _mapping(raw, bpath)
        upto_raw = b.get("upto")
        upto = None if upto_raw is None else _decimal(upto_raw, f"{bpath}.upto")
        last = i == len(raw_blocks) - 1
        if (upto is None) != last:
            raise TariffError(
                "tier_limits", "every tier but the last has an upper limit", f"{bpath}.upto"
            )
        if upto is not None and (upto <= 0 or (blocks and upto <= (blocks[-1].upto or ZERO))):
            raise TariffError("tiers_not_increasing", "tier limits must increase", f"{bpath}.upto")
        if mode == "price":
            if "price" not in b:
                raise TariffError("tier_price_missing", "each tier needs a price", bpath)
            blocks.append(Tier(upto, price=_decimal(b["price"], f"{bpath}.price")))
        else:
            blocks.append(Tier(upto, adder=_decimal(b.get("adder", "0"), f"{bpath}.adder")))
    return Tiers(basis, mode, tuple(blocks))  # type: ignore[arg-type]


def _version(value: object, unit: str, path: str) -> TariffVersion:
    data = _mapping(value, path)
    effective = _instant(data.get("effective"), f"{path}.effective")
    tiers = None if data.get("tiers") is None else _tiers(data["tiers"], f"{path}.tiers")
    energy = None if data.get("energy") is None else _energy(data["energy"], f"{path}.energy")
    if tiers is not None and tiers.mode == "price":
        if energy is not None:
            raise TariffError(
                "tier_price_and_energy", "tier prices replace the energy price", f"{path}.energy"
            )
    elif energy is None:
        raise TariffError("energy_missing", "a version needs an energy price", f"{path}.energy")
    demand = None
    if data.get("demand") is not None:
        d = _mapping(data["demand"], f"{path}.demand")
        if unit not in DEMAND_UNITS:
            raise TariffError(
                "demand_needs_energy_unit", f"no demand charge in {unit}", f"{path}.demand"
            )
        window = d.get("window_minutes", 15)
        if window not in DEMAND_WINDOWS or isinstance(window, bool):
            raise TariffError(
                "invalid_demand_window",
                f"window must be one of {list(DEMAND_WINDOWS)} minutes",
                f"{path}.demand.window_minutes",
            )
        demand = DemandCharge(_decimal(d.get("price"), f"{path}.demand.price"), int(window))
    capacity = None
    if data.get("capacity") is not None:
        c = _mapping(data["capacity"], f"{path}.capacity")
        capacity = CapacityCharge(_decimal(c.get("price"), f"{path}.capacity.price"))
    standing: list[StandingCharge] = []
    for i, raw in enumerate(_list(data.get("standing", []), f"{path}.standing")):
        spath = f"{path}.standing[{i}]"
        s = _mapping(raw, spath)
        standing.append(
            StandingCharge(
                _text(s.get("name", "standing charge"), f"{spath}.name"),
                _decimal(s.get("amount"), f"{spath}.amount"),
                _choice(s.get("per", "day"), ("day", "month"), f"{spath}.per"),  # type: ignore[arg-type]
            )
        )
    if len({s.name for s in standing}) != len(standing):
        raise TariffError("duplicate_name", "standing charge names must differ", f"{path}.standing")
    minimum = None
    if data.get("minimum") is not None:
        m = _mapping(data["minimum"], f"{path}.minimum")
        minimum = MinimumCharge(_decimal(m.get("amount"), f"{path}.minimum.amount"))
    taxes: list[Tax] = []
    for i, raw in enumerate(_list(data.get("taxes", []), f"{path}.taxes")):
        tpath = f"{path}.taxes[{i}]"
        t = _mapping(raw, tpath)
        kinds = _list(t.get("on", list(TAXABLE_KINDS)), f"{tpath}.on")
        for j, kind in enumerate(kinds):
            _choice(kind, TAXABLE_KINDS, f"{tpath}.on[{j}]")
        taxes.append(
            Tax(
                _text(t.get("name", "tax"), f"{tpath}.name"),
                _decimal(t.get("percent"), f"{tpath}.percent"),
                frozenset(kinds),
            )
        )
    if len({t.name for t in taxes}) != len(taxes):
        raise TariffError("duplicate_name", "tax names must differ", f"{path}.taxes")
    label = data.get("label")
    return TariffVersion(
        effective=effective,
        label=_text(label, f"{path}.label") if label is not None else effective.isoformat(),
        energy=energy,
        tiers=tiers,
        demand=demand,
        capacity=capacity,
        standing=tuple(standing),
        minimum=minimum,
        taxes=tuple(taxes),
    )


def tariff_from_dict(data: Mapping[str, Any]) -> Tariff:
    """Build and validate a tariff from its stored form (see module docstring)."""
    data = _mapping(data, "")
    commodity = _choice(data.get("commodity", "electricity"), tuple(UNITS), "commodity")
    unit = _choice(data.get("unit", UNITS[commodity][0]), UNITS[commodity], "unit")
    currency = _text(data.get("currency"), "currency")
    if len(currency) != 3 or not currency.isalpha():
        raise TariffError("invalid_currency", "currency is an ISO 4217 code", "currency")
    timezone = _text(data.get("timezone"), "timezone")
    try:
        as_zone(timezone)
    except CalendarError as err:
        raise TariffError("unknown_timezone", str(err), "timezone") from err
    raw_versions = _list(data.get("versions"), "versions")
    if not raw_versions:
        raise TariffError("no_versions", "a tariff needs at least one price version", "versions")
    versions = [_version(raw, unit, f"versions[{i}]") for i, raw in enumerate(raw_versions)]
    for i in range(1, len(versions)):
        if versions[i].effective <= versions[i - 1].effective:
            raise TariffError(
                "versions_not_increasing", "versions must be in effective order", f"versions[{i}]"
            )
    return Tariff(
        name=_text(data.get("name"), "name"),
        commodity=commodity,
        unit=unit,
        currency=currency.upper(),
        timezone=timezone,
        versions=tuple(versions),
    )


# --------------------------------------------------------------------------- dumping


def _hhmm(at: time) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def _schedule_to_list(schedule: DaySchedule) -> list[list[str]]:
    return [[_hhmm(at), name] for at, name in schedule.switches]


def _energy_to_dict(energy: EnergyPricing) -> dict[str, Any]:
    if isinstance(energy, FlatPrice):
        return {"kind": "flat", "price": str(energy.price)}
    if isinstance(energy, DynamicPrice):
        out: dict[str, Any] = {"kind": "dynamic"}
        if energy.fallback is not None:
            out["fallback"] = str(energy.fallback)
        return out
    cal = energy.calendar
    seasons = []
    for season in cal.seasons:
        schedules = {"weekday": _schedule_to_list(season.weekday)}
        if season.weekend is not None:
            schedules["weekend"] = _schedule_to_list(season.weekend)
        if season.holiday is not None:
            schedules["holiday"] = _schedule_to_list(season.holiday)
        seasons.append(
            {
                "name": season.name,
                "from": f"{season.start[0]:02d}-{season.start[1]:02d}",
                "to": f"{season.end[0]:02d}-{season.end[1]:02d}",
                "schedules": schedules,
            }
        )
    return {
        "kind": "tou",
        "prices": {name: str(price) for name, price in energy.prices.items()},
        "calendar": {
            "weekend": sorted(cal.weekend_days),
            "holidays": sorted(d.isoformat() for d in cal.holidays),
            "seasons": seasons,
        },
    }


def _version_to_dict(version: TariffVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"effective": version.effective.isoformat(), "label": version.label}
    if version.energy is not None:
        out["energy"] = _energy_to_dict(version.energy)
    if version.tiers is not None:
        blocks: list[dict[str, Any]] = []
        for tier in version.tiers.blocks:
            block: dict[str, Any] = {"upto": None if tier.upto is None else str(tier.upto)}
            if version.tiers.mode == "price":
                block["price"] = str(tier.price)
            else:
                block["adder"] = str(tier.adder)
            blocks.append(block)
        out["tiers"] = {"basis": version.tiers.basis, "mode": version.tiers.mode, "blocks": blocks}
    if version.demand is not None:
        out["demand"] = {
            "price": str(version.demand.price),
            "window_minutes": version.demand.window_minutes,
        }
    if version.capacity is not None:
        out["capacity"] = {"price": str(version.capacity.price)}
    if version.standing:
        out["standing"] = [
            {"name": s.name, "amount": str(s.amount), "per": s.per} for s in version.standing
        ]
    if version.minimum is not None:
        out["minimum"] = {"amount": str(version.minimum.amount)}
    if version.taxes:
        out["taxes"] = [
            {"name": t.name, "percent": str(t.percent), "on": sorted(t.on)} for t in version.taxes
        ]
    return out


def tariff_to_dict(tariff: Tariff) -> dict[str, Any]:
    """The stored, JSON-able form of a tariff; `tariff_from_dict` reads it back unchanged."""
    return {
        "name": tariff.name,
        "commodity": tariff.commodity,
        "unit": tariff.unit,
        "currency": tariff.currency,
        "timezone": tariff.timezone,
        "versions": [_version_to_dict(v) for v in tariff.versions],
    }
