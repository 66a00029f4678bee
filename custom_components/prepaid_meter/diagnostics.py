"""Diagnostics: the site's set-up and state, without secrets or personal data.

Tenant names, contact details, the database URL (it may hold a password) and
host names are redacted; ids, counts, balances and meter states are kept
because they are what a bug report needs.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_NAME
from homeassistant.core import HomeAssistant

from .const import CONF_DATABASE_URL
from .coordinator import PrepaidConfigEntry
from .store import ledger

TO_REDACT = {CONF_HOST, CONF_DATABASE_URL, CONF_NAME, "name", "contact", "phone", "email"}
# Tenant-page link secrets live only in the database, never in the entry; should
# one ever reach the options, it is redacted too.
TO_REDACT |= {"secret", "token", "url"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PrepaidConfigEntry
) -> dict[str, Any]:
    """The entry's configuration (redacted), meter and tenant state, and a ledger check."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    journal_sum = await runtime.store.run(ledger.journal_sum, entry.entry_id)
    return {
        "entry": {
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": async_redact_data(dict(entry.options), TO_REDACT),
        },
        "meters": {
            meter_id: {
                "online": state.online,
                "failures": state.failures,
                "values": (
                    {k: str(v) for k, v in state.sample.values.items()} if state.sample else None
                ),
                "relay_closed": state.sample.relay_closed if state.sample else None,
            }
            for meter_id, state in coordinator.data.meters.items()
        },
        "tenants": {
            tenant_id: {
                "balance": str(state.balance),
                # Taken off the balance above; posted when the next interval is stored.
                "pending_charge": str(coordinator.pending_charge(tenant_id)),
                "supply": state.supply.value,
                "locked": state.locked,
                "forced_on": state.forced_on,
            }
            for tenant_id, state in coordinator.data.tenants.items()
        },
        "ledger": {"journal_sum": str(journal_sum), "balanced": journal_sum == 0},
    }
