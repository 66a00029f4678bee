"""Repair flows: a person confirms they checked a meter whose counter ran backwards."""

from __future__ import annotations

from typing import Any

from homeassistant import data_entry_flow
from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant


class TamperCheckedFlow(ConfirmRepairFlow):
    """Confirming the repair clears the meter's tamper alarm."""

    def __init__(self, entry_id: str, meter: str) -> None:
        self.entry_id = entry_id
        self.meter = meter

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Show the issue; on confirmation, clear the alarm (the issue is then removed)."""
        if user_input is not None:
            entry = self.hass.config_entries.async_get_entry(self.entry_id)
            if entry is not None and entry.state is ConfigEntryState.LOADED:
                entry.runtime_data.coordinator.alarms.clear_tamper(self.meter)
        return await super().async_step_confirm(user_input)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """The fix flow of a fixable issue (only tamper issues are fixable)."""
    data = data or {}
    return TamperCheckedFlow(str(data.get("entry_id", "")), str(data.get("meter", "")))
