"""Bills: gather a period's readings, wallet movements and tariff, rate, assemble, issue.

Runs on the store's thread. A period ``(start, end]`` on the ledger's clock:
a charge posted at a poll covers the energy used since the poll before, so
the charges of a period are those posted after its start up to its end, and
the meter readings that bound it are the last ones at or before each end.
So a prepaid bill rates exactly the counter deltas that were deducted, cut
into the same intervals as the polls charged them (`engine.prepaid`), and
issuing it first charges the wallet the period's standing, demand and minimum
charges not charged yet (`period_charges`).

Issued bills are never changed (the table is append-only in the database):
a recalculation issues a new revision and posts a correcting entry.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from itertools import chain, pairwise, repeat
from operator import sub
from typing import Any

from sqlalchemy import func, insert, select
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
from ..engine.prepaid import price_grid, tenant_usage
from ..engine.rating import UsageSeries, rate_period
from ..engine.tariffs import Tariff
from .ledger import (
    EXACT_PRECISION,
    LedgerError,
    _Accounts,
    _whole,
    closed_tenants,
    post_entry,
    wallet_code,
)
from .models import Bill as BillRow
from .models import BillFile, TariffVersion
from .period_charges import (
    energy_only,
    occupied,
    occupied_from,
    owed,
    settle_period,
    tenancy_starts,
)
from .tariffs import parsed_tariff, stored_tariff

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
    #: The id of the tenant's stored tariff; `FLAT` for the site's flat price;
    #: None for the site's first stored tariff, else the flat price.
    tariff: str | None = None


#: `TenantSpec.tariff` of a tenant priced at the site's flat price.
FLAT = ""


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
    tenant_name: str
    #: The whole bill; left out of long runs (every tenant) to keep their answers small.
    document: dict[str, Any] | None
    correction: Decimal | None = None
    duplicate: bool = False


# --- inputs --------------------------------------------------------------------------


def site_tariff(session: Session, spec: SiteSpec, tariff_id: str | None = None) -> Tariff:
    """A tariff from its stored versions (the site's first without an id), or the flat price."""
    if tariff_id == FLAT:
        return flat_tariff(spec.price, spec.currency, spec.timezone)
    if tariff_id is not None:
        return stored_tariff(session, spec.site, tariff_id)
    rows = session.scalars(
        select(TariffVersion)
        .where(TariffVersion.site == spec.site)
        .order_by(TariffVersion.tariff, TariffVersion.effective_from)
    ).all()
    if not rows:
        return flat_tariff(spec.price, spec.currency, spec.timezone)
    first = rows[0].tariff
    return parsed_tariff(tuple(row.definition for row in rows if row.tariff == first))


# Plain SQL on the driver's own cursor for the bulk reads of a bill run: a
# month of 15-minute readings and charges is thousands of rows per tenant,
# and any per-row wrapping would cost more than the rating itself.
_READINGS = (
    "SELECT taken_at, value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at > ? AND taken_at <= ? ORDER BY taken_at"
)
_READING_AT = (
    "SELECT taken_at, value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at <= ? ORDER BY taken_at DESC LIMIT 1"
)
# On SQLite the readings of a period come back as two strings (times, values):
# thousands of row tuples per meter would wake the garbage collector, whose
# full passes hold the interpreter lock long enough to stall the event loop.
# The times are compared with the expected grid, which also proves the order.
_READINGS_SQLITE = (
    "SELECT group_concat(taken_at, '|'), group_concat(value, '|') FROM"
    " (SELECT taken_at, value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at > ? AND taken_at <= ? ORDER BY taken_at)"
)
# Wallet movements by kind, before or after the start: exact sums in SQL on
# PostgreSQL (NUMERIC).
_WALLET = (
    "SELECT e.kind, CASE WHEN e.created_at <= ? THEN 1 ELSE 0 END, SUM(p.amount)"
    " FROM pm_posting p JOIN pm_entry e ON e.id = p.entry_id"
    " WHERE p.account_id = (SELECT id FROM pm_account WHERE site = ? AND code = ?)"
    " AND e.created_at <= ? GROUP BY 1, 2"
)
# On SQLite the exact texts, joined, to be summed here, in one pass without a
# sort (grouping by kind sorted the wallet's every posting): those before the
# start (the opening balance), the period's energy charges (nearly all of the
# rest), and the period's other movements as "kind amount" (a kind is a word).
_WALLET_SQLITE = (
    "SELECT group_concat(CASE WHEN e.created_at <= ?1 THEN p.amount END, '|'),"
    " group_concat(CASE WHEN e.created_at > ?1 AND e.kind = 'charge' THEN p.amount END, '|'),"
    " group_concat(CASE WHEN e.created_at > ?1 AND e.kind != 'charge'"
    " THEN e.kind || ' ' || p.amount END, '|')"
    " FROM pm_posting p JOIN pm_entry e ON e.id = p.entry_id"
    " WHERE p.account_id = (SELECT id FROM pm_account WHERE site = ?2 AND code = ?3)"
    " AND e.created_at <= ?4"
)
# Each share posted in the period, with its reference and memo (how it was
# found, written by the sharing run). A query of its own: carrying them in the
# sums' pass costs more than this one. A share's entry names the tenant whose
# wallet it debits (`sharing.post_shares` is their only writer), so the shares
# are one range of the entries' (site, tenant, kind, created_at) index, not a
# pass over the wallet's month of charges.
_WALLET_SHARES = (
    "SELECT e.id, e.kind, p.amount, e.reference, e.memo"
    " FROM pm_entry e JOIN pm_posting p ON p.entry_id = e.id"
    " WHERE e.site = ? AND e.tenant = ? AND e.kind IN ('shared', 'loss')"
    " AND e.created_at > ? AND e.created_at <= ?"
    " AND p.account_id = (SELECT id FROM pm_account WHERE site = ? AND code = ?)"
    " ORDER BY e.id"
)
#: Wallet movements that pay for supply: energy charges and the shares of
#: common-area cost and line loss posted by the sharing run. A prepaid bill's
#: total equals their sum, so shares are lines of the bill too.
_DEDUCTED_KINDS = ("charge", "shared", "loss")
#: How SQLAlchemy's SQLite dialect stores a DateTime (compared as text there).
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _raw(session: Session, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows of a query with ``?`` placeholders, on the DB-API cursor of the session's connection."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    args = [
        (_sqlite_time(p) if sqlite else p.astimezone(UTC)) if isinstance(p, datetime) else p
        for p in params
    ]
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@functools.lru_cache(maxsize=64)
def _sqlite_time(at: datetime) -> str:
    """An instant as SQLite stores it (a bill run asks for the same few, every tenant)."""
    return at.astimezone(UTC).strftime(_SQLITE_TIME)


def _time(value: datetime | str) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives back the stored text)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _reading_at(session: Session, site: str, meter: str, at: datetime) -> Decimal | None:
    rows = _raw(session, _READING_AT, site, meter, at)
    return Decimal(rows[0][1]) if rows else None


@functools.lru_cache(maxsize=4)
def _readings_at(n: int) -> str:
    """One statement for a meter's readings at or before each of ``n`` instants."""
    return "SELECT " + ", ".join(
        f"({_READING_AT.replace('taken_at, value', 'value')})" for _ in range(n)
    )


def _history(
    session: Session, site: str, meters: Sequence[str], end: datetime, tz: str
) -> list[tuple[str, Decimal]]:
    """Use per local calendar month for the 12 months up to ``end``.

    A period ending mid-month (billing day 10, say) ends with that month's
    first days as a bucket of their own. A meter's use before its first
    reading is nothing (not its whole counter), and each meter's use is
    counted on its own, so one meter's counter falling (a swap) takes nothing
    from another's.
    """
    bounds, keys = _history_buckets(end, tz)
    used = [ZERO] * (len(bounds) - 1)
    sql = _readings_at(len(bounds))
    for meter in meters:
        row = _raw(session, sql, *chain.from_iterable((site, meter, b) for b in bounds))[0]
        counters = [None if v is None else Decimal(v) for v in row]
        if counters[0] is None:  # its first reading is in the window: count from there
            first = _raw(session, _FIRST_READING, site, meter, bounds[0], end)
            base = Decimal(first[0][1]) if first else None
            counters = [base if c is None else c for c in counters]
        for k, (a, b) in enumerate(pairwise(counters)):
            if a is not None and b is not None and b > a:
                used[k] += b - a
    return list(zip(keys, used, strict=True))[-12:]


@functools.lru_cache(maxsize=8)
def _history_buckets(end: datetime, tz: str) -> tuple[tuple[datetime, ...], tuple[str, ...]]:
    """The bounds of `_history`'s months up to ``end`` and each one's month (one run: one end)."""
    zone = as_zone(tz)
    local = end.astimezone(zone)
    last = local.year * 12 + local.month - 1
    starts = [
        local_midnight(date(i // 12, i % 12 + 1, 1), zone) for i in range(last - 12, last + 1)
    ]
    bounds = (*(b for b in starts if b < end), end)
    return bounds, tuple(month_key(a, tz) for a in bounds[:-1])


def wallet_movements(
    session: Session, site: str, tenant: str, start: datetime, end: datetime
) -> tuple[WalletMovements, list[Fee]]:
    """The tenant's wallet from the ledger: at ``start``, moved in ``(start, end]``, at ``end``.

    With it, the common-area and line-loss shares posted in the period as
    bill lines: one per pool (the sharing rule, from the share's reference
    ``share:{rule}:{window}:{tenant}``). A pool shared once in the period is
    labelled with how the share was found (the explanation the sharing run
    posted with it); a pool shared daily says how many shares it adds up.
    """
    code = wallet_code(tenant)
    rows: list[tuple[Any, ...]]
    if session.get_bind().dialect.name == "sqlite":
        rows = _wallet_rows(_raw(session, _WALLET_SQLITE, start, site, code, end)[0])
    else:
        rows = _raw(session, _WALLET, start, site, code, end)
    opening = top_ups = deducted = refunds = adjustments = ZERO
    pools: dict[tuple[str, str], list[Any]] = {}
    with localcontext(prec=EXACT_PRECISION):
        for kind, before, value in rows:
            if isinstance(value, str):
                # A wallet's charges repeat the same few amounts (price times a
                # counter step): each distinct text is parsed once, times its count.
                counted = Counter(value.split("|")).items()
                amount = sum((Decimal(text) * n for text, n in counted), ZERO)
            else:
                amount = Decimal(value)
            if before:
                opening += amount
            elif kind == "top_up":
                top_ups += amount
            elif kind in _DEDUCTED_KINDS:
                deducted -= amount
            elif kind == "refund":
                refunds -= amount
            else:
                adjustments += amount
        for entry, kind, value, reference, memo in _raw(
            session, _WALLET_SHARES, site, tenant, start, end, site, code
        ):
            parts = str(reference or "").split(":")
            rule = parts[1] if len(parts) >= 4 and parts[0] == "share" else ""
            pool = pools.setdefault((kind, rule), [ZERO, set(), memo])
            pool[0] -= Decimal(value)
            pool[1].add(entry)
        closing = opening + top_ups - deducted - refunds + adjustments
    fees: list[Fee] = []
    for (kind, rule), (amount_owed, entries, memo) in pools.items():
        name = ("common area" if kind == "shared" else "line loss") + (f" '{rule}'" if rule else "")
        count = len(entries)
        label = memo if count == 1 and memo else f"{name}: {count} shares"
        fees.append(Fee(name=label, amount=amount_owed, section=kind))
    movements = WalletMovements(
        opening=opening,
        top_ups=top_ups,
        deducted=deducted,
        refunds=refunds,
        adjustments=adjustments,
        closing=closing,
    )
    return movements, fees


def _wallet_rows(joined: tuple[str | None, str | None, str | None]) -> list[tuple[Any, ...]]:
    """`_WALLET_SQLITE`'s three joined texts as `_WALLET`'s rows: (kind, before, amounts)."""
    before, charges, others = joined
    rows: list[tuple[Any, ...]] = []
    if before is not None:
        rows.append(("", 1, before))  # the opening balance: every kind counts alike
    if charges is not None:
        rows.append(("charge", 0, charges))
    if others is not None:
        kinds: dict[str, list[str]] = {}
        for item in others.split("|"):
            kind, _, amount = item.partition(" ")
            kinds.setdefault(kind, []).append(amount)
        rows.extend((kind, 0, "|".join(amounts)) for kind, amounts in kinds.items())
    return rows


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
    settle: bool = False,
    tenancy: Mapping[str, datetime | None] | None = None,
) -> Bill:
    """Everything a tenant's bill for the period needs, rated and assembled.

    ``settle``: first charge the wallet the period's standing, demand and
    minimum charges it was not charged yet (`period_charges.settle_period`).
    ``tenancy``: when tenancies began (`period_charges.tenancy_starts`), if
    already read for a chunk of tenants.
    """
    meters, usage = tenant_period_usage(session, spec.site, tenant.meters, period, tariff)
    year_use = tier_use_before(session, spec.site, tenant.meters, tariff, period.start)
    # Standing, capacity and minimum charges from the tenant's occupancy on.
    if tenancy is not None and tenant.id in tenancy:
        part = occupied_from(tenancy[tenant.id], period, tariff.zone)
    else:
        part = occupied(session, spec.site, tenant.id, period, tariff.zone)
    rated = rate_period(tariff, part or period, usage, tier_use=year_use)
    charges = rated.charges if part is not None else energy_only(rated.charges)
    if settle and owed(charges) and tenant.id not in closed_tenants(session, spec.site):
        settle_period(session, spec.site, tenant.id, period, charges)
    wallet, shares = wallet_movements(session, spec.site, tenant.id, period.start, period.end)
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
        charges=charges,
        fees=[*shares, *tenant.fees],
        wallet=wallet,
        history=_history(
            session, spec.site, [m for m, _ in tenant.meters], period.end, spec.timezone
        ),
        replaces_total=replaces_total,
    )
    return assemble_bill(data)


def tenant_period_usage(
    session: Session,
    site: str,
    meters: Sequence[tuple[str, str]],
    period: BillingPeriod,
    tariff: Tariff,
) -> tuple[list[MeterReadings], UsageSeries | list[IntervalUse]]:
    """The tenant's meters' bounding readings and its use in the period, as charged at polls.

    The intervals are the ones prepaid charging rated (`engine.prepaid`), so
    rating them gives what was deducted; the rating state of a period in
    progress is rebuilt from them after a restart.
    """
    readings: list[MeterReadings] = []
    usages: list[UsageSeries | list[IntervalUse]] = []
    for meter_id, meter_name in meters:
        reading, usage = _meter_usage(session, site, meter_id, meter_name, period)
        readings.append(reading)
        if usage is not None:
            usages.append(usage)
    return readings, tenant_usage(usages, price_grid(tariff))


_FIRST_READING = (
    "SELECT taken_at, value FROM pm_reading WHERE site = ? AND meter = ?"
    " AND taken_at > ? AND taken_at <= ? ORDER BY taken_at LIMIT 1"
)


def tier_use_before(
    session: Session,
    site: str,
    meters: Sequence[tuple[str, str]],
    tariff: Tariff,
    at: datetime,
) -> Decimal | None:
    """Use counted towards yearly tiers before ``at`` (a period's start); None unless yearly.

    The counters' advance from the local year's start (or a meter's first
    reading in the year) to the last reading at or before ``at``: the energy
    earlier periods of the year charged, as prepaid charging carries it on.
    """
    tiers = tariff.version_at(at).tiers
    if tiers is None or tiers.basis != "year":
        return None
    year_start = local_midnight(date(at.astimezone(tariff.zone).year, 1, 1), tariff.zone)
    used = ZERO
    for meter, _name in meters:
        end = _reading_at(session, site, meter, at)
        begin = _reading_at(session, site, meter, year_start)
        if begin is None:
            first = _raw(session, _FIRST_READING, site, meter, year_start, at)
            begin = Decimal(first[0][1]) if first else None
        if end is not None and begin is not None:
            used += max(end - begin, ZERO)
    return used


@functools.lru_cache(maxsize=8)
def _grid(start: datetime, step: timedelta, n: int, sqlite: bool) -> list[object]:
    """The times of ``n`` regular polls as the database returns them (text on SQLite)."""
    times = [start + k * step for k in range(n)]
    if sqlite:
        return [t.astimezone(UTC).strftime(_SQLITE_TIME) for t in times]
    return list(times)


def _meter_usage(
    session: Session, site: str, meter: str, name: str, period: BillingPeriod
) -> tuple[MeterReadings, UsageSeries | list[IntervalUse] | None]:
    """A meter's bounding readings and its use in the period, interval by poll interval.

    The charge posted at a poll covers the energy since the poll before, so
    the intervals are the spans between consecutive readings (the first cut
    at the period's start); a counter that fell was never charged, so that
    interval has no energy. Regular polls from the period's start (every N
    whole minutes, none missed) come back as the rating engine's compact
    series, recognised by comparing the stored times with the expected grid.
    """
    first_rows = _raw(session, _READING_AT, site, meter, period.start)
    if session.get_bind().dialect.name == "sqlite" and first_rows:
        fast = _sqlite_series(session, site, meter, name, period, first_rows[0])
        if fast is not None:
            return fast
    rows = [*first_rows, *_raw(session, _READINGS, site, meter, period.start, period.end)]
    if not rows:
        empty = MeterReadings(meter=meter, name=name, start=None, start_at=None, end=None,
                              end_at=None)  # fmt: skip
        return empty, None
    values = [Decimal(v) for _, v in rows]
    first, last = _time(rows[0][0]), _time(rows[-1][0])
    reading = MeterReadings(meter=meter, name=name, start=values[0], start_at=first,
                            end=values[-1], end_at=last)  # fmt: skip
    if len(rows) < 2:
        return reading, None
    energy = [max(b - a, ZERO) for a, b in pairwise(values)]
    step = _time(rows[1][0]) - first
    minutes, rest = divmod(step, timedelta(minutes=1))
    if first == period.start and minutes and not rest:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if _grid(first, step, len(rows), sqlite) == [t for t, _ in rows]:
            return reading, UsageSeries(first, minutes, energy)
    times = [_time(t) for t, _ in rows]
    return reading, [
        IntervalUse(max(t0, period.start), t1, e)
        for (t0, t1), e in zip(pairwise(times), energy, strict=True)
    ]


def _sqlite_series(
    session: Session,
    site: str,
    meter: str,
    name: str,
    period: BillingPeriod,
    first: tuple[Any, ...],
) -> tuple[MeterReadings, UsageSeries] | None:
    """Regular polls from the period's start, read as two strings; None when not regular."""
    start_text, start_value = first
    if _time(start_text) != period.start:
        return None
    times, values = _raw(session, _READINGS_SQLITE, site, meter, period.start, period.end)[0]
    if not times:
        return None
    step = _time(times[: times.find("|") if "|" in times else None]) - period.start
    minutes, rest = divmod(step, timedelta(minutes=1))
    n = times.count("|") + 2
    if not minutes or rest or _grid_text(period.start, step, n) != f"{start_text}|{times}":
        return None
    reading = MeterReadings(meter=meter, name=name, start=Decimal(start_value),
                            start_at=period.start, end=Decimal(values.rsplit("|", 1)[-1]),
                            end_at=period.start + (n - 1) * step)  # fmt: skip
    scaled = _scaled(f"{start_value}|{values}")
    if scaled is not None:
        # Decimals are tracked by the garbage collector (Python 3.13): a month
        # of them per meter would fill the old generation and set off full
        # collections. Integers of the readings' finest decimal place are not,
        # and the rating engine sums them in C.
        counts, places = scaled
        deltas = list(map(sub, counts[1:], counts))
        if min(deltas, default=0) < 0:  # a counter that fell was never charged
            deltas = [d if d > 0 else 0 for d in deltas]
        return reading, UsageSeries(period.start, minutes, deltas, -places)
    previous = Decimal(start_value)
    energy: list[Decimal] = []
    for text_value in values.split("|"):
        value = Decimal(text_value)
        energy.append(value - previous if value > previous else ZERO)
        previous = value
    return reading, UsageSeries(period.start, minutes, energy)


#: Zeros that pad a decimal text to more places.
_ZEROS = tuple("0" * k for k in range(32))


def _scaled(text: str) -> tuple[list[int], int] | None:
    """``|``-joined decimal texts as integers of the finest place any of them has.

    Returns the integers and that number of places; None for a text that is
    not plain decimal notation (an exponent, say). Stored values are
    ``str(Decimal)``: at most one point each, and their places differ where a
    meter or an entity drops trailing zeros (``55.2`` beside ``55.262``). The
    places are found with C-level maps; only values that have fewer are padded.
    """
    values = text.split("|")
    places = 0
    if "." in text:
        points = list(map(str.find, values, repeat(".")))
        after = list(map(sub, map(len, values), points))  # places + 1
        i = -1
        with contextlib.suppress(ValueError):  # no more of them
            while True:  # a whole number (no point, a few in a month): no places
                i = points.index(-1, i + 1)
                after[i] = 1
        top = max(after)
        if top > len(_ZEROS):
            return None
        for k in set(after) - {top}:  # pad the shorter ones, found at C speed
            _pad(values, after, k, _ZEROS[top - k])
        places = top - 1
    try:
        return list(map(int, "|".join(values).replace(".", "").split("|"))), places
    except ValueError:  # an exponent ("1E+3"), or not a number
        return None


def _pad(values: list[str], lengths: list[int], length: int, zeros: str) -> None:
    """Append ``zeros`` to every value whose entry in ``lengths`` is ``length``."""
    i = -1
    try:
        while True:
            i = lengths.index(length, i + 1)
            values[i] += zeros
    except ValueError:  # no more of them
        return


@functools.lru_cache(maxsize=8)
def _grid_text(start: datetime, step: timedelta, n: int) -> str:
    return "|".join(str(t) for t in _grid(start, step, n, True))


# --- issuing -------------------------------------------------------------------------

#: Bill runs in progress that froze the collector (see `collector_frozen`).
_runs = 0


@contextlib.contextmanager
def collector_frozen() -> Iterator[None]:
    """During a bill run, full garbage collections look only at objects made since it began.

    A full collection walks every tracked object of the process - all of
    Home Assistant - holding the interpreter lock, so the event loop stalls
    for as long as it takes (hundreds of ms on a small hub), and a long run
    allocates enough to set off several. ``gc.freeze`` moves what exists into
    the permanent generation (a list splice, no walk), so those collections
    only see the run's own objects; ``gc.unfreeze`` at the end hands
    everything back to the oldest generation, so nothing is kept from
    collection for longer than the run. Runs may overlap (two sites): the
    last one to finish unfreezes. A collector someone else froze (Home
    Assistant's test harness does) is left as it is. Call it on the event
    loop's thread.
    """
    global _runs  # one process-wide collector, one count
    if _runs == 0 and gc.get_freeze_count():
        yield  # frozen by someone else: theirs to unfreeze
        return
    if _runs == 0:
        gc.freeze()
    _runs += 1
    try:
        yield
    finally:
        _runs -= 1
        if _runs == 0:
            gc.unfreeze()


def _next_seq(session: Session, site: str) -> int:
    last = session.scalar(select(func.max(BillRow.seq)).where(BillRow.site == site))
    return (last or 0) + 1


def bill_number(seq: int) -> str:
    """The printed number of the site's ``seq``-th bill."""
    return f"{seq:06d}"


def _answer(row: BillRow, *, full: bool = True, **extra: Any) -> IssuedBill:
    document = json.loads(row.document)
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
        tenant_name=document["tenant"]["name"],
        document=document if full else None,
        **extra,
    )


def _bill_row(spec: SiteSpec, bill: Bill, document: dict[str, Any], seq: int) -> BillRow:
    """The stored bill: its document as JSON and the document's content hash."""
    return BillRow(**_bill_values(spec, bill, document, seq))


def _bill_values(spec: SiteSpec, bill: Bill, document: dict[str, Any], seq: int) -> dict[str, Any]:
    """`_bill_row`'s columns."""
    source = bill.source
    return {
        "site": spec.site,
        "tenant": source.tenant,
        "period_start": source.period.start,
        "period_end": source.period.end,
        "revision": source.revision,
        "issued_at": source.issued_at,
        "currency": source.currency,
        "total": bill.total,
        "document": json.dumps(document, sort_keys=True, ensure_ascii=False),
        "seq": seq,
        "number": source.number,
        "content_hash": content_hash(document),
        "mode": source.mode,
    }


def _issued(
    bill_id: int, values: dict[str, Any], document: dict[str, Any], full: bool
) -> IssuedBill:
    """The answer for a bill just stored (`_bill_values`), without reading it back."""
    return IssuedBill(id=bill_id, number=values["number"], revision=values["revision"],
                      tenant=values["tenant"], period_start=values["period_start"],
                      period_end=values["period_end"], total=values["total"],
                      currency=values["currency"], content_hash=values["content_hash"],
                      tenant_name=document["tenant"]["name"],
                      document=json.loads(values["document"]) if full else None)  # fmt: skip


def _store(
    session: Session,
    spec: SiteSpec,
    bill: Bill,
    seq: int,
    render: Renderer | None,
    render_format: str = "html:en",
) -> BillRow:
    document = bill.to_dict()
    row = _bill_row(spec, bill, document, seq)
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
    documents: bool = True,
) -> list[IssuedBill]:
    """Issue one bill per tenant (``periods[i]`` for ``tenants[i]``) in one transaction.

    A tenant who already has a bill starting at the same instant gets that
    bill back (issuing is idempotent); numbers stay gap-free because they are
    taken inside the transaction that stores the bills. The bills of a call
    (a chunk of a run) are looked up and stored together, a few statements
    for all of them rather than a few for each.
    """
    tariffs: dict[str | None, Tariff] = {}
    seq = _next_seq(session, spec.site)
    latest = _latest_bills(session, spec.site, tenants, periods)
    tenancy = tenancy_starts(session, spec.site, [t.id for t in tenants])
    stored: dict[tuple[str, datetime], int] = {}  # a bill of this call, by its index in `new`
    new: list[tuple[dict[str, Any], dict[str, Any], bytes | None]] = []
    plan: list[IssuedBill | tuple[int, bool]] = []  # an earlier bill, or (index, duplicate)
    # The bills wait and go in together at the end, as rows rather than ORM
    # objects (whose bookkeeping cost more than the INSERT).
    with session.no_autoflush:
        for tenant, period in zip(tenants, periods, strict=True):
            key = (tenant.id, period.start)
            if key in stored:  # the same tenant and period twice in one call
                plan.append((stored[key], True))
                continue
            existing = latest.get(key)
            if existing is not None:
                plan.append(_answer(existing, full=documents, duplicate=True))
                continue
            if tenant.tariff not in tariffs:
                tariffs[tenant.tariff] = tariff or site_tariff(session, spec, tenant.tariff)
            bill = gather(session, spec, tenant, period, tariffs[tenant.tariff],
                          number=bill_number(seq), revision=1, issued_at=issued_at,
                          settle=True, tenancy=tenancy)  # fmt: skip
            document = bill.to_dict()
            values = _bill_values(spec, bill, document, seq)
            stored[key] = len(new)
            new.append((values, document, None if render is None else render(document).encode()))
            plan.append((stored[key], False))
            seq += 1
    session.flush()
    answers: list[IssuedBill] = []
    if new:
        # The chunk's bills in one statement, their ids read back by their
        # numbers (gap-free and unique per site): no RETURNING needed.
        session.execute(insert(BillRow), [values for values, _document, _html in new])
        ids = dict(
            session.execute(
                select(BillRow.seq, BillRow.id).where(
                    BillRow.site == spec.site,
                    BillRow.seq.between(new[0][0]["seq"], new[-1][0]["seq"]),
                )
            )
            .tuples()
            .all()
        )
        files = [
            {"bill_id": ids[values["seq"]], "format": render_format, "content": html,
             "sha256": _sha(html)}
            for values, _document, html in new
            if html is not None
        ]  # fmt: skip
        if files:
            session.execute(insert(BillFile), files)
        answers = [
            _issued(ids[values["seq"]], values, document, documents)
            for values, document, _html in new
        ]
    out: list[IssuedBill] = []
    for item in plan:
        if isinstance(item, tuple):
            index, duplicate = item
            item = replace(answers[index], duplicate=True) if duplicate else answers[index]
        out.append(item)
    session.commit()
    return out


def _latest_bills(
    session: Session,
    site: str,
    tenants: Sequence[TenantSpec],
    periods: Sequence[BillingPeriod],
) -> dict[tuple[str, datetime], BillRow]:
    """The latest revision of every bill already issued to the tenants for their periods."""
    rows = session.scalars(
        select(BillRow).where(
            BillRow.site == site,
            BillRow.tenant.in_({t.id for t in tenants}),
            BillRow.period_start.in_({p.start for p in periods}),
        )
    )
    latest: dict[tuple[str, datetime], BillRow] = {}
    for row in rows:
        key = (row.tenant, row.period_start)
        if key not in latest or row.revision > latest[key].revision:
            latest[key] = row
    return latest


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
    tariff = tariff or site_tariff(session, spec, tenant.tariff)
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
