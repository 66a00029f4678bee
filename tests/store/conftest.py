"""Store fixtures: a real database on each backend, opened like the integration opens it."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from custom_components.prepaid_meter.store import ledger
from custom_components.prepaid_meter.store.store import init_schema, make_engine

SITE = "site1"


@pytest.fixture
def engine(any_db_url: str) -> Generator[Engine]:
    """An engine on a fresh database with the current schema."""
    eng = make_engine(any_db_url)
    init_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions as the store makes them."""
    return sessionmaker(engine, expire_on_commit=False)


def assert_sound(session: Session, site: str = SITE) -> None:
    """Every entry sums to zero, and the cached balances equal the postings."""
    assert ledger.unbalanced_entries(session, site) == []
    assert ledger.journal_sum(session, site) == 0
    balances = ledger.wallet_balances(session, site)
    for tenant, amount in balances.items():
        assert ledger.balance(session, site, tenant) == amount
