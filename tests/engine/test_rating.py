"""Rating every tariff kind, real time against batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from custom_components.prepaid_meter.engine.calendars import (
    BillingPeriod,
    billing_period,
    day_bounds,
)
from custom_components.prepaid_meter.engine.intervals import IntervalUse
from custom_components.prepaid_meter.engine.rating import (
    Charge,
    PriceSeries,
    RatingError,
    RatingState,
    UsageSeries,
    accrue_standing,
    close_period,
    open_period,
    rate_batch,
    rate_interval,
    rate_period,
    summarize,
)
from custom_components.prepaid_meter.engine.tariffs import Tariff, tariff_from_dict

LONDON = "Europe/London"
JAN = datetime(2024, 1, 1, tzinfo=UTC)


def make(*versions: dict[str, Any], tz: str = LONDON, **extra: Any) -> Tariff:
    data = {"name": "test", "currency": "GBP", "timezone": tz, "versions": list(versions)}
    data.update(extra)
    return tariff_from_dict(data)


def version(effective: str = "2023-01-01T00:00:00+00:00", **parts: Any) -> dict[str, Any]:
    return {"effective": effective, **parts}


FLAT = {"kind": "flat", "price": "0.25"}
TOU = {
    "kind": "tou",
    "prices": {"peak": "0.40", "off-peak": "0.10"},
    "calendar": {
        "seasons": [
            {
                "name": "all year",
                "schedules": {
                    "weekday": [["00:00", "off-peak"], ["07:00", "peak"], ["19:00", "off-peak"]],
                    "weekend": [["00:00", "off-peak"]],
                },
            }
        ]
    },
}


def month(tz: str = LONDON, at: datetime = JAN) -> BillingPeriod:
    return billing_period(at + timedelta(days=1), 1, tz)


def grid(period: BillingPeriod, energy: Sequence[D], minutes: int = 15) -> UsageSeries:
    return UsageSeries(period.start, minutes, list(energy))


def live(
    tariff: Tariff, state: RatingState, usage: UsageSeries, series: PriceSeries | None = None
) -> tuple[list[Charge], RatingState]:
    charges: list[Charge] = []
    for interval in usage.intervals():
        rated = rate_interval(tariff, state, interval, series)
        charges.extend(rated.charges)
        state = rated.state
    return charges, state


def total(charges: Sequence[Charge]) -> D:
    return sum((c.amount for c in charges), D(0))


def both(
    tariff: Tariff, period: BillingPeriod, usage: UsageSeries, **kw: Any
) -> tuple[list[Charge], list[Charge]]:
    """Rate in real time and in batch; assert equal totals and states; return both."""
    series = kw.pop("series", None)
    state = open_period(tariff, period, **kw)
    batch = rate_batch(tariff, state, usage, series)
    rt, rt_state = live(tariff, state, usage, series)
    assert total(rt) == batch.total
    assert rt_state == batch.state
    closed_b = close_period(tariff, batch.state)
    closed_r = close_period(tariff, rt_state)
    assert closed_b == closed_r
    return rt + list(closed_r.charges), list(batch.charges) + list(closed_b.charges)


def test_flat() -> None:
    tariff = make(version(energy=FLAT))
    period = month()
    usage = grid(period, [D("0.5")] * 4 * 24 * 31)
    rt, batch = both(tariff, period, usage)
    assert total(batch) == D("0.5") * 4 * 24 * 31 * D("0.25")
    (line,) = batch
    assert line.kind == "energy"
    assert line.intervals == 4 * 24 * 31
    assert line.start == period.start
    assert line.end == period.end
    assert len(rt) == 4 * 24 * 31


def test_tou_on_the_25_hour_day_prices_each_interval_by_local_start() -> None:
    tariff = make(version(energy=TOU))
    # The autumn change falls on a Sunday (25 hours, all off-peak); rate it with
    # the Monday after it (24 hours, 12 of them peak) in one explicit period.
    long_start, long_end = day_bounds(date(2024, 10, 27), LONDON)
    start, end = day_bounds(date(2024, 10, 28), LONDON)
    period = BillingPeriod.explicit(long_start, end)
    n = (end - long_start) // timedelta(minutes=15)
    assert n == 100 + 96
    usage = grid(period, [D(1)] * n)
    _, batch = both(tariff, period, usage)
    summary = summarize(batch)
    assert summary.energy_by_tou_period["peak"] == 48  # Monday 07:00-19:00 local
    assert summary.energy_by_tou_period["off-peak"] == 148
    assert long_end == start


def test_tou_on_a_23_hour_weekday_in_new_york() -> None:
    tz = "America/New_York"
    # US changes fall on Sundays; a calendar without weekend days prices it as a weekday.
    start, end = day_bounds(date(2024, 3, 10), tz)
    assert end - start == timedelta(hours=23)
    seasons = TOU["calendar"]["seasons"]  # type: ignore[index]
    tariff = make(version(energy={**TOU, "calendar": {"weekend": [], "seasons": seasons}}), tz=tz)
    period = BillingPeriod.explicit(start, end)
    usage = grid(period, [D(1)] * 92)
    _, batch = both(tariff, period, usage)
    summary = summarize(batch)
    assert summary.energy_by_tou_period["peak"] == 48  # 07:00-19:00 EDT, 12 hours
    assert summary.energy_by_tou_period["off-peak"] == 44  # 11 hours, one lost at 02:00


BEIJING_TIERS = {
    "mode": "price",
    "blocks": [
        {"upto": "240", "price": "0.4883"},
        {"upto": "400", "price": "0.5383"},
        {"upto": None, "price": "0.7883"},
    ],
}


def test_plain_tier_prices_with_a_crossing_in_mid_interval() -> None:
    tariff = make(version(tiers=BEIJING_TIERS), tz="Asia/Shanghai")
    period = month("Asia/Shanghai")
    # 100 hourly intervals of 5 kWh = 500 kWh; 240 is crossed inside the 49th interval
    # (235 -> 240 -> 245 is the 48th/49th boundary) and 400 exactly at an end.
    energy = [D(5)] * 47 + [D(7)] + [D(5)] * 52
    usage = grid(period, energy, 60)
    rt, batch = both(tariff, period, usage)
    summary = summarize(batch)
    assert summary.energy_by_tier == {1: D(240), 2: D(160), 3: D(102)}
    expected = D(240) * D("0.4883") + D(160) * D("0.5383") + D(102) * D("0.7883")
    assert summary.total == expected
    crossing = [c for c in rt if c.start == period.start + timedelta(hours=47)]
    assert [(c.tier, c.quantity) for c in crossing] == [(1, D(5)), (2, D(2))]


def test_tier_adder_on_top_of_tou_price() -> None:
    tiers = {
        "mode": "adder",
        "blocks": [
            {"upto": "10", "adder": "0"},
            {"upto": None, "adder": "0.05"},
        ],
    }
    tariff = make(version(energy=TOU, tiers=tiers))
    period = month()
    usage = grid(period, [D("0.25")] * 96 * 2)  # Monday and Tuesday 1-2 Jan 2024
    rt, batch = both(tariff, period, usage)
    assert {(c.tou_period, c.tier, c.unit_price) for c in batch} == {
        ("off-peak", 1, D("0.10")),
        ("peak", 1, D("0.40")),
        ("peak", 2, D("0.45")),
        ("off-peak", 2, D("0.15")),
    }
    assert total(rt) == total(batch)


def test_yearly_tiers_carry_over_periods_and_reset_at_new_year() -> None:
    tiers = {"basis": "year", "mode": "price", "blocks": [
        {"upto": "100", "price": "1"}, {"upto": None, "price": "2"}]}  # fmt: skip
    tariff = make(version("2023-01-01T00:00:00+00:00", tiers=tiers), tz="UTC")
    dec = billing_period(datetime(2023, 12, 5, tzinfo=UTC), 1, "UTC")
    first = rate_period(tariff, dec, grid(dec, [D(90)], 60), tier_use=D(0))
    assert first.state.tier_use == 90
    jan = billing_period(datetime(2024, 1, 5, tzinfo=UTC), 1, "UTC")
    second = rate_period(tariff, jan, grid(jan, [D(20)], 60), previous=first.state)
    assert second.total == 20  # a new year: back to tier 1
    nov = billing_period(datetime(2023, 11, 5, tzinfo=UTC), 1, "UTC")
    carried = open_period(tariff, dec, rate_period(tariff, nov, grid(nov, [D(95)], 60)).state)
    assert carried.tier_use == 95
    assert rate_batch(tariff, carried, grid(dec, [D(10)], 60)).total == 5 * 1 + 5 * 2


def test_price_change_in_mid_interval_is_split_by_time() -> None:
    tariff = make(
        version(energy=FLAT, label="old"),
        version("2024-01-02T10:05:00+00:00", energy={"kind": "flat", "price": "0.40"}, label="new"),
    )
    period = month()
    usage = grid(period, [D(3)] * 96 * 2)  # 3 kWh every 15 minutes, 1-2 January
    rt, batch = both(tariff, period, usage)
    straddling = [c for c in rt if c.start == datetime(2024, 1, 2, 10, tzinfo=UTC)]
    assert [(c.version, c.quantity) for c in straddling] == [("old", D(1)), ("new", D(2))]
    old = D(3) * (96 + 40) + 1
    assert total(batch) == old * D("0.25") + (D(3) * 96 * 2 - old) * D("0.40")


def test_price_series_with_fallback_and_mid_interval_change() -> None:
    tariff = make(version(energy={"kind": "dynamic", "fallback": "0.30"}))
    period = month()
    series = PriceSeries.of(
        [
            (datetime(2024, 1, 1, 1, tzinfo=UTC), D("0.20")),
            (datetime(2024, 1, 1, 1, 30, tzinfo=UTC), D("-0.05")),  # negative spot price
            (datetime(2024, 1, 1, 2, 10, tzinfo=UTC), D("0.50")),
        ]
    )
    usage = grid(period, [D(1)] * 12)  # 00:00 - 03:00
    rt, batch = both(tariff, period, usage, series=series)
    first, second = D("0.666666666"), D("0.333333334")  # 10 and 5 minutes, cut to 1e-9
    expected = 4 * D("0.30") + 2 * D("0.20") + 2 * D("-0.05")
    expected += first * D("-0.05") + second * D("0.50") + 3 * D("0.50")
    assert total(batch) == expected
    straddling = [c for c in rt if c.start == datetime(2024, 1, 1, 2, tzinfo=UTC)]
    assert [(c.unit_price, c.quantity) for c in straddling] == [
        (D("-0.05"), first),
        (D("0.50"), second),
    ]


def test_price_series_without_cover_or_fallback_is_an_error() -> None:
    tariff = make(version(energy={"kind": "dynamic"}))
    period = month()
    state = open_period(tariff, period)
    with pytest.raises(RatingError) as err:
        rate_batch(tariff, state, grid(period, [D(1)]))
    assert err.value.key == "no_price"


@pytest.mark.parametrize(("window", "expected_kw"), [(15, D(20)), (30, D(14))])
def test_demand_charge_on_maximum_window(window: int, expected_kw: D) -> None:
    tariff = make(version(energy=FLAT, demand={"price": "44", "window_minutes": window}))
    period = month()
    energy = [D(1)] * 96
    energy[40], energy[41] = D(5), D(2)  # 10:00-10:30: 20 kW then 8 kW
    _rt, batch = both(tariff, period, grid(period, energy))
    (demand,) = [c for c in batch if c.kind == "demand"]
    assert demand.quantity == expected_kw
    assert demand.amount == expected_kw * 44
    assert demand.unit == "kW"
    assert demand.start == datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_demand_window_shorter_than_interval_is_refused() -> None:
    tariff = make(version(energy=FLAT, demand={"price": "44", "window_minutes": 15}))
    period = month()
    with pytest.raises(RatingError) as err:
        rate_batch(tariff, open_period(tariff, period), grid(period, [D(1)], 60))
    assert err.value.key == "demand_window_shorter_than_interval"


def test_capacity_charge_per_kva_month_pro_rated() -> None:
    tariff = make(version(energy=FLAT, capacity={"price": "24"}), tz="Asia/Shanghai")
    period = month("Asia/Shanghai")
    whole = rate_period(tariff, period, grid(period, []), capacity_kva=D(315))
    (cap,) = [c for c in whole.charges if c.kind == "capacity"]
    assert cap.amount == D(24) * 315
    assert cap.quantity == 315
    assert cap.unit == "kVA·month"
    half = period.part(period.start, period.start + timedelta(days=15))
    part = rate_period(tariff, half, grid(half, []), capacity_kva=D(315))
    assert part.total == (D(24) * 315 * 15 / 31).quantize(D("1e-20"))


def test_standing_charges_per_day_and_month_pro_rated_and_accrued_daily() -> None:
    standing = [
        {"name": "daily", "amount": "0.60", "per": "day"},
        {"name": "monthly", "amount": "12", "per": "month"},
    ]
    tariff = make(version(energy=FLAT, standing=standing))
    period = billing_period(datetime(2024, 3, 10, tzinfo=UTC), 1, LONDON)  # 31 days, one of 23 h
    closed = rate_period(tariff, period, grid(period, []))
    by_name = {c.name: c.amount for c in closed.charges}
    assert by_name == {"daily": D("0.60") * 31, "monthly": D(12)}
    # Accrued day by day (prepaid) it adds up to exactly the same.
    state = open_period(tariff, period)
    daily = D(0)
    at = period.start
    while at < period.end:
        at = at + timedelta(hours=9, minutes=17)
        rated = accrue_standing(tariff, state, at)
        daily += rated.total
        state = rated.state
    daily += close_period(tariff, state).total
    assert daily == closed.total
    # A move-out on 11 March at noon: 10.5 days.
    part = period.part(period.start, datetime(2024, 3, 11, 12, tzinfo=UTC))
    moved = rate_period(tariff, part, grid(part, []))
    by_name = {c.name: c.amount for c in moved.charges}
    assert by_name["daily"] == D("0.60") * D("10.5")
    assert by_name["monthly"] == (D(12) * D("10.5") / 31).quantize(D("1e-20"))


def test_minimum_charge_replaces_a_lower_total_and_is_not_added() -> None:
    tariff = make(version(energy=FLAT, minimum={"amount": "20"}))
    period = month()
    low = rate_period(tariff, period, grid(period, [D(10)]))  # 2.50 of energy
    assert low.total == 20
    (uplift,) = [c for c in low.charges if c.kind == "minimum"]
    assert uplift.amount == D("17.50")
    high = rate_period(tariff, period, grid(period, [D(100)]))  # 25.00
    assert high.total == 25
    assert all(c.kind != "minimum" for c in high.charges)


def test_taxes_on_chosen_kinds() -> None:
    tariff = make(
        version(
            energy=FLAT,
            standing=[{"name": "s", "amount": "1", "per": "day"}],
            taxes=[
                {"name": "VAT", "percent": "5", "on": ["energy", "standing"]},
                {"name": "CCL", "percent": "10", "on": ["energy"]},
            ],
        )
    )
    period = month()
    rt, batch = both(tariff, period, grid(period, [D(4)] * 8))
    summary = summarize(batch)
    assert summary.by_kind["energy"] == 8
    assert summary.by_kind["standing"] == 31
    assert summary.by_kind["tax"] == D("0.05") * 39 + D("0.10") * 8
    taxes = {(c.name, c.taxed_kind): c.amount for c in batch if c.kind == "tax"}
    assert taxes == {
        ("VAT", "energy"): D("0.40"),
        ("CCL", "energy"): D("0.80"),
        ("VAT", "standing"): D("1.55"),
    }
    assert total(rt) == total(batch)


@pytest.mark.parametrize(("commodity", "unit"), [("water", "m³"), ("gas", "m³"), ("heating", "GJ")])
def test_other_commodities_carry_their_unit(commodity: str, unit: str) -> None:
    tariff = make(version(energy=FLAT), commodity=commodity, unit=unit)
    period = month()
    rated = rate_period(tariff, period, grid(period, [D("1.5")], 60))
    assert rated.charges[0].unit == unit


def test_refusals() -> None:
    tariff = make(version(energy=FLAT))
    period = month()
    state = open_period(tariff, period)
    first = rate_interval(
        tariff, state, IntervalUse(period.start, period.start + timedelta(minutes=15), D(1))
    )
    with pytest.raises(RatingError) as err:
        rate_interval(
            tariff,
            first.state,
            IntervalUse(period.start, period.start + timedelta(minutes=15), D(1)),
        )
    assert err.value.key == "already_rated"
    with pytest.raises(RatingError) as err:
        rate_interval(
            tariff, state, IntervalUse(period.end, period.end + timedelta(minutes=15), D(1))
        )
    assert err.value.key == "outside_period"
    with pytest.raises(RatingError) as err:
        rate_batch(tariff, state, grid(period, [D(-1)]))
    assert err.value.key == "negative_energy"
    closed = close_period(tariff, state)
    with pytest.raises(RatingError) as err:
        close_period(tariff, closed.state)
    assert err.value.key == "period_closed"


def test_batch_of_interval_records_equals_batch_of_series() -> None:
    tariff = make(
        version(energy=TOU, tiers={"blocks": [{"upto": "50"}, {"upto": None, "adder": "1"}]})
    )
    period = month()
    usage = grid(period, [D(i % 7) / 3 for i in range(500)])
    state = open_period(tariff, period)
    assert rate_batch(tariff, state, usage.intervals()) == rate_batch(tariff, state, usage)
