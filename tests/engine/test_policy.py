"""The supply policy decides the relay from balance, site rule and overrides."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from custom_components.prepaid_meter.engine.policy import (
    PolicyError,
    SupplyPolicy,
    SupplyState,
    decide_supply,
    is_due,
    may_grant_emergency,
    parse_friendly_hours,
)

ON = SupplyPolicy(cut_off_enabled=True)


def test_cut_off_is_off_until_the_landlord_turns_it_on() -> None:
    decision = decide_supply(Decimal("-50"), SupplyPolicy())
    assert decision.relay_closed
    assert decision.state is SupplyState.ON


def test_cut_off_at_zero_and_below() -> None:
    assert decide_supply(Decimal("0.01"), ON).relay_closed
    assert decide_supply(Decimal("0"), ON).state is SupplyState.CUT_OFF
    assert not decide_supply(Decimal("-0.000001"), ON).relay_closed


def test_credit_limit_moves_the_cut_off_point() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, cut_off_at=Decimal("-20"))
    assert decide_supply(Decimal("-19.99"), policy).relay_closed
    assert not decide_supply(Decimal("-20"), policy).relay_closed


def test_lock_wins_over_credit_and_force_on_wins_over_debt() -> None:
    assert decide_supply(Decimal(100), ON, locked=True).state is SupplyState.LOCKED
    assert decide_supply(Decimal(100), ON, locked=True, forced_on=True).state is SupplyState.LOCKED
    forced = decide_supply(Decimal(-100), ON, forced_on=True)
    assert forced.relay_closed
    assert forced.state is SupplyState.FORCED_ON


# --- grace, friendly hours, emergency credit ------------------------------------------------

SHANGHAI = "Asia/Shanghai"
# Weekday evenings and nights, weekends all day; 2026-10-01 (National Day) a holiday.
FRIENDLY = parse_friendly_hours("mon-fri 18:00-08:00; sat-sun 00:00-24:00", "2026-10-01", SHANGHAI)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-09-<day> at a Shanghai wall-clock time, as UTC (Shanghai is UTC+8)."""
    return datetime(2026, 9, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_friendly_hours_follow_the_local_clock_and_holidays() -> None:
    # 2026-09-28 is a Monday.
    assert not FRIENDLY.active(local(28, 12))
    assert FRIENDLY.active(local(28, 18))
    assert FRIENDLY.active(local(29, 7, 59))  # the overnight part, next morning
    assert not FRIENDLY.active(local(29, 8))
    assert FRIENDLY.active(local(26, 12))  # Saturday
    assert FRIENDLY.active(datetime(2026, 10, 1, 4, tzinfo=UTC))  # holiday, 12:00 local
    assert FRIENDLY.end_after(local(28, 20)) == local(29, 8)
    # Friday evening runs through the weekend; Sunday night is not a weekday evening.
    assert FRIENDLY.end_after(local(25, 19)) == local(28, 0)
    # Wed 30 Sep evening, Thu 1 Oct holiday, Fri 2 Oct 00:00-08:00 overnight part.
    assert FRIENDLY.end_after(local(30, 19)) == datetime(2026, 10, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "holidays", "key"),
    [
        ("mon-fri 18:00", "", "invalid_friendly_hours"),
        ("funday 18:00-08:00", "", "invalid_friendly_hours"),
        ("mon 25:00-08:00", "", "invalid_friendly_hours"),
        ("mon 08:00-08:00", "", "invalid_friendly_hours"),
        ("", "2026-13-01", "invalid_holidays"),
    ],
)
def test_bad_friendly_hours_are_refused(schedule: str, holidays: str, key: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_friendly_hours(schedule, holidays)
    assert err.value.key == key


def test_grace_holds_the_cut_off_until_it_ends() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, grace=timedelta(minutes=30))
    t0 = datetime(2026, 9, 28, 4, tzinfo=UTC)
    held = decide_supply(Decimal(-1), policy, now=t0 + timedelta(minutes=29), due_since=t0)
    assert held.relay_closed
    assert held.state is SupplyState.GRACE
    assert held.recheck_at == t0 + timedelta(minutes=30)
    cut = decide_supply(Decimal(-1), policy, now=t0 + timedelta(minutes=30), due_since=t0)
    assert cut.state is SupplyState.CUT_OFF


def test_friendly_hours_hold_a_cut_off_but_never_reconnect() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, friendly=FRIENDLY)
    held = decide_supply(Decimal(0), policy, now=local(28, 20))
    assert held.relay_closed
    assert held.state is SupplyState.FRIENDLY_HOURS
    assert held.recheck_at == local(29, 8)
    assert not decide_supply(Decimal(0), policy, now=local(29, 8)).relay_closed
    # Already cut off before the friendly hours began: stays off.
    assert not decide_supply(Decimal(0), policy, now=local(28, 20), cut_off=True).relay_closed


def test_emergency_credit_lowers_the_cut_off_point_once() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, emergency_credit=Decimal(5))
    now = local(28, 12)
    assert not decide_supply(Decimal(-1), policy, now=now).relay_closed
    rescued = decide_supply(Decimal(-1), policy, now=now, cut_off=True, emergency=Decimal(5))
    assert rescued.relay_closed
    assert rescued.state is SupplyState.EMERGENCY
    assert not decide_supply(Decimal(-5), policy, now=now, emergency=Decimal(5)).relay_closed
    assert may_grant_emergency(policy, Decimal(0))
    assert not may_grant_emergency(policy, Decimal(5))
    assert not may_grant_emergency(SupplyPolicy(cut_off_enabled=True), Decimal(0))


def test_overrides_win_over_grace_friendly_and_emergency() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, friendly=FRIENDLY, grace=timedelta(hours=1))
    now = local(28, 20)
    assert decide_supply(Decimal(9), policy, now=now, locked=True).state is SupplyState.LOCKED
    forced = decide_supply(Decimal(-9), policy, now=local(28, 12), forced_on=True, cut_off=True)
    assert forced.state is SupplyState.FORCED_ON


def test_postpaid_is_cut_off_only_for_an_overdue_bill() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, emergency_credit=Decimal(20))
    # Uses first: far below zero, still on (and never on "emergency credit").
    used = decide_supply(Decimal(-900), policy, postpaid=True, emergency=Decimal(20))
    assert (used.relay_closed, used.state) == (True, SupplyState.ON)
    assert not is_due(Decimal(-900), policy, postpaid=True)
    overdue = decide_supply(Decimal(50), policy, postpaid=True, overdue=True)
    assert (overdue.relay_closed, overdue.state) == (False, SupplyState.CUT_OFF)
    assert is_due(Decimal(50), policy, postpaid=True, overdue=True)
    # Grace and friendly hours hold it back as for a prepaid tenant.
    now = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)
    graced = SupplyPolicy(cut_off_enabled=True, grace=timedelta(hours=1))
    held = decide_supply(Decimal(50), graced, postpaid=True, overdue=True, now=now, due_since=now)
    assert held.state is SupplyState.GRACE
    # The site's switch still rules: cutting power off is off until the landlord turns it on.
    off = decide_supply(Decimal(-900), SupplyPolicy(), postpaid=True, overdue=True)
    assert off.relay_closed
    # A prepaid tenant's overdue flag (the hook) and its balance both count.
    assert is_due(Decimal(50), policy, overdue=True)
    assert is_due(Decimal(0), policy)
