"""Postpaid receivables: what each bill still owes, from the bills and the payments.

A postpaid tenant pays against bills. Nothing is recorded per allocation:
the payments received (top-ups, less refunds) are applied to the tenant's
bills oldest first every time the question is asked, so the answer follows
from the append-only ledger and the issued bills alone. What a bill owes is
its latest revision's total (a recalculation changes what is owed). A bill
still open after its due date (its local day) and the site's
grace days is overdue from the local midnight that ends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .calendars import local_date, local_midnight, utc
from .money import ZERO


@dataclass(frozen=True, slots=True, kw_only=True)
class BillDue:
    """A postpaid bill as owed: its latest revision."""

    #: The latest revision's id and number (what the tenant holds).
    bill_id: int
    number: str
    period_start: datetime
    #: What the latest revision says is owed (its total).
    amount: Decimal
    #: The latest revision's due date (an instant; the local day it falls on counts).
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Receivable:
    """A bill with the payments applied to it."""

    bill_id: int
    number: str
    period_start: datetime
    amount: Decimal
    paid: Decimal
    due_at: datetime | None
    #: The first instant the bill counts as overdue (None: paid in full, or no due date).
    overdue_from: datetime | None
    overdue: bool

    @property
    def open(self) -> Decimal:
        """What is still owed on the bill."""
        return self.amount - self.paid


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A postpaid tenant's bills, oldest first, and the payments not applied to any."""

    bills: tuple[Receivable, ...]
    #: Paid beyond every bill (carried to the next one).
    credit: Decimal

    @property
    def amount_due(self) -> Decimal:
        """Everything still owed on issued bills."""
        return sum((b.open for b in self.bills), ZERO)

    @property
    def overdue(self) -> bool:
        """Whether any bill is overdue."""
        return any(b.overdue for b in self.bills)

    def next_overdue_at(self, now: datetime) -> datetime | None:
        """When the next open bill, not overdue yet, becomes overdue (None: none will)."""
        ahead = [b.overdue_from for b in self.bills if b.overdue_from and not b.overdue]
        return min((at for at in ahead if at > now), default=None)


def overdue_from(due_at: datetime, grace_days: int, timezone: str) -> datetime:
    """The local midnight after the due date's local day and ``grace_days`` more days."""
    return local_midnight(local_date(due_at, timezone) + timedelta(days=1 + grace_days), timezone)


def _oldest_first(bills: Sequence[BillDue]) -> list[BillDue]:
    return sorted(bills, key=lambda b: (b.period_start, b.bill_id))


def allocate(
    bills: Sequence[BillDue],
    paid: Decimal,
    *,
    now: datetime,
    grace_days: int = 0,
    timezone: str = "UTC",
) -> Account:
    """Apply ``paid`` (every payment received, less refunds) to the bills, oldest first.

    The bills are taken in the order of their periods. A bill whose total is
    negative (a revision that credits) adds its credit to what is applied.
    Allocations and the credit left add up to ``paid`` plus such credits, to
    the cent: nothing is rounded here (amounts are posted, rounded, amounts).
    """
    ordered = _oldest_first(bills)
    left = max(paid, ZERO) + sum((-b.amount for b in ordered if b.amount < 0), ZERO)
    out: list[Receivable] = []
    for bill in ordered:
        amount = max(bill.amount, ZERO)
        applied = min(amount, left)
        left -= applied
        starts = None
        if applied < amount and bill.due_at is not None:
            starts = overdue_from(bill.due_at, grace_days, timezone)
        out.append(
            Receivable(
                bill_id=bill.bill_id,
                number=bill.number,
                period_start=bill.period_start,
                amount=amount,
                paid=applied,
                due_at=bill.due_at,
                overdue_from=starts,
                overdue=starts is not None and utc(now) >= starts,
            )
        )
    return Account(bills=tuple(out), credit=left)
