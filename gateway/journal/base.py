"""What every group of :class:`~gateway.journal.Journal` calls shares: the hop to the worker.

:class:`JournalBase` holds the journal's worker (:mod:`gateway.journal.worker`), its
:class:`~gateway.journal.store.Store` and what the commits keep in memory (today's figures, the
day in money, the payments changed last). Its ``_run`` family hands a function to the worker,
returns once the group holding it has committed, and turns SQLite's exceptions into the
journal's (:func:`translated`); :meth:`JournalBase._transition` is the one-state-change call
most transitions are. The groups of calls (``forwarding``, ``voids``, ``day_calls``,
``outbox_calls``) are mixins of this class; :mod:`gateway.journal.journal` puts them together.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import ParamSpec, TypeVar

from gateway.journal.errors import (
    InvalidRecord,
    JournalClosed,
    JournalError,
    SchemaError,
    StorageError,
)
from gateway.journal.figures import DayFigures, RecentPayments
from gateway.journal.money import DayMoney
from gateway.journal.records import Payment
from gateway.journal.sale_references import SaleReferences
from gateway.journal.states import PaymentState
from gateway.journal.store import Store
from gateway.journal.worker import GroupCommitWorker

__all__ = ["RECENT", "JournalBase", "check_code", "translated"]

P = ParamSpec("P")
T = TypeVar("T")

#: Payments whose last committed record ``Journal.last_committed`` keeps (busy lanes).
RECENT = 256

_SHORT = re.compile(r"[0-9A-Za-z]{1,12}")


def check_code(field: str, value: str | None) -> None:
    """An auth or response code: 1-12 letters or digits (None passes).

    Raises:
        InvalidRecord: Another shape.
    """
    if value is not None and not _SHORT.fullmatch(value):
        raise InvalidRecord(field, "expected 1-12 letters or digits")


class JournalBase:
    """The worker, the store and the commit notes behind every journal call.

    Args:
        worker: The thread owning the connection (group commit).
        store: The synchronous SQLite layer, run only on ``worker``.
        figures: Today's figures, kept by the commits (:mod:`gateway.journal.figures`).
        money: The day in money, kept by the commits (:mod:`gateway.journal.money`).
        references: The till references of recent sales, read from the file at open
            (:mod:`gateway.journal.sale_references`).
    """

    def __init__(
        self,
        worker: GroupCommitWorker,
        store: Store,
        figures: DayFigures,
        money: DayMoney,
        references: SaleReferences,
    ) -> None:
        self._worker = worker
        self._store: Store | None = store
        worker.conn = store.conn
        #: Today's figures, kept by the commits (:mod:`gateway.journal.figures`).
        self.figures = figures
        #: The day in money, kept by the commits (:mod:`gateway.journal.money`).
        self.money = money
        self._recent = RecentPayments(RECENT)
        #: The references of recent sales, as the file held them at open and noted since.
        self._references = references

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the journal's worker thread, in the next group; translate SQLite's
        errors. Returns once the group's COMMIT has returned."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return await translated(self._worker.submit(functools.partial(fn, *args, **kwargs)))

    async def _run_solo(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread alone, outside any transaction (checkpoints)."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return await translated(self._worker.submit(fn, solo=True))

    async def _run_noting(
        self, note: Callable[[T], None], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`_run`, and ``note`` the committed result on the loop, before the caller
        hears of it and even if the caller was cancelled meanwhile."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        call = functools.partial(fn, *args, **kwargs)
        return await translated(self._worker.submit(call, on_commit=note))

    async def _transition(
        self, payment_id: str, state: PaymentState, *, actor: str, reason: str = "",
        updates: Mapping[str, str | None] | None = None, vault_plaintext: bytes | None = None,
        requeues: bool = False,
    ) -> Payment:  # fmt: skip
        """One :meth:`Store.transition <gateway.journal.store.Store.transition>` in the next
        group, noted on commit (figures, money, the payments changed last).

        Args:
            payment_id, state, actor, reason, updates, vault_plaintext: As for
                ``Store.transition``.
            requeues: The change may re-queue the payment's record for head office (a void,
                a declined forward): the figures count the record waiting again.

        Returns:
            The payment as committed.
        """
        store = self._s()
        if not requeues:
            return await self._run_noting(
                self._note_change,
                store.transition,
                payment_id,
                state,
                actor=actor,
                reason=reason,
                updates=updates,
                vault_plaintext=vault_plaintext,
            )

        def change() -> tuple[Payment, int]:
            payment = store.transition(
                payment_id, state, actor=actor, reason=reason, updates=updates,
                vault_plaintext=vault_plaintext,
            )  # fmt: skip
            return payment, store.requeued

        payment, _ = await self._run_noting(self._note_requeued, change)
        return payment

    def _note_created(self, payment: Payment) -> None:
        self.figures.created(payment)
        self.money.note(payment, created=True)
        self._recent.remember(payment)

    def _note_change(self, payment: Payment) -> None:
        self.figures.committed(payment)
        self.money.note(payment)
        self._recent.remember(payment)

    def _note_passed(self, passed: PaymentState) -> Callable[[Payment], None]:
        """The note of a transition that passed through ``passed``
        (:class:`~gateway.journal.store.Via`): the step noted as the payment in that state,
        then the payment as committed."""

        def note(payment: Payment) -> None:
            self._note_change(dataclasses.replace(payment, state=passed))
            self._note_change(payment)

        return note

    def _note_changes(self, payments: tuple[Payment, ...]) -> None:
        """Several changes committed by one request (a step and the one it shares with)."""
        for payment in payments:
            self._note_change(payment)

    def _note_requeued(self, result: tuple[Payment, int]) -> None:
        """A change that re-queued the payment's record for head office (revision 2)."""
        payment, added = result
        self._note_change(payment)
        if added:
            self.figures.sent(-added)  # one more record waits to be sent

    def _s(self) -> Store:
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return self._store


async def translated(future: Awaitable[T]) -> T:
    """Await a worker result; SQLite's exceptions become the journal's (once, at the boundary)."""
    try:
        return await future
    except JournalError:
        raise
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) or "locked" in str(exc):
            raise StorageError(f"SQLite: {exc}") from exc
        if isinstance(exc, sqlite3.IntegrityError):
            raise StorageError(f"SQLite constraint: {exc}") from exc
        raise SchemaError(f"not a usable journal database: {exc}") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite: {exc}") from exc
