"""Local time, DST days and billing periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from custom_components.prepaid_meter.engine.calendars import (
    BillingPeriod,
    CalendarError,
    billing_day_in_month,
    billing_period,
    billing_periods,
    day_bounds,
    floor_to_interval,
    interval_number,
    local_days,
    utc,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (LONDON, date(2024, 3, 31), 23),
        (LONDON, date(2024, 10, 27), 25),
        (LONDON, date(2024, 6, 1), 24),
        (NEW_YORK, date(2024, 3, 10), 23),
        (NEW_YORK, date(2024, 11, 3), 25),
    ],
)
def test_dst_days_have_23_or_25_hours(tz: str, day: date, hours: int) -> None:
    start, end = day_bounds(day, tz)
    assert end - start == timedelta(hours=hours)
    assert local_days(start, end, tz) == 1


def test_part_of_a_25_hour_day_counts_by_its_real_length() -> None:
    start, _end = day_bounds(date(2024, 10, 27), LONDON)
    assert local_days(start, start + timedelta(hours=5), LONDON) == Decimal(5) / Decimal(25)


def test_a_part_day_is_divided_in_the_callers_precision_every_time() -> None:
    """The answers are remembered per precision and rounding, so each caller gets its own."""
    start, _end = day_bounds(date(2024, 6, 1), LONDON)
    hour = start + timedelta(hours=1)
    for _ in range(2):
        with localcontext(prec=4, rounding=ROUND_DOWN):
            assert local_days(start, hour, LONDON) == Decimal("0.04166")
        with localcontext(prec=60):
            assert local_days(start, hour, LONDON) == Decimal(1) / Decimal(24)
            assert len(local_days(start, hour, LONDON).as_tuple().digits) == 60


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2024, 2, date(2024, 2, 29)),  # leap year
        (2023, 2, date(2023, 2, 28)),
        (2024, 4, date(2024, 4, 30)),
        (2024, 1, date(2024, 1, 31)),
    ],
)
def test_billing_day_31_is_clamped_to_month_end(year: int, month: int, expected: date) -> None:
    assert billing_day_in_month(year, month, 31) == expected


def test_billing_period_day_31_across_february() -> None:
    tz = "Asia/Shanghai"
    period = billing_period(datetime(2023, 2, 10, tzinfo=UTC), 31, tz)
    assert period.start == datetime(2023, 1, 30, 16, tzinfo=UTC)  # 31 Jan local midnight
    assert period.end == datetime(2023, 2, 27, 16, tzinfo=UTC)  # 28 Feb local midnight
    following = billing_period(period.end, 31, tz)
    assert following.start == period.end
    assert following.end == datetime(2023, 3, 30, 16, tzinfo=UTC)  # 31 Mar
    leap = billing_period(datetime(2024, 2, 10, tzinfo=UTC), 31, tz)
    assert leap.end == datetime(2024, 2, 28, 16, tzinfo=UTC)  # 29 Feb


def test_billing_period_starts_at_local_midnight_across_dst() -> None:
    period = billing_period(datetime(2024, 3, 20, tzinfo=UTC), 15, LONDON)
    assert period.start == datetime(2024, 3, 15, 0, tzinfo=UTC)  # GMT
    assert period.end == datetime(2024, 4, 14, 23, tzinfo=UTC)  # BST midnight
    assert local_days(period.start, period.end, LONDON) == 31


def test_billing_periods_cover_a_range_without_gaps() -> None:
    start = datetime(2024, 1, 10, tzinfo=UTC)
    end = datetime(2024, 5, 3, tzinfo=UTC)
    parts = billing_periods(start, end, 31, "UTC")
    assert parts[0].start == start
    assert parts[-1].end == end
    for a, b in pairwise(parts):
        assert a.end == b.start
    assert [p.cycle_start.date() for p in parts] == [
        date(2023, 12, 31),
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert not parts[0].is_whole
    assert parts[1].is_whole


def test_explicit_period_and_errors() -> None:
    a, b = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)
    assert BillingPeriod.explicit(a, b).is_whole
    with pytest.raises(CalendarError) as err:
        BillingPeriod.explicit(b, a)
    assert err.value.key == "empty_period"
    with pytest.raises(CalendarError) as err:
        utc(datetime(2024, 1, 1))
    assert err.value.key == "naive_datetime"
    with pytest.raises(CalendarError) as err:
        billing_day_in_month(2024, 1, 32)
    assert err.value.key == "invalid_billing_day"


def test_floor_to_interval() -> None:
    at = datetime(2024, 1, 1, 10, 44, 59, tzinfo=UTC)
    assert floor_to_interval(at, 15) == datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert floor_to_interval(at, 60) == datetime(2024, 1, 1, 10, tzinfo=UTC)


def _local(tz: str, *parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz), fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize("minutes", [1, 5, 15, 30, 60])
def test_site_intervals_start_on_the_local_clock(minutes: int) -> None:
    # Kolkata is +05:30: its hours start half-way through UTC's.
    for tz in ("Asia/Shanghai", "Asia/Kolkata", NEW_YORK):
        midnight = _local(tz, 2026, 1, 15, 0, 0)
        just_before = midnight - timedelta(microseconds=1)
        assert interval_number(midnight, minutes) == interval_number(just_before, minutes) + 1
        last = midnight + timedelta(minutes=minutes) - timedelta(microseconds=1)
        assert interval_number(last, minutes) == interval_number(midnight, minutes)
        assert interval_number(last + timedelta(microseconds=1), minutes) == (
            interval_number(midnight, minutes) + 1
        )


def test_a_clock_change_starts_a_new_interval() -> None:
    berlin = "Europe/Berlin"
    # Autumn: 02:59:50 summer time, then (ten seconds later) 02:00:00 winter time.
    before = _local(berlin, 2026, 10, 25, 2, 59, 50)
    after = _local(berlin, 2026, 10, 25, 2, 0, 0, fold=1)
    assert utc(after) - utc(before) == timedelta(seconds=10)
    assert interval_number(after, 15) != interval_number(before, 15)
    # Within the repeated hour, two polls of one interval share its number.
    assert interval_number(after + timedelta(minutes=14), 15) == interval_number(after, 15)
    # Spring: 01:59:50 winter time, then 03:00:00 summer time.
    spring = _local(berlin, 2026, 3, 29, 1, 59, 50)
    assert interval_number(spring + timedelta(seconds=10), 15) != interval_number(spring, 15)


def test_interval_number_needs_an_aware_time() -> None:
    with pytest.raises(CalendarError):
        interval_number(datetime(2026, 1, 1), 15)
