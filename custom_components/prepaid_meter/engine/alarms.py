"""Abnormal-use alarms: a spike against the usual load, sustained load, overload.

Three rules on a tenant's load (kW, the sum of its meters):

- **spike**: the load is more than ``spike_factor`` times the tenant's usual
  load for this hour of the week *and* at least ``spike_min_kw`` above it (so
  a tiny load doubling does not alarm). The usual load is the mean energy of
  the same local hour in the last ``BASELINE_WEEKS`` weeks (kWh in an hour is
  the average kW); with fewer than ``MIN_HISTORY_WEEKS`` of those hours
  known there is no usual load and no spike alarm.
- **sustained_load**: the load has stayed at or above ``sustained_kw`` for
  ``sustained_minutes``.
- **overload**: the load is above the contracted ``capacity_kw``.

Each alarm starts once and clears once: it clears when the load falls below
``CLEAR_RATIO`` of its level (or the rule has no level any more), so a load hovering at the
level does not start and clear it on every poll. The state of the rules is a
small frozen value the caller keeps between polls.

The load is the meter's power register when it has one; otherwise the
average rate of its energy counter over at least ``RATE_WINDOW``
(:func:`energy_rate`), since one counter step (0.01 kWh) in a 30-second poll
is already 1.2 kW.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

ZERO = Decimal(0)
HOUR = timedelta(hours=1)

#: Weeks of history the usual load of an hour of the week is taken from.
BASELINE_WEEKS = 4
#: Fewer weeks than this with that hour known: no usual load, no spike alarm.
MIN_HISTORY_WEEKS = 2
#: An alarm clears when the load falls below this share of its starting level.
CLEAR_RATIO = Decimal("0.9")
#: The shortest span an energy counter's rate is averaged over.
RATE_WINDOW = timedelta(minutes=5)

SPIKE = "spike"
SUSTAINED = "sustained_load"
OVERLOAD = "overload"
KINDS = (SPIKE, SUSTAINED, OVERLOAD)

#: Option keys (site defaults, a tenant may override them under ``policy``).
OPT_CAPACITY = "capacity_kw"
OPT_SUSTAINED_KW = "sustained_kw"
OPT_SUSTAINED_MINUTES = "sustained_minutes"
OPT_SPIKE_FACTOR = "spike_factor"
OPT_SPIKE_MIN = "spike_min_kw"

DEFAULT_SUSTAINED_MINUTES = 15
DEFAULT_SPIKE_FACTOR = Decimal(3)
DEFAULT_SPIKE_MIN = Decimal(1)


class AlarmConfigError(ValueError):
    """An alarm option that cannot be used; ``option`` names it."""

    def __init__(self, option: str, value: object) -> None:
        super().__init__(f"{option}: {value!r} is not a usable value")
        self.option = option


@dataclass(frozen=True, kw_only=True)
class UseLimits:
    """A tenant's abnormal-use settings; ``None`` turns a rule off."""

    capacity_kw: Decimal | None = None
    sustained_kw: Decimal | None = None
    sustained_minutes: int = DEFAULT_SUSTAINED_MINUTES
    spike_factor: Decimal | None = DEFAULT_SPIKE_FACTOR
    spike_min_kw: Decimal = DEFAULT_SPIKE_MIN

    def enabled(self, kind: str) -> bool:
        """Whether the rule ``kind`` can ever start."""
        if kind == SPIKE:
            return self.spike_factor is not None
        if kind == SUSTAINED:
            return self.sustained_kw is not None
        return self.capacity_kw is not None


def _number(opts: Mapping[str, Any], key: str, default: Decimal | None) -> Decimal | None:
    """A positive decimal option; empty or 0 is ``None`` (off), absent is ``default``."""
    if key not in opts:
        return default
    raw = opts[key]
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as err:
        raise AlarmConfigError(key, raw) from err
    if not value.is_finite() or value < 0:
        raise AlarmConfigError(key, raw)
    return value if value > 0 else None


def limits_from_options(opts: Mapping[str, Any]) -> UseLimits:
    """The limits from options (site defaults merged with a tenant's ``policy``)."""
    minutes_raw = opts.get(OPT_SUSTAINED_MINUTES, DEFAULT_SUSTAINED_MINUTES)
    try:
        minutes = int(str(minutes_raw).strip() or DEFAULT_SUSTAINED_MINUTES)
    except ValueError as err:
        raise AlarmConfigError(OPT_SUSTAINED_MINUTES, minutes_raw) from err
    if minutes < 1:
        raise AlarmConfigError(OPT_SUSTAINED_MINUTES, minutes_raw)
    factor = _number(opts, OPT_SPIKE_FACTOR, DEFAULT_SPIKE_FACTOR)
    if factor is not None and factor <= 1:
        raise AlarmConfigError(OPT_SPIKE_FACTOR, opts.get(OPT_SPIKE_FACTOR))
    return UseLimits(
        capacity_kw=_number(opts, OPT_CAPACITY, None),
        sustained_kw=_number(opts, OPT_SUSTAINED_KW, None),
        sustained_minutes=minutes,
        spike_factor=factor,
        spike_min_kw=_number(opts, OPT_SPIKE_MIN, DEFAULT_SPIKE_MIN) or ZERO,
    )


# --- the usual load of an hour of the week ------------------------------------------------


def hour_start(at: datetime) -> datetime:
    """The start of the UTC clock hour containing ``at``."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_use(last_readings: Sequence[tuple[datetime, Decimal]]) -> dict[datetime, Decimal]:
    """Energy per clock hour from one counter's last reading in each hour.

    ``last_readings`` are (time, counter) of the last reading of each UTC
    hour, in time order. An hour's use is its last reading minus the last
    reading of the hour before; an hour whose previous hour has no reading,
    or whose counter fell (a reset), is left out rather than guessed.
    """
    use: dict[datetime, Decimal] = {}
    for (t0, v0), (t1, v1) in pairwise(last_readings):
        if hour_start(t1) - hour_start(t0) == HOUR and v1 >= v0:
            use[hour_start(t1)] = v1 - v0
    return use


def add_use(
    history: Mapping[datetime, Decimal], hours: Iterable[Mapping[datetime, Decimal]]
) -> dict[datetime, Decimal]:
    """A tenant's hourly use: its meters' hourly use added up, merged into ``history``.

    An hour given anew replaces what ``history`` had for it (the meters'
    figures for one hour always come together).
    """
    fresh: dict[datetime, Decimal] = {}
    for meter_hours in hours:
        for hour, kwh in meter_hours.items():
            fresh[hour] = fresh.get(hour, ZERO) + kwh
    return {**history, **fresh}


def prune(history: Mapping[datetime, Decimal], now: datetime) -> dict[datetime, Decimal]:
    """Drop the hours older than the baseline needs."""
    oldest = hour_start(now) - timedelta(weeks=BASELINE_WEEKS, hours=1)
    return {h: kwh for h, kwh in history.items() if h >= oldest}


def same_hours_before(at: datetime, tz: tzinfo, weeks: int = BASELINE_WEEKS) -> list[datetime]:
    """The UTC hours at the same local hour of the week as ``at``, 1..``weeks`` weeks back.

    Counted on the local wall clock, so across a daylight-saving change the
    hour is still 18:00-19:00 local.
    """
    local = at.astimezone(tz).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    return [
        hour_start((local - timedelta(weeks=k)).replace(tzinfo=tz)) for k in range(1, weeks + 1)
    ]


def usual_load(history: Mapping[datetime, Decimal], at: datetime, tz: tzinfo) -> Decimal | None:
    """The mean use (kWh in the hour = average kW) of this hour of the week, if known enough."""
    known = [history[h] for h in same_hours_before(at, tz) if h in history]
    if len(known) < MIN_HISTORY_WEEKS:
        return None
    return sum(known, ZERO) / len(known)


# --- load from a counter ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatePoint:
    """Where a counter's rate is measured from."""

    at: datetime
    value: Decimal


def energy_rate(
    start: RatePoint | None, at: datetime, value: Decimal
) -> tuple[Decimal | None, RatePoint]:
    """The counter's average kW since ``start`` and the start to keep for the next poll.

    The first reading only starts the measurement. Until ``RATE_WINDOW`` has
    passed the previous rate is not replaced (``None``); after it, the rate
    is given and measuring starts again from this reading. A counter that
    fell starts again without a rate.
    """
    here = RatePoint(at, value)
    if start is None or value < start.value or at <= start.at:
        return None, here
    span = at - start.at
    if span < RATE_WINDOW:
        return None, start
    hours = Decimal(span // timedelta(microseconds=1)) / Decimal(3_600_000_000)
    return (value - start.value) / hours, here


# --- the rules ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UseState:
    """What the rules remember between polls."""

    active: frozenset[str] = frozenset()
    #: Since when the load has been at or above ``sustained_kw``.
    above_since: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class UseChange:
    """An alarm that started (``active``) or cleared, with the figures behind it."""

    kind: str
    active: bool
    load_kw: Decimal
    #: The level crossed: capacity, sustained limit, or the spike level.
    limit_kw: Decimal
    #: (spike) the usual load for this hour of the week.
    usual_kw: Decimal | None = None
    #: (sustained_load) since when the load has been above the limit.
    since: datetime | None = None


def spike_level(limits: UseLimits, usual_kw: Decimal | None) -> Decimal | None:
    """The load above which a spike starts, or None without a usual load or the rule off."""
    if limits.spike_factor is None or usual_kw is None:
        return None
    return max(usual_kw * limits.spike_factor, usual_kw + limits.spike_min_kw)


def evaluate_use(
    load_kw: Decimal | None,
    now: datetime,
    limits: UseLimits,
    usual_kw: Decimal | None,
    state: UseState,
) -> tuple[list[UseChange], UseState]:
    """Which alarms start or clear at this load; ``None`` (no reading) changes nothing."""
    if load_kw is None:
        return [], state
    spike = spike_level(limits, usual_kw)
    if (
        not state.active
        and state.above_since is None
        and (spike is None or load_kw <= spike)
        and (limits.sustained_kw is None or load_kw < limits.sustained_kw)
        and (limits.capacity_kw is None or load_kw <= limits.capacity_kw)
    ):
        return [], state  # the usual case, decided without building a new state
    changes: list[UseChange] = []
    active = set(state.active)
    above_since = state.above_since

    def settle(kind: str, level: Decimal | None, starts: bool, **extra: Any) -> None:
        if kind in active:
            # Cleared below a share of today's level (for a spike, the level of
            # the hour now: a shop that opens at 9 raises its usual load).
            if level is None or load_kw < level * CLEAR_RATIO:
                active.discard(kind)
                changes.append(UseChange(kind=kind, active=False, load_kw=load_kw,
                                         limit_kw=level or ZERO, **extra))  # fmt: skip
        elif starts and level is not None:
            active.add(kind)
            changes.append(UseChange(kind=kind, active=True, load_kw=load_kw, limit_kw=level,
                                     **extra))  # fmt: skip

    settle(SPIKE, spike, spike is not None and load_kw > spike, usual_kw=usual_kw)

    sustained = limits.sustained_kw
    if sustained is None or load_kw < sustained:
        above_since = None
    elif above_since is None:
        above_since = now
    held = above_since is not None and now - above_since >= timedelta(
        minutes=limits.sustained_minutes
    )
    settle(SUSTAINED, sustained, held, since=above_since)

    capacity = limits.capacity_kw
    settle(OVERLOAD, capacity, capacity is not None and load_kw > capacity)

    return changes, UseState(active=frozenset(active), above_since=above_since)
