"""The ledger on SQLite and PostgreSQL: exact, balanced, idempotent, append-only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.ledger import (
    FinalCharge,
    LedgerError,
    MeterCharge,
    Payment,
)
from custom_components.prepaid_meter.store.models import JournalEntry, PaymentReference
from custom_components.prepaid_meter.store.store import make_engine

from .conftest import SITE, assert_sound

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
D = Decimal


def charge(meter: str, tenant: str, value: str, amount: str, minutes: int) -> MeterCharge:
    return MeterCharge(
        meter=meter,
        tenant=tenant,
        value=D(value),
        taken_at=T0 + timedelta(minutes=minutes),
        amount=D(amount),
    )


def test_every_operation_keeps_the_journal_balanced(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        r = ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("100.00"), method="wechat", reference="p1", at=T0
        )
        assert (r.balance, r.duplicate) == (D("100.00"), False)
        assert_sound(s)
        # Charges keep full precision (rating rounds only where the engine says so).
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "10.00", "0", 1)])
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "10.37", "0.5550", 2)])
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "10.40", "0.0000001", 3)])
        assert ledger.balance(s, SITE, "t1") == D("99.4449999")
        assert_sound(s)
        r = ledger.refund(
            s, site=SITE, tenant="t1", amount=D("9.44"), method="cash", reference="r1", at=T0
        )
        assert r.balance == D("90.0049999")
        assert_sound(s)
        r = ledger.adjust_balance(
            s, site=SITE, tenant="t1", amount=D("-0.0049999"), reason="rounding", reference="a1",
            at=T0,
        )  # fmt: skip
        assert r.balance == D("90.0000000")
        assert_sound(s)
        results = ledger.top_up_batch(
            s,
            site=SITE,
            payments=[
                Payment(tenant="t1", amount=D("10"), method="alipay", reference="b1"),
                Payment(tenant="t2", amount=D("0.01"), method="alipay", reference="b2"),
            ],
            at=T0,
        )
        assert [x.balance for x in results] == [D("100"), D("0.01")]
        assert_sound(s)
        settled = ledger.settle_account(
            s, site=SITE, tenant="t1", at=T0 + timedelta(hours=1), method="cash",
            reference="out-t1", final_charges=[FinalCharge(kind="standing", amount=D("3.50"))],
        )  # fmt: skip
        assert (settled.refunded, settled.amount_due) == (D("96.50"), 0)
        assert ledger.balance(s, SITE, "t1") == 0
        assert_sound(s)


def test_same_reference_credits_once(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        for _ in range(3):
            r = ledger.top_up(
                s, site=SITE, tenant="t1", amount=D("5.00"), method="cash", reference="x", at=T0
            )
        assert r.duplicate
        assert r.balance == D("5.00")
        with pytest.raises(LedgerError) as err:
            ledger.top_up(
                s, site=SITE, tenant="t1", amount=D("6.00"), method="cash", reference="x", at=T0
            )
        assert err.value.key == "reference_conflict"
        with pytest.raises(LedgerError):  # same amount, another method: another payment
            ledger.top_up(
                s, site=SITE, tenant="t1", amount=D("5.00"), method="card", reference="x", at=T0
            )
        with pytest.raises(LedgerError):  # a refund cannot reuse a payment's reference
            ledger.refund(
                s, site=SITE, tenant="t1", amount=D("5.00"), method="cash", reference="x", at=T0
            )
        assert ledger.balance(s, SITE, "t1") == D("5.00")
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 1
        assert_sound(s)


def test_racing_writers_credit_each_reference_once(any_db_url: str, engine: Engine) -> None:
    """Two writers (own engines, own connections) push the same references at once."""
    references = [f"race-{i}" for i in range(40)]
    barrier = threading.Barrier(2)

    def writer(_: int) -> list[bool]:
        eng = make_engine(any_db_url)
        try:
            sessions = sessionmaker(eng, expire_on_commit=False)
            barrier.wait()
            out = []
            for ref in references:
                with sessions() as s:
                    r = ledger.top_up(
                        s, site=SITE, tenant="t1", amount=D("1.25"), method="card",
                        reference=ref, at=T0,
                    )  # fmt: skip
                    out.append(r.duplicate)
            return out
        finally:
            eng.dispose()

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(writer, range(2))
    # Per reference exactly one writer applied it and the other got the repeat.
    assert all(x != y for x, y in zip(a, b, strict=True))
    with Session(engine) as s:
        assert ledger.balance(s, SITE, "t1") == D("1.25") * len(references)
        assert s.scalar(select(func.count()).select_from(PaymentReference)) == len(references)
        assert_sound(s)


def test_refund_cannot_exceed_balance_unless_forced(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("20"), method="cash", reference="p", at=T0
        )
        with pytest.raises(LedgerError) as err:
            ledger.refund(
                s, site=SITE, tenant="t1", amount=D("20.01"), method="cash", reference="r",
                at=T0,
            )  # fmt: skip
        assert err.value.key == "refund_exceeds_balance"
        assert ledger.balance(s, SITE, "t1") == D("20")
        r = ledger.refund(
            s, site=SITE, tenant="t1", amount=D("20.01"), method="cash", reference="r",
            at=T0, force=True,
        )  # fmt: skip
        assert r.balance == D("-0.01")
        assert_sound(s)


def test_batch_is_all_or_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        ledger.top_up(
            s, site=SITE, tenant="t3", amount=D("1"), method="cash", reference="used", at=T0
        )
        batch = [
            Payment(tenant="t1", amount=D("10"), method="cash", reference="n1"),
            Payment(tenant="t2", amount=D("10"), method="cash", reference="used"),
        ]
        with pytest.raises(LedgerError) as err:
            ledger.top_up_batch(s, site=SITE, payments=batch, at=T0)
        assert err.value.key == "reference_conflict"
        assert ledger.balance(s, SITE, "t1") == 0
        # The batch again with a good reference; then once more: every payment a repeat.
        batch[1] = Payment(tenant="t3", amount=D("1"), method="cash", reference="used")
        first = ledger.top_up_batch(s, site=SITE, payments=batch, at=T0)
        again = ledger.top_up_batch(s, site=SITE, payments=batch, at=T0)
        assert [r.duplicate for r in first] == [False, True]
        assert [r.duplicate for r in again] == [True, True]
        assert ledger.balance(s, SITE, "t1") == D("10")
        assert ledger.balance(s, SITE, "t3") == D("1")
        assert_sound(s)


def test_move_out_with_debt_and_closed_account(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        ledger.top_up(s, site=SITE, tenant="t1", amount=D("5"), method="cash", reference="p", at=T0)
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "1", "0", 0)])
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "9", "12.00", 10)])
        out = T0 + timedelta(hours=1)
        with pytest.raises(LedgerError) as err:
            ledger.settle_account(s, site=SITE, tenant="t1", at=T0, method="cash", reference="out")
        assert err.value.key == "settle_before_last_charge"
        settled = ledger.settle_account(
            s, site=SITE, tenant="t1", at=out, method="cash", reference="out"
        )
        assert (settled.refunded, settled.amount_due) == (0, D("7.00"))
        assert ledger.balance(s, SITE, "t1") == 0
        again = ledger.settle_account(
            s, site=SITE, tenant="t1", at=out, method="cash", reference="out"
        )
        assert again.duplicate
        assert again.amount_due == D("7.00")
        # A closed account takes no more money and no more charges.
        with pytest.raises(LedgerError) as err:
            ledger.top_up(
                s, site=SITE, tenant="t1", amount=D("5"), method="cash", reference="late", at=out
            )
        assert err.value.key == "account_closed"
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "12", "4.50", 120)])
        assert ledger.balance(s, SITE, "t1") == 0
        assert ledger.cursors(s, SITE)["m1"].value == D("12")
        assert ledger.tenant_controls(s, SITE)["t1"] == (True, False)
        assert_sound(s)


def test_ledger_rows_cannot_be_updated_or_deleted(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        ledger.top_up(s, site=SITE, tenant="t1", amount=D("5"), method="cash", reference="p", at=T0)
    for statement in (
        "UPDATE pm_posting SET amount = amount",
        "DELETE FROM pm_posting",
        "UPDATE pm_entry SET memo = 'edited'",
        "DELETE FROM pm_entry",
        "DELETE FROM pm_payment_ref",
    ):
        with sessions() as s:
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text(statement))
            s.rollback()
    with sessions() as s:
        assert ledger.balance(s, SITE, "t1") == D("5")


def test_a_correction_is_a_reversing_entry(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        r = ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("50"), method="cash", reference="p", at=T0
        )
        rev = ledger.reverse_entry(s, SITE, r.entry_id, at=T0, reason="wrong tenant", actor="u1")
        assert rev.reverses_id == r.entry_id
        assert ledger.balance(s, SITE, "t1") == 0
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 2
        assert_sound(s)


def test_amounts_stay_exact_at_any_scale(sessions: sessionmaker[Session]) -> None:
    """0.1 + 0.2 is 0.3 here, and 30 decimals survive the round trip."""
    tiny = D("0.000000000000000000000000000001")
    with sessions() as s:
        ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("0.1"), method="cash", reference="a", at=T0
        )
        ledger.top_up(
            s, site=SITE, tenant="t1", amount=D("0.2"), method="cash", reference="b", at=T0
        )
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "1", "0", 0)])
        ledger.charge_meters(s, SITE, [charge("m1", "t1", "2", str(tiny), 1)])
        with localcontext(prec=60):
            assert ledger.balance(s, SITE, "t1") == D("0.3") - tiny
        big = D("999999999999.99")
        ledger.top_up(s, site=SITE, tenant="t2", amount=big, method="cash", reference="c", at=T0)
        assert ledger.balance(s, SITE, "t2") == big
        assert_sound(s)
