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

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from .migrations import upgrade


class StoreError(Exception):
    """The database could not be opened or written."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off: _sqlite_begin does it.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed ledger write survives a power cut, not only a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Bill runs read a month of readings per meter: map the file instead of a
    # read() system call per page, and keep more pages (64 MiB) per connection.
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Take the write lock when a transaction starts, not at its first write: a
    # transaction that read and then wants to write would otherwise fail with
    # "database is locked" when another connection (a second process, a
    # payment racing a poll) wrote in between, instead of waiting its turn.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for the URL, with SQLite set up for durable, concurrent use."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def init_schema(engine: Engine) -> int:
    """Create or upgrade the schema in place; return the version found (0 for a new one)."""
    with engine.begin() as conn:
        return upgrade(conn)


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
