"""Typed ORM models. Ledger rows (entries, postings, payment references) are only ever inserted.

Schema history (see ``migrations.py``): version 1 was the walking skeleton's
ledger; version 2 adds the site's register (meters, tenant accounts,
assignments, tariffs, sharing rules, bills), payment references, the audit
columns of an entry, and the append-only guards; version 3 adds bill numbers,
content hashes and rendered documents; version 4 adds the supply
policy's state to a tenant's control row (warnings fired, emergency credit
taken, when the balance fell due, whether the supply is cut off); version 5
adds the tenant-page secrets; version 6 adds bill notices (a postpaid bill's
overdue event, fired once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

SCHEMA_VERSION = 8


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact Decimal on every backend: NUMERIC on PostgreSQL, its text on SQLite.

    PostgreSQL's unconstrained NUMERIC is exact at any scale, so sums can run
    in SQL and reporting tools read real numbers. SQLite has no decimal type
    (its NUMERIC affinity turns 0.1 into a binary float), so there the exact
    text is stored and sums are done in Python with ``Decimal``.
    """

    impl = String(64)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        impl: TypeEngine[Any] = (
            Numeric(asdecimal=True) if dialect.name == "postgresql" else String(64)
        )
        return dialect.type_descriptor(impl)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> object:
        if value is None:
            return None
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: object, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


#: The name the walking skeleton used.
DecimalText = ExactDecimal


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


# --- the site's register -------------------------------------------------------------


class Site(Base):
    """A site (one config entry): a building or a bus with its own billing rules."""

    __tablename__ = "pm_site"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))


class Meter(Base):
    """A sub-meter of a site."""

    __tablename__ = "pm_meter"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    device_id: Mapped[int | None]
    profile: Mapped[str] = mapped_column(String(64), default="")


class Tenant(Base):
    """A tenant account. A closed account (after move-out) takes no more charges."""

    __tablename__ = "pm_tenant"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Assignment(Base):
    """Which tenant pays for a meter from when to when (move-in to move-out)."""

    __tablename__ = "pm_assignment"
    __table_args__ = (Index("ix_pm_assignment_meter", "site", "meter", "start_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    meter: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: None while the tenant still occupies the unit.
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Tariff(Base):
    """A named tariff (its prices live in versions with effective dates)."""

    __tablename__ = "pm_tariff"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(16), default="kWh")


class TariffVersion(Base):
    """A tariff's definition in force from a date; old versions stay for recalculation."""

    __tablename__ = "pm_tariff_version"
    __table_args__ = (UniqueConstraint("site", "tariff", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    tariff: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The engine's tariff definition as JSON (the engine owns its shape).
    definition: Mapped[str] = mapped_column(Text)


class SharingRule(Base):
    """How a common area's or the line loss's cost is shared, from a date."""

    __tablename__ = "pm_sharing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    #: consumption, floor_area, equal, fixed_ratio, rated_capacity
    basis: Mapped[str] = mapped_column(String(32))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    definition: Mapped[str] = mapped_column(Text, default="{}")


class Bill(Base):
    """An issued bill. A recalculation is a new revision; the first one stays."""

    __tablename__ = "pm_bill"
    __table_args__ = (
        UniqueConstraint("site", "tenant", "period_start", "revision"),
        Index("ix_pm_bill_site_seq", "site", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(default=1)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(ExactDecimal())
    #: The bill's lines as JSON, as they were issued.
    document: Mapped[str] = mapped_column(Text, default="{}")
    #: Gap-free sequence per site (every issued document, revisions included).
    seq: Mapped[int | None]
    #: The printed bill number.
    number: Mapped[str | None] = mapped_column(String(32))
    #: SHA-256 of the document's canonical JSON.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    #: prepaid or postpaid when issued.
    mode: Mapped[str | None] = mapped_column(String(16))


class BillFile(Base):
    """A rendered document of an issued bill (HTML, PDF), kept so it is served byte for byte."""

    __tablename__ = "pm_bill_file"

    bill_id: Mapped[int] = mapped_column(ForeignKey("pm_bill.id"), primary_key=True)
    #: html or pdf, with the language: ``html:en``, ``pdf:zh-Hans``
    format: Mapped[str] = mapped_column(String(16), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))


# --- the ledger ----------------------------------------------------------------------


class Account(Base):
    """A ledger account: a tenant's wallet, cash per payment method, revenue per charge kind."""

    __tablename__ = "pm_account"
    __table_args__ = (UniqueConstraint("site", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    #: e.g. ``wallet:shop01``, ``cash:wechat``, ``refund:cash``, ``revenue:energy``
    code: Mapped[str] = mapped_column(String(128))
    #: wallet, cash, refund, revenue, adjustment, receivable
    kind: Mapped[str] = mapped_column(String(16))
    tenant: Mapped[str | None] = mapped_column(String(64))


class JournalEntry(Base):
    """One business event (a top-up, a charge, a refund); its postings sum to zero."""

    __tablename__ = "pm_entry"
    __table_args__ = (
        UniqueConstraint("site", "reference"),
        # A tenant's entries of one kind in a period (the shares a bill lists)
        # are one range of this index; its (site, tenant) prefix serves the rest.
        Index("ix_pm_entry_site_tenant_kind", "site", "tenant", "kind", "created_at"),
        Index("ix_pm_entry_site_created", "site", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(24))
    tenant: Mapped[str | None] = mapped_column(String(64))
    #: Idempotency key: a reference applied twice is applied once.
    reference: Mapped[str | None] = mapped_column(String(128))
    memo: Mapped[str] = mapped_column(String(255), default="")
    #: Who asked for it (a Home Assistant user id), for the audit trail.
    actor: Mapped[str | None] = mapped_column(String(64))
    #: The entry this one reverses, for corrections.
    reverses_id: Mapped[int | None]
    postings: Mapped[list[Posting]] = relationship(back_populates="entry")


class Posting(Base):
    """A movement of money into (positive) or out of (negative) one account."""

    __tablename__ = "pm_posting"
    __table_args__ = (
        # Covering: a wallet's postings (the bill run sums a month of them per
        # tenant) are read from the index alone, without a visit to each row.
        Index("ix_pm_posting_account_entry", "account_id", "entry_id", "amount"),
        Index("ix_pm_posting_entry", "entry_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("pm_entry.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("pm_account.id"))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    entry: Mapped[JournalEntry] = relationship(back_populates="postings")


class PaymentReference(Base):
    """The first request seen under a reference, so a repeat is answered, not re-applied.

    Payment APIs do it this way: the same request again gets the first result;
    the same reference with different parameters is refused.
    """

    __tablename__ = "pm_payment_ref"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(128), primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("pm_entry.id"))
    #: top_up, refund, adjustment, settlement
    kind: Mapped[str] = mapped_column(String(24))
    tenant: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(ExactDecimal())
    method: Mapped[str] = mapped_column(String(32), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- readings and charging -----------------------------------------------------------


class MeterReading(Base):
    """A counter reading (kept for recalculation and disputes)."""

    __tablename__ = "pm_reading"
    # Covering: a bill reads a meter's month of readings from the index alone;
    # the rows themselves lie scattered (every poll writes every meter's).
    __table_args__ = (Index("ix_pm_reading_meter_value", "site", "meter", "taken_at", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    meter: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[Decimal] = mapped_column(ExactDecimal())
    #: poll, manual or import
    source: Mapped[str] = mapped_column(String(16), default="poll")


class MeterCursor(Base):
    """Where charging of a meter has got to: its last charged counter value.

    Updated in the same transaction as the charge it belongs to, so a crash
    leaves both or neither.
    """

    __tablename__ = "pm_cursor"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    meter: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Decimal] = mapped_column(ExactDecimal())
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TenantControl(Base):
    """Manual overrides of a tenant's supply (lock, force-on), kept across restarts."""

    __tablename__ = "pm_tenant_control"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked: Mapped[bool] = mapped_column(default=False)
    forced_on: Mapped[bool] = mapped_column(default=False)
    #: Warning levels that have fired and not re-armed, comma-separated keys.
    warned: Mapped[str] = mapped_column(String(255), default="")
    #: Emergency credit taken since the last top-up (0: none).
    emergency: Mapped[Decimal] = mapped_column(ExactDecimal(), default=Decimal(0))
    #: When the balance fell to the cut-off point (the grace period runs from here).
    due_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    #: Whether the policy has cut the supply off (grace and friendly hours never reconnect).
    cut_off: Mapped[bool] = mapped_column(default=False)


class TenantSecret(Base):
    """A tenant's key for signing tenant-page links; the newest row of a tenant is the one in force.

    Rotating inserts a new row, so every link signed with an older key stops
    working. Never logged, never in diagnostics.
    """

    __tablename__ = "pm_tenant_secret"
    __table_args__ = (Index("ix_pm_tenant_secret_tenant", "site", "tenant", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64))
    #: 32 random bytes from ``secrets``, hex.
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BillNotice(Base):
    """A notice given once per bill (all its revisions): ``overdue`` when it first fell overdue.

    Kept so a restart does not fire the event again for a bill still overdue.
    """

    __tablename__ = "pm_bill_notice"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The bill's period start (a bill and its revisions share it).
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The revision the notice was about.
    bill_id: Mapped[int] = mapped_column(ForeignKey("pm_bill.id"))
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime())


#: Tables whose rows are never updated or deleted (guarded by triggers).
APPEND_ONLY_TABLES = (
    "pm_entry",
    "pm_posting",
    "pm_payment_ref",
    "pm_bill",
    "pm_bill_file",
    "pm_bill_notice",
)
