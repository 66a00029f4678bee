"""Sharing: common-area cost and line loss split among tenants, to the cent, with reasons.

A `SharingRule` shares one pool among a chosen set of tenants (its
participants) by one method:

``consumption``
    the tenant's own metered use in the window (kWh). It already reflects the
    days the tenant was there, so no day factor is applied.
``area`` / ``ratio`` / ``capacity`` / ``equal``
    the tenant's floor area (m²), fixed ratio, rated capacity (kVA) or 1,
    multiplied by the local days the tenant took part in the window (RUBS
    occupant-days). A tenant who joins or leaves mid-period pays for the days
    in between; a 23- or 25-hour day counts as one day.

Excluded participants and those not present in the window get nothing. When
every present tenant's weight is zero (nobody used anything, all areas zero)
the pool is split equally by days and the basis says so (``fallback_from``).
When nobody takes part at all, the pool stays ``unallocated`` (the owner
absorbs it) and an anomaly says so. ``owner_percent`` takes a fixed part of
the pool off first for the owner (the RUBS "common-area deduction").

Two kinds of pool:

* ``common``: the cost of one or more common-area meters, i.e. their interval
  use priced by the site's tariff for them (`price_common_meter`, which runs
  `rating.rate_period`, time-of-use included; or `CommonCost.from_charges`
  on charges rated in real time).
* ``loss``: line loss = master meter − all sub-meters (tenants and common
  areas). Negative loss is flagged (``negative_loss``) and shared as a credit
  only when ``allow_credit`` is set; a loss above ``evasion_percent`` of the
  master's energy is flagged ``evasion_suspected``. How loss energy is
  priced is the rule's ``loss_pricing``:

  - ``master_average`` (default): at the master's average price of the window,
    ``master_cost / master_energy`` — the utility bill amount, or the master's
    intervals priced by its tariff. This is the "average cost per kWh" that
    Texas §25.142 lets tenants inspect; loss costs what the landlord paid.
  - ``tariff``: the loss energy is spread over the master's intervals in
    proportion to their energy and priced by the given tariff (time-of-use
    and energy taxes; no standing charges; tier use starts at zero).
  - ``unit_price``: at the rule's fixed ``loss_unit_price``.

Every split is done in money with the largest-remainder rule
(`money.split_largest_remainder`), so records + owner + unallocated add up to
the rounded pool to the minor unit, deterministically (ties to the earlier
participant in rule order). Each record carries its basis and explains
itself in English or Simplified Chinese (`explain`).

Cadence: a prepaid wallet is charged daily or at period close
(``cadence``); `sharing_windows` cuts a billing period into the windows to
share, and each window is shared on its own. Postpaid bills add the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from itertools import pairwise
from typing import Any, Final, Literal

from .calendars import BillingPeriod, CalendarError, as_zone, day_bounds, local_days, micros, utc
from .intervals import ENERGY_QUANTUM, IntervalUse, split_by_weights
from .money import round_money, split_largest_remainder, split_to_step
from .rating import (
    RATING_CONTEXT,
    Charge,
    PriceSeries,
    RatingState,
    UsageSeries,
    open_period,
    rate_batch,
    rate_period,
    summarize,
)
from .tariffs import Tariff

ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)

METHODS: Final = ("consumption", "area", "equal", "ratio", "capacity")
KINDS: Final = ("common", "loss")
CADENCES: Final = ("daily", "period")
LOSS_PRICINGS: Final = ("master_average", "tariff", "unit_price")
LANGUAGES: Final = ("en", "zh-Hans")

#: The unit of each method's figure.
METHOD_UNITS: Final[Mapping[str, str]] = {
    "consumption": "kWh",
    "area": "m²",
    "equal": "share",
    "ratio": "ratio",
    "capacity": "kVA",
}
#: Shared energy is split for display to this step (it adds up exactly too).
SHARE_ENERGY_STEP: Final = Decimal("0.001")

SharingMethod = Literal["consumption", "area", "equal", "ratio", "capacity"]
PoolKind = Literal["common", "loss"]
Cadence = Literal["daily", "period"]
LossPricing = Literal["master_average", "tariff", "unit_price"]


class SharingError(ValueError):
    """A sharing rule or input that cannot be used.

    ``key`` is a machine-readable reason (a translation key), ``path`` points
    at the offending field (``participants[2].area``).
    """

    def __init__(self, key: str, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.key = key
        self.path = path


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class Participant:
    """A tenant in a sharing rule, with the figures the methods need and its stay.

    ``joined``/``left`` bound the tenant's part in the rule (None: open).
    """

    tenant: str
    area: Decimal | None = None
    ratio: Decimal | None = None
    capacity: Decimal | None = None
    joined: datetime | None = None
    left: datetime | None = None
    excluded: bool = False

    def __post_init__(self) -> None:
        for name in ("joined", "left"):
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, utc(value))
                except CalendarError as err:
                    raise SharingError("naive_datetime", str(err), name) from err
        if self.joined is not None and self.left is not None and self.left <= self.joined:
            raise SharingError("left_before_joined", "a tenant must leave after joining", "left")


@dataclass(frozen=True, slots=True)
class SharingRule:
    """How one pool (common-area meters, or line loss) is shared, and among whom."""

    name: str
    kind: PoolKind
    method: SharingMethod
    participants: tuple[Participant, ...]
    meters: tuple[str, ...] = ()
    owner_percent: Decimal = ZERO
    cadence: Cadence = "period"
    loss_pricing: LossPricing = "master_average"
    loss_unit_price: Decimal | None = None
    evasion_percent: Decimal | None = None
    allow_credit: bool = False

    def __post_init__(self) -> None:
        _validate(self)


def _validate(rule: SharingRule) -> None:
    if not isinstance(rule.name, str) or not rule.name.strip():
        raise SharingError("invalid_text", "a rule needs a name", "name")
    _choice(rule.kind, KINDS, "kind")
    _choice(rule.method, METHODS, "method")
    _choice(rule.cadence, CADENCES, "cadence")
    _choice(rule.loss_pricing, LOSS_PRICINGS, "loss_pricing")
    if not rule.participants:
        raise SharingError("no_participants", "a rule needs at least one tenant", "participants")
    seen: set[str] = set()
    figure = {"area": "area", "ratio": "ratio", "capacity": "capacity"}.get(rule.method)
    for i, p in enumerate(rule.participants):
        path = f"participants[{i}]"
        if not isinstance(p.tenant, str) or not p.tenant.strip():
            raise SharingError("invalid_text", "a participant needs a tenant id", f"{path}.tenant")
        if p.tenant in seen:
            raise SharingError("duplicate_tenant", f"tenant {p.tenant!r} listed twice", path)
        seen.add(p.tenant)
        for name in ("area", "ratio", "capacity"):
            value = getattr(p, name)
            if value is not None and (not value.is_finite() or value < 0):
                raise SharingError("negative_number", "must not be negative", f"{path}.{name}")
        if figure is not None and not p.excluded and getattr(p, figure) is None:
            raise SharingError(
                f"missing_{figure}", f"sharing by {rule.method} needs every {figure}", path
            )
    if not ZERO <= rule.owner_percent <= _HUNDRED:
        raise SharingError("invalid_percent", "owner percent is 0-100", "owner_percent")
    if rule.kind == "common":
        if not rule.meters:
            raise SharingError("no_meters", "a common-area rule needs its meters", "meters")
        if len(set(rule.meters)) != len(rule.meters):
            raise SharingError("duplicate_meter", "a meter is listed twice", "meters")
    elif rule.meters:
        raise SharingError("meters_on_loss", "a line-loss rule covers all meters", "meters")
    if rule.loss_pricing == "unit_price" and rule.kind == "loss" and rule.loss_unit_price is None:
        raise SharingError(
            "missing_unit_price", "unit_price pricing needs a price", "loss_unit_price"
        )
    if rule.loss_unit_price is not None and rule.loss_unit_price < 0:
        raise SharingError("negative_number", "must not be negative", "loss_unit_price")
    if rule.evasion_percent is not None and rule.evasion_percent < 0:
        raise SharingError("negative_number", "must not be negative", "evasion_percent")


# --------------------------------------------------------------------------- dict form


def _choice(value: object, allowed: Sequence[str], path: str) -> str:
    if value not in allowed:
        raise SharingError("invalid_choice", f"{value!r} is not one of {list(allowed)}", path)
    return str(value)


def _decimal(value: object, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise SharingError("invalid_number", f"{value!r} is not a number (use a string)", path)
    try:
        number = Decimal(value)
    except InvalidOperation as err:
        raise SharingError("invalid_number", f"{value!r} is not a number", path) from err
    if not number.is_finite():
        raise SharingError("invalid_number", f"{value!r} is not a finite number", path)
    if number < 0:
        raise SharingError("negative_number", f"{value!r} must not be negative", path)
    return number


def _opt_decimal(value: object, path: str) -> Decimal | None:
    return None if value is None else _decimal(value, path)


def _instant(value: object, path: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise SharingError("invalid_datetime", f"{value!r} is not ISO", path) from err
    else:
        raise SharingError("invalid_datetime", f"{value!r} is not an ISO date-time", path)
    if parsed.tzinfo is None:
        raise SharingError("naive_datetime", "a date-time needs its UTC offset", path)
    return utc(parsed)


def _flag(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SharingError("invalid_flag", f"{value!r} is not true or false", path)
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SharingError("invalid_text", "expected a non-empty text", path)
    return value


def _participant(raw: object, path: str) -> Participant:
    if not isinstance(raw, Mapping):
        raise SharingError("invalid_section", "expected an object", path)
    unknown = set(raw) - {"tenant", "area", "ratio", "capacity", "joined", "left", "excluded"}
    if unknown:
        raise SharingError("unknown_field", f"unknown fields {sorted(unknown)}", path)
    return Participant(
        tenant=_text(raw.get("tenant"), f"{path}.tenant"),
        area=_opt_decimal(raw.get("area"), f"{path}.area"),
        ratio=_opt_decimal(raw.get("ratio"), f"{path}.ratio"),
        capacity=_opt_decimal(raw.get("capacity"), f"{path}.capacity"),
        joined=_instant(raw.get("joined"), f"{path}.joined"),
        left=_instant(raw.get("left"), f"{path}.left"),
        excluded=_flag(raw.get("excluded", False), f"{path}.excluded"),
    )


_RULE_FIELDS: Final = frozenset(
    {
        "name",
        "kind",
        "method",
        "participants",
        "meters",
        "owner_percent",
        "cadence",
        "loss_pricing",
        "loss_unit_price",
        "evasion_percent",
        "allow_credit",
    }
)


def sharing_rule_from_dict(data: Mapping[str, Any]) -> SharingRule:
    """Build and validate a rule from its stored, JSON-able form (Decimals as strings).

    Raises `SharingError` whose ``key`` names the problem and ``path`` the field.
    """
    if not isinstance(data, Mapping):
        raise SharingError("invalid_section", "expected an object")
    unknown = set(data) - _RULE_FIELDS
    if unknown:
        raise SharingError("unknown_field", f"unknown fields {sorted(unknown)}")
    raw_participants = data.get("participants")
    if not isinstance(raw_participants, (list, tuple)):
        raise SharingError("invalid_section", "expected a list", "participants")
    raw_meters = data.get("meters", [])
    if not isinstance(raw_meters, (list, tuple)):
        raise SharingError("invalid_section", "expected a list", "meters")
    kind = _choice(data.get("kind", "common"), KINDS, "kind")
    return SharingRule(
        name=_text(data.get("name"), "name"),
        kind=kind,  # type: ignore[arg-type]
        method=_choice(  # type: ignore[arg-type]
            data.get("method", "consumption"), METHODS, "method"
        ),
        participants=tuple(
            _participant(raw, f"participants[{i}]") for i, raw in enumerate(raw_participants)
        ),
        meters=tuple(_text(m, f"meters[{i}]") for i, m in enumerate(raw_meters)),
        owner_percent=_decimal(data.get("owner_percent", "0"), "owner_percent"),
        cadence=_choice(data.get("cadence", "period"), CADENCES, "cadence"),  # type: ignore[arg-type]
        loss_pricing=_choice(  # type: ignore[arg-type]
            data.get("loss_pricing", "master_average"), LOSS_PRICINGS, "loss_pricing"
        ),
        loss_unit_price=_opt_decimal(data.get("loss_unit_price"), "loss_unit_price"),
        evasion_percent=_opt_decimal(data.get("evasion_percent"), "evasion_percent"),
        allow_credit=_flag(data.get("allow_credit", False), "allow_credit"),
    )


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def sharing_rule_to_dict(rule: SharingRule) -> dict[str, Any]:
    """The stored form of a rule: plain JSON types, Decimals as strings, instants as ISO."""
    return {
        "name": rule.name,
        "kind": rule.kind,
        "method": rule.method,
        "participants": [
            {
                "tenant": p.tenant,
                "area": _str(p.area),
                "ratio": _str(p.ratio),
                "capacity": _str(p.capacity),
                "joined": _iso(p.joined),
                "left": _iso(p.left),
                "excluded": p.excluded,
            }
            for p in rule.participants
        ],
        "meters": list(rule.meters),
        "owner_percent": str(rule.owner_percent),
        "cadence": rule.cadence,
        "loss_pricing": rule.loss_pricing,
        "loss_unit_price": _str(rule.loss_unit_price),
        "evasion_percent": _str(rule.evasion_percent),
        "allow_credit": rule.allow_credit,
    }


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ShareBasis:
    """How a tenant's share was found: enough for a bill line "how this was found".

    ``figure`` is the tenant's own figure in ``unit`` (kWh, m², ratio, kVA, or 1
    for equal); ``weight`` is ``figure`` for consumption and ``figure × days``
    otherwise; ``fraction = weight / total_weight`` of what tenants share
    (after the owner's part). ``total_figure`` adds the figures of all who
    share. ``fallback_from`` names the configured method when an equal split
    replaced it because every weight was zero.
    """

    method: str
    unit: str
    figure: Decimal
    total_figure: Decimal
    days: Decimal
    window_days: Decimal
    weight: Decimal
    total_weight: Decimal
    fraction: Decimal
    owner_percent: Decimal = ZERO
    fallback_from: str | None = None


@dataclass(frozen=True, slots=True)
class ShareRecord:
    """One tenant's share of one pool in one window: post it to a wallet or a bill line.

    ``amount`` is rounded to the currency's minor unit; ``energy`` is the
    tenant's part of the pool's energy (to 0.001), ``pool_energy`` and
    ``pool_amount`` what was shared in all.
    """

    tenant: str
    rule: str
    kind: str
    start: datetime
    end: datetime
    currency: str
    amount: Decimal
    energy: Decimal
    pool_energy: Decimal
    pool_amount: Decimal
    basis: ShareBasis

    def explain(self, language: str = "en") -> str:
        """One bill line saying how this share was found, in English or Simplified Chinese."""
        return explain(self, language)

    def to_dict(self) -> dict[str, Any]:
        """Structured, JSON-able form for templates and the store (Decimals as strings)."""
        b = self.basis
        return {
            "tenant": self.tenant,
            "rule": self.rule,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "currency": self.currency,
            "amount": str(self.amount),
            "energy": str(self.energy),
            "pool_energy": str(self.pool_energy),
            "pool_amount": str(self.pool_amount),
            "basis": {
                "method": b.method,
                "unit": b.unit,
                "figure": str(b.figure),
                "total_figure": str(b.total_figure),
                "days": str(b.days),
                "window_days": str(b.window_days),
                "weight": str(b.weight),
                "total_weight": str(b.total_weight),
                "fraction": str(b.fraction),
                "percent": str(_percent(b.fraction)),
                "owner_percent": str(b.owner_percent),
                "fallback_from": b.fallback_from,
            },
        }


@dataclass(frozen=True, slots=True)
class SharingAnomaly:
    """Something the operator should know; ``key`` is a translation key.

    Keys: ``negative_loss`` (sub-meters above the master; ``credited`` says
    whether it was shared as a credit), ``evasion_suspected`` (loss above the
    threshold; the integration raises an alarm), ``unallocated`` (nobody took
    part in the window; the owner absorbs the pool). ``percent`` is the loss
    as a percentage of the master, rounded to 2 decimals for people; the
    threshold was compared with the unrounded figure.
    """

    key: str
    rule: str
    start: datetime
    end: datetime
    energy: Decimal = ZERO
    percent: Decimal | None = None
    threshold: Decimal | None = None
    amount: Decimal = ZERO
    credited: bool = False


@dataclass(frozen=True, slots=True)
class LineLoss:
    """The loss of a window: master − sub-meters, and what it costs.

    ``percent`` is the loss as a percentage of the master's energy (None when
    the master shows nothing). ``amount`` is at full precision and signed;
    it is zero for a negative loss unless credit is allowed. ``unit_price`` is
    the price per unit used (None for tariff pricing; see ``charges``).
    """

    master_energy: Decimal
    sub_energy: Decimal
    energy: Decimal
    percent: Decimal | None
    pricing: str
    unit_price: Decimal | None
    amount: Decimal
    credited: bool
    charges: tuple[Charge, ...] = ()


@dataclass(frozen=True, slots=True)
class SharingResult:
    """A pool shared in one window.

    Invariant: ``sum(r.amount for r in records) + owner_amount + unallocated ==
    total`` where ``total`` is ``cost`` rounded to the minor unit.
    """

    rule: str
    kind: str
    start: datetime
    end: datetime
    currency: str
    energy: Decimal
    cost: Decimal
    total: Decimal
    records: tuple[ShareRecord, ...]
    owner_amount: Decimal
    unallocated: Decimal
    anomalies: tuple[SharingAnomaly, ...] = ()
    loss: LineLoss | None = None

    def by_tenant(self) -> dict[str, ShareRecord]:
        """The records keyed by tenant."""
        return {r.tenant: r for r in self.records}


# --------------------------------------------------------------------------- pricing


@dataclass(frozen=True, slots=True)
class CommonCost:
    """A common-area meter's energy and its cost (full precision) in a window."""

    meter: str
    energy: Decimal
    amount: Decimal
    charges: tuple[Charge, ...] = ()

    @classmethod
    def from_charges(cls, meter: str, charges: Iterable[Charge]) -> CommonCost:
        """From charges rated elsewhere (e.g. in real time), summed by the engine."""
        items = tuple(charges)
        summary = summarize(items)
        return cls(meter, summary.energy, summary.total, items)


def price_common_meter(
    meter: str,
    tariff: Tariff,
    period: BillingPeriod,
    usage: UsageSeries | Sequence[IntervalUse],
    *,
    previous: RatingState | None = None,
    tier_use: Decimal | None = None,
    capacity_kva: Decimal | None = None,
    series: PriceSeries | None = None,
) -> CommonCost:
    """A common meter's interval use priced by the site's tariff for it (`rate_period`).

    Everything the tariff charges in the window counts (time-of-use energy,
    tiers, standing, demand, taxes). For a daily window of a tiered tariff,
    rate in real time instead and use `CommonCost.from_charges`.
    """
    rated = rate_period(
        tariff,
        period,
        usage,
        previous=previous,
        tier_use=tier_use,
        capacity_kva=capacity_kva,
        series=series,
    )
    return CommonCost.from_charges(meter, rated.charges)


def master_energy_between(
    readings: Sequence[tuple[datetime, Decimal]], start: datetime, end: datetime
) -> Decimal:
    """The master meter's energy over ``[start, end)`` from counter readings.

    Readings (instant, cumulative value) may be hand-entered on any dates; the
    counter is taken to move in a straight line between them, so the window's
    edges are interpolated. The readings must cover the window.
    """
    start, end = utc(start), utc(end)
    points = sorted((utc(at), value) for at, value in readings)
    if len(points) < 2 or points[0][0] > start or points[-1][0] < end:
        raise SharingError("master_readings_do_not_cover", "master readings must cover the window")
    for (a, va), (b, vb) in pairwise(points):
        if b == a:
            raise SharingError("duplicate_master_reading", f"two readings at {a.isoformat()}")
        if vb < va:
            raise SharingError("master_counter_decreased", f"master counter fell at {b}")
    return _counter_at(points, end) - _counter_at(points, start)


def _counter_at(points: Sequence[tuple[datetime, Decimal]], at: datetime) -> Decimal:
    for (a, va), (b, vb) in pairwise(points):
        if a <= at <= b:
            with localcontext(RATING_CONTEXT):
                value = va + (vb - va) * micros(at - a) / micros(b - a)
            return value.quantize(ENERGY_QUANTUM)
    raise SharingError("master_readings_do_not_cover", "master readings must cover the window")


def line_loss(
    rule: SharingRule,
    period: BillingPeriod,
    *,
    master_energy: Decimal,
    sub_energy: Mapping[str, Decimal],
    master_cost: Decimal | None = None,
    tariff: Tariff | None = None,
    master_usage: UsageSeries | Sequence[IntervalUse] | None = None,
) -> LineLoss:
    """Line loss of a window and its cost by the rule's ``loss_pricing`` (see module doc).

    ``sub_energy`` is every sub-meter's energy (tenants and common areas).
    """
    if rule.kind != "loss":
        raise SharingError("not_a_loss_rule", f"rule {rule.name!r} is not a line-loss rule")
    with localcontext(RATING_CONTEXT):
        subs = sum(sub_energy.values(), ZERO)
        energy = master_energy - subs
        percent = energy * _HUNDRED / master_energy if master_energy else None
    credited = energy < 0 and rule.allow_credit
    if not energy or (energy < 0 and not rule.allow_credit):
        return LineLoss(master_energy, subs, energy, percent, rule.loss_pricing, None, ZERO, False)
    charges: tuple[Charge, ...] = ()
    unit_price: Decimal | None
    if rule.loss_pricing == "unit_price":
        assert rule.loss_unit_price is not None  # validated
        unit_price = rule.loss_unit_price
        with localcontext(RATING_CONTEXT):
            amount = energy * unit_price
    elif rule.loss_pricing == "master_average":
        if master_cost is None:
            raise SharingError("missing_master_cost", "average pricing needs the master's cost")
        if master_energy <= 0:
            raise SharingError("no_average_price", "the master shows no energy to average over")
        with localcontext(RATING_CONTEXT):
            unit_price = master_cost / master_energy
            amount = energy * unit_price
    else:
        if tariff is None or master_usage is None:
            raise SharingError("missing_tariff", "tariff pricing needs the tariff and master usage")
        unit_price = None
        charges = _tariff_price_loss(tariff, period, abs(energy), master_usage)
        total = summarize(charges).total
        amount = total if energy > 0 else -total
    return LineLoss(
        master_energy,
        subs,
        energy,
        percent,
        rule.loss_pricing,
        unit_price,
        amount,
        credited,
        charges,
    )


def _tariff_price_loss(
    tariff: Tariff,
    period: BillingPeriod,
    energy: Decimal,
    usage: UsageSeries | Sequence[IntervalUse],
) -> tuple[Charge, ...]:
    intervals = usage.intervals() if isinstance(usage, UsageSeries) else list(usage)
    if not intervals:
        raise SharingError("missing_master_usage", "tariff pricing needs the master's intervals")
    weights = [int((iv.energy / ENERGY_QUANTUM).to_integral_value()) for iv in intervals]
    if sum(weights) <= 0:
        weights = [micros(iv.end - iv.start) for iv in intervals]
    parts = split_by_weights(energy, weights)
    spread = [IntervalUse(iv.start, iv.end, e) for iv, e in zip(intervals, parts, strict=True)]
    state = open_period(tariff, period)
    return rate_batch(tariff, state, spread).charges


# --------------------------------------------------------------------------- sharing


def sharing_windows(period: BillingPeriod, cadence: str, timezone: str) -> list[BillingPeriod]:
    """The windows a period is shared in: the whole period, or each local day of it."""
    if cadence == "period":
        return [period]
    _choice(cadence, CADENCES, "cadence")
    zone = as_zone(timezone)
    out: list[BillingPeriod] = []
    day = period.start.astimezone(zone).date()
    while True:
        lo, hi = day_bounds(day, zone)
        if lo >= period.end:
            break
        if hi > period.start:
            out.append(period.part(lo, hi))
        day += timedelta(days=1)
    return out


def _days_present(p: Participant, period: BillingPeriod, timezone: str) -> Decimal:
    lo = period.start if p.joined is None else max(period.start, p.joined)
    hi = period.end if p.left is None else min(period.end, p.left)
    return local_days(lo, hi, timezone) if hi > lo else ZERO


def _figure(rule: SharingRule, method: str, p: Participant, use: Mapping[str, Decimal]) -> Decimal:
    if method == "consumption":
        if p.tenant not in use:
            raise SharingError("missing_consumption", f"no consumption for tenant {p.tenant!r}")
        used = use[p.tenant]
        if used < 0:
            raise SharingError("negative_consumption", f"tenant {p.tenant!r} used less than 0")
        return used
    if method == "equal":
        return _ONE
    value: Decimal | None = getattr(p, method)
    assert value is not None  # validated
    return value


def _share(
    rule: SharingRule,
    period: BillingPeriod,
    *,
    energy: Decimal,
    cost: Decimal,
    consumption: Mapping[str, Decimal],
    currency: str,
    timezone: str,
    anomalies: list[SharingAnomaly],
    loss: LineLoss | None = None,
) -> SharingResult:
    total = round_money(cost, currency)
    window_days = local_days(period.start, period.end, timezone)
    present: list[tuple[Participant, Decimal]] = []
    for p in rule.participants:
        if p.excluded:
            continue
        days = _days_present(p, period, timezone)
        if days > 0:
            present.append((p, days))
    if not present:
        if total:
            anomalies.append(
                SharingAnomaly(
                    "unallocated", rule.name, period.start, period.end, energy, amount=total
                )
            )
        return SharingResult(
            rule.name, rule.kind, period.start, period.end, currency, energy, cost, total,
            (), ZERO, total, tuple(anomalies), loss,
        )  # fmt: skip
    method: str = rule.method
    fallback: str | None = None
    with localcontext(RATING_CONTEXT):
        figures = [_figure(rule, method, p, consumption) for p, _ in present]
        weights = [
            f if method == "consumption" else f * d
            for f, (_, d) in zip(figures, present, strict=True)
        ]
        if sum(weights, ZERO) == 0:
            fallback, method = method, "equal"
            figures = [_ONE] * len(present)
            weights = [d for _, d in present]
        total_weight = sum(weights, ZERO)
        total_figure = sum(figures, ZERO)
        fractions = [w / total_weight for w in weights]
    owner_pct = rule.owner_percent
    if owner_pct:
        owner_amount, tenants_amount = split_largest_remainder(
            total, [owner_pct, _HUNDRED - owner_pct], currency
        )
        _, tenants_energy = split_to_step(
            energy, [owner_pct, _HUNDRED - owner_pct], SHARE_ENERGY_STEP
        )
    else:
        owner_amount, tenants_amount = ZERO, total
        tenants_energy = energy
    amounts = split_largest_remainder(tenants_amount, weights, currency)
    energies = split_to_step(tenants_energy, weights, SHARE_ENERGY_STEP)
    records = tuple(
        ShareRecord(
            tenant=p.tenant,
            rule=rule.name,
            kind=rule.kind,
            start=period.start,
            end=period.end,
            currency=currency,
            amount=amount,
            energy=share_energy,
            pool_energy=energy,
            pool_amount=total,
            basis=ShareBasis(
                method=method,
                unit=METHOD_UNITS[method],
                figure=figure,
                total_figure=total_figure,
                days=days,
                window_days=window_days,
                weight=weight,
                total_weight=total_weight,
                fraction=fraction,
                owner_percent=owner_pct,
                fallback_from=fallback,
            ),
        )
        for (p, days), figure, weight, fraction, amount, share_energy in zip(
            present, figures, weights, fractions, amounts, energies, strict=True
        )
    )
    return SharingResult(
        rule.name, rule.kind, period.start, period.end, currency, energy, cost, total,
        records, owner_amount, ZERO, tuple(anomalies), loss,
    )  # fmt: skip


def share_common_cost(
    rule: SharingRule,
    period: BillingPeriod,
    costs: Iterable[CommonCost],
    *,
    consumption: Mapping[str, Decimal] | None = None,
    currency: str,
    timezone: str,
) -> SharingResult:
    """Share the cost of the rule's common-area meters in one window among its tenants.

    ``costs`` holds one `CommonCost` per meter of the rule (extra meters are an
    error, so a cost is never shared by the wrong rule); ``consumption`` is each
    tenant's own use in the window, needed for the consumption method.
    """
    if rule.kind != "common":
        raise SharingError("not_a_common_rule", f"rule {rule.name!r} is not a common-area rule")
    by_meter = {c.meter: c for c in costs}
    missing = [m for m in rule.meters if m not in by_meter]
    if missing:
        raise SharingError("missing_meter_cost", f"no cost for meters {missing}")
    extra = sorted(set(by_meter) - set(rule.meters))
    if extra:
        raise SharingError("unknown_meter", f"meters {extra} are not in rule {rule.name!r}")
    with localcontext(RATING_CONTEXT):
        energy = sum((by_meter[m].energy for m in rule.meters), ZERO)
        cost = sum((by_meter[m].amount for m in rule.meters), ZERO)
    return _share(
        rule,
        period,
        energy=energy,
        cost=cost,
        consumption=consumption or {},
        currency=currency,
        timezone=timezone,
        anomalies=[],
    )


def share_line_loss(
    rule: SharingRule,
    period: BillingPeriod,
    *,
    master_energy: Decimal,
    sub_energy: Mapping[str, Decimal],
    consumption: Mapping[str, Decimal] | None = None,
    currency: str,
    timezone: str,
    master_cost: Decimal | None = None,
    tariff: Tariff | None = None,
    master_usage: UsageSeries | Sequence[IntervalUse] | None = None,
) -> SharingResult:
    """Compute the window's line loss, flag it, price it and share it among the rule's tenants.

    Negative loss is flagged ``negative_loss`` and shared (as a credit) only
    when the rule allows it; loss above ``evasion_percent`` of the master is
    flagged ``evasion_suspected``.
    """
    loss = line_loss(
        rule,
        period,
        master_energy=master_energy,
        sub_energy=sub_energy,
        master_cost=master_cost,
        tariff=tariff,
        master_usage=master_usage,
    )
    anomalies: list[SharingAnomaly] = []
    if loss.energy < 0:
        anomalies.append(
            SharingAnomaly(
                "negative_loss",
                rule.name,
                period.start,
                period.end,
                loss.energy,
                _round_percent(loss.percent),
                amount=round_money(loss.amount, currency),
                credited=loss.credited,
            )
        )
    threshold = rule.evasion_percent
    if threshold is not None and loss.percent is not None and loss.percent > threshold:
        anomalies.append(
            SharingAnomaly(
                "evasion_suspected",
                rule.name,
                period.start,
                period.end,
                loss.energy,
                _round_percent(loss.percent),
                threshold,
                amount=round_money(loss.amount, currency),
            )
        )
    shared_energy = loss.energy if loss.energy > 0 or loss.credited else ZERO
    return _share(
        rule,
        period,
        energy=shared_energy,
        cost=loss.amount,
        consumption=consumption or {},
        currency=currency,
        timezone=timezone,
        anomalies=anomalies,
        loss=loss,
    )


# --------------------------------------------------------------------------- explanations


def _round_percent(percent: Decimal | None) -> Decimal | None:
    """A loss percentage as reported (2 decimals, half-up); thresholds compare unrounded."""
    return None if percent is None else percent.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _percent(fraction: Decimal) -> Decimal:
    return (fraction * _HUNDRED).quantize(Decimal("0.01"))


def _num(value: Decimal) -> str:
    """A figure for people: no exponent, no trailing zeros, at most 3 decimals."""
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


_METHOD_NAMES: Final[Mapping[str, Mapping[str, str]]] = {
    "en": {
        "consumption": "by consumption",
        "area": "by floor area",
        "equal": "equally",
        "ratio": "by fixed ratio",
        "capacity": "by rated capacity",
    },
    "zh-Hans": {
        "consumption": "按用量",
        "area": "按面积",
        "equal": "平均",
        "ratio": "按固定比例",
        "capacity": "按额定容量",
    },
}


def explain(record: ShareRecord, language: str = "en") -> str:
    """A bill line saying how a share was found ("how this was found")."""
    _choice(language, LANGUAGES, "language")
    b = record.basis
    names = _METHOD_NAMES[language]
    pct = _percent(b.fraction)
    cur = record.currency
    unit = "" if b.method == "equal" else f" {b.unit}"
    days = f"{_num(b.days)}/{_num(b.window_days)}"
    if language == "en":
        pool = "Common area" if record.kind == "common" else "Line loss"
        head = (
            f"{pool} '{record.rule}' ({_num(record.pool_energy)} kWh, "
            f"{record.pool_amount} {cur}) shared {names[b.method]}"
        )
        if b.fallback_from:
            head += f" (nobody had any {b.fallback_from}, so equally)"
        if b.method == "consumption":
            why = f"your {_num(b.figure)}{unit} of {_num(b.total_figure)}{unit}"
        elif b.method == "equal":
            why = f"{_num(b.total_figure)} tenants, you for {days} days"
        else:
            why = f"your {_num(b.figure)}{unit} of {_num(b.total_figure)}{unit}, {days} days"
        owner = f", after {_num(b.owner_percent)}% borne by the owner" if b.owner_percent else ""
        return f"{head}: {why}{owner} → {pct}% = {record.amount} {cur}"
    pool = "公共区域" if record.kind == "common" else "线损"
    head = (
        f"{pool}“{record.rule}”（{_num(record.pool_energy)} kWh，"
        f"{record.pool_amount} {cur}）{names[b.method]}分摊"
    )
    if b.fallback_from:
        head += f"（各户{names[b.fallback_from]}均为零，改为平均）"
    if b.method == "consumption":
        why = f"您的 {_num(b.figure)}{unit}，合计 {_num(b.total_figure)}{unit}"
    elif b.method == "equal":
        why = f"共 {_num(b.total_figure)} 户，您在住 {days} 天"
    else:
        why = f"您的 {_num(b.figure)}{unit}，合计 {_num(b.total_figure)}{unit}，在住 {days} 天"
    owner = f"，业主先承担 {_num(b.owner_percent)}%" if b.owner_percent else ""
    return f"{head}：{why}{owner} → {pct}% = {record.amount} {cur}"


__all__ = [
    "CADENCES",
    "LOSS_PRICINGS",
    "METHODS",
    "CommonCost",
    "LineLoss",
    "Participant",
    "ShareBasis",
    "ShareRecord",
    "SharingAnomaly",
    "SharingError",
    "SharingResult",
    "SharingRule",
    "explain",
    "line_loss",
    "master_energy_between",
    "price_common_meter",
    "share_common_cost",
    "share_line_loss",
    "sharing_rule_from_dict",
    "sharing_rule_to_dict",
    "sharing_windows",
]
