"""The demo mall: its description, its simulator, and its site in a real Home Assistant."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import CONF_CURRENCY, CONF_DATABASE_URL, DOMAIN
from custom_components.prepaid_meter.engine.sharing import sharing_rule_from_dict
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict
from custom_components.prepaid_meter.meters.profiles import parse_profile
from devtools.dashboard import OUT
from devtools.demo import building, mall
from devtools.simulator import MeterSimulator

SHANGHAI = timezone(timedelta(hours=8))
#: A Monday at noon in Shanghai: restaurants at their lunch peak.
MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI).timestamp()


def test_the_mall_has_what_the_demo_promises() -> None:
    shops = mall.shops()
    assert len(shops) == 24
    assert {s.billing for s in shops} == {"prepaid", "postpaid"}
    assert {s.tariff for s in shops} == {"tou", "tiered", "two_part"}
    assert [s.number for s in shops if s.tariff == "two_part"] == [mall.DEMAND_SHOP]
    assert len({s.kind for s in shops}) >= 8
    options = mall.site_options(scan_interval=10)
    for tariff_id, data in options["tariffs"].items():
        assert tariff_from_dict(data).currency == "CNY", tariff_id
    assert tariff_from_dict(options["tariffs"][options["tariff"]]).name == "Commercial time of use"
    # Every shop names its tariff by id (no legacy engine dict in ``tariff``).
    assert isinstance(options["tariff"], str)
    assert {t["tariff"] for t in options["tenants"]} == set(options["tariffs"])
    rules = [sharing_rule_from_dict(r) for r in options["sharing_rules"]]
    assert {r.method for r in rules} == {"area", "equal", "consumption"}
    assert {m for r in rules for m in r.meters} == {c.meter for c in mall.COMMONS}
    assert [r.kind for r in rules].count("loss") == 1
    water = next(m for m in options["meters"] if m["id"] == mall.WATER.meter)
    assert parse_profile("custom:water", water["custom_profile"]).utility == "water"
    # No meter without a tenant is charged: commons, water and master have none.
    tenant_meters = {m for t in options["tenants"] for m in t["meters"]}
    assert {m["id"] for m in options["meters"]} - tenant_meters == {
        "elevators",
        "corridor_lighting",
        "air_conditioning",
        "water",
        "master",
    }
    assert mall.site_options(10) == options, "the same seed builds the same mall"
    # Fast mode: no demand charge on sped-up meters, every poll stored (its
    # simulated hours pass in real seconds), the same mall otherwise.
    fast = mall.site_options(10, fast=True)
    assert {t["tariff"] for t in fast["tenants"]} == {"tou", "tiered"}
    assert (fast["interval_minutes"], options["interval_minutes"]) == (0, 15)
    assert {k: v for k, v in fast.items() if k not in ("tenants", "interval_minutes")} == {
        k: v for k, v in options.items() if k not in ("tenants", "interval_minutes")
    }


def test_load_profiles_follow_the_kind_of_shop() -> None:
    shops = {s.number: s for s in mall.shops()}
    restaurant, supermarket, fashion = shops[1], shops[7], shops[2]
    three_am = MONDAY_NOON - 9 * 3600
    assert mall.shop_load_kw(restaurant, MONDAY_NOON) > 4 * mall.shop_load_kw(restaurant, three_am)
    # Refrigeration: a supermarket keeps about half its peak overnight, a fashion shop nothing.
    assert mall.shop_load_kw(supermarket, three_am) > 0.45 * supermarket.peak_kw
    assert mall.shop_load_kw(fashion, three_am) < 0.05 * fashion.peak_kw
    # The cut-off shop draws at least 60 % of its peak at any hour.
    cut = shops[mall.CUT_OFF_SHOP]
    assert mall.shop_load_kw(cut, three_am) > 0.55 * cut.peak_kw
    assert mall.shop_load_kw(restaurant, MONDAY_NOON) == mall.shop_load_kw(restaurant, MONDAY_NOON)


def test_master_meter_is_the_sum_plus_line_loss() -> None:
    meters = building.meters()
    sim = MeterSimulator(meters, clock=MONDAY_NOON)
    before = {m.device_id: m.energy_centi_kwh for m in meters}
    for _ in range(24 * 12):  # one simulated day in 5-minute steps
        sim.advance(300)
    used = {m.device_id: m.energy_centi_kwh - before[m.device_id] for m in meters}
    electric = sum(v for d, v in used.items() if d not in (mall.WATER.device_id, 30))
    loss = used[mall.MASTER_DEVICE] / electric - 1
    assert loss == pytest.approx(mall.LINE_LOSS, abs=0.002)
    assert used[mall.WATER.device_id] > 0


def test_shipped_dashboard_names_every_shop() -> None:
    text = OUT.read_text(encoding="utf-8")
    for shop in mall.shops():
        assert f"sensor.shop_{shop.number:02d}_balance" in text


@pytest.fixture
async def mall_simulator(socket_enabled: None) -> AsyncGenerator[MeterSimulator]:
    """The demo mall's meters on a real Modbus server, clock at a Monday noon."""
    sim = MeterSimulator(building.meters(), clock=MONDAY_NOON)
    await sim.start()
    yield sim
    await sim.stop()


async def test_the_mall_site_runs_in_home_assistant(
    hass: HomeAssistant, mall_simulator: MeterSimulator, db_url: str
) -> None:
    """The demo's options load (tariffs, sharing rules, water, master) and shop 12 is cut off."""
    await hass.config.async_set_time_zone(mall.TIMEZONE)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Demo mall",
        data={
            CONF_NAME: "Demo mall",
            CONF_HOST: mall_simulator.host,
            CONF_PORT: mall_simulator.port,
            CONF_CURRENCY: "CNY",
            CONF_DATABASE_URL: db_url,
        },
        options=mall.site_options(scan_interval=3600),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    for shop in mall.shops():
        if shop.billing == "prepaid":
            await hass.services.async_call(
                DOMAIN,
                "top_up",
                {
                    "tenant": shop.tenant,
                    "amount": mall.opening_credit(shop),
                    "reference": f"open-{shop.number}",
                },
                blocking=True,
                return_response=True,
            )
    await hass.async_block_till_done()
    # Every shop on supply after its opening top-up (standing charges are owed
    # from the move-in, not from the start of the billing period).
    assert all(mall_simulator.meters[s.device_id].relay_closed for s in mall.shops())

    mall_simulator.advance(15 * 60)  # a quarter of an hour at lunch time
    await coordinator.async_refresh()
    await hass.async_block_till_done()

    registry = er.async_get(hass)

    def state(kind: str, key: str) -> str:
        domain = "switch" if key == "relay" else "sensor"
        entity_id = registry.async_get_entity_id(
            domain, DOMAIN, f"{coordinator.site_id}_{kind}_{key}"
        )
        assert entity_id is not None, f"{kind} {key}"
        return hass.states.get(entity_id).state

    cut = mall.CUT_OFF_SHOP
    assert state(f"tenant_t{cut}", "supply") == "cut_off"
    assert not mall_simulator.meters[cut].relay_closed
    postpaid = min(mall.POSTPAID)
    assert Decimal(state(f"tenant_t{postpaid}", "balance")) < 0
    assert state(f"tenant_t{postpaid}", "supply") == "on"
    assert mall_simulator.meters[postpaid].relay_closed
    on = [s for s in mall.shops() if state(f"tenant_{s.tenant}", "supply") == "on"]
    assert len(on) == 23
    water = state("meter_water", "energy")
    assert Decimal(water) == mall_simulator.meters[mall.WATER.device_id].energy_kwh
    master = Decimal(state("meter_master", "energy"))
    assert master == mall_simulator.meters[mall.MASTER_DEVICE].energy_kwh
    assert await hass.config_entries.async_unload(entry.entry_id)
