"""Abnormal-use rules: spike against the usual hour, sustained load, overload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.alarms import (
    OVERLOAD,
    RATE_WINDOW,
    SPIKE,
    SUSTAINED,
    AlarmConfigError,
    RatePoint,
    UseLimits,
    UseState,
    add_use,
    energy_rate,
    evaluate_use,
    hourly_use,
    limits_from_options,
    prune,
    same_hours_before,
    usual_load,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def d(text: str) -> Decimal:
    return Decimal(text)


def test_options_parse_with_defaults_and_refuse_nonsense() -> None:
    limits = limits_from_options({})
    assert limits == UseLimits()
    assert limits.spike_factor == 3
    assert limits.capacity_kw is None
    limits = limits_from_options(
        {"capacity_kw": "10", "sustained_kw": 6, "sustained_minutes": "30", "spike_factor": ""}
    )
    assert limits.capacity_kw == 10
    assert limits.sustained_kw == 6
    assert limits.sustained_minutes == 30
    assert limits.spike_factor is None
    assert not limits.enabled(SPIKE)
    for bad in (
        {"capacity_kw": "-1"},
        {"capacity_kw": "ten"},
        {"sustained_minutes": "0"},
        {"sustained_minutes": "x"},
        {"spike_factor": "1"},
        {"spike_factor": "NaN"},
    ):
        with pytest.raises(AlarmConfigError):
            limits_from_options(bad)


def test_hourly_use_from_last_reading_per_hour_skips_gaps_and_resets() -> None:
    points = [
        (T0 + timedelta(minutes=59), d("100.0")),
        (T0 + timedelta(hours=1, minutes=58), d("101.5")),
        (T0 + timedelta(hours=2, minutes=59), d("103.0")),
        # hour 3 missing: hour 4 has no previous hour
        (T0 + timedelta(hours=4, minutes=59), d("106.0")),
        (T0 + timedelta(hours=5, minutes=59), d("0.5")),  # reset: left out
    ]
    assert hourly_use(points) == {
        T0 + timedelta(hours=1): d("1.5"),
        T0 + timedelta(hours=2): d("1.5"),
    }


def test_usual_load_needs_two_weeks_of_that_hour() -> None:
    at = T0 + timedelta(minutes=20)
    history = {T0 - timedelta(weeks=1): d("2")}
    assert usual_load(history, at, UTC) is None
    history[T0 - timedelta(weeks=3)] = d("4")
    history[T0 - timedelta(weeks=1, hours=1)] = d("100")  # another hour: not counted
    assert usual_load(history, at, UTC) == 3
    # Old hours beyond the baseline are pruned and not counted.
    history[T0 - timedelta(weeks=5)] = d("50")
    assert usual_load(history, at, UTC) == 3
    assert T0 - timedelta(weeks=5) not in prune(history, at)


def test_same_hour_of_week_follows_the_local_clock_across_dst() -> None:
    # Berlin moved to summer time on 2026-03-29: 18:00 local is 16:00 UTC after, 17:00 before.
    at = datetime(2026, 4, 1, 16, 30, tzinfo=UTC)
    hours = same_hours_before(at, BERLIN, weeks=2)
    assert hours == [
        datetime(2026, 3, 25, 17, 0, tzinfo=UTC),
        datetime(2026, 3, 18, 17, 0, tzinfo=UTC),
    ]
    assert same_hours_before(at, SHANGHAI, weeks=1) == [datetime(2026, 3, 25, 16, 0, tzinfo=UTC)]


def test_add_use_sums_meters_and_replaces_an_hour() -> None:
    h = T0
    history = add_use({h: d("9")}, [{h: d("1")}, {h: d("2"), h + timedelta(hours=1): d("1")}])
    assert history == {h: d("3"), h + timedelta(hours=1): d("1")}


def test_energy_rate_over_at_least_the_window() -> None:
    rate, start = energy_rate(None, T0, d("10"))
    assert rate is None
    assert start == RatePoint(T0, d("10"))
    rate, same = energy_rate(start, T0 + timedelta(minutes=1), d("10.1"))
    assert rate is None
    assert same == start
    rate, start = energy_rate(start, T0 + timedelta(minutes=6), d("10.5"))
    assert rate == d("5")
    assert start == RatePoint(T0 + timedelta(minutes=6), d("10.5"))
    rate, start = energy_rate(start, T0 + timedelta(minutes=20), d("1"))  # reset
    assert rate is None
    assert start == RatePoint(T0 + timedelta(minutes=20), d("1"))
    assert timedelta(minutes=5) == RATE_WINDOW


def run(
    loads: list[str], limits: UseLimits, usual: str | None = None, step: int = 60
) -> list[tuple[int, str, bool]]:
    """Feed loads a ``step`` seconds apart; the (poll, kind, started) of each change."""
    state = UseState()
    out: list[tuple[int, str, bool]] = []
    for i, load in enumerate(loads):
        changes, state = evaluate_use(
            d(load),
            T0 + timedelta(seconds=i * step),
            limits,
            None if usual is None else d(usual),
            state,
        )
        out += [(i, c.kind, c.active) for c in changes]
    return out


def test_overload_starts_once_and_clears_once_below_ninety_percent() -> None:
    limits = UseLimits(capacity_kw=d("10"), spike_factor=None)
    assert run(["5", "11", "12", "9.5", "11", "8.9", "8", "10.5"], limits) == [
        (1, OVERLOAD, True),
        (5, OVERLOAD, False),
        (7, OVERLOAD, True),
    ]


def test_sustained_load_needs_the_whole_span() -> None:
    limits = UseLimits(sustained_kw=d("5"), sustained_minutes=3, spike_factor=None)
    # One poll a minute: above from poll 1; dips at poll 3 restart the clock.
    loads = ["1", "6", "6", "4", "6", "6", "6", "6", "4.6", "4.4"]
    assert run(loads, limits) == [(7, SUSTAINED, True), (9, SUSTAINED, False)]


def test_spike_against_usual_load_with_a_floor() -> None:
    limits = UseLimits(spike_factor=d("3"), spike_min_kw=d("1"))
    # Usual 0.1 kW: three times is 0.3 but the floor wants 1.1 kW.
    assert run(["0.2", "0.5", "1.0"], limits, usual="0.1") == []
    assert run(["0.2", "1.2", "1.3", "0.5"], limits, usual="0.1") == [
        (1, SPIKE, True),
        (3, SPIKE, False),
    ]
    # Usual 2 kW: the level is 6 kW.
    assert run(["5", "6.5", "5.5", "5.3"], limits, usual="2") == [
        (1, SPIKE, True),
        (3, SPIKE, False),
    ]
    # No usual load (too little history): never a spike.
    assert run(["100"], limits, usual=None) == []


def test_spike_clears_when_the_usual_load_goes_away() -> None:
    limits = UseLimits(spike_factor=d("3"))
    changes, state = evaluate_use(d("10"), T0, limits, d("1"), UseState())
    assert [c.active for c in changes] == [True]
    assert changes[0].usual_kw == 1
    assert changes[0].limit_kw == 3
    changes, state = evaluate_use(d("10"), T0 + timedelta(hours=1), limits, None, state)
    assert [(c.kind, c.active) for c in changes] == [(SPIKE, False)]
    assert state.active == frozenset()


def test_no_reading_changes_nothing() -> None:
    limits = UseLimits(capacity_kw=d("1"))
    _, state = evaluate_use(d("2"), T0, limits, None, UseState())
    assert evaluate_use(None, T0, limits, None, state) == ([], state)


loads = st.lists(st.decimals(min_value=0, max_value=50, places=2), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(
    loads=loads,
    capacity=st.decimals(min_value="0.5", max_value=40, places=1),
    sustained=st.decimals(min_value="0.5", max_value=40, places=1),
    minutes=st.integers(min_value=1, max_value=10),
    usual=st.one_of(st.none(), st.decimals(min_value=0, max_value=10, places=2)),
)
def test_starts_and_clears_alternate_and_match_the_state(
    loads: list[Decimal], capacity: Decimal, sustained: Decimal, minutes: int, usual: Decimal | None
) -> None:
    """Per kind, events alternate start/clear beginning with a start; state agrees with them."""
    limits = UseLimits(capacity_kw=capacity, sustained_kw=sustained, sustained_minutes=minutes)
    state = UseState()
    seen: dict[str, list[bool]] = {}
    for i, load in enumerate(loads):
        changes, state = evaluate_use(load, T0 + timedelta(minutes=i), limits, usual, state)
        assert len({c.kind for c in changes}) == len(changes)
        for c in changes:
            seen.setdefault(c.kind, []).append(c.active)
            if c.active and c.kind == OVERLOAD:
                assert c.load_kw > capacity
            if c.active and c.kind == SUSTAINED:
                assert c.since is not None
                assert T0 + timedelta(minutes=i) - c.since >= timedelta(minutes=minutes)
        for kind in (OVERLOAD, SUSTAINED, SPIKE):
            assert (kind in state.active) == bool(seen.get(kind) and seen[kind][-1])
    for flips in seen.values():
        assert flips == [k % 2 == 0 for k in range(len(flips))]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.decimals(min_value=0, max_value=10, places=2), min_size=2, max_size=30),
)
def test_hourly_use_adds_up_to_the_counter_travel(values: list[Decimal]) -> None:
    """With a reading every hour and a counter that only rises, the hours add up to the travel."""
    counter = [sum(values[: i + 1], Decimal(0)) for i in range(len(values))]
    points = [(T0 + timedelta(hours=i, minutes=59), v) for i, v in enumerate(counter)]
    use = hourly_use(points)
    assert sum(use.values(), Decimal(0)) == counter[-1] - counter[0]
    assert all(v >= 0 for v in use.values())
