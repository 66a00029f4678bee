"""Postpaid receivables from the store: bills owed, payments applied oldest first, overdue.

Nothing here is kept as a second record of money: each question reads the
issued bills (the latest revision of each period is what is owed) and the
tenant's payments in the ledger, and `engine.receivables.allocate` applies
them. Payments are the tenant's top-ups less its refunds, counted from the
start of its first postpaid bill's period (what it paid while prepaid went
on its prepaid use). The only thing written is a bill notice, so that the
overdue event of a bill fires once, across restarts too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ..engine.receivables import Account, BillDue, Receivable, allocate
from .models import Account as LedgerAccount
from .models import Bill, BillNotice, JournalEntry, Posting

ZERO = Decimal(0)
POSTPAID = "postpaid"
OVERDUE = "overdue"
#: Ledger kinds that pay a postpaid tenant's bills (a refund pays money back).
PAYMENT_KINDS = ("top_up", "refund")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Every postpaid tenant's account, and the bills that fell overdue for the first time."""

    accounts: dict[str, Account]
    newly_overdue: list[tuple[str, Receivable]]


def _due_at(session: Session) -> ColumnElement[str | None]:
    """The ``due_at`` of a bill's stored document, read by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.json_extract_path_text(cast(Bill.document, JSON), "due_at")
    return func.json_extract(Bill.document, "$.due_at")


def bills_owed(session: Session, site: str, tenants: Collection[str]) -> dict[str, list[BillDue]]:
    """Each tenant's postpaid bills, one per period: the latest revision."""
    if not tenants:
        return {}
    rows = session.execute(
        select(
            Bill.id,
            Bill.tenant,
            Bill.period_start,
            Bill.revision,
            Bill.number,
            Bill.total,
            _due_at(session),
        ).where(Bill.site == site, Bill.tenant.in_(list(tenants)), Bill.mode == POSTPAID)
    )
    latest: dict[tuple[str, datetime], tuple[int, BillDue]] = {}
    for bill_id, tenant, start, revision, number, total, due in rows:
        if due is None:
            continue
        key = (tenant, start)
        if key in latest and latest[key][0] >= revision:
            continue
        latest[key] = (
            revision,
            BillDue(
                bill_id=bill_id,
                number=number or "",
                period_start=start,
                amount=total,
                due_at=datetime.fromisoformat(due),
            ),
        )
    out: dict[str, list[BillDue]] = {}
    for (tenant, _start), (_rev, bill) in latest.items():
        out.setdefault(tenant, []).append(bill)
    return out


def payments(session: Session, site: str, since: dict[str, datetime]) -> dict[str, Decimal]:
    """Per tenant: top-ups less refunds on its wallet at or after ``since[tenant]``.

    Summed in Python with Decimal (SQLite stores amounts as exact text).
    """
    if not since:
        return {}
    rows = session.execute(
        select(JournalEntry.tenant, JournalEntry.created_at, Posting.amount)
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
        .where(
            JournalEntry.site == site,
            JournalEntry.kind.in_(PAYMENT_KINDS),
            JournalEntry.tenant.in_(list(since)),
            JournalEntry.created_at >= min(since.values()),
            LedgerAccount.kind == "wallet",
            LedgerAccount.tenant == JournalEntry.tenant,
        )
    )
    out: dict[str, Decimal] = {}
    for tenant, at, amount in rows:
        if at >= since[tenant]:
            out[tenant] = out.get(tenant, ZERO) + amount
    return out


def accounts(
    session: Session,
    site: str,
    tenants: Collection[str],
    *,
    now: datetime,
    grace_days: int = 0,
    timezone: str = "UTC",
) -> dict[str, Account]:
    """Every given (postpaid) tenant's bills with the payments applied, oldest first."""
    owed = bills_owed(session, site, tenants)
    since = {t: min(b.period_start for b in bills) for t, bills in owed.items()}
    paid = payments(session, site, since)
    return {
        tenant: allocate(
            owed.get(tenant, []),
            paid.get(tenant, ZERO),
            now=now,
            grace_days=grace_days,
            timezone=timezone,
        )
        for tenant in tenants
    }


def evaluate(
    session: Session,
    site: str,
    tenants: Collection[str],
    *,
    now: datetime,
    grace_days: int = 0,
    timezone: str = "UTC",
) -> Evaluation:
    """The accounts, and a notice for each overdue bill that has none yet (stored, committed)."""
    found = accounts(session, site, tenants, now=now, grace_days=grace_days, timezone=timezone)
    overdue = [(t, b) for t, account in found.items() for b in account.bills if b.overdue]
    if not overdue:
        return Evaluation(accounts=found, newly_overdue=[])
    noticed = set(
        session.execute(
            select(BillNotice.tenant, BillNotice.period_start).where(
                BillNotice.site == site,
                BillNotice.kind == OVERDUE,
                BillNotice.tenant.in_({t for t, _ in overdue}),
            )
        ).tuples()
    )
    new = [(t, b) for t, b in overdue if (t, b.period_start) not in noticed]
    if new:
        session.add_all(
            BillNotice(
                site=site,
                tenant=tenant,
                period_start=bill.period_start,
                kind=OVERDUE,
                bill_id=bill.bill_id,
                noticed_at=now,
            )
            for tenant, bill in new
        )
        try:
            session.commit()
        except IntegrityError:
            # Noticed meanwhile by another process sharing the database: it fired the event.
            session.rollback()
            return Evaluation(accounts=found, newly_overdue=[])
    return Evaluation(accounts=found, newly_overdue=new)
