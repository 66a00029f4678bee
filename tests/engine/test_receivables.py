"""Postpaid receivables: payments applied to bills oldest first, to the cent; the overdue rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.receivables import BillDue, allocate, overdue_from

TZ = "Asia/Shanghai"
#: 2026-10-15 00:30 Shanghai: a bill issued 2026-10-01 00:30 with 14 days to pay.
DUE = datetime(2026, 10, 14, 16, 30, tzinfo=UTC)


def bill(n: int, amount: str, *, month: int = 9, due: datetime = DUE) -> BillDue:
    return BillDue(
        bill_id=n,
        number=f"{n:06d}",
        period_start=datetime(2026, month, 1, tzinfo=UTC),
        amount=D(amount),
        due_at=due,
    )


def test_overdue_from_the_local_midnight_after_the_due_date_and_grace_days() -> None:
    # Due on 15 October (Shanghai): overdue from 16 October 00:00 Shanghai = 15 Oct 16:00 UTC.
    assert overdue_from(DUE, 0, TZ) == datetime(2026, 10, 15, 16, 0, tzinfo=UTC)
    assert overdue_from(DUE, 3, TZ) == datetime(2026, 10, 18, 16, 0, tzinfo=UTC)
    # The same instant is 14 October in UTC: a day earlier there.
    assert overdue_from(DUE, 0, "UTC") == datetime(2026, 10, 15, 0, 0, tzinfo=UTC)


def test_payments_go_to_the_oldest_bill_first() -> None:
    september, october = bill(2, "80.00", month=9), bill(5, "50.00", month=10)
    before = datetime(2026, 10, 15, 15, 59, tzinfo=UTC)
    account = allocate([october, september], D("100.00"), now=before, timezone=TZ)
    assert [(b.number, b.paid, b.open) for b in account.bills] == [
        ("000002", D("80.00"), D(0)),
        ("000005", D("20.00"), D("30.00")),
    ]
    assert account.amount_due == D("30.00")
    assert account.credit == 0
    assert not account.overdue
    assert account.next_overdue_at(before) == datetime(2026, 10, 15, 16, 0, tzinfo=UTC)
    after = allocate([october, september], D("100.00"), now=before + timedelta(minutes=1),
                     timezone=TZ)  # fmt: skip
    assert [b.overdue for b in after.bills] == [False, True]
    assert after.overdue
    assert after.next_overdue_at(before + timedelta(minutes=1)) is None


def test_overpaid_is_credit_and_a_credit_note_pays_too() -> None:
    account = allocate([bill(1, "10.00")], D("25.50"), now=DUE, timezone=TZ)
    assert account.amount_due == 0
    assert account.credit == D("15.50")
    # A revision that credits (a negative total) pays the next bill.
    credit_note = bill(1, "-5.00", month=8)
    account = allocate([credit_note, bill(2, "12.00")], D("0"), now=DUE, timezone=TZ)
    assert [b.open for b in account.bills] == [D(0), D("7.00")]


def test_nothing_paid_on_time_is_overdue_only_after_the_grace_days() -> None:
    at = datetime(2026, 10, 17, 0, 0, tzinfo=UTC)
    assert allocate([bill(1, "10.00")], D(0), now=at, timezone=TZ).overdue
    assert not allocate([bill(1, "10.00")], D(0), now=at, grace_days=2, timezone=TZ).overdue
    assert not allocate([bill(1, "10.00")], D("10.00"), now=at, timezone=TZ).overdue


amounts = st.decimals(min_value=D("-50"), max_value=D("5000"), places=2)


@given(st.lists(amounts, max_size=12), st.decimals(min_value=D(0), max_value=D(20000), places=2))
def test_allocations_add_up_to_the_cent(totals: list[D], paid: D) -> None:
    bills = [bill(n, str(t), month=1 + n % 12) for n, t in enumerate(totals)]
    account = allocate(bills, paid, now=DUE, timezone=TZ)
    credits = sum((-t for t in totals if t < 0), D(0))
    assert sum((b.paid for b in account.bills), D(0)) + account.credit == paid + credits
    assert all(0 <= b.paid <= b.amount for b in account.bills)
    # Oldest first: a bill is paid only when every older one is paid in full.
    opened = False
    for b in account.bills:
        assert not (opened and b.paid > 0)
        opened = opened or b.open > 0
    assert account.amount_due == sum((max(t, D(0)) for t in totals), D(0)) - (
        paid + credits - account.credit
    )
