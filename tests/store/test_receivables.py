"""Postpaid receivables on a real database (SQLite and PostgreSQL): bills, payments, notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.engine.billing import Fee
from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import bills, ledger, receivables

from .conftest import SITE, assert_sound
from .test_bills import MAY, PRICE, charge_month, spec

TZ = "Asia/Shanghai"
APRIL = billing_period(datetime(2025, 4, 10, tzinfo=UTC), 1, TZ)
RENT = Fee(name="Rent", amount=D("1200.00"))
POSTPAID = bills.TenantSpec(
    id="t1", name="Shop 1", meters=[("m1", "Meter 1")], mode="postpaid", fees=[RENT]
)


def issue(session: Session, period: bills.BillingPeriod, at: datetime) -> bills.IssuedBill:
    [issued] = bills.issue_bills(session, spec=spec(), tenants=[POSTPAID], periods=[period],
                                 issued_at=at)  # fmt: skip
    return issued


def pay(session: Session, amount: str, reference: str, at: datetime) -> None:
    ledger.top_up(session, site=SITE, tenant="t1", amount=D(amount), method="cash",
                  reference=reference, at=at)  # fmt: skip


def test_payments_settle_the_oldest_bill_first_and_overdue_is_noticed_once(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        # A payment before the first postpaid period went on earlier (prepaid) use.
        ledger.sync_site(session, site=SITE, name="Test mall", currency="CNY",
                         meters=[("m1", "Meter 1", 1, "sim")], tenants=[("t1", "Shop 1", ["m1"])],
                         at=APRIL.start - timedelta(days=9))  # fmt: skip
        pay(session, "70.00", "before", APRIL.start - timedelta(days=1))
        # charge_month tops up 500 in April's last days and charges April's last day and May.
        charge_month(session)
        # April's bill was issued late, with May's: both are due on the same day.
        april = issue(session, APRIL, MAY.end + timedelta(hours=1))
        may = issue(session, MAY, MAY.end + timedelta(hours=1))
        assert D("1200.00") < april.total < may.total
        due_may = datetime.fromisoformat(may.document["due_at"])
        now = MAY.end + timedelta(days=2)
        [account] = receivables.accounts(session, SITE, ["t1"], now=now, timezone=TZ).values()
        assert account.amount_due == april.total + may.total - D(500)
        assert not account.overdue

        pay(session, "1000.00", "p1", now)
        pay(session, "300.50", "p2", now + timedelta(minutes=1))
        [account] = receivables.accounts(session, SITE, ["t1"], now=now, timezone=TZ).values()
        may_paid = D("1800.50") - april.total
        assert [(b.number, b.paid) for b in account.bills] == [
            (april.number, april.total),
            (may.number, may_paid),
        ]
        assert account.amount_due == may.total - may_paid
        assert sum((b.paid for b in account.bills), D(0)) + account.credit == D("1800.50")

        # April was due 14 days after it was issued; May is open after its due date.
        late = due_may + timedelta(days=2)
        first = receivables.evaluate(session, SITE, ["t1"], now=late, timezone=TZ)
        assert [(t, b.number) for t, b in first.newly_overdue] == [("t1", may.number)]
        assert first.accounts["t1"].overdue
        again = receivables.evaluate(session, SITE, ["t1"], now=late + timedelta(hours=1),
                                     timezone=TZ)  # fmt: skip
        assert again.newly_overdue == []
        assert again.accounts["t1"].overdue
        graced = receivables.evaluate(session, SITE, ["t1"], now=late, grace_days=5, timezone=TZ)
        assert not graced.accounts["t1"].overdue

        # A refund un-pays; paying the open amount clears the overdue state.
        ledger.refund(session, site=SITE, tenant="t1", amount=D("0.50"), method="cash",
                      reference="r-back", at=late, force=True)  # fmt: skip
        [account] = receivables.accounts(session, SITE, ["t1"], now=late, timezone=TZ).values()
        assert account.amount_due == may.total - may_paid + D("0.50")
        pay(session, str(account.amount_due), "p3", late)
        [account] = receivables.accounts(session, SITE, ["t1"], now=late, timezone=TZ).values()
        assert (account.amount_due, account.overdue, account.credit) == (0, False, 0)
        assert_sound(session)

        # The notice is append-only like the ledger.
        with pytest.raises(DatabaseError):
            session.execute(text("DELETE FROM pm_bill_notice"))
        session.rollback()


def test_a_recalculated_bill_changes_what_is_owed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        charge_month(session)
        may = issue(session, MAY, MAY.end + timedelta(hours=1))
        now = MAY.end + timedelta(days=3)
        pay(session, "1200.00", "p1", now)
        # The site's monitor keeps the bills it read; a revision issued later is read too.
        cache: receivables.BillCache = {}
        before = receivables.accounts(session, SITE, ["t1"], now=now, timezone=TZ, cache=cache)
        assert before["t1"].amount_due == may.total - D("1200.00")
        assert list(cache) == [may.id]
        revised = bills.recalculate_bill(session, spec=spec(PRICE / 2), tenant=POSTPAID,
                                         bill_id=may.id, now=now)  # fmt: skip
        assert revised.revision == 2
        assert revised.total < may.total
        # A ledger write checks the tenants with a bill not read before (and those it paid).
        assert receivables.new_bills(session, SITE, ["t1"], cache) == {"t1"}
        assert receivables.new_bills(session, SITE, ["t1"], cache) == set()
        found = receivables.accounts(session, SITE, ["t1"], now=now, timezone=TZ, cache=cache)
        assert sorted(cache) == [may.id, revised.id]
        [account] = found.values()
        [owed] = account.bills
        assert (owed.bill_id, owed.number, owed.amount) == (revised.id, revised.number,
                                                            revised.total)  # fmt: skip
        assert account.amount_due == revised.total - D("1200.00")
        # Due on the revision's date: the tenant holds that document.
        assert owed.due_at == datetime.fromisoformat(revised.document["due_at"])
        assert owed.due_at > datetime.fromisoformat(may.document["due_at"])
        assert_sound(session)


def test_prepaid_bills_and_other_tenants_are_not_receivables(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        charge_month(session)
        bills.issue_bills(session, spec=spec(), tenants=[bills.TenantSpec(
            id="t1", name="Shop 1", meters=[("m1", "Meter 1")])], periods=[MAY],
            issued_at=MAY.end + timedelta(hours=1))  # fmt: skip
        found = receivables.accounts(session, SITE, ["t1", "t9"], now=MAY.end, timezone=TZ)
        assert found["t1"].bills == ()
        assert found["t9"].bills == ()
        assert receivables.accounts(session, SITE, [], now=MAY.end) == {}
