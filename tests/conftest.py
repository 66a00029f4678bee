"""Fixtures shared by every layer's tests: a real simulator, a real store, a real hass."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from hypothesis import settings
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from sqlalchemy import event
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import CONF_INTERVAL, DOMAIN
from custom_components.prepaid_meter.store import Store
from devtools.simulator import MeterSimulator, SimulatedMeter
from devtools.site import site_entry as build_site_entry
from tests.postgres import PostgresCluster, PostgresUnavailable

# Property tests try the same examples on every run of the suite, so a red CI
# means a change broke something; `scripts/test-long` (PM_LONG=1) draws new ones.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("PM_LONG", "") not in ("", "0") else "fixed")


def ticking_clock(start: datetime | None = None) -> Iterator[FrozenDateTimeFactory]:
    """For a module's ``freezer`` fixture: a frozen clock that keeps ticking from ``start``.

    The plain ``freezer`` stops ``time.monotonic`` too, and a real Modbus
    client (pymodbus sleeps 0.1 s after connecting) would then wait forever.
    Moving it (``move_to``/``tick``) still jumps the wall and monotonic clocks.
    Use it as ``yield from ticking_clock(NOW)``.
    """
    with freeze_time(start, tick=True) as frozen:
        yield frozen


@pytest.fixture(autouse=True)
def quiet_sql() -> None:
    """SQL statement logging slows the suite and buries failures."""
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/prepaid_meter in every test."""


@pytest.fixture
def meter_count() -> int:
    """How many meters the simulated building has (override in a test module)."""
    return 3


@pytest.fixture
async def simulator(meter_count: int, socket_enabled: None) -> AsyncGenerator[MeterSimulator]:
    """A real pymodbus TCP server on loopback with simulated meters 1..N."""
    meters = [
        SimulatedMeter(device_id=i, base_power_w=1000.0 * i, energy_centi_kwh=100_000 + i)
        for i in range(1, meter_count + 1)
    ]
    sim = MeterSimulator(meters)
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A real SQLite file per test."""
    return f"sqlite:///{tmp_path / 'prepaid_meter.db'}"


@pytest.fixture(scope="session")
def postgres() -> Generator[PostgresCluster]:
    """A real PostgreSQL server for the session. Fails (never skips) if it cannot start."""
    try:
        cluster = PostgresCluster()
        cluster.start()
    except PostgresUnavailable as err:
        pytest.fail(f"PostgreSQL tests need a PostgreSQL server: {err}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(postgres: PostgresCluster, socket_enabled: None) -> Generator[str]:
    """A fresh PostgreSQL database per test, reached over loopback TCP."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A test database on each backend the store supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prepaid_meter.db'}"
    return str(request.getfixturevalue("pg_url"))


def site_entry(
    simulator: MeterSimulator,
    db_url: str,
    *,
    price: str = "1.50",
    cut_off: bool = True,
    **extra: Any,
) -> MockConfigEntry:
    """A site entry for the simulator's building: meter m<N> and tenant t<N> per device.

    Every poll is stored (``interval_minutes`` 0) unless a test says otherwise:
    most tests follow each poll into the ledger. What the site's interval
    changes (pending use between stored intervals) is tested in
    tests/e2e/test_intervals.py.
    """
    extra.setdefault(CONF_INTERVAL, 0)
    return build_site_entry(simulator, db_url, price=price, cut_off=cut_off, options=extra)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> MockConfigEntry:
    """The integration set up for the simulator's building, cut-off enabled."""
    entry = site_entry(simulator, db_url)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


class ReadOnlySQLite:
    """A store's SQLite database made to refuse writes, and mended.

    ``PRAGMA query_only`` on every new connection (root ignores file modes),
    the pool emptied on the store's thread so the next call reconnects.
    """

    def __init__(self, store: Store) -> None:
        assert store._engine is not None
        self.store, self.engine = store, store._engine

    @staticmethod
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only=ON")

    def _reconnect(self, _session: Session) -> None:
        self.engine.dispose()  # on the store's thread, with no connection checked out

    async def break_it(self) -> None:
        event.listen(self.engine, "connect", self._read_only)
        await self.store.run(self._reconnect)

    async def mend_it(self) -> None:
        event.remove(self.engine, "connect", self._read_only)
        await self.store.run(self._reconnect)


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    """An action of the integration, blocking, with its response."""
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def move_to(hass: HomeAssistant, freezer: FrozenDateTimeFactory, at: datetime) -> None:
    """Move the clock to ``at`` and run the timers that fall due there, waited for.

    The test clock moves Home Assistant's timers with it: a timer passed over
    and not fired here would start whenever the loop next runs, and race
    whatever the test does then.
    """
    freezer.move_to(at)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def load_entry(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    """Add a site entry and set it up (its first poll included)."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
