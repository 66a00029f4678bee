"""The README's screenshots, taken in real headless Chromium from the running demo.

    scripts/demo --screenshots     # while scripts/demo (or scripts/demo --fast) runs

writes ``docs/dashboard.png`` (the landlord dashboard as the demo's landlord
sees it after logging in), ``docs/tenant-page.png`` (a shop's page opened
from a ``tenant_link``, at a phone's size) and ``docs/bill.png`` (that shop's
newest bill, the admin bill page).

How it gets there, with the demo's printed login and nothing else:

- it logs in through Home Assistant's login flow (the same one the login
  page uses) and hands the tokens to the web page the way the frontend keeps
  them, in ``localStorage["hassTokens"]``, so the frontend opens logged in;
- the tenant page is the link the admin action ``tenant_link`` answers;
- the bill is the newest one fast mode issued (``.demo/months.json``), else
  an interim bill of this month so far (see :func:`newest_bill`);
  the admin bill URL needs a login, so it is opened as a path signed by Home
  Assistant (``auth/sign_path``, what the frontend does for downloads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from devtools.demo import mall
from devtools.demo.provision import PASSWORD, USER, Api

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: The shop the tenant page and the bill are of: a restaurant on time of use.
SHOP = 1
DASHBOARD = "/landlord-dashboard/tenants"

#: Whether a text is shown anywhere in the page, through every shadow root (the
#: frontend is web components all the way down, and innerText stops at them).
DEEP_HAS_TEXT = """
const [wanted] = arguments;
const roots = [document];
while (roots.length) {
  const root = roots.pop();
  if ((root.textContent || '').includes(wanted)) return true;
  for (const el of root.querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
}
return false;
"""


async def login_tokens(api: Api) -> dict[str, Any]:
    """Log in with the demo's user; the token answer (access and refresh token)."""
    flow = await api.post(
        "/auth/login_flow",
        {
            "client_id": api.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": api.client_id,
        },
    )
    result = await api.post(
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": api.client_id, "username": USER, "password": PASSWORD},
    )
    if result.get("type") != "create_entry":
        raise RuntimeError(f"login refused: {result.get('errors')}")
    form = {
        "grant_type": "authorization_code",
        "code": result["result"],
        "client_id": api.client_id,
    }
    async with api.session.post(api.base + "/auth/token", data=form) as resp:
        resp.raise_for_status()
        tokens: dict[str, Any] = await resp.json()
    api.token = tokens["access_token"]
    return tokens


async def sign_path(api: Api, path: str) -> str:
    """A path signed for a few minutes (``?authSig=``), as the frontend signs downloads."""
    async with api.session.ws_connect(api.base + "/api/websocket") as ws:
        await ws.receive_json()  # auth_required
        await ws.send_json({"type": "auth", "access_token": api.token})
        if (await ws.receive_json())["type"] != "auth_ok":
            raise RuntimeError("websocket login refused")
        await ws.send_json({"id": 1, "type": "auth/sign_path", "path": path, "expires": 600})
        answer = await ws.receive_json()
        if not answer.get("success"):
            raise RuntimeError(f"sign_path refused: {answer}")
        return str(answer["result"]["path"])


def month_to_hour(now: datetime) -> tuple[datetime, datetime]:
    """From the start of the mall's billing month (``billing_day`` 1) to the last full hour."""
    local = now.astimezone(timezone(timedelta(seconds=mall.UTC_OFFSET_S)))
    end = local.replace(minute=0, second=0, microsecond=0)
    return end.replace(day=1, hour=0), end


async def newest_bill(api: Api, record: Path) -> dict[str, Any]:
    """The shop's newest bill from fast mode's record, else an interim bill of this month.

    In real time the demo's first bill is due on the 1st; until then this
    issues shop 01's bill from the 1st to the last full hour, as a landlord
    does for a tenant who asks (the same hour answers the same bill again).
    """
    tenant = f"t{SHOP}"
    if record.is_file():
        closed = json.loads(record.read_text()).get("closed", [])
        mine = [b for month in closed for b in month["bills"] if b["tenant"] == tenant]
        if mine:
            return dict(mine[-1])
    start, end = month_to_hour(datetime.now(UTC))
    answer = await api.post(
        "/api/services/prepaid_meter/generate_bill?return_response",
        {"tenant": tenant, "start": start.isoformat(), "end": end.isoformat()},
    )
    [bill] = answer["service_response"]["bills"]
    return dict(bill)


async def targets(base: str, record: Path) -> tuple[dict[str, Any], str, str]:
    """The login tokens, the tenant page's path and the signed bill path."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, base)
        tokens = await login_tokens(api)
        link = await api.post(
            "/api/services/prepaid_meter/tenant_link?return_response",
            {"tenant": f"t{SHOP}", "valid_days": 1},
        )
        page = str(link["service_response"]["path"])
        bill = await newest_bill(api, record)
        print(f"bill: {bill['bill_number']} ({bill['tenant']}, {bill['total']} {bill['currency']})")
        return tokens, page, await sign_path(api, bill["url"])


def browser(width: int, height: int, phone: bool = False) -> webdriver.Chrome:
    """Debian's Chromium, headless, through its chromedriver (as the tests use it).

    ``phone``: a phone's screen (``width`` x ``height`` CSS pixels at two device
    pixels each); a headless window cannot be narrower than 500 pixels.
    """
    options = webdriver.ChromeOptions()
    if phone:
        metrics = {"width": width, "height": height, "pixelRatio": 2.0}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--lang=en-US",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for_text(driver: webdriver.Chrome, wanted: str, seconds: float) -> None:
    """Wait until the page (through shadow roots) shows ``wanted``."""
    deadline = time.monotonic() + seconds
    while not driver.execute_script(DEEP_HAS_TEXT, wanted):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{driver.current_url} does not show {wanted!r}")
        time.sleep(0.5)


def dashboard_shot(base: str, tokens: dict[str, Any], out: Path) -> None:
    """The landlord dashboard, logged in as the demo's landlord, at a laptop's size."""
    driver = browser(1440, 1100)
    try:
        driver.get(base + "/auth/authorize")  # any page of the origin, to reach its storage
        stored = {
            **tokens,
            "hassUrl": base,
            "clientId": f"{base}/",
            "expires": int(time.time() * 1000) + int(tokens["expires_in"]) * 1000,
        }
        driver.execute_script(
            "localStorage.setItem('hassTokens', arguments[0]);", json.dumps(stored)
        )
        driver.get(base + DASHBOARD)
        # The summary table (rendered by a template on the server) and the last gauge.
        wait_for_text(driver, "Shop 24 Electronics", 120)
        wait_for_text(driver, "Supply not on", 60)
        time.sleep(3)  # gauges animate their needles
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(out)


def page_shot(
    url: str, out: Path, width: int, height: int, full: bool = False, phone: bool = False
) -> None:
    """A plain page (no login needed) at a window size; ``full``: as tall as the page."""
    driver = browser(width, height, phone)
    try:
        driver.get(url)
        if full:
            tall = int(driver.execute_script("return document.documentElement.scrollHeight"))
            driver.set_window_size(width, min(max(height, tall + 20), 4000))
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8123")
    parser.add_argument("--record", type=Path, default=ROOT / ".demo" / "months.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)
    tokens, page, bill = asyncio.run(targets(base, args.record))
    dashboard_shot(base, tokens, args.out / "dashboard.png")
    page_shot(base + page, args.out / "tenant-page.png", 390, 844, phone=True)
    page_shot(base + bill, args.out / "bill.png", 900, 1200, full=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
