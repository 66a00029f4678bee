"""The reconciliation report: what came in, what went out, and proof that it adds up.

For a period: receipts and refunds by payment method and by local day,
charges by kind, manual adjustments, amounts left owing at move-out, and
every tenant's opening and closing balance. The checks compare two
independent views of the same money: the change in all wallets must equal
receipts - refunds - charges + adjustments + amounts left owing, and every
entry must sum to zero.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.money import ZERO
from .ledger import EXACT_PRECISION, BalanceCache
from .models import Account, JournalEntry, Posting


@dataclass(kw_only=True)
class TenantLine:
    """One tenant's wallet over the period."""

    opening: Decimal = ZERO
    top_ups: Decimal = ZERO
    refunds: Decimal = ZERO
    charges: Decimal = ZERO
    adjustments: Decimal = ZERO
    left_owing: Decimal = ZERO
    closing: Decimal = ZERO

    @property
    def adds_up(self) -> bool:
        """Opening plus the period's movements is the closing balance."""
        moved = self.top_ups - self.refunds - self.charges + self.adjustments + self.left_owing
        return self.opening + moved == self.closing


@dataclass(kw_only=True)
class Reconciliation:
    """The report; ``balanced`` is the one answer a property manager looks at first."""

    start: datetime
    end: datetime
    receipts: dict[str, dict[date, Decimal]] = field(default_factory=dict)
    refunds: dict[str, dict[date, Decimal]] = field(default_factory=dict)
    charges: dict[str, Decimal] = field(default_factory=dict)
    adjustments: Decimal = ZERO
    left_owing: Decimal = ZERO
    tenants: dict[str, TenantLine] = field(default_factory=dict)
    unbalanced_entries: list[int] = field(default_factory=list)
    cache_verified: bool = True

    @property
    def total_receipts(self) -> Decimal:
        return sum((sum(d.values(), ZERO) for d in self.receipts.values()), ZERO)

    @property
    def total_refunds(self) -> Decimal:
        return sum((sum(d.values(), ZERO) for d in self.refunds.values()), ZERO)

    @property
    def total_charges(self) -> Decimal:
        return sum(self.charges.values(), ZERO)

    def checks(self) -> dict[str, bool]:
        """Each check by name; all must hold."""
        opening = sum((t.opening for t in self.tenants.values()), ZERO)
        closing = sum((t.closing for t in self.tenants.values()), ZERO)
        flows = (
            self.total_receipts
            - self.total_refunds
            - self.total_charges
            + self.adjustments
            + self.left_owing
        )
        return {
            "entries_balanced": not self.unbalanced_entries,
            "wallets_match_flows": closing - opening == flows,
            "tenants_add_up": all(t.adds_up for t in self.tenants.values()),
            "balances_verified": self.cache_verified,
        }

    @property
    def balanced(self) -> bool:
        return all(self.checks().values())

    def as_dict(self) -> dict[str, Any]:
        """The report as response data (amounts as exact strings)."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "receipts": {
                m: {d.isoformat(): str(a) for d, a in sorted(days.items())}
                for m, days in sorted(self.receipts.items())
            },
            "refunds": {
                m: {d.isoformat(): str(a) for d, a in sorted(days.items())}
                for m, days in sorted(self.refunds.items())
            },
            "charges": {k: str(a) for k, a in sorted(self.charges.items())},
            "total_receipts": str(self.total_receipts),
            "total_refunds": str(self.total_refunds),
            "total_charges": str(self.total_charges),
            "adjustments": str(self.adjustments),
            "left_owing": str(self.left_owing),
            "tenants": {
                t: {
                    "opening": str(line.opening),
                    "top_ups": str(line.top_ups),
                    "refunds": str(line.refunds),
                    "charges": str(line.charges),
                    "adjustments": str(line.adjustments),
                    "left_owing": str(line.left_owing),
                    "closing": str(line.closing),
                }
                for t, line in sorted(self.tenants.items())
            },
            "checks": self.checks(),
            "balanced": self.balanced,
        }

    def to_csv(self) -> str:
        """One row per figure: section, key (method, kind or tenant), day, amount."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["section", "key", "day", "amount"])
        for section, by_method in (("receipt", self.receipts), ("refund", self.refunds)):
            for method, days in sorted(by_method.items()):
                for day, amount in sorted(days.items()):
                    writer.writerow([section, method, day.isoformat(), amount])
        for kind, amount in sorted(self.charges.items()):
            writer.writerow(["charge", kind, "", amount])
        writer.writerow(["adjustment", "", "", self.adjustments])
        writer.writerow(["left_owing", "", "", self.left_owing])
        for tenant, line in sorted(self.tenants.items()):
            writer.writerow(["opening_balance", tenant, "", line.opening])
            writer.writerow(["closing_balance", tenant, "", line.closing])
        for name, ok in self.checks().items():
            writer.writerow(["check", name, "", "ok" if ok else "FAILED"])
        return out.getvalue()


def reconciliation(
    session: Session,
    *,
    site: str,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    cache: BalanceCache | None = None,
) -> Reconciliation:
    """Build the report for ``start <= time < end`` from the postings alone.

    ``cache`` is the running balance cache whose figures the entities show;
    it is checked against a sum from scratch.
    """
    report = Reconciliation(start=start, end=end)
    rows = session.execute(
        select(
            Posting.entry_id,
            Posting.amount,
            Account.kind,
            Account.code,
            Account.tenant,
            JournalEntry.created_at,
            JournalEntry.kind,
        )
        .join(Account, Posting.account_id == Account.id)
        .join(JournalEntry, Posting.entry_id == JournalEntry.id)
        .where(JournalEntry.site == site, JournalEntry.created_at < end)
    )
    entry_sums: dict[int, Decimal] = defaultdict(lambda: ZERO)
    # What each entry did to wallets, to classify the wallet side by the other side.
    receipts: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    refunds: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    charges: dict[str, Decimal] = defaultdict(lambda: ZERO)
    wallet_legs: list[tuple[int, str, Decimal, bool]] = []
    entry_class: dict[int, str] = {}
    with localcontext(prec=EXACT_PRECISION):
        for entry_id, amount, akind, code, tenant, created_at, _ekind in rows:
            in_period = created_at >= start
            if akind == "wallet":
                wallet_legs.append((entry_id, tenant or "", amount, in_period))
                continue
            if not in_period:
                continue
            entry_sums[entry_id] += amount
            day = created_at.astimezone(tz).date()
            name = code.split(":", 1)[1] if ":" in code else code
            if akind == "cash":
                receipts[name][day] -= amount
                entry_class[entry_id] = "top_ups"
            elif akind == "refund":
                refunds[name][day] += amount
                entry_class[entry_id] = "refunds"
            elif akind == "revenue":
                charges[name] += amount
                entry_class[entry_id] = "charges"
            elif akind == "adjustment":
                report.adjustments -= amount
                entry_class[entry_id] = "adjustments"
            elif akind == "receivable":
                report.left_owing -= amount
                entry_class[entry_id] = "left_owing"
        for entry_id, tenant, amount, in_period in wallet_legs:
            line = report.tenants.setdefault(tenant, TenantLine())
            line.closing += amount
            if not in_period:
                line.opening += amount
                continue
            entry_sums[entry_id] += amount
            kind = entry_class.get(entry_id)
            if kind in ("top_ups", "adjustments", "left_owing"):
                setattr(line, kind, getattr(line, kind) + amount)
            elif kind in ("refunds", "charges"):
                setattr(line, kind, getattr(line, kind) - amount)
    report.receipts = {m: dict(d) for m, d in receipts.items()}
    report.refunds = {m: dict(d) for m, d in refunds.items()}
    report.charges = dict(charges)
    report.unbalanced_entries = sorted(e for e, s in entry_sums.items() if s != 0)
    if cache is not None:
        cache.refresh(session, site)
        report.cache_verified = cache.verify(session, site)
    return report
