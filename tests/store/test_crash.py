"""Kill -9 in the middle of payments and charges: nothing committed is lost or doubled.

A child process (crash_child.py) runs concurrent top-ups, retried top-ups
and batched charges against one SQLite file and prints each operation once
its commit has returned. It is killed with SIGKILL at a random moment, 20
times in a row on the same database. After each kill the database must hold
every reported operation exactly once, every entry must sum to zero, and
every meter's cursor must match its last charged reading.

``PM_CRASH_ROUNDS`` and ``PM_CRASH_OPS`` make it longer (scripts/test-long).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import (
    Account,
    JournalEntry,
    PaymentReference,
    Posting,
)
from custom_components.prepaid_meter.store.store import make_engine

CHILD = Path(__file__).with_name("crash_child.py")
SITE = "crash"
ROUNDS = int(os.environ.get("PM_CRASH_ROUNDS", "20"))
OPS = int(os.environ.get("PM_CRASH_OPS", "1000"))


def run_and_kill(db: Path, round_no: int, rng: random.Random) -> tuple[list[str], bool]:
    """Start the child, kill it at a random moment once it is working; return its lines."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(round_no), str(OPS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.endswith("\n"):
                lines.append(line.strip())
                ready.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert ready.wait(30), "the child did not start"
    time.sleep(rng.uniform(0.05, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    assert proc.returncode in (-signal.SIGKILL, 0), stderr
    return lines, "DONE" in lines


def check(db: Path, reported: list[str]) -> None:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            references = set(
                s.scalars(select(PaymentReference.reference).where(PaymentReference.site == SITE))
            )
            per_reference = dict(
                s.execute(
                    select(JournalEntry.reference, func.count())
                    .where(JournalEntry.site == SITE, JournalEntry.reference.is_not(None))
                    .group_by(JournalEntry.reference)
                ).all()
            )
            memos = dict(
                s.execute(
                    select(JournalEntry.memo, func.count())
                    .where(JournalEntry.site == SITE, JournalEntry.kind == "charge")
                    .group_by(JournalEntry.memo)
                ).all()
            )
            last_charged: dict[str, Decimal] = {}
            for line in reported:
                kind, *rest = line.split()
                if kind in ("TOP", "DUP"):
                    assert rest[0] in references, f"lost payment {rest[0]}"
                    assert per_reference[rest[0]] == 1
                elif kind == "CHG":
                    meter, value = rest[0], Decimal(rest[1])
                    last_charged[meter] = max(value, last_charged.get(meter, value))
                    # The first reading of a meter only sets its cursor (no entry).
                    memo = f"{meter}@{value}"
                    assert memos.get(memo, 1) == 1, f"charge {memo} doubled"
            assert all(n == 1 for n in memos.values()), "a charge was posted twice"
            assert all(n == 1 for n in per_reference.values())
            assert set(per_reference) == references
            # Every entry balances; every wallet is its payments minus its charges.
            assert ledger.unbalanced_entries(s, SITE) == []
            assert ledger.journal_sum(s, SITE) == 0
            for tenant, bal in ledger.wallet_balances(s, SITE).items():
                paid = sum(
                    s.scalars(
                        select(PaymentReference.amount).where(
                            PaymentReference.site == SITE, PaymentReference.tenant == tenant
                        )
                    ),
                    Decimal(0),
                )
                charged = sum(
                    s.scalars(
                        select(Posting.amount)
                        .join(JournalEntry)
                        .join(Account)
                        .where(JournalEntry.kind == "charge", Account.tenant == tenant)
                    ),
                    Decimal(0),
                )
                assert bal == paid + charged
            # Reading, cursor and charge were committed together.
            cursors = ledger.cursors(s, SITE)
            for meter, value in last_charged.items():
                assert cursors[meter].value >= value
    finally:
        engine.dispose()


def test_sigkill_loses_nothing_committed_and_doubles_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(20260301)
    all_reported: list[str] = []
    killed_mid_work = 0
    for round_no in range(ROUNDS):
        lines, finished = run_and_kill(db, round_no, rng)
        killed_mid_work += not finished
        all_reported += lines[1:]
        check(db, all_reported)
    assert sum(line.startswith("TOP") for line in all_reported) > ROUNDS
    assert any(line.startswith("DUP") for line in all_reported)
    assert killed_mid_work >= ROUNDS // 2, "most kills must land while the child is writing"
