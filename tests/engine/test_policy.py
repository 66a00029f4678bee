"""The supply policy decides the relay from balance, site rule and overrides."""

from decimal import Decimal

from custom_components.prepaid_meter.engine.policy import SupplyPolicy, SupplyState, decide_supply

ON = SupplyPolicy(cut_off_enabled=True)


def test_cut_off_is_off_until_the_landlord_turns_it_on() -> None:
    decision = decide_supply(Decimal("-50"), SupplyPolicy())
    assert decision.relay_closed
    assert decision.state is SupplyState.ON


def test_cut_off_at_zero_and_below() -> None:
    assert decide_supply(Decimal("0.01"), ON).relay_closed
    assert decide_supply(Decimal("0"), ON).state is SupplyState.CUT_OFF
    assert not decide_supply(Decimal("-0.000001"), ON).relay_closed


def test_credit_limit_moves_the_cut_off_point() -> None:
    policy = SupplyPolicy(cut_off_enabled=True, cut_off_at=Decimal("-20"))
    assert decide_supply(Decimal("-19.99"), policy).relay_closed
    assert not decide_supply(Decimal("-20"), policy).relay_closed


def test_lock_wins_over_credit_and_force_on_wins_over_debt() -> None:
    assert decide_supply(Decimal(100), ON, locked=True).state is SupplyState.LOCKED
    assert decide_supply(Decimal(100), ON, locked=True, forced_on=True).state is SupplyState.LOCKED
    forced = decide_supply(Decimal(-100), ON, forced_on=True)
    assert forced.relay_closed
    assert forced.state is SupplyState.FORCED_ON
