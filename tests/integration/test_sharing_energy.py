"""A window's energy from stored readings: the edge rule of `sharing_runner`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from custom_components.prepaid_meter.sharing_runner import counter_at, share_reference, window_use

T0 = datetime(2025, 6, 10, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_edges_are_interpolated_between_hand_readings() -> None:
    # Read at noon the day before and noon the day after: 48 kWh over 48 h.
    points = [(at(-12), Decimal(1000)), (at(36), Decimal(1048))]
    assert counter_at(points, at(0)) == Decimal(1012)
    assert sum(iv.energy for iv in window_use(points, at(0), at(24))) == Decimal(24)


def test_without_a_later_reading_the_last_one_holds() -> None:
    points = [(at(0), Decimal(5)), (at(3), Decimal(7))]
    assert counter_at(points, at(24)) == Decimal(7)
    assert counter_at(points, at(-1)) == Decimal(5)  # not there before: first reading
    assert counter_at([], at(0)) is None
    assert window_use([], at(0), at(24)) == []


def test_a_fall_counts_as_zero_and_intervals_follow_the_readings() -> None:
    points = [
        (at(0), Decimal(10)),
        (at(6), Decimal(14)),
        (at(12), Decimal(1)),
        (at(24), Decimal(3)),
    ]
    use = window_use(points, at(0), at(24))
    assert [(iv.start, iv.end, iv.energy) for iv in use] == [
        (at(0), at(6), Decimal(4)),
        (at(6), at(12), Decimal(0)),
        (at(12), at(24), Decimal(2)),
    ]


def test_references_fit_the_ledger() -> None:
    assert share_reference("lobby", at(0), "t1") == "share:lobby:2025-06-10T00:00:00+00:00:t1"
    long = share_reference("x" * 100, at(0), "t" * 60)
    assert long.startswith("share:")
    assert len(long) <= 128
