"""A small SQLite file of the sync part, used from the event loop through one thread of its own.

The stock store (:mod:`gateway.sync.stock_store`) and the acknowledgement ledger
(:mod:`gateway.sync.ledger`) each keep a file beside the journal. SQLite calls block, so each
file gets one worker thread: the connection is opened on it (WAL, ``synchronous=FULL``: a write
is durable when its call returns, sqlite.org/pragma.html#pragma_synchronous) and every call runs
there in turn. :class:`SqliteOnThread` is that shape written once: opening, the calls, SQLite's
errors turned into the part's own, the clock, and closing on the same thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, ParamSpec, Self, TypeVar

from gateway.sync.errors import SyncError

__all__ = ["SqliteOnThread"]

P = ParamSpec("P")
T = TypeVar("T")


class SqliteOnThread:
    """One SQLite connection on one worker thread (see the module docstring).

    Subclasses name their error (:attr:`error`), the one raised once closed
    (:attr:`closed_error`), what they are in messages (:attr:`what`), their thread
    (:attr:`thread`) and how their tables are made (:meth:`_initialise`).
    """

    error: ClassVar[type[SyncError]] = SyncError
    closed_error: ClassVar[type[SyncError]] = SyncError
    what: ClassVar[str] = "the file"
    thread: ClassVar[str] = "posgw-sqlite"

    def __init__(
        self,
        executor: concurrent.futures.ThreadPoolExecutor,
        conn: sqlite3.Connection,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._executor = executor
        self._conn: sqlite3.Connection | None = conn
        self._clock = clock

    @staticmethod
    def _initialise(conn: sqlite3.Connection) -> None:
        """Create or migrate the tables (on the file's thread, once opened)."""

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> Self:
        """Open (creating or migrating) the file at ``path`` (WAL, ``synchronous=FULL``).

        Raises:
            SyncError: :attr:`error`, when SQLite cannot open or initialise it.
        """
        executor, conn = await cls._connect(path, thread=cls.thread, init=cls._initialise)
        return cls(executor, conn, clock)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    @classmethod
    async def _connect(
        cls,
        path: str | os.PathLike[str],
        *,
        thread: str,
        init: Callable[[sqlite3.Connection], None],
    ) -> tuple[concurrent.futures.ThreadPoolExecutor, sqlite3.Connection]:
        """Open ``path`` on a new thread named ``thread``, WAL and ``synchronous=FULL``, then
        ``init`` (create or migrate the tables) on that thread.

        Raises:
            SyncError: :attr:`error`, when SQLite cannot open or initialise the file.
        """
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=thread)

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(Path(path), isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                init(conn)
            except sqlite3.Error:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise cls.error(f"cannot open {cls.what}: {exc}") from exc
        return executor, conn

    async def close(self) -> None:
        """Close the file on its thread, then the thread; a second call does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the file's thread.

        Raises:
            SyncError: :attr:`closed_error` once closed; :attr:`error` for SQLite's failures.
        """
        if self._conn is None:
            raise self.closed_error(f"{self.what} is closed")
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except sqlite3.Error as exc:
            raise self.error(f"SQLite: {exc}") from exc

    def _db(self) -> sqlite3.Connection:
        """The connection (call it on the file's thread only).

        Raises:
            SyncError: :attr:`closed_error` once closed.
        """
        if self._conn is None:
            raise self.closed_error(f"{self.what} is closed")
        return self._conn
