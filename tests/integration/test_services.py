"""The money and reading actions in a real Home Assistant, on a real SQLite store and simulator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from sqlalchemy import select

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import JournalEntry, MeterReading
from devtools.simulator import MeterSimulator
from tests.conftest import call


async def refused(hass: HomeAssistant, service: str, **data: Any) -> ServiceValidationError:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, **data)
    return err.value


async def balance(entry: MockConfigEntry, tenant: str) -> Decimal:
    return await entry.runtime_data.store.run(ledger.balance, entry.entry_id, tenant)


async def sound(entry: MockConfigEntry) -> None:
    store, site = entry.runtime_data.store, entry.entry_id
    assert await store.run(ledger.unbalanced_entries, site) == []
    assert await store.run(ledger.journal_sum, site) == 0


async def test_batch_top_up_is_all_or_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    bad = await refused(
        hass,
        "top_up_batch",
        payments=[
            {"tenant": "t1", "amount": "10", "reference": "b-1"},
            {"tenant": "t2", "amount": "1.005", "reference": "b-2"},
        ],
    )
    assert bad.translation_key == "invalid_batch_payment"
    assert bad.translation_placeholders == {"index": "2"}
    assert await balance(init_integration, "t1") == 0

    payments = [
        {"tenant": "t1", "amount": "10", "method": "wechat", "reference": "b-1"},
        {"tenant": "t2", "amount": "20.50", "method": "alipay", "reference": "b-2"},
    ]
    first = await call(hass, "top_up_batch", payments=payments)
    again = await call(hass, "top_up_batch", payments=payments)
    assert [p["balance"] for p in first["payments"]] == ["10", "20.50"]
    assert [p["duplicate"] for p in again["payments"]] == [True, True]
    assert await balance(init_integration, "t2") == Decimal("20.50")
    assert hass.states.get("sensor.shop_02_balance").state == "20.50"
    await sound(init_integration)


async def test_refund_never_exceeds_the_balance_unless_forced(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    await call(hass, "top_up", tenant="t1", amount="30", reference="p1")
    assert simulator.meters[1].relay_closed
    err = await refused(hass, "refund", tenant="t1", amount="30.01", reference="r1")
    assert err.translation_key == "refund_exceeds_balance"
    assert await balance(init_integration, "t1") == 30
    response = await call(hass, "refund", tenant="t1", amount="30", method="cash", reference="r1")
    assert response["balance"] == "0"
    # At zero credit (cut-off enabled) the refund opens the relay at once.
    assert not simulator.meters[1].relay_closed
    forced = await call(hass, "refund", tenant="t1", amount="5", reference="r2", force=True)
    assert forced["balance"] == "-5"
    await sound(init_integration)


async def test_adjustment_keeps_reason_and_who(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    response = await hass.services.async_call(
        DOMAIN,
        "adjust_balance",
        {"tenant": "t3", "amount": "-2.50", "reason": "meter 3 misread on 1 March"},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert response["balance"] == "-2.50"
    assert (
        await refused(hass, "adjust_balance", tenant="t3", amount="1", reason=" ")
    ).translation_key == "reason_required"

    def adjustments(session: Any) -> list[tuple[str, str | None]]:
        rows = session.scalars(select(JournalEntry).where(JournalEntry.kind == "adjustment"))
        return [(e.memo, e.actor) for e in rows]

    store = init_integration.runtime_data.store
    assert await store.run(adjustments) == [("meter 3 misread on 1 March", hass_admin_user.id)]
    await sound(init_integration)


async def test_money_actions_are_admin_only(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_read_only_user: MockUser
) -> None:
    for service, data in (
        ("top_up", {"tenant": "t1", "amount": "5"}),
        ("refund", {"tenant": "t1", "amount": "5", "force": True}),
        ("adjust_balance", {"tenant": "t1", "amount": "5", "reason": "x"}),
        ("settle_account", {"tenant": "t1"}),
    ):
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN,
                service,
                data,
                blocking=True,
                return_response=True,
                context=Context(user_id=hass_read_only_user.id),
            )
    assert await balance(init_integration, "t1") == 0


async def test_move_out_refunds_opens_the_relay_and_closes_the_account(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    await call(hass, "top_up", tenant="t2", amount="50", method="wechat", reference="p")
    assert simulator.meters[2].relay_closed
    simulator.advance(1800)
    response = await call(hass, "settle_account", tenant="t2", method="cash", reference="out-2")
    # The final poll charged the last half hour before the refund.
    charged = Decimal(50) - Decimal(response["refunded"])
    assert charged > 0
    assert response["amount_due"] == "0"
    assert await balance(init_integration, "t2") == 0
    assert not simulator.meters[2].relay_closed
    await hass.async_block_till_done()
    assert hass.states.get("sensor.shop_02_supply").state == "locked"
    again = await call(hass, "settle_account", tenant="t2", method="cash", reference="out-2")
    assert again["duplicate"] is True
    err = await refused(hass, "top_up", tenant="t2", amount="5", reference="late")
    assert err.translation_key == "account_closed"
    # No more charges reach the closed account, even though its meter keeps counting.
    simulator.meters[2].relay_closed = True
    simulator.advance(3600)
    await init_integration.runtime_data.coordinator.async_refresh()
    assert await balance(init_integration, "t2") == 0
    await sound(init_integration)


async def test_readings_by_hand_and_by_import(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    coordinator = init_integration.runtime_data.coordinator
    start = coordinator._cursors["m1"]
    now = dt_util.utcnow()
    response = await call(
        hass, "record_reading", meter="m1", time=now.isoformat(), value=str(start + 2)
    )
    assert Decimal(response["charged"]) == 2 * Decimal("1.50")
    assert await balance(init_integration, "t1") == Decimal("-3.00")

    # One bad row (row 4 goes backwards) rejects the whole file, with its row number.
    t = [(now - timedelta(hours=h)).isoformat() for h in (3, 2, 1)]
    rows = f"meter,time,value\nm3,{t[0]},5000\nm3,{t[1]},5001\nm3,{t[2]},4999\n"
    err = await refused(hass, "import_readings", csv=rows)
    assert err.translation_key == "reading_not_monotonic"
    assert err.translation_placeholders == {"row": "4", "meter": "m3"}
    for text, key in (
        (f"m9,{t[0]},1", "reading_unknown_meter"),
        ("m2,1999-12-31T00:00:00+00:00,1", "reading_bad_time"),
        (f"m2,{t[0]},lots", "reading_bad_row"),
        ("m1,\r,0", "reading_bad_row"),  # the csv module's own error, found by fuzzing
        (f"m2,{(now + timedelta(days=1)).isoformat()},1", "reading_bad_time"),
    ):
        assert (await refused(hass, "import_readings", csv=text)).translation_key == key

    def count(session: Any) -> int:
        return len(
            session.scalars(select(MeterReading.id).where(MeterReading.source == "import")).all()
        )

    store = init_integration.runtime_data.store
    assert await store.run(count) == 0
    # A file in the config directory; importing it twice records nothing new.
    path = Path(hass.config.path("readings.csv"))
    path.write_text(f"m1,{t[0]},{start - 1}\nm1,{t[1]},{start - Decimal('0.5')}\n")
    first = await call(hass, "import_readings", file="readings.csv")
    again = await call(hass, "import_readings", file="readings.csv")
    assert (first["recorded"], first["charges"]) == (2, 0)  # history before the cursor
    assert (again["recorded"], again["already_known"]) == (0, 2)
    err = await refused(hass, "import_readings", file="../etc/passwd")
    assert err.translation_key == "import_file_not_found"
    await sound(init_integration)


async def test_reconciliation_adds_up_and_exports_csv(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: MeterSimulator
) -> None:
    start = dt_util.utcnow() - timedelta(minutes=1)
    await call(hass, "top_up", tenant="t1", amount="100", method="wechat", reference="w1")
    await call(hass, "top_up", tenant="t2", amount="40", method="cash", reference="c1")
    simulator.advance(3600)
    await init_integration.runtime_data.coordinator.async_refresh()
    await call(hass, "refund", tenant="t1", amount="10", method="cash", reference="r1")
    await call(hass, "adjust_balance", tenant="t2", amount="1.25", reason="goodwill")
    report = await call(
        hass,
        "reconciliation_report",
        start=start.isoformat(),
        end=(dt_util.utcnow() + timedelta(minutes=1)).isoformat(),
    )
    assert report["balanced"] is True, report["checks"]
    assert report["total_receipts"] == "140"
    assert report["total_refunds"] == "10"
    assert Decimal(report["charges"]["energy"]) > 0
    t1 = report["tenants"]["t1"]
    assert Decimal(t1["closing"]) == await balance(init_integration, "t1")
    assert "receipt,wechat," in report["csv"]
    assert Path(report["file"]).read_text() == report["csv"]
    err = await refused(
        hass, "reconciliation_report", start=start.isoformat(), end=start.isoformat()
    )
    assert err.translation_key == "invalid_period"


async def test_outside_payment_system_tops_up_over_rest(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_client: Any
) -> None:
    """The README's curl call: POST /api/services/prepaid_meter/top_up?return_response."""
    from homeassistant.setup import async_setup_component

    assert await async_setup_component(hass, "api", {})
    client = await hass_client()
    body = {"tenant": "t3", "amount": "88.00", "method": "alipay", "reference": "ALI-20260301-9"}
    for _ in range(2):  # the payment system retries: credited once
        resp = await client.post("/api/services/prepaid_meter/top_up?return_response", json=body)
        assert resp.status == 200
        data = await resp.json()
    assert data["service_response"]["balance"] == "88.00"
    assert data["service_response"]["duplicate"] is True
    resp = await client.post(
        "/api/services/prepaid_meter/top_up?return_response", json={**body, "amount": "-1"}
    )
    # Home Assistant's REST API answers a refused action with 500 (not 400): not credited.
    assert resp.status >= 400
    assert await balance(init_integration, "t3") == Decimal("88.00")
