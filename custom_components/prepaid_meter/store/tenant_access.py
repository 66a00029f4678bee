"""The tenant page's data: per-tenant link secrets and the reads the page shows.

Runs on the store's thread. Everything here is scoped by site and tenant:
a caller holding one tenant's verified link can only ever read that tenant's
rows (the page's promise that it never shows anything of another tenant).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .ledger import wallet_code
from .models import Account, JournalEntry, PaymentReference, Posting, TenantSecret
from .models import Bill as BillRow

#: Bytes of randomness in a tenant's secret (HMAC-SHA256 takes a 32-byte key).
SECRET_BYTES = 32

#: Wallet movements the page lists as payments (consumption and shares are in the curves).
PAYMENT_KINDS = ("top_up", "refund", "adjustment", "settlement", "correction", "reversal")

_READING_AT = (
    "SELECT value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at <= ? ORDER BY taken_at DESC LIMIT 1"
)
_FIRST_AFTER = (
    "SELECT value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at > ? ORDER BY taken_at LIMIT 1"
)
#: How SQLAlchemy's SQLite dialect stores a DateTime (compared as text there).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


# --- secrets -------------------------------------------------------------------------


def current_secret(session: Session, site: str, tenant: str) -> bytes | None:
    """The tenant's signing key in force, or None if no link was ever made for the tenant."""
    row = session.scalars(
        select(TenantSecret.secret)
        .where(TenantSecret.site == site, TenantSecret.tenant == tenant)
        .order_by(TenantSecret.id.desc())
        .limit(1)
    ).first()
    return bytes.fromhex(row) if row is not None else None


def _new_secret(session: Session, site: str, tenant: str, at: datetime) -> bytes:
    key = secrets.token_bytes(SECRET_BYTES)
    session.add(TenantSecret(site=site, tenant=tenant, secret=key.hex(), created_at=at))
    session.commit()
    return key


def ensure_secret(session: Session, site: str, tenant: str, at: datetime) -> bytes:
    """The tenant's signing key, made on first use."""
    return current_secret(session, site, tenant) or _new_secret(session, site, tenant, at)


def rotate_secret(session: Session, site: str, tenant: str, at: datetime) -> None:
    """A new signing key for the tenant: every link signed before stops working."""
    _new_secret(session, site, tenant, at)


# --- what the page shows -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WalletLine:
    """A movement of the tenant's wallet other than a consumption charge."""

    at: datetime
    kind: str
    amount: Decimal
    method: str


@dataclass(frozen=True, kw_only=True)
class BillLine:
    """An issued bill of the tenant, as listed on the page."""

    id: int
    number: str
    revision: int
    period_start: datetime
    period_end: datetime
    issued_at: datetime
    total: Decimal
    currency: str


@dataclass(frozen=True, kw_only=True)
class PageData:
    """The stored facts of one tenant's page."""

    #: Per meter, the counter at each boundary (None: no reading at or before it).
    readings: dict[str, list[Decimal | None]]
    payments: list[WalletLine]
    bills: list[BillLine]


def _param(session: Session, at: datetime) -> object:
    if session.get_bind().dialect.name == "sqlite":
        return at.astimezone(UTC).strftime(_SQLITE_TIME)
    return at.astimezone(UTC)


def counters_at(
    session: Session, site: str, meter: str, bounds: Sequence[datetime]
) -> list[Decimal | None]:
    """The meter's counter at each time: its last reading at or before it.

    Before the meter's first reading the first reading stands in, so the use
    since a meter was first read counts from that reading. One indexed
    ``LIMIT 1`` lookup per time (a month of hours is 744), rather than reading
    every poll of the month.
    """
    conn = session.connection()
    qmark = conn.dialect.paramstyle == "qmark"
    at_or_before = _READING_AT if qmark else _READING_AT.replace("?", "%s")
    first_after = _FIRST_AFTER if qmark else _FIRST_AFTER.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    out: list[Decimal | None] = []
    try:
        for at in bounds:
            cursor.execute(at_or_before, (site, meter, _param(session, at)))
            row = cursor.fetchone()
            if row is None:
                cursor.execute(first_after, (site, meter, _param(session, at)))
                row = cursor.fetchone()
            out.append(Decimal(str(row[0])) if row is not None else None)
    finally:
        cursor.close()
    return out


def wallet_lines(session: Session, site: str, tenant: str, limit: int) -> list[WalletLine]:
    """The tenant's latest top-ups, refunds, adjustments and settlements, newest first."""
    rows = session.execute(
        select(JournalEntry.created_at, JournalEntry.kind, Posting.amount, PaymentReference.method)
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .outerjoin(PaymentReference, PaymentReference.entry_id == JournalEntry.id)
        .where(
            Account.site == site,
            Account.code == wallet_code(tenant),
            JournalEntry.site == site,
            JournalEntry.kind.in_(PAYMENT_KINDS),
        )
        .order_by(JournalEntry.created_at.desc(), JournalEntry.id.desc())
        .limit(limit)
    ).all()
    return [
        WalletLine(at=at, kind=kind, amount=amount, method=method or "")
        for at, kind, amount, method in rows
    ]


def bill_lines(session: Session, site: str, tenant: str) -> list[BillLine]:
    """The tenant's issued bills (every revision), newest first."""
    rows = session.scalars(
        select(BillRow)
        .where(BillRow.site == site, BillRow.tenant == tenant)
        .order_by(BillRow.seq.desc(), BillRow.id.desc())
    ).all()
    return [
        BillLine(
            id=row.id,
            number=row.number or str(row.id),
            revision=row.revision,
            period_start=row.period_start,
            period_end=row.period_end,
            issued_at=row.issued_at,
            total=row.total,
            currency=row.currency,
        )
        for row in rows
    ]


def page_data(
    session: Session,
    site: str,
    tenant: str,
    meters: Sequence[str],
    bounds: Sequence[datetime],
    *,
    payments: int = 10,
) -> PageData:
    """Everything stored that the tenant's page shows, read in one session."""
    return PageData(
        readings={m: counters_at(session, site, m, bounds) for m in meters},
        payments=wallet_lines(session, site, tenant, payments),
        bills=bill_lines(session, site, tenant),
    )


def tenant_bill(session: Session, site: str, tenant: str, bill_id: int) -> BillRow | None:
    """A bill, only if it is this tenant's on this site."""
    row = session.get(BillRow, bill_id)
    if row is None or row.site != site or row.tenant != tenant:
        return None
    return row
