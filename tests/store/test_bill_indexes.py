"""The bill run's reads come from covering indexes, on new and on upgraded databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text

from custom_components.prepaid_meter.store import bills
from custom_components.prepaid_meter.store.ledger import wallet_code
from custom_components.prepaid_meter.store.store import init_schema, make_engine

from .conftest import SITE

OLD = {
    "pm_reading": "ix_pm_reading_meter",
    "pm_posting": "ix_pm_posting_account",
    "pm_entry": "ix_pm_entry_site_tenant",
}
NEW = {
    "pm_reading": ("ix_pm_reading_meter_value", ["site", "meter", "taken_at", "value"]),
    "pm_posting": ("ix_pm_posting_account_entry", ["account_id", "entry_id", "amount"]),
    "pm_entry": ("ix_pm_entry_site_tenant_kind", ["site", "tenant", "kind", "created_at"]),
}


def _indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    with engine.connect() as c:
        return {i["name"] or "": list(i["column_names"]) for i in inspect(c).get_indexes(table)}


def _as_version_6(engine: Engine) -> None:
    """The indexes as schema 6 had them."""
    with engine.begin() as c:
        for name, _columns in NEW.values():
            c.exec_driver_sql(f"DROP INDEX {name}")
        c.exec_driver_sql("CREATE INDEX ix_pm_reading_meter ON pm_reading (site, meter, taken_at)")
        c.exec_driver_sql("CREATE INDEX ix_pm_posting_account ON pm_posting (account_id)")
        c.exec_driver_sql("CREATE INDEX ix_pm_entry_site_tenant ON pm_entry (site, tenant)")
        c.execute(text("UPDATE pm_schema SET version = 6"))


@pytest.mark.parametrize("any_db_url", ["sqlite", "postgresql"], indirect=True)
def test_version_6_gets_the_bill_run_indexes_in_place_of_their_prefixes(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    try:
        init_schema(engine)
        _as_version_6(engine)
        assert "ix_pm_reading_meter" in _indexes(engine, "pm_reading")
        assert "ix_pm_entry_site_tenant" in _indexes(engine, "pm_entry")
        assert init_schema(engine) == 6
        for table, (name, columns) in NEW.items():
            found = _indexes(engine, table)
            assert found[name] == columns
            assert OLD[table] not in found
    finally:
        engine.dispose()


@pytest.mark.parametrize("any_db_url", ["sqlite"], indirect=True)
def test_readings_and_wallet_of_a_bill_are_read_from_the_indexes_alone(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    try:
        init_schema(engine)
        at = datetime(2025, 5, 1, tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        with engine.connect() as c:
            plans = {
                "readings": c.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + bills._READINGS_SQLITE, (SITE, "m1", at, at)
                ).all(),
                "wallet": c.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + bills._WALLET_SQLITE, (at, SITE, wallet_code("t1"), at)
                ).all(),
                "shares": c.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + bills._WALLET_SHARES,
                    (SITE, "t1", at, at, SITE, wallet_code("t1")),
                ).all(),
            }
        details = {name: " | ".join(row[-1] for row in rows) for name, rows in plans.items()}
        assert "COVERING INDEX ix_pm_reading_meter_value" in details["readings"], details
        assert "COVERING INDEX ix_pm_posting_account_entry" in details["wallet"], details
        # The period's shares: a range of the tenant's entries of two kinds, then
        # each one's wallet posting (not a pass over the wallet's every charge).
        assert (
            "INDEX ix_pm_entry_site_tenant_kind (site=? AND tenant=? AND kind=?"
            in (details["shares"])
        ), details
        assert "ix_pm_posting_account_entry (account_id=? AND entry_id=?)" in (details["shares"]), (
            details
        )
    finally:
        engine.dispose()
