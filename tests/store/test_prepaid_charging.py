"""Prepaid charging against a real database: polls, a rebuilt state and bills agree.

The coordinator's loop without Home Assistant: each poll rates the tenant's
use with `charging.Charger` and posts it with `ledger.charge_meters`. Two
months of polls on a tariff whose tiers count per year: February's bill must
carry January's use into the tiers, exactly as the polls did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.charging import Charger
from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict
from custom_components.prepaid_meter.store import bills, ledger
from custom_components.prepaid_meter.store.ledger import MeterCharge
from custom_components.prepaid_meter.store.tariffs import sync_tariffs

from .conftest import SITE, assert_sound

TZ = "Asia/Shanghai"
YEARLY = {
    "name": "TOU, yearly tiers",
    "currency": "CNY",
    "timezone": TZ,
    "versions": [
        {
            "effective": "2025-01-01T00:00:00+08:00",
            "energy": {
                "kind": "tou",
                "prices": {"valley": "0.30", "peak": "0.90"},
                "calendar": {
                    "seasons": [
                        {"schedules": {"weekday": [["00:00", "valley"], ["08:00", "peak"],
                                                   ["22:00", "valley"]]}}
                    ]
                },
            },
            "tiers": {"basis": "year", "blocks": [{"upto": "250", "adder": "0"},
                                                  {"upto": None, "adder": "0.30"}]},
            "taxes": [{"name": "VAT", "percent": "13", "on": ["energy"]}],
        }
    ],
}  # fmt: skip
START = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 07:00 on January 1st in Shanghai
STEP = timedelta(hours=5)
METERS = [("m1", "Shop 1")]


def test_yearly_tiers_carry_into_the_next_bill_and_a_rebuilt_state(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        stored = sync_tariffs(session, SITE, {"y": YEARLY})["y"]
        assert stored == tariff_from_dict(YEARLY)
        ledger.sync_site(session, site=SITE, name="Mall", currency="CNY",
                         meters=[("m1", "Shop 1", 1, "simulator")],
                         tenants=[("t1", "Shop 1", ("m1",))], at=START)  # fmt: skip
        charger = Charger({"t1": stored}, 1, TZ)
        value, last = Decimal(1000), None
        at = START
        march = billing_period(datetime(2026, 3, 1, 12, tzinfo=UTC), 1, TZ).start
        while at < march + STEP:
            used = Decimal("1.50") if last is not None else Decimal(0)
            value += used
            amount = charger.charge("t1", last, at, used)
            charge = MeterCharge(meter="m1", tenant="t1", value=value, taken_at=at, amount=amount)
            ledger.charge_meters(session, SITE, [charge])
            last = at
            at += STEP
        live = charger.ratings["t1"].state
        assert live is not None
        assert live.period.start == march

        # A restart in March rebuilds the same state from the readings.
        rebuilt = Charger({"t1": stored}, 1, TZ)
        rebuilt.rebuild(session, SITE, {"t1": METERS}, at)
        assert rebuilt.ratings["t1"].state == live

        spec = bills.SiteSpec(site=SITE, name="Mall", currency="CNY", timezone=TZ,
                              price=Decimal(1))  # fmt: skip
        tenant = bills.TenantSpec(id="t1", name="Shop 1", meters=METERS, tariff="y")
        feb = billing_period(datetime(2026, 2, 10, tzinfo=UTC), 1, TZ)
        jan = billing_period(datetime(2026, 1, 10, tzinfo=UTC), 1, TZ)
        issued = bills.issue_bills(session, spec=spec, tenants=[tenant, tenant],
                                   periods=[jan, feb], issued_at=at)  # fmt: skip
        for bill in issued:
            assert bill.document is not None
            assert bill.document["matches_deducted"] is True
            assert bill.document["wallet"]["deducted"] == str(bill.total)
        tiers = {ln["tier"] for ln in issued[1].document["lines"] if ln["section"] == "energy"}
        assert tiers == {1, 2}  # February crosses the 250 kWh of the year
        assert_sound(session)
