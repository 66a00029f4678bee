"""Low-balance warnings: each level fires once per crossing and re-arms after a top-up.

A level is identified by a key (``balance:100``, ``days:3``); the set of keys
that have fired is the whole state, so it is stored as it is and a restart
neither fires a warning again nor forgets one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum

ZERO = Decimal(0)
_TENTH = Decimal("0.1")


@dataclass(frozen=True, kw_only=True)
class WarningLevels:
    """Balance levels (site currency) and a days-of-credit-left level."""

    balances: tuple[Decimal, ...] = ()
    days_left: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class Crossing:
    """A level newly crossed: ``kind`` is ``balance`` or ``days_left``."""

    kind: str
    level: Decimal


def parse_levels(text: str) -> tuple[Decimal, ...]:
    """``"100, 50"`` -> (100, 50), highest first; raise ValueError on anything else."""
    levels: set[Decimal] = set()
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            level = Decimal(part.strip())
        except InvalidOperation as err:
            raise ValueError(part) from err
        if not level.is_finite():
            raise ValueError(part)
        levels.add(level)
    return tuple(sorted(levels, reverse=True))


def balance_key(level: Decimal) -> str:
    """The stored key of a balance level (normalized: 100 and 100.00 are one level)."""
    return f"balance:{level.normalize():f}"


def days_key(level: Decimal) -> str:
    """The stored key of the days-left level."""
    return f"days:{level.normalize():f}"


def evaluate_warnings(
    balance: Decimal,
    days_left: Decimal | None,
    levels: WarningLevels,
    fired: frozenset[str],
    *,
    credited: bool = False,
) -> tuple[list[Crossing], frozenset[str]]:
    """New crossings (most severe balance level only) and the new set of fired keys.

    A balance level fires when the balance is at or below it and it has not
    fired yet; it re-arms once the balance is above it again (only a credit
    lifts a balance). The days-left level fires the same way but re-arms only
    on a credit (``credited``) that takes the forecast above it, so a load
    that varies does not make it fire again and again.
    """
    now_fired = set(fired)
    crossed: list[Decimal] = []
    for level in levels.balances:
        key = balance_key(level)
        if balance <= level:
            if key not in now_fired:
                crossed.append(level)
                now_fired.add(key)
        else:
            now_fired.discard(key)
    crossings = [Crossing(kind="balance", level=min(crossed))] if crossed else []
    if levels.days_left is not None:
        key = days_key(levels.days_left)
        low = days_left is not None and days_left <= levels.days_left
        if low and key not in now_fired:
            crossings.append(Crossing(kind="days_left", level=levels.days_left))
            now_fired.add(key)
        elif not low and credited:
            now_fired.discard(key)
    # Keys of levels no longer configured are dropped.
    known = {balance_key(level) for level in levels.balances}
    if levels.days_left is not None:
        known.add(days_key(levels.days_left))
    return crossings, frozenset(now_fired & known)


def days_left(
    balance: Decimal, cut_off_at: Decimal, recent_cost: Decimal, span: timedelta
) -> Decimal | None:
    """Days of credit left at the recent daily cost, to a tenth of a day, rounded down.

    ``recent_cost`` was charged over ``span`` (for example the last 7 days, or
    less for a new tenant). None when nothing was used: the credit lasts.
    """
    if recent_cost <= 0 or span <= timedelta(0):
        return None
    if balance <= cut_off_at:
        return ZERO
    span_days = Decimal(span // timedelta(seconds=1)) / Decimal(86400)
    daily = recent_cost / span_days
    return ((balance - cut_off_at) / daily).quantize(_TENTH, rounding=ROUND_DOWN)


class WarningLevel(StrEnum):
    """How close a tenant is to running out, as the warning-level sensor shows it."""

    NONE = "none"
    #: At or below a balance warning level (not the lowest of several).
    LOW = "low"
    #: At or below the lowest of several balance warning levels.
    VERY_LOW = "very_low"
    #: Balance above every level, but the days-left forecast at or below its level.
    FEW_DAYS = "few_days"
    #: At or below the cut-off point: the credit (and any emergency credit) is used up.
    EXHAUSTED = "exhausted"


def warning_level(
    balance: Decimal, days_left: Decimal | None, levels: WarningLevels, cut_off_at: Decimal
) -> WarningLevel:
    """The tenant's warning level now (the events fire on crossings; this is the state)."""
    if balance <= cut_off_at:
        return WarningLevel.EXHAUSTED
    crossed = [level for level in levels.balances if balance <= level]
    if crossed:
        lowest = len(levels.balances) > 1 and min(crossed) == min(levels.balances)
        return WarningLevel.VERY_LOW if lowest else WarningLevel.LOW
    if levels.days_left is not None and days_left is not None and days_left <= levels.days_left:
        return WarningLevel.FEW_DAYS
    return WarningLevel.NONE
