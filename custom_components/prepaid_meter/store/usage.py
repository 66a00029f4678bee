"""Hourly use history for the abnormal-use baseline, in one query per site.

The spike alarm compares a tenant's load with its usual load for that hour of
the week, learned from the last weeks of stored readings. Reading every
poll's row (thousands per meter and week) would be slow; the database returns
only the last reading of each meter in each UTC hour, from which
``engine.alarms.hourly_use`` derives each hour's energy.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import MeterReading


def last_reading_per_hour(
    session: Session, site: str, since: datetime, until: datetime | None = None
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Every meter's last reading in each UTC hour after ``since`` (up to ``until``), in order.

    Give whole hours as bounds so no hour is cut in two.
    """
    if session.get_bind().dialect.name == "sqlite":
        # Stored as text "YYYY-MM-DD HH:MM:SS.ffffff" in UTC: the hour is its first 13 characters.
        bucket = func.substr(MeterReading.taken_at, 1, 13)
    else:
        bucket = func.date_trunc("hour", func.timezone("UTC", MeterReading.taken_at))
    last = (
        select(MeterReading.meter, func.max(MeterReading.taken_at).label("taken_at"))
        .where(
            MeterReading.site == site,
            MeterReading.taken_at >= since,
            *(() if until is None else (MeterReading.taken_at < until,)),
        )
        .group_by(MeterReading.meter, bucket)
        .subquery()
    )
    rows = session.execute(
        select(MeterReading.meter, MeterReading.taken_at, MeterReading.value)
        .join(
            last,
            (MeterReading.meter == last.c.meter) & (MeterReading.taken_at == last.c.taken_at),
        )
        .where(MeterReading.site == site)
        .order_by(MeterReading.meter, MeterReading.taken_at, MeterReading.id)
    ).tuples()
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    for meter, taken_at, value in rows:
        points = out.setdefault(meter, [])
        if points and points[-1][0] == taken_at:
            points[-1] = (taken_at, value)  # two readings at one instant: the later row
        else:
            points.append((taken_at, value))
    return out
