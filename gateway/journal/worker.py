"""The journal's one worker thread, and its group commit.

SQLite's ``COMMIT`` under ``synchronous=FULL`` waits for the disk (an ``fsync`` of the WAL), and
the worker is the only writer; with 16 lanes busy, most of its time was spent in ``COMMIT``
while the next lanes' transitions waited in line. Group commit: when the worker takes work, it
takes *every* request already queued and runs them in one transaction, one ``COMMIT``, one
``fsync`` (the "group commit" of database engines; SQLite documents that a transaction's cost
is its commit, sqlite.org/faq.html#q19).

What it keeps:

* **A caller is told "committed" only after its COMMIT returned.** Each request's result (or
  error) is held by the worker until the group's ``COMMIT`` has returned; only then are the
  callers' futures resolved, in one hop to their event loop. If the ``COMMIT`` fails, every
  request of the group gets that error: nothing of the group is in the file.
* **A failing request fails alone.** A group of several runs first as one plain transaction
  (no statement per request but the requests' own: the common case, where none fails). If a
  request raises, that whole transaction is rolled back (nothing of it was committed, nobody
  was answered) and the group runs again with each request inside its own ``SAVEPOINT``
  (sqlite.org/lang_savepoint.html); an error then rolls back to it, so the other requests'
  changes stay and commit. If SQLite itself ended the transaction (an I/O error or a full disk
  roll the whole transaction back, sqlite.org/lang_transaction.html, "response to errors within
  a transaction"), the requests already run in that group fail with that error and the
  remaining ones run in a new group.
* **Order.** Requests run in submission order; a *solo* request (opening, checkpoints, closing:
  work that may not run inside a transaction) ends the group before it and runs alone.

A request is a plain callable run on this thread; :class:`gateway.journal.store.Store` methods
open their own transaction when none is open (solo, or a direct call in a test) and join the
group's otherwise. A request in a group may run twice (its first run rolled back when another
request of the group failed), so what it does is in the database only: its result reaches its
caller once, from the run that committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["GroupCommitWorker"]

T = TypeVar("T")
log = logging.getLogger("gateway.journal")

#: The most requests one transaction takes (bounds the time the first caller waits).
MAX_GROUP = 256


@dataclass(slots=True)
class _Request:
    call: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    solo: bool
    on_commit: Callable[[Any], None] | None


#: (request, succeeded, result or exception)
_Outcome = tuple[_Request, bool, Any]


def _deliver(outcomes: list[_Outcome]) -> None:
    """On the caller's loop: note each committed result, then resolve the futures (a cancelled
    caller is not answered, but what it committed is still noted)."""
    for request, ok, value in outcomes:
        if ok and request.on_commit is not None:
            try:
                request.on_commit(value)
            except Exception:  # a bookkeeping defect never withholds an answer
                log.exception("journal: noting a commit failed")
        future = request.future
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class GroupCommitWorker:
    """One thread that owns the SQLite connection and commits queued writes in groups."""

    def __init__(self, name: str = "posgw-journal", *, max_group: int = MAX_GROUP) -> None:
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._max_group = max_group
        #: The connection groups run on; set (from the loop) once the opening request made it.
        self.conn: sqlite3.Connection | None = None
        #: Test seam: called on the worker thread just before a group's ``COMMIT``.
        self.before_commit: Callable[[sqlite3.Connection], None] | None = None
        #: Groups committed, and the requests they held (diagnostics and benchmarks).
        self.commits = 0
        self.committed_requests = 0
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        call: Callable[[], T],
        *,
        solo: bool = False,
        on_commit: Callable[[T], None] | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``call``; the future resolves once it is committed (or has failed).

        ``on_commit`` is called with the result on the caller's loop after the COMMIT, before
        the caller is answered, even if the caller was cancelled meanwhile.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Request(call, future, loop, solo, on_commit))
        return future

    def stop(self) -> None:
        """Let the thread end after the requests already queued (any thread; twice is fine)."""
        self._queue.put(None)

    # -- the worker thread ----------------------------------------------------------------------

    def _main(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_group:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            group: list[_Request] = []
            for request in batch:
                if request is None:
                    self._flush(group)
                    return
                if request.solo:
                    self._flush(group)
                    group = []
                    self._send([self._run_alone(request)], request.loop)
                else:
                    group.append(request)
            self._flush(group)

    def _send(self, outcomes: list[_Outcome], loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
            loop.call_soon_threadsafe(_deliver, outcomes)

    def _flush(self, group: list[_Request]) -> None:
        if not group:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for request, outcome in zip(group, self._run_group(group), strict=True):
            by_loop.setdefault(request.loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            self._send(outcomes, loop)

    @staticmethod
    def _run_alone(request: _Request) -> _Outcome:
        try:
            return (request, True, request.call())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, like an executor
            return (request, False, exc)

    def _run_group(self, group: list[_Request]) -> list[_Outcome]:
        """Run ``group`` in one transaction; an outcome per request, in order."""
        conn = self.conn
        if not group:
            return []
        if conn is None:  # not opened yet, or a failed open: each runs (and fails) alone
            return [self._run_alone(request) for request in group]
        if len(group) > 1:
            outcomes = self._run_trusting(conn, group)
            if outcomes is not None:
                return outcomes
        return self._run_careful(conn, group)

    def _run_trusting(
        self, conn: sqlite3.Connection, group: list[_Request]
    ) -> list[_Outcome] | None:
        """``group`` as one plain transaction, no savepoint per request; None when a request
        failed: the transaction is rolled back, and the group is to run the careful way."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [(request, False, exc) for request in group]
        outcomes: list[_Outcome] = []
        for request in group:
            try:
                outcomes.append((request, True, request.call()))
            except BaseException:  # noqa: BLE001 - the careful run hands it to its caller
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                return None
        return self._commit(conn, group, outcomes)

    def _run_careful(self, conn: sqlite3.Connection, group: list[_Request]) -> list[_Outcome]:
        """``group`` in one transaction, each request of several in its own savepoint."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            return [(request, False, exc) for request in group]
        several = len(group) > 1
        outcomes: list[_Outcome] = []
        for index, request in enumerate(group):
            try:
                if several:
                    conn.execute("SAVEPOINT request")
                value = request.call()
                if several:
                    conn.execute("RELEASE request")
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if not self._undo_request(conn, several):
                    # SQLite ended the whole transaction: what ran before is gone with it
                    lost = [(done, False, exc) for done, _, _ in outcomes]
                    lost.append((request, False, exc))
                    return lost + self._run_group(group[index + 1 :])
                outcomes.append((request, False, exc))
                continue
            outcomes.append((request, True, value))
        return self._commit(conn, group, outcomes)

    def _commit(
        self, conn: sqlite3.Connection, group: list[_Request], outcomes: list[_Outcome]
    ) -> list[_Outcome]:
        """COMMIT the group's transaction: ``outcomes`` as they are, or, if the COMMIT fails,
        that error for every request (nothing of the group is in the file)."""
        try:
            if self.before_commit is not None:
                self.before_commit(conn)
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - nothing of the group is committed
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return [(done, False, exc) for done, _, _ in outcomes]
        self.commits += 1
        self.committed_requests += len(group)
        return outcomes

    @staticmethod
    def _undo_request(conn: sqlite3.Connection, several: bool) -> bool:
        """Undo a failed request's changes; False when the group's transaction is gone."""
        if not conn.in_transaction:
            return False
        try:
            if several:
                conn.execute("ROLLBACK TO request")
                conn.execute("RELEASE request")
            else:
                conn.execute("ROLLBACK")
                return False
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return False
        return True
