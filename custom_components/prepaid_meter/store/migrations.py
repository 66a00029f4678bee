"""Schema versions: a small, ordered list of in-place upgrades (not Alembic).

Alembic is not among Home Assistant's dependencies and expects a migration
environment on disk and a command line; Home Assistant's own recorder keeps a
versioned list of upgrade steps in code for the same reasons. Each step here
takes a database from version N-1 to N inside the one transaction that also
records the new version, so an interrupted upgrade leaves the old version
intact and is simply run again at the next start.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, inspect, select, text, update

from .models import APPEND_ONLY_TABLES, SCHEMA_VERSION, Base, SchemaInfo

#: Any number that identifies this integration's schema lock on PostgreSQL.
_PG_LOCK_KEY = 0x504D5F5343484D41


def _add_column(conn: Connection, table: str, column: str, ddl: str) -> None:
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _to_v2(conn: Connection) -> None:
    """Register tables, payment references, audit columns, exact NUMERIC on PostgreSQL."""
    Base.metadata.create_all(conn)  # only the tables that are missing
    _add_column(conn, "pm_entry", "actor", "VARCHAR(64)")
    _add_column(conn, "pm_entry", "reverses_id", "INTEGER")
    _add_column(conn, "pm_reading", "source", "VARCHAR(16) NOT NULL DEFAULT 'poll'")
    if conn.dialect.name == "postgresql":
        for table, column in (
            ("pm_posting", "amount"),
            ("pm_reading", "value"),
            ("pm_cursor", "value"),
        ):
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE NUMERIC USING {column}::numeric"
            )
        conn.exec_driver_sql("ALTER TABLE pm_entry ALTER COLUMN kind TYPE VARCHAR(24)")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_pm_entry_site_created ON pm_entry (site, created_at)"
    )
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_pm_posting_entry ON pm_posting (entry_id)")
    # Version 1 kept references on entries only: record them as payment references.
    conn.execute(
        text(
            "INSERT INTO pm_payment_ref"
            " (site, reference, entry_id, kind, tenant, amount, method, received_at)"
            " SELECT e.site, e.reference, e.id, e.kind, e.tenant, p.amount,"
            " substr(c.code, 6), e.created_at"
            " FROM pm_entry e"
            " JOIN pm_posting p ON p.entry_id = e.id"
            " JOIN pm_account w ON w.id = p.account_id AND w.kind = 'wallet'"
            " JOIN pm_posting q ON q.entry_id = e.id"
            " JOIN pm_account c ON c.id = q.account_id AND c.kind = 'cash'"
            " WHERE e.kind = 'top_up' AND e.reference IS NOT NULL"
        )
    )


def _to_v3(conn: Connection) -> None:
    """Bill numbers, content hashes, billing mode, rendered documents; issued bills append-only."""
    Base.metadata.create_all(conn)  # pm_bill_file
    _add_column(conn, "pm_bill", "seq", "INTEGER")
    _add_column(conn, "pm_bill", "number", "VARCHAR(32)")
    _add_column(conn, "pm_bill", "content_hash", "VARCHAR(64)")
    _add_column(conn, "pm_bill", "mode", "VARCHAR(16)")
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_pm_bill_site_seq ON pm_bill (site, seq)"
    )


def _to_v4(conn: Connection) -> None:
    """The supply policy's state on a tenant's control row."""
    Base.metadata.create_all(conn)
    table = "pm_tenant_control"
    _add_column(conn, table, "warned", "VARCHAR(255) NOT NULL DEFAULT ''")
    numeric = "NUMERIC" if conn.dialect.name == "postgresql" else "VARCHAR"
    _add_column(conn, table, "emergency", f"{numeric} NOT NULL DEFAULT '0'")
    stamp = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
    _add_column(conn, table, "due_since", stamp)
    _add_column(conn, table, "cut_off", "BOOLEAN NOT NULL DEFAULT FALSE")


def _to_v5(conn: Connection) -> None:
    """Tenant-page secrets (pm_tenant_secret)."""
    Base.metadata.create_all(conn)


def _to_v6(conn: Connection) -> None:
    """Bill notices (pm_bill_notice: a postpaid bill's overdue event, once)."""
    Base.metadata.create_all(conn)


def _to_v7(conn: Connection) -> None:
    """Covering indexes for the bill run: readings with their values, postings with amounts.

    Each replaces an index that is a prefix of it, so every query the old one
    served uses the new one. Building them reads the two largest tables once
    (30 s for a month of 15-minute readings and charges of 1,000 meters on a
    2-core machine; longer in proportion to the history kept).
    """
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_pm_reading_meter_value"
        " ON pm_reading (site, meter, taken_at, value)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_pm_reading_meter")
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_pm_posting_account_entry"
        " ON pm_posting (account_id, entry_id, amount)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_pm_posting_account")


def _to_v8(conn: Connection) -> None:
    """A tenant's entries by kind and time: a bill's shares without a pass over its wallet.

    Replaces the (site, tenant) index, a prefix of it. Building it reads the
    entries once (a few seconds for a month of 15-minute charges of 1,000
    meters).
    """
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_pm_entry_site_tenant_kind"
        " ON pm_entry (site, tenant, kind, created_at)"
    )
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_pm_entry_site_tenant")


#: MIGRATIONS[n] upgrades a version n-1 database to version n.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _to_v2,
    3: _to_v3,
    4: _to_v4,
    5: _to_v5,
    6: _to_v6,
    7: _to_v7,
    8: _to_v8,
}


def install_guards(conn: Connection) -> None:
    """Refuse UPDATE and DELETE on ledger tables in the database itself.

    The code only ever inserts; the triggers make sure a mistake, a script or
    a hand-edit in a database tool cannot quietly rewrite history either.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION pm_append_only() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'prepaid_meter ledger is append-only: %% on %% refused',"
            " TG_OP, TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            for name, when in (
                ("append_only", "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW"),
                ("no_truncate", "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT"),
            ):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
                conn.exec_driver_sql(
                    f"CREATE TRIGGER {table}_{name} {when.format(t=table)}"
                    " EXECUTE FUNCTION pm_append_only()"
                )
        return
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, 'prepaid_meter ledger is append-only:"
                f" {op} on {table} refused'); END"
            )


def schema_version(conn: Connection) -> int | None:
    """The version recorded in the database, or None for an empty database."""
    if not inspect(conn).has_table(SchemaInfo.__tablename__):
        return None
    return conn.scalar(select(SchemaInfo.version).where(SchemaInfo.id == 1))


def upgrade(conn: Connection) -> int:
    """Create or upgrade the schema in place; return the version found before (0 if new).

    Runs in the caller's transaction. On PostgreSQL an advisory lock makes a
    second process wait instead of upgrading the same tables at the same time
    (on SQLite the store's BEGIN IMMEDIATE does the same).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    found = schema_version(conn)
    if found is None:
        Base.metadata.create_all(conn)
        conn.execute(insert(SchemaInfo).values(id=1, version=SCHEMA_VERSION))
        install_guards(conn)
        return 0
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema {found} is newer than this version of the integration "
            f"({SCHEMA_VERSION}); update the integration"
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](conn)
        conn.execute(update(SchemaInfo).where(SchemaInfo.id == 1).values(version=version))
    install_guards(conn)
    return found
