"""The intervals prepaid charging rates at polls are the ones a bill rebuilds; same prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise

from custom_components.prepaid_meter.engine.calendars import BillingPeriod
from custom_components.prepaid_meter.engine.intervals import IntervalUse
from custom_components.prepaid_meter.engine.prepaid import (
    cut,
    poll_interval,
    price_grid,
    share,
    tenant_usage,
)
from custom_components.prepaid_meter.engine.rating import (
    RATING_CONTEXT,
    open_period,
    rate_batch,
    rate_interval,
)
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict

T0 = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
PERIOD = BillingPeriod.explicit(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
TARIFF = tariff_from_dict(
    {
        "name": "tou",
        "currency": "CNY",
        "timezone": "Asia/Kathmandu",
        "versions": [
            {
                "effective": "2026-01-01T00:00:00+00:00",
                "energy": {
                    "kind": "tou",
                    "prices": {"valley": "0.40", "peak": "1.20"},
                    "calendar": {
                        "seasons": [
                            {"schedules": {"weekday": [["00:00", "valley"], ["13:30", "peak"]]}}
                        ]
                    },
                },
                "tiers": {"blocks": [{"upto": "3", "adder": "0"}, {"upto": None, "adder": "0.3"}]},
                "taxes": [{"name": "VAT", "percent": "13", "on": ["energy"]}],
            }
        ],
    }
)


def test_the_price_grid_follows_switches_and_the_zone() -> None:
    # Switches at 13:30 local in a +05:45 zone: only a 15-minute grid lies on both.
    assert price_grid(TARIFF) == 15
    flat = tariff_from_dict({"name": "f", "currency": "CNY",
                             "timezone": "UTC", "versions": [{"effective": "2026-01-01T00:00:00Z",
                             "energy": {"kind": "flat", "price": "1"}}]})  # fmt: skip
    assert price_grid(flat) is None


def test_a_gap_is_spread_by_time_and_adds_up() -> None:
    pieces = cut([IntervalUse(T0, T0 + timedelta(minutes=40), Decimal("4"))], 15)
    assert [(p.start.minute, p.end.minute) for p in pieces] == [(0, 15), (15, 30), (30, 40)]
    assert sum(p.energy for p in pieces) == 4
    assert pieces[0].energy == Decimal("1.5")


def test_polls_rated_one_by_one_equal_the_bill_of_their_readings() -> None:
    """Two meters, one idle for a while and one offline over the 07:45 UTC (13:30 local) switch."""
    grid = price_grid(TARIFF)
    minute = timedelta(minutes=1)
    a = [(T0 + k * 7 * minute, Decimal(k) / 3) for k in range(12)]
    b = [(T0, Decimal(0)), (T0 + 14 * minute, Decimal("0.5")), (T0 + 70 * minute, Decimal("2.7"))]
    # Real time: at each reading instant, the tenant's deltas since its last reading.
    state = open_period(TARIFF, PERIOD)
    charged = Decimal(0)
    last: datetime | None = None
    values = {"a": a[0][1], "b": b[0][1]}
    instants = sorted({t for t, _ in a} | {t for t, _ in b})
    for at in instants:
        used = Decimal(0)
        for name, series in (("a", a), ("b", b)):
            for t, v in series:
                if t == at:
                    used += v - values[name]
                    values[name] = v
        interval = poll_interval(last, at, PERIOD, used)
        last = at
        for piece in cut([interval] if interval else [], grid):
            rated = rate_interval(TARIFF, state, piece)
            state = rated.state
            with localcontext(RATING_CONTEXT):
                charged += rated.total
    # The bill: each meter's intervals between its readings, combined by the same rule.
    meters = [[IntervalUse(t0, t1, v1 - v0) for (t0, v0), (t1, v1) in pairwise(s)] for s in (a, b)]
    usage = tenant_usage(meters, grid)
    batch = rate_batch(TARIFF, open_period(TARIFF, PERIOD), usage)
    assert batch.total == charged
    assert batch.state.tier_use == state.tier_use == Decimal("11") / 3 + Decimal("2.7")
    assert {c.tou_period for c in batch.charges if c.kind == "energy"} == {"valley", "peak"}


def test_a_tenant_charge_is_split_over_its_meters_exactly() -> None:
    parts = share(Decimal("10"), [Decimal(1), Decimal(1), Decimal(1)])
    assert sum(parts) == 10
    assert parts[0] == Decimal("3.33333333333333333333")
    assert share(Decimal("2.5"), [Decimal(3)]) == [Decimal("2.5")]
