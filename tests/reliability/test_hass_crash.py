"""A real Home Assistant process killed with SIGKILL while meters are charged and top-ups arrive.

Home Assistant runs as its own process (``python -m homeassistant -c <config>``)
with the integration linked into ``custom_components``, on a simulated building
of 12 meters whose counters move every few hundred milliseconds. The first
start is onboarded and the site created through the REST API (as the demo
does), polling every second. Each round starts Home Assistant, waits for the
site, sends top-ups over REST (some of them retried with the same reference)
and kills the process at a random moment. After every kill, straight from the
SQLite file:

- every acknowledged top-up is there exactly once, and nothing is there that
  was not sent;
- no interval is charged twice or skipped: per meter, each charge is the
  counter delta since the previous charged reading times the price, so the
  charges add up to (cursor - first reading) x price, and the cursor is the
  last charged reading;
- the journal sums to zero and every entry balances;
- each balance equals its top-ups minus its metered charges.

Rounds: ``PM_HASS_CRASH_ROUNDS`` (default 3; 20 under ``scripts/test-long``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncGenerator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import (
    JournalEntry,
    MeterCursor,
    MeterReading,
    PaymentReference,
    Posting,
)
from custom_components.prepaid_meter.store.store import make_engine
from devtools.demo import provision
from devtools.simulator import MeterSimulator
from tests.reliability.conftest import size

ROUNDS = size(3, 20, "PM_HASS_CRASH_ROUNDS")
REPO = Path(__file__).parents[2]
PRICE = Decimal("1.00")  # what _create_site sets
#: Shops (meters t1..t12 on device ids 1-12) of the crash site.
SHOPS = 12
CONFIG = """
homeassistant:
  name: Crash mall
  currency: CNY
  time_zone: Asia/Shanghai
  unit_system: metric
  latitude: 31.2
  longitude: 121.4
  elevation: 4
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
person:
logger:
  default: warning
"""


@pytest.fixture
def meter_count() -> int:
    return SHOPS


async def _create_site(api: provision.Api, modbus_port: int, scan_interval: int) -> str:
    """The crash site through the config and options flows: SHOPS shops, flat price, cut-off on."""
    flow = await api.post("/api/config/config_entries/flow", {"handler": "prepaid_meter"})
    flow = await api.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"name": "Crash mall", "host": "127.0.0.1", "port": modbus_port, "currency": "CNY"},
    )
    assert flow.get("step_id") == "building", flow
    result = await api.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"device_ids": f"1-{SHOPS}", "name_prefix": "Shop", "price": str(PRICE),
         "cut_off_enabled": True},
    )  # fmt: skip
    entry_id = str(result["result"]["entry_id"])
    options = await api.post("/api/config/config_entries/options/flow", {"handler": entry_id})
    await api.post(
        f"/api/config/config_entries/options/flow/{options['flow_id']}",
        {"price": str(PRICE), "cut_off_enabled": True, "scan_interval": scan_interval},
    )
    return entry_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hass:
    """One Home Assistant process on a config directory, started and killed by the test."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.config / "hass.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeassistant", "-c", str(self.config),
             "--skip-pip-packages", "prepaid_meter"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.config,
        )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
async def hass_process(tmp_path: Path) -> AsyncGenerator[Hass]:
    config = tmp_path / "config"
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / "prepaid_meter").symlink_to(
        REPO / "custom_components" / "prepaid_meter"
    )
    port = _free_port()
    (config / "configuration.yaml").write_text(CONFIG.format(port=port), encoding="utf-8")
    hass = Hass(config, port)
    yield hass
    hass.stop()


async def _consume(simulator: MeterSimulator, rng: random.Random) -> None:
    """Every meter's counter moves on by 0.01 to 0.40 kWh a few times a second."""
    while True:
        for meter in simulator.meters.values():
            meter.energy_centi_kwh += rng.randint(1, 40)
        await asyncio.sleep(0.25)


async def _top_ups(
    api: provision.Api,
    round_no: int,
    rng: random.Random,
    sent: dict[str, tuple[str, Decimal]],
    acked: set[str],
) -> None:
    """Top-ups until the process dies; a third of them repeat an earlier reference."""
    n = 0
    while True:
        if sent and rng.random() < 0.3:
            reference = rng.choice(sorted(sent))
            tenant, amount = sent[reference]
        else:
            n += 1
            reference = f"crash-{round_no}-{n}"
            tenant = f"t{rng.randint(1, SHOPS)}"
            amount = Decimal(rng.randint(1, 50_000)) / 100
            sent[reference] = (tenant, amount)
        try:
            answer = await api.post(
                "/api/services/prepaid_meter/top_up?return_response",
                {"tenant": tenant, "amount": str(amount), "reference": reference},
            )
        except (aiohttp.ClientError, RuntimeError):
            return  # the process is gone (or going): this one was not acknowledged
        assert answer["service_response"]["reference"] == reference
        acked.add(reference)


def _check(db: Path, sent: dict[str, tuple[str, Decimal]], acked: set[str]) -> dict[str, int]:
    """The invariants of the module docstring, on the file as the kill left it."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as session:
            site = session.scalars(select(MeterCursor.site)).first()
            assert site is not None
            refs = session.scalars(select(PaymentReference)).all()
            stored = {r.reference for r in refs}
            assert acked <= stored, f"acknowledged top-ups lost: {sorted(acked - stored)[:5]}"
            assert stored <= set(sent)
            by_ref = defaultdict(int)
            for entry in session.scalars(select(JournalEntry).where(JournalEntry.kind == "top_up")):
                by_ref[entry.reference] += 1
            assert set(by_ref) == stored
            assert all(count == 1 for count in by_ref.values()), "a top-up applied twice"

            assert ledger.unbalanced_entries(session, site) == []
            assert ledger.journal_sum(session, site) == 0

            readings: dict[str, list[Decimal]] = defaultdict(list)
            for meter, value in session.execute(
                select(MeterReading.meter, MeterReading.value).order_by(MeterReading.id)
            ):
                readings[meter].append(value)
            charges: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
            for memo, amount in session.execute(
                select(JournalEntry.memo, Posting.amount)
                .join(Posting, Posting.entry_id == JournalEntry.id)
                .where(JournalEntry.kind == "charge")
                .order_by(JournalEntry.id)
            ):
                if amount < 0:
                    continue  # the wallet's leg; the revenue leg is the charge
                meter, value = memo.split("@")
                charges[meter].append((value, amount))
            expected: dict[str, Decimal] = defaultdict(Decimal)
            for cursor in session.scalars(select(MeterCursor)):
                values = readings[cursor.meter]
                assert cursor.value == values[-1], f"{cursor.meter}: cursor is not the last"
                assert values == sorted(values), f"{cursor.meter}: readings out of order"
                due = [(str(b), (b - a) * PRICE) for a, b in itertools.pairwise(values) if b > a]
                assert charges[cursor.meter] == due, f"{cursor.meter}: interval doubled or lost"
                assert sum((a for _, a in due), Decimal()) == (values[-1] - values[0]) * PRICE
                expected[f"t{cursor.meter[1:]}"] -= (values[-1] - values[0]) * PRICE
            for reference in stored:
                tenant, amount = sent[reference]
                expected[tenant] += amount
            balances = ledger.wallet_balances(session, site)
            assert {t: b for t, b in balances.items() if b} == {
                t: b for t, b in expected.items() if b
            }
            return {"top_ups": len(stored), "readings": sum(map(len, readings.values()))}
    finally:
        engine.dispose()


async def _wait_loaded(api: provision.Api) -> None:
    await provision.wait_for(api, 300)
    await provision.onboard(api)
    await provision.wait_for_site(api, 120)


async def test_hass_killed_at_random_moments(simulator: MeterSimulator, hass_process: Hass) -> None:
    rng = random.Random(20261123)
    consuming = asyncio.create_task(_consume(simulator, rng))
    sent: dict[str, tuple[str, Decimal]] = {}
    acked: set[str] = set()
    db = hass_process.config / "prepaid_meter.db"
    totals: dict[str, int] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for round_no in range(1, ROUNDS + 1):
                api = provision.Api(session, hass_process.base)
                hass_process.start()
                if round_no == 1:
                    await provision.wait_for(api, 300)
                    await provision.onboard(api)
                    await _create_site(api, simulator.port, scan_interval=1)
                    # Onboarding adds integrations that want the internet: not here.
                    for entry in await api.get("/api/config/config_entries/entry"):
                        if entry["domain"] in provision.ONBOARDING_EXTRAS:
                            await api.delete(
                                f"/api/config/config_entries/entry/{entry['entry_id']}"
                            )
                await _wait_loaded(api)
                paying = asyncio.create_task(_top_ups(api, round_no, rng, sent, acked))
                await asyncio.sleep(rng.uniform(0.5, 6.0))
                hass_process.kill()
                await paying
                totals = await asyncio.get_running_loop().run_in_executor(
                    None, _check, db, sent, acked
                )
            # Once more, to see it come back after the last kill and go on charging.
            hass_process.start()
            api = provision.Api(session, hass_process.base)
            await _wait_loaded(api)
            await asyncio.sleep(3)
            hass_process.stop()
    finally:
        consuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming
    final = _check(db, sent, acked)
    assert final["readings"] > totals["readings"]
    print(f"hass crash: {ROUNDS} rounds, {len(acked)} acknowledged top-ups, {final}")
