"""The ledger: append-only, double-entry. Functions here run on the store's thread.

Sign convention: a posting's amount is what flows into its account. A top-up
posts +amount to the tenant's wallet and -amount to the cash account of its
payment method; a charge posts -amount to the wallet and +amount to revenue;
a refund posts -amount to the wallet and +amount to the refund account of its
method. A wallet's balance is the sum of its postings; every entry sums to zero.

Every function that writes commits its own transaction: the operation is
applied whole or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Concatenate

from sqlalchemy import Subquery, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..engine.money import ZERO
from .models import (
    Account,
    Assignment,
    JournalEntry,
    Meter,
    MeterCursor,
    MeterReading,
    PaymentReference,
    Posting,
    Site,
    Tenant,
    TenantControl,
)

#: Digits kept when summing in Python: Decimal's default 28 would round a
#: large balance that has many decimals; PostgreSQL's NUMERIC never does.
EXACT_PRECISION = 60

#: Revenue accounts, one per kind of charge.
CHARGE_KINDS = ("energy", "demand", "standing", "shared", "loss", "tax", "fees")


class LedgerError(Exception):
    """A ledger operation that must not happen; ``key`` names the translated message."""

    def __init__(self, key: str, **placeholders: str) -> None:
        super().__init__(key, placeholders)
        self.key = key
        self.placeholders = placeholders


@dataclass(frozen=True, kw_only=True)
class MoneyResult:
    """The outcome of a money-moving request: its entry, the balance after it, a repeat or not."""

    entry_id: int
    reference: str
    tenant: str
    amount: Decimal
    balance: Decimal
    duplicate: bool


#: The name the walking skeleton used for a top-up's outcome.
TopUpResult = MoneyResult


@dataclass(frozen=True, kw_only=True)
class Payment:
    """One payment of a batch of top-ups."""

    tenant: str
    amount: Decimal
    method: str
    reference: str
    memo: str = ""


@dataclass(frozen=True, kw_only=True)
class MeterCharge:
    """A counter reading to charge to a tenant's wallet (amount computed by the engine)."""

    meter: str
    tenant: str
    value: Decimal
    taken_at: datetime
    amount: Decimal
    kind: str = "energy"


@dataclass(frozen=True, kw_only=True)
class FinalCharge:
    """A charge made at move-out (standing charges to date, a last share of common areas)."""

    kind: str
    amount: Decimal
    memo: str = ""


@dataclass(frozen=True, kw_only=True)
class SettlementResult:
    """A move-out: what the tenant got back, or still owes, and when the account closed."""

    tenant: str
    reference: str
    final_charges: Decimal
    refunded: Decimal
    amount_due: Decimal
    closed_at: datetime
    duplicate: bool


def wallet_code(tenant: str) -> str:
    """The account code of a tenant's wallet."""
    return f"wallet:{tenant}"


def _whole[**P, R](
    fn: Callable[Concatenate[Session, P], R],
) -> Callable[Concatenate[Session, P], R]:
    """Roll back whatever the operation added when it fails, so nothing half-done remains."""

    @functools.wraps(fn)
    def wrapper(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(session, *args, **kwargs)
        except BaseException:
            session.rollback()
            raise

    return wrapper


# --- accounts and entries ------------------------------------------------------------


class _Accounts:
    """Account ids of one site, looked up (or opened) once per transaction."""

    def __init__(self, session: Session, site: str) -> None:
        self.session = session
        self.site = site
        self._ids: dict[str, int] = {}
        self._loaded = False

    def get(self, code: str, kind: str, tenant: str | None = None) -> int:
        if not self._loaded:
            # All of the site's accounts in one query: a poll's batch touches many wallets.
            self._loaded = True
            with self.session.no_autoflush:
                rows = self.session.execute(
                    select(Account.code, Account.id).where(Account.site == self.site)
                )
                self._ids = dict(rows.tuples().all())
        if (found := self._ids.get(code)) is not None:
            return found
        query = select(Account.id).where(Account.site == self.site, Account.code == code)
        account_id = self.session.scalar(query)
        if account_id is None:
            try:
                # A savepoint: a writer racing to open the same account must not
                # roll back the rest of this transaction.
                with self.session.begin_nested():
                    account = Account(site=self.site, code=code, kind=kind, tenant=tenant)
                    self.session.add(account)
                account_id = account.id
            except IntegrityError:
                account_id = self.session.scalar(query)
                assert account_id is not None
        self._ids[code] = account_id
        return account_id

    def wallet(self, tenant: str) -> int:
        return self.get(wallet_code(tenant), "wallet", tenant)


def post_entry(
    session: Session,
    *,
    site: str,
    kind: str,
    at: datetime,
    legs: Sequence[tuple[int, Decimal]],
    tenant: str | None = None,
    reference: str | None = None,
    memo: str = "",
    actor: str | None = None,
    reverses_id: int | None = None,
) -> JournalEntry:
    """Add one journal entry with its postings; refuses an entry that does not balance.

    Nothing is flushed here, so a batch of entries goes to the database in a
    few multi-row INSERTs when the transaction commits.
    """
    if not all(amount.is_finite() for _, amount in legs):
        raise LedgerError("unbalanced_entry")
    with localcontext(prec=EXACT_PRECISION):
        if sum((amount for _, amount in legs), ZERO) != 0:
            raise LedgerError("unbalanced_entry")
    entry = JournalEntry(
        site=site,
        created_at=at,
        kind=kind,
        tenant=tenant,
        reference=reference,
        memo=memo[:255],
        actor=actor,
        reverses_id=reverses_id,
        postings=[Posting(account_id=a, amount=amt) for a, amt in legs],
    )
    session.add(entry)
    return entry


@_whole
def reverse_entry(
    session: Session, site: str, entry_id: int, *, at: datetime, reason: str, actor: str | None
) -> JournalEntry:
    """Correct an entry by posting its mirror image; the original stays as it was."""
    original = session.get(JournalEntry, entry_id)
    if original is None or original.site != site:
        raise LedgerError("unknown_entry", entry=str(entry_id))
    entry = post_entry(
        session,
        site=site,
        kind="reversal",
        at=at,
        legs=[(p.account_id, -p.amount) for p in original.postings],
        tenant=original.tenant,
        memo=reason,
        actor=actor,
        reverses_id=original.id,
    )
    session.commit()
    return entry


# --- reading balances ----------------------------------------------------------------


def _sum(session: Session, query: Subquery) -> Decimal:
    """Sum an amount column exactly: in SQL on PostgreSQL (NUMERIC), in Python on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        total = session.scalar(select(func.sum(query.c.amount)))
        return Decimal(total) if total is not None else ZERO
    with localcontext(prec=EXACT_PRECISION):
        return +sum(session.scalars(select(query.c.amount)), ZERO)


def balance(session: Session, site: str, tenant: str) -> Decimal:
    """A tenant's wallet balance: the exact sum of its postings."""
    query = (
        select(Posting.amount)
        .join(Account, Posting.account_id == Account.id)
        .where(Account.site == site, Account.code == wallet_code(tenant))
        .subquery()
    )
    return _sum(session, query)


def journal_sum(session: Session, site: str) -> Decimal:
    """The sum of every posting of the site: zero in a sound ledger."""
    query = select(Posting.amount).join(JournalEntry).where(JournalEntry.site == site).subquery()
    return _sum(session, query)


def unbalanced_entries(session: Session, site: str) -> list[int]:
    """Entries whose postings do not sum to zero (there must be none)."""
    sums: dict[int, Decimal] = {}
    rows = session.execute(
        select(Posting.entry_id, Posting.amount).join(JournalEntry).where(JournalEntry.site == site)
    )
    for entry_id, amount in rows:
        sums[entry_id] = sums.get(entry_id, ZERO) + amount
    return sorted(e for e, s in sums.items() if s != 0)


def wallet_balances(session: Session, site: str) -> dict[str, Decimal]:
    """Every wallet's balance, summed from scratch."""
    return BalanceCache().refresh(session, site)


@dataclass
class BalanceCache:
    """Wallet balances summed up to a posting id, extended with newer postings only.

    It is derived from the ledger (never written back to it) and lives on the
    store's thread; ``verify`` recomputes everything from scratch (the
    reconciliation report does). It relies on posting ids growing in commit
    order, which holds with the store's single writer thread.
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
        with localcontext(prec=EXACT_PRECISION):
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


# --- the site's register -------------------------------------------------------------


@_whole
def sync_site(
    session: Session,
    *,
    site: str,
    name: str,
    currency: str,
    meters: Iterable[tuple[str, str, int | None, str]],
    tenants: Iterable[tuple[str, str, Sequence[str]]],
    at: datetime,
    opened: Mapping[str, datetime] | None = None,
) -> None:
    """Record the configured meters and tenant accounts; a new tenant moves in now.

    ``meters`` are (id, name, device id, profile); ``tenants`` are (id, name,
    meter ids). Existing rows keep their history: a closed account stays closed.
    A meter taken off a configured tenant's list ends its assignment now.
    ``opened``: when new tenants moved in, where that is known (their move-in
    day): their account and first assignments start then instead of now.
    """
    row = session.get(Site, site)
    if row is None:
        session.add(Site(id=site, name=name, currency=currency))
    else:
        row.name, row.currency = name, currency
    for meter_id, meter_name, device_id, profile in meters:
        meter = session.get(Meter, (site, meter_id))
        if meter is None:
            session.add(
                Meter(site=site, id=meter_id, name=meter_name, device_id=device_id, profile=profile)
            )
        else:
            meter.name, meter.device_id, meter.profile = meter_name, device_id, profile
    open_rows = {
        (a.meter, a.tenant): a
        for a in session.scalars(
            select(Assignment).where(Assignment.site == site, Assignment.end_at.is_(None))
        )
    }
    open_assignments = set(open_rows)
    tenants = list(tenants)
    configured = {(m, t) for t, _name, meter_ids in tenants for m in meter_ids}
    listed = {t for t, _name, _meters in tenants}
    for (meter_id, tenant_id), assignment in open_rows.items():
        if tenant_id in listed and (meter_id, tenant_id) not in configured:
            assignment.end_at = at
    for tenant_id, tenant_name, meter_ids in tenants:
        tenant = session.get(Tenant, (site, tenant_id))
        start = at
        if tenant is None:
            start = min(at, (opened or {}).get(tenant_id, at))
            tenant = Tenant(site=site, id=tenant_id, name=tenant_name, opened_at=start)
            session.add(tenant)
        else:
            tenant.name = tenant_name
        if tenant.closed_at is not None:
            continue
        for meter_id in meter_ids:
            if (meter_id, tenant_id) not in open_assignments:
                session.add(Assignment(site=site, meter=meter_id, tenant=tenant_id, start_at=start))
    session.commit()


def closed_tenants(session: Session, site: str) -> set[str]:
    """Tenant accounts closed at move-out."""
    return set(
        session.scalars(select(Tenant.id).where(Tenant.site == site, Tenant.closed_at.is_not(None)))
    )


def _require_open(session: Session, site: str, tenant: str) -> None:
    row = session.get(Tenant, (site, tenant))
    if row is not None and row.closed_at is not None:
        raise LedgerError("account_closed", tenant=tenant)


# --- money in and out ----------------------------------------------------------------


def _claimed(session: Session, site: str, reference: str) -> PaymentReference | None:
    return session.get(PaymentReference, (site, reference))


def _answer_repeat(
    session: Session,
    claim: PaymentReference,
    *,
    kind: str,
    tenant: str,
    amount: Decimal,
    method: str,
) -> MoneyResult:
    """A reference seen before: the same request is answered again, a different one refused."""
    if (claim.kind, claim.tenant, claim.amount, claim.method) != (kind, tenant, amount, method):
        raise LedgerError("reference_conflict", reference=claim.reference)
    return MoneyResult(
        entry_id=claim.entry_id,
        reference=claim.reference,
        tenant=tenant,
        amount=amount,
        balance=balance(session, claim.site, tenant),
        duplicate=True,
    )


def _apply_once(
    session: Session,
    *,
    site: str,
    kind: str,
    tenant: str,
    amount: Decimal,
    method: str,
    reference: str,
    at: datetime,
    legs: Sequence[tuple[str, str, Decimal]],
    memo: str,
    actor: str | None,
    check: Callable[[], None] | None = None,
) -> MoneyResult:
    """Post one wallet entry under a reference, exactly once, even against a racing writer.

    ``legs`` are (account code, account kind, amount). ``check`` may be a
    callable run before posting (for example "not more than the balance").
    """
    session.rollback()  # start from a fresh snapshot
    for attempt in range(2):
        claim = _claimed(session, site, reference)
        if claim is not None:
            return _answer_repeat(
                session, claim, kind=kind, tenant=tenant, amount=amount, method=method
            )
        _require_open(session, site, tenant)
        if check is not None:
            check()
        accounts = _Accounts(session, site)
        ids = [
            (accounts.get(code, akind, tenant if akind == "wallet" else None), amt)
            for code, akind, amt in legs
        ]
        entry = post_entry(
            session,
            site=site,
            kind=kind,
            at=at,
            legs=ids,
            tenant=tenant,
            reference=reference,
            memo=memo,
            actor=actor,
        )
        try:
            session.flush()
            session.add(
                PaymentReference(
                    site=site,
                    reference=reference,
                    entry_id=entry.id,
                    kind=kind,
                    tenant=tenant,
                    amount=amount,
                    method=method,
                    received_at=at,
                )
            )
            session.commit()
        except IntegrityError:
            # Another writer committed the same reference first: answer as a repeat.
            session.rollback()
            if attempt:
                raise
            continue
        return MoneyResult(
            entry_id=entry.id,
            reference=reference,
            tenant=tenant,
            amount=amount,
            balance=balance(session, site, tenant),
            duplicate=False,
        )
    raise AssertionError("unreachable")  # pragma: no cover


@_whole
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
    actor: str | None = None,
) -> MoneyResult:
    """Credit a wallet from a payment; the same reference twice credits once."""
    if amount <= 0:
        raise LedgerError("invalid_amount", amount=str(amount))
    return _apply_once(
        session,
        site=site,
        kind="top_up",
        tenant=tenant,
        amount=amount,
        method=method,
        reference=reference,
        at=at,
        legs=[(wallet_code(tenant), "wallet", amount), (f"cash:{method}", "cash", -amount)],
        memo=memo,
        actor=actor,
    )


@_whole
def top_up_batch(
    session: Session,
    *,
    site: str,
    payments: Sequence[Payment],
    at: datetime,
    actor: str | None = None,
) -> list[MoneyResult]:
    """Credit several wallets in one transaction: every payment is applied, or none.

    Each payment is idempotent by its reference like a single top-up; a
    reference reused with other parameters refuses the whole batch.
    """
    references = [p.reference for p in payments]
    if len(set(references)) != len(references):
        dup = next(r for r in references if references.count(r) > 1)
        raise LedgerError("reference_conflict", reference=dup)
    session.rollback()
    for attempt in range(2):
        closed = closed_tenants(session, site)
        claims = {
            c.reference: c
            for c in session.scalars(
                select(PaymentReference).where(
                    PaymentReference.site == site, PaymentReference.reference.in_(references)
                )
            )
        }
        accounts = _Accounts(session, site)
        pending: list[tuple[Payment, JournalEntry | PaymentReference]] = []
        for p in payments:
            if p.amount <= 0:
                raise LedgerError("invalid_amount", amount=str(p.amount))
            if (claim := claims.get(p.reference)) is not None:
                if (claim.kind, claim.tenant, claim.amount, claim.method) != (
                    "top_up",
                    p.tenant,
                    p.amount,
                    p.method,
                ):
                    raise LedgerError("reference_conflict", reference=p.reference)
                pending.append((p, claim))
                continue
            if p.tenant in closed:
                raise LedgerError("account_closed", tenant=p.tenant)
            entry = post_entry(
                session,
                site=site,
                kind="top_up",
                at=at,
                legs=[
                    (accounts.wallet(p.tenant), p.amount),
                    (accounts.get(f"cash:{p.method}", "cash"), -p.amount),
                ],
                tenant=p.tenant,
                reference=p.reference,
                memo=p.memo,
                actor=actor,
            )
            pending.append((p, entry))
        try:
            session.flush()
            session.add_all(
                PaymentReference(
                    site=site,
                    reference=p.reference,
                    entry_id=e.id,
                    kind="top_up",
                    tenant=p.tenant,
                    amount=p.amount,
                    method=p.method,
                    received_at=at,
                )
                for p, e in pending
                if isinstance(e, JournalEntry)
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
            continue
        balances = wallet_balances(session, site)
        return [
            MoneyResult(
                entry_id=e.entry_id if isinstance(e, PaymentReference) else e.id,
                reference=p.reference,
                tenant=p.tenant,
                amount=p.amount,
                balance=balances.get(p.tenant, ZERO),
                duplicate=isinstance(e, PaymentReference),
            )
            for p, e in pending
        ]
    raise AssertionError("unreachable")  # pragma: no cover


@_whole
def refund(
    session: Session,
    *,
    site: str,
    tenant: str,
    amount: Decimal,
    method: str,
    reference: str,
    at: datetime,
    force: bool = False,
    memo: str = "",
    actor: str | None = None,
) -> MoneyResult:
    """Pay money back out of a wallet; never more than the balance unless forced."""
    if amount <= 0:
        raise LedgerError("invalid_amount", amount=str(amount))

    def check() -> None:
        available = balance(session, site, tenant)
        if amount > available and not force:
            raise LedgerError("refund_exceeds_balance", amount=str(amount), balance=str(available))

    return _apply_once(
        session,
        site=site,
        kind="refund",
        tenant=tenant,
        amount=amount,
        method=method,
        reference=reference,
        at=at,
        legs=[(wallet_code(tenant), "wallet", -amount), (f"refund:{method}", "refund", amount)],
        memo=memo,
        actor=actor,
        check=check,
    )


@_whole
def adjust_balance(
    session: Session,
    *,
    site: str,
    tenant: str,
    amount: Decimal,
    reason: str,
    reference: str,
    at: datetime,
    actor: str | None = None,
) -> MoneyResult:
    """Correct a wallet by hand (goodwill credit, a missed charge); the reason stays on record."""
    if amount == 0:
        raise LedgerError("invalid_amount", amount=str(amount))
    if not reason.strip():
        raise LedgerError("reason_required")
    return _apply_once(
        session,
        site=site,
        kind="adjustment",
        tenant=tenant,
        amount=amount,
        method="",
        reference=reference,
        at=at,
        legs=[(wallet_code(tenant), "wallet", amount), ("adjustment", "adjustment", -amount)],
        memo=reason,
        actor=actor,
    )


# --- charging ------------------------------------------------------------------------


def cursors(session: Session, site: str) -> dict[str, MeterCursor]:
    """The last charged reading of every meter of the site."""
    return {
        c.meter: c for c in session.scalars(select(MeterCursor).where(MeterCursor.site == site))
    }


@_whole
def charge_meters(
    session: Session, site: str, charges: Sequence[MeterCharge], source: str = "poll"
) -> None:
    """Charge readings in one transaction: reading, cursor and ledger entry move together.

    A closed account takes no more charges: the reading and the cursor still
    move on (so the energy is not charged to the next tenant either), but no
    money is posted.
    """
    accounts = _Accounts(session, site)
    existing = dict(
        session.execute(
            select(MeterCursor.meter, MeterCursor.value).where(MeterCursor.site == site)
        )
        .tuples()
        .all()
    )
    closed = closed_tenants(session, site)
    # Bulk statements rather than one ORM object per row: a poll of a large
    # bus is a few multi-row INSERTs (see bench/ledger.py).
    new_cursors: dict[str, dict[str, object]] = {}
    moved_cursors: dict[str, dict[str, object]] = {}
    entries: list[dict[str, object]] = []
    legs: list[tuple[int, int, Decimal]] = []
    for charge in charges:
        cursor = {"site": site, "meter": charge.meter, "value": charge.value,
                  "taken_at": charge.taken_at}  # fmt: skip
        if charge.meter in existing or charge.meter in moved_cursors:
            moved_cursors[charge.meter] = cursor
        else:
            new_cursors[charge.meter] = cursor
        if charge.amount == 0 or not charge.tenant or charge.tenant in closed:
            continue
        if not charge.amount.is_finite():
            raise LedgerError("unbalanced_entry")
        wallet = accounts.wallet(charge.tenant)
        revenue = accounts.get(f"revenue:{charge.kind}", "revenue")
        legs.append((wallet, revenue, charge.amount))
        entries.append(
            {"site": site, "created_at": charge.taken_at, "kind": "charge",
             "tenant": charge.tenant, "reference": None, "memo": f"{charge.meter}@{charge.value}"}
        )  # fmt: skip
    if charges:
        session.execute(
            insert(MeterReading),
            [
                {"site": site, "meter": c.meter, "taken_at": c.taken_at, "value": c.value,
                 "source": source}
                for c in charges
            ],
        )  # fmt: skip
    if new_cursors:
        session.execute(insert(MeterCursor), list(new_cursors.values()))
    if moved_cursors:
        session.execute(update(MeterCursor), list(moved_cursors.values()))
    if entries:
        ids = session.scalars(
            insert(JournalEntry).returning(JournalEntry.id, sort_by_parameter_order=True),
            entries,
        ).all()
        session.execute(
            insert(Posting),
            [
                row
                for entry_id, (wallet, revenue, amount) in zip(ids, legs, strict=True)
                for row in (
                    {"entry_id": entry_id, "account_id": wallet, "amount": -amount},
                    {"entry_id": entry_id, "account_id": revenue, "amount": amount},
                )
            ],
        )
    session.commit()


# --- move-out ------------------------------------------------------------------------


@_whole
def settle_account(
    session: Session,
    *,
    site: str,
    tenant: str,
    at: datetime,
    method: str,
    reference: str,
    final_charges: Sequence[FinalCharge] = (),
    actor: str | None = None,
) -> SettlementResult:
    """Close a tenant's account at move-out, in one transaction.

    Final charges are posted, then what remains in the wallet is refunded by
    ``method`` (or, if the wallet is short, the amount due is moved to the
    tenant's receivable), the tenant's meter assignments end and the account
    closes. The wallet ends at exactly zero. Settling again with the same
    reference answers with the first result.
    """
    session.rollback()
    claim = _claimed(session, site, reference)
    if claim is not None:
        if claim.kind != "settlement" or claim.tenant != tenant:
            raise LedgerError("reference_conflict", reference=reference)
        row = session.get(Tenant, (site, tenant))
        refunded = claim.amount if claim.amount > 0 else ZERO
        return SettlementResult(
            tenant=tenant,
            reference=reference,
            final_charges=ZERO,
            refunded=refunded,
            amount_due=-claim.amount if claim.amount < 0 else ZERO,
            closed_at=row.closed_at if row and row.closed_at else at,
            duplicate=True,
        )
    row = session.get(Tenant, (site, tenant))
    if row is None:
        row = Tenant(site=site, id=tenant, name=tenant, opened_at=at)
        session.add(row)
    if row.closed_at is not None:
        raise LedgerError("account_closed", tenant=tenant)
    last_charge = session.scalar(
        select(func.max(JournalEntry.created_at)).where(
            JournalEntry.site == site,
            JournalEntry.tenant == tenant,
            JournalEntry.kind == "charge",
        )
    )
    if last_charge is not None and last_charge > at:
        raise LedgerError("settle_before_last_charge", tenant=tenant, at=at.isoformat())
    accounts = _Accounts(session, site)
    wallet = accounts.wallet(tenant)
    charged = ZERO
    for charge in final_charges:
        if charge.amount == 0:
            continue
        post_entry(
            session,
            site=site,
            kind="charge",
            at=at,
            legs=[
                (wallet, -charge.amount),
                (accounts.get(f"revenue:{charge.kind}", "revenue"), charge.amount),
            ],
            tenant=tenant,
            memo=charge.memo or f"final {charge.kind}",
            actor=actor,
        )
        charged += charge.amount
    session.flush()
    remaining = balance(session, site, tenant)
    if remaining > 0:
        other = (accounts.get(f"refund:{method}", "refund"), remaining)
    else:
        other = (accounts.get(f"receivable:{tenant}", "receivable", None), remaining)
    entry = post_entry(
        session,
        site=site,
        kind="settlement",
        at=at,
        legs=[(wallet, -remaining), other],
        tenant=tenant,
        reference=reference,
        memo="move-out: refund" if remaining > 0 else "move-out: amount due",
        actor=actor,
    )
    session.flush()
    session.add(
        PaymentReference(
            site=site,
            reference=reference,
            entry_id=entry.id,
            kind="settlement",
            tenant=tenant,
            amount=remaining,
            method=method if remaining > 0 else "",
            received_at=at,
        )
    )
    row.closed_at = at
    for assignment in session.scalars(
        select(Assignment).where(
            Assignment.site == site, Assignment.tenant == tenant, Assignment.end_at.is_(None)
        )
    ):
        assignment.end_at = at
    control = session.get(TenantControl, (site, tenant))
    if control is None:
        session.add(TenantControl(site=site, tenant=tenant, locked=True, forced_on=False))
    else:
        control.locked, control.forced_on = True, False
    session.commit()
    return SettlementResult(
        tenant=tenant,
        reference=reference,
        final_charges=charged,
        refunded=remaining if remaining > 0 else ZERO,
        amount_due=-remaining if remaining < 0 else ZERO,
        closed_at=at,
        duplicate=False,
    )


# --- manual overrides ----------------------------------------------------------------


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
