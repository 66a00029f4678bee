"""The tenant page: a read-only page per tenant, reached by a signed link, no login.

``tenant_link`` (admin) answers ``/api/prepaid_meter/tenant/<token>``. The token
is ``<payload>.<signature>``: the payload is the site, the tenant and the
expiry (Unix seconds) as base64url JSON; the signature is HMAC-SHA256 of the
payload under the tenant's own secret, kept in the site's database
(``pm_tenant_secret``). ``rotate_tenant_secret`` (admin) makes a new secret,
so every earlier link of that tenant stops working. Signatures are compared
with ``hmac.compare_digest``.

A token that does not verify (malformed, unknown tenant, expired, rotated,
tampered) gets the same plain 404 as any unknown URL, and counts as a failure
of the client's IP address: after ``MAX_FAILURES`` failures within
``FAILURE_WINDOW`` seconds every request of that address gets 429 until the
oldest failure leaves the window. A verified token only ever reads its own
tenant's rows (``store/tenant_access.py``); its bills are served at
``.../<token>/bill/<id>.html`` and ``.pdf`` only when the bill is that tenant's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, DivisionByZero, InvalidOperation
from itertools import pairwise
from typing import Any, Final

import voluptuous as vol
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .const import CONF_TENANTS, DOMAIN
from .coordinator import PrepaidConfigEntry, TenantConfig, TenantState
from .documents import TEMPLATE_DIR, language, render_html, render_pdf, user_template
from .engine.calendars import as_zone, local_midnight
from .engine.costs import current_price
from .engine.money import round_money
from .engine.policy import SupplyState
from .engine.tariffs import Tariff, TariffError, TouPrice
from .services import find_tenant
from .store import bills, tenant_access
from .subentries import site_options

SERVICE_TENANT_LINK: Final = "tenant_link"
SERVICE_ROTATE_TENANT_SECRET: Final = "rotate_tenant_secret"
ATTR_TENANT: Final = "tenant"
ATTR_VALID_DAYS: Final = "valid_days"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
#: Tenant option: the page's language (``en`` or ``zh-Hans``; default Home Assistant's).
CONF_LANGUAGE: Final = "language"

DEFAULT_VALID_DAYS: Final = 30
MAX_VALID_DAYS: Final = 366
#: Failures (bad tokens) per client address allowed within the window before 429.
MAX_FAILURES: Final = 10
FAILURE_WINDOW: Final = 60.0
#: Addresses tracked at once; beyond it the oldest are forgotten (bounded memory).
MAX_TRACKED: Final = 10_000
#: A token is two base64url parts; anything longer or with other characters is refused unread.
MAX_TOKEN: Final = 400
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{4,300}\.[A-Za-z0-9_-]{43}$")

#: The views' shared token checker (its failure limiter), for diagnostics and tests.
ACCESS_KEY: HassKey[TenantAccess] = HassKey(f"{DOMAIN}_tenant_access")
PAGE_URL: Final = "/api/prepaid_meter/tenant/{token}"
TEMPLATE_NAME: Final = "tenant.html.j2"
#: Wallet movements listed on the page.
RECENT_PAYMENTS: Final = 10

#: Headers of every page and document: private, never cached, never indexed; the
#: token is in the URL, so no referrer leaves the page; no script, no outside asset.
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


# --- tokens --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: bytes, site: str, tenant: str, expires: int) -> str:
    """A link token for the tenant of the site, valid until ``expires`` (Unix seconds)."""
    payload = _b64(json.dumps([site, tenant, expires], separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


@dataclass(frozen=True, kw_only=True)
class TokenClaim:
    """What a token says about itself, before its signature is checked."""

    site: str
    tenant: str
    expires: int
    payload: str
    signature: str


def read_token(token: str) -> TokenClaim | None:
    """The token's claim, or None if it is not a well-formed token."""
    if len(token) > MAX_TOKEN or not _TOKEN_RE.match(token):
        return None
    payload, signature = token.split(".")
    try:
        site, tenant, expires = json.loads(_unb64(payload))
    except (ValueError, TypeError, binascii.Error):
        return None
    if not (isinstance(site, str) and isinstance(tenant, str) and type(expires) is int):
        return None
    return TokenClaim(
        site=site, tenant=tenant, expires=expires, payload=payload, signature=signature
    )


def signature_matches(secret: bytes | None, claim: TokenClaim) -> bool:
    """Whether the claim was signed with the secret (constant time; a missing secret fails)."""
    expected = _signature(secret or b"\0" * tenant_access.SECRET_BYTES, claim.payload)
    return hmac.compare_digest(expected, claim.signature) and secret is not None


class FailureLimiter:
    """Counts token failures per client address in a sliding window."""

    def __init__(
        self,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        # Looked up at each call (not bound here), so a test clock that replaces
        # time.monotonic is seen.
        self._clock = clock or (lambda: time.monotonic())
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float] | None:
        seen = self._failures.get(address)
        if seen is None:
            return None
        edge = self._clock() - self.window
        while seen and seen[0] <= edge:
            seen.popleft()
        if not seen:
            del self._failures[address]
            return None
        return seen

    def limited(self, address: str) -> bool:
        """Whether the address has used up its failures for now."""
        seen = self._recent(address)
        return seen is not None and len(seen) >= self.limit

    def failed(self, address: str) -> None:
        """Record a failure of the address."""
        seen = self._recent(address)
        if seen is None:
            if len(self._failures) >= MAX_TRACKED:
                self._failures.pop(next(iter(self._failures)))
            seen = self._failures[address] = deque()
        seen.append(self._clock())


# --- use curves ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Bar:
    """One bar of a use curve: its label and its energy per time-of-use period."""

    label: str
    title: str
    parts: tuple[tuple[str, Decimal], ...]

    @property
    def total(self) -> Decimal:
        """The bar's energy."""
        return sum((e for _, e in self.parts), Decimal(0))


def hour_bounds(now: datetime, tz: str, days: int = 30) -> list[datetime]:
    """Hour marks from local midnight ``days - 1`` days ago up to ``now`` (the last, partial)."""
    zone = as_zone(tz)
    start = local_midnight(now.astimezone(zone).date() - timedelta(days=days - 1), zone)
    hours = int((now - start) / timedelta(hours=1)) + 1
    bounds = [b for b in (start + timedelta(hours=h) for h in range(hours)) if b < now]
    bounds.append(now)
    return bounds


def hourly_use(readings: Mapping[str, Sequence[Decimal | None]]) -> list[Decimal]:
    """Energy per interval between bounds, summed over the meters.

    A meter's counter that fell (reset, replacement) counts no use for that
    hour, as charging does; an hour without readings on both sides counts none.
    """
    count = max((len(v) for v in readings.values()), default=1) - 1
    use = [Decimal(0)] * max(count, 0)
    for values in readings.values():
        for i, (a, b) in enumerate(pairwise(values)):
            if a is not None and b is not None and b > a:
                use[i] += b - a
    return use


def period_at(tariff: Tariff | None, at: datetime) -> str:
    """The time-of-use period in force at ``at`` ('' where the tariff has none)."""
    if tariff is None:
        return ""
    try:
        energy = tariff.version_at(at).energy
        if isinstance(energy, TouPrice):
            return energy.calendar.period_at(at.astimezone(tariff.zone))
    except (TariffError, IndexError):
        return ""
    return ""


def curves(
    bounds: Sequence[datetime],
    use: Sequence[Decimal],
    tariff: Tariff | None,
    tz: str,
    weekdays: Sequence[str],
) -> dict[str, list[Bar]]:
    """Day (24 hourly bars), week (7 daily bars) and month (30 daily bars) curves.

    Each hour's use is put in the period in force at the start of the hour.
    """
    zone = as_zone(tz)
    hours: list[tuple[datetime, str, Decimal]] = [
        (start, period_at(tariff, start), energy)
        for start, energy in zip(bounds, use, strict=False)
    ]
    day = [
        Bar(
            label=f"{start.astimezone(zone):%H}",
            title=f"{start.astimezone(zone):%H:%M}",
            parts=((period, energy),),
        )
        for start, period, energy in hours[-24:]
    ]
    per_day: dict[Any, dict[str, Decimal]] = {}
    for start, period, energy in hours:
        parts = per_day.setdefault(start.astimezone(zone).date(), {})
        parts[period] = parts.get(period, Decimal(0)) + energy
    days = sorted(per_day)

    def bars(chosen: Sequence[Any], label: Callable[[Any], str]) -> list[Bar]:
        return [
            Bar(label=label(d), title=d.isoformat(), parts=tuple(sorted(per_day[d].items())))
            for d in chosen
        ]

    return {
        "day": day,
        "week": bars(days[-7:], lambda d: weekdays[d.weekday()]),
        "month": bars(days[-30:], lambda d: str(d.day)),
    }


#: Colours of time-of-use periods, by the names tariffs commonly use (others cycle).
_PERIOD_COLOURS = {
    "sharp": "#b3261e",
    "peak": "#e8710a",
    "shoulder": "#f2b705",
    "flat": "#3b8fd9",
    "offpeak": "#2e9e6a",
    "valley": "#2e9e6a",
    "": "#3b8fd9",
}
_SPARE_COLOURS = ("#7e57c2", "#00897b", "#8d6e63", "#546e7a")


def period_colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per period name, stable for the known names."""
    colours: dict[str, str] = {}
    spare = 0
    for name in names:
        key = name.lower().replace("-", "").replace("_", "").replace(" ", "")
        if key in _PERIOD_COLOURS:
            colours[name] = _PERIOD_COLOURS[key]
        else:
            colours[name] = _SPARE_COLOURS[spare % len(_SPARE_COLOURS)]
            spare += 1
    return colours


def _fmt(value: Decimal, places: int = 2) -> str:
    return f"{value:.{places}f}"


def bars_svg(bars: Sequence[Bar], unit: str, colours: Mapping[str, str], *, every: int = 1) -> str:
    """A stacked bar chart as inline SVG (no script, no outside asset; scales to the width)."""
    width, height, top, bottom, left = 360, 150, 14, 20, 4
    n = max(len(bars), 1)
    slot = (width - left) / n
    peak = max((b.total for b in bars), default=Decimal(0))
    scale = float(peak) if peak > 0 else 1.0
    inner = height - top - bottom
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{width - 2}" y="10" text-anchor="end" class="axis">{_fmt(peak)} {unit}</text>',
        f'<line x1="0" y1="{top}" x2="{width}" y2="{top}" class="grid"/>',
        f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" class="grid"/>',
    ]
    for i, bar in enumerate(bars):
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        y = float(height - bottom)
        out.append(f'<g class="bar" data-label="{bar.title}" data-energy="{_fmt(bar.total, 3)}">')
        out.append(f"<title>{bar.title}: {_fmt(bar.total, 2)} {unit}</title>")
        for period, energy in bar.parts:
            h = float(energy) / scale * inner
            if h <= 0:
                continue
            y -= h
            colour = colours.get(period, _PERIOD_COLOURS[""])
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
        out.append("</g>")
        if i % every == 0:
            out.append(
                f'<text x="{x + w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                f'class="axis">{bar.label}</text>'
            )
    out.append("</svg>")
    return "".join(out)


# --- the page ------------------------------------------------------------------------

_SUPPLY_EN = {
    SupplyState.ON: "On",
    SupplyState.CUT_OFF: "Cut off",
    SupplyState.LOCKED: "Locked off by the landlord",
    SupplyState.FORCED_ON: "Kept on by the landlord",
    SupplyState.GRACE: "On (grace period; please top up)",
    SupplyState.FRIENDLY_HOURS: "On (no cut-off at this hour; please top up)",
    SupplyState.EMERGENCY: "On (emergency credit)",
}
_SUPPLY_ZH = {
    SupplyState.ON: "正常供电",
    SupplyState.CUT_OFF: "已断电",
    SupplyState.LOCKED: "已由房东锁定断电",
    SupplyState.FORCED_ON: "由房东保持供电",
    SupplyState.GRACE: "供电中（宽限期，请尽快充值）",
    SupplyState.FRIENDLY_HOURS: "供电中（此时段不断电，请尽快充值）",
    SupplyState.EMERGENCY: "供电中（应急额度）",
}

LABELS: Mapping[str, Mapping[str, Any]] = {
    "en": {
        "title": "Your energy account",
        "balance": "Balance",
        "remaining": "Remaining energy",
        "remaining_flat": "Estimate: your balance at the current price of "
        "{price} {currency}/{unit}.",
        "remaining_tou": "Estimate: your balance at the current price of {price} "
        "{currency}/{unit}; the price changes with the time of day, so the energy "
        "you get will differ.",
        "remaining_unknown": "No current price to estimate from.",
        "days_left": "Days of credit left",
        "days_left_note": "At your average daily cost of the last days.",
        "days_unknown": "Not enough recent use to tell.",
        "amount_due": "Amount due on bills",
        "postpaid_note": "Postpaid account: you pay against bills. The balance is what "
        "your use, fees and payments come to so far.",
        "supply": "Supply",
        "supply_states": _SUPPLY_EN,
        "use": "Use",
        "day": "Last 24 hours",
        "week": "Last 7 days",
        "month": "Last 30 days",
        "total": "Total",
        "periods": {
            "sharp": "Sharp peak",
            "peak": "Peak",
            "shoulder": "Shoulder",
            "flat": "Flat",
            "offpeak": "Off-peak",
            "valley": "Valley",
        },
        "payments": "Top-ups and payments",
        "no_payments": "No payments yet.",
        "kinds": {
            "top_up": "Top-up",
            "refund": "Refund",
            "adjustment": "Adjustment",
            "settlement": "Move-out settlement",
            "correction": "Bill correction",
            "reversal": "Reversal",
        },
        "methods": {
            "cash": "cash",
            "wechat": "WeChat Pay",
            "alipay": "Alipay",
            "bank_transfer": "bank transfer",
            "card": "card",
            "other": "other",
        },
        "bills": "Bills",
        "no_bills": "No bills yet.",
        "bill": "Bill",
        "revision": "revision",
        "period": "Period",
        "pdf": "PDF",
        "updated": "Updated",
        "footer": "This page is read-only and shows your account only. Its link is "
        "private: anyone with it can see this page until it expires ({expires}).",
        "weekdays": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    },
    "zh-Hans": {
        "title": "您的用电账户",
        "balance": "余额",
        "remaining": "剩余电量",
        "remaining_flat": "估算：按当前电价 {price} {currency}/{unit} 计算的余额可用电量。",
        "remaining_tou": "估算：按当前电价 {price} {currency}/{unit} 计算；"
        "电价随时段变化，实际可用电量会有不同。",
        "remaining_unknown": "暂无当前电价，无法估算。",
        "days_left": "余额可用天数",
        "days_left_note": "按最近几天的日均费用估算。",
        "days_unknown": "近期用电不足，无法估算。",
        "amount_due": "账单应付金额",
        "postpaid_note": "后付费账户：按账单付款。余额为目前的用电、费用与付款相抵后的结果。",
        "supply": "供电状态",
        "supply_states": _SUPPLY_ZH,
        "use": "用电量",
        "day": "最近 24 小时",
        "week": "最近 7 天",
        "month": "最近 30 天",
        "total": "合计",
        "periods": {
            "sharp": "尖峰",
            "peak": "高峰",
            "shoulder": "平段",
            "flat": "平段",
            "offpeak": "低谷",
            "valley": "低谷",
        },
        "payments": "充值与付款",
        "no_payments": "暂无付款记录。",
        "kinds": {
            "top_up": "充值",
            "refund": "退款",
            "adjustment": "调整",
            "settlement": "退租结算",
            "correction": "账单更正",
            "reversal": "冲正",
        },
        "methods": {
            "cash": "现金",
            "wechat": "微信支付",
            "alipay": "支付宝",
            "bank_transfer": "银行转账",
            "card": "银行卡",
            "other": "其他",
        },
        "bills": "账单",
        "no_bills": "暂无账单。",
        "bill": "账单",
        "revision": "修订",
        "period": "账期",
        "pdf": "PDF",
        "updated": "更新时间",
        "footer": "本页面只读，仅显示您本人的账户。链接请勿外传：持有链接者在其到期前"
        "（{expires}）均可查看本页面。",
        "weekdays": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    },
}


@dataclass(frozen=True, kw_only=True)
class PageInput:
    """Everything the page is made from (live state, stored facts, the tariff)."""

    site_name: str
    tenant_name: str
    currency: str
    unit: str
    timezone: str
    now: datetime
    expires: datetime
    balance: Decimal
    days_left: Decimal | None
    supply: SupplyState
    #: Postpaid: the page shows what is owed on bills, not credit left.
    postpaid: bool = False
    amount_due: Decimal = Decimal(0)
    tariff: Tariff | None
    bounds: Sequence[datetime]
    data: tenant_access.PageData
    #: The page's own URL path (links to bills hang under it).
    base: str


def page_context(page: PageInput, lang: str) -> dict[str, Any]:
    """The template's context: labels, formatted numbers, curves as SVG."""
    t = LABELS[lang]
    zone = as_zone(page.timezone)
    price, varies = current_price(page.tariff, page.now)
    remaining: Decimal | None = None
    if price is not None and price > 0:
        try:
            remaining = max(page.balance, Decimal(0)) / price
        except (DivisionByZero, InvalidOperation):
            remaining = None
    use = hourly_use(page.data.readings)
    charts = curves(page.bounds, use, page.tariff, page.timezone, t["weekdays"])
    names = sorted({p for bars in charts.values() for b in bars for p, _ in b.parts})
    colours = period_colours(names)
    legend = [
        (
            colours[n],
            t["periods"].get(n.lower().replace("-", "").replace("_", "").replace(" ", ""), n),
        )
        for n in names
        if n
    ]
    svg = {
        "day": bars_svg(charts["day"], page.unit, colours, every=3),
        "week": bars_svg(charts["week"], page.unit, colours),
        "month": bars_svg(charts["month"], page.unit, colours, every=5),
    }
    totals = {k: _fmt(sum((b.total for b in v), Decimal(0))) for k, v in charts.items()}
    note_key = "remaining_tou" if varies else "remaining_flat"
    note = (
        t[note_key].format(
            price=_fmt(price, 4).rstrip("0").rstrip(".") if price is not None else "",
            currency=page.currency,
            unit=page.unit,
        )
        if price is not None
        else t["remaining_unknown"]
    )
    return {
        "lang": lang,
        "t": t,
        "site_name": page.site_name,
        "tenant_name": page.tenant_name,
        "currency": page.currency,
        "unit": page.unit,
        "balance": _fmt(round_money(page.balance, page.currency)),
        "negative": page.balance < 0,
        "remaining": _fmt(remaining, 1) if remaining is not None else "–",
        "remaining_note": note,
        "days_left": _fmt(page.days_left, 1) if page.days_left is not None else None,
        "postpaid": page.postpaid,
        "amount_due": _fmt(round_money(page.amount_due, page.currency)),
        "supply": page.supply.value,
        "supply_text": t["supply_states"][page.supply],
        "charts": {k: Markup(v) for k, v in svg.items()},
        "totals": totals,
        "legend": legend,
        "payments": [
            {
                "at": f"{p.at.astimezone(zone):%Y-%m-%d %H:%M}",
                "kind": t["kinds"].get(p.kind, p.kind),
                "method": t["methods"].get(p.method, p.method),
                "amount": _fmt(round_money(p.amount, page.currency)),
                "credit": p.amount >= 0,
            }
            for p in page.data.payments
        ],
        "bills": [
            {
                "id": b.id,
                "number": b.number,
                "revision": b.revision,
                "period": f"{b.period_start.astimezone(zone):%Y-%m-%d} – "
                f"{(b.period_end - timedelta(microseconds=1)).astimezone(zone):%Y-%m-%d}",
                "total": _fmt(b.total),
                "currency": b.currency,
                "html": f"{page.base}/bill/{b.id}.html",
                "pdf": f"{page.base}/bill/{b.id}.pdf",
            }
            for b in page.data.bills
        ],
        "updated": f"{page.now.astimezone(zone):%Y-%m-%d %H:%M}",
        "footer": t["footer"].format(expires=f"{page.expires.astimezone(zone):%Y-%m-%d}"),
    }


@functools.cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["j2", "html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(page: PageInput, lang: str) -> str:
    """The tenant page as HTML."""
    lang = language(lang)
    return _env().get_template(TEMPLATE_NAME).render(page_context(page, lang))


# --- Home Assistant glue -------------------------------------------------------------


def _loaded(hass: HomeAssistant) -> list[PrepaidConfigEntry]:
    return [
        e for e in hass.config_entries.async_entries(DOMAIN) if e.state is ConfigEntryState.LOADED
    ]


def tenant_language(hass: HomeAssistant, entry: PrepaidConfigEntry, tenant: str) -> str:
    """The tenant's ``language`` option, else Home Assistant's language."""
    options: Mapping[str, Any] = next(
        (t for t in site_options(entry).get(CONF_TENANTS, []) if t.get("id") == tenant), {}
    )
    return language(str(options.get(CONF_LANGUAGE) or hass.config.language))


def _not_found() -> web.HTTPNotFound:
    # aiohttp's own answer to an unknown URL, byte for byte.
    return web.HTTPNotFound()


@dataclass(frozen=True, kw_only=True)
class Verified:
    """A token that verified: the site entry, the tenant and when the link expires."""

    entry: PrepaidConfigEntry
    tenant: TenantConfig
    expires: datetime
    token: str


class TenantAccess:
    """Verifies tokens for the views and limits failures per client address."""

    def __init__(self, limiter: FailureLimiter | None = None) -> None:
        self.limiter = limiter or FailureLimiter()

    async def verify(self, request: web.Request, token: str) -> Verified:
        """The verified token, or an HTTP error: 429 when limited, else a plain 404."""
        address = request.remote or ""
        if self.limiter.limited(address):
            raise web.HTTPTooManyRequests(headers={"Retry-After": str(int(FAILURE_WINDOW))})
        verified = await self._verify(request.app[KEY_HASS], token)
        if verified is None:
            self.limiter.failed(address)
            raise _not_found()
        return verified

    async def _verify(self, hass: HomeAssistant, token: str) -> Verified | None:
        claim = read_token(token)
        if claim is None:
            return None
        entry = next((e for e in _loaded(hass) if e.entry_id == claim.site), None)
        tenant = (
            next((t for t in entry.runtime_data.site.tenants if t.id == claim.tenant), None)
            if entry is not None
            else None
        )
        secret = None
        if entry is not None and tenant is not None:
            secret = await entry.runtime_data.store.run(
                tenant_access.current_secret, entry.entry_id, tenant.id
            )
        # The signature is checked (in constant time) even when the tenant is
        # unknown, against a dummy key, so that no failure skips the HMAC.
        good = signature_matches(secret, claim)
        if not good or entry is None or tenant is None:
            return None
        expires = dt_util.utc_from_timestamp(claim.expires)
        if expires <= dt_util.utcnow():
            return None
        return Verified(entry=entry, tenant=tenant, expires=expires, token=token)


def page_url(token: str) -> str:
    """The tenant page's path for a token."""
    return PAGE_URL.format(token=token)


class TenantPageView(HomeAssistantView):
    """The tenant's read-only page, reached with a signed link (no Home Assistant login)."""

    url = r"/api/prepaid_meter/tenant/{token}"
    name = "api:prepaid_meter:tenant"
    requires_auth = False

    def __init__(self, access: TenantAccess) -> None:
        self.access = access

    async def get(self, request: web.Request, token: str) -> web.StreamResponse:
        """The page, in the tenant's language."""
        found = await self.access.verify(request, token)
        hass = request.app[KEY_HASS]
        entry, tenant = found.entry, found.tenant
        runtime = entry.runtime_data
        state: TenantState = runtime.coordinator.data.tenants[tenant.id]
        now = dt_util.utcnow()
        tz = str(hass.config.time_zone)
        bounds = hour_bounds(now, tz)
        # The tariff that charges this tenant (its own, else the site's default or flat price).
        tariff = runtime.site.tariffs.for_tenant(tenant.id)
        data = await runtime.store.run(
            tenant_access.page_data,
            entry.entry_id,
            tenant.id,
            tenant.meters,
            bounds,
            payments=RECENT_PAYMENTS,
        )
        page = PageInput(
            site_name=runtime.site.name,
            tenant_name=tenant.name,
            currency=runtime.site.currency,
            unit=tariff.unit,
            timezone=tz,
            now=now,
            expires=found.expires,
            balance=state.balance,
            days_left=state.days_left,
            supply=state.supply,
            postpaid=tenant.postpaid,
            amount_due=state.amount_due,
            tariff=tariff,
            bounds=bounds,
            data=data,
            base=page_url(token),
        )
        html = render_page(page, tenant_language(hass, entry, tenant.id))
        return web.Response(
            text=html, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS
        )


class TenantBillView(HomeAssistantView):
    """One of the tenant's own bills, as stored (HTML or PDF), under the tenant's token."""

    url = r"/api/prepaid_meter/tenant/{token}/bill/{bill_id:\d{1,12}}.{fmt:(html|pdf)}"
    name = "api:prepaid_meter:tenant:bill"
    requires_auth = False

    def __init__(self, access: TenantAccess) -> None:
        self.access = access

    async def get(
        self, request: web.Request, token: str, bill_id: str, fmt: str
    ) -> web.StreamResponse:
        """The document if the bill is the token's tenant's; else the same 404 as a bad token."""
        found = await self.access.verify(request, token)
        hass = request.app[KEY_HASS]
        store = found.entry.runtime_data.store
        site, tenant = found.entry.entry_id, found.tenant.id
        row = await store.run(tenant_access.tenant_bill, site, tenant, int(bill_id))
        if row is None:
            # Another tenant's bill id (or none) with a good token: a failure like any other.
            self.access.limiter.failed(request.remote or "")
            raise _not_found()
        lang = tenant_language(hass, found.entry, tenant)
        template = (
            await hass.async_add_executor_job(user_template, hass.config.config_dir)
            if fmt == "html"
            else None
        )

        def make(doc: dict[str, Any]) -> bytes:
            if fmt == "pdf":
                return render_pdf(doc, lang)
            return render_html(doc, lang, template).encode()

        content = await store.run(bills.bill_file, row.id, f"{fmt}:{lang}", make, site=site)
        if content is None:
            raise _not_found()
        content_type = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
        return web.Response(
            body=content, headers={**SECURITY_HEADERS, "Content-Type": content_type}
        )


# --- actions -------------------------------------------------------------------------

TENANT_LINK_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_TENANT): cv.string,
        vol.Optional(ATTR_VALID_DAYS): vol.Any(cv.string, vol.Coerce(str)),
    }
)
ROTATE_SCHEMA = vol.Schema(
    {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string, vol.Required(ATTR_TENANT): cv.string}
)


def _error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _valid_days(value: object) -> int:
    """Whole days (the UI's number selector may send ``30.0``)."""
    try:
        days = Decimal(str(value).strip())
    except InvalidOperation:
        days = Decimal(0)
    if not days.is_finite() or days != days.to_integral_value() or not 1 <= days <= MAX_VALID_DAYS:
        raise _error("invalid_valid_days", days=str(value), max=str(MAX_VALID_DAYS))
    return int(days)


def _absolute(hass: HomeAssistant, path: str) -> str | None:
    try:
        return get_url(hass, allow_internal=True, prefer_external=True) + path
    except NoURLAvailableError:
        return None


async def _async_tenant_link(call: ServiceCall) -> ServiceResponse:
    """A signed link to the tenant's page (the secret is made on first use)."""
    days = _valid_days(call.data.get(ATTR_VALID_DAYS, DEFAULT_VALID_DAYS))
    entry, tenant = find_tenant(
        call.hass, call.data[ATTR_TENANT], call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    now = dt_util.utcnow()
    secret = await entry.runtime_data.store.run(
        tenant_access.ensure_secret, entry.entry_id, tenant.id, now
    )
    expires = int((now + timedelta(days=days)).timestamp())
    path = page_url(make_token(secret, entry.entry_id, tenant.id, expires))
    answer: dict[str, Any] = {
        "tenant": tenant.id,
        "path": path,
        "url": _absolute(call.hass, path) or path,
        "expires": dt_util.utc_from_timestamp(expires).isoformat(),
        "language": tenant_language(call.hass, entry, tenant.id),
    }
    return answer


async def _async_rotate_secret(call: ServiceCall) -> ServiceResponse:
    """A new secret for the tenant: every link made before stops working."""
    entry, tenant = find_tenant(
        call.hass, call.data[ATTR_TENANT], call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    now = dt_util.utcnow()
    await entry.runtime_data.store.run(tenant_access.rotate_secret, entry.entry_id, tenant.id, now)
    return {"tenant": tenant.id, "rotated_at": now.isoformat()}


def async_setup_tenant_page(hass: HomeAssistant) -> TenantAccess:
    """Register the tenant-page actions (admin-only) and views (once, from async_setup)."""
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_TENANT_LINK,
        _async_tenant_link,
        schema=TENANT_LINK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_ROTATE_TENANT_SECRET,
        _async_rotate_secret,
        schema=ROTATE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    access = hass.data[ACCESS_KEY] = TenantAccess()
    hass.http.register_view(TenantPageView(access))
    hass.http.register_view(TenantBillView(access))
    return access
