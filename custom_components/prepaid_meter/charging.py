"""Prepaid charging with the engine: each tenant's rating state over its billing period.

Per poll a tenant's counter deltas are rated as `engine.prepaid.poll_interval`
on the tenant's own tariff (`rating.rate_interval`, tiers accumulating in the
state), so the wallet is charged what the period's bill rates. The state
lives in memory and is rebuilt from the stored readings of the current period
when the entry loads (`rebuild`, on the store's thread): the same intervals,
rated in batch, give the same tier use, so a restart neither charges an
interval twice nor skips one (the readings' cursors say where charging got to).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from sqlalchemy.orm import Session

from .engine.calendars import BillingPeriod, CalendarError, billing_period
from .engine.prepaid import cut, poll_interval, price_grid
from .engine.rating import (
    RATING_CONTEXT,
    RatingError,
    RatingState,
    open_period,
    rate_batch,
    rate_interval,
)
from .engine.tariffs import Tariff, TariffError
from .store.bills import tenant_period_usage, tier_use_before

_LOGGER = logging.getLogger(__name__)

ZERO = Decimal(0)


@dataclass
class TenantRating:
    """A tenant's tariff and where its rating stands in the current billing period."""

    tariff: Tariff
    grid: int | None
    state: RatingState | None = None


class Charger:
    """Rates tenants' polls on their tariffs (under the coordinator's lock, on the store thread)."""

    def __init__(self, tariffs: Mapping[str, Tariff], billing_day: int, timezone: str) -> None:
        self.billing_day = billing_day
        self.timezone = timezone
        self.ratings = {
            tenant: TenantRating(tariff, price_grid(tariff)) for tenant, tariff in tariffs.items()
        }

    def snapshot(self) -> dict[str, RatingState | None]:
        """Every tenant's rating state (immutable values), to go back to if a write fails."""
        return {tenant: rating.state for tenant, rating in self.ratings.items()}

    def restore(self, saved: Mapping[str, RatingState | None]) -> None:
        """Go back to a `snapshot`."""
        for tenant, state in saved.items():
            self.ratings[tenant].state = state

    def period(self, at: datetime) -> BillingPeriod:
        """The billing cycle containing ``at``."""
        return billing_period(at, self.billing_day, self.timezone)

    def rebuild(
        self,
        session: Session,
        site: str,
        meters: Mapping[str, Sequence[tuple[str, str]]],
        now: datetime,
    ) -> None:
        """Rate the current period's stored readings again: the state as the polls left it."""
        period = self.period(now)
        for tenant, rating in self.ratings.items():
            tenant_meters = meters.get(tenant, ())
            try:
                year_use = tier_use_before(
                    session, site, tenant_meters, rating.tariff, period.start
                )
                state = open_period(rating.tariff, period, tier_use=year_use)
                _, usage = tenant_period_usage(session, site, tenant_meters, period, rating.tariff)
                if usage:
                    state = rate_batch(rating.tariff, state, usage).state
            except (RatingError, TariffError) as err:
                # Polls then start a fresh period state (and log why they cannot rate).
                _LOGGER.error("Tenant %s: period so far cannot be rated: %s", tenant, err)
                continue
            rating.state = state

    def charge(
        self, tenant: str, last_reading: datetime | None, now: datetime, energy: Decimal
    ) -> Decimal:
        """The exact amount for ``energy`` read at ``now`` since the tenant's last reading."""
        rated = self._rated(tenant, last_reading, now, energy, log=True)
        if rated is None:
            return ZERO
        amount, self.ratings[tenant].state = rated
        return amount

    def quote(
        self, tenant: str, last_reading: datetime | None, now: datetime, energy: Decimal
    ) -> Decimal:
        """What `charge` would charge now, the rating left where it is (use not stored yet)."""
        rated = self._rated(tenant, last_reading, now, energy, log=False)
        return ZERO if rated is None else rated[0]

    def _rated(
        self,
        tenant: str,
        last_reading: datetime | None,
        now: datetime,
        energy: Decimal,
        *,
        log: bool,
    ) -> tuple[Decimal, RatingState] | None:
        """The amount and the rating state after it; None if the tenant cannot be rated."""
        rating = self.ratings.get(tenant)
        if rating is None:
            return None
        try:
            state = rating.state
            if state is None or not state.period.start <= now < state.period.end:
                state = open_period(rating.tariff, self.period(now), state)
            amount = ZERO
            interval = poll_interval(last_reading, now, state.period, energy)
            for piece in cut([interval], rating.grid) if interval is not None else ():
                rated = rate_interval(rating.tariff, state, piece)
                state = rated.state
                with localcontext(RATING_CONTEXT):
                    amount += rated.total
        except (RatingError, TariffError, CalendarError) as err:
            if log:  # a quote's failure is logged when the use is charged
                _LOGGER.error("Tenant %s: %s of use at %s not rated: %s", tenant, energy, now, err)
            return None
        return amount, state
