"""What each tenant was charged today, this billing period and in all, as running sums.

The sums are kept in memory and fed with every charge as it is posted, so a
sensor that shows them costs nothing per poll; they are filled once from the
ledger at start-up. A day starts at local midnight and a billing period at
local midnight of the billing day (the bills' own cycle, see
``calendars.billing_period``). Time is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from zoneinfo import ZoneInfo

from .calendars import as_zone, billing_period, day_bounds, local_date, utc
from .tariffs import DynamicPrice, FlatPrice, Tariff, TariffError, TouPrice

ZERO = Decimal(0)
#: Remaining energy is shown to a tenth of a kWh (its sensor's display precision),
#: rounded down (never promises more). To the watt-hour, any charge would move it
#: and its state would be written at every poll.
_TENTH_KWH = Decimal("0.1")
#: Sums are exact: charges keep full precision (see ``money``), so does their total.
_EXACT = 60


@dataclass(frozen=True, kw_only=True)
class CostSums:
    """A tenant's charges: since local midnight, since the period began, and ever."""

    today: Decimal = ZERO
    period: Decimal = ZERO
    total: Decimal = ZERO


NO_COST = CostSums()


class CostTracker:
    """Running cost sums per tenant that restart at local midnight and each billing period."""

    def __init__(self, tz: str | ZoneInfo, billing_day: int, now: datetime) -> None:
        self._zone = as_zone(tz)
        self._billing_day = billing_day
        self._sums: dict[str, CostSums] = {}
        self.day_start, self.day_end = day_bounds(local_date(now, self._zone), self._zone)
        period = billing_period(now, billing_day, self._zone)
        self.period_start, self.period_end = period.start, period.end

    def roll(self, now: datetime) -> None:
        """Start a new day (and a new period when one begins) once ``now`` has reached it."""
        if now < self.day_end:
            return
        self.day_start, self.day_end = day_bounds(local_date(now, self._zone), self._zone)
        new_period = utc(now) >= self.period_end
        if new_period:
            period = billing_period(now, self._billing_day, self._zone)
            self.period_start, self.period_end = period.start, period.end
        self._sums = {
            tenant: CostSums(today=ZERO, period=ZERO if new_period else s.period, total=s.total)
            for tenant, s in self._sums.items()
        }

    def add(self, tenant: str, amount: Decimal, at: datetime) -> None:
        """Count a charge (negative for a reversal or a credit correction) made at ``at``.

        A charge dated before today (a back-dated reading, a shared cost for a
        past window) counts in the period and the total where it belongs.
        """
        at = utc(at)
        self.roll(at)
        old = self._sums.get(tenant, NO_COST)
        with localcontext(prec=_EXACT):
            self._sums[tenant] = CostSums(
                today=old.today + amount if at >= self.day_start else old.today,
                period=old.period + amount if at >= self.period_start else old.period,
                total=old.total + amount,
            )

    def sums(self, tenant: str, now: datetime) -> CostSums:
        """The tenant's sums as of ``now``."""
        self.roll(now)
        return self._sums.get(tenant, NO_COST)


def remaining_energy(balance: Decimal, unit_price: Decimal | None) -> Decimal | None:
    """Energy (kWh) the balance buys at ``unit_price``; 0 without credit, None without a price."""
    if unit_price is None or unit_price <= 0:
        return None
    if balance <= 0:
        return ZERO
    return (balance / unit_price).quantize(_TENTH_KWH, rounding=ROUND_DOWN)


def current_price(tariff: Tariff | None, at: datetime) -> tuple[Decimal | None, bool]:
    """The energy price per unit in force at ``at``, with energy taxes, and whether it is TOU.

    None where the tariff has no fixed price (a live price without a fallback).
    """
    if tariff is None:
        return None, False
    try:
        version = tariff.version_at(at)
    except (TariffError, IndexError):
        return None, False
    energy, tou = version.energy, False
    price: Decimal | None
    if isinstance(energy, FlatPrice):
        price = energy.price
    elif isinstance(energy, TouPrice):
        tou = True
        try:
            price = energy.prices.get(energy.calendar.period_at(at.astimezone(tariff.zone)))
        except TariffError:
            price = None
    elif isinstance(energy, DynamicPrice):
        price = energy.fallback
    else:
        price = None
    if version.tiers is not None:
        # Ladder blocks: the first block's price (the page cannot know where in
        # the ladder the rest of the balance would be used), marked as varying.
        first = version.tiers.blocks[0]
        if version.tiers.mode == "price":
            price = first.price
        elif price is not None:
            price += first.adder
        tou = tou or len(version.tiers.blocks) > 1
    if price is None:
        return None, tou
    percent = sum((t.percent for t in version.energy_taxes()), Decimal(0))
    return price * (1 + percent / 100), tou
