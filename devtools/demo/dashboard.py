"""A provisional landlord dashboard for the demo (a YAML dashboard), built from the mall.

The shipped landlord dashboard (``dashboards/landlord.yaml``) is being written
separately; until it exists, ``scripts/demo`` writes this one to
``.demo/config/dashboards/landlord.yaml`` and registers it in the demo's
``configuration.yaml``. When the shipped one exists, the demo uses it instead.

``python -m devtools.demo.dashboard PATH`` writes it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from devtools.demo import mall


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def dashboard() -> dict[str, Any]:
    """Three views: the mall (master, commons, water, cut-offs), balances, meters."""
    shops = mall.shops()
    others = [*mall.COMMONS, mall.WATER]
    overview: list[dict[str, Any]] = [
        {
            "type": "entity-filter",
            "title": "Supply cut off",
            "entities": [f"sensor.shop_{s.number:02d}_supply" for s in shops],
            "conditions": [{"condition": "state", "state": ["cut_off", "locked", "grace"]}],
            "show_empty": True,
        },
        {
            "type": "entities",
            "title": "Utility master and common areas",
            "entities": [
                {"entity": "sensor.utility_master_meter_energy", "name": "Utility master"},
                {"entity": "sensor.utility_master_meter_power", "name": "Mall load"},
                *(
                    {"entity": f"sensor.{_slug(c.name)}_meter_energy", "name": c.name}
                    for c in mall.COMMONS
                ),
                {
                    "entity": f"sensor.{_slug(mall.WATER.name)}_meter_energy",
                    "name": "Water main (m³, shown as a counter)",
                },
            ],
        },
        {
            "type": "history-graph",
            "title": "Load",
            "hours_to_show": 24,
            "entities": [
                "sensor.utility_master_meter_power",
                *(f"sensor.{_slug(c.name)}_meter_power" for c in others[:3]),
            ],
        },
    ]
    balances = [
        {
            "type": "entities",
            "title": title,
            "entities": [
                {"entity": f"sensor.shop_{s.number:02d}_balance", "name": s.name}
                for s in shops
                if s.billing == billing
            ],
        }
        for billing, title in (("prepaid", "Prepaid wallets"), ("postpaid", "Postpaid accounts"))
    ]
    balances.append(
        {
            "type": "glance",
            "title": "Supply",
            "columns": 6,
            "entities": [
                {"entity": f"sensor.shop_{s.number:02d}_supply", "name": f"{s.number:02d}"}
                for s in shops
            ],
        }
    )
    meters = [
        {
            "type": "entities",
            "title": "Shop meters",
            "entities": [
                {"entity": f"sensor.shop_{s.number:02d}_meter_power", "name": s.name} for s in shops
            ],
        },
        {
            "type": "entities",
            "title": "Relays",
            "entities": [
                {"entity": f"switch.shop_{s.number:02d}_meter_relay", "name": s.name} for s in shops
            ],
        },
    ]
    return {
        "title": "Landlord",
        "views": [
            {"title": "Mall", "path": "mall", "icon": "mdi:office-building", "cards": overview},
            {"title": "Balances", "path": "balances", "icon": "mdi:wallet", "cards": balances},
            {"title": "Meters", "path": "meters", "icon": "mdi:meter-electric", "cards": meters},
        ],
    }


def main() -> None:
    path = Path(sys.argv[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Provisional landlord dashboard of the demo (devtools/demo/dashboard.py).\n"
    path.write_text(text + yaml.safe_dump(dashboard(), sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    main()
