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
from .models import Bill, BillNotice, PaymentReference

ZERO = Decimal(0)
POSTPAID = "postpaid"
OVERDUE = "overdue"
#: Payment kinds that pay a postpaid tenant's bills (a refund pays money back).
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


#: Postpaid bills already read, by id: (tenant, revision, the bill). Issued bills never
#: change, so a long-lived reader (the site's monitor) keeps them and reads only new ones.
type BillCache = dict[int, tuple[str, int, BillDue]]


def _read_bills(
    session: Session, site: str, tenants: Collection[str], cache: BillCache, *, newer: bool = False
) -> tuple[set[int], set[str]]:
    """The ids of the tenants' postpaid bills; the ones not in ``cache`` are read into it.

    ``newer``: look only at ids above the highest one in ``cache`` (bills are
    inserted by the store's one writer thread, so ids grow in commit order,
    as `ledger.BalanceCache` relies on too). Returns the ids and the tenants
    that have a bill not read before.
    """
    wanted = [Bill.site == site, Bill.mode == POSTPAID]
    if newer:
        wanted.append(Bill.id > max(cache, default=0))
        among = set(tenants)
        rows = session.execute(select(Bill.id, Bill.tenant).where(*wanted))
        ids = {bill_id for bill_id, tenant in rows if tenant in among}
    else:
        wanted.append(Bill.tenant.in_(list(tenants)))
        ids = set(session.scalars(select(Bill.id).where(*wanted)))
    missing = sorted(ids - cache.keys())
    fresh: set[str] = set()
    for i in range(0, len(missing), 500):
        rows = session.execute(
            select(
                Bill.id,
                Bill.tenant,
                Bill.period_start,
                Bill.revision,
                Bill.number,
                Bill.total,
                _due_at(session),
            ).where(Bill.id.in_(missing[i : i + 500]))
        )
        for bill_id, tenant, start, revision, number, total, due in rows:
            bill = BillDue(
                bill_id=bill_id,
                number=number or "",
                period_start=start,
                amount=total,
                due_at=None if due is None else datetime.fromisoformat(due),
            )
            cache[bill_id] = (tenant, revision, bill)
            fresh.add(tenant)
    return ids, fresh


def new_bills(session: Session, site: str, tenants: Collection[str], cache: BillCache) -> set[str]:
    """The tenants with a postpaid bill (or revision) not in ``cache`` yet (read into it)."""
    return _read_bills(session, site, tenants, cache, newer=True)[1] if tenants else set()


def bills_owed(
    session: Session, site: str, tenants: Collection[str], cache: BillCache | None = None
) -> dict[str, list[BillDue]]:
    """Each tenant's postpaid bills, one per period: the latest revision.

    A bill's due date is read from its stored document by the database; with
    a ``cache`` that is done once per bill.
    """
    if not tenants:
        return {}
    cache = {} if cache is None else cache
    ids, _fresh = _read_bills(session, site, tenants, cache)
    latest: dict[tuple[str, datetime], tuple[int, BillDue]] = {}
    for bill_id in ids:
        tenant, revision, bill = cache[bill_id]
        key = (tenant, bill.period_start)
        if key not in latest or latest[key][0] < revision:
            latest[key] = (revision, bill)
    out: dict[str, list[BillDue]] = {}
    for (tenant, _start), (_rev, bill) in latest.items():
        out.setdefault(tenant, []).append(bill)
    return out


def payments(session: Session, site: str, tenants: Collection[str]) -> dict[str, Decimal]:
    """Per postpaid tenant: its top-ups less its refunds since its first postpaid bill's period.

    Read from the payment references (one row per payment, kept with the
    entry it posted), not from the journal, which holds every charge too;
    added up per tenant and kind by the database (exactly: NUMERIC on
    PostgreSQL; on SQLite, where amounts are exact text, the texts are
    joined there and added in Python with Decimal).
    """
    if not tenants:
        return {}
    first = (
        select(Bill.tenant, func.min(Bill.period_start).label("since"))
        .where(Bill.site == site, Bill.tenant.in_(list(tenants)), Bill.mode == POSTPAID)
        .group_by(Bill.tenant)
        .subquery()
    )
    sqlite = session.get_bind().dialect.name == "sqlite"
    amount = (
        func.group_concat(PaymentReference.amount, "|")
        if sqlite
        else func.sum(PaymentReference.amount)
    )
    rows = session.execute(
        select(PaymentReference.tenant, PaymentReference.kind, amount)
        .join(first, first.c.tenant == PaymentReference.tenant)
        .where(
            PaymentReference.site == site,
            PaymentReference.kind.in_(PAYMENT_KINDS),
            PaymentReference.received_at >= first.c.since,
        )
        .group_by(PaymentReference.tenant, PaymentReference.kind)
    )
    out: dict[str, Decimal] = {}
    for tenant, kind, total in rows:
        if isinstance(total, str):
            total = sum(map(Decimal, total.split("|")), ZERO)
        paid = Decimal(total)
        out[tenant] = out.get(tenant, ZERO) + (paid if kind == "top_up" else -paid)
    return out


def accounts(
    session: Session,
    site: str,
    tenants: Collection[str],
    *,
    now: datetime,
    grace_days: int = 0,
    timezone: str = "UTC",
    cache: BillCache | None = None,
) -> dict[str, Account]:
    """Every given (postpaid) tenant's bills with the payments applied, oldest first."""
    owed = bills_owed(session, site, tenants, cache)
    paid = payments(session, site, list(owed))
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
    cache: BillCache | None = None,
) -> Evaluation:
    """The accounts, and a notice for each overdue bill that has none yet (stored, committed)."""
    found = accounts(session, site, tenants, now=now, grace_days=grace_days, timezone=timezone,
                     cache=cache)  # fmt: skip
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
