"""Bill assembly: rated charges, fees, shares and wallet movements into one bill document.

Pure: no Home Assistant, no database, no clock. The store gathers the inputs
(readings, ledger sums, tariff), the engine rates them (`rating.rate_period`)
and `assemble_bill` turns the charges into lines a tenant reads.

Rounding rule: lines keep full precision until here. The bill total is the
exact sum of every charge rounded once (`money.round_money`); the lines are
then rounded by the largest-remainder method so that they add up to that
total to the minor unit. So a prepaid bill's total equals the rounded sum of
what was deducted from the wallet, and no line-by-line rounding drift appears.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any, Literal

from .calendars import BillingPeriod, as_zone, local_days, utc
from .money import ZERO, quantum, round_money
from .rating import RATING_CONTEXT, Charge
from .tariffs import FlatPrice, Tariff, TariffVersion

BillingMode = Literal["prepaid", "postpaid"]
BILLING_MODES: tuple[str, ...] = ("prepaid", "postpaid")

#: Order of a bill's sections; taxes come last, after the subtotal.
SECTIONS = ("energy", "demand", "capacity", "standing", "minimum", "shared", "loss", "fees", "tax")


class BillingError(ValueError):
    """A bill that cannot be assembled; ``key`` names the translated message."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def flat_tariff(price: Decimal, currency: str, timezone: str, unit: str = "kWh") -> Tariff:
    """The tariff of a site that has only a flat price: one version in force since ever."""
    version = TariffVersion(
        effective=datetime(1970, 1, 1, tzinfo=UTC),
        label="flat",
        energy=FlatPrice(price),
    )
    return Tariff(
        name="flat",
        commodity="electricity",
        unit=unit,
        currency=currency,
        timezone=timezone,
        versions=(version,),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterReadings:
    """A meter's readings that bound the period: the use is end - start."""

    meter: str
    name: str
    start: Decimal | None
    start_at: datetime | None
    end: Decimal | None
    end_at: datetime | None

    @property
    def used(self) -> Decimal:
        """Counter advance between the two readings (zero without both)."""
        if self.start is None or self.end is None:
            return ZERO
        return max(self.end - self.start, ZERO)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fee:
    """A fixed amount on one tenant's bill (rent of a meter, a service fee, a discount)."""

    name: str
    amount: Decimal
    section: str = "fees"


@dataclass(frozen=True, slots=True, kw_only=True)
class WalletMovements:
    """The tenant's wallet over the period, from the ledger (amounts as they were posted)."""

    opening: Decimal = ZERO
    top_ups: Decimal = ZERO
    #: Charges posted to the wallet in the period, as a positive number.
    deducted: Decimal = ZERO
    refunds: Decimal = ZERO
    adjustments: Decimal = ZERO
    closing: Decimal = ZERO


@dataclass(frozen=True, slots=True, kw_only=True)
class BillInput:
    """Everything a bill is made of; the store gathers it, nothing here reads a clock."""

    site_name: str
    site_address: str = ""
    logo: str = ""
    tenant: str
    tenant_name: str
    mode: str = "prepaid"
    number: str
    revision: int = 1
    period: BillingPeriod
    issued_at: datetime
    due_days: int = 14
    currency: str
    timezone: str
    unit: str = "kWh"
    meters: Sequence[MeterReadings] = ()
    charges: Sequence[Charge] = ()
    fees: Sequence[Fee] = ()
    #: Common-area and line-loss shares; None until the sharing engine provides them.
    common_area: Decimal | None = None
    line_loss: Decimal | None = None
    wallet: WalletMovements = field(default_factory=WalletMovements)
    #: Use per month for the last 12 months, oldest first: (``YYYY-MM``, energy).
    history: Sequence[tuple[str, Decimal]] = ()
    #: For a revision: the total of the bill it replaces and the correction posted.
    replaces_total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BillLine:
    """One printed line; ``amount`` is rounded, ``exact`` is what it was before."""

    section: str
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    exact: Decimal
    tou_period: str | None = None
    tier: int | None = None


@dataclass(frozen=True, slots=True)
class Bill:
    """An assembled bill: lines, totals and the statement of account."""

    source: BillInput
    lines: tuple[BillLine, ...]
    subtotal: Decimal
    taxes: Decimal
    total: Decimal
    energy: Decimal
    days: Decimal
    daily_average: Decimal
    due_at: datetime | None
    amount_due: Decimal
    #: Prepaid: the total equals the rounded sum deducted from the wallet.
    matches_deducted: bool

    def to_dict(self) -> dict[str, Any]:
        """The bill as JSON-able data (Decimals and times as strings): what is stored and hashed."""
        s = self.source
        tz = s.timezone
        start_local = s.period.start.astimezone(as_zone(tz))
        end_local = s.period.end.astimezone(as_zone(tz))
        return {
            "number": s.number,
            "revision": s.revision,
            "site": {"name": s.site_name, "address": s.site_address, "logo": s.logo},
            "tenant": {"id": s.tenant, "name": s.tenant_name, "mode": s.mode},
            "period": {
                "start": s.period.start.isoformat(),
                "end": s.period.end.isoformat(),
                "cycle_start": s.period.cycle_start.isoformat(),
                "cycle_end": s.period.cycle_end.isoformat(),
                "start_local": start_local.date().isoformat(),
                # The last day billed (the end is exclusive).
                "end_local": (end_local - timedelta(microseconds=1)).date().isoformat(),
                "whole": s.period.is_whole,
                "days": _s(self.days),
            },
            "issued_at": s.issued_at.isoformat(),
            # The issue date as the tenant reads it (the site's local date): a
            # bill issued just after a local midnight is dated that day.
            "issued_local": s.issued_at.astimezone(as_zone(tz)).date().isoformat(),
            "due_at": self.due_at.isoformat() if self.due_at else None,
            # The due date as the tenant reads it (the site's local date); only
            # on bills with a due date, so other bills' content is unchanged.
            **(
                {"due_local": self.due_at.astimezone(as_zone(tz)).date().isoformat()}
                if self.due_at
                else {}
            ),
            "currency": s.currency,
            "unit": s.unit,
            "meters": [
                {
                    "id": m.meter,
                    "name": m.name,
                    "start": _s(m.start),
                    "start_at": m.start_at.isoformat() if m.start_at else None,
                    "end": _s(m.end),
                    "end_at": m.end_at.isoformat() if m.end_at else None,
                    "used": _s(m.used),
                }
                for m in s.meters
            ],
            "lines": [
                {
                    "section": ln.section,
                    "label": ln.label,
                    "quantity": _s(ln.quantity),
                    "unit": ln.unit,
                    "unit_price": _s(ln.unit_price),
                    "amount": _s(ln.amount),
                    "tou_period": ln.tou_period,
                    "tier": ln.tier,
                }
                for ln in self.lines
            ],
            # "Not shared yet" only while no share of that kind is on the bill.
            "shared_pending": s.common_area is None
            and not any(f.section == "shared" for f in s.fees),
            "loss_pending": s.line_loss is None and not any(f.section == "loss" for f in s.fees),
            "subtotal": _s(self.subtotal),
            "taxes": _s(self.taxes),
            "total": _s(self.total),
            "energy": _s(self.energy),
            "daily_average": _s(self.daily_average),
            "wallet": {
                "opening": _s(round_money(s.wallet.opening, s.currency)),
                "top_ups": _s(round_money(s.wallet.top_ups, s.currency)),
                "deducted": _s(round_money(s.wallet.deducted, s.currency)),
                "refunds": _s(round_money(s.wallet.refunds, s.currency)),
                "adjustments": _s(round_money(s.wallet.adjustments, s.currency)),
                "closing": _s(round_money(s.wallet.closing, s.currency)),
            },
            "amount_due": _s(self.amount_due),
            "matches_deducted": self.matches_deducted,
            "history": [{"month": m, "energy": _s(e)} for m, e in s.history],
            "replaces_total": _s(s.replaces_total),
            "difference": _s(None if s.replaces_total is None else self.total - s.replaces_total),
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def content_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 of a bill document's canonical JSON: what an issued bill is checked against."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def round_lines(exact: Sequence[Decimal], currency: str) -> tuple[Decimal, list[Decimal]]:
    """Round line amounts so they add up to the rounded exact total (largest remainder).

    Each line is first rounded down to the minor unit; the units still missing
    to reach ``round_money(sum)`` go one each to the lines with the largest
    remainders (ties to the earlier line). Works for negative lines (discounts)
    too, because rounding down leaves every remainder in [0, one unit).
    """
    with localcontext(RATING_CONTEXT):
        total = round_money(sum(exact, ZERO), currency)
        q = quantum(currency)
        floors = [round_money(x, currency, ROUND_FLOOR) for x in exact]
        leftover = int(((total - sum(floors, ZERO)) / q).to_integral_value())
        order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:leftover]:
            floors[i] += q
    return total, floors


def _label(charge: Charge) -> str:
    if charge.kind == "energy":
        parts = [
            p
            for p in (charge.tou_period, None if charge.tier is None else f"tier {charge.tier}")
            if p
        ]
        return " ".join(parts) if parts else "energy"
    if charge.kind == "tax":
        return f"{charge.name or 'tax'} on {charge.taxed_kind}"
    return charge.name or charge.kind


def _group(
    charges: Sequence[Charge],
) -> list[tuple[str, str, Decimal, str, Decimal, Decimal, str | None, int | None]]:
    """Charges grouped into printed lines: energy by (period, tier, price), others by name."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    with localcontext(RATING_CONTEXT):
        for c in charges:
            section = c.kind
            key: tuple[Any, ...]
            if c.kind == "energy":
                key = (section, c.tou_period, c.tier, c.unit_price)
            elif c.kind == "tax":
                key = (section, c.name, c.taxed_kind, c.unit_price)
            elif c.kind == "standing":
                key = (section, c.name, c.unit, c.unit_price)
            else:
                key = (section, c.name, c.start)
            g = groups.get(key)
            if g is None:
                groups[key] = [section, _label(c), c.quantity, c.unit, c.unit_price, c.amount,
                               c.tou_period, c.tier]  # fmt: skip
            else:
                g[2] += c.quantity
                g[5] += c.amount
    out = [tuple(g) for g in groups.values()]
    rank = {s: i for i, s in enumerate(SECTIONS)}

    def order(g: tuple[Any, ...]) -> tuple[Any, ...]:
        return (rank.get(g[0], len(SECTIONS)), g[6] or "", -1 if g[7] is None else g[7], g[1])

    return sorted(out, key=order)


def assemble_bill(data: BillInput) -> Bill:
    """Turn rated charges, fees, shares and wallet movements into a bill."""
    if data.mode not in BILLING_MODES:
        raise BillingError("invalid_billing_mode", f"unknown billing mode {data.mode!r}")
    raw: list[tuple[str, str, Decimal, str, Decimal, Decimal, str | None, int | None]] = [
        g for g in _group(data.charges) if g[0] != "tax"
    ]
    if data.common_area is not None:
        raw.append(("shared", "common area", Decimal(1), "share", data.common_area,
                    data.common_area, None, None))  # fmt: skip
    if data.line_loss is not None:
        raw.append(("loss", "line loss", Decimal(1), "share", data.line_loss,
                    data.line_loss, None, None))  # fmt: skip
    for fee in data.fees:
        raw.append((fee.section, fee.name, Decimal(1), "", fee.amount, fee.amount, None, None))
    raw.extend(g for g in _group(data.charges) if g[0] == "tax")
    total, rounded = round_lines([g[5] for g in raw], data.currency)
    lines = tuple(
        BillLine(
            section=g[0],
            label=g[1],
            quantity=g[2],
            unit=g[3],
            unit_price=g[4],
            amount=amount,
            exact=g[5],
            tou_period=g[6],
            tier=g[7],
        )
        for g, amount in zip(raw, rounded, strict=True)
    )
    taxes = sum((ln.amount for ln in lines if ln.section == "tax"), ZERO)
    with localcontext(RATING_CONTEXT):
        energy = sum((c.quantity for c in data.charges if c.kind == "energy"), ZERO)
        days = local_days(data.period.start, data.period.end, data.timezone)
        # A period shorter than a day averages over that one day: its use, not
        # a projection (six hours' use times four is not what the tenant used).
        daily = (energy / max(days, Decimal(1))).quantize(Decimal("0.01")) if days else ZERO
    due_at = None
    amount_due = ZERO
    if data.mode == "postpaid":
        due_at = data.issued_at + timedelta(days=data.due_days)
        amount_due = max(-round_money(data.wallet.closing, data.currency), ZERO)
    return Bill(
        source=data,
        lines=lines,
        subtotal=total - taxes,
        taxes=taxes,
        total=total,
        energy=energy,
        days=days,
        daily_average=daily,
        due_at=due_at,
        amount_due=amount_due,
        matches_deducted=total == round_money(data.wallet.deducted, data.currency),
    )


def month_key(at: datetime, tz: str) -> str:
    """``YYYY-MM`` of an instant on the local clock (the history chart's bucket)."""
    local = utc(at).astimezone(as_zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


def usage_chart_svg(history: Sequence[tuple[str, Decimal]], unit: str, *, width: int = 360,
                    height: int = 120) -> str:  # fmt: skip
    """The last months' use as a small bar chart, inline SVG (no script, no external file)."""
    if not history:
        return ""
    top = max((e for _, e in history), default=ZERO) or Decimal(1)
    n = len(history)
    pad, base = 4, height - 18
    bar = (width - pad * (n + 1)) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="use per month ({unit})">'
    ]
    for i, (month, energy) in enumerate(history):
        h = int(Decimal(base - 12) * energy / top)
        x = pad + i * (bar + pad)
        parts.append(
            f'<rect x="{x:.1f}" y="{base - h}" width="{bar:.1f}" height="{h}" fill="#3b82f6">'
            f"<title>{month}: {energy} {unit}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 4}" font-size="9" '
            f'text-anchor="middle" fill="#555">{month[5:]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
