"""The shipped landlord dashboard: core cards only, entity ids the integration really creates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.prepaid_meter.const import DOMAIN
from devtools.dashboard import OUT, dashboard, demo_postpaid, demo_tenants

#: Cards that ship with Home Assistant (no custom cards, nothing to install).
CORE_CARDS = {"markdown", "entity-filter", "entities", "grid", "gauge", "tile", "glance"}


def cards(node: Any) -> list[dict[str, Any]]:
    """Every card in a dashboard, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "type" in node:
            found.append(node)
        for value in node.values():
            found += cards(value)
    elif isinstance(node, list):
        for value in node:
            found += cards(value)
    return found


def entity_ids(config: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    for card in cards(config):
        if "entity" in card:
            ids.add(card["entity"])
        for item in card.get("entities", []):
            ids.add(item if isinstance(item, str) else item["entity"])
    return ids


def test_shipped_dashboard_is_the_generated_one_with_core_cards_only() -> None:
    text = Path(OUT).read_text(encoding="utf-8")
    assert text == dashboard(demo_tenants(), postpaid=demo_postpaid()), (
        "run: python -m devtools.dashboard"
    )
    config = yaml.safe_load(text)
    assert {c["type"] for c in cards(config)} <= CORE_CARDS
    assert {f"sensor.shop_{n:02d}_balance" for n in range(1, len(demo_tenants()) + 1)} <= (
        entity_ids(config)
    )


async def test_dashboard_entities_exist_and_the_summary_shows_every_tenant(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    for tenant, amount in (("t1", "30"), ("t2", "70"), ("t3", "200")):
        await hass.services.async_call(
            DOMAIN,
            "top_up",
            {"tenant": tenant, "amount": amount, "reference": f"dash-{tenant}"},
            blocking=True,
            return_response=True,
        )
    await hass.async_block_till_done()
    config = yaml.safe_load(dashboard(["Shop 01", "Shop 02", "Shop 03"]))
    ids = entity_ids(config)
    assert ids
    missing = sorted(i for i in ids if hass.states.get(i) is None)
    assert missing == []

    [summary] = [c for c in cards(config) if c["type"] == "markdown"]
    table = Template(summary["content"], hass).async_render(parse_result=False)
    rows = [line for line in table.splitlines() if line.startswith("| Shop")]
    assert len(rows) == 3
    for row, balance, level in zip(
        rows, ("30.00", "70.00", "200.00"), ("🔴 red", "🟡 yellow", "🟢 green"), strict=True
    ):
        assert row.split(" | ")[1] == f"{balance} CNY"
        assert row.split(" | ")[2] == level
        assert row.split(" | ")[3] == "On"
    assert rows[0].startswith("| Shop 01 |")
    assert all("CNY" in row for row in rows)
