"""Prepaid charging: the intervals a tenant's wallet is charged for, the same at a poll and a bill.

A poll charges the tenant's counter deltas since its previous reading as one
interval ending at the poll (the tenant's meters summed: energy of a meter
read after a gap lands in the tenant's latest interval). Where the price can
change inside such an interval (a time-of-use switch, a demand window) the
interval is cut on the tariff's price grid and its energy spread over the
pieces by time (`intervals.spread`), so a poll across 08:00 or a meter back
after a night offline is priced hour by hour, not at the start's price.

The bill of a period rebuilds the very same intervals from the stored
readings (`tenant_usage`) and rates them in batch; batch and real-time rating
give equal totals for equal intervals, so a prepaid bill equals what was
deducted. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from math import gcd

from .calendars import EPOCH, BillingPeriod, floor_to_interval
from .intervals import INTERVAL_MINUTES, IntervalUse, spread
from .rating import RATING_CONTEXT, UsageSeries
from .tariffs import Tariff, TouPrice

ZERO = Decimal(0)
#: A meter's part of its tenant's charge is cut to this quantum; the last meter takes the rest.
SHARE_QUANTUM = Decimal(1).scaleb(-20)


def price_grid(tariff: Tariff) -> int | None:
    """Minutes of the grid every price change of the tariff lies on; None if it never changes.

    Time-of-use switches (local wall-clock minutes) and demand windows need
    cuts; version changes are cut by the rating engine itself. The grid is
    the longest supported interval that divides every switch minute, the
    demand window and the zone's UTC offsets (intervals are aligned on UTC).
    """
    step = 0
    for version in tariff.versions:
        energy = version.energy
        if isinstance(energy, TouPrice):
            step = gcd(step, 60 * 24)
            for season in energy.calendar.seasons:
                for schedule in (season.weekday, season.weekend, season.holiday):
                    for at, _ in schedule.switches if schedule is not None else ():
                        step = gcd(step, at.hour * 60 + at.minute)
        if version.demand is not None:
            step = gcd(step, version.demand.window_minutes)
    if not step:
        return None
    step = gcd(step, _offset_minutes(tariff))
    return max(m for m in INTERVAL_MINUTES if step % m == 0)


def _offset_minutes(tariff: Tariff) -> int:
    """The gcd of the tariff zone's UTC offsets (in minutes) around the versions' years."""
    step = 0
    years = {v.effective.year for v in tariff.versions} | {2026}
    for year in sorted(years):
        for month in (1, 7):
            offset = datetime(year, month, 1, tzinfo=tariff.zone).utcoffset() or timedelta()
            step = gcd(step, abs(int(offset / timedelta(minutes=1))))
    return step or 60 * 24


def cut(intervals: Sequence[IntervalUse], grid: int | None) -> list[IntervalUse]:
    """Cut intervals at the grid's boundaries, energy spread by time; unchanged without a grid."""
    if grid is None:
        return list(intervals)
    out: list[IntervalUse] = []
    step = timedelta(minutes=grid)
    for iv in intervals:
        if floor_to_interval(iv.start, grid) + step >= iv.end:
            out.append(iv)
            continue
        for at, energy in spread(iv.start, iv.end, iv.energy, grid):
            out.append(IntervalUse(max(at, iv.start), min(at + step, iv.end), energy, iv.estimated))
    return out


def on_grid(series: UsageSeries, grid: int | None) -> bool:
    """Whether no interval of a regular series crosses a boundary of the price grid."""
    if grid is None:
        return True
    return grid % series.minutes == 0 and (series.start - EPOCH) % timedelta(minutes=grid) == (
        timedelta()
    )


def poll_interval(
    last_reading: datetime | None, now: datetime, period: BillingPeriod, energy: Decimal
) -> IntervalUse | None:
    """The interval a poll charges: from the tenant's last reading (or the period start) to now."""
    if last_reading is None or energy <= 0:
        return None
    start = max(last_reading, period.start)
    if now <= start:
        return None
    return IntervalUse(start, now, energy)


def tenant_usage(
    meters: Sequence[UsageSeries | Sequence[IntervalUse]], grid: int | None
) -> UsageSeries | list[IntervalUse]:
    """A tenant's use in a period from its meters' poll intervals, as `poll_interval` charged it.

    Meters read at the same regular instants stay a compact series when the
    price grid allows; otherwise every reading instant of any of the tenant's
    meters ends an interval that starts at the instant before it, and the
    energies read at an instant are added up.
    """
    if not meters:
        return []
    series = [m for m in meters if isinstance(m, UsageSeries)]
    if (
        len(series) == len(meters)
        and len({(s.start, s.minutes, len(s.energy)) for s in series}) == 1
    ):
        first = series[0]
        if on_grid(first, grid):
            if len(series) == 1:
                return first
            exponents = {s.exponent for s in series}
            if len(exponents) == 1 and first.exponent is not None:  # integers of one unit
                ints = zip(*(s.energy for s in series), strict=True)
                return UsageSeries(first.start, first.minutes, list(map(sum, ints)), first.exponent)
            columns = zip(*(s.decimals() for s in series), strict=True)
            return UsageSeries(first.start, first.minutes, [sum(c, ZERO) for c in columns])
    instants: set[datetime] = set()
    energy: dict[datetime, Decimal] = {}
    with localcontext(RATING_CONTEXT):
        for meter in meters:
            for iv in meter.intervals() if isinstance(meter, UsageSeries) else meter:
                instants.add(iv.start)
                instants.add(iv.end)
                energy[iv.end] = energy.get(iv.end, ZERO) + iv.energy
    ordered = sorted(instants)
    merged = [IntervalUse(a, b, energy[b]) for a, b in pairwise(ordered) if energy.get(b, ZERO) > 0]
    return cut(merged, grid)


def share(amount: Decimal, energies: Sequence[Decimal]) -> list[Decimal]:
    """Split a tenant's charge over its meters by energy; the parts add up to ``amount`` exactly."""
    total = sum(energies, ZERO)
    if len(energies) <= 1 or not total:
        return [amount, *[ZERO] * (len(energies) - 1)] if energies else []
    with localcontext(RATING_CONTEXT):
        parts = [(amount * e / total).quantize(SHARE_QUANTUM) for e in energies[:-1]]
        return [*parts, amount - sum(parts, ZERO)]
