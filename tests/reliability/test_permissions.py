"""Who may do what: every action and the site's settings are refused to real non-admin users.

Two kinds of non-admin user are tried: a user of Home Assistant's ordinary
``system-users`` group, created through ``hass.auth``, and a read-only user.
Each action is called with valid data in their name: ``Unauthorized``, and
the store, the entry's options and every entity state stay as they were. The
same call as an admin then works, so the refusal is about who, not what.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.prepaid_meter.const import DOMAIN
from tests.reliability.conftest import picture
from tests.reliability.test_fuzz_actions import ACTIONS


def valid_calls() -> dict[str, dict[str, Any]]:
    """One call per action that an admin may make on the quiet site."""
    now = dt_util.utcnow()
    hour_ago = (now - timedelta(hours=1)).isoformat()
    return {
        "top_up": {"tenant": "t1", "amount": "50", "reference": "perm-1"},
        "top_up_batch": {"payments": [{"tenant": "t2", "amount": "5", "reference": "perm-b"}]},
        "refund": {"tenant": "t1", "amount": "1", "force": True, "reference": "perm-r"},
        "adjust_balance": {"tenant": "t1", "amount": "-1", "reason": "test"},
        "settle_account": {"tenant": "t3"},
        "record_reading": {"meter": "m2", "time": now.isoformat(), "value": "99999999"},
        "import_readings": {"csv": f"m2,{now.isoformat()},99999999"},
        "reconciliation_report": {"start": hour_ago, "end": now.isoformat()},
        "generate_bill": {"tenant": "t1"},
        "recalculate_bill": {"bill": "1"},
        "lock_supply": {"tenant": "t1"},
        "force_supply": {"tenant": "t1"},
        "release_supply": {"tenant": "t1"},
        "emergency_credit": {"tenant": "t1"},
        "share_costs": {},
        "tenant_link": {"tenant": "t1"},
        "rotate_tenant_secret": {"tenant": "t2"},
    }


async def _everything(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    shown = await entry.runtime_data.store.run(picture, entry.entry_id)
    shown["options"] = json.dumps(dict(entry.options), sort_keys=True)
    shown["states"] = sorted(
        (s.entity_id, s.state) for s in hass.states.async_all() if "shop" in s.entity_id
    )
    return shown


@pytest.fixture(params=["user", "read_only"])
async def non_admin(
    request: pytest.FixtureRequest,
    hass: HomeAssistant,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
) -> str:
    """A real non-admin user's id: an ordinary user (the admin owns the house), or a read-only."""
    user = (
        await hass.auth.async_create_user("Tenant Zhang", group_ids=[GROUP_ID_USER])
        if request.param == "user"
        else hass_read_only_user
    )
    assert not user.is_admin
    assert not user.is_owner
    return user.id


async def test_every_action_is_refused_to_non_admins(
    hass: HomeAssistant, quiet_site: MockConfigEntry, non_admin: str, hass_admin_user: MockUser
) -> None:
    calls = valid_calls()
    assert set(calls) == set(ACTIONS)
    before = await _everything(hass, quiet_site)
    for action, data in calls.items():
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN,
                action,
                data,
                blocking=True,
                return_response=True,
                context=Context(user_id=non_admin),
            )
        await hass.async_block_till_done()
        assert await _everything(hass, quiet_site) == before, action
    # The same money-moving calls as an admin go through.
    admin = Context(user_id=hass_admin_user.id)
    for action in ("top_up", "top_up_batch", "adjust_balance", "generate_bill"):
        await hass.services.async_call(
            DOMAIN, action, calls[action], blocking=True, return_response=True, context=admin
        )
    assert await _everything(hass, quiet_site) != before


async def test_site_settings_are_refused_to_non_admins(
    hass: HomeAssistant,
    quiet_site: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    non_admin: str,
) -> None:
    """The options flow (prices, cut-off, tenants) over the REST API: 401 for non-admins."""
    assert await async_setup_component(hass, "config", {})
    user = await hass.auth.async_get_user(non_admin)
    assert user is not None
    refresh = await hass.auth.async_create_refresh_token(user, "https://example.com/app")
    token = hass.auth.async_create_access_token(refresh)
    client = await hass_client_no_auth()
    options = dict(quiet_site.options)
    response = await client.post(
        "/api/config/config_entries/options/flow",
        json={"handler": quiet_site.entry_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 401
    assert dict(quiet_site.options) == options
