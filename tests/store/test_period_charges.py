"""Period charges are owed from the tenant's occupancy on, counted in whole local days."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import MeterReading
from custom_components.prepaid_meter.store.period_charges import (
    occupied,
    tenancy_start,
    tenancy_starts,
)

from .conftest import SITE

ZONE = ZoneInfo("Asia/Shanghai")
MARCH = billing_period(datetime(2026, 3, 15, tzinfo=UTC), 1, "Asia/Shanghai")
# 2026-03-10 17:30 UTC is 01:30 on March 11 in Shanghai.
OPENED = datetime(2026, 3, 10, 17, 30, tzinfo=UTC)
MARCH_11 = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # local midnight


def _site(session: Session) -> None:
    ledger.sync_site(session, site=SITE, name="Mall", currency="CNY",
                     meters=[("m1", "Shop 1", 1, "simulator")],
                     tenants=[("t1", "Shop 1", ("m1",))], at=OPENED)  # fmt: skip


def test_a_tenant_opened_mid_period_owes_from_its_local_move_in_day(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        _site(session)
        assert tenancy_start(session, SITE, "t1") == OPENED
        part = occupied(session, SITE, "t1", MARCH, ZONE)
        assert part is not None
        assert (part.start, part.end) == (MARCH_11, MARCH.end)
        assert (part.cycle_start, part.cycle_end) == (MARCH.cycle_start, MARCH.cycle_end)
        february = billing_period(datetime(2026, 2, 15, tzinfo=UTC), 1, "Asia/Shanghai")
        assert occupied(session, SITE, "t1", february, ZONE) is None
        assert tenancy_start(session, SITE, "nobody") is None
        assert occupied(session, SITE, "nobody", MARCH, ZONE) == MARCH


def test_readings_from_before_the_account_make_the_whole_period_owed(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        _site(session)
        early = datetime(2026, 2, 20, tzinfo=UTC)
        session.add(
            MeterReading(site=SITE, meter="m1", taken_at=early, value=Decimal(5), source="import")
        )
        session.commit()
        assert tenancy_start(session, SITE, "t1") == early
        assert occupied(session, SITE, "t1", MARCH, ZONE) == MARCH


def test_a_known_move_in_day_opens_the_account_then(sessions: sessionmaker[Session]) -> None:
    moved_in = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # March 2, local midnight
    later = datetime(2026, 3, 30, 16, 0, tzinfo=UTC)
    with sessions() as session:
        ledger.sync_site(session, site=SITE, name="Mall", currency="CNY",
                         meters=[("m1", "Shop 1", 1, "simulator")],
                         tenants=[("t1", "Shop 1", ("m1",)), ("t2", "Shop 2", ())],
                         at=OPENED, opened={"t1": moved_in, "t2": later})  # fmt: skip
        # A move-in in the past opens the account then; one still to come, now.
        assert tenancy_start(session, SITE, "t1") == moved_in
        assert tenancy_start(session, SITE, "t2") == OPENED
        part = occupied(session, SITE, "t1", MARCH, ZONE)
        assert part is not None
        assert part.start == moved_in
        # Known accounts keep their opening: a move-in set later changes nothing.
        ledger.sync_site(session, site=SITE, name="Mall", currency="CNY",
                         meters=[("m1", "Shop 1", 1, "simulator")],
                         tenants=[("t2", "Shop 2", ())], at=later,
                         opened={"t2": MARCH.start})  # fmt: skip
        assert tenancy_start(session, SITE, "t2") == OPENED


def test_a_chunk_of_tenancies_is_read_as_each_one_alone(sessions: sessionmaker[Session]) -> None:
    """`tenancy_starts` (a bill run's chunk) gives what `tenancy_start` gives for each tenant."""
    moved_in = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    early = datetime(2026, 2, 20, tzinfo=UTC)
    with sessions() as session:
        ledger.sync_site(session, site=SITE, name="Mall", currency="CNY",
                         meters=[("m1", "Shop 1", 1, "simulator"),
                                 ("m2", "Shop 2", 2, "simulator")],
                         tenants=[("t1", "Shop 1", ("m1",)), ("t2", "Shop 2", ("m2",)),
                                  ("t3", "Shop 3", ())],
                         at=OPENED, opened={"t1": moved_in})  # fmt: skip
        session.add(
            MeterReading(site=SITE, meter="m2", taken_at=early, value=Decimal(5), source="import")
        )
        session.commit()
        wanted = ["t3", "t1", "nobody", "t2", "t1"]
        starts = tenancy_starts(session, SITE, wanted)
        assert starts == {t: tenancy_start(session, SITE, t) for t in wanted}
        assert starts == {"t3": OPENED, "t1": moved_in, "nobody": None, "t2": early}
        assert list(starts) == ["t3", "t1", "nobody", "t2"]
