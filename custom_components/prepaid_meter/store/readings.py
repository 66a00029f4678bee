"""Readings entered by hand or imported: validated as a whole, then stored and charged.

A landlord types a reading off a meter that was offline, or imports a CSV
exported from a meter's memory or a handheld reader. One bad row rejects the
whole import (with its row number), so a file is never half applied; the
same file imported twice records nothing new. Readings newer than where
charging got to are charged like polled ones; older ones fill history only.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..engine.money import ZERO
from .ledger import LedgerError, _Accounts, _whole, closed_tenants, cursors, post_entry
from .models import MeterCursor, MeterReading

#: Readings before this are typing errors, not history.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
#: Clocks drift: a reading a little in the future is accepted.
CLOCK_SKEW = timedelta(minutes=5)
MAX_ROWS = 100_000


@dataclass(frozen=True, kw_only=True)
class ReadingIn:
    """One reading to record; ``row`` is its 1-based row for error messages."""

    row: int
    meter: str
    taken_at: datetime
    value: Decimal


@dataclass(frozen=True, kw_only=True)
class ReadingsResult:
    """What an import did."""

    recorded: int
    already_known: int
    charged: Decimal
    charges: int


def parse_time(text: str, tz: tzinfo) -> datetime:
    """An ISO 8601 time; one without an offset is the site's local time."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def parse_csv(text: str, tz: tzinfo) -> list[ReadingIn]:
    """Rows of ``meter,time,value`` (a header row naming the columns is allowed)."""
    rows: list[ReadingIn] = []
    reader = csv.reader(io.StringIO(text.strip(), newline=""))
    try:
        for number, fields in enumerate(reader, start=1):
            if not fields or all(not f.strip() for f in fields):
                continue
            if number == 1 and [f.strip().lower() for f in fields] == ["meter", "time", "value"]:
                continue
            if len(fields) != 3:
                raise LedgerError("reading_bad_row", row=str(number))
            try:
                taken_at = parse_time(fields[1], tz)
                value = Decimal(fields[2].strip())
            except (ValueError, InvalidOperation) as err:
                raise LedgerError("reading_bad_row", row=str(number)) from err
            rows.append(
                ReadingIn(row=number, meter=fields[0].strip(), taken_at=taken_at, value=value)
            )
            if len(rows) > MAX_ROWS:
                raise LedgerError("reading_too_many", limit=str(MAX_ROWS))
    except csv.Error as err:  # a stray line break inside a field, say
        raise LedgerError("reading_bad_row", row=str(reader.line_num)) from err
    return rows


def _check_row(reading: ReadingIn, meters: Mapping[str, str | None], now: datetime) -> None:
    row = str(reading.row)
    if reading.meter not in meters:
        raise LedgerError("reading_unknown_meter", row=row, meter=reading.meter)
    if reading.taken_at.tzinfo is None or not EARLIEST <= reading.taken_at <= now + CLOCK_SKEW:
        raise LedgerError("reading_bad_time", row=row, time=reading.taken_at.isoformat())
    if not reading.value.is_finite() or reading.value < 0:
        raise LedgerError("reading_bad_row", row=row)


def _known(
    session: Session, site: str, meter: str, first: datetime, last: datetime
) -> list[tuple[datetime, Decimal]]:
    """Stored readings of a meter from the one before ``first`` to the one after ``last``."""
    base = select(MeterReading.taken_at, MeterReading.value).where(
        MeterReading.site == site, MeterReading.meter == meter
    )
    before = session.execute(
        base.where(MeterReading.taken_at < first).order_by(MeterReading.taken_at.desc()).limit(1)
    ).all()
    within = session.execute(
        base.where(MeterReading.taken_at >= first, MeterReading.taken_at <= last)
    ).all()
    after = session.execute(
        base.where(MeterReading.taken_at > last).order_by(MeterReading.taken_at).limit(1)
    ).all()
    return [(t, v) for t, v in [*before, *within, *after]]


@_whole
def record_readings(
    session: Session,
    *,
    site: str,
    readings: Sequence[ReadingIn],
    meters: Mapping[str, str | None],
    price: Decimal,
    now: datetime,
    source: str = "manual",
) -> ReadingsResult:
    """Validate every reading, then store them and charge the new ones, in one transaction.

    ``meters`` maps every known meter to the tenant who pays for it (or None).
    A meter's readings must never go down in time order, counting the ones
    already stored; a reading at a time already stored must repeat its value.
    """
    for reading in readings:
        _check_row(reading, meters, now)
    by_meter: dict[str, list[ReadingIn]] = {}
    for reading in readings:
        by_meter.setdefault(reading.meter, []).append(reading)
    new: list[ReadingIn] = []
    known_count = 0
    for meter, rows in by_meter.items():
        rows.sort(key=lambda r: (r.taken_at, r.row))
        stored = dict(_known(session, site, meter, rows[0].taken_at, rows[-1].taken_at))
        timeline: dict[datetime, tuple[Decimal, ReadingIn | None]] = {
            t: (v, None) for t, v in stored.items()
        }
        for r in rows:
            seen = timeline.get(r.taken_at)
            if seen is not None:
                if seen[0] != r.value:
                    raise LedgerError(
                        "reading_conflict", row=str(r.row), meter=meter, time=r.taken_at.isoformat()
                    )
                known_count += 1
                continue
            timeline[r.taken_at] = (r.value, r)
            new.append(r)
        ordered = sorted(timeline.items())
        for (_, (v0, r0)), (_, (v1, r1)) in pairwise(ordered):
            if v1 < v0:
                culprit = r1 or r0
                assert culprit is not None  # stored readings were checked when they came
                raise LedgerError("reading_not_monotonic", row=str(culprit.row), meter=meter)
    session.add_all(
        MeterReading(site=site, meter=r.meter, taken_at=r.taken_at, value=r.value, source=source)
        for r in new
    )
    charged, charges = _charge_new(session, site, new, meters, price)
    session.commit()
    return ReadingsResult(
        recorded=len(new), already_known=known_count, charged=charged, charges=charges
    )


def _charge_new(
    session: Session,
    site: str,
    new: Sequence[ReadingIn],
    meters: Mapping[str, str | None],
    price: Decimal,
) -> tuple[Decimal, int]:
    """Charge the readings beyond each meter's cursor and move the cursor on."""
    accounts = _Accounts(session, site)
    existing = cursors(session, site)
    closed = closed_tenants(session, site)
    total, count = ZERO, 0
    for reading in sorted(new, key=lambda r: (r.meter, r.taken_at)):
        cursor = existing.get(reading.meter)
        if cursor is None:
            cursor = MeterCursor(
                site=site, meter=reading.meter, value=reading.value, taken_at=reading.taken_at
            )
            session.add(cursor)
            existing[reading.meter] = cursor
            continue
        if reading.taken_at <= cursor.taken_at:
            continue  # history only: that energy was charged from later readings
        amount = (reading.value - cursor.value) * price
        tenant = meters.get(reading.meter)
        if amount > 0 and tenant and tenant not in closed:
            post_entry(
                session,
                site=site,
                kind="charge",
                at=reading.taken_at,
                legs=[
                    (accounts.wallet(tenant), -amount),
                    (accounts.get("revenue:energy", "revenue"), amount),
                ],
                tenant=tenant,
                memo=f"{reading.meter}@{reading.value} ({reading.row})",
            )
            total += amount
            count += 1
        cursor.value, cursor.taken_at = reading.value, reading.taken_at
    return total, count
