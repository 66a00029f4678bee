"""Batch rating speed: 1,000 meters x one month of 15-minute intervals, TOU plus tiers.

Inputs (tariff, billing period, every meter's 2,880 interval energies as
Decimal) are built before the clock starts; the timed region rates every
meter's month with `rate_batch`, starting from an empty classification cache,
so the one-off cost of classifying the month's intervals under the tariff is
included. A sample of meters is re-rated interval by interval afterwards to
check the batch totals against real time (outside the timed region).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.engine.rating import (
    RATING_CONTEXT,
    UsageSeries,
    clear_plan_cache,
    open_period,
    rate_batch,
    rate_interval,
)
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict

METERS = 1000
MINUTES = 15
TARGET = 1_000_000
SEED = 20240401

#: A Chinese two-season time-of-use tariff with residential-style tier adders.
TARIFF = {
    "name": "bench TOU + tiers",
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "versions": [
        {
            "effective": "2024-01-01T00:00:00+08:00",
            "energy": {
                "kind": "tou",
                "prices": {
                    "sharp": "1.2193",
                    "peak": "0.9876",
                    "flat": "0.6402",
                    "valley": "0.3125",
                },
                "calendar": {
                    "holidays": ["2024-04-04", "2024-04-05"],
                    "seasons": [
                        {
                            "name": "summer",
                            "from": "07-01",
                            "to": "09-30",
                            "schedules": {
                                "weekday": [
                                    ["00:00", "valley"],
                                    ["08:00", "peak"],
                                    ["11:00", "sharp"],
                                    ["13:00", "peak"],
                                    ["19:00", "sharp"],
                                    ["21:00", "flat"],
                                    ["23:00", "valley"],
                                ]
                            },
                        },
                        {
                            "name": "rest of year",
                            "from": "10-01",
                            "to": "06-30",
                            "schedules": {
                                "weekday": [
                                    ["00:00", "valley"],
                                    ["08:00", "peak"],
                                    ["12:00", "flat"],
                                    ["17:00", "peak"],
                                    ["21:00", "flat"],
                                    ["23:00", "valley"],
                                ],
                                "weekend": [["00:00", "valley"], ["08:00", "flat"]],
                            },
                        },
                    ],
                },
            },
            "tiers": {
                "basis": "period",
                "mode": "adder",
                "blocks": [
                    {"upto": "240", "adder": "0"},
                    {"upto": "400", "adder": "0.05"},
                    {"upto": None, "adder": "0.30"},
                ],
            },
            "taxes": [{"name": "VAT", "percent": "13", "on": ["energy"]}],
        }
    ],
}


def _inputs() -> tuple[Any, Any, list[UsageSeries]]:
    tariff = tariff_from_dict(TARIFF)
    period = billing_period(datetime.fromisoformat("2024-04-10T00:00:00+08:00"), 1, tariff.zone)
    n = (period.end - period.start).days * 24 * 60 // MINUTES  # April: 30 days, 2,880
    rng = random.Random(SEED)
    # Energies in Wh steps (0.000-0.399 kWh per 15 minutes); one Decimal object per
    # distinct value keeps 2.88 million inputs in memory without changing the arithmetic.
    pool = [Decimal(i) / 1000 for i in range(400)]
    usages = []
    for _ in range(METERS):
        scale = rng.randint(20, 100)  # meters of different sizes cross different tiers
        usages.append(
            UsageSeries(
                period.start,
                MINUTES,
                [pool[min(399, rng.randint(0, 4 * scale))] for _ in range(n)],
            )
        )
    return tariff, period, usages


def run() -> dict[str, Any]:
    """Rate every meter's month in batch and report the throughput."""
    tariff, period, usages = _inputs()
    intervals = sum(len(u.energy) for u in usages)
    clear_plan_cache()
    totals = []
    started = time.perf_counter()
    for usage in usages:
        totals.append(rate_batch(tariff, open_period(tariff, period), usage).total)
    elapsed = time.perf_counter() - started

    # Check a sample against real-time rating, interval by interval (not timed).
    sample = range(0, METERS, max(1, METERS // 5))
    live_started = time.perf_counter()
    live_intervals = 0
    for m in sample:
        state = open_period(tariff, period)
        live = Decimal(0)
        for interval in usages[m].intervals():
            rated = rate_interval(tariff, state, interval)
            live = RATING_CONTEXT.add(live, rated.total)  # exact, like the engine's sums
            state = rated.state
            live_intervals += 1
        if live != totals[m]:
            raise AssertionError(f"meter {m}: real time {live} != batch {totals[m]}")
    live_elapsed = time.perf_counter() - live_started

    return {
        "intervals_per_second": {
            "value": round(intervals / elapsed),
            "unit": "intervals/s",
            "target": TARGET,
        },
        "batch_seconds": {"value": round(elapsed, 3), "unit": "s"},
        "meters": METERS,
        "intervals": intervals,
        "real_time_intervals_per_second": {
            "value": round(live_intervals / live_elapsed),
            "unit": "intervals/s",
        },
        "real_time_checked_meters": len(sample),
        "tariff": "TOU (4 periods, 2 seasons, weekends, holidays) + 3 tiers (adders) + VAT",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
