"""Constants shared by the integration layer."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "prepaid_meter"

CONF_CURRENCY: Final = "currency"
CONF_PRICE: Final = "price"
CONF_CUT_OFF_ENABLED: Final = "cut_off_enabled"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_METERS: Final = "meters"
CONF_TENANTS: Final = "tenants"
CONF_DEVICE_IDS: Final = "device_ids"
CONF_NAME_PREFIX: Final = "name_prefix"
CONF_PROFILE: Final = "profile"
CONF_DATABASE_URL: Final = "database_url"
CONF_BUSES: Final = "buses"
CONF_OFFLINE_AFTER: Final = "offline_after"
#: Site option: minutes of the stored interval data (0: every poll is stored).
CONF_INTERVAL: Final = "interval_minutes"

DEFAULT_PORT: Final = 502
DEFAULT_SCAN_INTERVAL: Final = 30
DEFAULT_PROFILE: Final = "simulator"
DEFAULT_BUS: Final = "default"
DEFAULT_OFFLINE_AFTER: Final = 2
#: The intervals a site may store its readings and charges at, in minutes (0: every poll).
INTERVALS: Final = (0, 1, 5, 15, 30, 60)
DEFAULT_INTERVAL: Final = 15

PAYMENT_METHODS: Final = ("cash", "wechat", "alipay", "bank_transfer", "card", "other")

EVENT_CUT_OFF: Final = f"{DOMAIN}_cut_off"
EVENT_RECONNECTED: Final = f"{DOMAIN}_reconnected"
#: Alarms (payloads in the README): meter kinds offline, online, relay_mismatch,
#: tamper, counter_reset, counter_rollover; tenant kinds spike, sustained_load,
#: overload; site kind evasion.
EVENT_ALARM: Final = f"{DOMAIN}_alarm"
#: Site option: minutes a meter may be offline before a repair issue is raised.
CONF_OFFLINE_REPAIR_MINUTES: Final = "offline_repair_minutes"
DEFAULT_OFFLINE_REPAIR_MINUTES: Final = 60

DB_FILENAME: Final = "prepaid_meter.db"

#: A bill was issued: payload {entry_id, tenant, tenant_name, bill_number,
#: period_start, period_end, total, currency, url} (plus revision and bill_id).
EVENT_BILL_ISSUED: Final = f"{DOMAIN}_bill_issued"
#: Progress of a long bill run: payload {entry_id, done, total}.
EVENT_BILL_PROGRESS: Final = f"{DOMAIN}_bill_progress"
#: Per-tenant option: ``prepaid`` (default) or ``postpaid``.
CONF_BILLING_MODE: Final = "billing"
#: Site options: the day of the month bills are issued for, days to pay a postpaid bill.
CONF_BILLING_DAY: Final = "billing_day"
CONF_DUE_DAYS: Final = "due_days"
DEFAULT_BILLING_DAY: Final = 1
DEFAULT_DUE_DAYS: Final = 14
#: Site option: days after a postpaid bill's due date before it counts as overdue (default 0).
CONF_OVERDUE_GRACE_DAYS: Final = "overdue_grace_days"
#: A postpaid bill fell overdue (once per bill): payload {entry_id, tenant, tenant_name,
#: device_id, bill_number, bill_id, amount_open, due (local date), currency}.
EVENT_BILL_OVERDUE: Final = f"{DOMAIN}_bill_overdue"

# --- supply policy (site defaults in the entry's options; a tenant may override
# any of them under its own "policy" key) ---
CONF_WARNING_LEVELS: Final = "warning_levels"
CONF_DAYS_LEFT_LEVEL: Final = "days_left_level"
CONF_GRACE_MINUTES: Final = "grace_minutes"
CONF_FRIENDLY_HOURS: Final = "friendly_hours"
CONF_HOLIDAYS: Final = "holidays"
CONF_EMERGENCY_CREDIT: Final = "emergency_credit"
CONF_CREDIT_LIMIT: Final = "credit_limit"
CONF_FORECAST_DAYS: Final = "forecast_days"
#: Postpaid tenants: cut off when a bill is overdue (the bills engine sets the flag).
CONF_CUT_OFF_WHEN_OVERDUE: Final = "cut_off_when_overdue"
CONF_POLICY: Final = "policy"

DEFAULT_FORECAST_DAYS: Final = 7

#: {entry_id, tenant, tenant_name, device_id, kind (balance|days_left), level, balance,
#: days_left, currency}
EVENT_LOW_BALANCE: Final = f"{DOMAIN}_low_balance"
#: {entry_id, tenant, tenant_name, device_id, amount, balance, currency}
EVENT_EMERGENCY_CREDIT: Final = f"{DOMAIN}_emergency_credit"
