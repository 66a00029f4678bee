"""Supply policy: whether a tenant's relay should be closed, and why.

Cutting power is off until the landlord turns it on for the site (some
jurisdictions forbid disconnecting sub-metered tenants; see DOMAIN.md).
A manual lock wins over everything; a manual force-on wins over the balance.
Below the cut-off point, a grace period and friendly hours hold a cut-off
back (they never reconnect a tenant who is already cut off); emergency
credit lowers the cut-off point by a set amount until the next top-up.
A postpaid tenant uses first and pays against bills: its balance is never a
reason to cut off, only an overdue bill is (when its policy says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from .calendars import as_zone, utc

ZERO = Decimal(0)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead the end of friendly hours is searched (a holiday run plus a weekend).
_HORIZON_DAYS = 60


class SupplyState(StrEnum):
    """What the tenant's supply is doing, as shown on the supply-state sensor."""

    ON = "on"
    CUT_OFF = "cut_off"
    LOCKED = "locked"
    FORCED_ON = "forced_on"
    #: Below the cut-off point, kept on until the grace period ends.
    GRACE = "grace"
    #: Below the cut-off point, kept on until friendly hours end.
    FRIENDLY_HOURS = "friendly_hours"
    #: Living on emergency credit (below the normal cut-off point).
    EMERGENCY = "emergency"


class PolicyError(ValueError):
    """A policy setting that cannot be used; ``key`` names it for translation."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class FriendlyWindow:
    """Local hours on some weekdays (0 = Monday); an end at or before the start runs overnight."""

    days: frozenset[int]
    start: time
    end: time

    def covers(self, local: datetime) -> bool:
        """Whether the local wall-clock time falls in the window."""
        now, weekday = local.time(), local.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= now < self.end
        if weekday in self.days and now >= self.start:
            return True
        # The overnight part belongs to the day before.
        return (weekday - 1) % 7 in self.days and now < self.end


@dataclass(frozen=True)
class FriendlyHours:
    """When no cut-off happens: weekly windows and holidays, on the site's clock."""

    windows: tuple[FriendlyWindow, ...] = ()
    holidays: frozenset[date] = frozenset()
    tz: str = "UTC"

    def active(self, at: datetime) -> bool:
        """Whether ``at`` (an aware instant) is inside friendly hours."""
        local = utc(at).astimezone(as_zone(self.tz))
        if local.date() in self.holidays:
            return True
        return any(w.covers(local) for w in self.windows)

    def end_after(self, at: datetime) -> datetime | None:
        """The first instant after ``at`` outside friendly hours (None if never, in 60 days).

        Candidates are the minutes on which a window ends and the local
        midnights (a holiday ends); the earliest one that is not friendly wins.
        """
        if not self.active(at):
            return utc(at)
        zone = as_zone(self.tz)
        local = utc(at).astimezone(zone)
        candidates: set[datetime] = set()
        for offset in range(_HORIZON_DAYS):
            day = local.date() + timedelta(days=offset)
            candidates.add(_at(day, time(0), zone))
            for window in self.windows:
                candidates.add(_at(day, window.end, zone))
        for candidate in sorted(c for c in candidates if c > utc(at)):
            if not self.active(candidate):
                return candidate
        return None


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=zone).astimezone(UTC)


_WINDOW = re.compile(r"^([a-z,\-]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$")


def _clock(text: str) -> time:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours == 24 and minutes == 0:
        return time(0)
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise ValueError(text)
    return time(hours, minutes)


def _days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        low = _DAYS.index(first)
        high = _DAYS.index(last) if sep else low
        span = (high - low) % 7
        days.update((low + i) % 7 for i in range(span + 1))
    return frozenset(days)


def parse_friendly_hours(schedule: str, holidays: str = "", tz: str = "UTC") -> FriendlyHours:
    """Parse ``"mon-fri 18:00-10:00; sat-sun 00:00-24:00"`` and ``"2026-01-01, 2026-10-01"``.

    Raises :class:`PolicyError` (``invalid_friendly_hours``/``invalid_holidays``).
    """
    windows: list[FriendlyWindow] = []
    for part in schedule.lower().replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        match = _WINDOW.match(part)
        try:
            if match is None:
                raise ValueError(part)
            start, end = _clock(match[2]), _clock(match[3])
            if start == end and match[3] != "24:00":
                raise ValueError(part)
            windows.append(FriendlyWindow(_days(match[1]), start, end))
        except ValueError as err:
            raise PolicyError("invalid_friendly_hours", f"bad friendly hours {part!r}") from err
    days: set[date] = set()
    for part in holidays.replace(";", ",").replace("\n", ",").split(","):
        if part.strip():
            try:
                days.add(date.fromisoformat(part.strip()))
            except ValueError as err:
                raise PolicyError("invalid_holidays", f"bad holiday {part!r}") from err
    as_zone(tz)
    return FriendlyHours(tuple(windows), frozenset(days), tz)


@dataclass(frozen=True, kw_only=True)
class SupplyPolicy:
    """The site's (or tenant's) cut-off rule."""

    cut_off_enabled: bool = False
    #: Cut off when the balance is at or below this amount (0, or a negative credit limit).
    cut_off_at: Decimal = ZERO
    #: How long the balance may stay at or below the cut-off point before the cut.
    grace: timedelta = timedelta(0)
    friendly: FriendlyHours = field(default_factory=FriendlyHours)
    #: The amount of emergency credit a tenant may take once until the next top-up (0: none).
    emergency_credit: Decimal = ZERO


@dataclass(frozen=True, kw_only=True)
class SupplyDecision:
    """The relay state the policy wants, with the state to show."""

    relay_closed: bool
    state: SupplyState
    #: When to decide again even if nothing else happens (grace or friendly hours end).
    recheck_at: datetime | None = None


def threshold(policy: SupplyPolicy, emergency: Decimal = ZERO) -> Decimal:
    """The balance at or below which the tenant is due for a cut-off."""
    return policy.cut_off_at - emergency


def is_due(
    balance: Decimal,
    policy: SupplyPolicy,
    *,
    emergency: Decimal = ZERO,
    postpaid: bool = False,
    overdue: bool = False,
) -> bool:
    """Whether the tenant is due for a cut-off (before grace and friendly hours hold it back).

    ``overdue``: a bill is overdue and the tenant's policy cuts off for it
    (``cut_off_when_overdue``). A prepaid tenant is also due when its balance
    is at or below the cut-off point; a postpaid one only for the overdue bill.
    """
    if postpaid:
        return overdue
    return overdue or balance <= threshold(policy, emergency)


def decide_supply(
    balance: Decimal,
    policy: SupplyPolicy,
    *,
    locked: bool = False,
    forced_on: bool = False,
    now: datetime | None = None,
    due_since: datetime | None = None,
    cut_off: bool = False,
    emergency: Decimal = ZERO,
    postpaid: bool = False,
    overdue: bool = False,
) -> SupplyDecision:
    """Decide the relay from the balance, the site policy and the manual overrides.

    ``due_since`` is when the tenant first became due (`is_due`; the grace
    period runs from there); ``cut_off`` says the tenant is already cut
    off (grace and friendly hours then keep it so rather than reconnect);
    ``emergency`` is the emergency credit granted since the last top-up;
    ``postpaid`` and ``overdue`` as in `is_due`.
    """
    if locked:
        return SupplyDecision(relay_closed=False, state=SupplyState.LOCKED)
    if forced_on:
        return SupplyDecision(relay_closed=True, state=SupplyState.FORCED_ON)
    if not policy.cut_off_enabled:
        return SupplyDecision(relay_closed=True, state=SupplyState.ON)
    if not is_due(balance, policy, emergency=emergency, postpaid=postpaid, overdue=overdue):
        on_emergency = not postpaid and emergency > 0 and balance <= policy.cut_off_at
        state = SupplyState.EMERGENCY if on_emergency else SupplyState.ON
        return SupplyDecision(relay_closed=True, state=state)
    if cut_off or now is None:
        return SupplyDecision(relay_closed=False, state=SupplyState.CUT_OFF)
    if policy.grace > timedelta(0):
        ends = (due_since or now) + policy.grace
        if now < ends:
            return SupplyDecision(relay_closed=True, state=SupplyState.GRACE, recheck_at=ends)
    if policy.friendly.active(now):
        return SupplyDecision(
            relay_closed=True,
            state=SupplyState.FRIENDLY_HOURS,
            recheck_at=policy.friendly.end_after(now),
        )
    return SupplyDecision(relay_closed=False, state=SupplyState.CUT_OFF)


def may_grant_emergency(policy: SupplyPolicy, already_granted: Decimal) -> bool:
    """Emergency credit is offered once until the next top-up, if the site offers any."""
    return policy.emergency_credit > 0 and already_granted == 0
