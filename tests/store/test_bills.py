"""Issuing and recalculating bills on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.engine.billing import content_hash
from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.engine.rating import UsageSeries
from custom_components.prepaid_meter.store import bills, ledger, sharing
from custom_components.prepaid_meter.store.ledger import LedgerError, MeterCharge
from custom_components.prepaid_meter.store.models import Account, Bill, JournalEntry, Posting

from .conftest import SITE, assert_sound

TZ = "Asia/Shanghai"
PRICE = D("1.50")
MAY = billing_period(datetime(2025, 5, 10, tzinfo=UTC), 1, TZ)


def spec(price: D = PRICE) -> bills.SiteSpec:
    return bills.SiteSpec(site=SITE, name="Test mall", currency="CNY", timezone=TZ, price=price)


TENANT = bills.TenantSpec(id="t1", name="Shop 1", meters=[("m1", "Meter 1")])


def charge_month(session: Session, *, texts: str = "plain") -> D:
    """Polls every 30 minutes from a day before May to a day after, charged at PRICE.

    ``texts``: ``plain`` stores every reading with 2 decimals; ``mixed`` stores
    some normalised (``100.1``, ``1E+2``), as an entity meter's states can be;
    ``places`` the same without exponents (``100.1`` beside ``100.25``);
    ``long`` every one with 17 decimals.
    Returns what was deducted in May's (start, end].
    """
    ledger.sync_site(session, site=SITE, name="Test mall", currency="CNY",
                     meters=[("m1", "Meter 1", 1, "sim")], tenants=[("t1", "Shop 1", ["m1"])],
                     at=MAY.start - timedelta(days=2))  # fmt: skip
    ledger.top_up(session, site=SITE, tenant="t1", amount=D(500), method="cash",
                  reference="r1", at=MAY.start - timedelta(days=1, hours=12))  # fmt: skip
    at, value, previous = MAY.start - timedelta(days=1), D("100.00"), None
    charges, in_may = [], D(0)
    step = 0
    while at <= MAY.end + timedelta(days=1):
        amount = D(0) if previous is None else (value - previous) * PRICE
        stored = value
        if texts in ("mixed", "places") and step % 3 == 0:
            stored = value.normalize()
            if texts == "places" and "E" in str(stored):
                stored = value
        elif texts == "long":
            stored = value.quantize(D("1E-17"))
        charges.append(
            MeterCharge(meter="m1", tenant="t1", value=stored, taken_at=at, amount=amount)
        )
        if MAY.start < at <= MAY.end:
            in_may += amount
        previous, step = value, step + 1
        value += D(step % 5) / 100 + D("0.07")
        at += timedelta(minutes=30)
    ledger.charge_meters(session, SITE, charges)
    return in_may


@pytest.mark.parametrize("texts", ["plain", "mixed", "places", "long"])
def test_prepaid_bill_equals_deductions_and_is_issued_once(
    sessions: sessionmaker[Session], texts: str
) -> None:
    with sessions() as session:
        deducted = charge_month(session, texts=texts)
        [issued] = bills.issue_bills(session, spec=spec(), tenants=[TENANT], periods=[MAY],
                                     issued_at=MAY.end + timedelta(hours=1),
                                     render=lambda doc: f"<p>{doc['total']}</p>")  # fmt: skip
        assert issued.number == "000001"
        assert issued.total == deducted.quantize(D("0.01"), rounding="ROUND_HALF_UP")
        assert issued.document["matches_deducted"] is True
        assert D(issued.document["wallet"]["deducted"]) == issued.total
        assert content_hash(issued.document) == issued.content_hash
        [meter] = issued.document["meters"]
        assert D(meter["used"]) * PRICE == deducted
        assert len(issued.document["history"]) >= 2
        # Issued an hour after the period's end: 17:00 UTC, already June 1st in Shanghai.
        assert issued.document["issued_at"][:10] == "2025-05-31"
        assert issued.document["issued_local"] == "2025-06-01"
        again = bills.issue_bills(session, spec=spec(), tenants=[TENANT], periods=[MAY],
                                  issued_at=MAY.end + timedelta(hours=2))  # fmt: skip
        assert again[0].duplicate
        assert again[0].id == issued.id
        html = bills.bill_file(session, issued.id, "html:en", lambda d: b"never")
        assert html == f"<p>{issued.total}</p>".encode()
        pdf = bills.bill_file(session, issued.id, "pdf:en", lambda d: d["number"].encode())
        assert pdf == b"000001"
        assert bills.bill_file(session, issued.id, "pdf:en", lambda d: b"other") == b"000001"
        if session.get_bind().dialect.name == "sqlite":
            # The month's use came as integers of the finest decimal place
            # (Decimals only where a text has an exponent).
            _reading, series = bills._meter_usage(session, SITE, "m1", "Meter 1", MAY)
            assert isinstance(series, UsageSeries)
            stored = session.execute(
                text("SELECT value FROM pm_reading WHERE taken_at >= :a AND taken_at <= :b"),
                {"a": MAY.start.strftime("%Y-%m-%d %H:%M:%S.%f"),
                 "b": MAY.end.strftime("%Y-%m-%d %H:%M:%S.%f")},
            ).scalars().all()  # fmt: skip
            places = max(len(v.partition(".")[2]) for v in stored)
            expected = None if any("E" in v for v in stored) else -places
            assert series.exponent == expected, texts
            assert places == (17 if texts == "long" else 2), texts


def test_recalculation_after_a_price_correction(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        charge_month(session)
        now = MAY.end + timedelta(days=3)
        [first] = bills.issue_bills(session, spec=spec(), tenants=[TENANT], periods=[MAY],
                                    issued_at=MAY.end + timedelta(hours=1))  # fmt: skip
        before = ledger.balance(session, SITE, "t1")
        original = session.get(Bill, first.id)
        assert original is not None
        original_doc, original_hash = original.document, original.content_hash
        # The price was wrong: 1.50 should have been 1.20.
        revised = bills.recalculate_bill(session, spec=spec(D("1.20")), tenant=TENANT,
                                         bill_id=first.id, now=now)  # fmt: skip
        assert revised.revision == 2
        assert revised.number == "000002"
        expected = (first.total * D("1.20") / D("1.50")).quantize(D("0.01"))
        assert abs(revised.total - expected) <= D("0.01")
        assert revised.correction == first.total - revised.total
        assert revised.document["replaces_total"] == str(first.total)
        assert D(revised.document["difference"]) == revised.total - first.total
        after = ledger.balance(session, SITE, "t1")
        assert after - before == first.total - revised.total
        correction = session.scalars(
            select(JournalEntry).where(JournalEntry.kind == "correction")
        ).one()
        assert correction.reference == f"bill:{first.id}:revision:2"
        session.expire_all()
        kept = session.get(Bill, first.id)
        assert kept is not None
        assert (kept.document, kept.content_hash, kept.revision) == (original_doc, original_hash, 1)
        assert content_hash(json.loads(kept.document)) == original_hash
        assert_sound(session)
        # Recalculating the revision again at the same price changes nothing in money.
        third = bills.recalculate_bill(session, spec=spec(D("1.20")), tenant=TENANT,
                                       bill_id=revised.id, now=now)  # fmt: skip
        assert third.revision == 3
        assert third.correction == 0
        assert ledger.balance(session, SITE, "t1") == after


def test_issued_bills_cannot_be_changed_and_old_ones_not_recalculated(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        charge_month(session)
        [first] = bills.issue_bills(session, spec=spec(), tenants=[TENANT], periods=[MAY],
                                    issued_at=MAY.end)  # fmt: skip
        with pytest.raises(DatabaseError):
            session.execute(text("UPDATE pm_bill SET total = '0'"))
        session.rollback()
        with pytest.raises(LedgerError) as err:
            bills.recalculate_bill(session, spec=spec(), tenant=TENANT, bill_id=first.id,
                                   now=MAY.end + timedelta(days=400))  # fmt: skip
        assert err.value.key == "bill_too_old"
        with pytest.raises(LedgerError) as err:
            bills.recalculate_bill(session, spec=spec(), tenant=TENANT, bill_id=first.id + 99,
                                   now=MAY.end)  # fmt: skip
        assert err.value.key == "unknown_bill"


def test_collector_frozen_for_a_run_and_handed_back_after_the_last() -> None:
    # Home Assistant's test harness freezes the collector per module: not ours to undo.
    frozen_before = gc.get_freeze_count()
    assert frozen_before > 0
    with bills.collector_frozen():
        assert gc.get_freeze_count() == frozen_before
    assert gc.get_freeze_count() == frozen_before
    gc.unfreeze()
    try:
        with bills.collector_frozen():
            frozen = gc.get_freeze_count()
            assert frozen > 0
            with bills.collector_frozen():  # a second site's run overlaps
                pass
            assert gc.get_freeze_count() == frozen  # still frozen for the first run
        assert gc.get_freeze_count() == 0
        with pytest.raises(RuntimeError), bills.collector_frozen():
            raise RuntimeError("a failed run")
        assert gc.get_freeze_count() == 0
    finally:
        gc.freeze()


def test_shares_posted_in_the_period_are_lines_and_deducted(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        energy = charge_month(session)
        day = MAY.start + timedelta(days=3)
        explained = "Common area 'lobby' (12 kWh, 9.60 CNY) shared equally: 2 tenants → 50% = 4.80"
        shares = [
            sharing.SharePosting(tenant="t1", kind="shared", amount=D("4.80"),
                                 reference=f"share:lobby:{day.isoformat()}:t1", at=day,
                                 memo=explained),
            *(
                sharing.SharePosting(tenant="t1", kind="loss", amount=D("0.33"),
                                     reference=f"share:loss:{day.isoformat()}+{k}:t1",
                                     at=day + timedelta(days=k), memo=f"loss day {k}")
                for k in range(3)
            ),
            # After the period: on the next bill, not this one.
            sharing.SharePosting(tenant="t1", kind="loss", amount=D("7.00"),
                                 reference="share:loss:june:t1", at=MAY.end + timedelta(hours=1)),
        ]  # fmt: skip
        sharing.post_shares(session, site=SITE, shares=shares)
        [issued] = bills.issue_bills(session, spec=spec(), tenants=[TENANT], periods=[MAY],
                                     issued_at=MAY.end + timedelta(hours=2))  # fmt: skip
        doc = issued.document
        lines = {ln["section"]: ln for ln in doc["lines"] if ln["section"] in ("shared", "loss")}
        assert lines["shared"]["label"] == explained
        assert D(lines["shared"]["amount"]) == D("4.80")
        assert lines["loss"]["label"] == "line loss 'loss': 3 shares"
        assert D(lines["loss"]["amount"]) == D("0.99")
        expected = energy.quantize(D("0.01"), rounding="ROUND_HALF_UP") + D("5.79")
        assert issued.total == expected
        assert sum(D(ln["amount"]) for ln in doc["lines"]) == issued.total
        assert doc["matches_deducted"] is True
        assert_sound(session)


def test_wallet_movements_sort_every_kind_before_and_in_the_period(
    sessions: sessionmaker[Session],
) -> None:
    """Opening, top-ups, deductions, refunds and adjustments, against the postings summed here."""
    with sessions() as session:
        charge_month(session)  # a top-up and charges before May, in May and after it
        before, during = MAY.start - timedelta(hours=6), MAY.start + timedelta(days=5)
        ledger.adjust_balance(session, site=SITE, tenant="t1", amount=D("0.5"),
                              reason="goodwill", reference="a1", at=before)  # fmt: skip
        ledger.top_up(session, site=SITE, tenant="t1", amount=D("20.05"), method="cash",
                      reference="r2", at=during)  # fmt: skip
        ledger.refund(session, site=SITE, tenant="t1", amount=D("5"), method="cash",
                      reference="f1", at=during)  # fmt: skip
        ledger.adjust_balance(session, site=SITE, tenant="t1", amount=D("-1.25"),
                              reason="meter test", reference="a2", at=during)  # fmt: skip
        goodwill = session.scalars(select(JournalEntry).where(JournalEntry.reference == "a1")).one()
        ledger.reverse_entry(session, SITE, goodwill.id, at=during, reason="in error", actor=None)
        sharing.post_shares(session, site=SITE, shares=[
            sharing.SharePosting(tenant="t1", kind="shared", amount=D("4.80"),
                                 reference=f"share:lobby:{during.isoformat()}:t1", at=during),
        ])  # fmt: skip
        # The oracle: every posting of the wallet, read through the ORM and summed here.
        rows = session.execute(
            select(JournalEntry.kind, JournalEntry.created_at, Posting.amount)
            .join(Posting, Posting.entry_id == JournalEntry.id)
            .join(Account, Account.id == Posting.account_id)
            .where(Account.site == SITE, Account.code == ledger.wallet_code("t1"))
        ).all()
        sums: dict[str, D] = {}
        for kind, at, amount in rows:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            key = "opening" if at <= MAY.start else ("" if at > MAY.end else kind)
            sums[key] = sums.get(key, D(0)) + amount
        moved, fees = bills.wallet_movements(session, SITE, "t1", MAY.start, MAY.end)
        assert moved.opening == sums["opening"]
        assert moved.top_ups == sums["top_up"] == D("20.05")
        assert moved.deducted == -(sums["charge"] + sums["shared"])
        assert moved.refunds == -sums["refund"] == D("5")
        assert moved.adjustments == sums["adjustment"] + sums["reversal"] == D("-1.75")
        assert moved.closing == sums["opening"] + sum(
            (v for k, v in sums.items() if k not in ("opening", "")), D(0)
        )
        assert [(f.section, f.amount) for f in fees] == [("shared", D("4.80"))]


@given(
    st.lists(
        st.decimals(min_value=-(10**9), max_value=10**9, places=None, allow_nan=False).filter(
            lambda d: d.is_finite()
        ),
        min_size=1,
        max_size=40,
    )
)
def test_decimal_texts_scale_to_integers_exactly(values: list[D]) -> None:
    """Readings as stored (``str(Decimal)``) come back as integers of their finest place."""
    texts = [str(v) for v in values]
    scaled = bills._scaled("|".join(texts))
    finest = max(len(t.partition(".")[2]) for t in texts)
    if any("E" in t for t in texts) or finest >= len(bills._ZEROS):
        assert scaled is None
        return
    assert scaled is not None
    counts, places = scaled
    assert places == finest
    with localcontext(prec=100):
        assert [D(c).scaleb(-places) for c in counts] == values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("55.2|55.262|56|-0.5", ([55200, 55262, 56000, -500], 3)),
        ("5|7", ([5, 7], 0)),
        ("1.50|2.25", ([150, 225], 2)),
        ("1E+2|2", None),
        ("1.5|NaN", None),
    ],
)
def test_scaled_texts(text: str, expected: tuple[list[int], int] | None) -> None:
    assert bills._scaled(text) == expected


def test_history_buckets_are_local_calendar_months_up_to_a_mid_month_end(
    sessions: sessionmaker[Session],
) -> None:
    """A period ending on the 10th: its month's first days are a bucket of their own."""
    shanghai = ZoneInfo(TZ)
    at = {
        "03-01": datetime(2025, 3, 1, tzinfo=shanghai),
        "04-01": datetime(2025, 4, 1, tzinfo=shanghai),
        "05-01": datetime(2025, 5, 1, tzinfo=shanghai),
        "05-10": datetime(2025, 5, 10, tzinfo=shanghai),
    }
    values = {"03-01": D("100"), "04-01": D("150"), "05-01": D("230"), "05-10": D("250")}
    with sessions() as session:
        ledger.sync_site(session, site=SITE, name="Test mall", currency="CNY",
                         meters=[("m1", "Meter 1", 1, "sim")], tenants=[("t1", "Shop 1", ["m1"])],
                         at=at["03-01"] - timedelta(days=1))  # fmt: skip
        ledger.charge_meters(
            session,
            SITE,
            [MeterCharge(meter="m1", tenant="t1", value=values[k], taken_at=at[k], amount=D(0))
             for k in at],
        )  # fmt: skip
        history = bills._history(session, SITE, ["m1"], at["05-10"], TZ)
    assert len(history) == 12
    assert history[-3:] == [("2025-03", D(50)), ("2025-04", D(80)), ("2025-05", D(20))]
