"""Money: Decimal amounts, currency minor units, the one rounding rule, exact splits.

Rating keeps full precision; an amount is rounded only where it becomes a bill
line or a rounded posting, always through `round_money`. Splits use the
largest-remainder method so the parts add up to the total to the minor unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

# ISO 4217 minor units for the currencies that differ from the usual 2.
# (Source: ISO 4217 list of codes, column "minor unit".)
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3,
    "CLP": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}

ZERO = Decimal(0)

#: The documented default rounding rule: half-up to the currency's minor unit
#: (EU practice, Regulation 1103/97). Python's own default is half-even.
DEFAULT_ROUNDING = ROUND_HALF_UP


class MoneyError(ValueError):
    """An amount that is not a valid money value."""


def minor_unit(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (2 unless listed)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    """The smallest amount of the currency, e.g. Decimal('0.01') for CNY."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str, rounding: str = DEFAULT_ROUNDING) -> Decimal:
    """Round to the currency's minor unit with the site's rule (half-up by default)."""
    return amount.quantize(quantum(currency), rounding=rounding)


def parse_amount(value: object, currency: str, *, allow_zero: bool = False) -> Decimal:
    """Parse a user-given amount exactly; reject floats' noise, NaN, infinities, sub-minor digits.

    Accepts str, int and Decimal. A float is accepted only through its shortest
    repr (``12.3`` -> ``Decimal('12.3')``), which is what a person typed.
    """
    if isinstance(value, bool):
        raise MoneyError("not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(value) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation as err:
        raise MoneyError("not a number") from err
    if amount is None or not amount.is_finite():
        raise MoneyError("not a number")
    if amount.as_tuple().exponent < -minor_unit(currency):  # type: ignore[operator]
        raise MoneyError("more decimals than the currency has")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise MoneyError("not positive")
    return amount


def split_largest_remainder(
    total: Decimal,
    weights: Sequence[Decimal],
    currency: str,
) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` so the parts add up exactly.

    Every share is first rounded toward zero to the minor unit; the leftover
    minor units go one each to the largest remainders. Ties go to the earlier
    position, so the result is deterministic. All weights zero: equal split.
    """
    return split_to_step(total, weights, quantum(currency))


#: Splits in `split_to_step` run in this context so no weight product is rounded.
_SPLIT_CONTEXT = Context(prec=80, rounding=ROUND_HALF_UP)


def split_to_step(total: Decimal, weights: Sequence[Decimal], step: Decimal) -> list[Decimal]:
    """`split_largest_remainder` in steps of ``step`` (e.g. 0.001 kWh) instead of a currency.

    ``total`` is first rounded half-up to ``step``; every share is cut down to
    ``step``, the leftover steps go one each to the largest remainders, ties to
    the earlier position. All weights zero: equal split. The parts add up to
    the rounded total exactly and carry the sign of ``total``.
    """
    if not weights:
        raise MoneyError("nothing to split among")
    if any(w < 0 for w in weights):
        raise MoneyError("negative weight")
    if not step > 0:
        raise MoneyError("step must be positive")
    with localcontext(_SPLIT_CONTEXT):
        rounded = total.quantize(step, rounding=ROUND_HALF_UP)
        sign = -1 if rounded < 0 else 1
        units = int((abs(rounded) / step).to_integral_value())
        weight_sum = sum(weights, ZERO)
        if weight_sum == 0:
            weights = [Decimal(1)] * len(weights)
            weight_sum = Decimal(len(weights))
        exact = [Decimal(units) * w / weight_sum for w in weights]
        floors = [int(e.to_integral_value(rounding=ROUND_DOWN)) for e in exact]
        leftover = units - sum(floors)
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
        for i in order[:leftover]:
            floors[i] += 1
        return [(sign * Decimal(n) * step).quantize(step) for n in floors]
