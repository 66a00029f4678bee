"""Meter assignments follow the configuration: a meter moved between tenants ends and starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import Assignment

from .conftest import SITE

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _sync(s: Session, tenants: list[tuple[str, str, list[str]]], at: datetime) -> None:
    meters = [("m1", "M1", 1, "simulator"), ("m2", "M2", 2, "simulator")]
    ledger.sync_site(
        s, site=SITE, name="Mall", currency="CNY", meters=meters, tenants=tenants, at=at
    )


def _rows(s: Session) -> list[tuple[str, str, datetime, datetime | None]]:
    rows = s.scalars(
        select(Assignment).where(Assignment.site == SITE).order_by(Assignment.start_at)
    )
    return [
        (
            a.meter,
            a.tenant,
            a.start_at.replace(tzinfo=UTC),
            a.end_at and a.end_at.replace(tzinfo=UTC),
        )
        for a in rows
    ]


def test_a_meter_moved_to_another_tenant_ends_its_old_assignment(
    sessions: sessionmaker[Session],
) -> None:
    t1 = T0 + timedelta(days=3)
    with sessions() as s:
        _sync(s, [("a", "A", ["m1", "m2"]), ("b", "B", [])], T0)
        _sync(s, [("a", "A", ["m1"]), ("b", "B", ["m2"])], t1)
        _sync(s, [("a", "A", ["m1"]), ("b", "B", ["m2"])], t1 + timedelta(days=1))
        assert sorted(_rows(s)) == [
            ("m1", "a", T0, None),
            ("m2", "a", T0, t1),
            ("m2", "b", t1, None),
        ]


def test_a_tenant_left_out_of_the_configuration_keeps_its_assignments(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        _sync(s, [("a", "A", ["m1"])], T0)
        _sync(s, [], T0 + timedelta(days=1))
        assert _rows(s) == [("m1", "a", T0, None)]
