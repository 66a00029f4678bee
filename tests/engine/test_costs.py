"""Running cost sums (today, billing period, in all), remaining energy and the warning level.

Pure functions and classes: no Home Assistant, time passed in.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.costs import CostTracker, remaining_energy
from custom_components.prepaid_meter.engine.warnings import (
    WarningLevel,
    WarningLevels,
    warning_level,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def test_today_restarts_at_local_midnight_and_the_period_on_the_billing_day() -> None:
    tracker = CostTracker("Asia/Shanghai", 15, local(2026, 3, 14, 22, 0))
    tracker.add("t1", Decimal("1.25"), local(2026, 3, 14, 22, 0))
    tracker.add("t1", Decimal("0.75"), local(2026, 3, 14, 23, 59, 59))
    sums = tracker.sums("t1", local(2026, 3, 14, 23, 59, 59))
    assert (sums.today, sums.period, sums.total) == (Decimal(2), Decimal(2), Decimal(2))

    # Local midnight of the 15th: a new day and, on billing day 15, a new period.
    assert tracker.sums("t1", local(2026, 3, 15, 0, 0)).today == 0
    assert tracker.sums("t1", local(2026, 3, 15, 0, 0)).period == 0
    assert tracker.sums("t1", local(2026, 3, 15, 0, 0)).total == 2
    assert tracker.day_start == local(2026, 3, 15)
    assert tracker.period_start == local(2026, 3, 15)

    tracker.add("t1", Decimal("0.10"), local(2026, 3, 16, 8, 0))
    sums = tracker.sums("t1", local(2026, 3, 16, 9, 0))
    assert (sums.today, sums.period, sums.total) == (
        Decimal("0.10"),
        Decimal("0.10"),
        Decimal("2.10"),
    )
    # The day rolls, the period does not.
    sums = tracker.sums("t1", local(2026, 3, 17, 0, 0, 1))
    assert (sums.today, sums.period) == (0, Decimal("0.10"))


def test_a_back_dated_charge_counts_where_it_belongs() -> None:
    """A hand reading or a shared cost dated yesterday: in the period and total, not today."""
    now = local(2026, 3, 20, 12, 0)
    tracker = CostTracker("Asia/Shanghai", 1, now)
    tracker.add("t1", Decimal(3), now)
    tracker.add("t1", Decimal(5), local(2026, 3, 19, 18, 0))
    tracker.add("t1", Decimal(7), local(2026, 2, 27, 18, 0))  # last period
    sums = tracker.sums("t1", now)
    assert (sums.today, sums.period, sums.total) == (Decimal(3), Decimal(8), Decimal(15))
    assert tracker.sums("nobody", now).total == 0


def test_a_day_is_25_hours_when_the_clocks_go_back() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 25, 0, 0, tzinfo=berlin)
    tracker = CostTracker(berlin, 1, start)
    tracker.add("t1", Decimal(1), start)
    # 24 hours after local midnight it is still 23:00 on the same day.
    later = start.astimezone(UTC) + timedelta(hours=24)
    assert tracker.sums("t1", later).today == 1
    assert tracker.sums("t1", later + timedelta(hours=1)).today == 0


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=60 * 24 * 40),
            st.decimals(min_value=Decimal("-5"), max_value=Decimal("50"), places=6),
        ),
        max_size=40,
    )
)
def test_the_sums_equal_the_charges_summed_by_window(charges: list[tuple[int, Decimal]]) -> None:
    """Whatever the order of charges, each sum is exactly the charges in its window."""
    begin = local(2026, 1, 10)
    end = begin + timedelta(minutes=60 * 24 * 40)
    tracker = CostTracker("Asia/Shanghai", 1, begin)
    stamped = sorted((begin + timedelta(minutes=m), amount) for m, amount in charges)
    for at, amount in stamped:
        tracker.add("t1", amount, at)
    sums = tracker.sums("t1", end)
    day_start = local(end.year, end.month, end.day)
    period_start = local(end.year, end.month, 1)
    assert sums.total == sum((a for _, a in stamped), Decimal(0))
    assert sums.today == sum((a for t, a in stamped if t >= day_start), Decimal(0))
    assert sums.period == sum((a for t, a in stamped if t >= period_start), Decimal(0))


def test_remaining_energy_is_the_balance_over_the_price_rounded_down() -> None:
    assert remaining_energy(Decimal("10"), Decimal("1.50")) == Decimal("6.6")  # 6.666...
    assert remaining_energy(Decimal("0.14"), Decimal("1.50")) == 0  # 0.093 kWh
    assert remaining_energy(Decimal("-3"), Decimal("1.50")) == 0
    assert remaining_energy(Decimal("10"), None) is None
    assert remaining_energy(Decimal("10"), Decimal(0)) is None


LEVELS = WarningLevels(balances=(Decimal(100), Decimal(50)), days_left=Decimal(3))


def test_the_warning_level_follows_the_balance_and_the_forecast() -> None:
    def level(balance: str, days: str | None = None, *, levels: WarningLevels = LEVELS) -> str:
        forecast = None if days is None else Decimal(days)
        return warning_level(Decimal(balance), forecast, levels, Decimal(0)).value

    assert level("150") == WarningLevel.NONE
    assert level("150", "2.5") == WarningLevel.FEW_DAYS
    assert level("100") == WarningLevel.LOW
    assert level("50.01", "1") == WarningLevel.LOW
    assert level("50") == WarningLevel.VERY_LOW
    assert level("0.01") == WarningLevel.VERY_LOW
    assert level("0") == WarningLevel.EXHAUSTED
    # With one level, crossing it is "low"; emergency credit moves the exhausted point.
    one = WarningLevels(balances=(Decimal(20),))
    assert level("5", levels=one) == WarningLevel.LOW
    assert warning_level(Decimal("-5"), None, one, Decimal("-10")) == WarningLevel.LOW
    assert warning_level(Decimal("-10"), None, one, Decimal("-10")) == WarningLevel.EXHAUSTED
