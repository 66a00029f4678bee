"""The site flow: the connection is tested before saving; bad values get translated errors."""

from __future__ import annotations

from pathlib import Path

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.prepaid_meter.config_flow import parse_device_ids
from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator


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
