"""One builder of a site entry for the simulator's building, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.config_flow import building
from custom_components.prepaid_meter.const import (
    CONF_CURRENCY,
    CONF_CUT_OFF_ENABLED,
    CONF_DATABASE_URL,
    CONF_PRICE,
    CONF_SCAN_INTERVAL,
    DOMAIN,
)
from devtools.simulator import MeterSimulator


def site_entry(
    simulator: MeterSimulator,
    db_url: str,
    *,
    title: str = "Test mall",
    price: str = "1.50",
    cut_off: bool = True,
    scan_interval: int = 30,
    options: Mapping[str, Any] | None = None,
    entry_id: str | None = None,
) -> MockConfigEntry:
    """A site on the simulator: meter m<N> and tenant t<N> per device, ``options`` on top.

    ``entry_id``: a fixed id (snapshots hold it in unique ids); a random one by default.
    """
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=entry_id,
        title=title,
        data={
            CONF_NAME: title,
            CONF_HOST: simulator.host,
            CONF_PORT: simulator.port,
            CONF_CURRENCY: "CNY",
            CONF_DATABASE_URL: db_url,
        },
        options={
            CONF_PRICE: price,
            CONF_CUT_OFF_ENABLED: cut_off,
            CONF_SCAN_INTERVAL: scan_interval,
            **building(sorted(simulator.meters), "Shop"),
            **(options or {}),
        },
    )
