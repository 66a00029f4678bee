"""Schema upgrades in place: a version-1 database (the walking skeleton's) opens as current."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    insert,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.migrations import schema_version
from custom_components.prepaid_meter.store.models import SCHEMA_VERSION
from custom_components.prepaid_meter.store.store import init_schema, make_engine

from .conftest import SITE, assert_sound

T0 = datetime(2025, 12, 1, tzinfo=UTC)

# The walking skeleton's tables, frozen here as they were shipped (schema 1).
V1 = MetaData()
Table("pm_schema", V1, Column("id", Integer, primary_key=True), Column("version", Integer))
Table(
    "pm_account",
    V1,
    Column("id", Integer, primary_key=True),
    Column("site", String(64)),
    Column("code", String(128)),
    Column("kind", String(16)),
    Column("tenant", String(64)),
    UniqueConstraint("site", "code"),
)
Table(
    "pm_entry",
    V1,
    Column("id", Integer, primary_key=True),
    Column("site", String(64)),
    Column("created_at", DateTime(timezone=True)),
    Column("kind", String(16)),
    Column("tenant", String(64)),
    Column("reference", String(128)),
    Column("memo", String(255)),
    UniqueConstraint("site", "reference"),
)
Table(
    "pm_posting",
    V1,
    Column("id", Integer, primary_key=True),
    Column("entry_id", ForeignKey("pm_entry.id")),
    Column("account_id", ForeignKey("pm_account.id")),
    Column("amount", String(64)),
)
Table(
    "pm_reading",
    V1,
    Column("id", Integer, primary_key=True),
    Column("site", String(64)),
    Column("meter", String(64)),
    Column("taken_at", DateTime(timezone=True)),
    Column("value", String(64)),
)
Table(
    "pm_cursor",
    V1,
    Column("site", String(64), primary_key=True),
    Column("meter", String(64), primary_key=True),
    Column("value", String(64)),
    Column("taken_at", DateTime(timezone=True)),
)
Table(
    "pm_tenant_control",
    V1,
    Column("site", String(64), primary_key=True),
    Column("tenant", String(64), primary_key=True),
    Column("locked", Boolean),
    Column("forced_on", Boolean),
)


def make_v1(url: str) -> None:
    """A skeleton database with one top-up of 12.34 by WeChat and one charge of 0.555."""
    engine = create_engine(url)
    t = V1.tables
    with engine.begin() as c:
        V1.create_all(c)
        c.execute(insert(t["pm_schema"]).values(id=1, version=1))

        def add(table: str, **values: object) -> int:
            return int(c.execute(insert(t[table]).returning(t[table].c.id), values).scalar_one())

        wallet = add("pm_account", site=SITE, code="wallet:t1", kind="wallet", tenant="t1")
        cash = add("pm_account", site=SITE, code="cash:wechat", kind="cash", tenant=None)
        revenue = add("pm_account", site=SITE, code="revenue:energy", kind="revenue", tenant=None)
        e1 = add("pm_entry", site=SITE, created_at=T0, kind="top_up", tenant="t1",
                 reference="wx-1", memo="")  # fmt: skip
        e2 = add("pm_entry", site=SITE, created_at=T0, kind="charge", tenant="t1",
                 reference=None, memo="m1@5")  # fmt: skip
        for entry, account, amount in (
            (e1, wallet, "12.34"),
            (e1, cash, "-12.34"),
            (e2, wallet, "-0.555"),
            (e2, revenue, "0.555"),
        ):
            add("pm_posting", entry_id=entry, account_id=account, amount=amount)
        c.execute(insert(t["pm_reading"]).values(site=SITE, meter="m1", taken_at=T0, value="5"))
    engine.dispose()


@pytest.mark.parametrize("any_db_url", ["sqlite", "postgresql"], indirect=True)
def test_version_1_database_is_upgraded_in_place(any_db_url: str) -> None:
    make_v1(any_db_url)
    engine = make_engine(any_db_url)
    try:
        assert init_schema(engine) == 1
        with engine.connect() as c:
            assert schema_version(c) == SCHEMA_VERSION
        with Session(engine) as s:
            assert ledger.balance(s, SITE, "t1") == Decimal("11.785")
            assert_sound(s)
            # The old payment's reference still protects against a second credit.
            again = ledger.top_up(
                s, site=SITE, tenant="t1", amount=Decimal("12.34"), method="wechat",
                reference="wx-1", at=T0,
            )  # fmt: skip
            assert again.duplicate
            assert again.balance == Decimal("11.785")
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text("DELETE FROM pm_posting"))
            s.rollback()
        # Opening again is a no-op.
        assert init_schema(engine) == SCHEMA_VERSION
    finally:
        engine.dispose()


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
def test_newer_database_is_refused(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    try:
        init_schema(engine)
        with engine.begin() as c:
            c.execute(text("UPDATE pm_schema SET version = 99"))
        with pytest.raises(RuntimeError, match="newer"):
            init_schema(engine)
    finally:
        engine.dispose()
