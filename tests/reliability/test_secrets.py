"""Diagnostics and logs carry no secrets and no personal data.

A site on a real PostgreSQL reached with a password in its URL, a tenant with
a phone number and an e-mail address: top-ups, a refund, a bill, diagnostics,
and a second site whose database cannot be reached (the set-up retry is
logged). Every log record of the run, at DEBUG, and the diagnostics are
searched for the password, the contact details and the URL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import CONF_TENANTS, DOMAIN
from devtools.simulator import MeterSimulator
from devtools.site import site_entry

PASSWORD = "Pw-s3cret-42"
PHONE = "+86 138 0013 8000"
EMAIL = "zhang.wei@example.com"


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


def _contacts(options: dict[str, Any]) -> list[dict[str, Any]]:
    tenants = [dict(t) for t in options[CONF_TENANTS]]
    tenants[0] |= {"name": "Zhang Wei", "contact": {"phone": PHONE, "email": EMAIL}}
    return tenants


async def test_no_secrets_in_logs_or_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    simulator: MeterSimulator,
    pg_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = _with_password(pg_url)
    entry = site_entry(simulator, url)
    entry = site_entry(simulator, url, options={CONF_TENANTS: _contacts(dict(entry.options))})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for n, amount in enumerate(("10", "25.50", "0.01")):
        await hass.services.async_call(
            DOMAIN,
            "top_up",
            {"tenant": "t1", "amount": amount, "reference": f"s-{n}", "method": "wechat"},
            blocking=True,
            return_response=True,
        )
    await hass.services.async_call(
        DOMAIN, "refund", {"tenant": "t1", "amount": "1"}, blocking=True, return_response=True
    )
    await hass.services.async_call(
        DOMAIN, "generate_bill", {"tenant": "t1"}, blocking=True, return_response=True
    )
    await entry.runtime_data.coordinator.async_refresh()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    # A second site whose database is down: the retry is logged, with no URL in it.
    dead = _with_password(pg_url.rsplit(":", 1)[0] + ":1/nowhere")
    down = site_entry(simulator, dead, title="Down mall")
    down.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(down.entry_id)
    await hass.async_block_till_done()
    assert any("prepaid_meter" in r.getMessage() for r in caplog.records if r.levelno >= 30)

    text = json.dumps(diagnostics)
    for secret in (PASSWORD, PHONE, EMAIL, "Zhang Wei", url, "127.0.0.1"):
        assert secret not in text
    # caplog.text holds every record formatted, tracebacks included.
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert len(caplog.records) > 50  # the run was really logged at DEBUG
    for secret in (PASSWORD, PHONE, EMAIL):
        assert secret not in logged
    ours = [r for r in caplog.records if r.name.startswith("custom_components.prepaid_meter")]
    assert not any("Zhang Wei" in r.getMessage() for r in ours)
    assert not ir.async_get(hass).issues or all(
        PASSWORD not in json.dumps(i.translation_placeholders or {})
        for i in ir.async_get(hass).issues.values()
    )
