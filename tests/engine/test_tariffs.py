"""Tariff config: round trip through dicts, validation keys, time-of-use calendars."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from decimal import Decimal as D
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.prepaid_meter.engine.tariffs import (
    TariffError,
    TouPrice,
    tariff_from_dict,
    tariff_to_dict,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

FULL: dict[str, Any] = {
    "name": "Park industrial two-part",
    "commodity": "electricity",
    "unit": "kWh",
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "versions": [
        {
            "effective": "2024-01-01T00:00:00+08:00",
            "label": "2024",
            "energy": {
                "kind": "tou",
                "prices": {"sharp": "1.2", "peak": "0.9", "flat": "0.6", "valley": "0.3"},
                "calendar": {
                    "weekend": [5, 6],
                    "holidays": ["2024-10-01"],
                    "seasons": [
                        {
                            "name": "summer",
                            "from": "07-01",
                            "to": "09-30",
                            "schedules": {
                                "weekday": [
                                    ["00:00", "valley"],
                                    ["08:00", "peak"],
                                    ["11:00", "sharp"],
                                    ["13:00", "peak"],
                                    ["23:00", "valley"],
                                ],
                            },
                        },
                        {
                            "name": "rest",
                            "from": "10-01",
                            "to": "06-30",
                            "schedules": {
                                "weekday": [
                                    ["00:00", "valley"],
                                    ["08:00", "peak"],
                                    ["22:00", "flat"],
                                ],
                                "weekend": [["00:00", "valley"], ["08:00", "flat"]],
                                "holiday": [["00:00", "valley"]],
                            },
                        },
                    ],
                },
            },
            "tiers": {
                "basis": "year",
                "mode": "adder",
                "blocks": [
                    {"upto": "2880", "adder": "0"},
                    {"upto": "4800", "adder": "0.05"},
                    {"upto": None, "adder": "0.3"},
                ],
            },
            "demand": {"price": "44", "window_minutes": 30},
            "capacity": {"price": "24"},
            "standing": [{"name": "meter service", "amount": "0.5", "per": "day"}],
            "minimum": {"amount": "20"},
            "taxes": [{"name": "VAT", "percent": "13", "on": ["energy", "demand"]}],
        },
        {
            "effective": "2024-07-01T00:00:00+08:00",
            "energy": {"kind": "dynamic", "fallback": "0.5"},
        },
    ],
}


def test_round_trip_through_json() -> None:
    tariff = tariff_from_dict(FULL)
    stored = json.loads(json.dumps(tariff_to_dict(tariff)))
    assert tariff_from_dict(stored) == tariff
    assert tariff.versions[1].label == "2024-06-30T16:00:00+00:00"


def test_calendar_seasons_weekends_holidays() -> None:
    energy = tariff_from_dict(FULL).versions[0].energy
    assert isinstance(energy, TouPrice)
    cal = energy.calendar

    def period(y: int, m: int, d: int, hh: int) -> str:
        return cal.period_at(datetime(y, m, d, hh, tzinfo=SHANGHAI))

    assert period(2024, 8, 7, 12) == "sharp"  # summer Wednesday noon
    assert period(2024, 8, 10, 12) == "sharp"  # summer weekend falls back to weekday
    assert period(2024, 3, 6, 12) == "peak"
    assert period(2024, 3, 9, 12) == "flat"  # Saturday
    assert period(2024, 10, 1, 12) == "valley"  # holiday (a Tuesday)
    assert period(2024, 3, 6, 23) == "flat"
    assert cal.day_type(date(2024, 10, 1)) == "holiday"


def mutate(path: list[str | int], value: object) -> dict[str, Any]:
    data = copy.deepcopy(FULL)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


SEASONS = ["versions", 0, "energy", "calendar", "seasons"]


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (["currency"], "yuan", "invalid_currency"),
        (["timezone"], "Mars/Olympus", "unknown_timezone"),
        (["unit"], "m³", "invalid_choice"),
        (["versions"], [], "no_versions"),
        (["versions", 0, "energy", "prices", "peak"], 0.9, "invalid_number"),
        (["versions", 0, "energy", "prices", "peak"], "-1", "negative_number"),
        (["versions", 0, "energy", "prices", "peak"], "NaN", "invalid_number"),
        ([*SEASONS, 0, "schedules", "weekday", 0, 0], "01:00", "schedule_not_from_midnight"),
        ([*SEASONS, 0, "schedules", "weekday", 2, 0], "07:00", "switches_not_increasing"),
        ([*SEASONS, 0, "schedules", "weekday", 1, 1], "shoulder", "unknown_period"),
        (SEASONS, [], "no_seasons"),
        (SEASONS, "all", "invalid_section"),
        ([*SEASONS, 0, "to"], "10-05", "seasons_overlap"),
        ([*SEASONS, 0, "to"], "09-29", "season_gap"),
        ([*SEASONS, 0, "from"], "02-30", "invalid_month_day"),
        (["versions", 0, "tiers", "blocks", 1, "upto"], "100", "tiers_not_increasing"),
        (["versions", 0, "tiers", "blocks", 2, "upto"], "9000", "tier_limits"),
        (["versions", 0, "tiers", "basis"], "week", "invalid_choice"),
        (["versions", 0, "demand", "window_minutes"], 20, "invalid_demand_window"),
        (["versions", 0, "energy"], KeyError, "energy_missing"),
        (["versions", 1, "effective"], "2023-01-01T00:00:00+08:00", "versions_not_increasing"),
        (["versions", 1, "effective"], "2025-01-01T00:00:00", "naive_datetime"),
        (["versions", 0, "taxes", 0, "on", 0], "everything", "invalid_choice"),
    ],
)
def test_bad_config_raises_with_key(path: list[str | int], value: object, key: str) -> None:
    data = mutate(path, value)
    with pytest.raises(TariffError) as err:
        tariff_from_dict(data)
    assert err.value.key == key
    assert err.value.path


def test_tier_prices_replace_energy_price() -> None:
    data = {
        "name": "Beijing residential",
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "versions": [
            {
                "effective": "2012-07-01T00:00:00+08:00",
                "tiers": {
                    "mode": "price",
                    "blocks": [
                        {"upto": "240", "price": "0.4883"},
                        {"upto": "400", "price": "0.5383"},
                        {"upto": None, "price": "0.7883"},
                    ],
                },
            }
        ],
    }
    tariff = tariff_from_dict(data)
    assert tariff.versions[0].energy is None
    assert tariff_from_dict(tariff_to_dict(tariff)) == tariff
    data["versions"][0]["energy"] = {"kind": "flat", "price": "1"}  # type: ignore[index]
    with pytest.raises(TariffError) as err:
        tariff_from_dict(data)
    assert err.value.key == "tier_price_and_energy"


@pytest.mark.parametrize(
    ("commodity", "unit"),
    [("water", "m³"), ("gas", "m³"), ("heating", "GJ"), ("cooling", "kWh")],
)
def test_units_per_commodity(commodity: str, unit: str) -> None:
    data = {
        "name": commodity,
        "commodity": commodity,
        "unit": unit,
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "versions": [
            {"effective": "2024-01-01T00:00:00+01:00", "energy": {"kind": "flat", "price": "2.5"}}
        ],
    }
    assert tariff_from_dict(data).unit == unit
    data["versions"][0]["demand"] = {"price": "1"}  # type: ignore[index]
    if unit in ("kWh",):
        assert tariff_from_dict(data).demand_unit == "kW"
    else:
        with pytest.raises(TariffError) as err:
            tariff_from_dict(data)
        assert err.value.key == "demand_needs_energy_unit"


def test_no_version_before_first_effective() -> None:
    tariff = tariff_from_dict(FULL)
    with pytest.raises(TariffError) as err:
        tariff.version_at(datetime(2023, 1, 1, tzinfo=SHANGHAI))
    assert err.value.key == "no_version_in_force"
    assert tariff.versions[0].energy_taxes()[0].percent == D(13)
