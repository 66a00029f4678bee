"""Sharing common-area cost and line loss: every method, stays, exclusions, loss, evasion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.prepaid_meter.engine.calendars import BillingPeriod, day_bounds
from custom_components.prepaid_meter.engine.rating import UsageSeries
from custom_components.prepaid_meter.engine.sharing import (
    CommonCost,
    Participant,
    SharingError,
    SharingResult,
    SharingRule,
    explain,
    line_loss,
    master_energy_between,
    price_common_meter,
    share_common_cost,
    share_line_loss,
    sharing_rule_from_dict,
    sharing_rule_to_dict,
    sharing_windows,
)
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
CNY = "CNY"
APRIL = BillingPeriod.explicit(datetime(2024, 4, 1, tzinfo=SH), datetime(2024, 5, 1, tzinfo=SH))


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 4, day, hour, tzinfo=SH)


def rule(method: str, *participants: Participant, **extra: Any) -> SharingRule:
    kind = extra.pop("kind", "common")
    meters = extra.pop("meters", ("lift",) if kind == "common" else ())
    return SharingRule(
        name="Lifts", kind=kind, method=method, participants=participants, meters=meters, **extra
    )  # type: ignore[arg-type]


def common(
    r: SharingRule,
    amount: str,
    period: BillingPeriod = APRIL,
    use: dict[str, D] | None = None,
    energy: str = "100",
) -> SharingResult:
    cost = CommonCost("lift", D(energy), D(amount))
    return share_common_cost(r, period, [cost], consumption=use, currency=CNY, timezone=TZ)


def amounts(result: SharingResult) -> dict[str, D]:
    return {r.tenant: r.amount for r in result.records}


def check_adds_up(result: SharingResult) -> None:
    got = sum((r.amount for r in result.records), D(0)) + result.owner_amount + result.unallocated
    assert got == result.total


A, B, C = (
    Participant("a", area=D(50), ratio=D(1), capacity=D(10)),
    Participant("b", area=D(30), ratio=D(2), capacity=D(20)),
    Participant("c", area=D(20), ratio=D(3), capacity=D(30)),
)


# --------------------------------------------------------------------------- methods


def test_consumption_share() -> None:
    result = common(rule("consumption", A, B, C), "100", use={"a": D(1), "b": D(1), "c": D(2)})
    assert amounts(result) == {"a": D("25.00"), "b": D("25.00"), "c": D("50.00")}
    basis = result.by_tenant()["c"].basis
    assert (basis.method, basis.unit, basis.figure, basis.total_figure) == (
        "consumption",
        "kWh",
        2,
        4,
    )
    assert basis.fraction == D("0.5")
    check_adds_up(result)


def test_area_share() -> None:
    result = common(rule("area", A, B, C), "1000")
    assert amounts(result) == {"a": D("500.00"), "b": D("300.00"), "c": D("200.00")}
    basis = result.by_tenant()["b"].basis
    assert (basis.unit, basis.figure, basis.total_figure, basis.days) == ("m²", 30, 100, 30)


def test_equal_share_hands_the_odd_cent_to_the_earliest() -> None:
    result = common(rule("equal", A, B, C), "100")
    assert amounts(result) == {"a": D("33.34"), "b": D("33.33"), "c": D("33.33")}
    assert result.total == D("100.00")


def test_fixed_ratio_share() -> None:
    result = common(rule("ratio", A, B, C), "60")
    assert amounts(result) == {"a": D("10.00"), "b": D("20.00"), "c": D("30.00")}


def test_capacity_share() -> None:
    result = common(rule("capacity", A, B, C), "0.06")
    assert amounts(result) == {"a": D("0.01"), "b": D("0.02"), "c": D("0.03")}
    assert result.by_tenant()["c"].basis.unit == "kVA"


def test_largest_remainder_goes_to_the_largest_fraction() -> None:
    # 10.00 by 1:1:1:... odd weights: exact 3.333, 3.333, 3.333 -> cents to earliest
    result = common(rule("ratio", A, B, C), "0.05")  # 1/6, 2/6, 3/6 of 5 cents
    assert amounts(result) == {"a": D("0.01"), "b": D("0.02"), "c": D("0.02")}
    check_adds_up(result)


def test_full_precision_cost_is_rounded_half_up_once() -> None:
    result = common(rule("equal", A, B), "10.005")
    assert result.total == D("10.01")
    assert amounts(result) == {"a": D("5.01"), "b": D("5.00")}


def test_owner_bears_a_fixed_percent_first() -> None:
    result = common(rule("area", A, B, C, owner_percent=D(10)), "100")
    assert result.owner_amount == D("10.00")
    assert amounts(result) == {"a": D("45.00"), "b": D("27.00"), "c": D("18.00")}
    assert sum(r.energy for r in result.records) == D("90.000")
    check_adds_up(result)


# --------------------------------------------------------------------------- stays


def test_join_mid_period_is_prorated_by_days() -> None:
    late = Participant("b", area=D(50), joined=at(11))  # 20 of 30 days
    result = common(rule("area", Participant("a", area=D(50)), late), "100")
    assert amounts(result) == {"a": D("60.00"), "b": D("40.00")}
    assert result.by_tenant()["b"].basis.days == 20


def test_leave_mid_period_is_prorated_by_days() -> None:
    gone = Participant("b", joined=at(1), left=at(11))  # 10 of 30 days
    result = common(rule("equal", Participant("a"), gone), "80")
    assert amounts(result) == {"a": D("60.00"), "b": D("20.00")}


def test_join_and_leave_in_the_same_period_part_days_count_by_share() -> None:
    short = Participant("b", joined=at(2, 12), left=at(4))  # 1.5 days
    result = common(rule("equal", Participant("a"), short), "63")
    assert result.by_tenant()["b"].basis.days == D("1.5")
    assert amounts(result) == {"a": D("60.00"), "b": D("3.00")}


def test_consumption_is_not_prorated_again() -> None:
    late = Participant("b", joined=at(16))
    result = common(rule("consumption", Participant("a"), late), "10", use={"a": D(3), "b": D(1)})
    assert amounts(result) == {"a": D("7.50"), "b": D("2.50")}


def test_a_dst_day_counts_as_one_day() -> None:
    london = ZoneInfo("Europe/London")
    march = BillingPeriod.explicit(
        datetime(2024, 3, 1, tzinfo=london), datetime(2024, 4, 1, tzinfo=london)
    )
    joined = Participant("b", joined=datetime(2024, 3, 31, tzinfo=london))  # 23-hour day
    r = rule("equal", Participant("a"), joined)
    result = share_common_cost(
        r, march, [CommonCost("lift", D(1), D("32"))], currency="GBP", timezone="Europe/London"
    )
    assert result.by_tenant()["b"].basis.days == 1
    assert amounts(result) == {"a": D("31.00"), "b": D("1.00")}


def test_tenants_outside_the_window_get_nothing() -> None:
    before = Participant("old", left=at(1))
    after = Participant("new", joined=datetime(2024, 5, 1, tzinfo=SH))
    result = common(rule("equal", Participant("a"), before, after), "10")
    assert amounts(result) == {"a": D("10.00")}


def test_excluded_tenant_gets_nothing() -> None:
    out = Participant("b", area=D(999), excluded=True)
    result = common(
        rule("area", Participant("a", area=D(10)), out, Participant("c", area=D(30))), "100"
    )
    assert amounts(result) == {"a": D("25.00"), "c": D("75.00")}


def test_excluded_tenant_needs_no_figure() -> None:
    r = rule("area", Participant("a", area=D(10)), Participant("b", excluded=True))
    assert common(r, "5").total == D("5.00")


def test_nobody_present_leaves_the_pool_unallocated_and_says_so() -> None:
    result = common(
        rule("equal", Participant("a", left=at(1)), Participant("b", excluded=True)), "10"
    )
    assert result.records == ()
    assert result.unallocated == D("10.00")
    assert [a.key for a in result.anomalies] == ["unallocated"]
    check_adds_up(result)


def test_all_zero_consumption_falls_back_to_equal_by_days() -> None:
    late = Participant("b", joined=at(16))
    result = common(rule("consumption", Participant("a"), late), "30", use={"a": D(0), "b": D(0)})
    assert amounts(result) == {"a": D("20.00"), "b": D("10.00")}
    basis = result.by_tenant()["a"].basis
    assert (basis.method, basis.fallback_from) == ("equal", "consumption")


def test_missing_consumption_is_an_error() -> None:
    with pytest.raises(SharingError) as err:
        common(rule("consumption", A, B), "10", use={"a": D(1)})
    assert err.value.key == "missing_consumption"


# --------------------------------------------------------------------------- TOU-priced common cost

TOU_TARIFF = tariff_from_dict(
    {
        "name": "common areas",
        "currency": CNY,
        "timezone": TZ,
        "versions": [
            {
                "effective": "2024-01-01T00:00:00+08:00",
                "energy": {
                    "kind": "tou",
                    "prices": {"peak": "0.40", "valley": "0.10"},
                    "calendar": {
                        "seasons": [
                            {
                                "name": "all year",
                                "schedules": {
                                    "weekday": [
                                        ["00:00", "valley"],
                                        ["07:00", "peak"],
                                        ["19:00", "valley"],
                                    ],
                                    "weekend": [["00:00", "valley"]],
                                },
                            }
                        ]
                    },
                },
            }
        ],
    }
)


def one_day(day: int) -> BillingPeriod:
    lo, hi = day_bounds(at(day).date(), TZ)
    return APRIL.part(lo, hi)


def test_common_cost_is_priced_by_the_tou_tariff() -> None:
    monday, sunday = one_day(1), one_day(7)
    flat_use = [D(1)] * 96
    weekday = price_common_meter(
        "lift", TOU_TARIFF, monday, UsageSeries(monday.start, 15, flat_use)
    )
    weekend = price_common_meter(
        "lift", TOU_TARIFF, sunday, UsageSeries(sunday.start, 15, flat_use)
    )
    assert weekday.energy == weekend.energy == 96
    assert weekday.amount == D("24.00")  # 48 kWh at 0.40 + 48 at 0.10
    assert weekend.amount == D("9.60")
    result = share_common_cost(rule("equal", A, B, C), monday, [weekday], currency=CNY, timezone=TZ)
    assert amounts(result) == {"a": D("8.00"), "b": D("8.00"), "c": D("8.00")}
    assert result.energy == 96
    assert sum(r.energy for r in result.records) == 96


def test_same_energy_at_peak_costs_more_than_in_the_valley() -> None:
    monday = one_day(1)
    night = [D(1) if i < 28 else D(0) for i in range(96)]  # 00:00-07:00
    noon = [D(1) if 40 <= i < 68 else D(0) for i in range(96)]  # 10:00-17:00
    a = price_common_meter("lift", TOU_TARIFF, monday, UsageSeries(monday.start, 15, night))
    b = price_common_meter("lift", TOU_TARIFF, monday, UsageSeries(monday.start, 15, noon))
    assert (a.amount, b.amount) == (D("2.80"), D("11.20"))


def test_a_group_of_common_meters_is_shared_as_one_pool() -> None:
    r = rule("equal", A, B, meters=("lift", "corridor"))
    costs = [CommonCost("lift", D(10), D("3.001")), CommonCost("corridor", D(5), D("2.004"))]
    result = share_common_cost(r, APRIL, costs, currency=CNY, timezone=TZ)
    assert (result.energy, result.cost, result.total) == (D(15), D("5.005"), D("5.01"))
    with pytest.raises(SharingError) as missing:
        share_common_cost(r, APRIL, costs[:1], currency=CNY, timezone=TZ)
    assert missing.value.key == "missing_meter_cost"
    with pytest.raises(SharingError) as extra:
        share_common_cost(
            r, APRIL, [*costs, CommonCost("pump", D(1), D(1))], currency=CNY, timezone=TZ
        )
    assert extra.value.key == "unknown_meter"


def test_common_cost_from_real_time_charges_sums_with_the_engine() -> None:
    monday = one_day(1)
    rated = price_common_meter(
        "lift", TOU_TARIFF, monday, UsageSeries(monday.start, 15, [D(1)] * 96)
    )
    again = CommonCost.from_charges("lift", rated.charges)
    assert again == rated


# --------------------------------------------------------------------------- line loss


def loss_rule(**extra: Any) -> SharingRule:
    return rule(extra.pop("method", "consumption"), A, B, C, kind="loss", **extra)


USE = {"a": D(100), "b": D(200), "c": D(100)}
SUBS = {"m-a": D(100), "m-b": D(200), "m-c": D(100), "lift": D(50)}


def test_loss_is_master_minus_all_submeters_at_the_master_average_price() -> None:
    result = share_line_loss(
        loss_rule(), APRIL, master_energy=D(500), sub_energy=SUBS, consumption=USE,
        master_cost=D("400"), currency=CNY, timezone=TZ,
    )  # fmt: skip
    loss = result.loss
    assert loss is not None
    assert (loss.energy, loss.percent, loss.unit_price, loss.amount) == (
        D(50),
        D(10),
        D("0.8"),
        D(40),
    )
    assert amounts(result) == {"a": D("10.00"), "b": D("20.00"), "c": D("10.00")}
    assert result.anomalies == ()
    assert result.energy == 50


def test_loss_by_another_method_and_a_fixed_unit_price() -> None:
    r = loss_rule(method="area", loss_pricing="unit_price", loss_unit_price=D("0.5"))
    result = share_line_loss(
        r, APRIL, master_energy=D(500), sub_energy=SUBS, currency=CNY, timezone=TZ
    )
    assert result.total == D("25.00")
    assert amounts(result) == {"a": D("12.50"), "b": D("7.50"), "c": D("5.00")}


def test_loss_priced_by_the_tariff_follows_the_master_profile() -> None:
    monday = one_day(1)
    profile = [D(2) if 40 <= i < 68 else D(0) for i in range(96)]  # all at peak
    r = loss_rule(loss_pricing="tariff")
    result = share_line_loss(
        r, monday, master_energy=D(56), sub_energy={"m": D(46)}, consumption=USE,
        tariff=TOU_TARIFF, master_usage=UsageSeries(monday.start, 15, profile), currency=CNY,
        timezone=TZ,
    )  # fmt: skip
    assert result.loss is not None
    assert result.loss.amount == D("4.00")  # 10 kWh at the 0.40 peak price
    assert {c.tou_period for c in result.loss.charges} == {"peak"}
    with pytest.raises(SharingError) as err:
        line_loss(r, monday, master_energy=D(56), sub_energy={"m": D(46)})
    assert err.value.key == "missing_tariff"


def test_negative_loss_is_flagged_and_not_credited_by_default() -> None:
    result = share_line_loss(
        loss_rule(), APRIL, master_energy=D(400), sub_energy=SUBS, consumption=USE,
        master_cost=D(320), currency=CNY, timezone=TZ,
    )  # fmt: skip
    assert result.loss is not None
    assert result.loss.energy == -50
    assert result.total == 0
    assert all(r.amount == 0 for r in result.records)
    [flag] = result.anomalies
    assert (flag.key, flag.energy, flag.credited) == ("negative_loss", D(-50), False)


def test_negative_loss_is_credited_only_when_allowed() -> None:
    result = share_line_loss(
        loss_rule(allow_credit=True), APRIL, master_energy=D(400), sub_energy=SUBS,
        consumption=USE, master_cost=D(320), currency=CNY, timezone=TZ,
    )  # fmt: skip
    assert result.total == D("-40.00")
    assert amounts(result) == {"a": D("-10.00"), "b": D("-20.00"), "c": D("-10.00")}
    [flag] = result.anomalies
    assert (flag.key, flag.credited, flag.amount) == ("negative_loss", True, D("-40.00"))
    check_adds_up(result)


@pytest.mark.parametrize(
    ("master", "flagged"), [(D(500), True), (D("489.2"), True), (D("488.9"), False)]
)
def test_evasion_is_flagged_above_the_threshold(master: D, flagged: bool) -> None:
    # loss = master - 450: 500 -> 10 %, 489.2 -> 8.01 %, 488.9 -> 7.96 %
    result = share_line_loss(
        loss_rule(evasion_percent=D(8)), APRIL, master_energy=master, sub_energy=SUBS,
        consumption=USE, master_cost=D(400), currency=CNY, timezone=TZ,
    )  # fmt: skip
    keys = [a.key for a in result.anomalies]
    assert keys == (["evasion_suspected"] if flagged else [])
    if flagged:
        assert result.anomalies[0].percent == {D(500): D(10), D("489.2"): D("8.01")}[master]
        assert result.anomalies[0].threshold == 8


def test_loss_exactly_at_the_threshold_is_not_evasion() -> None:
    result = share_line_loss(
        loss_rule(evasion_percent=D(10)), APRIL, master_energy=D(500), sub_energy=SUBS,
        consumption=USE, master_cost=D(400), currency=CNY, timezone=TZ,
    )  # fmt: skip
    assert result.anomalies == ()


def test_average_pricing_needs_the_master_cost() -> None:
    with pytest.raises(SharingError) as err:
        line_loss(loss_rule(), APRIL, master_energy=D(500), sub_energy=SUBS)
    assert err.value.key == "missing_master_cost"


def test_master_energy_from_hand_entered_readings_is_interpolated() -> None:
    readings = [
        (at(1) - timedelta(days=1), D(1000)),
        (at(11), D(2210)),
        (datetime(2024, 5, 11, tzinfo=SH), D(5210)),
    ]
    # 110 kWh/day up to 11 April, then 100 kWh/day
    assert master_energy_between(readings, APRIL.start, APRIL.end) == D(110 * 10 + 100 * 20)
    with pytest.raises(SharingError) as err:
        master_energy_between(readings[1:], APRIL.start, APRIL.end)
    assert err.value.key == "master_readings_do_not_cover"
    with pytest.raises(SharingError) as down:
        master_energy_between([(at(1), D(5)), (at(30), D(4))], at(1), at(30))
    assert down.value.key == "master_counter_decreased"


# --------------------------------------------------------------------------- cadence


def test_daily_windows_cover_the_period_in_local_days() -> None:
    days = sharing_windows(APRIL, "daily", TZ)
    assert len(days) == 30
    assert days[0].start == APRIL.start
    assert days[-1].end == APRIL.end
    assert all(d.cycle_start == APRIL.start for d in days)
    assert sharing_windows(APRIL, "period", TZ) == [APRIL]
    london = ZoneInfo("Europe/London")
    march = BillingPeriod.explicit(
        datetime(2024, 3, 30, tzinfo=london), datetime(2024, 4, 1, tzinfo=london)
    )
    hours = [
        (d.end - d.start) / timedelta(hours=1)
        for d in sharing_windows(march, "daily", "Europe/London")
    ]
    assert hours == [24, 23]


def test_daily_shares_charge_only_those_present_that_day() -> None:
    late = Participant("b", joined=at(16))
    r = rule("equal", Participant("a"), late, cadence="daily")
    totals: dict[str, D] = {}
    for day in sharing_windows(APRIL, r.cadence, TZ):
        result = common(r, "3", period=day)
        check_adds_up(result)
        for rec in result.records:
            totals[rec.tenant] = totals.get(rec.tenant, D(0)) + rec.amount
    assert totals == {"a": D("15") * 3 + D("15") * D("1.50"), "b": D("15") * D("1.50")}


# --------------------------------------------------------------------------- dicts and errors


def test_rule_round_trips_through_json() -> None:
    r = SharingRule(
        name="Loss", kind="loss", method="area",
        participants=(Participant("a", area=D("12.5"), joined=datetime(2024, 4, 3, tzinfo=UTC)),
                      Participant("b", area=D(3), excluded=True)),
        owner_percent=D("5"), cadence="daily", loss_pricing="unit_price",
        loss_unit_price=D("0.61"), evasion_percent=D("8"), allow_credit=True,
    )  # fmt: skip
    data = json.loads(json.dumps(sharing_rule_to_dict(r)))
    assert sharing_rule_from_dict(data) == r
    assert data["participants"][0]["area"] == "12.5"


def test_minimal_dict_uses_defaults() -> None:
    r = sharing_rule_from_dict({"name": "x", "meters": ["lift"], "participants": [{"tenant": "a"}]})
    assert (r.kind, r.method, r.cadence, r.loss_pricing, r.allow_credit) == (
        "common", "consumption", "period", "master_average", False,
    )  # fmt: skip


BASE: dict[str, Any] = {"name": "x", "kind": "common", "meters": ["lift"], "method": "area",
                        "participants": [{"tenant": "a", "area": "10"}]}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "path"),
    [
        ({"method": "votes"}, "invalid_choice", "method"),
        ({"participants": [{"tenant": "a"}]}, "missing_area", "participants[0]"),
        ({"participants": [{"tenant": "a", "area": "-1"}]}, "negative_number",
         "participants[0].area"),
        ({"participants": [{"tenant": "a", "area": 1.5}]}, "invalid_number",
         "participants[0].area"),
        ({"participants": [{"tenant": "a", "area": "1"}, {"tenant": "a", "area": "2"}]},
         "duplicate_tenant", "participants[1]"),
        ({"participants": []}, "no_participants", "participants"),
        ({"participants": [{"tenant": "a", "area": "1", "joined": "2024-04-02T00:00:00"}]},
         "naive_datetime", "participants[0].joined"),
        ({"participants": [{"tenant": "a", "area": "1", "joined": "2024-04-02T00:00:00+00:00",
                            "left": "2024-04-01T00:00:00+00:00"}]}, "left_before_joined", "left"),
        ({"meters": []}, "no_meters", "meters"),
        ({"kind": "loss"}, "meters_on_loss", "meters"),
        ({"kind": "loss", "meters": [], "loss_pricing": "unit_price"}, "missing_unit_price",
         "loss_unit_price"),
        ({"owner_percent": "101"}, "invalid_percent", "owner_percent"),
        ({"allow_credit": "yes"}, "invalid_flag", "allow_credit"),
        ({"colour": "red"}, "unknown_field", ""),
        ({"name": ""}, "invalid_text", "name"),
    ],
)  # fmt: skip
def test_bad_rules_raise_with_a_translation_key(
    change: dict[str, Any], key: str, path: str
) -> None:
    with pytest.raises(SharingError) as err:
        sharing_rule_from_dict({**BASE, **change})
    assert (err.value.key, err.value.path) == (key, path)


def test_rules_of_the_wrong_kind_are_refused() -> None:
    with pytest.raises(SharingError) as err:
        line_loss(rule("equal", A), APRIL, master_energy=D(1), sub_energy={})
    assert err.value.key == "not_a_loss_rule"
    with pytest.raises(SharingError) as err2:
        share_common_cost(loss_rule(), APRIL, [], currency=CNY, timezone=TZ)
    assert err2.value.key == "not_a_common_rule"


# --------------------------------------------------------------------------- explanations


def test_explain_in_english_and_chinese() -> None:
    late = Participant("b", area=D(30), joined=at(11))
    result = common(rule("area", Participant("a", area=D(70)), late), "100", energy="123.4")
    rec = result.by_tenant()["b"]
    en = rec.explain()
    assert en == (
        "Common area 'Lifts' (123.4 kWh, 100.00 CNY) shared by floor area: "
        "your 30 m² of 100 m², 20/30 days → 22.22% = 22.22 CNY"
    )
    zh = explain(rec, "zh-Hans")
    assert zh == (
        "公共区域“Lifts”（123.4 kWh，100.00 CNY）按面积分摊："
        "您的 30 m²，合计 100 m²，在住 20/30 天 → 22.22% = 22.22 CNY"
    )
    with pytest.raises(SharingError):
        rec.explain("fr")


def test_explain_mentions_fallback_owner_and_loss() -> None:
    r = rule("consumption", A, B, kind="loss", owner_percent=D(10), loss_pricing="unit_price",
             loss_unit_price=D(1))  # fmt: skip
    result = share_line_loss(
        r, APRIL, master_energy=D(10), sub_energy={}, consumption={"a": D(0), "b": D(0)},
        currency=CNY, timezone=TZ,
    )  # fmt: skip
    en = result.records[0].explain()
    assert en.startswith("Line loss 'Lifts' (10 kWh, 10.00 CNY) shared equally")
    assert "nobody had any consumption" in en
    assert "after 10% borne by the owner" in en
    zh = result.records[0].explain("zh-Hans")
    assert zh.startswith("线损“Lifts”")
    assert "业主先承担 10%" in zh


def test_record_to_dict_is_json_ready() -> None:
    result = common(rule("equal", A, B, C), "100")
    data = json.loads(json.dumps(result.records[0].to_dict()))
    assert data["amount"] == "33.34"
    assert data["basis"]["method"] == "equal"
    assert data["basis"]["percent"] == "33.33"
    assert data["basis"]["days"] == "30"
