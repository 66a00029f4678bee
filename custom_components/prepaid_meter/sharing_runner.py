"""Share common-area cost and line loss: the glue between options, readings, engine and ledger.

Configuration (entry options, both optional, so old entries keep working):

``master_meter``
    the id of a site meter that is the utility's (master) meter. It has no
    tenant and is never charged; it is read by polling or entered by hand
    (``record_reading``), and every stored reading counts.
``sharing_rules``
    a list of rules in the engine's `sharing_rule_to_dict` form: common-area
    meters by meter id, participants by tenant id.
``tariff`` (optional)
    the site's default tariff (an id of the ``tariffs`` option, or an engine
    tariff dict; see ``tariff_config``) prices common meters and the master;
    without it, a flat tariff at the site's ``price``.

A window's energy per meter is found from the stored readings: the counter
at each edge of the window is interpolated in a straight line between the
last reading at or before the edge and the first reading after it (exact for
hand readings taken on other days; for polled meters, whose readings are
stored when the counter moves, it is off by at most one poll's energy). With
no reading after an edge, the last reading before it is used (the counter was
not seen to move since); with none before, the first reading after it (the
meter was not there before). A fall of the counter inside the window counts
as zero, as in charging. The master must have a reading at or after the end
of the window, or be online now (polled, its counter not moved since its
last stored reading), or its line-loss rules wait (``master_not_covered``).

Each share is posted to the tenant's wallet once, under the reference
``share:{rule}:{window start ISO}:{tenant}``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from itertools import pairwise
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ConfigEntryError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EVENT_ALARM
from .coordinator import PrepaidConfigEntry, SiteConfig
from .engine.calendars import BillingPeriod, CalendarError, billing_period, day_bounds, utc
from .engine.intervals import ENERGY_QUANTUM, IntervalUse
from .engine.rating import RATING_CONTEXT, RatingError
from .engine.sharing import (
    CommonCost,
    SharingError,
    SharingResult,
    SharingRule,
    price_common_meter,
    share_common_cost,
    share_line_loss,
    sharing_rule_from_dict,
    sharing_windows,
)
from .engine.tariffs import Tariff, TariffError, tariff_from_dict
from .store import sharing as store_sharing
from .subentries import site_options

_LOGGER = logging.getLogger(__name__)

CONF_MASTER_METER: Final = "master_meter"
CONF_SHARING_RULES: Final = "sharing_rules"

SERVICE_SHARE_COSTS: Final = "share_costs"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_START: Final = "start"
ATTR_END: Final = "end"

#: Where a flat tariff built from the site's price starts (before any reading).
_FLAT_SINCE: Final = "2000-01-01T00:00:00+00:00"
_MAX_REFERENCE: Final = 128
_ZERO = Decimal(0)

SHARE_COSTS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_START): vol.Any(cv.string, vol.Coerce(str)),
        vol.Optional(ATTR_END): vol.Any(cv.string, vol.Coerce(str)),
    }
)


class SharingConfigError(ValueError):
    """The sharing options of a site cannot be used; the text says where."""


@dataclass(frozen=True, kw_only=True)
class SharingConfig:
    """A site's validated sharing set-up."""

    master: str | None
    rules: tuple[SharingRule, ...]
    tariff: Tariff

    @property
    def enabled(self) -> bool:
        """Whether there is anything to share."""
        return bool(self.rules)


def flat_tariff(site: SiteConfig, timezone: str) -> Tariff:
    """The site's flat price as an engine tariff."""
    return tariff_from_dict(
        {
            "name": "site price",
            "currency": site.currency,
            "timezone": timezone,
            "versions": [
                {"effective": _FLAT_SINCE, "energy": {"kind": "flat", "price": str(site.price)}}
            ],
        }
    )


def sharing_config(options: Mapping[str, Any], site: SiteConfig, timezone: str) -> SharingConfig:
    """Read and check the sharing options against the site's meters and tenants."""
    meters = {m.id for m in site.meters}
    tenants = {t.id for t in site.tenants}
    master = options.get(CONF_MASTER_METER) or None
    if master is not None:
        if not isinstance(master, str) or master not in meters:
            raise SharingConfigError(f"master_meter: {master!r} is not a meter of the site")
        if site.tenant_of(master) is not None:
            raise SharingConfigError(f"master_meter: {master!r} is charged to a tenant")
    raw_rules = options.get(CONF_SHARING_RULES, [])
    if not isinstance(raw_rules, list):
        raise SharingConfigError("sharing_rules: expected a list of rules")
    rules: list[SharingRule] = []
    for i, raw in enumerate(raw_rules):
        where = f"sharing_rules[{i}]"
        try:
            rule = sharing_rule_from_dict(raw)
        except SharingError as err:
            raise SharingConfigError(f"{where}: {err}") from err
        if any(r.name == rule.name for r in rules):
            raise SharingConfigError(f"{where}: rule name {rule.name!r} is used twice")
        for meter in rule.meters:
            if meter not in meters:
                raise SharingConfigError(f"{where}: {meter!r} is not a meter of the site")
            if meter == master or site.tenant_of(meter) is not None:
                raise SharingConfigError(
                    f"{where}: common meter {meter!r} must not be the master or a tenant's"
                )
        for p in rule.participants:
            if p.tenant not in tenants:
                raise SharingConfigError(f"{where}: {p.tenant!r} is not a tenant of the site")
        if rule.kind == "loss" and master is None:
            raise SharingConfigError(f"{where}: a line-loss rule needs the master_meter option")
        rules.append(rule)
    # The site's default tariff, resolved as charging resolves it (``tariff_config``).
    default = site.tariffs.default
    tariff = flat_tariff(site, timezone) if default is None else site.tariffs.tariff(default)
    return SharingConfig(master=master, rules=tuple(rules), tariff=tariff)


# --------------------------------------------------------------------------- energy from readings


def _interpolate(a: tuple[datetime, Decimal], b: tuple[datetime, Decimal], at: datetime) -> Decimal:
    (ta, va), (tb, vb) = a, b
    if at <= ta or vb <= va:
        return va
    if at >= tb:
        return vb
    with localcontext(RATING_CONTEXT):
        value = va + (vb - va) * Decimal((at - ta) / timedelta(microseconds=1)) / Decimal(
            (tb - ta) / timedelta(microseconds=1)
        )
    return value.quantize(ENERGY_QUANTUM)


def counter_at(points: Sequence[tuple[datetime, Decimal]], at: datetime) -> Decimal | None:
    """The counter at ``at`` by the module's rule (None when the meter has no reading)."""
    before = [p for p in points if p[0] <= at]
    after = [p for p in points if p[0] > at]
    if before and before[-1][0] == at:
        return before[-1][1]
    if before and after:
        return _interpolate(before[-1], after[0], at)
    if before:
        return before[-1][1]
    if after:
        return after[0][1]
    return None


def window_use(
    points: Sequence[tuple[datetime, Decimal]], start: datetime, end: datetime
) -> list[IntervalUse]:
    """A meter's use in ``[start, end)`` as intervals between its readings (falls count 0)."""
    lo, hi = counter_at(points, start), counter_at(points, end)
    if lo is None or hi is None:
        return []
    inner = [(t, v) for t, v in points if start < t < end]
    path = [(start, lo), *inner, (end, hi)]
    return [IntervalUse(a, b, max(vb - va, _ZERO)) for (a, va), (b, vb) in pairwise(path) if b > a]


def _energy(intervals: Sequence[IntervalUse]) -> Decimal:
    return sum((iv.energy for iv in intervals), _ZERO)


def _covers_end(points: Sequence[tuple[datetime, Decimal]], end: datetime) -> bool:
    return any(t >= end for t, _ in points)


# --------------------------------------------------------------------------- one run


@dataclass
class WindowOutcome:
    """One rule shared in one window (or why it was not)."""

    rule: str
    kind: str
    start: datetime
    end: datetime
    result: SharingResult | None = None
    skipped: str | None = None
    posted: dict[str, store_sharing.PostOutcome] = field(default_factory=dict)


def share_reference(rule: str, start: datetime, tenant: str) -> str:
    """The idempotency reference of a share (hashed when too long for the ledger)."""
    reference = f"share:{rule}:{utc(start).isoformat()}:{tenant}"
    if len(reference) <= _MAX_REFERENCE:
        return reference
    return "share:" + hashlib.sha256(reference.encode()).hexdigest()


def _cycle(start: datetime, end: datetime, timezone: str) -> BillingPeriod:
    """The window within its calendar month (so monthly charges pro-rate), else itself."""
    cycle = billing_period(start, 1, timezone)
    if cycle.start <= start and end <= cycle.end:
        return cycle.part(start, end)
    return BillingPeriod.explicit(start, end)


def compute_windows(
    site: SiteConfig,
    config: SharingConfig,
    readings: Mapping[str, Sequence[tuple[datetime, Decimal]]],
    periods: Mapping[str, BillingPeriod],
    timezone: str,
    master_seen_until: datetime | None = None,
) -> list[WindowOutcome]:
    """Share every rule over its windows of its period (pure: no I/O).

    ``master_seen_until``: when the master was last polled (its counter
    unchanged since its last stored reading), if it is online.
    """
    out: list[WindowOutcome] = []
    for rule in config.rules:
        if rule.cadence not in periods:
            continue
        for window in sharing_windows(periods[rule.cadence], rule.cadence, timezone):
            outcome = WindowOutcome(rule.name, rule.kind, window.start, window.end)
            out.append(outcome)
            part = _cycle(window.start, window.end, timezone)
            use = {m: window_use(readings.get(m, ()), window.start, window.end) for m in readings}
            consumption = {
                t.id: sum((_energy(use.get(m, [])) for m in t.meters), _ZERO) for t in site.tenants
            }
            try:
                if rule.kind == "common":
                    costs: list[CommonCost] = [
                        price_common_meter(m, config.tariff, part, use.get(m, []))
                        for m in rule.meters
                    ]
                    outcome.result = share_common_cost(
                        rule, part, costs, consumption=consumption,
                        currency=site.currency, timezone=timezone,
                    )  # fmt: skip
                    continue
                assert config.master is not None  # validated
                seen = master_seen_until is not None and master_seen_until >= window.end
                if not seen and not _covers_end(readings.get(config.master, ()), window.end):
                    outcome.skipped = "master_not_covered"
                    continue
                master_use = use.get(config.master, [])
                subs = {m.id: _energy(use.get(m.id, [])) for m in site.meters
                        if m.id != config.master}  # fmt: skip
                master_cost = (
                    price_common_meter(config.master, config.tariff, part, master_use).amount
                    if master_use
                    else _ZERO
                )
                outcome.result = share_line_loss(
                    rule, part, master_energy=_energy(master_use), sub_energy=subs,
                    consumption=consumption, currency=site.currency, timezone=timezone,
                    master_cost=master_cost, tariff=config.tariff, master_usage=master_use,
                )  # fmt: skip
            except (SharingError, RatingError, TariffError, CalendarError) as err:
                _LOGGER.warning("Sharing %s for %s failed: %s", rule.name, window.start, err)
                outcome.skipped = getattr(err, "key", type(err).__name__)
    return out


def _postings(outcomes: Sequence[WindowOutcome]) -> list[store_sharing.SharePosting]:
    kinds = {"common": "shared", "loss": "loss"}
    return [
        store_sharing.SharePosting(
            tenant=r.tenant,
            kind=kinds[r.kind],
            amount=r.amount,
            reference=share_reference(r.rule, r.start, r.tenant),
            at=r.end,
            memo=r.explain(),
        )
        for o in outcomes
        if o.result is not None
        for r in o.result.records
    ]


async def async_share(
    hass: HomeAssistant, entry: PrepaidConfigEntry, periods: Mapping[str, BillingPeriod]
) -> list[WindowOutcome]:
    """Share every rule over its period (by cadence), post the shares once, raise alarms."""
    runtime = entry.runtime_data
    site = runtime.site
    timezone = str(hass.config.time_zone)
    config = sharing_config(site_options(entry), site, timezone)
    if not config.enabled:
        return []
    lo = min(p.start for p in periods.values())
    hi = max(p.end for p in periods.values())
    # The readings of the interval still open are stored first: a window ending now sees them.
    await runtime.coordinator.async_settle()
    readings = await runtime.store.run(
        store_sharing.readings_around, entry.entry_id, [m.id for m in site.meters], lo, hi
    )
    master_state = runtime.coordinator.data.meters.get(config.master or "")
    seen = dt_util.utcnow() if master_state is not None and master_state.online else None
    outcomes = compute_windows(site, config, readings, periods, timezone, seen)
    postings = _postings(outcomes)
    if postings:
        results = await runtime.coordinator.async_ledger_write(
            store_sharing.post_shares, site=entry.entry_id, shares=postings
        )
        by_ref = {r.reference: r for r in results}
        for o in outcomes:
            if o.result is not None:
                for r in o.result.records:
                    ref = share_reference(r.rule, r.start, r.tenant)
                    o.posted[r.tenant] = by_ref[ref]
    for o in sorted(outcomes, key=lambda o: o.start):
        if o.result is None:
            continue
        suspected = False
        for anomaly in o.result.anomalies:
            if anomaly.key == "evasion_suspected":
                suspected = True
                _raise_evasion(hass, entry, anomaly.rule, anomaly.percent, anomaly.threshold, o)
            else:
                _LOGGER.warning(
                    "Sharing %s %s: %s (%s kWh)", o.rule, o.start, anomaly.key, anomaly.energy
                )
        if o.kind == "loss" and not suspected:
            _clear_evasion(hass, entry, o)
    return outcomes


def _clear_evasion(hass: HomeAssistant, entry: PrepaidConfigEntry, outcome: WindowOutcome) -> None:
    """A window of the rule with normal loss after an evasion alarm: clear it once."""
    alarms = entry.runtime_data.coordinator.alarms
    if outcome.rule not in alarms.evasion:
        return
    alarms.set_evasion(outcome.rule, False)
    hass.bus.async_fire(
        EVENT_ALARM,
        {
            "entry_id": entry.entry_id,
            "kind": "evasion",
            "active": False,
            "rule": outcome.rule,
            "start": outcome.start.isoformat(),
            "end": outcome.end.isoformat(),
        },
    )
    ir.async_delete_issue(hass, DOMAIN, f"evasion_{entry.entry_id}_{outcome.rule}")
    entry.runtime_data.coordinator.async_update_listeners()


def _raise_evasion(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    rule: str,
    percent: Decimal | None,
    threshold: Decimal | None,
    outcome: WindowOutcome,
) -> None:
    loss_percent, limit = str(percent), str(threshold)
    _LOGGER.warning("Line loss of %s%% over %s%% on %s: energy evasion?", percent, threshold, rule)
    coordinator = entry.runtime_data.coordinator
    # The event fires when the alarm starts (not again for each later window
    # or a re-run while it is on); the repair issue shows the latest window.
    if rule not in coordinator.alarms.evasion:
        hass.bus.async_fire(
            EVENT_ALARM,
            {
                "entry_id": entry.entry_id,
                "kind": "evasion",
                "active": True,
                "rule": rule,
                "loss_percent": loss_percent,
                "threshold": limit,
                "start": outcome.start.isoformat(),
                "end": outcome.end.isoformat(),
            },
        )
    coordinator.alarms.set_evasion(rule, True)
    coordinator.async_update_listeners()
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"evasion_{entry.entry_id}_{rule}",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="evasion_suspected",
        translation_placeholders={
            "site": entry.runtime_data.site.name,
            "rule": rule,
            "loss_percent": loss_percent,
            "threshold": limit,
            "start": dt_util.as_local(outcome.start).date().isoformat(),
        },
    )


def describe(outcomes: Sequence[WindowOutcome], language: str = "en") -> list[dict[str, Any]]:
    """The response data of a run: each window, its shares explained, what was posted."""
    out: list[dict[str, Any]] = []
    for o in outcomes:
        item: dict[str, Any] = {
            "rule": o.rule,
            "kind": o.kind,
            "start": o.start.isoformat(),
            "end": o.end.isoformat(),
        }
        if o.skipped is not None or o.result is None:
            item["skipped"] = o.skipped
            out.append(item)
            continue
        res = o.result
        item |= {
            "currency": res.currency,
            "energy": str(res.energy),
            "total": str(res.total),
            "owner_amount": str(res.owner_amount),
            "unallocated": str(res.unallocated),
            "anomalies": [
                {
                    "key": a.key,
                    "percent": None if a.percent is None else str(a.percent),
                    "threshold": None if a.threshold is None else str(a.threshold),
                }
                for a in res.anomalies
            ],
            "shares": [
                {
                    "tenant": r.tenant,
                    "amount": str(r.amount),
                    "energy": str(r.energy),
                    "explain": r.explain(language),
                    "status": (p.status if (p := o.posted.get(r.tenant)) else "not_posted"),
                }
                for r in res.records
            ],
        }
        if res.loss is not None:
            item["loss"] = {
                "master_energy": str(res.loss.master_energy),
                "sub_energy": str(res.loss.sub_energy),
                "energy": str(res.loss.energy),
                "percent": None if res.loss.percent is None else str(round(res.loss.percent, 2)),
            }
        out.append(item)
    return out


# --------------------------------------------------------------------------- schedule and action


def previous_periods(now: datetime, timezone: str) -> dict[str, BillingPeriod]:
    """The windows that ended last at ``now``: yesterday (daily) and last month (period)."""
    today = dt_util.as_local(now).date()
    day_lo, day_hi = day_bounds(today - timedelta(days=1), timezone)
    month = billing_period(day_lo, 1, timezone)
    return {
        "daily": BillingPeriod.explicit(day_lo, day_hi),
        "period": BillingPeriod.explicit(month.start, month.end),
    }


def validate_sharing(
    hass: HomeAssistant, entry: PrepaidConfigEntry, site: SiteConfig
) -> SharingConfig:
    """Check the sharing options at setup; a bad option is a translated setup error."""
    try:
        return sharing_config(site_options(entry), site, str(hass.config.time_zone))
    except SharingConfigError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_sharing_config",
            translation_placeholders={"error": str(err)},
        ) from err


@callback
def async_start_sharing(
    hass: HomeAssistant, entry: PrepaidConfigEntry, config: SharingConfig
) -> None:
    """Share at every local midnight (until the entry unloads).

    Every daily rule is shared for the day that ended; on the first of a
    month, every period rule for the month that ended.
    """
    if not config.enabled:
        return

    async def _async_daily(now: datetime) -> None:
        timezone = str(hass.config.time_zone)
        periods = previous_periods(now, timezone)
        if dt_util.as_local(now).day != 1:
            del periods["period"]  # period rules are due on the first of the month
        # a fresh poll first, so each meter has a reading at or after midnight
        await entry.runtime_data.coordinator.async_refresh()
        try:
            await async_share(hass, entry, periods)
        except Exception:
            _LOGGER.exception("Daily sharing of %s failed", entry.title)

    @callback
    def _on_midnight(now: datetime) -> None:
        if entry.state is ConfigEntryState.LOADED:
            entry.async_create_task(hass, _async_daily(now), "prepaid_meter daily sharing")

    entry.async_on_unload(async_track_time_change(hass, _on_midnight, hour=0, minute=0, second=0))


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _when(value: object) -> datetime:
    try:
        parsed = dt_util.parse_datetime(str(value).strip())
        if parsed is None:
            day = dt_util.parse_date(str(value).strip())
            if day is None:
                raise _error("invalid_time", time=str(value))
            parsed = datetime.combine(day, datetime.min.time())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt_util.get_default_time_zone())
        return dt_util.as_utc(parsed)
    except (ValueError, OverflowError) as err:  # well formed, but no such time
        raise _error("invalid_time", time=str(value)) from err


async def _async_share_costs(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    wanted = call.data.get(ATTR_CONFIG_ENTRY_ID)
    entries: list[PrepaidConfigEntry] = [
        e
        for e in hass.config_entries.async_entries(DOMAIN)
        if e.state is ConfigEntryState.LOADED and wanted in (None, e.entry_id)
    ]
    if wanted is not None and not entries:
        raise _error("site_not_loaded", config_entry_id=wanted)
    if len(entries) != 1:
        raise _error("site_required")
    entry = entries[0]
    timezone = str(hass.config.time_zone)
    if ATTR_START in call.data or ATTR_END in call.data:
        if ATTR_START not in call.data or ATTR_END not in call.data:
            raise _error("invalid_period")
        start, end = _when(call.data[ATTR_START]), _when(call.data[ATTR_END])
        if not start < end or end > dt_util.utcnow():
            raise _error("invalid_period")
        period = BillingPeriod.explicit(start, end)
        periods = {"daily": period, "period": period}
    else:
        periods = previous_periods(dt_util.utcnow(), timezone)
    try:
        outcomes = await async_share(hass, entry, periods)
    except SharingConfigError as err:
        raise _error("invalid_sharing_config", error=str(err)) from err
    windows = describe(
        outcomes, hass.config.language if hass.config.language == "zh-Hans" else "en"
    )
    statuses = [s["status"] for w in windows for s in w.get("shares", [])]
    response: dict[str, Any] = {
        "windows": windows,
        "posted": statuses.count("posted"),
        "duplicates": statuses.count("duplicate"),
    }
    return response


def async_setup_sharing_service(hass: HomeAssistant) -> None:
    """Register ``prepaid_meter.share_costs`` (admin only, answers with what it did)."""
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_SHARE_COSTS,
        _async_share_costs,
        schema=SHARE_COSTS_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
