"""Local time and billing periods: UTC instants in, the site's wall clock for the rules.

Everything is stored and compared in UTC; a tariff's rules (time-of-use bands,
billing days, standing charges per day) are read on the site's local clock,
so days of 23 and 25 hours at daylight-saving changes count as one day each.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, getcontext, localcontext
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class CalendarError(ValueError):
    """A time or period the engine cannot use; ``key`` names it for translation."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def as_zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The site's time zone from its IANA name (as Home Assistant stores it) or a ZoneInfo."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise CalendarError("unknown_timezone", f"unknown time zone {tz!r}") from err


def utc(at: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused, it has no meaning here."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise CalendarError("naive_datetime", f"datetime {at!r} has no time zone")
    return at.astimezone(UTC)


def micros(delta: timedelta) -> int:
    """A duration in whole microseconds, exact (no float)."""
    return delta // _MICROSECOND


def local_midnight(day: date, tz: str | ZoneInfo) -> datetime:
    """The UTC instant a local day begins.

    Where midnight itself does not exist (a zone that springs forward at 00:00),
    the day begins at the first local instant that does.
    """
    zone = as_zone(tz)
    naive = datetime.combine(day, time(0))
    # A skipped midnight: fold=0 maps it past the gap, to the day's first instant.
    return naive.replace(tzinfo=zone).astimezone(UTC)


def local_date(at: datetime, tz: str | ZoneInfo) -> date:
    """The local calendar date of a UTC instant."""
    return utc(at).astimezone(as_zone(tz)).date()


def day_bounds(day: date, tz: str | ZoneInfo) -> tuple[datetime, datetime]:
    """A local day as a UTC half-open range; 23 or 25 hours long at DST changes."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def local_days(start: datetime, end: datetime, tz: str | ZoneInfo) -> Decimal:
    """How many local days ``[start, end)`` covers; a part day counts by its share of that day.

    A whole day is exactly 1 whatever its length (23, 24 or 25 hours), which is
    how a per-day standing charge is billed. A part day's share is divided out
    in the caller's decimal precision and rounding. The answers are remembered:
    a bill run asks for the same period's days for every tenant.
    """
    context = getcontext()
    return _local_days(start, end, tz, context.prec, context.rounding)


@functools.lru_cache(maxsize=256)
def _local_days(
    start: datetime, end: datetime, tz: str | ZoneInfo, prec: int, rounding: str
) -> Decimal:
    with localcontext(prec=prec, rounding=rounding):
        return _count_days(start, end, tz)


def _count_days(start: datetime, end: datetime, tz: str | ZoneInfo) -> Decimal:
    start, end = utc(start), utc(end)
    if end <= start:
        return ZERO
    zone = as_zone(tz)
    first = start.astimezone(zone).date()
    last = (end - _MICROSECOND).astimezone(zone).date()

    def share(day: date) -> Decimal:
        lo, hi = day_bounds(day, zone)
        overlap = min(hi, end) - max(lo, start)
        if overlap == hi - lo:
            return Decimal(1)
        return Decimal(micros(overlap)) / Decimal(micros(hi - lo))

    if first == last:
        return share(first)
    # Every day between the first and the last is covered whole.
    return share(first) + (last - first).days - 1 + share(last)


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return (nxt - timedelta(days=1)).day


def billing_day_in_month(year: int, month: int, billing_day: int) -> date:
    """The billing date of a month; day 29-31 is clamped to the month's last day.

    So billing day 31 falls on 28 or 29 February and 30 April (the trap
    utility_meter fell into was skipping such months altogether).
    """
    if not 1 <= billing_day <= 31:
        raise CalendarError("invalid_billing_day", f"billing day {billing_day} is not 1-31")
    return date(year, month, min(billing_day, _days_in_month(year, month)))


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """A span that is billed together, in UTC, and the full cycle it belongs to.

    ``cycle_start``/``cycle_end`` are the whole billing cycle; a move-in or
    move-out part period keeps them so that monthly charges are pro-rated
    against the real cycle length.
    """

    start: datetime
    end: datetime
    cycle_start: datetime
    cycle_end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end", "cycle_start", "cycle_end"):
            object.__setattr__(self, name, utc(getattr(self, name)))
        if not self.start < self.end:
            raise CalendarError("empty_period", "a billing period must end after it starts")
        if not self.cycle_start <= self.start < self.end <= self.cycle_end:
            raise CalendarError("period_outside_cycle", "a period must lie within its cycle")

    @classmethod
    def explicit(cls, start: datetime, end: datetime) -> BillingPeriod:
        """A period given by its own start and end (a one-off or a yearly bill)."""
        return cls(start, end, start, end)

    def part(self, start: datetime, end: datetime) -> BillingPeriod:
        """The part of this period between ``start`` and ``end`` (move-in, move-out)."""
        return BillingPeriod(
            max(utc(start), self.start), min(utc(end), self.end), self.cycle_start, self.cycle_end
        )

    @property
    def is_whole(self) -> bool:
        """True when the period is its whole cycle (no pro-rating)."""
        return self.start == self.cycle_start and self.end == self.cycle_end


def billing_period(at: datetime, billing_day: int, tz: str | ZoneInfo) -> BillingPeriod:
    """The monthly billing cycle containing ``at``: from local midnight of the billing day."""
    zone = as_zone(tz)
    local = utc(at).astimezone(zone)
    year, month = local.year, local.month
    start = local_midnight(billing_day_in_month(year, month, billing_day), zone)
    if utc(at) < start:
        year, month = _add_months(year, month, -1)
        start = local_midnight(billing_day_in_month(year, month, billing_day), zone)
    ny, nm = _add_months(year, month, 1)
    end = local_midnight(billing_day_in_month(ny, nm, billing_day), zone)
    return BillingPeriod(start, end, start, end)


def billing_periods(
    start: datetime, end: datetime, billing_day: int, tz: str | ZoneInfo
) -> list[BillingPeriod]:
    """The monthly cycles covering ``[start, end)``, the first and last cut to that range."""
    start, end = utc(start), utc(end)
    periods: list[BillingPeriod] = []
    at = start
    while at < end:
        cycle = billing_period(at, billing_day, tz)
        periods.append(cycle.part(at, min(end, cycle.end)))
        at = cycle.end
    return periods


def interval_number(local: datetime, minutes: int) -> int:
    """The number of the ``minutes`` interval of the local clock that ``local`` is in.

    ``local`` is an aware time in the site's zone: intervals are aligned on its
    wall clock (an hour starts at :00 in India's +05:30 too), so local midnight
    always starts one. Two times are in the same interval when their numbers
    are equal; across a change of the clock (summer time) the numbers jump, and
    a poll on either side of it counts as a new interval.
    """
    offset = local.utcoffset()
    if offset is None:
        raise CalendarError("naive_datetime", f"datetime {local!r} has no time zone")
    seconds = local.timestamp() + offset.total_seconds()
    return int(seconds // (60 * minutes))


def floor_to_interval(at: datetime, minutes: int) -> datetime:
    """The start of the metering interval containing ``at``, aligned on UTC multiples.

    Aligned to the Unix epoch, which matches local clock boundaries in every
    zone whose offset is a multiple of the interval (all zones for 15 minutes
    except a few such as Nepal's +05:45 with 30 or 60 minutes).
    """
    step = timedelta(minutes=minutes)
    at = utc(at)
    return at - (at - EPOCH) % step
