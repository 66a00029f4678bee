"""Persistence: SQLAlchemy 2.0 models, the ledger, and a one-thread store runner."""

from .store import Store, StoreError

__all__ = ["Store", "StoreError"]
