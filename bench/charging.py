"""Per-poll prepaid charging cost: 200 tenants rated on their tariff at every 30-second poll.

The part of a poll that `PrepaidCoordinator._charge` adds on top of the
reads and the ledger write (see ``bench/polling.py``): each tenant's use
since its last reading rated with `charging.Charger.charge` (cut on the
price grid, `rating.rate_interval`, tiers carried over the period). Timed on
a flat tariff and on the rating benchmark's time-of-use tariff with tier
adders and VAT, over two hours of polls that cross time-of-use switches.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rating import TARIFF
from custom_components.prepaid_meter.charging import Charger
from custom_components.prepaid_meter.engine.billing import flat_tariff
from custom_components.prepaid_meter.engine.tariffs import Tariff, tariff_from_dict

TENANTS = 200
POLL = timedelta(seconds=30)
POLLS = 240  # two hours
#: 06:00 to 08:00 local in Shanghai: the valley to flat switch at 07:00 (and the peak at 08:00).
START = datetime(2024, 7, 10, 22, 0, tzinfo=UTC)
#: A top-up waits for the charging lock while a poll is rated: keep it a small part of
#: the 250 ms reconnect budget (bench/reconnect.py).
TARGET_MS = 50.0


def _polls(tariff: Tariff) -> list[float]:
    """Milliseconds per poll to rate every tenant's use."""
    charger = Charger({f"t{i}": tariff for i in range(TENANTS)}, 1, "Asia/Shanghai")
    use = [Decimal(f"0.0{i % 9 + 1}") for i in range(TENANTS)]
    times: list[float] = []
    last: datetime | None = START
    for k in range(1, POLLS + 1):
        now = START + k * POLL
        started = time.perf_counter()
        for i in range(TENANTS):
            charger.charge(f"t{i}", last, now, use[i])
        times.append((time.perf_counter() - started) * 1000)
        last = now
    return times


def run() -> dict[str, Any]:
    """Time both tariffs; the figure is the median poll for all 200 tenants."""
    tou = tariff_from_dict(TARIFF)
    flat = flat_tariff(Decimal("1.00"), "CNY", "Asia/Shanghai")
    flat_ms = _polls(flat)
    tou_ms = _polls(tou)
    return {
        "tenants": TENANTS,
        "polls": POLLS,
        "tou_tiers_poll_ms": {
            "value": round(statistics.median(tou_ms), 2),
            "unit": "ms",
            "target": f"< {TARGET_MS}",
        },
        "tou_tiers_poll_p99_ms": {
            "value": round(sorted(tou_ms)[int(len(tou_ms) * 0.99) - 1], 2),
            "unit": "ms",
        },
        "flat_poll_ms": {"value": round(statistics.median(flat_ms), 2), "unit": "ms"},
        "notes": (
            "Rating only (Charger.charge for 200 tenants per 30-second poll, two hours of polls "
            "across TOU switches, tiers accumulating); the reads and the SQLite write are in "
            "bench/polling.py. CPU time on a shared 2-core machine."
        ),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
