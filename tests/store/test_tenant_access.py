"""The tenant page's store reads and link secrets, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import bills, ledger, tenant_access
from custom_components.prepaid_meter.store.ledger import MeterCharge

from .conftest import SITE

T0 = datetime(2024, 4, 1, tzinfo=UTC)


def _building(session: Session) -> None:
    ledger.sync_site(
        session,
        site=SITE,
        name="Mall",
        currency="CNY",
        meters=[("m1", "Meter 1", 1, "simulator"), ("m2", "Meter 2", 2, "simulator")],
        tenants=[("t1", "Shop 1", ["m1"]), ("t2", "Shop 2", ["m2"])],
        at=T0 - timedelta(days=1),
    )


def test_secrets_are_per_tenant_and_rotate(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert tenant_access.current_secret(session, SITE, "t1") is None
        first = tenant_access.ensure_secret(session, SITE, "t1", T0)
        assert len(first) == tenant_access.SECRET_BYTES
        assert tenant_access.ensure_secret(session, SITE, "t1", T0) == first
        other = tenant_access.ensure_secret(session, SITE, "t2", T0)
        assert other != first
        tenant_access.rotate_secret(session, SITE, "t1", T0 + timedelta(hours=1))
    with sessions() as session:
        rotated = tenant_access.current_secret(session, SITE, "t1")
        assert rotated not in (None, first)
        assert tenant_access.current_secret(session, SITE, "t2") == other
        assert tenant_access.current_secret(session, "another-site", "t1") is None


def test_page_reads_are_scoped_to_the_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        _building(session)
        charges = []
        for n in range(1, 7):  # a reading every half hour from 00:30, 1 kWh each
            at = T0 + timedelta(minutes=30 * n)
            charges.append(
                MeterCharge(
                    meter="m1",
                    tenant="t1",
                    value=Decimal(100 + n),
                    taken_at=at,
                    amount=Decimal("0.5"),
                )
            )
            charges.append(
                MeterCharge(
                    meter="m2",
                    tenant="t2",
                    value=Decimal(500 + 2 * n),
                    taken_at=at,
                    amount=Decimal(1),
                )
            )
        ledger.charge_meters(session, SITE, charges)
        ledger.top_up(session, site=SITE, tenant="t1", amount=Decimal(50), method="wechat",
                      reference="a", at=T0 + timedelta(hours=1))  # fmt: skip
        ledger.top_up(session, site=SITE, tenant="t2", amount=Decimal(70), method="cash",
                      reference="b", at=T0 + timedelta(hours=1))  # fmt: skip
        ledger.refund(session, site=SITE, tenant="t1", amount=Decimal(5), method="cash",
                      reference="c", at=T0 + timedelta(hours=2))  # fmt: skip
        spec = bills.SiteSpec(site=SITE, name="Mall", currency="CNY", timezone="UTC",
                              price=Decimal("0.5"))  # fmt: skip
        period = billing_period(T0 + timedelta(hours=1), 1, "UTC").part(T0, T0 + timedelta(hours=3))
        issued = bills.issue_bills(
            session,
            spec=spec,
            tenants=[
                bills.TenantSpec(id="t1", name="Shop 1", meters=[("m1", "Meter 1")]),
                bills.TenantSpec(id="t2", name="Shop 2", meters=[("m2", "Meter 2")]),
            ],
            periods=[period, period],
            issued_at=T0 + timedelta(hours=3),
        )
    bill_1, bill_2 = issued[0].id, issued[1].id
    bounds = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=4)]
    with sessions() as session:
        data = tenant_access.page_data(session, SITE, "t1", ["m1"], bounds)
        # Before the first reading (00:30) the first reading stands in.
        assert data.readings == {"m1": [Decimal(101), Decimal(102), Decimal(104), Decimal(106)]}
        assert [(p.kind, p.amount, p.method) for p in data.payments] == [
            ("refund", Decimal(-5), "cash"),
            ("top_up", Decimal(50), "wechat"),
        ]
        assert [b.id for b in data.bills] == [bill_1]
        assert data.bills[0].total == issued[0].total
        assert tenant_access.tenant_bill(session, SITE, "t1", bill_1) is not None
        assert tenant_access.tenant_bill(session, SITE, "t1", bill_2) is None
        assert tenant_access.tenant_bill(session, "another-site", "t1", bill_1) is None
        assert tenant_access.counters_at(session, SITE, "m9", bounds) == [None] * 4
