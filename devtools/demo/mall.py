"""The demo mall: 24 shops, three common-area meters, a water meter and the utility's master.

One description serves both sides of the demo: the simulator builds its meters
from it (device ids, load profiles) and the provisioning builds the site's
options from it (meters, tenants, tariffs, sharing rules, master meter). Every
number comes from :data:`SEED`, so two runs build the same mall.

Device ids on the simulator's bus:

- 1-24  shops (``m1``..``m24``, tenants ``t1``..``t24``)
- 25    elevators, 26 corridor lighting, 27 air conditioning (common areas)
- 28    the water main (no tenant; see ``WATER``)
- 30    the utility's master meter: the sum of everything above plus line loss
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

SEED = 2026
TIMEZONE = "Asia/Shanghai"
#: Shanghai keeps no daylight saving time: local time is UTC + 8 all year.
UTC_OFFSET_S = 8 * 3600
CURRENCY = "CNY"
#: The flat price the site falls back to where no tariff applies (options ``price``).
FLAT_PRICE = "1.00"
#: Line loss between the utility's meter and the sub-meters, as a fraction of their sum.
LINE_LOSS = 0.035
#: The shop that opens with almost no credit on a heavy load and is cut off first.
CUT_OFF_SHOP = 12
CUT_OFF_CREDIT = "0.20"
#: The shop on the two-part (energy + demand charge) tariff.
DEMAND_SHOP = 7


@dataclass(frozen=True)
class ShopKind:
    """A kind of shop: its load through a local day (fraction of its peak, per hour)."""

    label: str
    #: 24 hourly fractions of the peak load, local time 00:00..23:00.
    hours: tuple[float, ...]
    peak_kw: tuple[float, float]
    area_m2: tuple[int, int]
    #: Load on Saturday and Sunday relative to a weekday.
    weekend: float = 1.0


def _shape(night: float, plan: dict[tuple[int, int], float]) -> tuple[float, ...]:
    """24 hourly values: ``night`` outside the planned hours, ``plan`` maps (from, to) -> level."""
    hours = [night] * 24
    for (first, last), level in plan.items():
        for hour in range(first, last):
            hours[hour] = level
    return tuple(hours)


KINDS: dict[str, ShopKind] = {
    # Kitchens: two peaks (lunch and dinner), cold rooms overnight.
    "restaurant": ShopKind(
        "Restaurant",
        _shape(0.15, {(9, 11): 0.5, (11, 14): 1.0, (14, 17): 0.45, (17, 21): 0.95, (21, 23): 0.4}),
        (6.0, 12.0),
        (120, 260),
        1.15,
    ),
    "cafe": ShopKind(
        "Café",
        _shape(0.05, {(7, 10): 0.9, (10, 15): 0.7, (15, 19): 0.8, (19, 21): 0.4}),
        (2.5, 5.0),
        (40, 90),
        1.2,
    ),
    # Lighting and fitting-room heaters through opening hours, almost nothing at night.
    "clothing": ShopKind(
        "Fashion",
        _shape(0.03, {(10, 12): 0.7, (12, 21): 1.0, (21, 22): 0.5}),
        (3.0, 6.0),
        (90, 220),
        1.3,
    ),
    # Refrigeration runs all night: a high floor under the opening-hours load.
    "supermarket": ShopKind(
        "Supermarket",
        _shape(0.55, {(7, 9): 0.8, (9, 22): 1.0, (22, 23): 0.7}),
        (18.0, 30.0),
        (600, 900),
        1.1,
    ),
    "electronics": ShopKind(
        "Electronics",
        _shape(0.06, {(10, 22): 1.0}),
        (3.0, 7.0),
        (80, 180),
        1.25,
    ),
    "pharmacy": ShopKind(
        "Pharmacy",
        _shape(0.2, {(8, 22): 1.0}),
        (1.5, 3.0),
        (50, 110),
        0.9,
    ),
    "bakery": ShopKind(
        "Bakery",
        _shape(0.1, {(4, 7): 1.0, (7, 12): 0.7, (12, 19): 0.45}),
        (5.0, 9.0),
        (50, 100),
        1.1,
    ),
    "salon": ShopKind(
        "Hair salon",
        _shape(0.02, {(10, 13): 0.6, (13, 20): 1.0, (20, 21): 0.5}),
        (2.0, 4.0),
        (40, 80),
        1.35,
    ),
    "gym": ShopKind(
        "Gym",
        _shape(0.1, {(6, 9): 1.0, (9, 17): 0.5, (17, 22): 1.0}),
        (6.0, 10.0),
        (250, 450),
        0.8,
    ),
    "bookshop": ShopKind(
        "Bookshop",
        _shape(0.03, {(10, 21): 1.0}),
        (1.2, 2.5),
        (80, 150),
        1.2,
    ),
}

#: Which kind each shop is, in shop order (shop 12 is a restaurant with cold rooms).
LAYOUT = (
    "restaurant", "clothing", "cafe", "electronics", "pharmacy", "bakery",
    "supermarket", "clothing", "salon", "bookshop", "restaurant", "restaurant",
    "clothing", "cafe", "gym", "electronics", "restaurant", "clothing",
    "salon", "pharmacy", "bakery", "cafe", "clothing", "electronics",
)  # fmt: skip
#: Postpaid shops (billed each month, no wallet to keep in credit).
POSTPAID = frozenset({4, 9, 15, 18, 22})
#: Shops on the tiered tariff (small shops); the rest on time of use, shop 7 on two-part.
TIERED = frozenset({3, 5, 10, 14, 19, 20})


@dataclass(frozen=True)
class Shop:
    """One shop: its meter on the simulator and its account."""

    number: int
    kind: str
    peak_kw: float
    area_m2: int
    billing: str
    tariff: str

    @property
    def device_id(self) -> int:
        """The meter's Modbus device id."""
        return self.number

    @property
    def tenant(self) -> str:
        """The tenant account id."""
        return f"t{self.number}"

    @property
    def meter(self) -> str:
        """The meter id."""
        return f"m{self.number}"

    @property
    def name(self) -> str:
        """'Shop 07 Supermarket': the unit number first, as the landlord files them."""
        return f"Shop {self.number:02d} {KINDS[self.kind].label}"


def shops() -> list[Shop]:
    """The 24 shops, their sizes drawn from :data:`SEED`."""
    rng = random.Random(SEED)
    result = []
    for number, kind_id in enumerate(LAYOUT, start=1):
        kind = KINDS[kind_id]
        peak = round(rng.uniform(*kind.peak_kw), 1)
        area = rng.randint(*kind.area_m2)
        if number == CUT_OFF_SHOP:
            peak = 9.0  # a busy kitchen: it runs out of its opening credit in minutes
        if number == DEMAND_SHOP:
            tariff = "two_part"
        elif number in TIERED:
            tariff = "tiered"
        else:
            tariff = "tou"
        billing = "postpaid" if number in POSTPAID else "prepaid"
        result.append(Shop(number, kind_id, peak, area, billing, tariff))
    return result


@dataclass(frozen=True)
class Common:
    """A common-area meter and the rule that shares its cost."""

    meter: str
    name: str
    device_id: int
    #: Base and swing of its load, kW; the swing follows opening hours.
    base_kw: float
    open_kw: float


COMMONS = (
    Common("elevators", "Elevators", 25, 1.5, 9.0),
    Common("corridor_lighting", "Corridor lighting", 26, 1.0, 4.0),
    Common("air_conditioning", "Air conditioning", 27, 6.0, 38.0),
)
#: The water main: the simulator's counter register read in m³ (see README "Try it").
WATER = Common("water", "Water main", 28, 0.05, 1.8)
MASTER_DEVICE = 30
MASTER = "master"


def is_open(local_hour: float) -> float:
    """How far into the mall's opening hours (10:00-22:00) an hour is: 0 closed, 1 open."""
    return 1.0 if 10 <= local_hour < 22 else 0.0


def local_hour(at: float) -> float:
    """The local hour of day (0-24) of a simulated Unix time."""
    return ((at + UTC_OFFSET_S) % 86400) / 3600.0


def is_weekend(at: float) -> bool:
    """Whether a simulated Unix time falls on a local Saturday or Sunday (day 0 was a Thursday)."""
    day = int((at + UTC_OFFSET_S) // 86400)
    return (day + 3) % 7 >= 5


def noise(device_id: int, at: float) -> float:
    """A steady random factor around 1 per meter and quarter hour, the same on every run."""
    slot = int(at // 900)
    return 1.0 + 0.12 * (random.Random(f"{SEED}:{device_id}:{slot}").random() - 0.5)


def shop_load_kw(shop: Shop, at: float) -> float:
    """A shop's load at a simulated Unix time: its kind's day curve, weekend factor, noise."""
    kind = KINDS[shop.kind]
    hour = local_hour(at)
    low = int(hour)
    frac = hour - low
    # Straight line between the hourly values, so the load has no steps on the hour.
    level = kind.hours[low] * (1 - frac) + kind.hours[(low + 1) % 24] * frac
    if is_weekend(at):
        level *= kind.weekend
    if shop.number == CUT_OFF_SHOP:
        # Its cold rooms and stock pots keep it at 60 % of its peak day and night,
        # so it runs out of credit within minutes whatever the hour the demo starts.
        level = max(level, 0.6)
    return shop.peak_kw * level * noise(shop.device_id, at)


def common_load_kw(common: Common, at: float) -> float:
    """A common meter's load: its base, plus its opening-hours load following the day."""
    hour = local_hour(at)
    # Air conditioning follows the afternoon heat; lifts and lights the opening hours.
    heat = 0.6 + 0.4 * math.sin(math.pi * max(0.0, min(1.0, (hour - 8) / 14)))
    return (common.base_kw + common.open_kw * is_open(hour) * heat) * noise(common.device_id, at)


# --------------------------------------------------------------------------- site options


def _tou_energy() -> dict[str, Any]:
    """Commercial time of use in the style of Shanghai's general industrial and commercial rates."""
    return {
        "kind": "tou",
        "prices": {"sharp": "1.45", "peak": "1.20", "flat": "0.78", "valley": "0.36"},
        "calendar": {
            "weekend": [5, 6],
            "holidays": [],
            "seasons": [
                {
                    "name": "summer",
                    "from": "07-01",
                    "to": "09-30",
                    "schedules": {
                        "weekday": [
                            ["00:00", "valley"],
                            ["06:00", "flat"],
                            ["08:00", "peak"],
                            ["12:00", "sharp"],
                            ["14:00", "peak"],
                            ["15:00", "flat"],
                            ["18:00", "peak"],
                            ["21:00", "flat"],
                            ["22:00", "valley"],
                        ],
                    },
                },
                {
                    "name": "rest of the year",
                    "from": "10-01",
                    "to": "06-30",
                    "schedules": {
                        "weekday": [
                            ["00:00", "valley"],
                            ["06:00", "flat"],
                            ["08:00", "peak"],
                            ["11:00", "flat"],
                            ["18:00", "peak"],
                            ["21:00", "flat"],
                            ["22:00", "valley"],
                        ],
                        "weekend": [["00:00", "valley"], ["06:00", "flat"], ["22:00", "valley"]],
                    },
                },
            ],
        },
    }


def _tariff(name: str, version: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "commodity": "electricity",
        "unit": "kWh",
        "currency": CURRENCY,
        "timezone": TIMEZONE,
        "versions": [{"effective": "2026-01-01T00:00:00+08:00", "label": "2026", **version}],
    }


def tariffs() -> dict[str, dict[str, Any]]:
    """The mall's tariffs by id, in the engine's stored form (``tariff_from_dict``)."""
    return {
        "tou": _tariff(
            "Commercial time of use",
            {
                "energy": _tou_energy(),
                "standing": [{"name": "meter service", "amount": "15", "per": "month"}],
            },
        ),
        "tiered": _tariff(
            "Small shop tiers",
            {
                "energy": {"kind": "flat", "price": "0.85"},
                "tiers": {
                    "basis": "period",
                    "mode": "adder",
                    "blocks": [
                        {"upto": "600", "adder": "0"},
                        {"upto": "1500", "adder": "0.10"},
                        {"upto": None, "adder": "0.30"},
                    ],
                },
            },
        ),
        "two_part": _tariff(
            "Two-part: time of use plus maximum demand",
            {
                "energy": _tou_energy(),
                "demand": {"price": "42", "window_minutes": 15},
            },
        ),
    }


def opening_credit(shop: Shop) -> str:
    """A prepaid shop's first top-up: about six weeks of its use at 1 CNY/kWh, in hundreds."""
    if shop.number == CUT_OFF_SHOP:
        return CUT_OFF_CREDIT
    kind = KINDS[shop.kind]
    average = shop.peak_kw * sum(kind.hours) / 24
    return str(max(300, int(round(average * 24 * 42, -2))))


def _participants(with_area: bool = False) -> list[dict[str, Any]]:
    return [
        {"tenant": s.tenant, **({"area": str(s.area_m2)} if with_area else {})} for s in shops()
    ]


def sharing_rules() -> list[dict[str, Any]]:
    """Lifts by floor area, corridor lights equally, air conditioning by use, loss by use."""
    return [
        {
            "name": "elevators",
            "kind": "common",
            "method": "area",
            "meters": ["elevators"],
            "cadence": "daily",
            "participants": _participants(with_area=True),
        },
        {
            "name": "corridor lighting",
            "kind": "common",
            "method": "equal",
            "meters": ["corridor_lighting"],
            "cadence": "daily",
            "participants": _participants(),
        },
        {
            "name": "air conditioning",
            "kind": "common",
            "method": "consumption",
            "meters": ["air_conditioning"],
            "cadence": "daily",
            # The landlord carries a fifth of the cooling (the mall's own offices).
            "owner_percent": "20",
            "participants": _participants(),
        },
        {
            "name": "line loss",
            "kind": "loss",
            "method": "consumption",
            "cadence": "daily",
            "evasion_percent": "8",
            "participants": _participants(),
        },
    ]


def water_profile() -> dict[str, Any]:
    """The water main's register map: the simulator's counter, read as m³, no relay.

    The integration keeps a profile's ``utility`` but does not bill water yet:
    the meter is read, stored and shown (as a counter under an energy sensor's
    name), and belongs to no tenant and no sharing rule.
    """
    return {
        "name": "Simulated water main",
        "manufacturer": "prepaid_meter",
        "model": "Water meter (simulated)",
        "utility": "water",
        "verified": True,
        "read_function": "holding",
        "registers": {
            "energy_import": {
                "address": 0,
                "type": "uint32",
                "scale": "0.01",
                "counter_max": 4294967295,
            },
        },
    }


def site_options(scan_interval: int, fast: bool = False) -> dict[str, Any]:
    """The site's options: the whole mall, in the shapes the integration reads.

    ``fast`` (``scripts/demo --fast``): the demand shop is on plain time of use.
    Sped-up meters put a simulated month into a few real minutes, and a demand
    charge is priced on the highest real 15-minute average load: a month's
    energy in a quarter of an hour would bill the supermarket some 500,000 CNY.
    """
    all_tariffs = tariffs()
    meters: list[dict[str, Any]] = [
        {"id": s.meter, "name": s.name, "device_id": s.device_id, "profile": "simulator"}
        for s in shops()
    ]
    meters += [
        {"id": c.meter, "name": c.name, "device_id": c.device_id, "profile": "simulator"}
        for c in COMMONS
    ]
    meters.append(
        {
            "id": WATER.meter,
            "name": WATER.name,
            "device_id": WATER.device_id,
            "profile": "custom",
            "custom_profile": water_profile(),
        }
    )
    meters.append(
        {"id": MASTER, "name": "Utility master", "device_id": MASTER_DEVICE, "profile": "simulator"}
    )
    tenants: list[dict[str, Any]] = []
    for s in shops():
        tenant: dict[str, Any] = {
            "id": s.tenant,
            "name": s.name,
            "meters": [s.meter],
            "billing": s.billing,
            "tariff": "tou" if fast and s.tariff == "two_part" else s.tariff,
        }
        if s.billing == "postpaid":
            # A postpaid account runs below zero between bills and is never cut off
            # or warned for its balance; it is cut off while a bill is overdue.
            tenant["policy"] = {"cut_off_when_overdue": True}
        tenants.append(tenant)
    return {
        "price": FLAT_PRICE,
        "cut_off_enabled": True,
        "scan_interval": scan_interval,
        # Fast mode's simulated hours pass in real seconds: every poll is stored,
        # so its short "months" have their interval data.
        "interval_minutes": 0 if fast else 15,
        "warning_levels": "500, 100",
        "grace_minutes": 0,
        "emergency_credit": "20",
        "billing_day": 1,
        "due_days": 14,
        "meters": meters,
        "tenants": tenants,
        "tariffs": all_tariffs,
        # The site's default tariff, by id: it prices the common meters and the
        # master for sharing, and any tenant without a ``tariff`` of its own.
        "tariff": "tou",
        "master_meter": MASTER,
        "sharing_rules": sharing_rules(),
    }
