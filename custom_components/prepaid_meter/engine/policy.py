"""Supply policy: whether a tenant's relay should be closed, and why.

Cutting power is off until the landlord turns it on for the site (some
jurisdictions forbid disconnecting sub-metered tenants; see DOMAIN.md).
A manual lock wins over everything; a manual force-on wins over the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class SupplyState(StrEnum):
    """What the tenant's supply is doing, as shown on the supply-state sensor."""

    ON = "on"
    CUT_OFF = "cut_off"
    LOCKED = "locked"
    FORCED_ON = "forced_on"


@dataclass(frozen=True, kw_only=True)
class SupplyPolicy:
    """The site's (or tenant's) cut-off rule."""

    cut_off_enabled: bool = False
    #: Cut off when the balance is at or below this amount (0, or a negative credit limit).
    cut_off_at: Decimal = Decimal(0)


@dataclass(frozen=True, kw_only=True)
class SupplyDecision:
    """The relay state the policy wants, with the state to show."""

    relay_closed: bool
    state: SupplyState


def decide_supply(
    balance: Decimal,
    policy: SupplyPolicy,
    *,
    locked: bool = False,
    forced_on: bool = False,
) -> SupplyDecision:
    """Decide the relay from the balance, the site policy and the manual overrides."""
    if locked:
        return SupplyDecision(relay_closed=False, state=SupplyState.LOCKED)
    if forced_on:
        return SupplyDecision(relay_closed=True, state=SupplyState.FORCED_ON)
    if policy.cut_off_enabled and balance <= policy.cut_off_at:
        return SupplyDecision(relay_closed=False, state=SupplyState.CUT_OFF)
    return SupplyDecision(relay_closed=True, state=SupplyState.ON)
