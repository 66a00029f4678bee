"""The last reading per meter and hour (the spike alarm's history), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.engine.alarms import hourly_use
from custom_components.prepaid_meter.store.models import MeterReading
from custom_components.prepaid_meter.store.usage import last_reading_per_hour

from .conftest import SITE

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_last_reading_of_each_hour(sessions: sessionmaker[Session]) -> None:
    rows = []
    # m1: a reading every 20 minutes for 3 hours, 0.1 kWh each; m2 on another site.
    for k in range(9):
        at = T0 + timedelta(minutes=20 * k + 10)
        rows.append({"site": SITE, "meter": "m1", "taken_at": at, "value": Decimal(k) / 10})
        rows.append({"site": "other", "meter": "m1", "taken_at": at, "value": Decimal(99)})
    rows.append({"site": SITE, "meter": "m2", "taken_at": T0 + timedelta(minutes=5),
                 "value": Decimal("5.5")})  # fmt: skip
    with sessions() as s:
        s.execute(insert(MeterReading), rows)
        s.commit()
        got = last_reading_per_hour(s, SITE, T0 - timedelta(hours=1))
        assert set(got) == {"m1", "m2"}
        assert got["m1"] == [
            (T0 + timedelta(minutes=50), Decimal("0.2")),
            (T0 + timedelta(hours=1, minutes=50), Decimal("0.5")),
            (T0 + timedelta(hours=2, minutes=50), Decimal("0.8")),
        ]
        assert got["m2"] == [(T0 + timedelta(minutes=5), Decimal("5.5"))]
        assert hourly_use(got["m1"]) == {
            T0 + timedelta(hours=1): Decimal("0.3"),
            T0 + timedelta(hours=2): Decimal("0.3"),
        }
        # Only readings from ``since`` and before ``until``.
        later = last_reading_per_hour(s, SITE, T0 + timedelta(hours=2))
        assert later == {"m1": [(T0 + timedelta(hours=2, minutes=50), Decimal("0.8"))]}
        middle = last_reading_per_hour(s, SITE, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
        assert middle == {"m1": [(T0 + timedelta(hours=1, minutes=50), Decimal("0.5"))]}
