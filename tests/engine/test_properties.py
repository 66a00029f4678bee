"""Properties: splits add up, any chunking rates the same, no counter sequence charges negative."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.calendars import BillingPeriod
from custom_components.prepaid_meter.engine.intervals import (
    MeterCounter,
    Reading,
    intervals_from_readings,
    split_by_weights,
)
from custom_components.prepaid_meter.engine.money import round_money, split_largest_remainder
from custom_components.prepaid_meter.engine.rating import (
    RATING_CONTEXT,
    PriceSeries,
    UsageSeries,
    accrue_standing,
    close_period,
    open_period,
    rate_batch,
    rate_interval,
)
from custom_components.prepaid_meter.engine.tariffs import Tariff, tariff_from_dict

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

START = datetime(2024, 3, 30, tzinfo=UTC)  # includes London's 23-hour day
PERIOD = BillingPeriod.explicit(START, START + timedelta(days=3))

amounts = st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=2)
weights = st.lists(
    st.decimals(min_value=D(0), max_value=D(10000), places=3), min_size=1, max_size=20
)


@FAST
@given(amounts, weights, st.sampled_from(["CNY", "JPY", "KWD"]))
def test_largest_remainder_split_adds_up_exactly(total: D, parts: list[D], currency: str) -> None:
    shares = split_largest_remainder(total, parts, currency)
    assert sum(shares, D(0)) == round_money(total, currency)
    assert all(round_money(s, currency) == s for s in shares)
    assert all(abs(s) <= abs(round_money(total, currency)) for s in shares)


@FAST
@given(
    st.decimals(min_value=D(0), max_value=D(10000), places=4),
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30).filter(any),
)
def test_time_split_adds_up_and_is_never_negative(total: D, parts: list[int]) -> None:
    pieces = split_by_weights(total, parts)
    assert sum(pieces, D(0)) == total
    assert all(p >= 0 for p in pieces)


def _tariff(kind: int) -> Tariff:
    tou: dict[str, Any] = {
        "kind": "tou",
        "prices": {"peak": "0.4123", "flat": "0.2", "valley": "0.0815"},
        "calendar": {
            "holidays": ["2024-04-01"],
            "seasons": [
                {
                    "name": "year",
                    "schedules": {
                        "weekday": [["00:00", "valley"], ["07:30", "peak"], ["19:00", "flat"]],
                        "weekend": [["00:00", "valley"], ["09:00", "flat"]],
                    },
                }
            ],
        },
    }
    tiers = {
        "mode": "adder",
        "blocks": [
            {"upto": "7.5", "adder": "0"},
            {"upto": "30", "adder": "0.05"},
            {"upto": None, "adder": "0.3"},
        ],
    }
    first: dict[str, Any] = {
        "effective": "2024-01-01T00:00:00+00:00",
        "energy": tou,
        "tiers": tiers,
        "demand": {"price": "44", "window_minutes": 30},
        "standing": [{"name": "s", "amount": "0.37", "per": "day"}],
        "minimum": {"amount": "5"},
        "taxes": [{"name": "VAT", "percent": "13"}],
    }
    second = {**first, "effective": "2024-03-31T10:07:00+00:00"}
    if kind == 1:  # tier prices replace; a version change in mid-interval
        second = {
            **second,
            "energy": None,
            "tiers": {
                "mode": "price",
                "blocks": [{"upto": "12", "price": "0.5"}, {"upto": None, "price": "0.9"}],
            },
        }
    if kind == 2:  # a live price series
        second = {**second, "energy": {"kind": "dynamic", "fallback": "0.3"}}
    return tariff_from_dict(
        {
            "name": "property",
            "currency": "GBP",
            "timezone": "Europe/London",
            "versions": [first, second],
        }
    )


TARIFFS = [_tariff(k) for k in range(3)]
SERIES = PriceSeries.of(
    (START + timedelta(minutes=37 * i), D(i % 11) / 17 - D("0.1")) for i in range(200)
)
N = 3 * 96 - 4  # 3 local days of 15-minute intervals less the lost hour

energies = st.lists(
    st.one_of(st.just(D(0)), st.decimals(min_value=D(0), max_value=D(3), places=3)),
    min_size=N,
    max_size=N,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    energies,
    st.sampled_from([0, 1, 2]),
    st.lists(st.integers(min_value=1, max_value=N - 1), max_size=8),
    st.lists(st.integers(min_value=1, max_value=N - 1), max_size=4),
)
def test_real_time_batch_and_any_chunking_give_the_same_bill(
    energy: list[D], kind: int, cuts: list[int], standing_cuts: list[int]
) -> None:
    with localcontext(RATING_CONTEXT):  # the test's own sums must not round either
        _same_bill(energy, kind, cuts, standing_cuts)


def _same_bill(energy: list[D], kind: int, cuts: list[int], standing_cuts: list[int]) -> None:
    tariff = TARIFFS[kind]
    series = SERIES if kind == 2 else None
    usage = UsageSeries(START, 15, energy)
    opened = open_period(tariff, PERIOD)

    whole = rate_batch(tariff, opened, usage, series)
    whole_close = close_period(tariff, whole.state)

    state = opened
    chunked = D(0)
    bounds = [0, *sorted(set(cuts)), N]
    for a, b in itertools.pairwise(bounds):
        step = rate_batch(
            tariff, state, UsageSeries(START + timedelta(minutes=15 * a), 15, energy[a:b]), series
        )
        chunked += step.total
        state = step.state
    assert state == whole.state
    chunked += close_period(tariff, state).total

    state = opened
    live = D(0)
    accrue_at = {START + timedelta(minutes=15 * c) for c in standing_cuts}
    for interval in usage.intervals():
        if interval.start in accrue_at:
            accrued = accrue_standing(tariff, state, interval.start)
            live += accrued.total
            state = accrued.state
        rated = rate_interval(tariff, state, interval, series)
        live += rated.total
        state = rated.state
    live += close_period(tariff, state).total

    expected = whole.total + whole_close.total
    assert chunked == expected
    assert live == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(energies, st.sampled_from([0, 1, 2]), st.sampled_from([-3, -4]))
def test_scaled_integer_series_rates_exactly_as_decimals(
    energy: list[D], kind: int, exponent: int
) -> None:
    """A bill run passes counter deltas as integers of 0.001 kWh: the bill is the same."""
    tariff = TARIFFS[kind]
    series = SERIES if kind == 2 else None
    scaled = [int(e.scaleb(-exponent)) for e in energy]
    opened = open_period(tariff, PERIOD, tier_use=D("11.9995"))
    as_decimals = rate_batch(tariff, opened, UsageSeries(START, 15, energy), series)
    as_integers = rate_batch(tariff, opened, UsageSeries(START, 15, scaled, exponent), series)
    assert as_integers.charges == as_decimals.charges
    assert as_integers.state == as_decimals.state


counter_values = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=400),  # seconds x 10 after the previous reading
        st.decimals(min_value=D(0), max_value=D("999.99"), places=2),
    ),
    min_size=2,
    max_size=40,
)


@FAST
@given(counter_values, st.sampled_from([1, 5, 15, 30]), st.booleans())
def test_no_counter_sequence_is_ever_charged_negative(
    steps: list[tuple[int, D]], minutes: int, with_maximum: bool
) -> None:
    counter = MeterCounter(maximum=D("999.99") if with_maximum else None)
    at = START
    readings = []
    for seconds, value in steps:
        at += timedelta(seconds=seconds * 10)
        readings.append(Reading(at, value))
    result = intervals_from_readings(readings, minutes, counter)
    assert all(i.energy >= 0 for i in result.intervals)
    # Nothing lost: all accepted forward movement is in intervals or the open one.
    moved = sum((a.energy for a in result.anomalies if a.kind == "rollover"), D(0))
    for before, after in itertools.pairwise(readings):
        if after.value >= before.value:
            moved += after.value - before.value
    booked = sum((i.energy for i in result.intervals), D(0)) + result.cursor.open_energy
    assert booked == moved
    tariff = TARIFFS[0]
    usable = [i for i in result.intervals if PERIOD.start <= i.start and i.end <= PERIOD.end]
    state = open_period(tariff, PERIOD)
    for interval in usable:
        rated = rate_interval(tariff, state, interval)
        assert all(c.amount >= 0 for c in rated.charges)
        state = rated.state
    assert all(c.amount >= 0 for c in close_period(tariff, state).charges)
