"""The tenant page in real headless Chromium, served by Home Assistant's HTTP server.

A real site (simulator on loopback, SQLite file, real ``hass``) with three
shops; the page and bills are fetched by Chromium (selenium and Debian's
chromedriver) and by a plain HTTP client from the aiohttp test server, which
listens on a real loopback port.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Generator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from sqlalchemy import select

from custom_components.prepaid_meter.config_flow import building
from custom_components.prepaid_meter.const import DOMAIN
from custom_components.prepaid_meter.engine.money import round_money
from custom_components.prepaid_meter.store import ledger, tenant_access
from custom_components.prepaid_meter.store.models import TenantSecret
from custom_components.prepaid_meter.tenant_page import ACCESS_KEY, MAX_FAILURES
from devtools.simulator import MeterSimulator
from tests.conftest import site_entry, ticking_clock

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
UNKNOWN = "/api/prepaid_meter/no-such-page"
REQUEST_LOGGERS = {"aiohttp.access", "homeassistant.helpers.http"}


@pytest.fixture
def freezer() -> Generator[FrozenDateTimeFactory]:
    """A ticking clock from now (see ``tests.conftest.ticking_clock``)."""
    yield from ticking_clock()


@pytest.fixture
def browser(socket_enabled: None) -> Generator[webdriver.Chrome]:
    """Debian's Chromium, headless, phone-sized, driven through chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=390,844"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
async def site(hass: HomeAssistant, simulator: MeterSimulator, db_url: str) -> MockConfigEntry:
    """Three shops; shop 2's page is in Simplified Chinese."""
    tenants = building(sorted(simulator.meters), "Shop")["tenants"]
    tenants[1]["language"] = "zh-Hans"
    entry = site_entry(simulator, db_url, tenants=tenants)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def use_and_bills(
    hass: HomeAssistant, entry: MockConfigEntry, simulator: MeterSimulator
) -> dict[str, dict[str, Any]]:
    """Top-ups, three half-hours of use, and a bill for each of shops 1 and 2."""
    start = dt_util.utcnow() - timedelta(minutes=1)
    await call(hass, "top_up", tenant="t1", amount="100", method="wechat", reference="p1")
    await call(hass, "top_up", tenant="t2", amount="60", method="alipay", reference="p2")
    coordinator = entry.runtime_data.coordinator
    for _ in range(3):
        simulator.advance(1800)
        await coordinator.async_refresh()
    bills = {}
    for tenant in ("t1", "t2"):
        [bill] = (await call(hass, "generate_bill", tenant=tenant, start=start.isoformat()))[
            "bills"
        ]
        bills[tenant] = bill
    return bills


async def open_page(hass: HomeAssistant, browser: webdriver.Chrome, url: str) -> None:
    # The test server runs on this event loop: Chromium is driven from a worker thread.
    await hass.async_add_executor_job(browser.get, url)


def shown(browser: webdriver.Chrome, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def tampered(token: str, **claim: Any) -> str:
    """The token's payload changed (site, tenant or expiry), its signature kept."""
    payload, signature = token.split(".")
    site, tenant, expires = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    data = {"site": site, "tenant": tenant, "expires": expires, **claim}
    raw = json.dumps([data["site"], data["tenant"], data["expires"]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode() + "." + signature


def token_of(link: dict[str, Any]) -> str:
    return str(link["path"]).rsplit("/", 1)[1]


async def test_page_in_chromium_shows_the_tenants_own_balance_and_bills(
    hass: HomeAssistant,
    site: MockConfigEntry,
    simulator: MeterSimulator,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    browser: webdriver.Chrome,
) -> None:
    bills = await use_and_bills(hass, site, simulator)
    link = await call(hass, "tenant_link", tenant="t1")
    assert link["path"].startswith("/api/prepaid_meter/tenant/")
    assert link["language"] == "en"
    client = await hass_client_no_auth()  # a real aiohttp server on a loopback port
    await open_page(hass, browser, str(client.make_url(link["path"])))

    state = site.runtime_data.coordinator.data.tenants["t1"]
    stored = await site.runtime_data.store.run(ledger.balance, site.entry_id, "t1")
    assert state.balance == stored < 100
    assert shown(browser, "#balance") == f"{round_money(stored, 'CNY'):.2f}"
    assert shown(browser, "#tenant-name") == "Shop 01"
    assert browser.find_element(By.ID, "supply").get_attribute("data-state") == "on"
    remaining = Decimal(shown(browser, "#remaining").split()[1])
    assert remaining == (stored / Decimal("1.50")).quantize(Decimal("0.1"))
    assert "1.5 CNY/kWh" in shown(browser, "#remaining-note")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.bill")
    assert [r.get_attribute("data-bill") for r in rows] == [str(bills["t1"]["bill_id"])]
    assert shown(browser, "tr.bill .bill-total") == bills["t1"]["total"]
    payments = browser.find_elements(By.CSS_SELECTOR, "tr.payment")
    assert len(payments) == 1
    assert "+100.00 CNY" in payments[0].text
    assert "WeChat Pay" in payments[0].text
    day = browser.find_elements(By.CSS_SELECTOR, "#use-day g.bar")
    assert len(day) == 24
    used = sum(Decimal(str(g.get_attribute("data-energy"))) for g in day)
    assert used > 0  # 1.5 h at 1 kW on shop 1's meter
    assert len(browser.find_elements(By.CSS_SELECTOR, "#use-week g.bar")) >= 1
    source = str(browser.page_source)
    assert "Shop 02" not in source
    assert str(bills["t2"]["bill_id"]) not in [r.get_attribute("data-bill") for r in rows]
    assert "<script" not in source

    # The bill as stored, through the tenant's own link: HTML in Chromium, PDF byte for byte.
    html_link = browser.find_element(By.CSS_SELECTOR, "a.bill-html").get_attribute("href")
    pdf_link = str(browser.find_element(By.CSS_SELECTOR, "a.bill-pdf").get_attribute("href"))
    await open_page(hass, browser, str(html_link))
    assert bills["t1"]["total"] in str(browser.page_source)
    assert bills["t1"]["bill_number"] in str(browser.page_source)
    tenant_pdf = await (await client.get(pdf_link.split(str(client.make_url("")), 1)[1])).read()
    admin = await hass_client()
    assert tenant_pdf.startswith(b"%PDF")
    assert tenant_pdf == await (await admin.get(bills["t1"]["pdf_url"])).read()
    stored_html = await (await admin.get(bills["t1"]["url"])).read()
    assert await (
        await client.get(str(html_link).split(str(client.make_url("")), 1)[1])
    ).read() == (stored_html)

    # Shop 2's page is in its own language.
    link2 = await call(hass, "tenant_link", tenant="t2")
    await open_page(hass, browser, str(client.make_url(link2["path"])))
    assert "余额" in shown(browser, ".balance .label")
    assert shown(browser, "#supply") == "正常供电"
    assert "Shop 01" not in str(browser.page_source)


async def test_one_tenants_token_never_reaches_another_tenant(
    hass: HomeAssistant,
    site: MockConfigEntry,
    simulator: MeterSimulator,
    hass_client_no_auth: ClientSessionGenerator,
    browser: webdriver.Chrome,
) -> None:
    bills = await use_and_bills(hass, site, simulator)
    token_a = token_of(await call(hass, "tenant_link", tenant="t1"))
    token_b = token_of(await call(hass, "tenant_link", tenant="t2"))
    client = await hass_client_no_auth()
    not_found = await (await client.get(UNKNOWN)).read()
    bill_b = bills["t2"]["bill_id"]
    base = "/api/prepaid_meter/tenant"
    refused = [
        f"{base}/{token_a}/bill/{bill_b}.html",  # B's bill under A's token
        f"{base}/{token_a}/bill/{bill_b}.pdf",
        f"{base}/{token_a}/bill/{bill_b + 100}.html",  # no such bill
        f"{base}/{tampered(token_a, tenant='t2')}",  # A's signature on B's claim
        f"{base}/{token_a.split('.')[0]}.{token_b.split('.')[1]}",  # B's signature on A's claim
        f"{base}/{tampered(token_a, site='another-site')}",
    ]
    for path in refused:
        answer = await client.get(path)
        assert answer.status == 404, path
        assert await answer.read() == not_found, path
    # A's own bill and page still work (fewer failures than the limit so far).
    assert len(refused) < MAX_FAILURES
    own = await client.get(f"{base}/{token_a}/bill/{bills['t1']['bill_id']}.pdf")
    assert own.status == 200
    await open_page(hass, browser, str(client.make_url(f"{base}/{token_b}")))
    assert shown(browser, "#tenant-name") == "Shop 02"
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")]
    assert links
    assert all(token_b in str(h) and f"/bill/{bill_b}." in str(h) for h in links)


async def test_rotated_secret_stops_every_link_of_that_tenant(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    browser: webdriver.Chrome,
) -> None:
    old = await call(hass, "tenant_link", tenant="t1")
    other = await call(hass, "tenant_link", tenant="t2")
    client = await hass_client_no_auth()
    assert (await client.get(old["path"])).status == 200
    rotated = await call(hass, "rotate_tenant_secret", tenant="t1")
    assert rotated["tenant"] == "t1"
    answer = await client.get(old["path"])
    assert answer.status == 404
    await open_page(hass, browser, str(client.make_url(old["path"])))
    with pytest.raises(NoSuchElementException):
        browser.find_element(By.ID, "balance")
    assert "404" in str(browser.find_element(By.TAG_NAME, "body").text)
    # Another tenant's links are untouched; a new link of the tenant works.
    assert (await client.get(other["path"])).status == 200
    new = await call(hass, "tenant_link", tenant="t1")
    await open_page(hass, browser, str(client.make_url(new["path"])))
    assert shown(browser, "#tenant-name") == "Shop 01"
    rows = await site.runtime_data.store.run(
        lambda s: s.scalars(select(TenantSecret).where(TenantSecret.tenant == "t1")).all()
    )
    assert len(rows) == 2


async def test_expired_link_is_refused(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
    browser: webdriver.Chrome,
) -> None:
    link = await call(hass, "tenant_link", tenant="t1", valid_days=2.0)
    assert dt_util.parse_datetime(link["expires"]) > dt_util.utcnow() + timedelta(days=1)
    client = await hass_client_no_auth()
    assert (await client.get(link["path"])).status == 200
    freezer.move_to(dt_util.utcnow() + timedelta(days=1, hours=23))
    assert (await client.get(link["path"])).status == 200
    freezer.move_to(dt_util.utcnow() + timedelta(hours=1, seconds=1))
    answer = await client.get(link["path"])
    assert answer.status == 404
    assert await answer.read() == await (await client.get(UNKNOWN)).read()
    await open_page(hass, browser, str(client.make_url(link["path"])))
    assert browser.find_element(By.TAG_NAME, "body").text == "404: Not Found"
    # A later expiry written into the token does not help: the signature covers it.
    later = tampered(token_of(link), expires=int(dt_util.utcnow().timestamp()) + 86400)
    assert (await client.get(f"/api/prepaid_meter/tenant/{later}")).status == 404


async def test_guessed_tokens_get_404_then_429(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
    browser: webdriver.Chrome,
) -> None:
    good = await call(hass, "tenant_link", tenant="t1")
    client = await hass_client_no_auth()
    not_found = await (await client.get(UNKNOWN)).read()
    guesses = [
        "x",
        "a" * 64,
        "eyJ4Ijox.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        token_of(good)[:-1] + ("A" if token_of(good)[-1] != "A" else "B"),
        "not-a-token",
        "a.b",
        "x" * 5000,
        tampered(token_of(good), tenant="t3"),
        tampered(token_of(good), expires="soon"),
        "e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]
    assert len(guesses) == MAX_FAILURES
    for guess in guesses:
        answer = await client.get(f"/api/prepaid_meter/tenant/{guess}")
        assert answer.status == 404, guess
        assert await answer.read() == not_found, guess
    limited = await client.get("/api/prepaid_meter/tenant/another-guess")
    assert limited.status == 429
    # While limited, even a good link from that address waits (Chromium too: same address).
    assert (await client.get(good["path"])).status == 429
    await open_page(hass, browser, str(client.make_url(good["path"])))
    assert "429" in browser.find_element(By.TAG_NAME, "body").text
    assert hass.data[ACCESS_KEY].limiter.limited("127.0.0.1")
    freezer.move_to(dt_util.utcnow() + timedelta(seconds=61))
    assert (await client.get(good["path"])).status == 200


async def test_links_and_rotation_are_for_administrators_only(
    hass: HomeAssistant, site: MockConfigEntry, hass_read_only_user: MockUser
) -> None:
    context = Context(user_id=hass_read_only_user.id)
    for service in ("tenant_link", "rotate_tenant_secret"):
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN,
                service,
                {"tenant": "t1"},
                blocking=True,
                return_response=True,
                context=context,
            )
    store = site.runtime_data.store
    assert await store.run(tenant_access.current_secret, site.entry_id, "t1") is None


async def test_bad_link_requests_get_translated_errors_and_change_nothing(
    hass: HomeAssistant, site: MockConfigEntry
) -> None:
    for days in ("0", "367", "1.5", "-3", "soon", "nan", "inf", "1e400", ""):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "tenant_link", tenant="t1", valid_days=days)
        assert err.value.translation_key == "invalid_valid_days"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "rotate_tenant_secret", tenant="t9")
    assert err.value.translation_key == "unknown_tenant"
    store = site.runtime_data.store
    assert await store.run(tenant_access.current_secret, site.entry_id, "t1") is None


async def test_diagnostics_and_logs_carry_no_secret_or_token(
    hass: HomeAssistant,
    site: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    link = await call(hass, "tenant_link", tenant="t1")
    client = await hass_client_no_auth()
    assert (await client.get(link["path"])).status == 200
    assert (await client.get(link["path"] + "x")).status == 404
    await call(hass, "rotate_tenant_secret", tenant="t1")
    assert (await client.get(link["path"])).status == 404
    secret = await site.runtime_data.store.run(tenant_access.current_secret, site.entry_id, "t1")
    assert secret is not None
    diag = json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, site))
    assert secret.hex() not in diag
    assert token_of(link) not in diag
    assert token_of(link).split(".")[1] not in diag
    # Every log record at every level, but for the two request loggers the README
    # names (request paths at info and debug, below Home Assistant's default level).
    records = [r for r in caplog.records if r.name not in REQUEST_LOGGERS]
    assert records  # capture works (loader, auth, store...)
    logged = "\n".join(r.getMessage() for r in records)
    assert secret.hex() not in logged
    assert token_of(link).split(".")[1] not in logged
