"""Bill actions, the bill event and the bill documents served to administrators."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from homeassistant.core import Event, HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import EVENT_BILL_ISSUED
from devtools.simulator import MeterSimulator

from .test_services import balance, call, refused, sound


def pdf_text(path: Path, *options: str) -> str:
    """The text of a PDF as poppler's pdftotext reads it."""
    return subprocess.run(
        ["pdftotext", *options, str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


async def test_generate_serve_and_recalculate_a_bill(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    simulator: MeterSimulator,
    hass_client: ClientSessionGenerator,
    hass_read_only_access_token: str,
    tmp_path: Path,
) -> None:
    start = dt_util.utcnow() - timedelta(minutes=1)
    await call(hass, "top_up", tenant="t1", amount="100", reference="p1")
    coordinator = init_integration.runtime_data.coordinator
    for _ in range(3):
        simulator.advance(1800)
        await coordinator.async_refresh()
    deducted = Decimal(100) - await balance(init_integration, "t1")
    assert deducted > 0
    events: list[Event] = []
    hass.bus.async_listen(EVENT_BILL_ISSUED, events.append)

    response = await call(hass, "generate_bill", tenant="t1", start=start.isoformat())
    [bill] = response["bills"]
    total = Decimal(bill["total"])
    assert total == deducted.quantize(Decimal("0.01"))
    doc: dict[str, Any] = bill["document"]
    assert doc["matches_deducted"] is True
    assert doc["tenant"]["mode"] == "prepaid"
    assert sum(Decimal(line["amount"]) for line in doc["lines"]) == total
    await hass.async_block_till_done()
    [event] = events
    assert event.data["bill_number"] == bill["bill_number"] == "000001"
    assert event.data["total"] == bill["total"]
    assert event.data["currency"] == "CNY"
    assert event.data["url"] == f"/api/prepaid_meter/bill/{bill['bill_id']}.html"
    assert set(event.data) >= {"entry_id", "tenant", "tenant_name", "period_start", "period_end"}

    client = await hass_client()
    page = await client.get(bill["url"])
    assert page.status == 200
    html = await page.text()
    assert bill["total"] in html
    assert "Shop 01" in html
    assert "<svg" in html
    assert f"Issued {doc['issued_local']}" in html  # the site's local date
    pdf = await (await client.get(bill["pdf_url"])).read()
    assert pdf.startswith(b"%PDF")
    assert await (await client.get(bill["pdf_url"])).read() == pdf  # byte for byte
    (tmp_path / "bill.pdf").write_bytes(pdf)
    text = await hass.async_add_executor_job(pdf_text, tmp_path / "bill.pdf", "-layout")
    assert f"{bill['total']} CNY" in text
    assert doc["wallet"]["closing"] in text
    assert f"Issued {doc['issued_local']}" in text
    zh = await (await client.get(bill["pdf_url"] + "?lang=zh-Hans")).read()
    (tmp_path / "zh.pdf").write_bytes(zh)
    zh_text = await hass.async_add_executor_job(pdf_text, tmp_path / "zh.pdf")
    assert "合计" in zh_text
    assert bill["total"] in zh_text
    reader = await hass_client(hass_read_only_access_token)
    assert (await reader.get(bill["url"])).status == 403
    assert (await client.get("/api/prepaid_meter/bill/999.html")).status == 404

    again = await call(hass, "generate_bill", tenant="t1", start=start.isoformat())
    assert again["bills"][0]["duplicate"] is True

    revised = await call(hass, "recalculate_bill", bill=str(bill["bill_id"]))
    assert revised["revision"] == 2
    assert revised["bill_number"] == "000002"
    assert revised["correction"] == "0.00"
    assert revised["document"]["replaces_total"] == bill["total"]
    err = await refused(hass, "recalculate_bill", bill="12345")
    assert err.translation_key == "unknown_bill"
    await sound(init_integration)


async def test_bills_for_every_tenant(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    response = await call(
        hass, "generate_bill", start=(dt_util.utcnow() - timedelta(hours=1)).isoformat()
    )
    assert [b["tenant"] for b in response["bills"]] == ["t1", "t2", "t3"]
    assert [b["bill_number"] for b in response["bills"]] == ["000001", "000002", "000003"]


async def test_tenant_fees_are_lines_and_a_bad_fee_is_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    tenants = [
        {**t, "fees": [{"name": "Rent", "amount": "1200", "per": "month"}]}
        if t["id"] == "t1"
        else t
        for t in entry.options["tenants"]
    ]
    hass.config_entries.async_update_entry(entry, options={**entry.options, "tenants": tenants})
    await hass.async_block_till_done()
    start = (dt_util.utcnow() - timedelta(hours=1)).isoformat()
    response = await call(hass, "generate_bill", tenant="t1", start=start)
    [bill] = response["bills"]
    lines = bill["document"]["lines"]
    assert next(ln for ln in lines if ln["section"] == "fees")["label"] == "Rent"
    assert sum(Decimal(ln["amount"]) for ln in lines) == Decimal(bill["total"])
    assert Decimal(bill["total"]) >= Decimal(1200)

    bad = [{**t, "fees": [{"name": "Rent", "amount": "lots"}]} for t in tenants]
    hass.config_entries.async_update_entry(entry, options={**entry.options, "tenants": bad})
    await hass.async_block_till_done()
    err = await refused(hass, "generate_bill", tenant="t2", start=start)
    assert err.translation_key == "invalid_fee"
