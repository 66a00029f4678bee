"""Postpaid accounts: how long deriving them from the store takes (SQLite).

After every ledger write of a site with postpaid tenants (a payment, a
refund, a bill run) the tenants it touched are checked again
(`store.receivables`) before the supply policy runs, so a payment's
reconnect waits for the check; at start-up, local midnight and when a due
date passes every postpaid tenant is checked. Here: 1,000 postpaid tenants
with a year of monthly bills each (documents of a real bill's size) and a
payment per bill, in a real SQLite file. Figures: a payment (a durable
top-up) and its check, median and slowest of 20, as the coordinator runs
them in one store call; a check of every tenant, median and slowest of 20
(the issued bills already read are kept, as the site's monitor keeps them),
and the first one (start-up: every bill read).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import ledger, receivables
from custom_components.prepaid_meter.store.models import Bill

SITE = "bench"
TENANTS = 1000
MONTHS = 12
RUNS = 20
TZ = "Asia/Shanghai"
#: A payment and its check must leave most of the reconnect budget (the reconnect
#: benchmark's target: 250 ms from top-up to relay, 99th percentile).
PAYMENT_TARGET_MS = 100


def _document(tenant: str, number: str, due_at: datetime) -> str:
    """A bill document of the usual size: a few meters' lines, fees, a year of history."""
    lines = [
        {"section": "energy", "label": f"energy {p} tier {t}", "quantity": "123.456",
         "unit": "kWh", "unit_price": "0.8765", "amount": "108.21", "tou_period": p, "tier": t}
        for p in ("peak", "flat", "valley") for t in (1, 2)
    ]  # fmt: skip
    rent = {"section": "fees", "label": "Rent", "quantity": "1", "unit": "", "unit_price": "1200"}
    lines.append({**rent, "amount": "1200", "tou_period": None, "tier": None})
    doc: dict[str, Any] = {
        "number": number,
        "tenant": {"id": tenant, "name": f"Shop {tenant}", "mode": "postpaid"},
        "due_at": due_at.isoformat(),
        "lines": lines,
        "history": [{"month": f"2025-{m:02d}", "energy": "812.5"} for m in range(1, 13)],
        "wallet": dict.fromkeys(("opening", "top_ups", "deducted", "closing"), "0.00"),
        "total": "1849.26",
        "amount_due": "1849.26",
    }
    return json.dumps(doc, sort_keys=True)


def _fill(sessions: sessionmaker[Any], now: datetime) -> None:
    tenants = [f"t{i}" for i in range(TENANTS)]
    with sessions() as s:
        ledger.sync_site(s, site=SITE, name="Bench mall", currency="CNY", meters=[],
                         tenants=[(t, t, []) for t in tenants],
                         at=now - timedelta(days=400))  # fmt: skip
    seq = 0
    for month in range(MONTHS):
        period = billing_period(now - timedelta(days=31 * (MONTHS - month)), 1, TZ)
        issued = period.end + timedelta(minutes=30)
        due = issued + timedelta(days=14)
        with sessions() as s:
            rows = []
            for tenant in tenants:
                seq += 1
                rows.append(
                    Bill(site=SITE, tenant=tenant, period_start=period.start,
                         period_end=period.end, revision=1, issued_at=issued, currency="CNY",
                         total=Decimal("1849.26"), document=_document(tenant, f"{seq:06d}", due),
                         seq=seq, number=f"{seq:06d}", content_hash="0" * 64, mode="postpaid")
                )  # fmt: skip
            s.add_all(rows)
            s.commit()
            # Everyone pays every bill but the last one in full.
            if month < MONTHS - 1:
                payments = [
                    ledger.Payment(tenant=t, amount=Decimal("1849.26"), method="bank_transfer",
                                   reference=f"pay-{month}-{t}")
                    for t in tenants
                ]  # fmt: skip
                ledger.top_up_batch(s, site=SITE, payments=payments, at=due)


def run() -> dict[str, object]:
    now = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    tenants = [f"t{i}" for i in range(TENANTS)]
    with tempfile.TemporaryDirectory() as tmp:
        from custom_components.prepaid_meter.store.store import init_schema, make_engine

        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        init_schema(engine)
        sessions = sessionmaker(engine, expire_on_commit=False)
        _fill(sessions, now)
        # The site's monitor keeps the issued bills it read (they never change).
        cache: receivables.BillCache = {}
        with sessions() as s:
            start = time.perf_counter()
            receivables.evaluate(s, SITE, tenants, now=now, timezone=TZ, cache=cache)
            cold_ms = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(RUNS):
            with sessions() as s:
                start = time.perf_counter()
                found = receivables.evaluate(s, SITE, tenants, now=now, timezone=TZ, cache=cache)
                times.append((time.perf_counter() - start) * 1000)
        owed = sum((a.amount_due for a in found.accounts.values()), Decimal(0))
        assert owed == Decimal("1849.26") * TENANTS, owed
        paying = []
        for n in range(RUNS):
            with sessions() as s:
                start = time.perf_counter()
                ledger.top_up(s, site=SITE, tenant="t1", amount=Decimal("92.46"),
                              method="cash", reference=f"last-{n}", at=now)  # fmt: skip
                # As the coordinator does after a write: the tenants it paid, and any new bills.
                fresh = receivables.new_bills(s, SITE, tenants, cache)
                touched = [t for t in tenants if t == "t1" or t in fresh]
                after = receivables.evaluate(s, SITE, touched, now=now, timezone=TZ, cache=cache)
                paying.append((time.perf_counter() - start) * 1000)
        assert after.accounts["t1"].amount_due == Decimal("1849.26") - RUNS * Decimal("92.46")
        engine.dispose()
    return {
        "tenants": TENANTS,
        "bills": TENANTS * MONTHS,
        "payment_p50": {
            "value": round(statistics.median(paying), 1),
            "unit": "ms",
            "target": PAYMENT_TARGET_MS,
        },
        "payment_max": {"value": round(max(paying), 1), "unit": "ms"},
        "check_all_p50": {"value": round(statistics.median(times), 1), "unit": "ms"},
        "check_all_max": {"value": round(max(times), 1), "unit": "ms"},
        "check_all_first": {"value": round(cold_ms, 1), "unit": "ms"},
    }
