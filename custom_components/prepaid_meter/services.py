"""Actions (services). Money-moving actions are admin-only.

Schemas accept loose strings so that every wrong value gets a translated
``ServiceValidationError`` from the handler, and nothing is written before
every field has been checked. The store functions behind them apply an
operation whole or not at all, so a refused request changes nothing.
"""

from __future__ import annotations

# Bills (imports kept apart to ease merging).
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import (
    datetime,
    timedelta,
)
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
from sqlalchemy.orm import Session

from .const import (
    CONF_BILLING_DAY,
    CONF_BILLING_MODE,
    CONF_DUE_DAYS,
    CONF_TENANTS,
    DEFAULT_BILLING_DAY,
    DEFAULT_DUE_DAYS,
    DOMAIN,
    EVENT_BILL_ISSUED,
    EVENT_BILL_PROGRESS,
    PAYMENT_METHODS,
)
from .coordinator import PrepaidConfigEntry, TenantConfig
from .documents import BillTemplateError, language, render_html, user_template
from .engine.billing import BILLING_MODES, Fee
from .engine.calendars import BillingPeriod, CalendarError, billing_period
from .engine.money import MoneyError, minor_unit, parse_amount
from .engine.rating import RatingError
from .engine.tariffs import TariffError
from .http import BillView, bill_url
from .store import (
    bills,
    ledger,
    readings,
    reports,
)
from .store.ledger import FinalCharge, LedgerError, MoneyResult, Payment
from .subentries import site_options

ATTR_TENANT = "tenant"
ATTR_AMOUNT = "amount"
ATTR_METHOD = "method"
ATTR_REFERENCE = "reference"
ATTR_NOTE = "note"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_PAYMENTS = "payments"
ATTR_FORCE = "force"
ATTR_REASON = "reason"
ATTR_FINAL_TIME = "final_time"
ATTR_METER = "meter"
ATTR_TIME = "time"
ATTR_VALUE = "value"
ATTR_CSV = "csv"
ATTR_FILE = "file"
ATTR_START = "start"
ATTR_END = "end"
ATTR_WRITE_FILE = "write_file"

MAX_REFERENCE = 128
MAX_TOP_UP = 10**9
MAX_BATCH = 500
MAX_REASON = 255
#: Where reconciliation CSV files are written, under the config directory.
REPORT_DIR = "prepaid_meter/reports"

SERVICE_TOP_UP = "top_up"
SERVICE_TOP_UP_BATCH = "top_up_batch"
SERVICE_REFUND = "refund"
SERVICE_ADJUST_BALANCE = "adjust_balance"
SERVICE_SETTLE_ACCOUNT = "settle_account"
SERVICE_RECORD_READING = "record_reading"
SERVICE_IMPORT_READINGS = "import_readings"
SERVICE_RECONCILIATION_REPORT = "reconciliation_report"

_LOOSE = vol.Any(cv.string, vol.Coerce(str))
_SITE: dict[vol.Marker, Any] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}

TOP_UP_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Required(ATTR_AMOUNT): _LOOSE,
        vol.Optional(ATTR_METHOD, default="cash"): cv.string,
        vol.Optional(ATTR_REFERENCE): cv.string,
        vol.Optional(ATTR_NOTE, default=""): cv.string,
    }
)
TOP_UP_BATCH_SCHEMA = vol.Schema(
    {**_SITE, vol.Required(ATTR_PAYMENTS): vol.All(cv.ensure_list, [dict])}
)
REFUND_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Required(ATTR_AMOUNT): _LOOSE,
        vol.Optional(ATTR_METHOD, default="cash"): cv.string,
        vol.Optional(ATTR_REFERENCE): cv.string,
        vol.Optional(ATTR_FORCE, default=False): cv.boolean,
        vol.Optional(ATTR_NOTE, default=""): cv.string,
    }
)
ADJUST_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Required(ATTR_AMOUNT): _LOOSE,
        vol.Required(ATTR_REASON): cv.string,
        vol.Optional(ATTR_REFERENCE): cv.string,
    }
)
SETTLE_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Optional(ATTR_FINAL_TIME): _LOOSE,
        vol.Optional(ATTR_METHOD, default="cash"): cv.string,
        vol.Optional(ATTR_REFERENCE): cv.string,
    }
)
RECORD_READING_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_METER): cv.string,
        vol.Required(ATTR_TIME): _LOOSE,
        vol.Required(ATTR_VALUE): _LOOSE,
    }
)
IMPORT_READINGS_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Exclusive(ATTR_CSV, "source"): cv.string,
        vol.Exclusive(ATTR_FILE, "source"): cv.string,
    }
)
RECONCILIATION_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Required(ATTR_START): _LOOSE,
        vol.Required(ATTR_END): _LOOSE,
        vol.Optional(ATTR_WRITE_FILE, default=True): cv.boolean,
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


def _entries(hass: HomeAssistant, entry_id: str | None) -> list[PrepaidConfigEntry]:
    entries = [e for e in _loaded_entries(hass) if entry_id in (None, e.entry_id)]
    if entry_id is not None and not entries:
        raise _error("site_not_loaded", config_entry_id=entry_id)
    return entries


def find_tenant(
    hass: HomeAssistant, wanted: str, entry_id: str | None
) -> tuple[PrepaidConfigEntry, TenantConfig]:
    """Find a tenant by its device id or its tenant id, on one site or every loaded site."""
    device = dr.async_get(hass).async_get(wanted)
    identifiers = {i for d, i in device.identifiers if d == DOMAIN} if device else set()
    matches = [
        (entry, tenant)
        for entry in _entries(hass, entry_id)
        for tenant in entry.runtime_data.site.tenants
        if tenant.id == wanted or f"{entry.entry_id}_tenant_{tenant.id}" in identifiers
    ]
    if not matches:
        raise _error("unknown_tenant", tenant=wanted)
    if len(matches) > 1:
        raise _error("ambiguous_tenant", tenant=wanted)
    return matches[0]


def resolve_tenant(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[PrepaidConfigEntry, TenantConfig]:
    """Find the site and tenant an action is about: a tenant device id, or a tenant id."""
    return find_tenant(hass, call.data[ATTR_TENANT], call.data.get(ATTR_CONFIG_ENTRY_ID))


def resolve_site(hass: HomeAssistant, call: ServiceCall) -> PrepaidConfigEntry:
    """The site an action is about: the one given, or the only one loaded."""
    entries = _entries(hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    if len(entries) != 1:
        raise _error("site_required")
    return entries[0]


def _amount(value: object, currency: str, *, signed: bool = False) -> Decimal:
    """A money amount as the user gave it: exact, within the currency's minor unit."""
    text = str(value).strip()
    negative = signed and text.startswith("-")
    try:
        amount = parse_amount(text[1:] if negative else text, currency)
    except MoneyError as err:
        raise _error("invalid_amount", amount=str(value)) from err
    if amount > MAX_TOP_UP:
        raise _error("invalid_amount", amount=str(value))
    return -amount if negative else amount


def _method(value: str) -> str:
    if value not in PAYMENT_METHODS:
        raise _error("invalid_method", method=value, methods=", ".join(PAYMENT_METHODS))
    return value


def _reference(value: str | None, prefix: str = "auto") -> str:
    reference = value or f"{prefix}-{uuid.uuid4().hex}"
    if not 0 < len(reference) <= MAX_REFERENCE or not reference.isprintable():
        raise _error("invalid_reference")
    return reference


def _time(value: object) -> datetime:
    """An ISO time; without an offset it is the Home Assistant time zone's local time."""
    try:
        parsed = dt_util.parse_datetime(str(value).strip()) if value is not None else None
        if parsed is not None:
            return dt_util.as_utc(parsed)
    except (ValueError, OverflowError):  # well formed but no such time (30 February, year 0)
        pass
    raise _error("invalid_time", time=str(value))


def _actor(call: ServiceCall) -> str | None:
    return call.context.user_id


def _result(site_currency: str, result: MoneyResult) -> dict[str, Any]:
    return {
        "tenant": result.tenant,
        "amount": str(result.amount),
        "currency": site_currency,
        "reference": result.reference,
        "duplicate": result.duplicate,
        "entry": result.entry_id,
        "balance": str(result.balance),
    }


async def _write(entry: PrepaidConfigEntry, fn: Any, /, **kwargs: Any) -> Any:
    """Run a ledger write through the site's coordinator; ledger refusals become translated."""
    try:
        return await entry.runtime_data.coordinator.async_ledger_write(
            fn, site=entry.entry_id, **kwargs
        )
    except LedgerError as err:
        raise _error(err.key, **err.placeholders) from err


async def _async_top_up(call: ServiceCall) -> ServiceResponse:
    entry, tenant = resolve_tenant(call.hass, call)
    site = entry.runtime_data.site
    amount = _amount(call.data[ATTR_AMOUNT], site.currency)
    method = _method(call.data[ATTR_METHOD])
    reference = _reference(call.data.get(ATTR_REFERENCE))
    result = await _write(
        entry,
        ledger.top_up,
        tenant=tenant.id,
        amount=amount,
        method=method,
        reference=reference,
        at=dt_util.utcnow(),
        memo=call.data[ATTR_NOTE],
        actor=_actor(call),
    )
    return _result(site.currency, result)


async def _async_top_up_batch(call: ServiceCall) -> ServiceResponse:
    """Several payments (a bank statement, a payment system's settlement file) at once."""
    items: list[dict[str, Any]] = call.data[ATTR_PAYMENTS]
    if not 0 < len(items) <= MAX_BATCH:
        raise _error("invalid_batch", limit=str(MAX_BATCH))
    entry: PrepaidConfigEntry | None = None
    payments: list[Payment] = []
    for index, item in enumerate(items, start=1):
        try:
            item = TOP_UP_SCHEMA({k: v for k, v in item.items() if k != ATTR_CONFIG_ENTRY_ID})
        except vol.Invalid as err:
            raise _error("invalid_batch_payment", index=str(index)) from err
        try:
            found, tenant = find_tenant(
                call.hass, item[ATTR_TENANT], call.data.get(ATTR_CONFIG_ENTRY_ID)
            )
            if entry is not None and found is not entry:
                raise _error("batch_mixed_sites")
            entry = found
            payments.append(
                Payment(
                    tenant=tenant.id,
                    amount=_amount(item[ATTR_AMOUNT], found.runtime_data.site.currency),
                    method=_method(item[ATTR_METHOD]),
                    reference=_reference(item.get(ATTR_REFERENCE)),
                    memo=item[ATTR_NOTE],
                )
            )
        except ServiceValidationError as err:
            if err.translation_key == "batch_mixed_sites":
                raise
            raise _error("invalid_batch_payment", index=str(index)) from err
    assert entry is not None
    results: list[MoneyResult] = await _write(
        entry, ledger.top_up_batch, payments=payments, at=dt_util.utcnow(), actor=_actor(call)
    )
    currency = entry.runtime_data.site.currency
    return {"payments": [_result(currency, r) for r in results]}


async def _async_refund(call: ServiceCall) -> ServiceResponse:
    entry, tenant = resolve_tenant(call.hass, call)
    site = entry.runtime_data.site
    result = await _write(
        entry,
        ledger.refund,
        tenant=tenant.id,
        amount=_amount(call.data[ATTR_AMOUNT], site.currency),
        method=_method(call.data[ATTR_METHOD]),
        reference=_reference(call.data.get(ATTR_REFERENCE)),
        at=dt_util.utcnow(),
        force=call.data[ATTR_FORCE],
        memo=call.data[ATTR_NOTE],
        actor=_actor(call),
    )
    return _result(site.currency, result)


async def _async_adjust_balance(call: ServiceCall) -> ServiceResponse:
    entry, tenant = resolve_tenant(call.hass, call)
    site = entry.runtime_data.site
    amount = _amount(call.data[ATTR_AMOUNT], site.currency, signed=True)
    reason = call.data[ATTR_REASON].strip()
    if not 0 < len(reason) <= MAX_REASON:
        raise _error("reason_required")
    result = await _write(
        entry,
        ledger.adjust_balance,
        tenant=tenant.id,
        amount=amount,
        reason=reason,
        reference=_reference(call.data.get(ATTR_REFERENCE), "adjust"),
        at=dt_util.utcnow(),
        actor=_actor(call),
    )
    return {**_result(site.currency, result), "reason": reason}


@dataclass(frozen=True, kw_only=True)
class SettlementContext:
    """What a move-out's final charges are computed from."""

    entry: PrepaidConfigEntry
    tenant: TenantConfig
    final_time: datetime


async def async_final_charges(context: SettlementContext) -> list[FinalCharge]:
    """Charges due at move-out besides the last metered energy (posted from the final poll).

    The hook for standing charges to date and the last share of common areas
    and line loss: the tariff and sharing engines return them here once they
    exist. Until then there is nothing else to charge.
    """
    return []


async def _async_settle_account(call: ServiceCall) -> ServiceResponse:
    """Move-out: final reading, final charges, refund or amount due, relay opened, closed."""
    entry, tenant = resolve_tenant(call.hass, call)
    site = entry.runtime_data.site
    method = _method(call.data[ATTR_METHOD])
    reference = _reference(call.data.get(ATTR_REFERENCE), f"settle-{tenant.id}")
    now = dt_util.utcnow()
    final_time = _time(call.data[ATTR_FINAL_TIME]) if ATTR_FINAL_TIME in call.data else now
    if final_time > now:
        raise _error("invalid_time", time=str(call.data[ATTR_FINAL_TIME]))
    if ATTR_FINAL_TIME not in call.data:
        # The final reading: poll (and charge) the meters now; the account closes after it.
        await entry.runtime_data.coordinator.async_refresh()
        final_time = dt_util.utcnow()
    charges = await async_final_charges(
        SettlementContext(entry=entry, tenant=tenant, final_time=final_time)
    )
    result: ledger.SettlementResult = await _write(
        entry,
        ledger.settle_account,
        tenant=tenant.id,
        at=final_time,
        method=method,
        reference=reference,
        final_charges=charges,
        actor=_actor(call),
    )
    return {
        "tenant": tenant.id,
        "currency": site.currency,
        "reference": result.reference,
        "final_charges": str(result.final_charges),
        "refunded": str(result.refunded),
        "amount_due": str(result.amount_due),
        "closed_at": result.closed_at.isoformat(),
        "duplicate": result.duplicate,
    }


def _meter_map(entry: PrepaidConfigEntry) -> dict[str, str | None]:
    site = entry.runtime_data.site
    return {m.id: (t.id if (t := site.tenant_of(m.id)) else None) for m in site.meters}


async def _record(
    entry: PrepaidConfigEntry, rows: list[readings.ReadingIn], source: str
) -> dict[str, Any]:
    result: readings.ReadingsResult = await _write(
        entry,
        readings.record_readings,
        readings=rows,
        meters=_meter_map(entry),
        price=entry.runtime_data.site.price,
        now=dt_util.utcnow(),
        source=source,
    )
    return {
        "recorded": result.recorded,
        "already_known": result.already_known,
        "charges": result.charges,
        "charged": str(result.charged),
        "currency": entry.runtime_data.site.currency,
    }


def _find_meter(hass: HomeAssistant, call: ServiceCall) -> tuple[PrepaidConfigEntry, str]:
    wanted = call.data[ATTR_METER]
    device = dr.async_get(hass).async_get(wanted)
    identifiers = {i for d, i in device.identifiers if d == DOMAIN} if device else set()
    matches = [
        (entry, meter.id)
        for entry in _entries(hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
        for meter in entry.runtime_data.site.meters
        if meter.id == wanted or f"{entry.entry_id}_meter_{meter.id}" in identifiers
    ]
    if len(matches) != 1:
        raise _error("unknown_meter", meter=wanted)
    return matches[0]


async def _async_record_reading(call: ServiceCall) -> ServiceResponse:
    entry, meter = _find_meter(call.hass, call)
    try:
        value = Decimal(str(call.data[ATTR_VALUE]).strip())
    except InvalidOperation as err:
        raise _error("reading_bad_row", row="1") from err
    row = readings.ReadingIn(row=1, meter=meter, taken_at=_time(call.data[ATTR_TIME]), value=value)
    return await _record(entry, [row], "manual")


def _read_import_file(hass: HomeAssistant, name: str) -> str:
    """A file inside the config directory (never outside it)."""
    config_dir = Path(hass.config.config_dir).resolve()
    path = (config_dir / name).resolve()
    if not path.is_relative_to(config_dir) or not path.is_file():
        raise _error("import_file_not_found", file=name)
    return path.read_text(encoding="utf-8-sig")


async def _async_import_readings(call: ServiceCall) -> ServiceResponse:
    entry = resolve_site(call.hass, call)
    if ATTR_FILE in call.data:
        text = await call.hass.async_add_executor_job(
            _read_import_file, call.hass, call.data[ATTR_FILE]
        )
    elif ATTR_CSV in call.data:
        text = call.data[ATTR_CSV]
    else:
        raise _error("import_source_required")
    try:
        rows = readings.parse_csv(text, dt_util.get_default_time_zone())
    except LedgerError as err:
        raise _error(err.key, **err.placeholders) from err
    if not rows:
        raise _error("import_source_required")
    return await _record(entry, rows, "import")


def _write_report(hass: HomeAssistant, name: str, text: str) -> str:
    path = Path(hass.config.path(REPORT_DIR)) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


async def _async_reconciliation_report(call: ServiceCall) -> ServiceResponse:
    entry = resolve_site(call.hass, call)
    start, end = _time(call.data[ATTR_START]), _time(call.data[ATTR_END])
    if end <= start:
        raise _error("invalid_period")
    coordinator = entry.runtime_data.coordinator
    report: reports.Reconciliation = await entry.runtime_data.store.run(
        reports.reconciliation,
        site=entry.entry_id,
        start=start,
        end=end,
        tz=dt_util.get_default_time_zone(),
        cache=coordinator._balances,  # the cache the balance sensors show, checked
    )
    text = report.to_csv()
    response: dict[str, Any] = {
        **report.as_dict(),
        "currency": entry.runtime_data.site.currency,
        "decimals": minor_unit(entry.runtime_data.site.currency),
        "csv": text,
    }
    if call.data[ATTR_WRITE_FILE]:
        name = f"reconciliation_{entry.entry_id}_{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}.csv"
        response["file"] = await call.hass.async_add_executor_job(
            _write_report, call.hass, name, text
        )
    return response


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, from async_setup)."""
    for name, handler, schema in (
        (SERVICE_TOP_UP, _async_top_up, TOP_UP_SCHEMA),
        (SERVICE_TOP_UP_BATCH, _async_top_up_batch, TOP_UP_BATCH_SCHEMA),
        (SERVICE_REFUND, _async_refund, REFUND_SCHEMA),
        (SERVICE_ADJUST_BALANCE, _async_adjust_balance, ADJUST_SCHEMA),
        (SERVICE_SETTLE_ACCOUNT, _async_settle_account, SETTLE_SCHEMA),
        (SERVICE_RECORD_READING, _async_record_reading, RECORD_READING_SCHEMA),
        (SERVICE_IMPORT_READINGS, _async_import_readings, IMPORT_READINGS_SCHEMA),
        (SERVICE_RECONCILIATION_REPORT, _async_reconciliation_report, RECONCILIATION_SCHEMA),
    ):
        async_register_admin_service(
            hass,
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )


# --- bills ---------------------------------------------------------------------------

SERVICE_GENERATE_BILL = "generate_bill"
SERVICE_RECALCULATE_BILL = "recalculate_bill"
ATTR_BILL = "bill"
ATTR_LANGUAGE = "language"
#: Tenants per store call in a bill run: progress is reported after each chunk.
BILL_CHUNK = 50

GENERATE_BILL_SCHEMA = vol.Schema(
    {
        **_SITE,
        vol.Optional(ATTR_TENANT): cv.string,
        vol.Optional(ATTR_START): _LOOSE,
        vol.Optional(ATTR_END): _LOOSE,
        vol.Optional(ATTR_LANGUAGE): cv.string,
    }
)
RECALCULATE_BILL_SCHEMA = vol.Schema(
    {**_SITE, vol.Required(ATTR_BILL): _LOOSE, vol.Optional(ATTR_LANGUAGE): cv.string}
)


def site_spec(hass: HomeAssistant, entry: PrepaidConfigEntry) -> bills.SiteSpec:
    """The site's billing settings for the store."""
    site = entry.runtime_data.site
    return bills.SiteSpec(
        site=entry.entry_id,
        name=site.name,
        currency=site.currency,
        timezone=str(hass.config.time_zone),
        price=site.price,
        due_days=int(entry.options.get(CONF_DUE_DAYS, DEFAULT_DUE_DAYS)),
    )


def tenant_spec(entry: PrepaidConfigEntry, tenant: TenantConfig) -> bills.TenantSpec:
    """A tenant with its meters' names and billing mode (``billing`` in the tenant's options)."""
    site = entry.runtime_data.site
    names = {m.id: m.name for m in site.meters}
    options: dict[str, Any] = next(
        (t for t in site_options(entry).get(CONF_TENANTS, []) if t.get("id") == tenant.id), {}
    )
    mode = str(options.get(CONF_BILLING_MODE, "prepaid"))
    # The tariff that charged the tenant (see ``tariff_config``), else the flat price.
    tariff = site.tariffs.tariff_id(tenant.id)
    return bills.TenantSpec(
        id=tenant.id,
        name=tenant.name,
        meters=[(m, names.get(m, m)) for m in tenant.meters],
        mode=mode if mode in BILLING_MODES else "prepaid",
        tariff=tariff if tariff is not None else bills.FLAT,
        fees=tenant_fees(options),
    )


def tenant_fees(options: dict[str, Any]) -> list[Fee]:
    """The tenant's fixed fees (option ``fees``: name, amount, per month) as bill lines.

    A fee is charged once per bill. An entry that cannot be read is refused
    with a translated error, so no bill goes out without a fee it should have.
    """
    fees: list[Fee] = []
    for item in options.get("fees") or []:
        try:
            amount = Decimal(str(item["amount"]))
            name = str(item["name"]).strip()
        except (KeyError, TypeError, InvalidOperation) as err:
            raise _error("invalid_fee", fee=str(item)) from err
        if not name or not amount.is_finite() or item.get("per", "month") != "month":
            raise _error("invalid_fee", fee=str(item))
        fees.append(Fee(name=name, amount=amount))
    return fees


def _bill_period(
    hass: HomeAssistant, entry: PrepaidConfigEntry, call: ServiceCall
) -> BillingPeriod:
    """The period asked for, or the last whole billing cycle (billing day N, clamped)."""
    tz = str(hass.config.time_zone)
    day = int(entry.options.get(CONF_BILLING_DAY, DEFAULT_BILLING_DAY))
    if ATTR_START in call.data or ATTR_END in call.data:
        start = _time(call.data.get(ATTR_START))
        end = _time(call.data[ATTR_END]) if ATTR_END in call.data else dt_util.utcnow()
        if end <= start or end > dt_util.utcnow() + timedelta(minutes=5):
            raise _error("invalid_period")
        cycle = billing_period(start, day, tz)
        if end <= cycle.end:
            return cycle.part(start, end)  # move-in, move-out: pro-rated in its cycle
        return BillingPeriod.explicit(start, end)
    current = billing_period(dt_util.utcnow(), day, tz)
    return billing_period(current.start - timedelta(microseconds=1), day, tz)


def _renderer(lang: str, template: str | None) -> Callable[[dict[str, Any]], str]:
    return functools.partial(_render, lang=lang, template=template)


def _render(doc: dict[str, Any], *, lang: str, template: str | None) -> str:
    return render_html(doc, lang, template)


def _bill_answer(entry: PrepaidConfigEntry, issued: bills.IssuedBill) -> dict[str, Any]:
    return {
        "bill_id": issued.id,
        "bill_number": issued.number,
        "revision": issued.revision,
        "tenant": issued.tenant,
        "period_start": issued.period_start.isoformat(),
        "period_end": issued.period_end.isoformat(),
        "total": str(issued.total),
        "currency": issued.currency,
        "content_hash": issued.content_hash,
        "url": bill_url(issued.id),
        "pdf_url": bill_url(issued.id, "pdf"),
        "duplicate": issued.duplicate,
        **({"correction": str(issued.correction)} if issued.correction is not None else {}),
        **({"document": issued.document} if issued.document is not None else {}),
    }


def _fire_issued(hass: HomeAssistant, entry: PrepaidConfigEntry, issued: bills.IssuedBill) -> None:
    # The tenant device's registry id: the bill-delivery blueprint filters on it.
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_tenant_{issued.tenant}")}
    )
    hass.bus.async_fire(
        EVENT_BILL_ISSUED,
        {
            "entry_id": entry.entry_id,
            "tenant": issued.tenant,
            "tenant_name": issued.tenant_name,
            "device_id": device.id if device else None,
            "bill_number": issued.number,
            "bill_id": issued.id,
            "revision": issued.revision,
            "period_start": issued.period_start.isoformat(),
            "period_end": issued.period_end.isoformat(),
            "total": str(issued.total),
            "currency": issued.currency,
            "url": bill_url(issued.id),
        },
    )


async def async_issue_bills(
    hass: HomeAssistant,
    entry: PrepaidConfigEntry,
    tenants: list[bills.TenantSpec],
    period: BillingPeriod,
    lang: str,
) -> list[bills.IssuedBill]:
    """Issue bills in chunks on the store's thread, reporting progress between chunks."""
    # The use read so far is stored and charged first: a bill ending now counts all of it.
    await entry.runtime_data.coordinator.async_settle()
    template = await hass.async_add_executor_job(user_template, hass.config.config_dir)
    render = _renderer(lang, template)
    spec = site_spec(hass, entry)
    store = entry.runtime_data.store
    issued: list[bills.IssuedBill] = []
    # Full garbage collections during the run only walk the run's own objects.
    with bills.collector_frozen():
        for i in range(0, len(tenants), BILL_CHUNK):
            chunk = tenants[i : i + BILL_CHUNK]
            try:
                done = await store.run(
                    bills.issue_bills,
                    spec=spec,
                    tenants=chunk,
                    periods=[period] * len(chunk),
                    issued_at=dt_util.utcnow(),
                    render=render,
                    render_format=f"html:{lang}",
                    # A run for every tenant answers with numbers, totals and links;
                    # the documents themselves are served at their URLs.
                    documents=len(tenants) <= BILL_CHUNK,
                )
            except LedgerError as err:
                raise _error(err.key, **err.placeholders) from err
            except (RatingError, TariffError, CalendarError) as err:
                # The engine's reasons are not action errors of their own (no translation).
                raise _error("bill_failed") from err
            except BillTemplateError as err:
                raise _error("bill_template_failed", error=str(err)) from err
            for bill in done:
                if not bill.duplicate:
                    _fire_issued(hass, entry, bill)
            issued.extend(done)
            if len(tenants) > BILL_CHUNK:
                hass.bus.async_fire(
                    EVENT_BILL_PROGRESS,
                    {"entry_id": entry.entry_id, "done": len(issued), "total": len(tenants)},
                )
    # Issuing settles the period's standing, demand and minimum charges into
    # prepaid wallets: balances, cost sensors and the supply policy take them in.
    await entry.runtime_data.coordinator.async_ledger_write(_nothing)
    return issued


def _nothing(_session: Session) -> None:
    """A ledger write that writes nothing (the coordinator re-reads what others wrote)."""


async def _async_generate_bill(call: ServiceCall) -> ServiceResponse:
    """Bills for one tenant or every tenant of the site, for a period."""
    hass = call.hass
    if ATTR_TENANT in call.data:
        entry, tenant = resolve_tenant(hass, call)
        tenants = [tenant_spec(entry, tenant)]
    else:
        entry = resolve_site(hass, call)
        tenants = [tenant_spec(entry, t) for t in entry.runtime_data.site.tenants]
    period = _bill_period(hass, entry, call)
    lang = language(call.data.get(ATTR_LANGUAGE) or hass.config.language)
    issued = await async_issue_bills(hass, entry, tenants, period, lang)
    return {"bills": [_bill_answer(entry, b) for b in issued]}


async def _async_recalculate_bill(call: ServiceCall) -> ServiceResponse:
    """Recompute a bill; issue a revision and post the difference as a correcting entry."""
    hass = call.hass
    try:
        bill_id = int(str(call.data[ATTR_BILL]).strip())
    except ValueError as err:
        raise _error("unknown_bill", bill=str(call.data[ATTR_BILL])) from err
    if not 0 < bill_id < 2**63:  # no bill has it, and the database cannot even look it up
        raise _error("unknown_bill", bill=str(call.data[ATTR_BILL]))
    for entry in _entries(hass, call.data.get(ATTR_CONFIG_ENTRY_ID)):
        row = await entry.runtime_data.store.run(bills.get_bill, entry.entry_id, bill_id)
        if row is None:
            continue
        tenant = next((t for t in entry.runtime_data.site.tenants if t.id == row.tenant), None)
        spec_t = (
            tenant_spec(entry, tenant)
            if tenant is not None
            else bills.TenantSpec(id=row.tenant, name=row.tenant, meters=[])
        )
        lang = language(call.data.get(ATTR_LANGUAGE) or hass.config.language)
        template = await hass.async_add_executor_job(user_template, hass.config.config_dir)
        try:
            issued: bills.IssuedBill = await entry.runtime_data.coordinator.async_ledger_write(
                bills.recalculate_bill,
                spec=site_spec(hass, entry),
                tenant=spec_t,
                bill_id=bill_id,
                now=dt_util.utcnow(),
                render=_renderer(lang, template),
                render_format=f"html:{lang}",
                actor=_actor(call),
            )
        except LedgerError as err:
            raise _error(err.key, **err.placeholders) from err
        except BillTemplateError as err:
            raise _error("bill_template_failed", error=str(err)) from err
        _fire_issued(hass, entry, issued)
        return _bill_answer(entry, issued)
    raise _error("unknown_bill", bill=str(bill_id))


def async_setup_bill_services(hass: HomeAssistant) -> None:
    """Register the bill actions and the bill document view (once, from async_setup)."""
    for name, handler, schema in (
        (SERVICE_GENERATE_BILL, _async_generate_bill, GENERATE_BILL_SCHEMA),
        (SERVICE_RECALCULATE_BILL, _async_recalculate_bill, RECALCULATE_BILL_SCHEMA),
    ):
        async_register_admin_service(
            hass,
            DOMAIN,
            name,
            handler,
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )
    hass.http.register_view(BillView())


# --- supply control: manual lock, force-on, release, emergency credit ---------------------

SERVICE_LOCK_SUPPLY = "lock_supply"
SERVICE_FORCE_SUPPLY = "force_supply"
SERVICE_RELEASE_SUPPLY = "release_supply"
SERVICE_EMERGENCY_CREDIT = "emergency_credit"

SUPPLY_SCHEMA = vol.Schema({**_SITE, vol.Required(ATTR_TENANT): cv.string})


def _supply_result(entry: PrepaidConfigEntry, tenant: TenantConfig) -> dict[str, Any]:
    state = entry.runtime_data.coordinator.data.tenants[tenant.id]
    return {
        "tenant": tenant.id,
        "supply": state.supply.value,
        "locked": state.locked,
        "forced_on": state.forced_on,
        "balance": str(state.balance),
        "emergency_credit": str(state.emergency),
    }


async def _async_supply_override(call: ServiceCall) -> ServiceResponse:
    """Lock (keep off), force on (keep on) or release a tenant's supply."""
    entry, tenant = resolve_tenant(call.hass, call)
    coordinator = entry.runtime_data.coordinator
    if call.service == SERVICE_LOCK_SUPPLY:
        await coordinator.async_set_override(tenant.id, locked=True, forced_on=False)
    elif call.service == SERVICE_FORCE_SUPPLY:
        await coordinator.async_set_override(tenant.id, locked=False, forced_on=True)
    else:
        await coordinator.async_set_override(tenant.id, locked=False, forced_on=False)
    return _supply_result(entry, tenant)


async def _async_emergency_credit(call: ServiceCall) -> ServiceResponse:
    """Grant the tenant's emergency credit (once until the next top-up)."""
    entry, tenant = resolve_tenant(call.hass, call)
    if tenant.policy.emergency_credit <= 0:
        raise _error("emergency_credit_disabled", tenant=tenant.id)
    granted = await entry.runtime_data.coordinator.async_grant_emergency(tenant.id)
    if granted is None:
        raise _error("emergency_credit_used", tenant=tenant.id)
    return _supply_result(entry, tenant)


def async_setup_supply_services(hass: HomeAssistant) -> None:
    """Register the supply-control actions (admin-only)."""
    for name, handler in (
        (SERVICE_LOCK_SUPPLY, _async_supply_override),
        (SERVICE_FORCE_SUPPLY, _async_supply_override),
        (SERVICE_RELEASE_SUPPLY, _async_supply_override),
        (SERVICE_EMERGENCY_CREDIT, _async_emergency_credit),
    ):
        async_register_admin_service(
            hass,
            DOMAIN,
            name,
            handler,
            schema=SUPPLY_SCHEMA,
            supports_response=SupportsResponse.OPTIONAL,
        )
