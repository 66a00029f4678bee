"""Provision and check the demo through Home Assistant's own HTTP API.

``provision``: onboard Home Assistant (owner user, core config, analytics),
create the demo site through the integration's config flow, set its options
and give every shop its opening top-up. Each step is skipped when done, and the
top-ups carry fixed references, so running it again changes nothing.

``check``: log in with the printed user and password (the same login flow the
web page uses), list the meters' energy sensors and the tenants' balances,
and confirm the balances move between two reads a minute apart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from typing import Any

import aiohttp

USER = "landlord"
PASSWORD = "prepaid-demo"  # a local demo login, printed by scripts/demo
SHOPS = 12
HEAVY_SHOP = 12  # draws 6 kW on the simulator and starts with almost no credit
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


async def create_site(api: Api, modbus_port: int, scan_interval: int) -> str:
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
            "price": "1.00",
            "cut_off_enabled": True,
        },
    )
    entry_id = str(result["result"]["entry_id"])
    options = await api.post("/api/config/config_entries/options/flow", {"handler": entry_id})
    await api.post(
        f"/api/config/config_entries/options/flow/{options['flow_id']}",
        {"price": "1.00", "cut_off_enabled": True, "scan_interval": scan_interval},
    )
    return entry_id


async def opening_top_ups(api: Api) -> None:
    for shop in range(1, SHOPS + 1):
        amount = "0.50" if shop == HEAVY_SHOP else str(150 + 25 * (shop % 4))
        await api.post(
            "/api/services/prepaid_meter/top_up?return_response",
            {
                "tenant": f"t{shop}",
                "amount": amount,
                "method": "cash",
                "reference": f"demo-opening-{shop}",
            },
        )


async def wait_for_site(api: Api, seconds: float) -> None:
    """Wait until the site entry is loaded (it reloads after its options change)."""
    for _ in range(int(seconds)):
        entries = await api.get("/api/config/config_entries/entry?domain=prepaid_meter")
        if entries and entries[0]["state"] == "loaded":
            return
        await asyncio.sleep(1)
    raise RuntimeError("the demo site did not load; see .demo/home-assistant.log")


async def provision(base: str, modbus_port: int, scan_interval: int) -> None:
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await wait_for(api, 300)
        await onboard(api)
        await create_site(api, modbus_port, scan_interval)
        # Onboarding adds a weather service and others that need the internet
        # (in the background, so they are looked for once the site exists);
        # the demo is local, so they go again.
        for entry in await api.get("/api/config/config_entries/entry"):
            if entry["domain"] in ONBOARDING_EXTRAS:
                await api.delete(f"/api/config/config_entries/entry/{entry['entry_id']}")
        await wait_for_site(api, 120)
        await opening_top_ups(api)


def _balances(states: list[dict[str, Any]]) -> dict[str, Decimal]:
    return {
        s["entity_id"]: Decimal(s["state"])
        for s in states
        if s["entity_id"].endswith("_balance") and s["state"] not in ("unknown", "unavailable")
    }


async def check(base: str, wait: float) -> int:
    """The demo's acceptance check; prints what it finds, exits non-zero on a failure."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        await api.login(USER, PASSWORD)
        states = await api.get("/api/states")
        energy = sorted(
            s["entity_id"]
            for s in states
            if s["entity_id"].startswith("sensor.shop_") and s["entity_id"].endswith("_energy")
        )
        first = _balances(states)
        print(f"energy sensors: {len(energy)}  balances: {len(first)}")
        failures = []
        if len(energy) != SHOPS:
            failures.append(f"expected {SHOPS} energy sensors, found {len(energy)}")
        if len(first) != SHOPS:
            failures.append(f"expected {SHOPS} balances, found {len(first)}")
        await asyncio.sleep(wait)
        second = _balances(await api.get("/api/states"))
        changed = [e for e in first if e in second and second[e] != first[e]]
        for entity in sorted(first):
            print(f"  {entity}: {first[entity]} -> {second.get(entity)}")
        if not changed:
            failures.append(f"no balance changed in {wait:.0f} s")
        supply = await api.get(f"/api/states/sensor.shop_{HEAVY_SHOP:02d}_supply")
        print(f"shop {HEAVY_SHOP} supply: {supply['state']}")
        for failure in failures:
            print(f"FAIL: {failure}")
        print("demo check: " + ("FAILED" if failures else "OK"))
        return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["provision", "check"])
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--modbus-port", type=int, default=5020)
    parser.add_argument("--scan-interval", type=int, default=10)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds between two reads")
    args = parser.parse_args()
    if args.command == "provision":
        asyncio.run(provision(args.url, args.modbus_port, args.scan_interval))
        return 0
    return asyncio.run(check(args.url, args.wait))


if __name__ == "__main__":
    sys.exit(main())
