"""Each shipped blueprint, loaded into a real Home Assistant, acts on its event.

The blueprint file is copied where Home Assistant looks for blueprints, an
automation uses it, the integration (with the simulator) raises the event
for real where it can (low balance, cut-off, reconnect, offline meter,
counter going backwards, a bill run).
The notify action is the observation point (a mock service).
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry

BLUEPRINTS = Path(__file__).parents[2] / "blueprints" / "automation" / "prepaid_meter"

Scenario = Callable[[HomeAssistant, MockConfigEntry, MeterSimulator], Awaitable[None]]


@pytest.fixture
def meter_count() -> int:
    return 2


async def _poll(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator, h: float) -> None:
    sim.advance(h * 3600)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()


async def _top_up(hass: HomeAssistant, amount: str, reference: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "top_up",
        {"tenant": "t1", "amount": amount, "reference": reference},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()


async def low_balance(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    await _top_up(hass, "101.00", "p1")
    while entry.runtime_data.coordinator.data.tenants["t1"].balance > 100:
        await _poll(hass, entry, sim, 1)


async def cut_off(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    await _top_up(hass, "1.00", "p1")
    while sim.meters[1].relay_closed:
        await _poll(hass, entry, sim, 1)


async def reconnect(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    await _top_up(hass, "30.00", "p1")


async def bill(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    # A real bill run for every tenant: both bills fire the event, only t1's
    # passes the blueprint's device filter (the event carries the device id).
    start = dt_util.utcnow() - timedelta(hours=1)
    await _poll(hass, entry, sim, 1)
    await hass.services.async_call(
        DOMAIN,
        "generate_bill",
        {"start": start.isoformat(), "end": dt_util.utcnow().isoformat()},
        blocking=True,
        return_response=True,
    )
    await hass.async_block_till_done()


async def offline(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    sim.set_fault(1, "no_answer")
    for _ in range(2):
        await _poll(hass, entry, sim, 0.1)


async def evasion(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    sim.reset_counter(1)
    await _poll(hass, entry, sim, 0.1)


async def relay_stuck(hass: HomeAssistant, entry: MockConfigEntry, sim: MeterSimulator) -> None:
    """A relay stops obeying a reconnect, then obeys: a notice for the start only."""
    sim.set_fault(1, "relay_stuck")
    await _top_up(hass, "30.00", "p1")
    sim.clear_fault(1)
    await _poll(hass, entry, sim, 0.1)
    assert sim.meters[1].relay_closed


CASES: list[tuple[str, Scenario, str, list[str]]] = [
    ("low_balance_warning", low_balance, "Low balance", ["Shop 01: balance 9", "Please top up"]),
    ("cut_off_notice", cut_off, "Supply cut off", ["Shop 01: the supply was cut off"]),
    ("reconnect_notice", reconnect, "Supply reconnected", ["Shop 01: the supply is back on"]),
    (
        "bill_delivery",
        bill,
        "New bill",
        ["Shop 01: bill 00000", " CNY", "/api/prepaid_meter/bill/"],
    ),
    ("offline_meter_alert", offline, "Meter offline", ["Meter Shop 01 stopped answering"]),
    ("evasion_alert", evasion, "Meter tamper alarm", ["Shop 01: counter_reset (counter"]),
    ("evasion_alert", relay_stuck, "Meter tamper alarm", ["Shop 01: relay_mismatch."]),
]


@pytest.mark.parametrize(
    ("name", "scenario", "title", "parts"), CASES, ids=[f"{c[0]}-{c[1].__name__}" for c in CASES]
)
async def test_blueprint_notifies_on_its_event(
    hass: HomeAssistant,
    simulator: MeterSimulator,
    db_url: str,
    name: str,
    scenario: Scenario,
    title: str,
    parts: list[str],
) -> None:
    source = BLUEPRINTS / f"{name}.yaml"
    assert yaml.load(source.read_text(), Loader=_Loader)["blueprint"]["domain"] == "automation"
    target = Path(hass.config.path("blueprints/automation/prepaid_meter"))
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target / source.name)

    extra: dict[str, Any] = {"warning_levels": "100", "price": "1.00"}
    if name == "offline_meter_alert":
        extra["buses"] = [
            {"id": "default", "kind": "tcp", "host": simulator.host, "port": simulator.port,
             "timeout": 0.3, "retries": 0}
        ]  # fmt: skip
    entry = site_entry(simulator, db_url, **extra)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = dr.async_get(hass)
    only = "meter_m1" if name in ("offline_meter_alert", "evasion_alert") else "tenant_t1"
    device = registry.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_{only}")})
    assert device is not None
    devices_input = "meters" if only == "meter_m1" else "tenants"

    calls: list[ServiceCall] = async_mock_service(hass, "notify", "test")
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "use_blueprint": {
                    "path": f"prepaid_meter/{name}.yaml",
                    "input": {"notify_action": "notify.test", devices_input: [device.id]},
                }
            }
        },
    )
    await hass.async_block_till_done()

    await scenario(hass, entry, simulator)
    await hass.async_block_till_done()

    assert len(calls) == 1, [c.data for c in calls]
    assert calls[0].data["title"] == title
    message = calls[0].data["message"]
    for part in parts:
        assert part in message, message
    # The device filter holds: the other tenant/meter never notifies.
    assert "Shop 02" not in message


class _Loader(yaml.SafeLoader):
    """Reads blueprint files (``!input`` tags) for a sanity check."""


_Loader.add_constructor("!input", lambda loader, node: loader.construct_scalar(node))
