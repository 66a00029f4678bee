"""Shared pieces of the reliability tests: a site at rest and a picture of everything it stores."""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.models import Posting
from devtools.simulator import MeterSimulator
from devtools.site import site_entry

#: Tables that only ever grow: compared by row count, not row by row.
APPEND_ONLY = {"pm_entry", "pm_posting", "pm_reading", "pm_payment_ref", "pm_bill_file"}


def long_run() -> bool:
    """``PM_LONG=1`` (``scripts/test-long``) asks for the long versions."""
    return os.environ.get("PM_LONG", "") not in ("", "0")


#: The random plan of CI's short runs (meter faults, restarts): the same every time.
SHORT_SEED = 20261123


def size(short: int, long: int, env: str) -> int:
    """How many rounds or examples: ``env`` if set, else the short or the long default."""
    value = os.environ.get(env)
    if value:
        return int(value)
    return long if long_run() else short


def picture(session: Session, site: str) -> dict[str, Any]:
    """Everything the store holds for a refused call to leave unchanged.

    Every table, row by row, except the append-only ones (counted); and the
    ledger's own checks: journal sum, posting count, balances.
    """
    bind = session.get_bind()
    shown: dict[str, Any] = {}
    for table in sorted(inspect(bind).get_table_names()):
        if table in APPEND_ONLY:
            shown[table] = session.scalar(text(f"SELECT count(*) FROM {table}"))
        else:
            rows = session.execute(text(f"SELECT * FROM {table}")).all()
            shown[table] = sorted(repr(tuple(r)) for r in rows)
    shown["journal_sum"] = ledger.journal_sum(session, site)
    shown["postings"] = session.scalar(select(func.count()).select_from(Posting))
    shown["balances"] = ledger.wallet_balances(session, site)
    return shown


def sound(session: Session, site: str) -> Mapping[str, Decimal]:
    """The ledger's invariants hold: every entry balanced, the journal sums to zero."""
    assert ledger.unbalanced_entries(session, site) == []
    assert ledger.journal_sum(session, site) == 0
    return ledger.wallet_balances(session, site)


@pytest.fixture
async def quiet_site(
    hass: HomeAssistant, simulator: MeterSimulator, db_url: str
) -> MockConfigEntry:
    """A loaded site that does not poll on its own during a test (one poll at set-up)."""
    entry = site_entry(simulator, db_url, scan_interval=86_400)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
