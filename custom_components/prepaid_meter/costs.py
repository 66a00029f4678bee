"""Tenants' running costs and unit prices, for the tenant sensors, without a query per poll.

The cost sums (today, this billing period, in all) are read from the ledger
once at start-up and then kept in memory: the coordinator hands every poll's
charges to :meth:`CostBook.charged`, and after any other ledger write
(refund, settlement, shared costs, readings, bill corrections) the book
catches up with the postings made since it last read the ledger. The sums
shown are what the ledger says up to that point plus the poll charges since.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from homeassistant.util import dt as dt_util
from sqlalchemy.orm import Session

from .engine.costs import CostSums, CostTracker, current_price
from .store import Store
from .store import costs as store_costs
from .store.ledger import EXACT_PRECISION

if TYPE_CHECKING:
    from .coordinator import SiteConfig, TenantConfig
    from .store.ledger import MeterCharge


def unit_price(site: SiteConfig, tenant: TenantConfig, at: datetime) -> Decimal | None:
    """The price per kWh the tenant pays at ``at`` (remaining energy is its balance over this).

    The energy price of the tenant's own tariff in force at ``at`` (the current
    time-of-use period; a ladder's first block), with energy taxes. None when
    there is no price to divide by.
    """
    price, _varies = current_price(site.tariffs.for_tenant(tenant.id), at)
    return price if price is not None and price > 0 else None


class CostBook:
    """Every tenant's cost today, this billing period and in all, as of now."""

    def __init__(self, tz: str, billing_day: int) -> None:
        self._tz, self._billing_day = tz, billing_day
        now = dt_util.utcnow()
        #: What the ledger held up to posting ``_after``.
        self._ledger = CostTracker(tz, billing_day, now)
        #: Poll charges since then.
        self._recent = CostTracker(tz, billing_day, now)
        self._after = 0
        self._closed: frozenset[str] = frozenset()
        #: Sums handed out since the last change (a tenant has three cost sensors).
        self._shown: dict[str, CostSums] = {}

    async def async_load(self, store: Store, site: str) -> None:
        """Read every cost posted so far (once, before any entity shows the sums)."""

        def load(session: Session) -> tuple[int, set[str]]:
            last = store_costs.scan_costs(session, site, self._after, self._ledger.add)
            return last, store_costs.closed(session, site)

        self._after, closed = await store.run(load)
        self._closed = frozenset(closed)

    async def async_catch_up(self, store: Store, site: str) -> None:
        """Take in what was posted since the last read (call under the coordinator's lock).

        The new postings include the poll charges counted since, so those
        start again from nothing.
        """
        rows: list[tuple[str, Decimal, datetime]] = []

        def scan(session: Session) -> tuple[int, set[str]]:
            last = store_costs.scan_costs(session, site, self._after, lambda *row: rows.append(row))
            return last, store_costs.closed(session, site)

        self._after, closed = await store.run(scan)
        self._closed = frozenset(closed)
        for tenant, amount, at in rows:
            self._ledger.add(tenant, amount, at)
        self._recent = CostTracker(self._tz, self._billing_day, dt_util.utcnow())
        self._shown.clear()

    def charged(self, charges: Iterable[MeterCharge]) -> None:
        """Count a poll's charges as the ledger took them (closed accounts take none)."""
        for charge in charges:
            if charge.amount and charge.tenant and charge.tenant not in self._closed:
                self._recent.add(charge.tenant, charge.amount, charge.taken_at)
        self._shown.clear()

    def sums(self, tenant: str, now: datetime) -> CostSums:
        """The tenant's costs as of ``now``."""
        if now >= self._ledger.day_end or now >= self._recent.day_end:
            self._ledger.roll(now)
            self._recent.roll(now)
            self._shown.clear()
        if (shown := self._shown.get(tenant)) is not None:
            return shown
        ledger, recent = self._ledger.sums(tenant, now), self._recent.sums(tenant, now)
        if not (recent.today or recent.period or recent.total):
            shown = ledger
        else:
            with localcontext(prec=EXACT_PRECISION):
                shown = CostSums(
                    today=ledger.today + recent.today,
                    period=ledger.period + recent.period,
                    total=ledger.total + recent.total,
                )
        self._shown[tenant] = shown
        return shown

    def day_start(self, now: datetime) -> datetime:
        """When today's sum started (local midnight)."""
        self._ledger.roll(now)
        return self._ledger.day_start

    def period_start(self, now: datetime) -> datetime:
        """When this billing period's sum started."""
        self._ledger.roll(now)
        return self._ledger.period_start
