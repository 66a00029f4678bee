"""A stored tariff read again is the same object until a version is added.

Rating keeps how a month of intervals falls into a tariff's periods by the
tariff's identity; a bill run reads the tariff again for every chunk of 50
tenants, and must not classify the month again each time.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.store import bills
from custom_components.prepaid_meter.store.tariffs import stored_tariff, sync_tariffs

from .conftest import SITE


def _flat(effective: str, price: str) -> dict[str, object]:
    return {"effective": effective, "energy": {"kind": "flat", "price": price}}


def test_the_same_stored_versions_give_the_same_tariff(sessions: sessionmaker[Session]) -> None:
    spec = bills.SiteSpec(site=SITE, name="Mall", currency="CNY", timezone="Asia/Shanghai",
                          price=Decimal("1"))  # fmt: skip
    base = {"name": "main", "currency": "CNY", "timezone": "Asia/Shanghai"}
    with sessions() as session:
        sync_tariffs(
            session,
            SITE,
            {"main": {**base, "versions": [_flat("2025-01-01T00:00:00+08:00", "0.6")]}},
        )
        first = bills.site_tariff(session, spec)
        assert bills.site_tariff(session, spec) is first
        assert stored_tariff(session, SITE, "main") is first
        sync_tariffs(
            session,
            SITE,
            {
                "main": {
                    **base,
                    "versions": [
                        _flat("2025-01-01T00:00:00+08:00", "0.6"),
                        _flat("2025-06-01T00:00:00+08:00", "0.7"),
                    ],
                }
            },
        )
        second = bills.site_tariff(session, spec)
        assert second is not first
        assert [v.energy.price for v in second.versions] == [Decimal("0.6"), Decimal("0.7")]  # type: ignore[union-attr]
