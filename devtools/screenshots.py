"""Render a sample bill and tenant page with the default templates; screenshot them in Chromium.

    .venv/bin/python -m devtools.screenshots      # writes docs/bill.png and docs/tenant-page.png

The bill is made by the real pipeline (store, rating, assembly, template) on
a throw-away SQLite database: one tenant, April 2024, 15-minute readings,
the time-of-use and tier tariff of ``bench/rating.py``, a standing charge.
The tenant page is the same tenant ten hours after the bill's period ended,
read from that database by the page's own store reads and template, at a
phone's size (390 x 844 CSS pixels).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import sessionmaker

from custom_components.prepaid_meter.documents import render_html
from custom_components.prepaid_meter.engine.calendars import as_zone, billing_period
from custom_components.prepaid_meter.engine.policy import SupplyState
from custom_components.prepaid_meter.store import bills, ledger, tenant_access
from custom_components.prepaid_meter.store.ledger import MeterCharge
from custom_components.prepaid_meter.store.models import TariffVersion
from custom_components.prepaid_meter.store.store import init_schema, make_engine

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TZ = "Asia/Shanghai"


def _tariff() -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from bench.rating import TARIFF

    version = dict(TARIFF["versions"][0])  # type: ignore[index]
    version["standing"] = [{"name": "meter service", "amount": "15", "per": "month"}]
    version["taxes"] = [{"name": "VAT", "percent": "13"}]
    return {**TARIFF, "versions": [version]}


def sample_bill(db: Path) -> dict[str, object]:
    """A bill issued by the store for a sample tenant with a year of history."""
    engine = make_engine(f"sqlite:///{db}")
    init_schema(engine)
    period = billing_period(datetime(2024, 4, 10, tzinfo=UTC), 1, TZ)
    with sessionmaker(engine, expire_on_commit=False)() as session:
        session.add(TariffVersion(site="demo", tariff="main", effective_from=period.start,
                                  definition=json.dumps(_tariff())))  # fmt: skip
        session.commit()
        ledger.sync_site(session, site="demo", name="Riverside Mall", currency="CNY",
                         meters=[("m1", "Shop 12 meter", 1, "ddsy1352")],
                         tenants=[("t12", "Shop 12 — Green Leaf Café", ["m1"])],
                         at=period.start - timedelta(days=400))  # fmt: skip
        ledger.top_up(session, site="demo", tenant="t12", amount=Decimal(800), method="wechat",
                      reference="demo-1", at=period.start + timedelta(days=3))  # fmt: skip
        at, value, charges = period.start - timedelta(days=365), Decimal("4210.00"), []
        k = 0
        while at <= period.end:
            use = Decimal((k * 37) % 23) / 100 if 8 <= (k // 4) % 24 <= 21 else Decimal("0.03")
            if at > period.start - timedelta(days=1):
                charges.append(MeterCharge(meter="m1", tenant="t12", value=value, taken_at=at,
                                           amount=use * Decimal("0.6402")))  # fmt: skip
            elif k % 96 == 0:
                charges.append(MeterCharge(meter="m1", tenant="", value=value, taken_at=at,
                                           amount=Decimal(0)))  # fmt: skip
            value += use
            at += timedelta(minutes=15)
            k += 1
        ledger.charge_meters(session, "demo", charges)
        spec = bills.SiteSpec(site="demo", name="Riverside Mall", currency="CNY", timezone=TZ,
                              price=Decimal("0.6402"), address="88 River Road")  # fmt: skip
        tenant = bills.TenantSpec(id="t12", name="Shop 12 — Green Leaf Café",
                                  meters=[("m1", "Shop 12 meter")])  # fmt: skip
        [issued] = bills.issue_bills(session, spec=spec, tenants=[tenant], periods=[period],
                                     issued_at=period.end + timedelta(hours=9))  # fmt: skip
    engine.dispose()
    assert issued.document is not None
    return issued.document


def sample_tenant_page(db: Path, lang: str = "en") -> str:
    """The sample tenant's page ten hours after the bill's period, from the bill's database."""
    from custom_components.prepaid_meter.tenant_page import PageInput, hour_bounds, render_page

    period = billing_period(datetime(2024, 4, 10, tzinfo=UTC), 1, TZ)
    now = period.end + timedelta(hours=10, minutes=20)
    engine = make_engine(f"sqlite:///{db}")
    with sessionmaker(engine, expire_on_commit=False)() as session:
        [value] = tenant_access.counters_at(session, "demo", "m1", [period.end])
        assert value is not None
        at, charges = period.end, []
        while at < now:  # the morning after: a quiet night, then the café opens
            at += timedelta(minutes=15)
            use = Decimal("0.35") if at.astimezone(as_zone(TZ)).hour >= 7 else Decimal("0.04")
            value += use
            charges.append(MeterCharge(meter="m1", tenant="t12", value=value, taken_at=at,
                                       amount=use * Decimal("0.9876")))  # fmt: skip
        ledger.charge_meters(session, "demo", charges)
        ledger.top_up(session, site="demo", tenant="t12", amount=Decimal(200), method="alipay",
                      reference="demo-2", at=period.end + timedelta(hours=8))  # fmt: skip
        spec = bills.SiteSpec(site="demo", name="Riverside Mall", currency="CNY", timezone=TZ,
                              price=Decimal("0.6402"))  # fmt: skip
        tariff = bills.site_tariff(session, spec)
        bounds = hour_bounds(now, TZ)
        data = tenant_access.page_data(session, "demo", "t12", ["m1"], bounds)
        balance = ledger.balance(session, "demo", "t12")
        week = bills.wallet_movements(session, "demo", "t12", now - timedelta(days=7), now)
    engine.dispose()
    page = PageInput(
        site_name="Riverside Mall",
        tenant_name="Shop 12 — Green Leaf Café",
        currency="CNY",
        unit=tariff.unit,
        timezone=TZ,
        now=now,
        expires=now + timedelta(days=30),
        balance=balance,
        days_left=balance / (week.deducted / 7) if week.deducted > 0 else None,
        supply=SupplyState.ON,
        tariff=tariff,
        bounds=bounds,
        data=data,
        base="/api/prepaid_meter/tenant/TOKEN",
    )
    return render_page(page, lang)


def screenshot(html: str, out: Path, size: str, tmp: Path) -> None:
    """A screenshot of the HTML in headless Chromium at a window size (``W,H``)."""
    page = tmp / f"{out.stem}.html"
    page.write_text(html, encoding="utf-8")
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={out}", f"--window-size={size}", page.as_uri()],
        check=True, capture_output=True,
    )  # fmt: skip
    print(out)


def main() -> int:
    docs = ROOT / "docs"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        doc = sample_bill(db)
        screenshot(render_html(doc, "en"), docs / "bill.png", "900,1400", Path(tmp))
        screenshot(sample_tenant_page(db), docs / "tenant-page.png", "390,844", Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
