"""Restarts in the middle of a billing period, at random moments, with per-tenant tariffs.

A real hass, simulator and SQLite file. Tenant t2 pays by its own tariff:
1.00 a kWh, 0.50 more above 5 kWh in the period (a tier), and a standing
charge of 1.00 for each day from its move-in day (US/Pacific days); t1 and t3 pay the site's flat
1.50. Each round moves the counters by a random amount and the clock by some
hours (across midnights), then polls, restarts the site (the start polls), or
both in either order. After every round the balances must be exactly what the
whole period's use costs: so the tier use so far and the standing charges
already charged were rebuilt after each restart (no day charged twice or
skipped, no kWh charged twice or lost, the tier limit crossed once). At the
end the period's bill equals what was deducted.

The restart is Home Assistant's reload (unload, set up again from the store);
restarts by SIGKILL of a whole Home Assistant process are
``test_hass_crash.py``.

Rounds: ``PM_RESTART_ROUNDS`` (default 12; 60 under ``scripts/test-long``).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Generator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from custom_components.prepaid_meter.const import DOMAIN
from devtools.simulator import MeterSimulator
from devtools.site import site_entry
from tests.conftest import ticking_clock
from tests.reliability.conftest import SHORT_SEED, long_run, size, sound

ROUNDS = size(12, 60, "PM_RESTART_ROUNDS")
SITE_PRICE = Decimal("1.50")
#: 23:30 on March 9 in US/Pacific (daylight time since March 8).
START = datetime(2026, 3, 10, 6, 30, tzinfo=UTC)
PERIOD_START = date(2026, 3, 1)
#: The tenant's move-in day: the site is set up (its accounts open) on March 9, local time.
MOVE_IN = date(2026, 3, 9)

TIERED: dict[str, Any] = {
    "name": "Tiered with a daily standing charge",
    "currency": "CNY",
    "timezone": "US/Pacific",
    "versions": [
        {
            "effective": "2026-01-01T00:00:00+00:00",
            "energy": {"kind": "flat", "price": "1.00"},
            "tiers": {
                "basis": "period",
                "mode": "adder",
                "blocks": [{"upto": "5", "adder": "0"}, {"upto": None, "adder": "0.50"}],
            },
            "standing": [{"name": "meter service", "amount": "1.00", "per": "day"}],
        }
    ],
}


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from START (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock(START)


def tiered_cost(kwh: Decimal) -> Decimal:
    """What the tiered tariff asks for ``kwh`` used in the period so far."""
    return kwh * Decimal("1.00") + max(kwh - 5, Decimal(0)) * Decimal("0.50")


def standing_days(now: datetime) -> int:
    """Whole local days since the move-in day that have ended (each is charged once it ends)."""
    return (dt_util.as_local(now).date() - MOVE_IN).days


@pytest.mark.usefixtures("freezer")
async def test_restarts_mid_period_charge_each_kwh_and_day_once(
    hass: HomeAssistant,
    simulator: MeterSimulator,
    db_url: str,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Random polls and restarts; every balance equals the whole period's cost after each."""
    assert hass.config.time_zone == "US/Pacific"
    # A fixed plan in CI's short run, a new one in every long run (`scripts/test-long`).
    fresh = random.SystemRandom().randrange(10**9) if long_run() else SHORT_SEED
    seed = int(os.environ.get("PM_RESTART_SEED") or fresh)
    rng = random.Random(seed)
    base = site_entry(simulator, db_url, cut_off=False, price=str(SITE_PRICE))
    tenants = [dict(t) for t in base.options["tenants"]]
    tenants[1]["tariff"] = "tiered"
    entry = site_entry(
        simulator,
        db_url,
        cut_off=False,
        price=str(SITE_PRICE),
        scan_interval=86_400,
        options={"tariffs": {"tiered": TIERED}, "tenants": tenants},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    used = {1: Decimal(0), 2: Decimal(0), 3: Decimal(0)}
    done: Counter[str] = Counter()

    async def poll() -> None:
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done(wait_background_tasks=True)

    async def restart() -> None:
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED

    async def check(label: str) -> None:
        balances = await entry.runtime_data.store.run(sound, entry.entry_id)
        now = dt_util.utcnow()
        want = {
            "t1": -used[1] * SITE_PRICE,
            "t2": -(tiered_cost(used[2]) + standing_days(now)),
            "t3": -used[3] * SITE_PRICE,
        }
        got = {t: balances.get(t, Decimal(0)) for t in want}
        assert got == want, f"seed {seed}, {label} at {dt_util.as_local(now)}: {got} != {want}"

    await check("start")
    for n in range(ROUNDS):
        moved = {m: Decimal(rng.randrange(0, 300)) / 100 for m in used}
        for meter, kwh in moved.items():
            simulator.meters[meter].energy_centi_kwh += int(kwh * 100)
            used[meter] += kwh
        freezer.tick(timedelta(hours=rng.randrange(1, 9)))
        how = rng.choice(["poll", "restart", "poll_restart", "restart_poll", "restart_restart"])
        done[how] += 1
        for part in how.split("_"):
            await (poll() if part == "poll" else restart())
        await check(f"round {n} ({how})")
    response = await hass.services.async_call(
        DOMAIN,
        "generate_bill",
        {"tenant": "t2", "start": PERIOD_START.isoformat()},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    [bill] = response["bills"]  # type: ignore[misc]
    assert bill["document"]["matches_deducted"] is True
    print(
        f"restarts mid-period: seed {seed}, {ROUNDS} rounds {dict(done)}, "
        f"t2 used {used[2]} kWh over {standing_days(dt_util.utcnow())} days"
    )
