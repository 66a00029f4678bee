"""Tenants' charges read back from the ledger, for the running cost sums.

A tenant's cost is what moved from its wallet to a revenue account: energy
charges, standing charges, shared common-area cost and line loss, bill
corrections, and the reversals of any of them. So it is read as the revenue
postings of the tenant's entries, in posting order, from a posting id on
(the same incremental walk as ``ledger.BalanceCache``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .ledger import closed_tenants
from .models import Account, JournalEntry, Posting

#: Receives (tenant, amount charged, when) for each cost posting.
type CostSink = Callable[[str, Decimal, datetime], None]


def scan_costs(session: Session, site: str, after: int, sink: CostSink) -> int:
    """Feed every tenant cost posted after posting id ``after`` to ``sink``; the last id seen.

    The id returned covers postings of every kind (it is the highest posting
    id of the site's revenue accounts seen, or ``after``).
    """
    rows = session.execute(
        select(Posting.id, Posting.amount, JournalEntry.tenant, JournalEntry.created_at)
        .join(Account, Posting.account_id == Account.id)
        .join(JournalEntry, Posting.entry_id == JournalEntry.id)
        .where(Account.site == site, Account.kind == "revenue", Posting.id > after)
        .order_by(Posting.id)
    )
    last = after
    for posting_id, amount, tenant, created_at in rows:
        if tenant is not None:
            sink(tenant, amount, created_at)
        last = posting_id
    return last


def closed(session: Session, site: str) -> set[str]:
    """Tenants whose accounts are closed (they take no more charges)."""
    return closed_tenants(session, site)
