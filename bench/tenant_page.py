"""Tenant page latency: a GET of a tenant's page through Home Assistant's HTTP app.

A real Home Assistant (as ``async_test_home_assistant`` makes it, temp config
dir), the integration on a SQLite file and the simulator on loopback TCP with
2 meters, both charged to one tenant. The tenant's meters have 30 days of
readings at one a minute (86,400 rows) and the tenant has 12 bills' worth of
top-ups; polling is idle while measuring. Each round is one HTTP GET of the
page from aiohttp's test server on a loopback port (token check, the store
reads of 30 days of hourly counters per meter, rendering, SVG curves).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from homeassistant import loader
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_test_home_assistant
from sqlalchemy import insert
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import CONF_TENANTS, DOMAIN
from custom_components.prepaid_meter.store.models import MeterReading
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.site import site_entry

ROUNDS = 50
TARGET_MS = 500
DAYS = 30
IDLE = 86400


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, -(-len(sorted_ms) * q // 100))
    return sorted_ms[int(rank) - 1]


def _fig(value: float, target: int | None = None) -> dict[str, Any]:
    fig: dict[str, Any] = {"value": round(value, 2), "unit": "ms"}
    if target is not None:
        fig["target"] = target
    return fig


def _seed(session: Session, site: str, meters: list[str]) -> int:
    """A reading a minute for DAYS days per meter, ending now."""
    now = dt_util.utcnow()
    rows = []
    for meter in meters:
        value = Decimal("1000")
        for minute in range(DAYS * 24 * 60, 0, -1):
            value += Decimal("0.02")
            rows.append(
                {
                    "site": site,
                    "meter": meter,
                    "taken_at": now - timedelta(minutes=minute),
                    "value": value,
                    "source": "poll",
                }
            )
    session.execute(insert(MeterReading), rows)
    session.commit()
    return len(rows)


async def run() -> dict[str, Any]:
    """Measure ROUNDS page loads; figures for bench/results."""
    sim = MeterSimulator([SimulatedMeter(device_id=d) for d in (1, 2)])
    await sim.start()
    latencies: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with async_test_home_assistant(config_dir=tmp) as hass:
                hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
                entry = site_entry(
                    sim,
                    f"sqlite:///{Path(tmp) / 'bench.db'}",
                    title="Bench mall",
                    scan_interval=IDLE,
                    options={
                        CONF_TENANTS: [{"id": "t1", "name": "Shop 01", "meters": ["m1", "m2"]}]
                    },
                )
                entry.add_to_hass(hass)
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                store = entry.runtime_data.store
                readings = await store.run(_seed, entry.entry_id, ["m1", "m2"])
                for n in range(12):
                    await hass.services.async_call(
                        DOMAIN,
                        "top_up",
                        {"tenant": "t1", "amount": "100", "reference": f"bench-{n}"},
                        blocking=True,
                        return_response=True,
                    )
                link = await hass.services.async_call(
                    DOMAIN, "tenant_link", {"tenant": "t1"}, blocking=True, return_response=True
                )
                assert link is not None
                client = TestClient(TestServer(hass.http.app))
                await client.start_server()
                try:
                    for _ in range(ROUNDS):
                        start = time.perf_counter()
                        answer = await client.get(str(link["path"]))
                        body = await answer.text()
                        latencies.append((time.perf_counter() - start) * 1000)
                        if answer.status != 200 or "Shop 01" not in body:
                            raise RuntimeError(f"page answered {answer.status}")
                finally:
                    await client.close()
                await hass.async_stop(force=True)
    finally:
        await sim.stop()
    ordered = sorted(latencies)
    return {
        "rounds": ROUNDS,
        "readings": readings,
        "p99": _fig(_percentile(ordered, 99), TARGET_MS),
        "p50": _fig(statistics.median(ordered)),
        "max": _fig(ordered[-1]),
        "notes": (
            "One HTTP GET of a tenant page over loopback: token check (one secret read), "
            "720 hourly counters for each of 2 meters (indexed LIMIT 1 lookups on SQLite), "
            "top-ups, bills, Jinja2 rendering with three SVG curves."
        ),
    }
