"""Typed ORM models. Ledger rows (entries, postings) are only ever inserted."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Index, String, TypeDecorator, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 1


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal stored as its exact text: SQLite has no decimal type and would round."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of all models."""


class SchemaInfo(Base):
    """One row: the schema version of this database."""

    __tablename__ = "pm_schema"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int]


class Account(Base):
    """A ledger account: a tenant's wallet, cash per payment method, revenue per charge kind."""

    __tablename__ = "pm_account"
    __table_args__ = (UniqueConstraint("site", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    #: e.g. ``wallet:shop01``, ``cash:wechat``, ``revenue:energy``
    code: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(64))


class JournalEntry(Base):
    """One business event (a top-up, a charge); its postings sum to zero."""

    __tablename__ = "pm_entry"
    __table_args__ = (
        UniqueConstraint("site", "reference"),
        Index("ix_pm_entry_site_tenant", "site", "tenant"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(64))
    #: Idempotency key: a reference applied twice is applied once.
    reference: Mapped[str | None] = mapped_column(String(128))
    memo: Mapped[str] = mapped_column(String(255), default="")
    postings: Mapped[list[Posting]] = relationship(back_populates="entry")


class Posting(Base):
    """A movement of money into (positive) or out of (negative) one account."""

    __tablename__ = "pm_posting"
    __table_args__ = (Index("ix_pm_posting_account", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("pm_entry.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("pm_account.id"))
    amount: Mapped[Decimal] = mapped_column(DecimalText())
    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class MeterReading(Base):
    """A counter reading that was charged (kept for recalculation and disputes)."""

    __tablename__ = "pm_reading"
    __table_args__ = (Index("ix_pm_reading_meter", "site", "meter", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    meter: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[Decimal] = mapped_column(DecimalText())


class MeterCursor(Base):
    """Where charging of a meter has got to: its last charged counter value.

    Updated in the same transaction as the charge it belongs to, so a crash
    leaves both or neither.
    """

    __tablename__ = "pm_cursor"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Decimal] = mapped_column(DecimalText())
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantControl(Base):
    """Manual overrides of a tenant's supply (lock, force-on), kept across restarts."""

    __tablename__ = "pm_tenant_control"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked: Mapped[bool] = mapped_column(default=False)
    forced_on: Mapped[bool] = mapped_column(default=False)
