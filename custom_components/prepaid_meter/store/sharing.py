"""Store side of sharing: the readings around a window, and posting shares once.

Functions here run on the store's thread. A share is posted as one journal
entry (wallet → ``revenue:shared`` or ``revenue:loss``) under a reference
``share:{rule}:{window start}:{tenant}``; a reference already in the ledger
is skipped, so running a window again posts nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .ledger import _Accounts, _whole, closed_tenants, post_entry
from .models import Account, JournalEntry, MeterReading, Posting

#: The ledger kinds (and revenue accounts) of shared costs.
SHARE_KINDS = ("shared", "loss")


@dataclass(frozen=True, kw_only=True)
class SharePosting:
    """One tenant's share to charge (a negative amount is a credit)."""

    tenant: str
    kind: str
    amount: Decimal
    reference: str
    at: datetime
    memo: str = ""


@dataclass(frozen=True, kw_only=True)
class PostOutcome:
    """What happened to one share: ``posted``, ``duplicate``, ``closed`` or ``zero``."""

    reference: str
    status: str
    entry_id: int | None = None


def readings_around(
    session: Session, site: str, meters: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Each meter's readings in ``[start, end]`` plus the nearest one outside each edge.

    Every source counts (polls, hand-entered and imported readings), in time order.
    """
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    for meter in meters:
        base = select(MeterReading.taken_at, MeterReading.value).where(
            MeterReading.site == site, MeterReading.meter == meter
        )
        before = session.execute(
            base.where(MeterReading.taken_at < start)
            .order_by(MeterReading.taken_at.desc())
            .limit(1)
        ).all()
        within = session.execute(
            base.where(MeterReading.taken_at >= start, MeterReading.taken_at <= end).order_by(
                MeterReading.taken_at, MeterReading.id
            )
        ).all()
        after = session.execute(
            base.where(MeterReading.taken_at > end).order_by(MeterReading.taken_at).limit(1)
        ).all()
        points: dict[datetime, Decimal] = {}
        for at, value in [*before, *within, *after]:
            points.setdefault(at, value)
        out[meter] = sorted(points.items())
    return out


@_whole
def post_shares(
    session: Session, *, site: str, shares: Sequence[SharePosting]
) -> list[PostOutcome]:
    """Post every share not posted before, in one transaction; report each one's fate.

    A closed account (moved out) takes no share; a zero share posts nothing.
    """
    for share in shares:
        if share.kind not in SHARE_KINDS:
            raise ValueError(f"unknown share kind {share.kind!r}")
    refs = [s.reference for s in shares]
    known = (
        dict(
            session.execute(
                select(JournalEntry.reference, JournalEntry.id).where(
                    JournalEntry.site == site, JournalEntry.reference.in_(refs)
                )
            )
            .tuples()
            .all()
        )
        if refs
        else {}
    )
    closed = closed_tenants(session, site)
    accounts = _Accounts(session, site)
    outcomes: list[PostOutcome] = []
    entries: list[tuple[int, JournalEntry]] = []
    for share in shares:
        if share.reference in known:
            outcomes.append(PostOutcome(reference=share.reference, status="duplicate",
                                        entry_id=known[share.reference]))  # fmt: skip
            continue
        if not share.amount:
            outcomes.append(PostOutcome(reference=share.reference, status="zero"))
            continue
        if share.tenant in closed:
            outcomes.append(PostOutcome(reference=share.reference, status="closed"))
            continue
        entry = post_entry(
            session,
            site=site,
            kind=share.kind,
            at=share.at,
            legs=[
                (accounts.wallet(share.tenant), -share.amount),
                (accounts.get(f"revenue:{share.kind}", "revenue"), share.amount),
            ],
            tenant=share.tenant,
            reference=share.reference,
            memo=share.memo,
        )
        known[share.reference] = -1
        entries.append((len(outcomes), entry))
        outcomes.append(PostOutcome(reference=share.reference, status="posted"))
    session.flush()
    for index, entry in entries:
        outcomes[index] = PostOutcome(
            reference=outcomes[index].reference, status="posted", entry_id=entry.id
        )
    session.commit()
    return outcomes


def share_entries(session: Session, site: str) -> list[tuple[str, str, Decimal, str]]:
    """Every posted share as (reference, tenant, amount charged, kind), oldest first."""
    rows = session.execute(
        select(JournalEntry.reference, JournalEntry.tenant, Posting.amount, JournalEntry.kind)
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .where(
            JournalEntry.site == site,
            JournalEntry.kind.in_(SHARE_KINDS),
            Account.kind == "revenue",
        )
        .order_by(JournalEntry.id)
    ).all()
    return [(str(r), str(t), Decimal(a), str(k)) for r, t, a, k in rows]
