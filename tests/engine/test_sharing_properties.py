"""Properties of sharing: shares add up to the pool exactly, never negative, deterministic."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.prepaid_meter.engine.calendars import BillingPeriod
from custom_components.prepaid_meter.engine.money import round_money, split_to_step
from custom_components.prepaid_meter.engine.sharing import (
    METHODS,
    CommonCost,
    Participant,
    SharingResult,
    SharingRule,
    share_common_cost,
    share_line_loss,
    sharing_windows,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TZ = "Europe/London"
ZONE = ZoneInfo(TZ)
# March 2024 in London has the 23-hour day.
PERIOD = BillingPeriod.explicit(
    datetime(2024, 3, 1, tzinfo=ZONE), datetime(2024, 4, 1, tzinfo=ZONE)
)
HOURS = int((PERIOD.end - PERIOD.start) / timedelta(hours=1))

figures = st.decimals(min_value=D(0), max_value=D(100000), places=3)


@st.composite
def participants(draw: st.DrawFn) -> tuple[Participant, ...]:
    n = draw(st.integers(min_value=1, max_value=12))
    out = []
    for i in range(n):
        joined = left = None
        if draw(st.booleans()):
            joined = PERIOD.start + timedelta(hours=draw(st.integers(-48, HOURS + 48)))
        if draw(st.booleans()):
            base = joined or PERIOD.start - timedelta(hours=48)
            left = base + timedelta(hours=draw(st.integers(1, HOURS + 96)))
        out.append(
            Participant(
                f"t{i}",
                area=draw(figures),
                ratio=draw(figures),
                capacity=draw(figures),
                joined=joined,
                left=left,
                excluded=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return tuple(out)


def adds_up(result: SharingResult, currency: str) -> None:
    parts = sum((r.amount for r in result.records), D(0)) + result.owner_amount + result.unallocated
    assert parts == result.total == round_money(result.cost, currency)
    assert all(round_money(r.amount, currency) == r.amount for r in result.records)


@FAST
@given(
    participants(),
    st.sampled_from(METHODS),
    st.decimals(min_value=D(0), max_value=D(10**9), places=6),
    st.decimals(min_value=D(0), max_value=D(100), places=2),
    st.sampled_from(["CNY", "JPY", "KWD"]),
    st.data(),
)
def test_common_shares_add_up_exactly_and_are_never_negative(
    people: tuple[Participant, ...],
    method: str,
    cost: D,
    owner: D,
    currency: str,
    data: st.DataObject,
) -> None:
    rule = SharingRule("r", "common", method, people, ("m",), owner_percent=owner)  # type: ignore[arg-type]
    use = {p.tenant: data.draw(figures) for p in people}
    result = share_common_cost(
        rule, PERIOD, [CommonCost("m", D(7), cost)], consumption=use, currency=currency, timezone=TZ
    )
    adds_up(result, currency)
    assert all(r.amount >= 0 for r in result.records)
    assert result.owner_amount >= 0
    assert result.unallocated >= 0
    assert sum(r.energy for r in result.records) <= 7
    # deterministic: the same inputs give the same records
    again = share_common_cost(
        rule, PERIOD, [CommonCost("m", D(7), cost)], consumption=use, currency=currency, timezone=TZ
    )
    assert again == result


@FAST
@given(
    participants(),
    st.sampled_from(METHODS),
    st.decimals(min_value=D(0), max_value=D(10**7), places=3),
    st.decimals(min_value=D(0), max_value=D(10**7), places=3),
    st.booleans(),
)
def test_loss_shares_add_up_and_credit_only_when_allowed(
    people: tuple[Participant, ...], method: str, master: D, subs: D, allow: bool
) -> None:
    rule = SharingRule(
        "loss", "loss", method, people, loss_pricing="unit_price",  # type: ignore[arg-type]
        loss_unit_price=D("0.6123"), allow_credit=allow, evasion_percent=D(5),
    )  # fmt: skip
    use = {p.tenant: D(1) for p in people}
    result = share_line_loss(
        rule, PERIOD, master_energy=master, sub_energy={"s": subs}, consumption=use,
        currency="CNY", timezone=TZ,
    )  # fmt: skip
    adds_up(result, "CNY")
    if master >= subs or not allow:
        assert all(r.amount >= 0 for r in result.records)
    else:
        assert all(r.amount <= 0 for r in result.records)
    assert ("negative_loss" in [a.key for a in result.anomalies]) == (subs > master)


@FAST
@given(participants(), st.decimals(min_value=D(0), max_value=D(10**6), places=2))
def test_daily_shares_add_up_to_each_day(people: tuple[Participant, ...], daily: D) -> None:
    rule = SharingRule("r", "common", "area", people, ("m",), cadence="daily")
    for day in sharing_windows(PERIOD, "daily", TZ)[28:31]:  # around the DST change
        result = share_common_cost(
            rule, day, [CommonCost("m", D(1), daily)], currency="CNY", timezone=TZ
        )
        adds_up(result, "CNY")
        assert all(r.basis.days <= 1 for r in result.records)


@FAST
@given(
    st.decimals(min_value=D(-(10**9)), max_value=D(10**9), places=6),
    st.lists(st.decimals(min_value=D(0), max_value=D(10**6), places=4), min_size=1, max_size=20),
    st.sampled_from([D("0.001"), D("0.01"), D(1), D("0.5")]),
)
def test_split_to_step_adds_up_exactly(total: D, weights: list[D], step: D) -> None:
    parts = split_to_step(total, weights, step)
    rounded = sum(parts, D(0))
    assert abs(rounded - total) <= step / 2
    assert all(p % step == 0 for p in parts)
    assert all(p >= 0 for p in parts) or all(p <= 0 for p in parts)
