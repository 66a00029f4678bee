"""Bills: gather a period's readings, wallet movements and tariff, rate, assemble, issue.

Runs on the store's thread. A period ``(start, end]`` on the ledger's clock:
a charge posted at a poll covers the energy used since the poll before, so
the charges of a period are those posted after its start up to its end, and
the meter readings that bound it are the last ones at or before each end.
So a prepaid bill rates exactly the counter deltas that were deducted.

Issued bills are never changed (the table is append-only in the database):
a recalculation issues a new revision and posts a correcting entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from ..engine.billing import (
    Bill,
    BillInput,
    Fee,
    MeterReadings,
    WalletMovements,
    assemble_bill,
    content_hash,
    flat_tariff,
    month_key,
)
from ..engine.calendars import BillingPeriod, as_zone, local_midnight
from ..engine.intervals import IntervalUse
from ..engine.money import ZERO, round_money
from ..engine.rating import UsageSeries, rate_period
from ..engine.tariffs import Tariff, tariff_from_dict
from .ledger import EXACT_PRECISION, LedgerError, _Accounts, _whole, post_entry, wallet_code
from .models import Bill as BillRow
from .models import BillFile, TariffVersion, UTCDateTime

#: How far back a bill may be recalculated.
RECALCULATE_MONTHS = 12

#: Renders a bill document to HTML (the integration's template); kept with the bill.
Renderer = Callable[[dict[str, Any]], str]


@dataclass(frozen=True, kw_only=True)
class TenantSpec:
    """Who a bill is for, and the meters charged to them."""

    id: str
    name: str
    meters: Sequence[tuple[str, str]]
    mode: str = "prepaid"
    fees: Sequence[Fee] = ()


@dataclass(frozen=True, kw_only=True)
class SiteSpec:
    """The site's billing settings."""

    site: str
    name: str
    currency: str
    timezone: str
    price: Decimal
    address: str = ""
    logo: str = ""
    due_days: int = 14


@dataclass(frozen=True, kw_only=True)
class IssuedBill:
    """An issued bill as the actions answer it."""

    id: int
    number: str
    revision: int
    tenant: str
    period_start: datetime
    period_end: datetime
    total: Decimal
    currency: str
    content_hash: str
    document: dict[str, Any]
    correction: Decimal | None = None
    duplicate: bool = False


# --- inputs --------------------------------------------------------------------------


def site_tariff(session: Session, spec: SiteSpec) -> Tariff:
    """The site's tariff from its stored versions, or a flat tariff from its price."""
    rows = session.scalars(
        select(TariffVersion)
        .where(TariffVersion.site == spec.site)
        .order_by(TariffVersion.tariff, TariffVersion.effective_from)
    ).all()
    if not rows:
        return flat_tariff(spec.price, spec.currency, spec.timezone)
    first = rows[0].tariff
    versions: list[Any] = []
    base: dict[str, Any] = {}
    for row in rows:
        if row.tariff != first:
            continue
        data = json.loads(row.definition)
        base = {k: v for k, v in data.items() if k != "versions"}
        versions.extend(data["versions"])
    return tariff_from_dict({**base, "versions": versions})


# Plain SQL for the bulk reads of a bill run: a month of 15-minute readings
# and charges is thousands of rows per tenant, and the ORM's per-row type
# processing would cost more than the rating. Parameters still go through the
# columns' types, so times compare as the store wrote them on every backend.
_READINGS = text(
    "SELECT taken_at, value FROM pm_reading WHERE site = :site AND meter = :meter"
    " AND taken_at > :start AND taken_at <= :end ORDER BY taken_at"
).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
_READING_AT = text(
    "SELECT taken_at, value FROM pm_reading WHERE site = :site AND meter = :meter"
    " AND taken_at <= :at ORDER BY taken_at DESC LIMIT 1"
).bindparams(bindparam("at", type_=UTCDateTime()))
_WALLET = text(
    "SELECT e.kind, CASE WHEN e.created_at <= :start THEN 1 ELSE 0 END, p.amount"
    " FROM pm_posting p JOIN pm_entry e ON e.id = p.entry_id"
    " JOIN pm_account a ON a.id = p.account_id"
    " WHERE a.site = :site AND a.code = :code AND e.created_at <= :end"
).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))


def _time(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives back the stored text)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _readings(
    session: Session, site: str, meter: str, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal]]:
    """The last reading at or before ``start`` and every reading in ``(start, end]``."""
    conn = session.connection()
    first = conn.execute(_READING_AT, {"site": site, "meter": meter, "at": start}).all()
    rest = conn.execute(_READINGS, {"site": site, "meter": meter, "start": start, "end": end}).all()
    return [(_time(t), Decimal(v)) for t, v in (*first, *rest)]


def _reading_at(session: Session, site: str, meter: str, at: datetime) -> Decimal | None:
    row = (
        session.connection().execute(_READING_AT, {"site": site, "meter": meter, "at": at}).first()
    )
    return None if row is None else Decimal(row[1])


def _history(
    session: Session, site: str, meters: Sequence[str], end: datetime, tz: str
) -> list[tuple[str, Decimal]]:
    """Use per local calendar month for the 12 months up to ``end``."""
    zone = as_zone(tz)
    local = end.astimezone(zone)
    year, month = local.year, local.month
    bounds: list[datetime] = []
    for i in range(12, -1, -1):
        index = year * 12 + month - 1 - i
        bounds.append(local_midnight(date(index // 12, index % 12 + 1, 1), zone))
    bounds[-1] = min(max(bounds[-1], end), end)
    bounds.append(end)
    bounds = sorted(set(bounds))
    values: dict[datetime, Decimal] = dict.fromkeys(bounds, ZERO)
    for meter in meters:
        for b in bounds:
            v = _reading_at(session, site, meter, b)
            values[b] += v if v is not None else ZERO
    out: list[tuple[str, Decimal]] = []
    for a, b in pairwise(bounds):
        used = max(values[b] - values[a], ZERO)
        key = month_key(a, tz)
        if out and out[-1][0] == key:
            out[-1] = (key, out[-1][1] + used)
        else:
            out.append((key, used))
    return out[-12:]


def wallet_movements(
    session: Session, site: str, tenant: str, start: datetime, end: datetime
) -> WalletMovements:
    """The tenant's wallet from the ledger: at ``start``, moved in ``(start, end]``, at ``end``."""
    rows = session.connection().execute(
        _WALLET, {"site": site, "code": wallet_code(tenant), "start": start, "end": end}
    )
    opening = top_ups = deducted = refunds = adjustments = ZERO
    with localcontext(prec=EXACT_PRECISION):
        for kind, before, value in rows:
            amount = value if isinstance(value, Decimal) else Decimal(value)
            if before:
                opening += amount
            elif kind == "top_up":
                top_ups += amount
            elif kind == "charge":
                deducted -= amount
            elif kind == "refund":
                refunds -= amount
            else:
                adjustments += amount
        closing = opening + top_ups - deducted - refunds + adjustments
    return WalletMovements(
        opening=opening,
        top_ups=top_ups,
        deducted=deducted,
        refunds=refunds,
        adjustments=adjustments,
        closing=closing,
    )


def gather(
    session: Session,
    spec: SiteSpec,
    tenant: TenantSpec,
    period: BillingPeriod,
    tariff: Tariff,
    *,
    number: str,
    revision: int,
    issued_at: datetime,
    replaces_total: Decimal | None = None,
) -> Bill:
    """Everything a tenant's bill for the period needs, rated and assembled."""
    meters: list[MeterReadings] = []
    intervals: list[IntervalUse] = []
    for meter_id, meter_name in tenant.meters:
        readings = _readings(session, spec.site, meter_id, period.start, period.end)
        if readings:
            first, last = readings[0], readings[-1]
            meters.append(
                MeterReadings(meter=meter_id, name=meter_name, start=first[1],
                              start_at=first[0], end=last[1], end_at=last[0])
            )  # fmt: skip
        else:
            meters.append(MeterReadings(meter=meter_id, name=meter_name, start=None,
                                        start_at=None, end=None, end_at=None))  # fmt: skip
        for (t0, v0), (t1, v1) in pairwise(readings):
            # A counter that fell was never charged: no energy in that interval.
            intervals.append(IntervalUse(max(t0, period.start), t1, max(v1 - v0, ZERO)))
    intervals.sort(key=lambda iv: iv.start)
    if len(tenant.meters) > 1:
        intervals = _merge(intervals)
    rated = rate_period(tariff, period, _as_series(intervals) or intervals)
    data = BillInput(
        site_name=spec.name,
        site_address=spec.address,
        logo=spec.logo,
        tenant=tenant.id,
        tenant_name=tenant.name,
        mode=tenant.mode,
        number=number,
        revision=revision,
        period=period,
        issued_at=issued_at,
        due_days=spec.due_days,
        currency=spec.currency,
        timezone=spec.timezone,
        unit=tariff.unit,
        meters=meters,
        charges=rated.charges,
        fees=tenant.fees,
        wallet=wallet_movements(session, spec.site, tenant.id, period.start, period.end),
        history=_history(
            session, spec.site, [m for m, _ in tenant.meters], period.end, spec.timezone
        ),
        replaces_total=replaces_total,
    )
    return assemble_bill(data)


def _as_series(intervals: list[IntervalUse]) -> UsageSeries | None:
    """Regular polls (every N whole minutes, none missed) as the rating engine's compact series.

    The same energy in the same intervals, rated through the engine's cached
    plan for a regular grid: much faster for a month of 15-minute readings.
    """
    if len(intervals) < 2:
        return None
    step = intervals[0].end - intervals[0].start
    minutes, rest = divmod(step, timedelta(minutes=1))
    if rest or not minutes:
        return None
    start = intervals[0].start
    for i, iv in enumerate(intervals):
        if iv.start != start + i * step or iv.end - iv.start != step:
            return None
    return UsageSeries(start, minutes, [iv.energy for iv in intervals])


def _merge(intervals: list[IntervalUse]) -> list[IntervalUse]:
    """Several meters' intervals as one non-overlapping series (cut at every boundary)."""
    cuts = sorted({t for iv in intervals for t in (iv.start, iv.end)})
    energy = dict.fromkeys(cuts[:-1], ZERO)
    with localcontext(prec=EXACT_PRECISION):
        for iv in intervals:
            inside = [c for c in cuts if iv.start <= c < iv.end]
            span = Decimal((iv.end - iv.start) // timedelta(microseconds=1))
            for a in inside:
                b = cuts[cuts.index(a) + 1]
                energy[a] += iv.energy * Decimal((b - a) // timedelta(microseconds=1)) / span
    return [IntervalUse(a, b, energy[a]) for a, b in pairwise(cuts) if energy[a] > 0]


# --- issuing -------------------------------------------------------------------------


def _next_seq(session: Session, site: str) -> int:
    last = session.scalar(select(func.max(BillRow.seq)).where(BillRow.site == site))
    return (last or 0) + 1


def bill_number(seq: int) -> str:
    """The printed number of the site's ``seq``-th bill."""
    return f"{seq:06d}"


def _answer(row: BillRow, **extra: Any) -> IssuedBill:
    return IssuedBill(
        id=row.id,
        number=row.number or "",
        revision=row.revision,
        tenant=row.tenant,
        period_start=row.period_start,
        period_end=row.period_end,
        total=row.total,
        currency=row.currency,
        content_hash=row.content_hash or "",
        document=json.loads(row.document),
        **extra,
    )


def _store(
    session: Session,
    spec: SiteSpec,
    bill: Bill,
    seq: int,
    render: Renderer | None,
    render_format: str = "html:en",
) -> BillRow:
    document = bill.to_dict()
    digest = content_hash(document)
    document_text = json.dumps(document, sort_keys=True, ensure_ascii=False)
    source = bill.source
    row = BillRow(
        site=spec.site,
        tenant=source.tenant,
        period_start=source.period.start,
        period_end=source.period.end,
        revision=source.revision,
        issued_at=source.issued_at,
        currency=source.currency,
        total=bill.total,
        document=document_text,
        seq=seq,
        number=source.number,
        content_hash=digest,
        mode=source.mode,
    )
    session.add(row)
    if render is not None:
        session.flush()
        html = render(document).encode()
        session.add(BillFile(bill_id=row.id, format=render_format, content=html, sha256=_sha(html)))
    return row


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@_whole
def issue_bills(
    session: Session,
    *,
    spec: SiteSpec,
    tenants: Sequence[TenantSpec],
    periods: Sequence[BillingPeriod],
    issued_at: datetime,
    render: Renderer | None = None,
    render_format: str = "html:en",
    tariff: Tariff | None = None,
) -> list[IssuedBill]:
    """Issue one bill per tenant (``periods[i]`` for ``tenants[i]``) in one transaction.

    A tenant who already has a bill starting at the same instant gets that
    bill back (issuing is idempotent); numbers stay gap-free because they are
    taken inside the transaction that stores the bills.
    """
    tariff = tariff or site_tariff(session, spec)
    seq = _next_seq(session, spec.site)
    out: list[IssuedBill] = []
    for tenant, period in zip(tenants, periods, strict=True):
        existing = session.scalars(
            select(BillRow)
            .where(
                BillRow.site == spec.site,
                BillRow.tenant == tenant.id,
                BillRow.period_start == period.start,
            )
            .order_by(BillRow.revision.desc())
            .limit(1)
        ).first()
        if existing is not None:
            out.append(_answer(existing, duplicate=True))
            continue
        bill = gather(session, spec, tenant, period, tariff, number=bill_number(seq),
                      revision=1, issued_at=issued_at)  # fmt: skip
        row = _store(session, spec, bill, seq, render, render_format)
        session.flush()
        out.append(_answer(row))
        seq += 1
    session.commit()
    return out


@_whole
def recalculate_bill(
    session: Session,
    *,
    spec: SiteSpec,
    tenant: TenantSpec,
    bill_id: int,
    now: datetime,
    render: Renderer | None = None,
    render_format: str = "html:en",
    tariff: Tariff | None = None,
    actor: str | None = None,
) -> IssuedBill:
    """Recompute a bill from stored readings and today's tariff versions; issue a revision.

    The difference to the latest revision is posted to the wallet as a
    correcting entry (a credit when the bill went down). The bills already
    issued stay exactly as they were.
    """
    original = session.get(BillRow, bill_id)
    if original is None or original.site != spec.site or original.tenant != tenant.id:
        raise LedgerError("unknown_bill", bill=str(bill_id))
    zone = as_zone(spec.timezone)
    local_now = now.astimezone(zone)
    index = local_now.year * 12 + local_now.month - 1 - RECALCULATE_MONTHS
    oldest = local_midnight(date(index // 12, index % 12 + 1, 1), zone)
    if original.period_end < oldest:
        raise LedgerError("bill_too_old", months=str(RECALCULATE_MONTHS))
    latest = session.scalars(
        select(BillRow)
        .where(
            BillRow.site == spec.site,
            BillRow.tenant == tenant.id,
            BillRow.period_start == original.period_start,
        )
        .order_by(BillRow.revision.desc())
        .limit(1)
    ).one()
    tariff = tariff or site_tariff(session, spec)
    # The same period and the cycle it was pro-rated against, as issued.
    issued_period = json.loads(original.document)["period"]
    period = BillingPeriod(
        original.period_start,
        original.period_end,
        datetime.fromisoformat(issued_period.get("cycle_start", issued_period["start"])),
        datetime.fromisoformat(issued_period.get("cycle_end", issued_period["end"])),
    )
    seq = _next_seq(session, spec.site)
    tenant = replace(tenant, mode=original.mode or tenant.mode)
    bill = gather(session, spec, tenant, period, tariff, number=bill_number(seq),
                  revision=latest.revision + 1, issued_at=now,
                  replaces_total=latest.total)  # fmt: skip
    difference = bill.total - latest.total
    if difference:
        accounts = _Accounts(session, spec.site)
        post_entry(
            session,
            site=spec.site,
            kind="correction",
            at=now,
            legs=[
                (accounts.wallet(tenant.id), -difference),
                (accounts.get("revenue:energy", "revenue"), difference),
            ],
            tenant=tenant.id,
            reference=f"bill:{latest.id}:revision:{latest.revision + 1}",
            memo=f"bill {latest.number} recalculated as {bill.source.number}",
            actor=actor,
        )
    row = _store(session, spec, bill, seq, render, render_format)
    session.flush()
    answer = _answer(row, correction=round_money(-difference, spec.currency))
    session.commit()
    return answer


# --- reading issued bills ------------------------------------------------------------


def get_bill(session: Session, site: str | None, bill_id: int) -> BillRow | None:
    """An issued bill (of the site, when given)."""
    row = session.get(BillRow, bill_id)
    if row is None or (site is not None and row.site != site):
        return None
    return row


def bill_file(
    session: Session,
    bill_id: int,
    fmt: str,
    make: Callable[[dict[str, Any]], bytes],
    site: str | None = None,
) -> bytes | None:
    """A bill's rendered document: the one stored, or made now from the stored data and kept."""
    row = get_bill(session, site, bill_id)
    if row is None:
        return None
    stored = session.get(BillFile, (bill_id, fmt))
    if stored is not None:
        return stored.content
    content = make(json.loads(row.document))
    session.add(BillFile(bill_id=bill_id, format=fmt, content=content, sha256=_sha(content)))
    session.commit()
    return content


def tenant_bills(session: Session, site: str, tenant: str) -> list[BillRow]:
    """A tenant's bills, newest first."""
    return list(
        session.scalars(
            select(BillRow)
            .where(BillRow.site == site, BillRow.tenant == tenant)
            .order_by(BillRow.seq.desc())
        )
    )
