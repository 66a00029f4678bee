"""The process the crash test kills: concurrent top-ups and charges against one SQLite file.

Usage: crash_child.py DB_PATH ROUND OPS

Four writer threads, each with its own connection (as separate processes
would have): two take payments (new references, and retries of references
from earlier rounds), two charge meters. After ``commit`` returns, a thread
prints one line on stdout: ``TOP ref``, ``DUP ref`` or ``CHG meter value``.
The parent kills this process with SIGKILL at a random moment and checks
that every printed line is in the database.
"""

from __future__ import annotations

import random
import sys
import threading
import types
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

# Load the store without the integration's __init__ (which imports Home
# Assistant and would make each of the 20 restarts take seconds).
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
_pkg = types.ModuleType("custom_components.prepaid_meter")
_pkg.__path__ = [str(ROOT / "custom_components" / "prepaid_meter")]
sys.modules["custom_components.prepaid_meter"] = _pkg

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from custom_components.prepaid_meter.store import ledger  # noqa: E402
from custom_components.prepaid_meter.store.models import PaymentReference  # noqa: E402
from custom_components.prepaid_meter.store.store import init_schema, make_engine  # noqa: E402

SITE = "crash"
TENANTS = [f"t{i}" for i in range(5)]
PRICE = Decimal("1.37")
_print = threading.Lock()


def report(line: str) -> None:
    with _print:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def payments(sessions: sessionmaker[Session], round_no: int, worker: int, ops: int) -> None:
    rng = random.Random(round_no * 100 + worker)
    with sessions() as s:
        earlier = list(s.scalars(select(PaymentReference).where(PaymentReference.site == SITE)))
    for n in range(ops):
        with sessions() as s:
            if earlier and rng.random() < 0.2:
                old = rng.choice(earlier)  # a payment callback retried after the crash
                r = ledger.top_up(
                    s, site=SITE, tenant=old.tenant, amount=old.amount, method=old.method,
                    reference=old.reference, at=datetime.now(UTC),
                )  # fmt: skip
                assert r.duplicate
                report(f"DUP {old.reference}")
                continue
            ref = f"r{round_no}-{worker}-{n}"
            ledger.top_up(
                s, site=SITE, tenant=rng.choice(TENANTS),
                amount=Decimal(rng.randint(1, 50_000)) / 100, method=rng.choice(["cash", "wechat"]),
                reference=ref, at=datetime.now(UTC),
            )  # fmt: skip
            report(f"TOP {ref}")


def charges(sessions: sessionmaker[Session], round_no: int, meters: list[str], ops: int) -> None:
    rng = random.Random(round_no * 100 + 50 + len(meters[0]))
    with sessions() as s:
        at = {m: c.value for m, c in ledger.cursors(s, SITE).items()}
    for _ in range(ops):
        # A batch, as a poll charges every meter of the bus in one transaction.
        batch = []
        for meter in meters:
            previous = at.get(meter, Decimal(0))
            value = previous + Decimal(rng.randint(1, 300)) / 100
            tenant = TENANTS[int(meter[1:]) % len(TENANTS)]
            batch.append(
                ledger.MeterCharge(
                    meter=meter, tenant=tenant, value=value, taken_at=datetime.now(UTC),
                    amount=(value - previous) * PRICE if meter in at else Decimal(0),
                )
            )  # fmt: skip
        with sessions() as s:
            ledger.charge_meters(s, SITE, batch)
        for c in batch:
            at[c.meter] = c.value
            report(f"CHG {c.meter} {c.value}")


def main() -> None:
    db, round_no, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    url = f"sqlite:///{db}"
    first = make_engine(url)
    init_schema(first)
    first.dispose()
    report("READY")
    per = ops // 4
    workers = [
        threading.Thread(target=payments, args=(w, round_no, i, per))
        for i, w in enumerate(sessionmaker(make_engine(url), expire_on_commit=False) for _ in "ab")
    ] + [
        threading.Thread(target=charges, args=(w, round_no, meters, per // len(meters)))
        for w, meters in (
            (sessionmaker(make_engine(url), expire_on_commit=False), ["m1", "m2", "m3"]),
            (sessionmaker(make_engine(url), expire_on_commit=False), ["m4", "m5"]),
        )
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    report("DONE")


if __name__ == "__main__":
    main()
