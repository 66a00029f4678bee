"""From counters to intervals: gaps, rollovers, resets, meter swaps, real time vs batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from custom_components.prepaid_meter.engine.intervals import (
    IntervalError,
    MeterCounter,
    Reading,
    advance,
    intervals_from_readings,
    replace_meter,
    split_by_weights,
    spread,
    start_cursor,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_readings_inside_intervals_add_up_per_interval() -> None:
    readings = [Reading(at(m), D(v)) for m, v in [(0, "100"), (5, "101"), (10, "102"), (15, "104")]]
    result = intervals_from_readings(readings, 15)
    assert [(i.start, i.energy, i.estimated) for i in result.intervals] == [(at(0), D(4), False)]
    assert result.cursor.open_start == at(15)
    assert result.cursor.open_energy == 0
    assert result.anomalies == ()


def test_delta_straddling_a_boundary_is_split_by_time() -> None:
    result = intervals_from_readings([Reading(at(10), D(0)), Reading(at(20), D(10))], 15)
    assert [i.energy for i in result.intervals] == [D(5)]
    assert result.cursor.open_energy == D(5)


def test_gap_is_spread_over_missing_intervals_and_flagged() -> None:
    # Offline from 00:00 to 01:00: 12 kWh over four 15-minute intervals.
    result = intervals_from_readings([Reading(at(0), D(50)), Reading(at(60), D(62))], 15)
    assert [i.energy for i in result.intervals] == [D(3)] * 4
    assert all(i.estimated for i in result.intervals)
    (gap,) = result.anomalies
    assert gap.kind == "gap"
    assert gap.energy == D(12)
    assert gap.start == at(0)
    assert gap.end == at(60)


def test_gap_spread_is_exact_for_uneven_shares() -> None:
    result = intervals_from_readings([Reading(at(0), D(0)), Reading(at(45), D(1))], 15)
    assert sum(i.energy for i in result.intervals) == D(1)
    assert all(i.energy >= 0 for i in result.intervals)


def test_rollover_at_counter_maximum_is_charged() -> None:
    counter = MeterCounter(maximum=D("99999.99"), resolution=D("0.01"))
    readings = [Reading(at(0), D("99999.50")), Reading(at(15), D("0.30"))]
    result = intervals_from_readings(readings, 15, counter)
    assert [i.energy for i in result.intervals] == [D("0.80")]
    (anomaly,) = result.anomalies
    assert anomaly.kind == "rollover"
    assert anomaly.energy == D("0.80")


def test_32_bit_register_rollover() -> None:
    counter = MeterCounter(maximum=D(0xFFFFFFFF) / 100, resolution=D("0.01"))
    top = D(0xFFFFFFFF - 5) / 100
    result = intervals_from_readings([Reading(at(0), top), Reading(at(15), D("0.04"))], 15, counter)
    assert result.intervals[0].energy == D("0.10")


def test_backwards_counter_that_is_no_rollover_is_a_reset_charged_nothing() -> None:
    counter = MeterCounter(maximum=D("99999.99"))
    readings = [
        Reading(at(0), D("500")),
        Reading(at(15), D("12")),  # reset, far from the maximum
        Reading(at(30), D("14")),
    ]
    result = intervals_from_readings(readings, 15, counter)
    assert [i.energy for i in result.intervals] == [D(0), D(2)]
    assert [a.kind for a in result.anomalies] == ["reset"]
    assert result.anomalies[0].previous == D(500)
    assert result.anomalies[0].value == D(12)


def test_backwards_counter_without_known_maximum_is_a_reset() -> None:
    result = intervals_from_readings([Reading(at(0), D(5)), Reading(at(15), D(4))], 15)
    assert result.intervals[0].energy == 0
    assert result.anomalies[0].kind == "reset"


def test_meter_replacement_keeps_continuity() -> None:
    cursor = start_cursor(Reading(at(0), D("1000")), 15)
    swapped = replace_meter(
        cursor,
        old_final=Reading(at(20), D("1004")),
        new_start=Reading(at(25), D("0.0")),
    )
    after = advance(swapped.cursor, Reading(at(30), D("1.0")))
    energies = [i.energy for i in (*swapped.intervals, *after.intervals)]
    assert energies == [D(3), D(2)]  # 4 kWh before the swap split 15/5 min, then 1 kWh
    assert swapped.anomalies[-1].kind == "replacement"
    assert after.anomalies == ()


def test_stale_and_duplicate_readings() -> None:
    cursor = start_cursor(Reading(at(5), D(10)), 15)
    assert advance(cursor, Reading(at(5), D(10))).anomalies == ()
    stale = advance(cursor, Reading(at(1), D(9)))
    assert stale.cursor == cursor
    assert stale.anomalies[0].kind == "stale_reading"


def test_real_time_equals_batch() -> None:
    values = [D(v) for v in ["1", "1.2", "1.25", "3", "2", "2.5", "9", "9.01"]]
    minutes = [0, 4, 13, 16, 29, 95, 101, 130]
    readings = [Reading(at(m), v) for m, v in zip(minutes, values, strict=True)]
    batch = intervals_from_readings(readings, 15)
    cursor = start_cursor(readings[0], 15)
    live = []
    for r in readings[1:]:
        step = advance(cursor, r)
        cursor = step.cursor
        live.extend(step.intervals)
    assert tuple(live) == batch.intervals
    assert cursor == batch.cursor


def test_split_by_weights_adds_up() -> None:
    parts = split_by_weights(D(1), [1, 1, 1])
    assert sum(parts) == 1
    assert all(p >= 0 for p in parts)
    with pytest.raises(IntervalError):
        split_by_weights(D(1), [0])


def test_spread_and_invalid_interval() -> None:
    pieces = spread(at(14), at(16), D(2), 15)
    assert [e for _, e in pieces] == [D(1), D(1)]
    with pytest.raises(IntervalError) as err:
        start_cursor(Reading(at(0), D(0)), 7)
    assert err.value.key == "invalid_interval"
