"""Actions (services). Money-moving actions are admin-only.

Schemas accept loose strings so that every wrong value gets a translated
``ServiceValidationError`` from the handler, and nothing is written before
every field has been checked.
"""

from __future__ import annotations

import uuid

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_register_admin_service

from .const import DOMAIN, PAYMENT_METHODS
from .coordinator import PrepaidConfigEntry, TenantConfig
from .engine.money import MoneyError, parse_amount
from .store.ledger import LedgerError

ATTR_TENANT = "tenant"
ATTR_AMOUNT = "amount"
ATTR_METHOD = "method"
ATTR_REFERENCE = "reference"
ATTR_NOTE = "note"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"

MAX_REFERENCE = 128
MAX_TOP_UP = 10**9

SERVICE_TOP_UP = "top_up"

TOP_UP_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Required(ATTR_AMOUNT): vol.Any(cv.string, vol.Coerce(str)),
        vol.Optional(ATTR_METHOD, default="cash"): cv.string,
        vol.Optional(ATTR_REFERENCE): cv.string,
        vol.Optional(ATTR_NOTE, default=""): cv.string,
    }
)


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _loaded_entries(hass: HomeAssistant) -> list[PrepaidConfigEntry]:
    return [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]


def resolve_tenant(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[PrepaidConfigEntry, TenantConfig]:
    """Find the site and tenant an action is about: a tenant device id, or a tenant id."""
    wanted = call.data[ATTR_TENANT]
    entry_id = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries = [e for e in _loaded_entries(hass) if entry_id in (None, e.entry_id)]
    if entry_id is not None and not entries:
        raise _error("site_not_loaded", config_entry_id=entry_id)
    device = dr.async_get(hass).async_get(wanted)
    identifiers = {i for d, i in device.identifiers if d == DOMAIN} if device else set()
    matches = [
        (entry, tenant)
        for entry in entries
        for tenant in entry.runtime_data.site.tenants
        if tenant.id == wanted or f"{entry.entry_id}_tenant_{tenant.id}" in identifiers
    ]
    if not matches:
        raise _error("unknown_tenant", tenant=wanted)
    if len(matches) > 1:
        raise _error("ambiguous_tenant", tenant=wanted)
    return matches[0]


async def _async_top_up(call: ServiceCall) -> ServiceResponse:
    entry, tenant = resolve_tenant(call.hass, call)
    site = entry.runtime_data.site
    try:
        amount = parse_amount(call.data[ATTR_AMOUNT], site.currency)
    except MoneyError as err:
        raise _error("invalid_amount", amount=str(call.data[ATTR_AMOUNT])) from err
    if amount > MAX_TOP_UP:
        raise _error("invalid_amount", amount=str(call.data[ATTR_AMOUNT]))
    method = call.data[ATTR_METHOD]
    if method not in PAYMENT_METHODS:
        raise _error("invalid_method", method=method, methods=", ".join(PAYMENT_METHODS))
    reference = call.data.get(ATTR_REFERENCE) or f"auto-{uuid.uuid4().hex}"
    if not 0 < len(reference) <= MAX_REFERENCE or not reference.isprintable():
        raise _error("invalid_reference")
    try:
        result = await entry.runtime_data.coordinator.async_top_up(
            tenant.id, amount, method, reference, call.data[ATTR_NOTE]
        )
    except LedgerError as err:
        raise _error(err.key, **err.placeholders) from err
    return {
        "tenant": tenant.id,
        "amount": str(amount),
        "currency": site.currency,
        "reference": result.reference,
        "duplicate": result.duplicate,
        "entry": result.entry_id,
        "balance": str(result.balance),
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, from async_setup)."""
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_TOP_UP,
        _async_top_up,
        schema=TOP_UP_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
