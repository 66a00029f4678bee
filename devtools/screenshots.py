"""Render a sample bill with the default template and screenshot it in headless Chromium.

    .venv/bin/python -m devtools.screenshots      # writes docs/bill.png

The bill is made by the real pipeline (store, rating, assembly, template) on
a throw-away SQLite database: one tenant, April 2024, 15-minute readings,
the time-of-use and tier tariff of ``bench/rating.py``, a standing charge.
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
from custom_components.prepaid_meter.engine.calendars import billing_period
from custom_components.prepaid_meter.store import bills, ledger
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


def main() -> int:
    out = ROOT / "docs" / "bill.png"
    with tempfile.TemporaryDirectory() as tmp:
        doc = sample_bill(Path(tmp) / "demo.db")
        page = Path(tmp) / "bill.html"
        page.write_text(render_html(doc, "en"), encoding="utf-8")
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={out}", "--window-size=900,1400", page.as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
