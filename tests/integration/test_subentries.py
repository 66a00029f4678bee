"""Sub-entry flows on a real site: meters read on the simulator, tenants, tariffs, sharing rules.

Every form's errors are checked (nothing saved), then a saved sub-entry is
seen to reload the site: its devices and entities appear without a restart,
and removing it removes them.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter import async_remove_config_entry_device
from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.engine.tariffs import tariff_from_dict
from custom_components.prepaid_meter.meters.reader import EntityMeter
from custom_components.prepaid_meter.subentries import site_options
from custom_components.prepaid_meter.subentry_flows import FIRST_EFFECTIVE
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.simulator.server import _free_port
from devtools.site import site_entry


@pytest.fixture
def meter_count() -> int:
    return 4


@pytest.fixture
async def site(hass: HomeAssistant, simulator: MeterSimulator, db_url: str) -> MockConfigEntry:
    """A loaded site on the simulator with no meters or tenants yet."""
    entry = site_entry(simulator, db_url, options={"meters": [], "tenants": []})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def start(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, subentry_id: str | None = None
) -> Any:
    context = {"source": "user"}
    if subentry_id is not None:
        context = {"source": "reconfigure", "subentry_id": subentry_id}
    return await hass.config_entries.subentries.async_init((entry.entry_id, kind), context=context)


async def submit(hass: HomeAssistant, result: Any, data: dict[str, Any]) -> Any:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


def subentry(entry: MockConfigEntry, title: str) -> ConfigSubentry:
    return next(s for s in entry.subentries.values() if s.title == title)


def device(hass: HomeAssistant, entry: MockConfigEntry, kind: str, ident: str) -> Any:
    return dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_{kind}_{ident}")}
    )


async def add_meter(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, device_id: int, **extra: Any
) -> ConfigSubentry:
    result = await start(hass, entry, "meter")
    result = await submit(
        hass, result, {"name": name, "utility": "electricity", "source": "modbus"}
    )
    result = await submit(
        hass, result, {"bus": "default", "device_id": device_id, "profile": "simulator", **extra}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    return subentry(entry, name)


async def add_tenant(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, meters: list[str], **extra: Any
) -> ConfigSubentry:
    result = await start(hass, entry, "tenant")
    result = await submit(
        hass,
        result,
        {"name": name, "meters": meters, "billing": "prepaid", "language": "en", **extra},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    return subentry(entry, name)


# --------------------------------------------------------------------------- meters


async def test_meter_is_read_before_saving_and_appears_without_restart(
    hass: HomeAssistant, site: MockConfigEntry, simulator: MeterSimulator
) -> None:
    result = await start(hass, site, "meter")
    result = await submit(
        hass, result, {"name": "Shop A", "utility": "electricity", "source": "modbus"}
    )
    assert result["step_id"] == "modbus"
    base = {"bus": "default", "profile": "simulator"}
    bad = await submit(hass, result, {**base, "device_id": 9})
    assert bad["errors"] == {"base": "meter_not_answering"}
    bad = await submit(hass, result, {**base, "device_id": 1, "ct_ratio": "0", "pt_ratio": "x"})
    assert bad["errors"] == {"ct_ratio": "invalid_ratio", "pt_ratio": "invalid_ratio"}
    bad = await submit(
        hass,
        result,
        {**base, "device_id": 1, "profile": "custom", "custom_profile": "registers: {}"},
    )
    assert bad["errors"] == {"custom_profile": "invalid_profile"}
    assert "energy_import" in bad["description_placeholders"]["error"]
    assert not site.subentries
    done = await submit(hass, result, {**base, "device_id": 1, "ct_ratio": "40"})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert site.state is ConfigEntryState.LOADED
    meter = site.runtime_data.site.meters[0]
    assert (meter.id, meter.device_id, meter.ct_ratio) == ("shop_a", 1, "40")
    sample = site.runtime_data.coordinator.data.meters["shop_a"].sample
    assert sample is not None
    # 1000.01 kWh at the start (tests/conftest.py), counting up since, times the CT ratio.
    assert Decimal("1000.01") * 40 <= sample.energy <= simulator.meters[1].energy_kwh * 40
    assert device(hass, site, "meter", "shop_a") is not None

    # The same name, or the same device on the same bus, is refused.
    again = await start(hass, site, "meter")
    bad = await submit(
        hass, again, {"name": "Shop A", "utility": "electricity", "source": "modbus"}
    )
    assert bad["errors"] == {"name": "name_taken"}
    nxt = await submit(
        hass, again, {"name": "Shop B", "utility": "electricity", "source": "modbus"}
    )
    bad = await submit(hass, nxt, {**base, "device_id": 1})
    assert bad["errors"] == {"device_id": "device_in_use"}
    assert len(site.subentries) == 1


async def test_meter_profile_must_match_its_utility_and_custom_maps_work(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    result = await start(hass, site, "meter")
    result = await submit(hass, result, {"name": "Water 1", "utility": "water", "source": "modbus"})
    bad = await submit(hass, result, {"bus": "default", "device_id": 2, "profile": "simulator"})
    assert bad["errors"] == {"profile": "utility_mismatch"}
    custom = (
        "name: Water meter\n"
        "registers:\n"
        '  energy_import: {address: 0, type: uint32, scale: "0.01"}\n'
    )
    done = await submit(
        hass,
        result,
        {"bus": "default", "device_id": 2, "profile": "custom", "custom_profile": custom},
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    data = subentry(site, "Water 1").data
    assert data["custom_profile"]["utility"] == "water"
    assert site.runtime_data.site.meters[0].utility == "water"
    assert site.runtime_data.coordinator.data.meters["water_1"].sample is not None


async def test_an_energy_sensor_as_meter(hass: HomeAssistant, site: MockConfigEntry) -> None:
    hass.states.async_set("sensor.house_energy", "unknown")
    result = await start(hass, site, "meter")
    result = await submit(
        hass, result, {"name": "House", "utility": "electricity", "source": "entity"}
    )
    assert result["step_id"] == "entity"
    bad = await submit(hass, result, {"energy_entity": "sensor.house_energy"})
    assert bad["errors"] == {"base": "entity_not_answering"}
    hass.states.async_set("sensor.house_energy", "1234.5", {"unit_of_measurement": "kWh"})
    done = await submit(hass, result, {"energy_entity": "sensor.house_energy"})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert isinstance(site.runtime_data.coordinator.readers["house"], EntityMeter)
    sample = site.runtime_data.coordinator.data.meters["house"].sample
    assert sample is not None
    assert sample.energy == Decimal("1234.5")


async def test_meter_reconfigure_keeps_its_id_and_renames_the_device(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    sub = await add_meter(hass, site, "Shop A", 1)
    result = await start(hass, site, "meter", sub.subentry_id)
    assert result["step_id"] == "user"
    result = await submit(
        hass, result, {"name": "Shop A1", "utility": "electricity", "source": "modbus"}
    )
    # The meter has charged from its counter: another ratio would charge the difference.
    modbus = {"bus": "default", "device_id": 1, "profile": "simulator"}
    bad = await submit(hass, result, {**modbus, "multiplier": "2"})
    assert bad["errors"] == {"base": "meter_charged"}
    bad = await submit(hass, result, {**modbus, "device_id": 2})
    assert bad["errors"] == {"base": "meter_charged"}
    done = await submit(hass, result, modbus)
    assert done["type"] is FlowResultType.ABORT
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert sub.subentry_id in site.subentries
    assert site.subentries[sub.subentry_id].title == "Shop A1"
    meter = site.runtime_data.site.meters[0]
    assert (meter.id, meter.name, meter.multiplier) == ("shop_a", "Shop A1", "1")
    assert device(hass, site, "meter", "shop_a").name == "Shop A1 meter"


async def test_a_meter_deleted_and_added_again_starts_a_new_counter(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    sub = await add_meter(hass, site, "Shop A", 1)
    hass.config_entries.async_remove_subentry(site, sub.subentry_id)
    await hass.async_block_till_done()
    again = await add_meter(hass, site, "Shop A", 2)
    assert again.data["id"] == "shop_a_2"
    assert [m.id for m in site.runtime_data.site.meters] == ["shop_a_2"]
    # A tenant's id is not reused either: the old wallet stays the old tenant's.
    await add_tenant(hass, site, "Noodle Bar", ["shop_a_2"])
    tenant = subentry(site, "Noodle Bar")
    hass.config_entries.async_remove_subentry(site, tenant.subentry_id)
    await hass.async_block_till_done()
    assert (await add_tenant(hass, site, "Noodle Bar", [])).data["id"] == "noodle_bar_2"


async def test_a_gateway_bus_and_a_meter_on_it(hass: HomeAssistant, site: MockConfigEntry) -> None:
    gateway = MeterSimulator(
        [SimulatedMeter(device_id=7, energy_centi_kwh=700_007)], transport="rtu_over_tcp"
    )
    await gateway.start()
    try:
        result = await start(hass, site, "bus")
        result = await submit(hass, result, {"name": "Gateway 2", "kind": "rtu_over_tcp"})
        assert result["step_id"] == "network"
        bad = await submit(hass, result, {"host": "127.0.0.1", "port": _free_port("127.0.0.1")})
        assert bad["errors"] == {"base": "cannot_connect"}
        bad = await submit(hass, result, {"host": site.data["host"], "port": site.data["port"]})
        assert bad["errors"] == {"base": "bus_in_use"}
        done = await submit(hass, result, {"host": gateway.host, "port": gateway.port})
        assert done["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        assert [b.kind for b in site.runtime_data.site.buses] == ["tcp", "rtu_over_tcp"]

        result = await start(hass, site, "meter")
        result = await submit(
            hass, result, {"name": "Far shop", "utility": "electricity", "source": "modbus"}
        )
        done = await submit(
            hass, result, {"bus": "gateway_2", "device_id": 7, "profile": "simulator"}
        )
        assert done["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        sample = site.runtime_data.coordinator.data.meters["far_shop"].sample
        assert sample is not None
        assert sample.energy >= Decimal("7000.07")

        # Deleting the bus takes its meters with it, and the site still loads.
        hass.config_entries.async_remove_subentry(site, subentry(site, "Gateway 2").subentry_id)
        await hass.async_block_till_done()
        assert site.state is ConfigEntryState.LOADED
        assert site.runtime_data.site.meters == ()
        assert device(hass, site, "meter", "far_shop") is None
    finally:
        await gateway.stop()


async def test_a_serial_bus_that_cannot_be_opened_is_refused(
    hass: HomeAssistant, site: MockConfigEntry, tmp_path: Path
) -> None:
    result = await start(hass, site, "bus")
    result = await submit(hass, result, {"name": "Line 1", "kind": "serial"})
    assert result["step_id"] == "serial"
    bad = await submit(
        hass,
        result,
        {
            "serial_port": str(tmp_path / "ttyNONE"),
            "baudrate": "9600",
            "parity": "N",
            "bytesize": "8",
            "stopbits": "1",
        },
    )
    assert bad["errors"] == {"base": "cannot_connect"}
    assert not site.subentries


# --------------------------------------------------------------------------- tenants


async def test_tenant_form_errors_then_tenant_with_overrides(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    await add_meter(hass, site, "Shop A", 1)
    result = await start(hass, site, "tenant")
    base = {"name": "Noodle Bar", "meters": ["shop_a"], "billing": "prepaid", "language": "zh-Hans"}
    bad = await submit(
        hass,
        result,
        {**base, "floor_area": "big", "fees": "Management fee fifty", "warning_levels": "1, x"},
    )
    assert bad["errors"] == {
        "floor_area": "invalid_number",
        "fees": "invalid_fees",
        "warning_levels": "invalid_warning_levels",
    }
    bad = await submit(hass, result, {**base, "friendly_hours": "mon-fri 18:00"})
    assert bad["errors"] == {"friendly_hours": "invalid_friendly_hours"}
    assert [s.subentry_type for s in site.subentries.values()] == ["meter"]
    done = await submit(
        hass,
        result,
        {
            **base,
            "contact": "+86 138 0000 0000",
            "floor_area": "120.5",
            "fees": "Management fee: 50",
            "warning_levels": "80",
            "credit_limit": "10",
            "move_in": "2026-11-01",
            "cut_off_when_overdue": True,
        },
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    tenant = site.runtime_data.site.tenants[0]
    assert (tenant.id, tenant.meters) == ("noodle_bar", ("shop_a",))
    assert tenant.warnings.balances == (Decimal(80),)
    assert tenant.policy.cut_off_at == Decimal(-10)
    assert tenant.cut_off_when_overdue
    spec = site_options(site)["tenants"][0]
    assert spec["fees"] == [{"name": "Management fee", "amount": "50", "per": "month"}]
    assert (spec["billing"], spec["language"], spec["floor_area"]) == (
        "prepaid",
        "zh-Hans",
        "120.5",
    )
    assert spec["move_in"] == "2026-11-01"
    assert "form" not in spec
    assert hass.states.get("sensor.noodle_bar_balance") is not None
    assert device(hass, site, "tenant", "noodle_bar") is not None

    # A meter already paid for by a tenant is not offered to another one.
    other = await start(hass, site, "tenant")
    with pytest.raises(InvalidData, match="meters"):
        await submit(hass, other, {**base, "name": "Tea Shop"})


async def test_tenant_reconfigure_and_removal_remove_devices(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    meter = await add_meter(hass, site, "Shop A", 1)
    tenant = await add_tenant(hass, site, "Noodle Bar", ["shop_a"])
    result = await start(hass, site, "tenant", tenant.subentry_id)
    done = await submit(
        hass,
        result,
        {"name": "Noodle Bar 2", "meters": ["shop_a"], "billing": "postpaid", "language": "en"},
    )
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    spec = site_options(site)["tenants"][0]
    assert (spec["id"], spec["name"], spec["billing"]) == ("noodle_bar", "Noodle Bar 2", "postpaid")

    # Removing the meter unassigns it; its device and entities go away.
    ent_reg = er.async_get(hass)
    energy = [
        e.entity_id
        for e in er.async_entries_for_device(ent_reg, device(hass, site, "meter", "shop_a").id)
    ]
    assert energy
    hass.config_entries.async_remove_subentry(site, meter.subentry_id)
    await hass.async_block_till_done()
    assert site.state is ConfigEntryState.LOADED
    assert site.runtime_data.site.tenants[0].meters == ()
    assert device(hass, site, "meter", "shop_a") is None
    assert all(ent_reg.async_get(e) is None for e in energy)

    hass.config_entries.async_remove_subentry(site, tenant.subentry_id)
    await hass.async_block_till_done()
    assert site.runtime_data.site.tenants == ()
    assert device(hass, site, "tenant", "noodle_bar") is None
    assert ent_reg.async_get("sensor.noodle_bar_balance") is None


async def test_only_devices_no_longer_configured_may_be_deleted(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    await add_meter(hass, site, "Shop A", 1)
    live = device(hass, site, "meter", "shop_a")
    assert not await async_remove_config_entry_device(hass, site, live)
    stale = dr.async_get(hass).async_get_or_create(
        config_entry_id=site.entry_id, identifiers={(DOMAIN, f"{site.entry_id}_meter_gone")}
    )
    assert await async_remove_config_entry_device(hass, site, stale)
    # A reload removes such a device by itself.
    assert await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done()
    assert device(hass, site, "meter", "gone") is None
    assert device(hass, site, "meter", "shop_a") is not None


# --------------------------------------------------------------------------- tariffs


TOU = {
    "name": "TOU",
    "kind": "tou",
    "tou_prices": "peak: 1.20\nvalley: 0.40",
    "weekday_schedule": "00:00 valley, 08:00 peak, 22:00 valley",
}


async def test_tariff_editor_errors_come_from_the_engine(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    result = await start(hass, site, "tariff")
    bad = await submit(hass, result, {"name": "Flat", "kind": "flat", "price": "abc"})
    assert bad["errors"] == {"base": "tariff_invalid_number"}
    assert bad["description_placeholders"]["path"] == "versions[0].energy.price"
    bad = await submit(
        hass, result, {**TOU, "weekday_schedule": "00:00 valley, 08:00 peak, 22:00 night"}
    )
    assert bad["errors"] == {"base": "tariff_unknown_period"}
    bad = await submit(hass, result, {**TOU, "tou_prices": "peak 1.20"})
    assert bad["errors"] == {"tou_prices": "invalid_lines"}
    bad = await submit(hass, result, {**TOU, "tiers": "200: 0\n400: 0.1"})
    assert bad["errors"] == {"base": "tariff_tier_limits"}
    bad = await submit(hass, result, {**TOU, "effective": "soon"})
    assert bad["errors"] == {"effective": "invalid_effective"}
    assert not site.subentries


async def test_tariffs_become_the_options_shape_and_change_by_new_versions(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    result = await start(hass, site, "tariff")
    done = await submit(
        hass,
        result,
        {
            **TOU,
            "default": True,
            "tiers": "200: 0\n*: 0.10",
            "standing": "Meter rent: 5 / month",
            "taxes": "VAT: 13",
            "demand_price": "30",
            "demand_window": "15",
        },
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY, (
        done.get("errors"),
        done.get("description_placeholders"),
    )
    await hass.async_block_till_done()
    options = site_options(site)
    assert options["tariff"] == "tou"
    engine = options["tariffs"]["tou"]
    tariff = tariff_from_dict(engine)
    assert tariff.currency == "CNY"
    assert engine["versions"][0]["effective"] == FIRST_EFFECTIVE
    version = tariff.versions[0]
    assert [t.name for t in version.taxes] == ["VAT"]
    assert version.demand is not None
    assert version.standing[0].per == "month"

    second = await start(hass, site, "tariff")
    bad = await submit(
        hass, second, {"name": "Flat", "kind": "flat", "price": "1", "default": True}
    )
    assert bad["errors"] == {"default": "default_taken"}
    done = await submit(hass, second, {"name": "Flat", "kind": "flat", "price": "1"})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    # A tenant may pick a tariff; a deleted tariff falls back to the default.
    await add_meter(hass, site, "Shop A", 1)
    await add_tenant(hass, site, "Noodle Bar", ["shop_a"], tariff="flat")
    assert site_options(site)["tenants"][0]["tariff"] == "flat"
    hass.config_entries.async_remove_subentry(site, subentry(site, "Flat").subentry_id)
    await hass.async_block_till_done()
    assert "tariff" not in site_options(site)["tenants"][0]
    assert set(site_options(site)["tariffs"]) == {"tou"}

    # A price change is a new version from a future date; the past is not rewritten.
    tou = subentry(site, "TOU")
    result = await start(hass, site, "tariff", tou.subentry_id)
    bad = await submit(hass, result, {**TOU, "effective": "2020-01-01 00:00"})
    assert bad["errors"] == {"effective": "effective_in_past"}
    later = (dt_util.now() + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    done = await submit(
        hass,
        result,
        {**TOU, "default": True, "tou_prices": "peak: 1.30\nvalley: 0.45", "effective": later},
    )
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    versions = site_options(site)["tariffs"]["tou"]["versions"]
    assert [v["energy"]["prices"]["peak"] for v in versions] == ["1.20", "1.30"]
    assert versions[0]["effective"] == FIRST_EFFECTIVE
    assert site.state is ConfigEntryState.LOADED


# --------------------------------------------------------------------------- sharing rules


async def test_sharing_rules_take_figures_from_tenants_and_are_checked_with_the_site(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    await add_meter(hass, site, "Shop A", 1)
    await add_meter(hass, site, "Shop B", 2)
    await add_meter(hass, site, "Lift", 3)
    await add_meter(hass, site, "Main", 4)
    await add_tenant(hass, site, "A", ["shop_a"], floor_area="100")
    await add_tenant(hass, site, "B", ["shop_b"], floor_area="50")

    result = await start(hass, site, "sharing_rule")
    rule = {"name": "Lifts", "kind": "common", "method": "area", "tenants": ["a", "b"]}
    bad = await submit(hass, result, rule)
    assert bad["errors"] == {"base": "invalid_rule"}
    bad = await submit(hass, result, {**rule, "meters": ["lift"], "ratios": "a 2"})
    assert bad["errors"] == {"ratios": "invalid_lines"}
    done = await submit(hass, result, {**rule, "meters": ["lift"], "evasion_percent": "8"})
    assert done["type"] is FlowResultType.CREATE_ENTRY, (
        done.get("errors"),
        done.get("description_placeholders"),
    )
    await hass.async_block_till_done()
    shared = site_options(site)["sharing_rules"][0]
    assert [(p["tenant"], p["area"]) for p in shared["participants"]] == [("a", "100"), ("b", "50")]
    assert site.state is ConfigEntryState.LOADED

    loss = {"name": "Loss", "kind": "loss", "method": "consumption", "tenants": ["a", "b"]}
    result = await start(hass, site, "sharing_rule")
    bad = await submit(hass, result, loss)
    assert bad["errors"] == {"master_meter": "master_required"}
    bad = await submit(hass, result, {**loss, "master_meter": "lift"})
    assert bad["errors"] == {"base": "invalid_site"}
    assert "lift" in bad["description_placeholders"]["error"]
    done = await submit(hass, result, {**loss, "master_meter": "main"})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert site_options(site)["master_meter"] == "main"

    result = await start(hass, site, "sharing_rule")
    bad = await submit(hass, result, {**loss, "name": "Loss 2", "master_meter": "lift"})
    assert bad["errors"] == {"master_meter": "master_conflict"}

    # A floor area changed on the tenant reaches the rule.
    tenant_a = subentry(site, "A")
    result = await start(hass, site, "tenant", tenant_a.subentry_id)
    await submit(
        hass,
        result,
        {
            "name": "A",
            "meters": ["shop_a"],
            "billing": "prepaid",
            "language": "en",
            "floor_area": "150",
        },
    )
    await hass.async_block_till_done()
    shared = site_options(site)["sharing_rules"][0]
    assert shared["participants"][0]["area"] == "150"
    assert site.state is ConfigEntryState.LOADED
