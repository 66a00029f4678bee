"""Imported readings and the reconciliation report, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.store import ledger, readings
from custom_components.prepaid_meter.store.ledger import BalanceCache, LedgerError
from custom_components.prepaid_meter.store.reports import reconciliation

from .conftest import SITE, assert_sound

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, tzinfo=UTC)
METERS = {"m1": "t1", "m2": "t2", "m3": None}
D = Decimal


def record(s: Session, text: str) -> readings.ReadingsResult:
    return readings.record_readings(
        s,
        site=SITE,
        readings=readings.parse_csv(text, SHANGHAI),
        meters=METERS,
        price=D("0.50"),
        now=NOW,
        source="import",
    )


def test_import_is_validated_whole_then_charged(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        first = record(s, "meter,time,value\nm1,2026-03-01 00:00,100\nm2,2026-03-01 00:00,7\n")
        assert (first.recorded, first.charges) == (2, 0)  # first readings set the cursors
        bad = "m1,2026-03-02 00:00,110\nm2,2026-03-02 00:00,8\nm1,2026-03-03 00:00,109\n"
        with pytest.raises(LedgerError) as err:
            record(s, bad)
        assert (err.value.key, err.value.placeholders) == (
            "reading_not_monotonic",
            {"row": "3", "meter": "m1"},
        )
        with pytest.raises(LedgerError) as err:
            record(s, "m1,2026-03-01 00:00,101")
        assert err.value.key == "reading_conflict"
        assert ledger.cursors(s, SITE)["m1"].value == 100
        good = record(s, "m1,2026-03-02 00:00,110.5\nm3,2026-03-02 00:00,1\nm2,2026-03-02,8\n")
        assert (good.recorded, good.charges, good.charged) == (3, 2, D("5.75"))
        assert ledger.balance(s, SITE, "t1") == D("-5.250")
        # Local times are Shanghai time: 2026-03-02 00:00+08:00.
        assert ledger.cursors(s, SITE)["m1"].taken_at == datetime(2026, 3, 1, 16, tzinfo=UTC)
        again = record(s, "m1,2026-03-02T00:00:00+08:00,110.5")
        assert (again.recorded, again.already_known) == (0, 1)
        assert_sound(s)


def test_reconciliation_adds_up(sessions: sessionmaker[Session]) -> None:
    day1 = datetime(2026, 3, 1, 2, tzinfo=UTC)
    with sessions() as s:
        ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("80"), method="cash", reference="before", at=day1
        )
        start = day1 + timedelta(hours=1)
        for i, (tenant, amount, method) in enumerate(
            [("t1", "20", "wechat"), ("t2", "35.50", "wechat"), ("t2", "10", "cash")]
        ):
            ledger.top_up(
                s, site=SITE, tenant=tenant, amount=D(amount), method=method,
                reference=f"p{i}", at=start + timedelta(hours=20 * i),
            )  # fmt: skip
        record(s, "m1,2026-03-01T12:00:00+08:00,100\nm1,2026-03-02T12:00:00+08:00,130\n")
        ledger.refund(
            s, site=SITE, tenant="t2", amount=D("5"), method="cash", reference="r", at=start
        )
        ledger.adjust_balance(
            s, site=SITE, tenant="t1", amount=D("-1.25"), reason="x", reference="a", at=start
        )
        end = start + timedelta(days=3)
        ledger.settle_account(
            s, site=SITE, tenant="t2", at=end - timedelta(hours=1), method="cash", reference="o"
        )
        cache = BalanceCache()
        cache.refresh(s, SITE)
        report = reconciliation(s, site=SITE, start=start, end=end, tz=SHANGHAI, cache=cache)
        assert report.checks() == dict.fromkeys(report.checks(), True)
        assert report.receipts["wechat"] == {
            datetime(2026, 3, 1).date(): D("20"),
            datetime(2026, 3, 2).date(): D("35.50"),
        }
        assert report.total_refunds == D("5") + D("40.50")  # the refund and the move-out
        assert report.charges == {"energy": D("15.00")}
        t1 = report.tenants["t1"]
        assert (t1.opening, t1.closing) == (D("80"), D("83.75"))
        assert report.tenants["t2"].closing == 0
        assert "check,wallets_match_flows,,ok" in report.to_csv()
        assert_sound(s)


@pytest.mark.parametrize(
    ("text", "row"),
    [
        ("m1,\r,0", "1"),  # a stray carriage return splits the row (found by fuzzing)
        ("m1,2026-03-01 00:00,1\nm1," + "9" * 200_000 + ",1", "2"),  # over the csv field limit
    ],
)
def test_a_malformed_file_is_refused_with_its_row(text: str, row: str) -> None:
    with pytest.raises(LedgerError) as err:
        readings.parse_csv(text, SHANGHAI)
    assert err.value.key == "reading_bad_row"
    assert err.value.placeholders == {"row": row}
