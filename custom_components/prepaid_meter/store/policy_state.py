"""The supply policy's state per tenant, and the recent cost the days-left forecast uses.

The state lives on the tenant's control row (``pm_tenant_control``, next to
the manual lock and force-on) so a restart neither fires a warning again nor
grants emergency credit twice, and a grace period keeps running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .ledger import wallet_code
from .models import Account, JournalEntry, Posting, TenantControl

ZERO = Decimal(0)


@dataclass(frozen=True, kw_only=True)
class PolicyState:
    """A tenant's overrides and the policy's memory."""

    locked: bool = False
    forced_on: bool = False
    warned: frozenset[str] = frozenset()
    emergency: Decimal = ZERO
    due_since: datetime | None = None
    cut_off: bool = False


def load(session: Session, site: str) -> dict[str, PolicyState]:
    """Every tenant's stored state (tenants without a row have the defaults)."""
    rows = session.scalars(select(TenantControl).where(TenantControl.site == site))
    return {
        row.tenant: PolicyState(
            locked=row.locked,
            forced_on=row.forced_on,
            warned=frozenset(k for k in (row.warned or "").split(",") if k),
            emergency=row.emergency if row.emergency is not None else ZERO,
            due_since=row.due_since,
            cut_off=row.cut_off,
        )
        for row in rows
    }


def save(session: Session, site: str, tenant: str, state: PolicyState) -> None:
    """Store one tenant's state."""
    row = session.get(TenantControl, (site, tenant))
    if row is None:
        row = TenantControl(site=site, tenant=tenant)
        session.add(row)
    row.locked, row.forced_on = state.locked, state.forced_on
    row.warned = ",".join(sorted(state.warned))
    row.emergency = state.emergency
    row.due_since = state.due_since
    row.cut_off = state.cut_off
    session.commit()


def recent_costs(
    session: Session, site: str, since: datetime
) -> dict[str, tuple[Decimal, datetime]]:
    """Per tenant: what was charged since ``since`` and the time of its first charge ever.

    Sums are exact (Python ``Decimal``; the amounts come back as Decimals on
    every backend).
    """
    firsts: dict[str | None, datetime | None] = {}
    for tenant, first in session.execute(
        select(JournalEntry.tenant, func.min(JournalEntry.created_at))
        .where(JournalEntry.site == site, JournalEntry.kind == "charge")
        .group_by(JournalEntry.tenant)
    ):
        firsts[tenant] = first
    rows = session.execute(
        select(Account.code, Posting.amount)
        .join(Posting, Posting.account_id == Account.id)
        .join(JournalEntry, Posting.entry_id == JournalEntry.id)
        .where(
            JournalEntry.site == site,
            JournalEntry.kind == "charge",
            JournalEntry.created_at >= since,
            Account.kind == "wallet",
        )
    )
    codes: dict[str, Decimal] = {}
    for code, amount in rows:
        codes[code] = codes.get(code, ZERO) - amount
    out: dict[str, tuple[Decimal, datetime]] = {}
    for tenant, first in firsts.items():
        if tenant is None or first is None:
            continue
        first_at = first if first.tzinfo is not None else first.replace(tzinfo=since.tzinfo)
        out[tenant] = (codes.get(wallet_code(tenant), ZERO), first_at)
    return out
