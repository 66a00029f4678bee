"""The ledger: append-only, double-entry. Functions here run on the store's thread.

Sign convention: a posting's amount is what flows into its account. A top-up
posts +amount to the tenant's wallet and -amount to the cash account of its
payment method; a charge posts -amount to the wallet and +amount to revenue.
A wallet's balance is the sum of its postings; every entry sums to zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..engine.money import ZERO
from .models import Account, JournalEntry, MeterCursor, MeterReading, Posting, TenantControl


class LedgerError(Exception):
    """A ledger operation that must not happen; ``key`` names the translated message."""

    def __init__(self, key: str, **placeholders: str) -> None:
        super().__init__(key)
        self.key = key
        self.placeholders = placeholders


@dataclass(frozen=True, kw_only=True)
class TopUpResult:
    """The outcome of a top-up: the entry, the balance after it, whether it was a repeat."""

    entry_id: int
    reference: str
    balance: Decimal
    duplicate: bool


@dataclass(frozen=True, kw_only=True)
class MeterCharge:
    """A counter reading to charge to a tenant's wallet (amount computed by the engine)."""

    meter: str
    tenant: str
    value: Decimal
    taken_at: datetime
    amount: Decimal
    kind: str = "energy"


def wallet_code(tenant: str) -> str:
    """The account code of a tenant's wallet."""
    return f"wallet:{tenant}"


def _account(session: Session, site: str, code: str, kind: str, tenant: str | None = None) -> int:
    account_id = session.scalar(
        select(Account.id).where(Account.site == site, Account.code == code)
    )
    if account_id is not None:
        return account_id
    account = Account(site=site, code=code, kind=kind, tenant=tenant)
    session.add(account)
    session.flush()
    return account.id


def post_entry(
    session: Session,
    *,
    site: str,
    kind: str,
    at: datetime,
    legs: list[tuple[int, Decimal]],
    tenant: str | None = None,
    reference: str | None = None,
    memo: str = "",
) -> JournalEntry:
    """Insert one journal entry with its postings; refuses an entry that does not balance."""
    if sum((amount for _, amount in legs), ZERO) != 0:
        raise LedgerError("unbalanced_entry")
    entry = JournalEntry(
        site=site, created_at=at, kind=kind, tenant=tenant, reference=reference, memo=memo
    )
    session.add(entry)
    session.flush()
    session.add_all(Posting(entry_id=entry.id, account_id=a, amount=amt) for a, amt in legs)
    return entry


def balance(session: Session, site: str, tenant: str) -> Decimal:
    """A tenant's wallet balance: the exact sum of its postings."""
    amounts = session.scalars(
        select(Posting.amount)
        .join(Account, Posting.account_id == Account.id)
        .where(Account.site == site, Account.code == wallet_code(tenant))
    )
    return sum(amounts, ZERO)


def journal_sum(session: Session, site: str) -> Decimal:
    """The sum of every posting of the site: zero in a sound ledger."""
    amounts = session.scalars(
        select(Posting.amount).join(JournalEntry).where(JournalEntry.site == site)
    )
    return sum(amounts, ZERO)


def top_up(
    session: Session,
    *,
    site: str,
    tenant: str,
    amount: Decimal,
    method: str,
    reference: str,
    at: datetime,
    memo: str = "",
) -> TopUpResult:
    """Credit a wallet from a payment; the same reference twice credits once."""
    existing = _by_reference(session, site, reference)
    if existing is not None:
        return _repeat(session, existing, site, tenant, amount)
    wallet = _account(session, site, wallet_code(tenant), "wallet", tenant)
    cash = _account(session, site, f"cash:{method}", "cash")
    try:
        entry = post_entry(
            session,
            site=site,
            kind="top_up",
            at=at,
            legs=[(wallet, amount), (cash, -amount)],
            tenant=tenant,
            reference=reference,
            memo=memo,
        )
        session.commit()
    except IntegrityError:
        # Another writer committed the same reference first: answer as a repeat.
        session.rollback()
        existing = _by_reference(session, site, reference)
        if existing is None:
            raise
        return _repeat(session, existing, site, tenant, amount)
    return TopUpResult(
        entry_id=entry.id,
        reference=reference,
        balance=balance(session, site, tenant),
        duplicate=False,
    )


def _by_reference(session: Session, site: str, reference: str) -> JournalEntry | None:
    return session.scalar(
        select(JournalEntry).where(JournalEntry.site == site, JournalEntry.reference == reference)
    )


def _repeat(
    session: Session, entry: JournalEntry, site: str, tenant: str, amount: Decimal
) -> TopUpResult:
    """A reference seen before: the same request is answered again, a different one refused."""
    credited = sum((p.amount for p in entry.postings if p.amount > 0), ZERO)
    if entry.kind != "top_up" or entry.tenant != tenant or credited != amount:
        raise LedgerError("reference_conflict", reference=entry.reference or "")
    return TopUpResult(
        entry_id=entry.id,
        reference=entry.reference or "",
        balance=balance(session, site, tenant),
        duplicate=True,
    )


def cursors(session: Session, site: str) -> dict[str, MeterCursor]:
    """The last charged reading of every meter of the site."""
    return {
        c.meter: c for c in session.scalars(select(MeterCursor).where(MeterCursor.site == site))
    }


def charge_meters(session: Session, site: str, charges: list[MeterCharge]) -> None:
    """Charge readings in one transaction: reading, cursor and ledger entry move together."""
    revenue: dict[str, int] = {}
    existing = cursors(session, site)
    for charge in charges:
        session.add(
            MeterReading(
                site=site, meter=charge.meter, taken_at=charge.taken_at, value=charge.value
            )
        )
        cursor = existing.get(charge.meter)
        if cursor is None:
            session.add(
                MeterCursor(
                    site=site, meter=charge.meter, value=charge.value, taken_at=charge.taken_at
                )
            )
        else:
            cursor.value = charge.value
            cursor.taken_at = charge.taken_at
        if charge.amount == 0:
            continue
        if charge.kind not in revenue:
            revenue[charge.kind] = _account(session, site, f"revenue:{charge.kind}", "revenue")
        wallet = _account(session, site, wallet_code(charge.tenant), "wallet", charge.tenant)
        post_entry(
            session,
            site=site,
            kind="charge",
            at=charge.taken_at,
            legs=[(wallet, -charge.amount), (revenue[charge.kind], charge.amount)],
            tenant=charge.tenant,
            memo=f"{charge.meter}@{charge.value}",
        )
    session.commit()


@dataclass
class BalanceCache:
    """Wallet balances summed up to a posting id, extended with newer postings only.

    It is derived from the ledger (never written back to it) and lives on the
    store's thread; ``verify`` recomputes everything from scratch. It relies on
    posting ids growing in commit order, which holds with the store's single
    writer thread.
    """

    last_posting_id: int = 0
    balances: dict[str, Decimal] | None = None

    def refresh(self, session: Session, site: str) -> dict[str, Decimal]:
        """Add the wallet postings made since the last refresh; return all balances."""
        if self.balances is None:
            self.balances = {}
        rows = session.execute(
            select(Posting.id, Posting.amount, Account.tenant)
            .join(Account, Posting.account_id == Account.id)
            .where(
                Account.site == site, Account.kind == "wallet", Posting.id > self.last_posting_id
            )
            .order_by(Posting.id)
        )
        for posting_id, amount, tenant in rows:
            if tenant is not None:
                self.balances[tenant] = self.balances.get(tenant, ZERO) + amount
            self.last_posting_id = posting_id
        return dict(self.balances)

    def verify(self, session: Session, site: str) -> bool:
        """Recompute every balance from all postings and compare."""
        fresh = BalanceCache().refresh(session, site)
        mine = {t: b for t, b in (self.balances or {}).items() if b != 0 or t in fresh}
        return {t: b for t, b in fresh.items() if b != 0 or t in mine} == mine


def tenant_controls(session: Session, site: str) -> dict[str, tuple[bool, bool]]:
    """Manual overrides per tenant: (locked, forced_on)."""
    rows = session.scalars(select(TenantControl).where(TenantControl.site == site))
    return {row.tenant: (row.locked, row.forced_on) for row in rows}


def set_tenant_control(
    session: Session, site: str, tenant: str, locked: bool, forced_on: bool
) -> None:
    """Store a tenant's manual overrides."""
    row = session.get(TenantControl, (site, tenant))
    if row is None:
        session.add(TenantControl(site=site, tenant=tenant, locked=locked, forced_on=forced_on))
    else:
        row.locked, row.forced_on = locked, forced_on
    session.commit()
