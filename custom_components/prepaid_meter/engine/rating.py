"""Rating: interval consumption priced by a tariff into self-explaining charge records.

Two ways in, one answer. Real time rates one completed interval at a time
(`rate_interval`, carrying a `RatingState` with the period's tier use and
demand); batch re-rating (`rate_batch`) groups energy by (version, time-of-use
period, price, tier) first and multiplies once per group. Both run the same
tier walk in time order, so their totals are equal to the last digit: money
arithmetic runs in a 60-digit Decimal context where sums and products of the
amounts involved are exact.

Period charges (standing, capacity, demand, minimum) come from
`accrue_standing` (callable daily for prepaid wallets) and `close_period`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from itertools import accumulate, pairwise
from operator import add
from typing import Any

from .calendars import BillingPeriod, floor_to_interval, local_days, micros, utc
from .intervals import IntervalUse, split_by_weights
from .tariffs import (
    DemandCharge,
    DynamicPrice,
    FlatPrice,
    Tariff,
    TariffError,
    TariffVersion,
    TouPrice,
)

ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_SIXTY = Decimal(60)
_MICROSECOND = timedelta(microseconds=1)

#: Rating arithmetic runs in this context: wide enough that no sum or product
#: of realistic amounts is rounded, so any grouping gives the same total.
RATING_CONTEXT = Context(prec=60, rounding=ROUND_HALF_UP)
#: Time-pro-rated charges (standing, capacity, minimum) are accrued as the
#: difference of a running amount cut to this quantum, so accruals add up exactly.
ACCRUAL_QUANTUM = Decimal(1).scaleb(-20)


class RatingError(ValueError):
    """Usage the engine cannot rate as given; ``key`` names the reason for translation."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Prices from a live source: each price holds from its instant until the next one."""

    points: tuple[tuple[datetime, Decimal], ...]
    _times: tuple[datetime, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        points = tuple((utc(at), price) for at, price in self.points)
        for (a, _), (b, _) in pairwise(points):
            if b <= a:
                raise RatingError("series_not_increasing", "price series times must increase")
        for _, price in points:
            if not isinstance(price, Decimal) or not price.is_finite():
                raise RatingError("invalid_series_price", f"{price!r} is not a Decimal price")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "_times", tuple(at for at, _ in points))

    @classmethod
    def of(cls, pairs: Iterable[tuple[datetime, Decimal]]) -> PriceSeries:
        """A series from (instant, price) pairs in time order."""
        return cls(tuple(pairs))

    @property
    def times(self) -> tuple[datetime, ...]:
        """The instants the price changes."""
        return self._times

    def price_at(self, at: datetime) -> Decimal | None:
        """The price in force at ``at``, or None before the first point."""
        index = bisect_right(self._times, at) - 1
        return None if index < 0 else self.points[index][1]


@dataclass(frozen=True, slots=True)
class UsageSeries:
    """Consecutive intervals of equal length from ``start``: the compact batch input.

    ``energy`` holds Decimals, or - with ``exponent`` set - integers counting
    units of ``10 ** exponent`` (a counter read to 0.001 kWh: exponent -3).
    A month of 15-minute polls is thousands of values per meter; as integers
    they are exact, summed in C, and not tracked by the garbage collector
    (Decimals are, since Python 3.13, and a bill run keeping millions of them
    alive sets off full collections that hold the interpreter lock).
    """

    start: datetime
    minutes: int
    energy: Sequence[Decimal] | Sequence[int]
    exponent: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        if self.minutes <= 0:
            raise RatingError("invalid_interval", "interval minutes must be positive")

    @property
    def end(self) -> datetime:
        """End of the last interval."""
        return self.start + timedelta(minutes=self.minutes * len(self.energy))

    def decimal(self, value: Decimal | int) -> Decimal:
        """One energy value (or a sum of them) as a Decimal in the series' unit."""
        if self.exponent is None:
            return Decimal(value)
        return Decimal(value).scaleb(self.exponent, RATING_CONTEXT)

    def decimals(self) -> list[Decimal]:
        """The interval energies as Decimals."""
        if self.exponent is None:
            return list(self.energy)  # type: ignore[arg-type]
        return [self.decimal(e) for e in self.energy]

    def intervals(self) -> list[IntervalUse]:
        """The same usage as interval records."""
        step = timedelta(minutes=self.minutes)
        return [
            IntervalUse(self.start + i * step, self.start + (i + 1) * step, e)
            for i, e in enumerate(self.decimals())
        ]


@dataclass(frozen=True, slots=True)
class Charge:
    """One priced line: what, when, how much, at what price, under which version.

    ``kind`` is energy, demand, capacity, standing, minimum or tax. For a tax,
    ``quantity`` is the taxed amount, ``unit_price`` the rate as a fraction and
    ``taxed_kind`` what it was levied on. ``amount`` is at full precision;
    rounding happens where it is posted (`money.round_money`).
    """

    kind: str
    start: datetime
    end: datetime
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    version: str
    tou_period: str | None = None
    tier: int | None = None
    name: str | None = None
    taxed_kind: str | None = None
    intervals: int = 1


@dataclass(frozen=True, slots=True)
class RatingState:
    """What real-time rating carries from interval to interval within a billing period."""

    period: BillingPeriod
    rated_until: datetime
    tier_use: Decimal
    tier_year: int
    capacity_kva: Decimal | None = None
    energy_total: Decimal = ZERO
    energy_amount: Decimal = ZERO
    standing_until: datetime | None = None
    standing_amount: Decimal = ZERO
    window_start: datetime | None = None
    window_energy: Decimal = ZERO
    max_window_energy: Decimal = ZERO
    max_window_at: datetime | None = None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Rated:
    """Charges produced by a rating step and the state after it."""

    charges: tuple[Charge, ...]
    state: RatingState

    @property
    def total(self) -> Decimal:
        """Sum of the charges at full precision."""
        with localcontext(RATING_CONTEXT):
            return sum((c.amount for c in self.charges), ZERO)


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals a bill shows: per charge kind, per time-of-use period, per tier."""

    total: Decimal
    energy: Decimal
    by_kind: Mapping[str, Decimal]
    energy_by_tou_period: Mapping[str | None, Decimal]
    amount_by_tou_period: Mapping[str | None, Decimal]
    energy_by_tier: Mapping[int | None, Decimal]
    amount_by_tier: Mapping[int | None, Decimal]


def summarize(charges: Iterable[Charge]) -> Summary:
    """Add charges up the ways a bill presents them."""
    total = energy = ZERO
    by_kind: dict[str, Decimal] = {}
    e_period: dict[str | None, Decimal] = {}
    a_period: dict[str | None, Decimal] = {}
    e_tier: dict[int | None, Decimal] = {}
    a_tier: dict[int | None, Decimal] = {}
    with localcontext(RATING_CONTEXT):
        for c in charges:
            total += c.amount
            by_kind[c.kind] = by_kind.get(c.kind, ZERO) + c.amount
            if c.kind == "energy":
                energy += c.quantity
                e_period[c.tou_period] = e_period.get(c.tou_period, ZERO) + c.quantity
                a_period[c.tou_period] = a_period.get(c.tou_period, ZERO) + c.amount
                e_tier[c.tier] = e_tier.get(c.tier, ZERO) + c.quantity
                a_tier[c.tier] = a_tier.get(c.tier, ZERO) + c.amount
    return Summary(total, energy, by_kind, e_period, a_period, e_tier, a_tier)


# --------------------------------------------------------------------------- slices


@dataclass(frozen=True, slots=True)
class _Slice:
    """A part of an interval with one version and one price; energy is split by ``weight``."""

    weight: int
    version: int
    period: str | None
    price: Decimal | None


def _version_indices(tariff: Tariff, start: datetime, end: datetime) -> list[datetime]:
    starts = tariff.version_starts
    lo = bisect_right(starts, start)
    hi = bisect_left(starts, end)
    return list(starts[lo:hi])


def _slices(
    tariff: Tariff, start: datetime, end: datetime, series: PriceSeries | None
) -> tuple[_Slice, ...]:
    """Cut an interval where the version or the live price changes (split by time).

    The time-of-use period is read at the interval's local start time.
    """
    cuts = set(_version_indices(tariff, start, end))
    if series is not None:
        times = series.times
        cuts.update(times[bisect_right(times, start) : bisect_left(times, end)])
    edges = [start, *sorted(cuts), end]
    local_start = start.astimezone(tariff.zone)
    out: list[_Slice] = []
    for lo, hi in pairwise(edges):
        index = tariff.version_index(lo)
        version = tariff.versions[index]
        energy = version.energy
        period: str | None = None
        price: Decimal | None
        if energy is None:
            price = None  # tier prices replace the energy price
        elif isinstance(energy, FlatPrice):
            price = energy.price
        elif isinstance(energy, TouPrice):
            period = energy.calendar.period_at(local_start)
            price = energy.prices[period]
        else:
            price = _series_price(energy, series, lo)
        out.append(_Slice(micros(hi - lo), index, period, price))
    return tuple(out)


def _series_price(energy: DynamicPrice, series: PriceSeries | None, at: datetime) -> Decimal:
    price = series.price_at(at) if series is not None else None
    if price is None:
        price = energy.fallback
    if price is None:
        raise RatingError("no_price", f"no live price for {at.isoformat()} and no fallback")
    return price


def _unit_price(version: TariffVersion, base: Decimal | None, tier: int | None) -> Decimal:
    tiers = version.tiers
    if tiers is None or tier is None:
        if base is None:
            raise RatingError("no_price", "no energy price")
        return base
    block = tiers.blocks[tier]
    if tiers.mode == "price":
        if block.price is None:
            raise RatingError("no_price", "tier without price")
        return block.price
    if base is None:
        raise RatingError("no_price", "no energy price")
    return base + block.adder


def _tier_key(tariff: Tariff, slices: tuple[_Slice, ...]) -> object:
    """What the tier walk depends on; intervals with equal keys can be walked in bulk."""
    keys = set()
    for s in slices:
        tiers = tariff.versions[s.version].tiers
        keys.add(None if tiers is None else tiers.thresholds)
    return keys.pop() if len(keys) == 1 else _MIXED


_MIXED = object()


def _reset_year(tariff: Tariff, start: datetime) -> int | None:
    """The local year tier use counts in, when the version at ``start`` counts tiers by year."""
    tiers = tariff.version_at(start).tiers
    if tiers is None or tiers.basis != "year":
        return None
    return start.astimezone(tariff.zone).year


def _walk(
    tariff: Tariff,
    slices: tuple[_Slice, ...],
    energy: Decimal,
    cum: Decimal,
) -> tuple[list[tuple[_Slice, int | None, Decimal]], Decimal]:
    """Split an interval's energy over its slices in time order, then over tier limits.

    A piece that crosses a tier limit is split there: the part up to the limit
    at the lower tier, the rest at the next.
    """
    parts = split_by_weights(energy, [s.weight for s in slices])
    pieces: list[tuple[_Slice, int | None, Decimal]] = []
    for s, e in zip(slices, parts, strict=True):
        tiers = tariff.versions[s.version].tiers
        if tiers is None:
            if e:
                pieces.append((s, None, e))
            cum += e
            continue
        limits = tiers.thresholds
        while e > 0:
            k = bisect_right(limits, cum)
            if k < len(limits) and cum + e > limits[k]:
                part = limits[k] - cum
                pieces.append((s, k, part))
                cum += part
                e -= part
            else:
                pieces.append((s, k, e))
                cum += e
                e = ZERO
    return pieces, cum


# --------------------------------------------------------------------------- state


def open_period(
    tariff: Tariff,
    period: BillingPeriod,
    previous: RatingState | None = None,
    *,
    tier_use: Decimal | None = None,
    capacity_kva: Decimal | None = None,
) -> RatingState:
    """Start rating a billing period.

    Tier use restarts at zero for tiers counted per period; for yearly tiers
    it carries on from ``previous`` (or from ``tier_use``, e.g. the year's use
    before a re-rated period) until the local year turns.
    """
    year = period.start.astimezone(tariff.zone).year
    use = ZERO
    if tier_use is not None:
        use = tier_use
    elif previous is not None:
        tiers = tariff.version_at(period.start).tiers
        if tiers is not None and tiers.basis == "year":
            use, year = previous.tier_use, previous.tier_year
    kva = capacity_kva
    if kva is None and previous is not None:
        kva = previous.capacity_kva
    return RatingState(
        period=period,
        rated_until=period.start,
        tier_use=use,
        tier_year=year,
        capacity_kva=kva or None,
        standing_until=period.start,
    )


def _demand_config(tariff: Tariff, period: BillingPeriod) -> tuple[int, DemandCharge] | None:
    """The demand charge of a period: the version in force at its end prices it."""
    index = tariff.version_index(period.end - _MICROSECOND)
    demand = tariff.versions[index].demand
    return None if demand is None else (index, demand)


def _check_interval(state: RatingState, start: datetime, end: datetime) -> None:
    if state.closed:
        raise RatingError("period_closed", "the billing period is already closed")
    if end <= start:
        raise RatingError("empty_interval", "an interval must end after it starts")
    if start < state.period.start or end > state.period.end:
        raise RatingError("outside_period", f"interval {start.isoformat()} is outside the period")
    if start < state.rated_until:
        raise RatingError("already_rated", f"interval {start.isoformat()} is already rated")


def _energy_charge(
    tariff: Tariff,
    s: _Slice,
    tier: int | None,
    energy: Decimal,
    start: datetime,
    end: datetime,
    count: int,
) -> Charge:
    version = tariff.versions[s.version]
    price = _unit_price(version, s.price, tier)
    return Charge(
        kind="energy",
        start=start,
        end=end,
        quantity=energy,
        unit=tariff.unit,
        unit_price=price,
        amount=energy * price,
        version=version.label,
        tou_period=s.period,
        tier=None if tier is None else tier + 1,
        intervals=count,
    )


def _taxes(
    tariff: Tariff,
    kind: str,
    bases: Mapping[int, Decimal],
    start: datetime,
    end: datetime,
) -> list[Charge]:
    """Tax charges on ``bases`` (amount per version index) of one charge kind."""
    out: list[Charge] = []
    for index in sorted(bases):
        version = tariff.versions[index]
        for tax in version.taxes:
            if kind not in tax.on or not bases[index]:
                continue
            rate = tax.percent / _HUNDRED
            out.append(
                Charge(
                    kind="tax",
                    start=start,
                    end=end,
                    quantity=bases[index],
                    unit=tariff.currency,
                    unit_price=rate,
                    amount=bases[index] * rate,
                    version=version.label,
                    name=tax.name,
                    taxed_kind=kind,
                )
            )
    return out


def _demand_step(
    state: RatingState, wid: datetime, energy: Decimal
) -> tuple[datetime, Decimal, Decimal, datetime | None]:
    """Fold one interval's energy into the clock-aligned demand windows."""
    if state.window_start == wid:
        return wid, state.window_energy + energy, state.max_window_energy, state.max_window_at
    best, best_at = state.max_window_energy, state.max_window_at
    if state.window_start is not None and (best_at is None or state.window_energy > best):
        best, best_at = state.window_energy, state.window_start
    return wid, energy, best, best_at


# --------------------------------------------------------------------------- real time


def rate_interval(
    tariff: Tariff,
    state: RatingState,
    interval: IntervalUse,
    series: PriceSeries | None = None,
) -> Rated:
    """Rate one completed interval (the real-time path, called as intervals complete)."""
    start, end, energy = utc(interval.start), utc(interval.end), interval.energy
    _check_interval(state, start, end)
    if energy < 0:
        raise RatingError("negative_energy", "interval energy must not be negative")
    with localcontext(RATING_CONTEXT):
        slices = _slices(tariff, start, end, series)
        cum, year = state.tier_use, state.tier_year
        reset = _reset_year(tariff, start)
        if reset is not None and reset != year:
            cum, year = ZERO, reset
        pieces, cum = _walk(tariff, slices, energy, cum)
        charges = [_energy_charge(tariff, s, k, e, start, end, 1) for s, k, e in pieces]
        bases: dict[int, Decimal] = {}
        for (s, _, _), c in zip(pieces, charges, strict=True):
            bases[s.version] = bases.get(s.version, ZERO) + c.amount
        amount = sum((c.amount for c in charges), ZERO)
        charges.extend(_taxes(tariff, "energy", bases, start, end))
        new = replace(
            state,
            rated_until=end,
            tier_use=cum,
            tier_year=year,
            energy_total=state.energy_total + energy,
            energy_amount=state.energy_amount + amount,
        )
        demand = _demand_config(tariff, state.period)
        if demand is not None:
            window = demand[1].window_minutes
            if end - start > timedelta(minutes=window):
                raise RatingError(
                    "demand_window_shorter_than_interval",
                    f"a {window}-minute demand window needs intervals of at most {window} minutes",
                )
            wid, w_energy, best, best_at = _demand_step(
                state, floor_to_interval(start, window), energy
            )
            new = replace(
                new,
                window_start=wid,
                window_energy=w_energy,
                max_window_energy=best,
                max_window_at=best_at,
            )
    return Rated(tuple(charges), new)


# --------------------------------------------------------------------------- batch


type _Key = tuple[_Slice, int | None]


@dataclass(slots=True)
class _Bucket:
    energy: Decimal
    first: int
    last: int
    count: int


@dataclass(frozen=True, slots=True)
class _Run:
    a: int
    b: int
    key: object
    reset_year: int | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a grid of intervals classifies under a tariff: shared by every meter on it."""

    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]
    classes: tuple[tuple[_Slice, ...], ...]
    class_of: tuple[int, ...]
    single: tuple[tuple[int, tuple[int, ...]], ...]  # class id, its interval indices
    multi: tuple[int, ...]  # intervals cut into several slices
    runs: tuple[_Run, ...]
    windows: dict[int, tuple[tuple[datetime, ...], tuple[int, ...]]] = field(
        default_factory=dict, compare=False
    )


def _build_plan(
    tariff: Tariff,
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    series: PriceSeries | None,
) -> _Plan:
    class_ids: dict[tuple[_Slice, ...], int] = {}
    class_of: list[int] = []
    members: dict[int, list[int]] = {}
    multi: list[int] = []
    runs: list[_Run] = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        slices = _slices(tariff, start, end, series)
        cid = class_ids.setdefault(slices, len(class_ids))
        class_of.append(cid)
        if len(slices) == 1:
            members.setdefault(cid, []).append(i)
        else:
            multi.append(i)
        key = _tier_key(tariff, slices)
        reset = _reset_year(tariff, start)
        if runs and key is not _MIXED and runs[-1].key == key and runs[-1].reset_year == reset:
            last = runs[-1]
            runs[-1] = _Run(last.a, i + 1, key, reset)
        else:
            runs.append(_Run(i, i + 1, key, reset))
    classes = tuple(sorted(class_ids, key=class_ids.__getitem__))
    return _Plan(
        tuple(starts),
        tuple(ends),
        classes,
        tuple(class_of),
        tuple((cid, tuple(idx)) for cid, idx in sorted(members.items())),
        tuple(multi),
        tuple(runs),
    )


_PLAN_CACHE: dict[tuple[int, int, datetime, int, int], tuple[object, object, _Plan]] = {}
_PLAN_CACHE_SIZE = 16


def _series_plan(tariff: Tariff, usage: UsageSeries, series: PriceSeries | None) -> _Plan:
    """The plan of a regular grid, cached: every meter on the same grid and tariff shares it."""
    n = len(usage.energy)
    key = (id(tariff), id(series), usage.start, usage.minutes, n)
    hit = _PLAN_CACHE.get(key)
    if hit is not None and hit[0] is tariff and hit[1] is series:
        return hit[2]
    step = timedelta(minutes=usage.minutes)
    starts = [usage.start + i * step for i in range(n)]
    ends = [s + step for s in starts]
    plan = _build_plan(tariff, starts, ends, series)
    if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
        _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
    _PLAN_CACHE[key] = (tariff, series, plan)
    return plan


def clear_plan_cache() -> None:
    """Forget cached interval classifications (for benchmarks and tests)."""
    _PLAN_CACHE.clear()


def _add(buckets: dict[_Key, _Bucket], key: _Key, e: Decimal,
         first: int, last: int, count: int) -> None:  # fmt: skip
    bucket = buckets.get(key)
    if bucket is None:
        buckets[key] = _Bucket(e, first, last, count)
    else:
        bucket.energy += e
        bucket.last = max(bucket.last, last)
        bucket.first = min(bucket.first, first)
        bucket.count += count


def _bulk(
    buckets: dict[_Key, _Bucket],
    plan: _Plan,
    energy: Sequence[Any],
    x: int,
    y: int,
    tier: int | None,
    dec: Callable[[Any], Decimal],
) -> None:
    """Intervals ``[x, y)`` lie wholly in one tier: sum their energy per class, then bucket it.

    ``energy`` holds Decimals or scaled integers; ``dec`` turns a sum of them into a Decimal.
    """
    if y <= x:
        return
    getter = energy.__getitem__
    for cid, idx in plan.single:
        i0 = bisect_left(idx, x)
        i1 = bisect_left(idx, y, i0)
        if i1 > i0:
            sub = idx[i0:i1]
            s = plan.classes[cid][0]
            _add(buckets, (s, tier), dec(sum(map(getter, sub), 0)), sub[0], sub[-1], i1 - i0)
    m0 = bisect_left(plan.multi, x)
    m1 = bisect_left(plan.multi, y, m0)
    for i in plan.multi[m0:m1]:
        slices = plan.classes[plan.class_of[i]]
        parts = split_by_weights(dec(energy[i]), [s.weight for s in slices])
        for s, e in zip(slices, parts, strict=True):
            if e:
                _add(buckets, (s, tier), e, i, i, 1)


def _walk_into(
    buckets: dict[_Key, _Bucket],
    tariff: Tariff,
    plan: _Plan,
    i: int,
    energy: Decimal,
    cum: Decimal,
) -> Decimal:
    pieces, cum = _walk(tariff, plan.classes[plan.class_of[i]], energy, cum)
    for s, k, e in pieces:
        _add(buckets, (s, k), e, i, i, 1)
    return cum


def _prepare(
    tariff: Tariff,
    usage: UsageSeries | Sequence[IntervalUse],
    series: PriceSeries | None,
) -> tuple[_Plan, Sequence[Any]]:
    if isinstance(usage, UsageSeries):
        return _series_plan(tariff, usage, series), usage.energy
    starts = [utc(iv.start) for iv in usage]
    ends = [utc(iv.end) for iv in usage]
    for i in range(1, len(starts)):
        if starts[i] < ends[i - 1]:
            raise RatingError("intervals_out_of_order", "intervals must be in order, no overlaps")
    return _build_plan(tariff, starts, ends, series), [iv.energy for iv in usage]


def _same(value: Decimal) -> Decimal:
    return value


def rate_batch(
    tariff: Tariff,
    state: RatingState,
    usage: UsageSeries | Sequence[IntervalUse],
    series: PriceSeries | None = None,
) -> Rated:
    """Rate many intervals at once (re-rating a past period, or catching up).

    Energy is summed per (version, time-of-use period, price, tier) before it is
    multiplied, so the cost is a few Decimal additions per interval. The
    records are one line per group; the totals equal `rate_interval` applied
    interval by interval.
    """
    with localcontext(RATING_CONTEXT):
        plan, energy = _prepare(tariff, usage, series)
        # Scaled integers stay integers through every per-interval sum; only
        # the sums become Decimals (exactly: a shift of the decimal point).
        dec: Callable[[Any], Decimal] = usage.decimal if isinstance(usage, UsageSeries) else _same
        unit = Decimal(1).scaleb(usage.exponent or 0) if isinstance(usage, UsageSeries) else None
        n = len(energy)
        if n == 0:
            return Rated((), state)
        for i in (0, n - 1):
            _check_interval(state, plan.starts[i], plan.ends[i])
        if min(energy) < 0:
            raise RatingError("negative_energy", "interval energy must not be negative")
        buckets: dict[_Key, _Bucket] = {}
        cum, year = state.tier_use, state.tier_year
        used: Any = 0  # the energy of every run, summed run by run (one pass less)
        for run in plan.runs:
            a, b = run.a, run.b
            if run.reset_year is not None and run.reset_year != year:
                cum, year = ZERO, run.reset_year
            if run.key is _MIXED:
                for i in range(a, b):
                    cum = _walk_into(buckets, tariff, plan, i, dec(energy[i]), cum)
                used += sum(energy[a:b], 0)
                continue
            if run.key is None:
                _bulk(buckets, plan, energy, a, b, None, dec)
                run_use = sum(energy[a:b], 0)
                cum += dec(run_use)
                used += run_use
                continue
            limits: tuple[Decimal, ...] = run.key  # type: ignore[assignment]
            # The run's own running use, from 0 in the series' unit; a tier
            # limit is reached where it passes the limit less the use before.
            room = [(limit - cum) / unit if unit is not None else limit - cum for limit in limits]
            running = list(accumulate(energy[a:b], add, initial=0))
            size = b - a
            lo = 0
            for k in range(len(limits) + 1):
                hi = bisect_left(running, room[k], lo, size) if k < len(limits) else size
                if hi > lo:
                    last = hi - 1
                    crosses = k < len(limits) and running[last + 1] > room[k]
                    _bulk(buckets, plan, energy, a + lo, a + (last if crosses else hi), k, dec)
                    if crosses:
                        _walk_into(buckets, tariff, plan, a + last, dec(energy[a + last]),
                                   cum + dec(running[last]))  # fmt: skip
                lo = hi
            cum += dec(running[size])
            used += running[size]
        charges: list[Charge] = []
        bases: dict[int, Decimal] = {}
        amount = ZERO
        for (s, tier), bucket in sorted(buckets.items(), key=lambda kv: (kv[1].first, kv[1].last)):
            if not bucket.energy:
                continue
            charge = _energy_charge(
                tariff,
                s,
                tier,
                bucket.energy,
                plan.starts[bucket.first],
                plan.ends[bucket.last],
                bucket.count,
            )
            charges.append(charge)
            version = s.version
            bases[version] = bases.get(version, ZERO) + charge.amount
            amount += charge.amount
        charges.extend(_taxes(tariff, "energy", bases, plan.starts[0], plan.ends[-1]))
        total_energy = dec(used)
        new = replace(
            state,
            rated_until=plan.ends[-1],
            tier_use=cum,
            tier_year=year,
            energy_total=state.energy_total + total_energy,
            energy_amount=state.energy_amount + amount,
        )
        demand = _demand_config(tariff, state.period)
        if demand is not None:
            decimals = usage.decimals() if isinstance(usage, UsageSeries) else energy
            new = _batch_demand(new, plan, decimals, demand[1].window_minutes)
    return Rated(tuple(charges), new)


def _windows(plan: _Plan, window: int) -> tuple[tuple[datetime, ...], tuple[int, ...]]:
    """Clock-aligned demand windows of the plan: each window's start and first interval."""
    hit = plan.windows.get(window)
    if hit is not None:
        return hit
    span = timedelta(minutes=window)
    wids: list[datetime] = []
    firsts: list[int] = []
    for i, (start, end) in enumerate(zip(plan.starts, plan.ends, strict=True)):
        if end - start > span:
            raise RatingError(
                "demand_window_shorter_than_interval",
                f"a {window}-minute demand window needs intervals of at most {window} minutes",
            )
        wid = floor_to_interval(start, window)
        if not wids or wids[-1] != wid:
            wids.append(wid)
            firsts.append(i)
    plan.windows[window] = (tuple(wids), tuple(firsts))
    return plan.windows[window]


def _batch_demand(
    state: RatingState, plan: _Plan, energy: Sequence[Decimal], window: int
) -> RatingState:
    """Fold the batch into clock-aligned demand windows exactly as `rate_interval` does.

    Windows close in time order and a later window must exceed the best so far
    (strictly) to replace it, so the first of equal maxima is kept, as in real time.
    """
    wids, firsts = _windows(plan, window)
    n = len(energy)
    if len(firsts) == n:
        sums: list[Decimal] = list(energy)
    else:
        bounds = (*firsts, n)
        sums = [sum(energy[bounds[j] : bounds[j + 1]], ZERO) for j in range(len(firsts))]
    cand_at: list[datetime] = list(wids[:-1])
    cands = sums[:-1]
    if state.window_start == wids[0]:
        sums[0] += state.window_energy
        if cands:
            cands[0] = sums[0]
    elif state.window_start is not None:
        cands.insert(0, state.window_energy)
        cand_at.insert(0, state.window_start)
    best, best_at = state.max_window_energy, state.max_window_at
    if cands:
        top = max(cands)
        if best_at is None or top > best:
            best, best_at = top, cand_at[cands.index(top)]
    return replace(
        state,
        window_start=wids[-1],
        window_energy=sums[-1],
        max_window_energy=best,
        max_window_at=best_at,
    )


# --------------------------------------------------------------------------- period charges


def _accrued(
    tariff: Tariff, state: RatingState, at: datetime
) -> dict[tuple[str, str, int], Decimal]:
    """Running amount of every time-pro-rated charge from the period start to ``at``.

    Per-day charges count local days (a 23- or 25-hour day is one day); per-month
    charges count the share of the billing cycle's local days. Accruals are
    differences of this running amount, so any accrual schedule adds up the same.
    """
    period = state.period
    zone = tariff.zone
    cycle_days = local_days(period.cycle_start, period.cycle_end, zone)
    out: dict[tuple[str, str, int], Decimal] = {}
    starts = tariff.version_starts
    first = tariff.version_index(period.start)
    for index in range(first, len(starts)):
        lo = max(period.start, starts[index])
        hi = min(at, starts[index + 1]) if index + 1 < len(starts) else at
        if lo >= period.end:
            break
        days = local_days(lo, hi, zone) if hi > lo else ZERO
        version = tariff.versions[index]
        for charge in version.standing:
            units = days if charge.per == "day" else days / cycle_days
            out[("standing", charge.name, index)] = (charge.amount * units).quantize(
                ACCRUAL_QUANTUM
            )
        if version.capacity is not None and state.capacity_kva:
            out[("capacity", "capacity", index)] = (
                version.capacity.price * state.capacity_kva * days / cycle_days
            ).quantize(ACCRUAL_QUANTUM)
        if version.minimum is not None:
            out[("minimum", "minimum", index)] = (
                version.minimum.amount * days / cycle_days
            ).quantize(ACCRUAL_QUANTUM)
    return out


def _accrual_rate(
    version: TariffVersion, kind: str, name: str, kva: Decimal | None
) -> tuple[Decimal, str]:
    """The price per unit of a time-pro-rated charge and that unit, for its record."""
    if kind == "capacity" and version.capacity is not None and kva:
        return version.capacity.price, "kVA·month"
    for charge in version.standing:
        if charge.name == name:
            return charge.amount, charge.per
    raise RatingError("no_price", f"no rate for {kind} {name!r}")  # pragma: no cover


def accrue_standing(tariff: Tariff, state: RatingState, until: datetime) -> Rated:
    """Charge standing and capacity charges from where they were last accrued up to ``until``.

    Prepaid wallets call this daily (UK practice: standing charges keep
    accruing on prepayment); `close_period` accrues the rest.
    """
    until = min(utc(until), state.period.end)
    since = state.standing_until or state.period.start
    if until <= since:
        return Rated((), state)
    with localcontext(RATING_CONTEXT):
        before = _accrued(tariff, state, since)
        after = _accrued(tariff, state, until)
        charges: list[Charge] = []
        bases: dict[str, dict[int, Decimal]] = {}
        for (kind, name, index), value in after.items():
            if kind == "minimum":
                continue
            amount = value - before.get((kind, name, index), ZERO)
            if not amount:
                continue
            version = tariff.versions[index]
            rate, unit = _accrual_rate(version, kind, name, state.capacity_kva)
            charges.append(
                Charge(
                    kind=kind,
                    start=since,
                    end=until,
                    quantity=amount / rate,
                    unit=unit,
                    unit_price=rate,
                    amount=amount,
                    version=version.label,
                    name=name,
                )
            )
            per_kind = bases.setdefault(kind, {})
            per_kind[index] = per_kind.get(index, ZERO) + amount
        added = sum((c.amount for c in charges), ZERO)
        for kind, per_version in bases.items():
            charges.extend(_taxes(tariff, kind, per_version, since, until))
    return Rated(
        tuple(charges),
        replace(state, standing_until=until, standing_amount=state.standing_amount + added),
    )


def close_period(tariff: Tariff, state: RatingState) -> Rated:
    """Finish a billing period: remaining standing/capacity, demand, minimum charge, their taxes.

    The minimum charge is compared with the period's charges before tax and,
    when higher, the difference is charged as kind ``minimum`` (it replaces a
    lower total; it is never added on top).
    """
    if state.closed:
        raise RatingError("period_closed", "the billing period is already closed")
    period = state.period
    rest = accrue_standing(tariff, state, period.end)
    state = rest.state
    charges = list(rest.charges)
    with localcontext(RATING_CONTEXT):
        demand_amount = ZERO
        demand = _demand_config(tariff, period)
        if demand is not None:
            index, charge = demand
            version, window = tariff.versions[index], charge.window_minutes
            best, best_at = state.max_window_energy, state.max_window_at
            if state.window_start is not None and (best_at is None or state.window_energy > best):
                best, best_at = state.window_energy, state.window_start
            if best_at is not None:
                kw = best * _SIXTY / window
                price = charge.price
                demand_amount = kw * price
                charges.append(
                    Charge(
                        kind="demand",
                        start=best_at,
                        end=best_at + timedelta(minutes=window),
                        quantity=kw,
                        unit=tariff.demand_unit,
                        unit_price=price,
                        amount=demand_amount,
                        version=version.label,
                        name=f"maximum demand over {window} minutes",
                    )
                )
                charges.extend(
                    _taxes(tariff, "demand", {index: demand_amount}, period.start, period.end)
                )
        owed = _accrued(tariff, state, period.end)
        minimum = sum((v for (kind, _, _), v in owed.items() if kind == "minimum"), ZERO)
        before_tax = state.energy_amount + state.standing_amount + demand_amount
        if minimum and before_tax < minimum:
            last = tariff.version_index(period.end - _MICROSECOND)
            uplift = minimum - before_tax
            charges.append(
                Charge(
                    kind="minimum",
                    start=period.start,
                    end=period.end,
                    quantity=Decimal(1),
                    unit="period",
                    unit_price=uplift,
                    amount=uplift,
                    version=tariff.versions[last].label,
                    name="minimum charge",
                )
            )
            charges.extend(_taxes(tariff, "minimum", {last: uplift}, period.start, period.end))
    return Rated(tuple(charges), replace(state, closed=True))


def rate_period(
    tariff: Tariff,
    period: BillingPeriod,
    usage: UsageSeries | Sequence[IntervalUse],
    *,
    previous: RatingState | None = None,
    tier_use: Decimal | None = None,
    capacity_kva: Decimal | None = None,
    series: PriceSeries | None = None,
) -> Rated:
    """Re-rate a whole billing period from its intervals: open, rate in batch, close."""
    state = open_period(tariff, period, previous, tier_use=tier_use, capacity_kva=capacity_kva)
    rated = rate_batch(tariff, state, usage, series)
    closed = close_period(tariff, rated.state)
    return Rated(rated.charges + closed.charges, closed.state)


__all__ = [
    "RATING_CONTEXT",
    "Charge",
    "PriceSeries",
    "Rated",
    "RatingError",
    "RatingState",
    "Summary",
    "TariffError",
    "UsageSeries",
    "accrue_standing",
    "clear_plan_cache",
    "close_period",
    "open_period",
    "rate_batch",
    "rate_interval",
    "rate_period",
    "summarize",
]
