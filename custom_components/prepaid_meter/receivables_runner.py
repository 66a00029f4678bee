"""Postpaid accounts on the site: amount due, overdue state, the overdue event, the checks.

The state is derived from the store (`store.receivables`) each time something
can change it: at start-up, inside every ledger write for the tenants it
touched (a payment, a refund, a bill run, a recalculation; in the same store
call, so a payment clears the overdue state before the supply policy runs
again), and for every postpaid tenant at local midnight and at the instant
the next open bill falls overdue. A bill's overdue event fires once (a
stored notice), across restarts too.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers.event import async_track_point_in_utc_time, async_track_time_change
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .const import CONF_OVERDUE_GRACE_DAYS, DOMAIN, EVENT_BILL_OVERDUE
from .engine.calendars import local_date
from .engine.money import round_money
from .store import receivables
from .subentries import site_options

if TYPE_CHECKING:
    from .coordinator import PrepaidCoordinator

_LOGGER = logging.getLogger(__name__)


class ReceivablesMonitor:
    """The postpaid tenants' bills and payments, as the coordinator and the entities see them."""

    def __init__(self, coordinator: PrepaidCoordinator) -> None:
        self.coordinator = coordinator
        self.hass = coordinator.hass
        self.tenants = [t.id for t in coordinator.site.tenants if t.postpaid]
        options = site_options(coordinator.config_entry)
        self.grace_days = max(0, int(options.get(CONF_OVERDUE_GRACE_DAYS) or 0))
        self.timezone = str(self.hass.config.time_zone)
        self._next: CALLBACK_TYPE | None = None
        #: When each tenant's next open bill falls overdue (the planned check is the earliest).
        self._due_next: dict[str, datetime] = {}
        #: Issued bills already read (they never change; see ``store.receivables``).
        self._bills: receivables.BillCache = {}

    def evaluate(
        self, session: Session, now: datetime, changed: Collection[str] | None = None
    ) -> receivables.Evaluation | None:
        """The postpaid accounts now (on the store's thread); None on a site without any.

        ``changed``: after a ledger write, the tenants whose balance it moved
        (a payment, a refund, a correction); those and the tenants with a new
        bill are checked, the others cannot have changed but by the clock
        (the planned checks see to that). None: every postpaid tenant.

        Also None when the store fails here: this runs after a ledger write
        has committed (a payment stands even if its check must wait for the
        next one, at midnight or the next write).
        """
        if not self.tenants:
            return None
        site = self.coordinator.site_id
        try:
            tenants = self.tenants
            if changed is not None:
                fresh = receivables.new_bills(session, site, tenants, self._bills)
                tenants = [t for t in tenants if t in changed or t in fresh]
            return receivables.evaluate(
                session,
                site,
                tenants,
                now=now,
                grace_days=self.grace_days,
                timezone=self.timezone,
                cache=self._bills,
            )
        except SQLAlchemyError as err:
            session.rollback()
            _LOGGER.warning("Postpaid accounts of %s not checked: %s", self.coordinator.name, err)
            return None

    @callback
    def apply(self, evaluation: receivables.Evaluation | None, now: datetime) -> None:
        """Show the accounts on the tenants' state, fire the overdue events, plan the next check.

        Called under the coordinator's lock, before the supply policy runs.
        """
        if evaluation is None:
            return
        site = self.coordinator.site
        currency = site.currency
        for tenant_id, account in evaluation.accounts.items():
            state = self.coordinator.data.tenants[tenant_id]
            state.amount_due = round_money(account.amount_due, currency)
            state.overdue = account.overdue
            if (at := account.next_overdue_at(now)) is not None:
                self._due_next[tenant_id] = at
            else:
                self._due_next.pop(tenant_id, None)
        tenant_device = f"{self.coordinator.site_id}_tenant_"
        for tenant_id, bill in evaluation.newly_overdue:
            tenant = site.tenant_by_id[tenant_id]
            payload: dict[str, Any] = {
                "entry_id": self.coordinator.site_id,
                "tenant": tenant.id,
                "tenant_name": tenant.name,
                "device_id": self.coordinator._device_id(f"{tenant_device}{tenant.id}"),
                "bill_number": bill.number,
                "bill_id": bill.bill_id,
                "amount_open": str(round_money(bill.open, currency)),
                "due": local_date(bill.due_at, self.timezone).isoformat() if bill.due_at else None,
                "currency": currency,
            }
            _LOGGER.info("Bill %s of %s is overdue", bill.number, tenant.name)
            self.hass.bus.async_fire(EVENT_BILL_OVERDUE, payload)
        self._plan(min((at for at in self._due_next.values() if at > now), default=None))

    def _plan(self, at: datetime | None) -> None:
        """Check again when the next open bill falls overdue."""
        if self._next is not None:
            self._next()
            self._next = None
        if at is None:
            return

        @callback
        def _due(_now: datetime) -> None:
            self._next = None
            self._check_soon("due date passed")

        self._next = async_track_point_in_utc_time(self.hass, _due, at)

    @callback
    def _check_soon(self, why: str) -> None:
        entry = self.coordinator.config_entry
        if entry.state is ConfigEntryState.LOADED:
            entry.async_create_task(self.hass, self.async_check(), f"{DOMAIN} receivables: {why}")

    @callback
    def async_start(self) -> None:
        """Check at every local midnight (until the entry unloads)."""
        if not self.tenants:
            return

        @callback
        def _midnight(_now: datetime) -> None:
            self._check_soon("midnight")

        entry = self.coordinator.config_entry
        entry.async_on_unload(
            async_track_time_change(self.hass, _midnight, hour=0, minute=0, second=0)
        )
        entry.async_on_unload(self.async_stop)

    @callback
    def async_stop(self) -> None:
        """Drop the planned check."""
        self._plan(None)

    async def async_check(self) -> None:
        """Evaluate the accounts now and apply the supply policy to the postpaid tenants."""
        await self.coordinator.async_check_receivables()
