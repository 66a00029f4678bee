"""The tenant page's parts on their own: tokens, the failure limiter, use curves, prices, HTML."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from custom_components.prepaid_meter.engine.billing import flat_tariff
from custom_components.prepaid_meter.engine.policy import SupplyState
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict
from custom_components.prepaid_meter.store.tenant_access import BillLine, PageData, WalletLine
from custom_components.prepaid_meter.tenant_page import (
    FailureLimiter,
    PageInput,
    current_price,
    curves,
    hour_bounds,
    hourly_use,
    make_token,
    read_token,
    render_page,
    signature_matches,
)

TZ = "Asia/Shanghai"
TOU = tariff_from_dict(
    {
        "name": "two periods",
        "currency": "CNY",
        "timezone": TZ,
        "versions": [
            {
                "effective": "2024-01-01T00:00:00+08:00",
                "energy": {
                    "kind": "tou",
                    "prices": {"valley": "0.30", "peak": "0.90"},
                    "calendar": {
                        "seasons": [
                            {
                                "name": "all year",
                                "from": "01-01",
                                "to": "12-31",
                                "schedules": {
                                    "weekday": [
                                        ["00:00", "valley"],
                                        ["08:00", "peak"],
                                        ["22:00", "valley"],
                                    ]
                                },
                            }
                        ]
                    },
                },
                "taxes": [{"name": "VAT", "percent": "13"}],
            }
        ],
    }
)
SECRET = bytes(range(32))


def test_token_verifies_only_with_its_tenants_secret() -> None:
    token = make_token(SECRET, "site-1", "t1", 1_900_000_000)
    claim = read_token(token)
    assert claim is not None
    assert (claim.site, claim.tenant, claim.expires) == ("site-1", "t1", 1_900_000_000)
    assert signature_matches(SECRET, claim)
    assert not signature_matches(bytes(32), claim)
    assert not signature_matches(None, claim)
    # Another claim with this signature fails, whatever is changed.
    for site, tenant, expires in (("site-1", "t2", 1_900_000_000), ("site-1", "t1", 2**40)):
        raw = json.dumps([site, tenant, expires], separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        forged = read_token(f"{payload}.{token.split('.')[1]}")
        assert forged is not None
        assert not signature_matches(SECRET, forged)


def test_malformed_tokens_are_refused_unread() -> None:
    signature = "A" * 43

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    for token in (
        "",
        "x",
        "a.b",
        f"{b64(['s', 't', '1'])}.{signature}",  # expiry not a number
        f"{b64(['s', 't', True])}.{signature}",  # a bool is not an expiry
        f"{b64(['s', 't'])}.{signature}",
        f"{b64({'s': 1, 't': 2, 'e': 3})}.{signature}",
        f"{b64(7)}.{signature}",
        f"{'A' * 301}.{signature}",
        f"{b64(['s', 't', 1])}.{signature}=",
        f"{b64(['s', 't', 1])}.{signature}.{signature}",
        "%%%%.%%%%",
    ):
        assert read_token(token) is None, token


def test_failure_limiter_counts_per_address_in_a_sliding_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert not limiter.limited("10.0.0.1")
        limiter.failed("10.0.0.1")
        now[0] += 10
    assert limiter.limited("10.0.0.1")
    assert not limiter.limited("10.0.0.2")
    now[0] = 60.5  # the first failure (t=0) has left the window
    assert not limiter.limited("10.0.0.1")
    limiter.failed("10.0.0.1")
    assert limiter.limited("10.0.0.1")
    now[0] = 200
    assert not limiter.limited("10.0.0.1")


def test_curves_put_each_hour_in_its_time_of_use_period() -> None:
    now = datetime(2024, 4, 10, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
    bounds = hour_bounds(now, TZ)
    assert bounds[0] == datetime(2024, 3, 11, 16, 0, tzinfo=UTC)  # 12 March, local midnight
    assert bounds[-1] == now
    # One meter using 1 kWh an hour, a second that is reset once (no negative use).
    first = [Decimal(100 + i) for i in range(len(bounds))]
    second: list[Decimal | None] = [None] * 5 + [Decimal(50 + i) for i in range(len(bounds) - 5)]
    for i in range(100, len(bounds)):
        second[i] = Decimal(i - 100)  # replaced meter: counts again from 0
    use = hourly_use({"m1": first, "m2": second})
    assert len(use) == len(bounds) - 1
    assert use[0] == 1  # m2 unread yet
    assert use[5] == 2
    assert use[99] == 1  # m2 fell to 0: no use counted for m2
    assert use[100] == 2  # m2 counts again from its new counter
    charts = curves(bounds, use, TOU, TZ, ("M", "T", "W", "T", "F", "S", "S"))
    day, week, month = charts["day"], charts["week"], charts["month"]
    assert len(day) == 24
    assert [b.title for b in day[-3:]] == ["08:00", "09:00", "10:00"]
    assert day[-3].parts[0][0] == "peak"
    assert day[-11].parts[0][0] == "valley"  # 00:00
    assert len(week) == 7
    assert len(month) == 30
    full_day = month[-2]  # 9 April, a whole day
    assert dict(full_day.parts) == {"peak": Decimal(28), "valley": Decimal(20)}
    assert week[-1].label == "W"  # 10 April 2024 is a Wednesday
    assert sum(b.total for b in month) == sum(use)


def test_current_price_with_taxes_and_time_of_use() -> None:
    price, varies = current_price(TOU, datetime(2024, 4, 10, 2, 0, tzinfo=UTC))  # 10:00
    assert (price, varies) == (Decimal("0.90") * Decimal("1.13"), True)
    price, varies = current_price(TOU, datetime(2024, 4, 10, 15, 0, tzinfo=UTC))  # 23:00
    assert price == Decimal("0.30") * Decimal("1.13")
    flat = flat_tariff(Decimal("1.50"), "CNY", TZ)
    assert current_price(flat, datetime(2024, 4, 10, tzinfo=UTC)) == (Decimal("1.50"), False)
    assert current_price(None, datetime(2024, 4, 10, tzinfo=UTC)) == (None, False)


def page(name: str, *, balance: str = "12.345", **more: Any) -> PageInput:
    now = datetime(2024, 4, 10, 2, 30, tzinfo=UTC)
    bounds = hour_bounds(now, TZ)
    return PageInput(
        site_name="Riverside",
        tenant_name=name,
        currency="CNY",
        unit="kWh",
        timezone=TZ,
        now=now,
        expires=now + timedelta(days=30),
        balance=Decimal(balance),
        days_left=Decimal("4.26"),
        supply=SupplyState.GRACE,
        tariff=TOU,
        bounds=bounds,
        data=PageData(
            readings={"m1": [Decimal(i) for i in range(len(bounds))]},
            payments=[
                WalletLine(at=now, kind="top_up", amount=Decimal(50), method="alipay"),
                WalletLine(at=now, kind="refund", amount=Decimal(-5), method="cash"),
            ],
            bills=[
                BillLine(
                    id=7,
                    number="000007",
                    revision=2,
                    period_start=datetime(2024, 2, 29, 16, tzinfo=UTC),
                    period_end=datetime(2024, 3, 31, 16, tzinfo=UTC),
                    issued_at=now,
                    total=Decimal("88.10"),
                    currency="CNY",
                )
            ],
        ),
        base="/api/prepaid_meter/tenant/TOKEN",
        **more,
    )


def test_page_html_in_chinese_escapes_names_and_links_only_its_own_bills() -> None:
    html = render_page(page("<script>alert(1)</script> 小店"), "zh-Hans")
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert 'lang="zh-Hans"' in html
    assert "余额" in html
    assert "12.35" in html  # half-up to the fen
    assert "供电中（宽限期，请尽快充值）" in html
    assert "支付宝" in html
    assert "+50.00 CNY" in html
    assert "-5.00 CNY" in html
    assert "2024-03-01 – 2024-03-31" in html
    assert 'href="/api/prepaid_meter/tenant/TOKEN/bill/7.pdf"' in html
    assert html.count("/bill/") == 2
    assert "高峰" in html
    assert "低谷" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # Remaining energy: 12.345 / (0.90 x 1.13) at 10:30 local.
    assert "≈ 12.1 kWh" in html


def test_page_with_a_negative_balance_estimates_no_energy() -> None:
    html = render_page(page("Shop", balance="-3"), "en")
    assert "-3.00" in html
    assert "≈ 0.0 kWh" in html
    assert "the price changes with the time of day" in html


def test_a_postpaid_page_shows_what_is_owed_not_credit_left() -> None:
    html = render_page(
        page("Shop", balance="-130.5", postpaid=True, amount_due=Decimal("88.105")), "en"
    )
    assert 'id="amount-due">88.11 CNY' in html  # half-up to the fen
    assert "Postpaid account" in html
    for prepaid_only in ('id="remaining"', 'id="days-left"', "Days of credit left"):
        assert prepaid_only not in html
    zh = render_page(page("Shop", postpaid=True, amount_due=Decimal(5)), "zh-Hans")
    assert "账单应付金额" in zh
    assert "余额可用天数" not in zh
    prepaid = render_page(page("Shop"), "en")
    assert 'id="days-left"' in prepaid
    assert 'id="amount-due"' not in prepaid
