"""Ledger write speed on SQLite (WAL, synchronous=FULL), as the integration writes.

A poll charges every meter of a bus in one transaction (``charge_meters``):
here 200 meters polled 60 times, two postings per charge, in a real file
in a temp directory. Single top-ups (one durable commit each) are measured
too, since a payment cannot wait for a batch.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.store import init_schema, make_engine

METERS = 200
POLLS = 60
TOP_UPS = 300
PRICE = Decimal("0.8765")


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        init_schema(engine)
        sessions = sessionmaker(engine, expire_on_commit=False)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        values = {f"m{i}": Decimal(1000 + i) for i in range(METERS)}
        with sessions() as s:  # first readings: cursors only, no charge
            ledger.charge_meters(
                s,
                "bench",
                [
                    ledger.MeterCharge(
                        meter=m, tenant=f"t{m}", value=v, taken_at=t0, amount=Decimal(0)
                    )
                    for m, v in values.items()
                ],
            )
        postings = 0
        start = time.perf_counter()
        for poll in range(1, POLLS + 1):
            at = t0 + timedelta(seconds=30 * poll)
            batch = []
            for m, v in values.items():
                used = Decimal(poll % 7 + 1) / 100
                values[m] = v + used
                batch.append(
                    ledger.MeterCharge(
                        meter=m, tenant=f"t{m}", value=v + used, taken_at=at, amount=used * PRICE
                    )
                )
            with sessions() as s:
                ledger.charge_meters(s, "bench", batch)
            postings += 2 * len(batch)
        charge_seconds = time.perf_counter() - start

        start = time.perf_counter()
        for n in range(TOP_UPS):
            with sessions() as s:
                ledger.top_up(
                    s, site="bench", tenant=f"tm{n % METERS}", amount=Decimal("50.00"),
                    method="wechat", reference=f"bench-{n}", at=t0,
                )  # fmt: skip
        top_up_seconds = time.perf_counter() - start
        with sessions() as s:
            assert ledger.journal_sum(s, "bench") == 0
        engine.dispose()
    return {
        "postings_per_second": {
            "value": round(postings / charge_seconds),
            "unit": "postings/s",
            "target": 5000,
        },
        "top_ups_per_second": {
            "value": round(TOP_UPS / top_up_seconds),
            "unit": "top-ups/s",
            "target": 50,
        },
    }
