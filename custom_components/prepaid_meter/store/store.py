"""The store: one database, one worker thread, async calls from the event loop.

All database work runs on a single dedicated thread (like Home Assistant's
recorder), so SQLite sees one writer and the event loop never blocks on I/O.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, Concatenate

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from .models import SCHEMA_VERSION, Base, SchemaInfo


class StoreError(Exception):
    """The database could not be opened or written."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed ledger write survives a power cut, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL, with SQLite set up for durable, concurrent use."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def init_schema(engine: Engine) -> None:
    """Create the tables of a new database and record its schema version."""
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if session.scalar(select(SchemaInfo).where(SchemaInfo.id == 1)) is None:
            session.add(SchemaInfo(id=1, version=SCHEMA_VERSION))
            session.commit()


class Store:
    """A database and the one thread that talks to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="prepaid_meter_db"
        )
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._closed = False

    def _open(self) -> None:
        self._engine = make_engine(self.url)
        init_schema(self._engine)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    async def async_open(self) -> None:
        """Open the database (creating its tables) on the store's thread."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        except Exception as err:
            raise StoreError(str(err)) from err

    def _call[**P, R](
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        assert self._sessions is not None, "store not open"
        with self._sessions() as session:
            return fn(session, *args, **kwargs)

    async def run[**P, R](
        self, fn: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``fn(session, ...)`` on the store's thread in a fresh session."""
        call = functools.partial(self._call, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def async_close(self) -> None:
        """Close the database and stop the thread, waiting for work in progress."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        # The thread is idle now; joining it does not block the loop for long.
        self._executor.shutdown(wait=True)
