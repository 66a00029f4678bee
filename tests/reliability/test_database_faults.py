"""The database fails under a running site: a repair issue, meters kept safe, catch-up afterwards.

Three real faults:

- ``read_only``: SQLite's own read-only mode (``PRAGMA query_only``) on every
  connection of the store, so each write fails with "attempt to write a
  readonly database" (chmod is no test as root, who may write anyway);
- ``disk_full``: the SQLite file on a tiny tmpfs filled up to the last byte,
  so the next write fails with "database or disk is full";
- ``postgres_restart``: the site on PostgreSQL, whose server is stopped at
  once (``pg_ctl -m immediate``) and started again.

In each: tenant t1 has 5.00 of credit and uses 10 kWh at 1.50 while the
database cannot be written. The poll fails (translated), a repair issue
appears, no charge is stored and no cut-off is decided (the relay stays
closed), and top-ups and supply overrides are refused with the translated
``store_write_failed`` and change nothing. When the database is back, the
next poll charges the whole 15.00, cuts t1 off and the issue goes away.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncGenerator, Callable, Generator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store_faults import issue_id
from devtools.simulator import MeterSimulator
from devtools.site import site_entry
from tests.conftest import ReadOnlySQLite
from tests.postgres import PostgresCluster, PostgresUnavailable
from tests.reliability.conftest import picture, sound

Fault = tuple[Callable[[], Any], Callable[[], Any]]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Generator[Path]:
    """A 4 MiB tmpfs (the tests run as root; a failed mount fails the test)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def own_postgres() -> Generator[PostgresCluster]:
    """A PostgreSQL server of this test's own, to be stopped and started under the site."""
    try:
        cluster = PostgresCluster()
        cluster.start()
    except PostgresUnavailable as err:
        pytest.fail(f"PostgreSQL tests need a PostgreSQL server: {err}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["read_only", "disk_full", "postgres_restart"])
async def faulty_site(
    request: pytest.FixtureRequest, hass: HomeAssistant, simulator: MeterSimulator, tmp_path: Path
) -> AsyncGenerator[tuple[MockConfigEntry, Fault]]:
    """A loaded site (polled by hand) and how to break and mend its database."""
    if request.param == "read_only":
        url = f"sqlite:///{tmp_path / 'prepaid_meter.db'}"
    elif request.param == "disk_full":
        disk: Path = request.getfixturevalue("tmpfs")
        url = f"sqlite:///{disk / 'prepaid_meter.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("own_postgres")
        url = cluster.create_database()
    # Every poll is stored: each poll of the fault writes (and fails) at once.
    entry = site_entry(simulator, url, scan_interval=86_400, options={"interval_minutes": 0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    store = entry.runtime_data.store
    engine = store._engine
    assert engine is not None
    read_only = ReadOnlySQLite(store)

    async def break_it() -> None:
        if request.param == "read_only":
            await read_only.break_it()
        elif request.param == "disk_full":

            def fill(_session: Session) -> None:
                # An empty WAL, so the next write needs new space on the disk
                # (outside a transaction: a raw connection of the store's pool).
                raw = engine.raw_connection()
                try:
                    busy, _, _ = raw.driver_connection.execute(  # type: ignore[union-attr]
                        "PRAGMA wal_checkpoint(TRUNCATE)"
                    ).fetchone()
                    assert busy == 0
                finally:
                    raw.close()
                try:
                    with (disk / "filler").open("wb") as filler:
                        while True:
                            filler.write(b"\0" * 65536)
                except OSError:
                    pass

            await store.run(fill)
        else:
            await hass.async_add_executor_job(cluster.halt)

    async def mend_it() -> None:
        if request.param == "read_only":
            await read_only.mend_it()
        elif request.param == "disk_full":
            (disk / "filler").unlink()
        else:
            await hass.async_add_executor_job(cluster.resume)

    yield entry, (break_it, mend_it)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def _refused(hass: HomeAssistant, action: str, **data: Any) -> None:
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, action, data, blocking=True, return_response=True)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "store_write_failed"


async def test_database_fault_is_reported_kept_safe_and_caught_up(
    hass: HomeAssistant,
    faulty_site: tuple[MockConfigEntry, Fault],
    simulator: MeterSimulator,
) -> None:
    entry, (break_it, mend_it) = faulty_site
    coordinator = entry.runtime_data.coordinator
    store = entry.runtime_data.store
    issues = ir.async_get(hass)
    await hass.services.async_call(
        DOMAIN, "top_up", {"tenant": "t1", "amount": "5", "reference": "before"}, blocking=True
    )
    assert simulator.meters[1].relay_closed
    before = await store.run(picture, entry.entry_id)

    await break_it()
    simulator.meters[1].energy_centi_kwh += 1000  # 10 kWh: 15.00 at 1.50, more than t1 has
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    issue = issues.async_get_issue(DOMAIN, issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "store_failing"
    assert simulator.meters[1].relay_closed, "cut off on a charge that was never stored"
    assert coordinator.data.tenants["t1"].balance == Decimal(5)
    await _refused(hass, "top_up", tenant="t1", amount="20", reference="during")
    await _refused(hass, "lock_supply", tenant="t2")
    await _refused(hass, "adjust_balance", tenant="t3", amount="1", reason="during")
    assert not coordinator.data.tenants["t2"].locked
    await coordinator.async_refresh()  # still broken: still nothing decided
    assert simulator.meters[1].relay_closed

    await mend_it()
    assert await store.run(picture, entry.entry_id) == before
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert issues.async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None
    balances = await store.run(sound, entry.entry_id)
    assert balances["t1"] == Decimal("-10.00")  # the whole 10 kWh, charged once
    assert coordinator.data.tenants["t1"].balance == Decimal("-10.00")
    assert not simulator.meters[1].relay_closed  # and now the cut-off, on stored data
    charged = await store.run(ledger.cursors, entry.entry_id)
    assert charged["m1"].value == simulator.meters[1].energy_kwh
