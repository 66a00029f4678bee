"""Alarms glue: abnormal use per tenant, meter alarms, their events and repair issues.

The coordinator calls :meth:`AlarmMonitor.after_poll` once per poll; it is
O(meters) and touches no database. The spike rule's usual load per hour of
the week comes from stored readings, loaded in the background when the site
starts (four weeks, one query, see ``store/usage.py``) and then once an hour
for the hours since; the usual load of the current hour is computed once per
hour and cached.

Every alarm fires ``prepaid_meter_alarm`` once when it starts and once when
it clears (``active`` true / false) and shows on a binary sensor. Where a
person must act, a repair issue is raised and deleted when the condition
clears: a relay that did not obey, a counter that ran backwards (tamper; it
clears when someone confirms the repair, and is restored from the repair
issue after a restart), a meter offline longer than ``offline_repair_minutes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EVENT_ALARM
from .engine.alarms import (
    BASELINE_WEEKS,
    HOUR,
    RatePoint,
    UseChange,
    UseState,
    add_use,
    energy_rate,
    evaluate_use,
    hour_start,
    hourly_use,
    prune,
    usual_load,
)
from .store.usage import last_reading_per_hour

if TYPE_CHECKING:
    from .coordinator import MeterConfig, PrepaidCoordinator, TenantConfig

_LOGGER = logging.getLogger(__name__)

#: Meter alarm kinds shown on binary sensors (offline is the meter's Online sensor).
RELAY_MISMATCH = "relay_mismatch"
TAMPER = "tamper"
OFFLINE = "offline"
#: The history is read this much at a time (see ``AlarmMonitor._async_load``).
LOAD_STEP = timedelta(days=1)


def issue_id(kind: str, entry_id: str, meter_id: str) -> str:
    """The repair issue of a meter alarm."""
    return f"{kind}_{entry_id}_{meter_id}"


@dataclass
class _TenantUse:
    state: UseState = field(default_factory=UseState)
    history: dict[datetime, Decimal] = field(default_factory=dict)
    usual_kw: Decimal | None = None
    load_kw: Decimal | None = None


class AlarmMonitor:
    """The alarm state of one site, kept next to its coordinator."""

    def __init__(self, coordinator: PrepaidCoordinator) -> None:
        self.coordinator = coordinator
        self.hass: HomeAssistant = coordinator.hass
        self.site = coordinator.site
        self.entry_id = coordinator.site_id
        self.offline_repair = timedelta(minutes=self.site.offline_repair_minutes)
        self.tenants = {t.id: _TenantUse() for t in self.site.tenants}
        self._rates: dict[str, RatePoint] = {}
        #: Meters whose relay did not obey, and the state it was told to take.
        self.relay_wanted: dict[str, bool] = {}
        self.tampered: set[str] = set()
        self._offline_since: dict[str, datetime] = {}
        self.offline_reported: set[str] = set()
        #: Line-loss rules whose last shared window looked like evasion.
        self.evasion: set[str] = set()
        self._hour: datetime | None = None
        self._loaded_until: datetime | None = None
        self._loading = False

    @property
    def _spike_wanted(self) -> bool:
        return any(t.use_limits.spike_factor is not None for t in self.site.tenants)

    def _tz(self) -> tzinfo:
        return dt_util.get_default_time_zone()

    def restore(self) -> None:
        """Take alarms back from the repair issues when the site (re)starts.

        Tamper waits for a person, and evasion for the next shared window: both
        come back on. A relay mismatch or an offline meter is found again by
        the polls, so their issues from before are dropped here.
        """
        registry = ir.async_get(self.hass)
        for meter in self.site.meters:
            if registry.async_get_issue(DOMAIN, issue_id(TAMPER, self.entry_id, meter.id)):
                self.tampered.add(meter.id)
            for kind in (RELAY_MISMATCH, OFFLINE):
                ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self.entry_id, meter.id))
        prefix = f"evasion_{self.entry_id}_"
        for (domain, key), found in registry.issues.items():
            if domain == DOMAIN and key.startswith(prefix) and found.active:
                self.evasion.add(key.removeprefix(prefix))

    # --- abnormal use -------------------------------------------------------------------

    def after_poll(self, now: datetime) -> None:
        """Evaluate every alarm on the poll's samples: O(meters), no database."""
        data = self.coordinator.data
        hour = hour_start(now)
        if hour != self._hour:
            self._hour = hour
            self._new_hour(now)
        loads: dict[str, Decimal] = {}
        for meter in self.site.meters:
            mstate = data.meters[meter.id]
            self._check_offline(meter, mstate.online, now)
            if not mstate.online or mstate.sample is None:
                continue
            sample = mstate.sample
            wanted = self.relay_wanted.get(meter.id)
            if wanted is not None and sample.relay_closed == wanted:
                self.relay_obeyed(meter)
            power = sample.values.get("power")
            if power is not None:
                loads[meter.id] = power / 1000
                continue
            rate, self._rates[meter.id] = energy_rate(self._rates.get(meter.id), now, sample.energy)
            if rate is not None:
                loads[meter.id] = rate
        for tenant in self.site.tenants:
            use = self.tenants[tenant.id]
            known = [loads[m] for m in tenant.meters if m in loads]
            use.load_kw = sum(known, Decimal(0)) if known else None
            changes, use.state = evaluate_use(
                use.load_kw, now, tenant.use_limits, use.usual_kw, use.state
            )
            for change in changes:
                self._fire_use(tenant, change)

    def _fire_use(self, tenant: TenantConfig, change: UseChange) -> None:
        _LOGGER.info(
            "Tenant %s: %s %s at %s kW (limit %s kW)",
            tenant.name,
            change.kind,
            "started" if change.active else "cleared",
            change.load_kw,
            change.limit_kw,
        )
        payload: dict[str, Any] = {
            **self.coordinator._tenant_payload(tenant),
            "kind": change.kind,
            "active": change.active,
            "load_kw": kw_text(change.load_kw),
            "limit_kw": kw_text(change.limit_kw),
        }
        if change.usual_kw is not None:
            payload["usual_kw"] = kw_text(change.usual_kw)
        if change.since is not None:
            payload["since"] = change.since.isoformat()
        self.hass.bus.async_fire(EVENT_ALARM, payload)

    def tenant_active(self, tenant_id: str, kind: str) -> bool:
        """Whether a tenant's abnormal-use alarm is on."""
        return kind in self.tenants[tenant_id].state.active

    def _new_hour(self, now: datetime) -> None:
        """Once an hour: the usual loads of the new hour; fetch the hours since the last load."""
        tz = self._tz()
        for use in self.tenants.values():
            use.history = prune(use.history, now)
            use.usual_kw = usual_load(use.history, now, tz)
        if not self._spike_wanted or self._loading:
            return
        since = self._loaded_until or hour_start(now) - timedelta(weeks=BASELINE_WEEKS, hours=1)
        self._loading = True
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self._async_load(since, now), f"{DOMAIN} usage history {self.entry_id}"
        )

    async def _async_load(self, since: datetime, now: datetime) -> None:
        """Add the complete hours from ``since`` to every tenant's history.

        Read a day at a time: the store has one thread, and a poll's charge
        waits for whatever query runs there, so no single query may be long.
        """
        current = hour_start(now)
        points: dict[str, list[tuple[datetime, Decimal]]] = {}
        try:
            start = since
            while start < current:
                end = min(start + LOAD_STEP, current)
                chunk = await self.coordinator.store.run(
                    last_reading_per_hour, self.entry_id, start, end
                )
                for meter, found in chunk.items():
                    points.setdefault(meter, []).extend(found)
                start = end
        except Exception:  # a failed history load only delays the spike rule
            _LOGGER.exception("Loading the usage history for the spike alarm failed")
            return
        finally:
            self._loading = False
        per_meter = {
            meter: {h: kwh for h, kwh in hourly_use(p).items() if h < current}
            for meter, p in points.items()
        }
        tz = self._tz()
        for tenant in self.site.tenants:
            use = self.tenants[tenant.id]
            use.history = prune(
                add_use(use.history, (per_meter.get(m, {}) for m in tenant.meters)), now
            )
            use.usual_kw = usual_load(use.history, self._hour or now, tz)
        # The last hour loaded is reloaded next time: its previous hour's reading is needed.
        self._loaded_until = current - 2 * HOUR

    # --- meter alarms -------------------------------------------------------------------

    def relay_mismatch(self, meter: MeterConfig, wanted: bool, confirmed: bool) -> None:
        """The relay did not take the commanded state: alarm and repair, once."""
        first = meter.id not in self.relay_wanted
        self.relay_wanted[meter.id] = wanted
        if not first:
            return
        self.coordinator._alarm(
            meter, RELAY_MISMATCH, active=True, wanted_closed=wanted, relay_closed=confirmed
        )
        self._issue(meter, RELAY_MISMATCH, ir.IssueSeverity.ERROR)

    def relay_obeyed(self, meter: MeterConfig) -> None:
        """The relay now shows what it was told (or took a new command): clear the alarm."""
        wanted = self.relay_wanted.pop(meter.id, None)
        if wanted is None:
            return
        self.coordinator._alarm(
            meter, RELAY_MISMATCH, active=False, wanted_closed=wanted, relay_closed=wanted
        )
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(RELAY_MISMATCH, self.entry_id, meter.id))

    def tamper(self, meter: MeterConfig, previous: Decimal, value: Decimal) -> None:
        """A counter ran backwards (not a rollover): alarm and a repair a person confirms."""
        if meter.id in self.tampered:
            return
        self.tampered.add(meter.id)
        self.coordinator._alarm(
            meter, TAMPER, active=True, previous=str(previous), value=str(value)
        )
        self._issue(
            meter,
            TAMPER,
            ir.IssueSeverity.ERROR,
            fixable=True,
            previous=str(previous),
            value=str(value),
        )

    def clear_tamper(self, meter_id: str) -> None:
        """Someone checked the meter (the repair was confirmed)."""
        meter = next((m for m in self.site.meters if m.id == meter_id), None)
        if meter is None or meter_id not in self.tampered:
            return
        self.tampered.discard(meter_id)
        self.coordinator._alarm(meter, TAMPER, active=False)
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(TAMPER, self.entry_id, meter_id))
        self.coordinator.async_update_listeners()

    def _check_offline(self, meter: MeterConfig, online: bool, now: datetime) -> None:
        """Raise a repair once a meter has been away longer than the configured time."""
        if online:
            self._offline_since.pop(meter.id, None)
            if meter.id in self.offline_reported:
                self.offline_reported.discard(meter.id)
                ir.async_delete_issue(self.hass, DOMAIN, issue_id(OFFLINE, self.entry_id, meter.id))
            return
        since = self._offline_since.setdefault(meter.id, now)
        if meter.id not in self.offline_reported and now - since >= self.offline_repair:
            self.offline_reported.add(meter.id)
            self._issue(
                meter,
                "meter_offline",
                ir.IssueSeverity.WARNING,
                key=issue_id(OFFLINE, self.entry_id, meter.id),
                minutes=str(int((now - since).total_seconds() // 60)),
            )

    def set_evasion(self, rule: str, suspected: bool) -> None:
        """A line-loss rule's last shared window did (not) look like evasion."""
        if suspected:
            self.evasion.add(rule)
        else:
            self.evasion.discard(rule)

    def _issue(
        self,
        meter: MeterConfig,
        translation_key: str,
        severity: ir.IssueSeverity,
        *,
        fixable: bool = False,
        key: str | None = None,
        **placeholders: str,
    ) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            key or issue_id(translation_key, self.entry_id, meter.id),
            is_fixable=fixable,
            is_persistent=fixable,
            severity=severity,
            translation_key=translation_key,
            translation_placeholders={"site": self.site.name, "meter": meter.name, **placeholders},
            data={"entry_id": self.entry_id, "meter": meter.id} if fixable else None,
        )


def kw_text(value: Decimal) -> str:
    """kW as a short decimal string (three decimals: watts)."""
    return format(value.quantize(Decimal("0.001")).normalize(), "f")
