"""Scheduled bills: every tenant's bill for each billing period, issued once, without a click.

On for a site whose options have ``billing_day`` (1-31; a day a month lacks
is that month's last day, see `engine.calendars.billing_period`). The bills
of the period that ended are issued at 00:30 local time on the day after it
ended - after the midnight sharing run, so the last day's shares are on
them - and, to catch up a run missed while Home Assistant was down, when the
site starts. Issuing is idempotent in the store (a tenant's bill for a
period that already has one is answered, not issued again), so a catch-up
after a run that did happen issues nothing and fires no event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util
from sqlalchemy.orm import Session

from .const import CONF_BILLING_DAY
from .coordinator import PrepaidConfigEntry
from .documents import language
from .engine.calendars import BillingPeriod, billing_period
from .services import async_issue_bills, tenant_spec
from .store import bills
from .store.period_charges import tenancy_start

_LOGGER = logging.getLogger(__name__)

#: Local time of the daily check (after the sharing run at midnight).
RUN_HOUR, RUN_MINUTE = 0, 30


def last_period(now: datetime, day: int, timezone: str) -> BillingPeriod:
    """The last whole billing period that ended at or before ``now``."""
    current = billing_period(now, day, timezone)
    return billing_period(current.start - timedelta(microseconds=1), day, timezone)


async def async_issue_due(
    hass: HomeAssistant, entry: PrepaidConfigEntry, now: datetime
) -> list[bills.IssuedBill]:
    """Issue every tenant's bill for the last period that ended (existing ones are skipped)."""
    day = int(entry.options[CONF_BILLING_DAY])
    period = last_period(now, day, str(hass.config.time_zone))
    tenants = [tenant_spec(entry, t) for t in entry.runtime_data.site.tenants]
    # No bill for a period that ended before the tenant moved in (a site set up
    # mid-month catches up the month before for nobody).
    starts = await entry.runtime_data.store.run(_tenancy_starts, entry.entry_id, tenants)
    tenants = [t for t in tenants if (start := starts[t.id]) is None or start < period.end]
    if not tenants:
        return []
    issued = await async_issue_bills(hass, entry, tenants, period, language(hass.config.language))
    new = [b for b in issued if not b.duplicate]
    if new:
        _LOGGER.info(
            "Issued %d bills of %s for %s to %s",
            len(new), entry.title, period.start.isoformat(), period.end.isoformat(),
        )  # fmt: skip
    return issued


def _tenancy_starts(
    session: Session, site: str, tenants: list[bills.TenantSpec]
) -> dict[str, datetime | None]:
    return {t.id: tenancy_start(session, site, t.id) for t in tenants}


def async_start_billing(hass: HomeAssistant, entry: PrepaidConfigEntry) -> None:
    """Catch up now, then check daily at 00:30 local time (until the entry unloads)."""
    if entry.options.get(CONF_BILLING_DAY) in (None, ""):
        return

    async def _async_run(now: datetime) -> None:
        try:
            await async_issue_due(hass, entry, now)
        except HomeAssistantError as err:
            _LOGGER.error("Scheduled bills of %s not issued: %s", entry.title, err)
        except Exception:
            _LOGGER.exception("Scheduled bills of %s failed", entry.title)

    @callback
    def _on_time(now: datetime) -> None:
        if entry.state is ConfigEntryState.LOADED:
            entry.async_create_task(hass, _async_run(now), "prepaid_meter bills")

    entry.async_on_unload(
        async_track_time_change(hass, _on_time, hour=RUN_HOUR, minute=RUN_MINUTE, second=0)
    )
    entry.async_create_task(hass, _async_run(dt_util.utcnow()), "prepaid_meter bills catch-up")
