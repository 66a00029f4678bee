"""The site flow: the connection is tested before saving; bad values get translated errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.config_flow import parse_device_ids
from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator
from devtools.site import site_entry


async def _start(hass: HomeAssistant, port: int) -> dict:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"name": "Mall", "host": "127.0.0.1", "port": port, "currency": "CNY"},
    )


async def test_site_then_building_creates_the_entry(
    hass: HomeAssistant, simulator: MeterSimulator, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path)  # the default database goes in the config dir
    result = await _start(hass, simulator.port)
    assert result["step_id"] == "building"
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"device_ids": "0-300", "name_prefix": "Shop", "price": "-1", "cut_off_enabled": False},
    )
    assert bad["errors"] == {"device_ids": "invalid_device_ids", "price": "invalid_price"}
    assert not hass.config_entries.async_entries(DOMAIN)
    done = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"device_ids": "1-3", "name_prefix": "Shop", "price": "1.25", "cut_off_enabled": False},
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    entry = done["result"]
    assert entry.options["price"] == "1.25"
    assert entry.options["cut_off_enabled"] is False
    assert [m["device_id"] for m in entry.options["meters"]] == [1, 2, 3]
    await hass.async_block_till_done()
    assert hass.states.get("sensor.shop_03_balance") is not None
    assert (tmp_path / "prepaid_meter.db").is_file()


async def test_unreachable_bus_is_refused(hass: HomeAssistant, socket_enabled: None) -> None:
    from devtools.simulator.server import _free_port

    result = await _start(hass, _free_port("127.0.0.1"))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert not hass.config_entries.async_entries(DOMAIN)


def test_device_id_lists() -> None:
    assert parse_device_ids("1-3, 7") == [1, 2, 3, 7]
    for bad in ("", "0", "248", "3-1", "1,1", "a"):
        try:
            parse_device_ids(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


# ------------------------------------------------------------- aborts, reconfigure, options


async def _loaded(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_a_second_site_on_the_same_bus_is_aborted(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    await _loaded(hass, site_entry(simulator, db_url))
    result = await _start(hass, simulator.port)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_new_site_checks_currency_and_database(
    hass: HomeAssistant, simulator: MeterSimulator, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    site = {"name": "Mall", "host": "127.0.0.1", "port": simulator.port}
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "currency": "yuan"}
    )
    assert bad["errors"] == {"currency": "invalid_currency"}
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**site, "currency": "CNY", "database_url": f"sqlite:///{tmp_path}/no/such/dir/x.db"},
    )
    assert bad["errors"] == {"database_url": "cannot_connect_database"}
    url = f"sqlite:///{tmp_path / 'site.db'}"
    ok = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "currency": "cny", "database_url": url}
    )
    assert ok["step_id"] == "building"
    done = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"device_ids": "1", "name_prefix": "Shop", "price": "1", "cut_off_enabled": False},
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["result"].data["database_url"] == url
    assert done["result"].data["currency"] == "CNY"
    await hass.async_block_till_done()
    assert (tmp_path / "site.db").is_file()
    assert not (tmp_path / "prepaid_meter.db").exists()


async def test_reconfigure_tests_then_saves_and_reloads(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, tmp_path: Path
) -> None:
    from devtools.simulator.server import _free_port

    entry = await _loaded(hass, site_entry(simulator, db_url))
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    site = {"host": "127.0.0.1", "currency": "CNY", "database_url": db_url}
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "port": _free_port("127.0.0.1")}
    )
    assert bad["errors"] == {"base": "cannot_connect"}
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**site, "port": simulator.port, "database_url": f"sqlite:///{tmp_path}/none/x.db"},
    )
    assert bad["errors"] == {"database_url": "cannot_connect_database"}
    assert entry.data["database_url"] == db_url
    moved = f"sqlite:///{tmp_path / 'moved.db'}"
    done = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "port": simulator.port, "database_url": moved}
    )
    assert done["type"] is FlowResultType.ABORT
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["database_url"] == moved
    assert entry.state is config_entries.ConfigEntryState.LOADED
    assert entry.runtime_data.store.url == moved
    assert hass.states.get("sensor.shop_01_balance") is not None


async def test_reconfigure_onto_another_sites_bus_is_aborted(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str, tmp_path: Path
) -> None:
    first = await _loaded(hass, site_entry(simulator, db_url, title="A"))
    other = site_entry(simulator, f"sqlite:///{tmp_path / 'b.db'}", title="B")
    other.add_to_hass(hass)
    hass.config_entries.async_update_entry(other, data={**other.data, "port": 1})
    result = await other.start_reconfigure_flow(hass)
    done = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": first.data["host"], "port": first.data["port"], "currency": "CNY"},
    )
    assert done["type"] is FlowResultType.ABORT
    assert done["reason"] == "already_configured"
    assert other.data["port"] == 1


async def test_options_flow_saves_billing_day_and_refuses_a_bad_price(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await _loaded(hass, site_entry(simulator, db_url))
    base = {"price": "1.50", "cut_off_enabled": True, "scan_interval": 30}
    result = await hass.config_entries.options.async_init(entry.entry_id)
    bad = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, "price": "cheap", "credit_limit": "-5"}
    )
    assert bad["errors"] == {"price": "invalid_price", "credit_limit": "invalid_amount"}
    with pytest.raises(InvalidData):  # only the listed intervals
        await hass.config_entries.options.async_configure(
            result["flow_id"], {**base, "interval_minutes": "7"}
        )
    assert "billing_day" not in entry.options
    done = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **base,
            "billing_day": 25,
            "scan_interval": 10,
            "due_days": 7,
            "overdue_grace_days": 2,
            "interval_minutes": "5",
        },
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options["billing_day"] == 25
    assert (entry.options["due_days"], entry.options["overdue_grace_days"]) == (7, 2)
    assert entry.runtime_data.coordinator.receivables.grace_days == 2
    assert entry.runtime_data.site.scan_interval == 10
    assert (entry.options["interval_minutes"], entry.runtime_data.site.interval_minutes) == (5, 5)
    assert len(entry.options["meters"]) == 3


async def test_currency_changes_only_before_money_moved(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> None:
    entry = await _loaded(hass, site_entry(simulator, db_url))
    site = {"host": "127.0.0.1", "port": simulator.port, "database_url": db_url}
    # Before any money: a typo in the currency may be fixed.
    result = await entry.start_reconfigure_flow(hass)
    done = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "currency": "hkd"}
    )
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.runtime_data.site.currency == "HKD"
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": "t1", "amount": "10", "method": "cash", "reference": "r1"},
        blocking=True,
        return_response=True,
    )
    result = await entry.start_reconfigure_flow(hass)
    bad = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**site, "currency": "USD"}
    )
    assert bad["errors"] == {"currency": "currency_in_use"}
    assert entry.data["currency"] == "HKD"
