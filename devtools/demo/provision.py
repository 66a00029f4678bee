"""Provision and check the demo through Home Assistant's own HTTP API.

``provision``: onboard Home Assistant (owner user, core config, analytics),
create the demo site through the integration's config flow, give it the mall's
options (:mod:`devtools.demo.mall`; through the demo helper's admin action
``prepaid_meter_demo.set_site_options``, not through sub-entry flows: see that
helper's docstring for why) and give every prepaid shop its opening top-up.
Each step is skipped when done, and the top-ups carry fixed references, so
running it again changes nothing.

``months`` (fast mode): watch the simulator's clock and, each time it passes
the first of a month, share the common costs and issue every tenant's bill for
the real time that simulated month took (see README, "Try it"). The site has
``billing_day`` set, but scheduled bills follow Home Assistant's clock (00:30
local after a real period ends), which fast mode cannot speed up: only the
simulator's clock runs fast. So fast mode issues its monthly bills with
``generate_bill``; the schedule issues the real months' bills.

``check``: log in with the printed user and password (the same login flow the
web page uses), find the 24 shops' energy sensors and balances, see balances
move, find the cut-off shop with its relay open on the simulator (read over
Modbus), and in fast mode an issued bill whose page answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pymodbus.client import AsyncModbusTcpClient

from devtools.demo import mall

USER = "landlord"
PASSWORD = "prepaid-demo"  # a local demo login, printed by scripts/demo
SHOPS = len(mall.LAYOUT)
ONBOARDING_EXTRAS = {"met", "google_translate", "radio_browser", "shopping_list"}


class Api:
    """A small client of Home Assistant's REST API."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.client_id = f"{base}/"
        self.token = ""

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def get(self, path: str) -> Any:
        async with self.session.get(self.base + path, headers=self._headers()) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def post(self, path: str, data: Any = None) -> Any:
        async with self.session.post(
            self.base + path, json=data or {}, headers=self._headers()
        ) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"POST {path}: {resp.status} {await resp.text()}")
            return await resp.json()

    async def delete(self, path: str) -> None:
        async with self.session.delete(self.base + path, headers=self._headers()) as resp:
            resp.raise_for_status()

    async def token_from_code(self, code: str) -> None:
        form = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        async with self.session.post(self.base + "/auth/token", data=form) as resp:
            resp.raise_for_status()
            self.token = (await resp.json())["access_token"]

    async def login(self, username: str, password: str) -> None:
        """Log in as a person does: the login flow, then a token for its code."""
        flow = await self.post(
            "/auth/login_flow",
            {
                "client_id": self.client_id,
                "handler": ["homeassistant", None],
                "redirect_uri": self.client_id,
            },
        )
        result = await self.post(
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": self.client_id, "username": username, "password": password},
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"login refused: {result.get('errors')}")
        await self.token_from_code(result["result"])


async def wait_for(api: Api, seconds: float) -> None:
    """Wait until Home Assistant answers HTTP."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            # Any answer will do: /api/onboarding is 404 once onboarding is done.
            async with api.session.get(api.base + "/api/onboarding"):
                return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("Home Assistant did not start in time")
        await asyncio.sleep(1)


async def onboard(api: Api) -> None:
    async with api.session.get(api.base + "/api/onboarding") as resp:
        if resp.status == 404:  # onboarded before
            await api.login(USER, PASSWORD)
            return
        steps = {s["step"]: s["done"] for s in await resp.json()}
    if not steps.get("user"):
        result = await api.post(
            "/api/onboarding/users",
            {
                "client_id": api.client_id,
                "name": "Landlord",
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
        )
        await api.token_from_code(result["auth_code"])
    else:
        await api.login(USER, PASSWORD)
    if not steps.get("core_config"):
        await api.post("/api/onboarding/core_config")
    if not steps.get("analytics"):
        await api.post("/api/onboarding/analytics")
    if not steps.get("integration"):
        await api.post(
            "/api/onboarding/integration",
            {"client_id": api.client_id, "redirect_uri": api.client_id},
        )


async def create_site(api: Api, modbus_port: int) -> str:
    """The site, created as a landlord would: the integration's config flow."""
    entries = await api.get("/api/config/config_entries/entry?domain=prepaid_meter")
    if entries:
        return str(entries[0]["entry_id"])
    flow = await api.post("/api/config/config_entries/flow", {"handler": "prepaid_meter"})
    flow = await api.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"name": "Demo mall", "host": "127.0.0.1", "port": modbus_port, "currency": "CNY"},
    )
    if flow.get("step_id") != "building":
        raise RuntimeError(f"site step failed: {flow}")
    result = await api.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {
            "device_ids": f"1-{SHOPS}",
            "name_prefix": "Shop",
            "price": mall.FLAT_PRICE,
            # Off until the shops have their opening credit (set_mall_options turns
            # it on), or every shop would be cut off at the first poll.
            "cut_off_enabled": False,
        },
    )
    return str(result["result"]["entry_id"])


async def set_mall_options(api: Api, entry_id: str, scan_interval: int, fast: bool) -> None:
    """The rest of the mall (kinds of shop, commons, water, master, tariffs, sharing rules)."""
    await api.post(
        "/api/services/prepaid_meter_demo/set_site_options",
        {"entry_id": entry_id, "options": mall.site_options(scan_interval, fast)},
    )


async def opening_top_ups(api: Api) -> None:
    """Every prepaid shop's first payment (postpaid shops pay their bills instead)."""
    for shop in mall.shops():
        if shop.billing != "prepaid":
            continue
        await api.post(
            "/api/services/prepaid_meter/top_up?return_response",
            {
                "tenant": shop.tenant,
                "amount": mall.opening_credit(shop),
                "method": "cash",
                "reference": f"demo-opening-{shop.number}",
            },
        )


async def wait_for_site(api: Api, seconds: float) -> str:
    """Wait until the site entry is loaded (it reloads after its options change)."""
    state = "missing"
    for _ in range(int(seconds)):
        entries = await api.get("/api/config/config_entries/entry?domain=prepaid_meter")
        state = entries[0]["state"] if entries else "missing"
        if state == "loaded":
            return str(entries[0]["entry_id"])
        await asyncio.sleep(1)
    raise RuntimeError(f"the demo site is {state}; see .demo/home-assistant.log")


async def provision(base: str, modbus_port: int, scan_interval: int, fast: bool) -> None:
    """Onboard, create and configure the site, top up; safe to run again."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await wait_for(api, 300)
        await onboard(api)
        entry_id = await create_site(api, modbus_port)
        # Onboarding adds a weather service and others that need the internet
        # (in the background, so they are looked for once the site exists);
        # the demo is local, so they go again.
        for entry in await api.get("/api/config/config_entries/entry"):
            if entry["domain"] in ONBOARDING_EXTRAS:
                await api.delete(f"/api/config/config_entries/entry/{entry['entry_id']}")
        await wait_for_site(api, 120)
        await opening_top_ups(api)
        await set_mall_options(api, entry_id, scan_interval, fast)
        await wait_for_site(api, 120)


# --------------------------------------------------------------------------- fast mode: months


def _sim_month(clock: float) -> str:
    """The simulated local month ('2026-12') of the simulator's clock."""
    local = datetime.fromtimestamp(clock + mall.UTC_OFFSET_S, UTC)
    return f"{local.year:04d}-{local.month:02d}"


def _clock(state: Path) -> float | None:
    try:
        return float(json.loads(state.read_text())["clock"])
    except (OSError, ValueError, KeyError):
        return None


def _load_record(path: Path) -> dict[str, Any]:
    if path.is_file():
        record: dict[str, Any] = json.loads(path.read_text())
        return record
    return {}


def _save_record(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


async def close_month(api: Api, start: datetime, end: datetime) -> dict[str, Any]:
    """Share the month's common costs and loss, then issue every tenant's bill."""
    period = {"start": start.isoformat(), "end": end.isoformat()}
    shared: dict[str, Any] = {}
    try:
        shared = await api.post("/api/services/prepaid_meter/share_costs?return_response", period)
    except RuntimeError as err:  # shown, and the bills are still issued
        print(f"months: share_costs refused: {err}", flush=True)
    answer = await api.post("/api/services/prepaid_meter/generate_bill?return_response", period)
    bills = answer["service_response"]["bills"]
    return {
        "shares_posted": shared.get("service_response", {}).get("posted", 0),
        "bills": [
            {k: b[k] for k in ("bill_id", "bill_number", "tenant", "total", "currency", "url")}
            for b in bills
        ],
    }


async def months(base: str, state: Path, record_path: Path) -> None:
    """Each simulated month that ends: share costs, issue bills for its real span."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await api.login(USER, PASSWORD)
        logged_in = time.monotonic()
        record = _load_record(record_path)
        while True:
            clock = _clock(state)
            if clock is None:
                await asyncio.sleep(1)
                continue
            month = _sim_month(clock)
            now = datetime.now(UTC).replace(microsecond=0)
            if "month" not in record:
                record.update(month=month, since=now.isoformat(), closed=[])
                _save_record(record_path, record)
            elif month != record["month"]:
                if time.monotonic() - logged_in > 1200:  # access tokens last 30 minutes
                    await api.login(USER, PASSWORD)
                    logged_in = time.monotonic()
                end = now - timedelta(seconds=1)
                start = datetime.fromisoformat(record["since"])
                closed = await close_month(api, start, end)
                closed.update(month=record["month"], start=start.isoformat(), end=end.isoformat())
                record["closed"].append(closed)
                record.update(month=month, since=end.isoformat())
                _save_record(record_path, record)
                total = sum(Decimal(b["total"]) for b in closed["bills"])
                print(
                    f"months: simulated {closed['month']} closed: {len(closed['bills'])} bills, "
                    f"{total} CNY, {closed['shares_posted']} shares",
                    flush=True,
                )
            await asyncio.sleep(2)


# --------------------------------------------------------------------------- check


def _balances(states: list[dict[str, Any]]) -> dict[str, Decimal]:
    wanted = {f"sensor.shop_{s.number:02d}_balance" for s in mall.shops()}
    return {
        s["entity_id"]: Decimal(s["state"])
        for s in states
        if s["entity_id"] in wanted and s["state"] not in ("unknown", "unavailable")
    }


async def relay_closed(modbus_port: int, device_id: int) -> bool:
    """Read a meter's relay state over Modbus, as the integration does.

    The simulator's map (profile ``simulator``) switches the relay by coil 0 and
    mirrors its state in holding register 6 (1 = closed, supply on).
    """
    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_port)
    try:
        if not await client.connect():
            raise RuntimeError(f"no Modbus server on 127.0.0.1:{modbus_port}")
        result = await client.read_holding_registers(6, count=1, device_id=device_id)
        if result.isError():
            raise RuntimeError(f"device {device_id}: {result}")
        return bool(result.registers[0])
    finally:
        client.close()


async def _cut_off_shop(api: Api, modbus_port: int, seconds: float) -> list[str]:
    """The cut-off shop: supply sensor cut_off and its relay open on the simulator."""
    shop = mall.CUT_OFF_SHOP
    deadline = time.monotonic() + seconds
    while True:
        supply = (await api.get(f"/api/states/sensor.shop_{shop:02d}_supply"))["state"]
        closed = await relay_closed(modbus_port, shop)
        if supply == "cut_off" and not closed:
            print(f"shop {shop}: supply {supply}, relay on the simulator: open")
            return []
        if time.monotonic() > deadline:
            relay = "closed" if closed else "open"
            return [f"shop {shop}: supply {supply}, relay {relay} after {seconds:.0f} s"]
        await asyncio.sleep(5)


async def notifications(api: Api) -> list[dict[str, Any]]:
    """The persistent notifications (where the demo's blueprint automations write)."""
    async with api.session.ws_connect(api.base + "/api/websocket") as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": api.token})
        if (await ws.receive_json())["type"] != "auth_ok":
            raise RuntimeError("websocket login refused")
        await ws.send_json({"id": 1, "type": "persistent_notification/get"})
        answer = await ws.receive_json()
        result: list[dict[str, Any]] = answer["result"]
        return result


async def _issued_bill(api: Api, record_path: Path, seconds: float) -> list[str]:
    """Fast mode: a month closed with bills, and a bill's page answers 200."""
    deadline = time.monotonic() + seconds
    while True:
        closed = _load_record(record_path).get("closed", [])
        bills = [b for month in closed for b in month["bills"]]
        if bills:
            bill = bills[-1]
            async with api.session.get(api.base + bill["url"], headers=api._headers()) as resp:
                status = resp.status
            print(
                f"bills: {len(bills)} issued for {len(closed)} simulated month(s); "
                f"{bill['bill_number']} ({bill['tenant']}, {bill['total']} {bill['currency']}) "
                f"{bill['url']} -> HTTP {status}"
            )
            return [] if status == 200 else [f"bill page {bill['url']} answered {status}"]
        if time.monotonic() > deadline:
            return [f"no bill issued within {seconds:.0f} s (fast mode)"]
        await asyncio.sleep(5)


async def check(base: str, wait: float, modbus_port: int, state: Path, record: Path) -> int:
    """The demo's acceptance check; prints what it finds, exits non-zero on a failure."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await api.login(USER, PASSWORD)
        states = await api.get("/api/states")
        energy = [
            s["entity_id"]
            for s in states
            # A shop's meter device is "Shop 07 ... meter": its counter is
            # sensor.shop_07_meter_energy (the tenant's *remaining* energy is not a meter).
            if s["entity_id"].startswith("sensor.shop_")
            and s["entity_id"].endswith("_meter_energy")
        ]
        first = _balances(states)
        print(f"shops: {len(energy)} energy sensors, {len(first)} balances")
        failures = []
        if len(energy) != SHOPS:
            failures.append(f"expected {SHOPS} shop energy sensors, found {len(energy)}")
        if len(first) != SHOPS:
            failures.append(f"expected {SHOPS} balances, found {len(first)}")
        await asyncio.sleep(wait)
        second = _balances(await api.get("/api/states"))
        changed = [e for e in first if e in second and second[e] != first[e]]
        for entity in sorted(first):
            print(f"  {entity}: {first[entity]} -> {second.get(entity)}")
        print(f"balances changed in {wait:.0f} s: {len(changed)} of {len(first)}")
        if not changed:
            failures.append(f"no balance changed in {wait:.0f} s")
        failures += await _cut_off_shop(api, modbus_port, 600)
        await asyncio.sleep(2)  # the cut-off notice is written just after the switch
        notes = await notifications(api)
        titles = sorted({n.get("title") or "" for n in notes})
        print(f"notifications since Home Assistant started: {len(notes)}: {', '.join(titles)}")
        # Notifications live until a restart; the automation's last run is kept.
        notice = await api.get("/api/states/automation.demo_cut_off_notice")
        print(f"cut-off notice automation last ran: {notice['attributes'].get('last_triggered')}")
        if not notice["attributes"].get("last_triggered"):
            failures.append("the cut-off notice automation never ran")
        saved = json.loads(state.read_text()) if state.is_file() else {}
        if float(saved.get("speed", 1)) > 1:
            failures += await _issued_bill(api, record, 900)
        for failure in failures:
            print(f"FAIL: {failure}")
        print(f"demo check: {'FAILED' if failures else 'OK'} in {time.monotonic() - started:.0f} s")
        return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["provision", "months", "check"])
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--modbus-port", type=int, default=5020)
    parser.add_argument("--scan-interval", type=int, default=10)
    parser.add_argument("--fast", action="store_true", help="provision for fast mode")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds between two reads")
    parser.add_argument("--state", type=Path, default=Path(".demo/simulator.json"))
    parser.add_argument("--record", type=Path, default=Path(".demo/months.json"))
    args = parser.parse_args()
    if args.command == "provision":
        asyncio.run(provision(args.url, args.modbus_port, args.scan_interval, args.fast))
        return 0
    if args.command == "months":
        asyncio.run(months(args.url, args.state, args.record))
        return 0
    return asyncio.run(check(args.url, args.wait, args.modbus_port, args.state, args.record))


if __name__ == "__main__":
    sys.exit(main())
