"""Bill assembly: lines add up, prepaid bills equal deductions, part periods pro-rate."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.billing import (
    BillInput,
    Fee,
    WalletMovements,
    assemble_bill,
    flat_tariff,
    round_lines,
    usage_chart_svg,
)
from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.engine.intervals import IntervalUse
from custom_components.prepaid_meter.engine.rating import UsageSeries, rate_period
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict

TZ = "Asia/Shanghai"
TOU_TIERS: dict[str, Any] = {
    "name": "mall",
    "currency": "CNY",
    "timezone": TZ,
    "versions": [
        {
            "effective": "2024-01-01T00:00:00+08:00",
            "energy": {
                "kind": "tou",
                "prices": {"peak": "1.0123", "flat": "0.6617", "valley": "0.3171"},
                "calendar": {
                    "seasons": [
                        {
                            "name": "all",
                            "schedules": {
                                "weekday": [["00:00", "valley"], ["08:00", "peak"],
                                            ["12:00", "flat"], ["22:00", "valley"]],
                            },
                        }
                    ]
                },
            },
            "tiers": {"basis": "period", "mode": "adder",
                      "blocks": [{"upto": "240", "adder": "0"}, {"upto": "400", "adder": "0.05"},
                                 {"upto": None, "adder": "0.30"}]},
            "standing": [{"name": "meter service", "amount": "3.33", "per": "month"}],
            "taxes": [{"name": "VAT", "percent": "13"}],
        }
    ],
}  # fmt: skip


def _input(period: Any, charges: Any, **extra: Any) -> BillInput:
    base: dict[str, Any] = {
        "site_name": "Test mall",
        "tenant": "t1",
        "tenant_name": "Shop 1",
        "number": "000001",
        "period": period,
        "issued_at": period.end,
        "currency": "CNY",
        "timezone": TZ,
        "charges": charges,
    }
    base.update(extra)
    return BillInput(**base)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=997), min_size=96, max_size=96 * 3))
def test_total_equals_the_sum_of_lines_to_the_cent(units: list[int]) -> None:
    tariff = tariff_from_dict(TOU_TIERS)
    period = billing_period(datetime(2024, 3, 10, tzinfo=UTC), 1, TZ)
    usage = UsageSeries(period.start, 15, [D(u) / 100 for u in units])
    rated = rate_period(tariff, period, usage)
    bill = assemble_bill(
        _input(period, rated.charges, fees=(Fee(name="discount", amount=D("-1.005")),))
    )
    assert sum(ln.amount for ln in bill.lines) == bill.total
    assert bill.subtotal + bill.taxes == bill.total
    assert all(ln.amount == ln.amount.quantize(D("0.01")) for ln in bill.lines)
    # The total is the exact sum of everything rounded once, never a sum of roundings.
    exact = rated.total - D("1.005")
    assert bill.total == exact.quantize(D("0.01"), rounding="ROUND_HALF_UP")
    # Each line is within one cent of its own exact amount.
    assert all(abs(ln.amount - ln.exact) < D("0.01") for ln in bill.lines)


def test_round_lines_hands_leftover_cents_to_the_largest_remainders() -> None:
    total, lines = round_lines([D("0.333"), D("0.333"), D("0.334")], "CNY")
    assert total == D("1.00")
    assert lines == [D("0.33"), D("0.33"), D("0.34")]
    total, lines = round_lines([D("0.005"), D("0.005"), D("-0.004")], "CNY")
    assert total == D("0.01")
    assert sum(lines) == total


def test_prepaid_bill_total_equals_the_wallet_deductions() -> None:
    """Deductions are price x counter delta at every poll; the bill rates the same deltas."""
    price = D("1.37")
    tariff = flat_tariff(price, "CNY", TZ)
    period = billing_period(datetime(2024, 5, 15, tzinfo=UTC), 1, TZ)
    at, value, readings = period.start, D("1000.00"), []
    step = 0
    while at < period.end:
        readings.append((at, value))
        step += 1
        at += timedelta(minutes=30)
        value += D(step % 7) / 100 + D("0.013")
    intervals = [IntervalUse(a, b, v1 - v0) for (a, v0), (b, v1) in itertools.pairwise(readings)]
    deducted = sum((iv.energy * price for iv in intervals), D(0))
    assert deducted != deducted.quantize(D("0.01"))  # sub-cent deductions: rounding matters
    rated = rate_period(tariff, period, intervals)
    bill = assemble_bill(
        _input(period, rated.charges, wallet=WalletMovements(deducted=deducted, closing=-deducted))
    )
    assert bill.matches_deducted
    assert bill.total == deducted.quantize(D("0.01"), rounding="ROUND_HALF_UP")
    # A bill priced differently from what was deducted says so.
    other = assemble_bill(_input(period, rated.charges, wallet=WalletMovements(deducted=D(1))))
    assert not other.matches_deducted


def test_move_out_part_period_pro_rates_standing_charges() -> None:
    tariff = tariff_from_dict(TOU_TIERS)
    cycle = billing_period(datetime(2024, 4, 10, tzinfo=UTC), 1, TZ)  # April: 30 days
    move_out = cycle.start + timedelta(days=12)  # 12 of 30 days
    part = cycle.part(cycle.start, move_out)
    rated = rate_period(tariff, part, UsageSeries(part.start, 15, [D("0.1")] * (12 * 96)))
    bill = assemble_bill(_input(part, rated.charges, mode="postpaid",
                                wallet=WalletMovements(closing=D("-50.004"))))  # fmt: skip
    standing = [ln for ln in bill.lines if ln.section == "standing"]
    assert len(standing) == 1
    assert standing[0].exact == D("3.33") * 12 / 30
    assert standing[0].amount == D("1.33")
    assert bill.days == 12
    assert bill.daily_average == D("9.60")
    assert bill.due_at == part.end + timedelta(days=14)
    assert bill.amount_due == D("50.00")
    doc = bill.to_dict()
    assert doc["period"]["whole"] is False
    assert doc["period"]["end_local"] == "2024-04-12"
    # Due 14 days after the issue at local midnight: the local date, not the UTC one.
    assert doc["due_at"][:10] == "2024-04-26"
    assert doc["due_local"] == "2024-04-27"
    assert "due_local" not in assemble_bill(_input(part, rated.charges)).to_dict()


def test_a_part_period_under_a_day_averages_over_that_day() -> None:
    tariff = tariff_from_dict(TOU_TIERS)
    cycle = billing_period(datetime(2024, 4, 10, tzinfo=UTC), 1, TZ)
    part = cycle.part(cycle.start, cycle.start + timedelta(hours=6))  # a quarter of a day
    rated = rate_period(tariff, part, UsageSeries(part.start, 15, [D("0.5")] * 24))
    bill = assemble_bill(_input(part, rated.charges))
    assert bill.days == D("0.25")
    assert bill.energy == 12
    assert bill.daily_average == D("12.00")  # what was used that day, not 48 a day


def test_placeholder_shares_and_chart() -> None:
    period = billing_period(datetime(2024, 5, 15, tzinfo=UTC), 1, TZ)
    bill = assemble_bill(_input(period, (), common_area=D("12.345"), line_loss=D("0.005")))
    assert [ln.section for ln in bill.lines] == ["shared", "loss"]
    assert bill.total == D("12.35")
    svg = usage_chart_svg([("2024-04", D("10")), ("2024-05", D("20"))], "kWh")
    assert svg.startswith("<svg")
    assert svg.count("<rect") == 2
