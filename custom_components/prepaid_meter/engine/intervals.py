"""From cumulative meter counters to interval consumption: nothing lost, nothing negative.

The rule: the delta between two accepted readings is consumed evenly in time
between them, and spread over the metering intervals it spans in proportion
to the time each covers. The same rule covers a reading every few seconds
and a meter that was offline for a day (Ontario IESO validation: straight-line
interpolation for gaps; the intervals are flagged ``estimated``).

A counter that goes down is never charged negative: a wrap at the meter's
known maximum is a rollover and charged as the distance travelled; anything
else is a reset, charged nothing and reported as an anomaly. A meter swap is
recorded with the old meter's final and the new meter's first reading.

The real-time form (`advance`, called on every poll) and the batch form
(`intervals_from_readings`) are the same fold, so they give the same intervals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from .calendars import floor_to_interval, micros, utc

ZERO = Decimal(0)

#: Energy pieces produced by splitting in time are cut to this many decimals
#: (rounded down, the last piece takes the remainder, so pieces add up exactly).
ENERGY_PLACES = 9
ENERGY_QUANTUM = Decimal(1).scaleb(-ENERGY_PLACES)

#: The metering intervals a site may use, in minutes.
INTERVAL_MINUTES = (1, 5, 15, 30, 60)


class IntervalError(ValueError):
    """Input the interval derivation cannot use; ``key`` names it for translation."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Reading:
    """A cumulative counter value read at an instant."""

    at: datetime
    value: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", utc(self.at))
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise IntervalError("invalid_reading", f"reading value {self.value!r} is not a Decimal")


@dataclass(frozen=True, slots=True)
class MeterCounter:
    """What we know about a meter's counter register.

    ``maximum`` is the highest value it shows before wrapping to zero (for a
    32-bit register in 0.01 kWh: ``Decimal(0xFFFFFFFF) / 100``); ``resolution`` is
    its smallest step. A drop is taken as a rollover only when the distance
    travelled over the wrap is at most ``rollover_margin`` (default: a tenth of
    the counter's range); any other drop is a reset.
    """

    maximum: Decimal | None = None
    resolution: Decimal = Decimal("0.01")
    rollover_margin: Decimal | None = None

    def wrap_delta(self, old: Decimal, new: Decimal) -> Decimal | None:
        """The consumption across a wrap from ``old`` to ``new``, or None if it is no rollover."""
        if self.maximum is None or new > old or old > self.maximum or new < 0:
            return None
        # The counter goes old -> maximum, then one resolution step to zero, then to new.
        delta = (self.maximum - old) + new + self.resolution
        margin = self.rollover_margin
        if margin is None:
            margin = (self.maximum + self.resolution) / 10
        return delta if delta <= margin else None


@dataclass(frozen=True, slots=True)
class IntervalUse:
    """Consumption in one metering interval ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    energy: Decimal
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something about the readings an operator should know; ``kind`` is a translation key.

    Kinds: ``gap`` (readings missing, the delta was spread over the gap),
    ``rollover`` (counter wrapped at its maximum, charged), ``reset`` (counter
    went down, nothing charged), ``replacement`` (meter swapped),
    ``stale_reading`` (not newer than the last accepted one, ignored).
    """

    kind: str
    start: datetime
    end: datetime
    previous: Decimal
    value: Decimal
    energy: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a meter's interval derivation stands: the last accepted reading and the open interval.

    The open interval is the one containing the last reading; it is complete
    (and emitted) once a reading at or after its end arrives.
    """

    at: datetime
    value: Decimal
    minutes: int
    open_start: datetime
    open_energy: Decimal = ZERO
    open_estimated: bool = False

    @property
    def open_end(self) -> datetime:
        """End of the open interval."""
        return self.open_start + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class Advance:
    """The outcome of feeding readings: the new cursor, completed intervals and anomalies."""

    cursor: Cursor
    intervals: tuple[IntervalUse, ...] = ()
    anomalies: tuple[Anomaly, ...] = field(default=())


def _check_minutes(minutes: int) -> None:
    if minutes not in INTERVAL_MINUTES:
        raise IntervalError("invalid_interval", f"interval of {minutes} minutes is not supported")


def start_cursor(reading: Reading, minutes: int) -> Cursor:
    """The cursor for a meter's first reading (nothing before it is known or charged)."""
    _check_minutes(minutes)
    return Cursor(reading.at, reading.value, minutes, floor_to_interval(reading.at, minutes))


def split_by_weights(total: Decimal, weights: Sequence[int]) -> list[Decimal]:
    """Split ``total`` in proportion to integer weights so the parts add up exactly.

    Cumulative shares are cut down to `ENERGY_QUANTUM` and differenced; the last
    part takes what is left. Parts are never negative when ``total`` is not.
    """
    whole = sum(weights)
    if whole <= 0:
        raise IntervalError("invalid_split", "split weights must sum to more than zero")
    if len(weights) == 1:
        return [total]
    parts: list[Decimal] = []
    done = ZERO
    running = 0
    for weight in weights[:-1]:
        running += weight
        cut = (total * running / whole).quantize(ENERGY_QUANTUM, rounding=ROUND_DOWN)
        parts.append(cut - done)
        done = cut
    parts.append(total - done)
    return parts


def spread(
    start: datetime, end: datetime, energy: Decimal, minutes: int
) -> list[tuple[datetime, Decimal]]:
    """Spread ``energy`` used over ``[start, end)`` onto the intervals it touches, by time.

    Returns (interval start, energy) pairs in time order.
    """
    step = timedelta(minutes=minutes)
    starts: list[datetime] = []
    weights: list[int] = []
    at = floor_to_interval(start, minutes)
    while at < end:
        weights.append(micros(min(at + step, end) - max(at, start)))
        starts.append(at)
        at += step
    return list(zip(starts, split_by_weights(energy, weights), strict=True))


def _move(
    cursor: Cursor,
    at: datetime,
    value: Decimal,
    energy: Decimal,
    estimated: bool,
) -> tuple[Cursor, list[IntervalUse]]:
    """Book ``energy`` from the cursor to ``at``, emit completed intervals, move to ``value``."""
    step = timedelta(minutes=cursor.minutes)
    done: list[IntervalUse] = []
    open_start, open_energy, open_est = cursor.open_start, cursor.open_energy, cursor.open_estimated
    for piece_start, piece in spread(cursor.at, at, energy, cursor.minutes):
        if piece_start != open_start:
            done.append(IntervalUse(open_start, open_start + step, open_energy, open_est))
            open_start, open_energy, open_est = piece_start, ZERO, False
        open_energy += piece
        open_est = open_est or estimated
    new_open = floor_to_interval(at, cursor.minutes)
    if new_open != open_start:
        # The new reading sits exactly on a boundary: the open interval is complete.
        done.append(IntervalUse(open_start, open_start + step, open_energy, open_est))
        open_start, open_energy, open_est = new_open, ZERO, False
    return Cursor(at, value, cursor.minutes, open_start, open_energy, open_est), done


def advance(
    cursor: Cursor,
    reading: Reading,
    counter: MeterCounter | None = None,
    gap_after: timedelta | None = None,
) -> Advance:
    """Take one new reading (the call made on every poll).

    ``gap_after`` is the longest silence still counted as measured (default:
    one interval); beyond it the spread intervals are flagged estimated and a
    ``gap`` anomaly is reported.
    """
    counter = counter or MeterCounter()
    if reading.at <= cursor.at:
        if reading.at == cursor.at and reading.value == cursor.value:
            return Advance(cursor)  # the same reading delivered twice
        stale = Anomaly("stale_reading", reading.at, cursor.at, cursor.value, reading.value)
        return Advance(cursor, (), (stale,))
    anomalies: list[Anomaly] = []
    delta = reading.value - cursor.value
    if delta < 0:
        wrapped = counter.wrap_delta(cursor.value, reading.value)
        if wrapped is None:
            delta = ZERO
            anomalies.append(
                Anomaly("reset", cursor.at, reading.at, cursor.value, reading.value, ZERO)
            )
        else:
            delta = wrapped
            anomalies.append(
                Anomaly("rollover", cursor.at, reading.at, cursor.value, reading.value, delta)
            )
    limit = gap_after if gap_after is not None else timedelta(minutes=cursor.minutes)
    estimated = reading.at - cursor.at > limit
    if estimated:
        anomalies.append(Anomaly("gap", cursor.at, reading.at, cursor.value, reading.value, delta))
    new_cursor, done = _move(cursor, reading.at, reading.value, delta, estimated)
    return Advance(new_cursor, tuple(done), tuple(anomalies))


def replace_meter(
    cursor: Cursor,
    old_final: Reading,
    new_start: Reading,
    counter: MeterCounter | None = None,
    gap_after: timedelta | None = None,
) -> Advance:
    """Swap the meter: charge to the old meter's final reading, continue from the new one's first.

    Nothing is charged between the two readings (the supply is off during a
    swap); the record keeps both values for the audit trail.
    """
    if new_start.at < old_final.at:
        raise IntervalError("replacement_order", "the new meter cannot start before the old ends")
    first = advance(cursor, old_final, counter, gap_after)
    intervals = list(first.intervals)
    moved = first.cursor
    if new_start.at > moved.at:
        moved, done = _move(moved, new_start.at, new_start.value, ZERO, False)
        intervals.extend(done)
    else:
        moved = Cursor(
            moved.at,
            new_start.value,
            moved.minutes,
            moved.open_start,
            moved.open_energy,
            moved.open_estimated,
        )
    swap = Anomaly("replacement", old_final.at, new_start.at, old_final.value, new_start.value)
    return Advance(moved, tuple(intervals), (*first.anomalies, swap))


def intervals_from_readings(
    readings: Iterable[Reading],
    minutes: int,
    counter: MeterCounter | None = None,
    gap_after: timedelta | None = None,
    cursor: Cursor | None = None,
) -> Advance:
    """The batch form: fold `advance` over readings (in the order given, as they arrived).

    Returns completed intervals only; the last, still open one stays in the
    returned cursor, exactly as in real time.
    """
    _check_minutes(minutes)
    intervals: list[IntervalUse] = []
    anomalies: list[Anomaly] = []
    for reading in readings:
        if cursor is None:
            cursor = start_cursor(reading, minutes)
            continue
        step = advance(cursor, reading, counter, gap_after)
        cursor = step.cursor
        intervals.extend(step.intervals)
        anomalies.extend(step.anomalies)
    if cursor is None:
        raise IntervalError("no_readings", "no readings given")
    return Advance(cursor, tuple(intervals), tuple(anomalies))
