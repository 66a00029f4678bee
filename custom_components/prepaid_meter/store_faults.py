"""When the billing database cannot be written: a repair issue, a translated error, no guessing.

The database may be read-only, full, or (PostgreSQL, MariaDB) restarting. A
poll whose charges cannot be stored decides nothing: no warning, no cut-off,
no reconnect is based on a balance the ledger does not hold, the cursors stay
where the store has them, and the next poll that can write charges the whole
delta since (nothing is lost). A repair issue says so while it lasts and goes
when a write succeeds again.
"""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import UpdateFailed
from sqlalchemy.exc import SQLAlchemyError

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)

#: What the store raises when the database cannot be read or written.
STORE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError)
ISSUE_KEY = "store_failing"


def issue_id(entry_id: str) -> str:
    """The repair issue of one site's database."""
    return f"{ISSUE_KEY}_{entry_id}"


def _raise_issue(hass: HomeAssistant, entry: Any, err: BaseException) -> None:
    registry = ir.async_get(hass)
    if registry.async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None:
        # The error's class only: a driver's message may carry a host or a path.
        _LOGGER.warning(
            "Billing database of %s cannot be written (%s): charges wait, no cut-off decided",
            entry.title,
            type(err).__name__,
        )
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry.entry_id),
        is_fixable=False,
        is_persistent=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_KEY,
        translation_placeholders={"site": entry.title, "error": type(err).__name__},
    )


def poll_failed(hass: HomeAssistant, entry: Any, err: BaseException) -> UpdateFailed:
    """A poll's charges could not be stored: raise the issue; the poll fails translated."""
    _raise_issue(hass, entry, err)
    return UpdateFailed(translation_domain=DOMAIN, translation_key="store_write_failed")


def write_failed(hass: HomeAssistant, entry: Any, err: BaseException) -> HomeAssistantError:
    """An action's write could not be stored: raise the issue; the action fails translated."""
    _raise_issue(hass, entry, err)
    return HomeAssistantError(translation_domain=DOMAIN, translation_key="store_write_failed")


def store_ok(hass: HomeAssistant, entry: Any) -> None:
    """A write went through: the issue, if any, goes."""
    registry = ir.async_get(hass)
    if registry.async_get_issue(DOMAIN, issue_id(entry.entry_id)) is not None:
        _LOGGER.info("Billing database of %s is writable again", entry.title)
        ir.async_delete_issue(hass, DOMAIN, issue_id(entry.entry_id))
