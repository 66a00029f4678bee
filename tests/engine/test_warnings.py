"""Warning levels fire once per crossing and re-arm after a top-up; days-left forecast."""

from datetime import timedelta
from decimal import Decimal

import pytest

from custom_components.prepaid_meter.engine.warnings import (
    WarningLevels,
    days_left,
    evaluate_warnings,
    parse_levels,
)

LEVELS = WarningLevels(balances=(Decimal(100), Decimal(50)), days_left=Decimal(3))


def run(balances: list[str], *, days: Decimal | None = None) -> list[list[str]]:
    fired: frozenset[str] = frozenset()
    out = []
    previous = None
    for text in balances:
        balance = Decimal(text)
        credited = previous is not None and balance > previous
        crossings, fired = evaluate_warnings(balance, days, LEVELS, fired, credited=credited)
        out.append([f"{c.kind}:{c.level}" for c in crossings])
        previous = balance
    return out


def test_each_level_fires_once_per_crossing() -> None:
    assert run(["120", "99", "98", "60", "50", "10", "-5"]) == [
        [],
        ["balance:100"],
        [],
        [],
        ["balance:50"],
        [],
        [],
    ]


def test_a_top_up_re_arms_the_levels_it_lifts_the_balance_over() -> None:
    assert run(["40", "80", "45", "200", "90"]) == [
        ["balance:50"],
        [],
        ["balance:50"],
        [],
        ["balance:100"],
    ]


def test_a_drop_over_several_levels_fires_the_most_severe_once() -> None:
    assert run(["150", "20", "10"]) == [[], ["balance:50"], []]


def test_days_left_fires_once_and_re_arms_only_on_a_credit() -> None:
    fired: frozenset[str] = frozenset()
    seq = [(Decimal(500), Decimal(2)), (Decimal(490), Decimal(4)), (Decimal(480), Decimal(2))]
    kinds = []
    for balance, days in seq:
        crossings, fired = evaluate_warnings(balance, days, LEVELS, fired)
        kinds.append([c.kind for c in crossings])
    assert kinds == [["days_left"], [], []]  # varying load alone does not re-fire
    crossings, fired = evaluate_warnings(Decimal(900), Decimal(9), LEVELS, fired, credited=True)
    assert crossings == []
    crossings, fired = evaluate_warnings(Decimal(300), Decimal(2), LEVELS, fired)
    assert [c.kind for c in crossings] == ["days_left"]


def test_forecast_from_recent_cost() -> None:
    week = timedelta(days=7)
    assert days_left(Decimal(100), Decimal(0), Decimal(70), week) == Decimal("10.0")
    assert days_left(Decimal(100), Decimal(-20), Decimal(70), week) == Decimal("12.0")
    assert days_left(Decimal(10), Decimal(0), Decimal(30), timedelta(days=1)) == Decimal("0.3")
    assert days_left(Decimal(-1), Decimal(0), Decimal(30), week) == Decimal(0)
    assert days_left(Decimal(100), Decimal(0), Decimal(0), week) is None


def test_parse_levels() -> None:
    assert parse_levels("50, 100,100.00") == (Decimal(100), Decimal(50))
    assert parse_levels("") == ()
    for bad in ("ten", "NaN", "1,,x"):
        with pytest.raises(ValueError, match=r"\w"):
            parse_levels(bad)
