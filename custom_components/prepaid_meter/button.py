"""The emergency-credit button of every tenant account.

Pressing it is the same as the ``emergency_credit`` action: the tenant takes
its emergency credit once until the next top-up, and is reconnected at once
if that lifts the balance above the cut-off point.
"""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import PrepaidConfigEntry, PrepaidCoordinator, TenantConfig
from .entity import TenantEntity

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an emergency-credit button for every tenant."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(EmergencyCreditButton(coordinator, t) for t in coordinator.site.tenants)


class EmergencyCreditButton(TenantEntity, ButtonEntity):
    """Grant the tenant's emergency credit."""

    _attr_translation_key = "emergency_credit"

    def __init__(self, coordinator: PrepaidCoordinator, tenant: TenantConfig) -> None:
        super().__init__(coordinator, tenant, "emergency_credit_button")

    async def async_press(self) -> None:
        """Grant the credit, or say why not."""
        if self.tenant.policy.emergency_credit <= 0:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="emergency_credit_disabled",
                translation_placeholders={"tenant": self.tenant.name},
            )
        if await self.coordinator.async_grant_emergency(self.tenant.id) is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="emergency_credit_used",
                translation_placeholders={"tenant": self.tenant.name},
            )
