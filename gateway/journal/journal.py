"""The journal's asyncio face: one SQLite connection on one dedicated worker thread.

``sqlite3`` blocks, so nothing of it runs on the event loop: every call hops to one worker
thread that owns the connection (ARCHITECTURE.md, "nothing blocking runs in an async def").
Calls run in submission order, and each returns only after the transaction holding it is
committed with ``synchronous=FULL``: an awaited transition is durable, so the caller may then
perform the side effect it announces (send the request, show the result). Calls queued at the
same moment (several lanes) share one transaction and one ``fsync``, each in its own savepoint
(group commit, :mod:`gateway.journal.worker`). A cancelled caller does not undo a transaction
already handed to the worker; it commits or rolls back whole.

Usage::

    async with Journal.open(path, vault_key=load_vault_key(credential="vault-key")) as journal:
        plan = await journal.recover()          # before the daemon says it is ready
        sale = await journal.create_sale(lane="1", amount=1250, currency="EUR", actor="lane[1]")
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.journal.audit import AuditEntry, AuditNote
from gateway.journal.base import check_code, translated
from gateway.journal.card_read import AID, card_read_updates
from gateway.journal.day_calls import DayCalls
from gateway.journal.errors import InvalidRecord
from gateway.journal.figures import DayFigures
from gateway.journal.forwarding import ForwardingCalls
from gateway.journal.guard import check_masked_pan, check_value
from gateway.journal.money import DayMoney, read_money
from gateway.journal.outbox_calls import OutboxCalls
from gateway.journal.records import Event, HostApproval, Payment, Recovery
from gateway.journal.sale_references import read_references
from gateway.journal.schema import configure, migrate
from gateway.journal.states import PaymentKind, PaymentState
from gateway.journal.store import Store, Via
from gateway.journal.vault import VaultKey
from gateway.journal.voids import VoidCalls
from gateway.journal.worker import GroupCommitWorker

__all__ = ["Journal"]

log = logging.getLogger("gateway.journal")

S = PaymentState

_CURRENCY = re.compile(r"[A-Z]{3}")


class _Opening:
    """``Journal.open(...)``: awaitable, and usable directly as ``async with``."""

    def __init__(self, coro: Awaitable[Journal]) -> None:
        self._coro = coro
        self._journal: Journal | None = None

    def __await__(self) -> Generator[Any, None, Journal]:
        return self._coro.__await__()

    async def __aenter__(self) -> Journal:
        self._journal = await self._coro
        return self._journal

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._journal is not None:
            await self._journal.close()


class Journal(ForwardingCalls, VoidCalls, DayCalls, OutboxCalls):
    """The crash-safe payment journal, outbox and store-and-forward vault.

    Open with :meth:`open`; the constructor is internal. Here: opening and closing, creating
    payments and the payment path's transitions; the other calls come from the mixins
    (:mod:`~gateway.journal.forwarding`, :mod:`~gateway.journal.voids`,
    :mod:`~gateway.journal.day_calls`, :mod:`~gateway.journal.outbox_calls`), all on
    :class:`~gateway.journal.base.JournalBase` (the worker hop).
    """

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        vault_key: VaultKey | None = None,
        previous_vault_keys: Sequence[VaultKey] = (),
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> _Opening:
        """Open (creating or migrating) the journal at ``path``.

        Args:
            path: The SQLite file; its directory must exist.
            vault_key: The store-and-forward key; without it the vault cannot be used.
            previous_vault_keys: Keys retired by a rotation: rows they sealed still open
                (new rows are always sealed under ``vault_key``).
            clock: Seconds since the epoch (injected for replays).
            random_bytes: Source of payment ids and idempotency keys (injected for replays).

        Returns:
            An awaitable that is also an async context manager closing the journal on exit.

        Raises:
            SchemaError: Not a journal, or a newer schema. StorageError: SQLite cannot open it.
        """
        return _Opening(
            cls._open(Path(path), vault_key, tuple(previous_vault_keys), clock, random_bytes)
        )

    @classmethod
    async def _open(
        cls,
        path: Path,
        vault_key: VaultKey | None,
        previous_vault_keys: tuple[VaultKey, ...],
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
    ) -> Journal:
        worker = GroupCommitWorker("posgw-journal")

        def connect() -> Store:
            conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
            try:
                configure(conn)
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            return Store(
                conn,
                clock=clock,
                random_bytes=random_bytes,
                vault_key=vault_key,
                previous_vault_keys=previous_vault_keys,
            )

        try:
            store = await translated(worker.submit(connect, solo=True))
            problem = await translated(worker.submit(store.sign_audit_head, solo=True))
            if problem:  # the chain was changed while the journal was closed: say it loudly
                log.error("audit chain: %s (posgw audit verify); its checkpoint is kept", problem)
            figures = DayFigures(clock)
            worker.conn = store.conn
            figures.load(
                await translated(worker.submit(lambda: store.day_counts(figures.day_start_ms())))
            )
            money = DayMoney(clock)
            money.load(await translated(worker.submit(lambda: read_money(store.conn,
                                                                          store.now_ms()))))
            references = await translated(
                worker.submit(lambda: read_references(store.conn, store.now_ms()))
            )
        except BaseException:
            worker.stop()
            raise
        return cls(worker, store, figures, money, references)

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Checkpoint and close; a second call does nothing."""
        store, self._store = self._store, None
        if store is None:
            return

        def finish() -> None:
            try:
                store.checkpoint()
            finally:
                store.conn.close()

        try:
            await translated(self._worker.submit(finish, solo=True))
        finally:
            self._worker.stop()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._store is None

    def last_committed(self, payment_id: str) -> Payment | None:
        """The payment as its last change committed by this journal left it, if it is among
        the :data:`~gateway.journal.base.RECENT` payments changed last (no I/O, no await: for
        status pages)."""
        return self._recent.get(payment_id)

    def commit_counts(self) -> tuple[int, int]:
        """(COMMITs made by groups, requests they held): their ratio is the group size."""
        return self._worker.commits, self._worker.committed_requests

    # -- creating payments ------------------------------------------------------------------

    async def create_sale(
        self,
        *,
        lane: str,
        amount: int,
        currency: str,
        actor: str,
        items: Sequence[Any] | None = None,
        till_reference: str | None = None,
        audit: AuditNote | None = None,
    ) -> Payment:
        """Journal a new sale in CREATED (before the reader is asked for a card).

        Args:
            lane: The lane (till) taking the payment.
            amount: Amount, authorised, in minor units (> 0).
            currency: ISO 4217 alphabetic code.
            actor: Who asks (``"lane[1]"``), recorded in the event.
            items: Optional JSON-serialisable basket, copied into the sale record.
            till_reference: The till's own reference (its receipt), kept for reconciliation.
            audit: The audit row recording who asked (its subject defaults to the new sale's
                id), appended in the same request: the sale and its row commit together or
                not at all (docs/security.md, "Audit rows").

        Raises:
            InvalidRecord, CardDataRejected.
        """
        _amount(amount)
        if not _CURRENCY.fullmatch(currency):
            raise InvalidRecord("currency", "expected an ISO 4217 alphabetic code")
        store = self._s()

        def create() -> Payment:
            payment = store.create(
                kind=PaymentKind.SALE,
                lane=lane,
                amount=amount,
                currency=currency,
                actor=actor,
                items=items,
                refund_of=None,
                till_reference=till_reference,
            )
            if audit is not None:  # inside the request's savepoint (or its own transaction)
                audit.append_to(store.conn, at_ms=store.now_ms(), subject=payment.id,
                                keys=store.audit_keys)  # fmt: skip
            return payment

        if till_reference is None:
            return await self._run_noting(self._note_created, create)
        check_value("till_reference", till_reference)  # nothing card-like is ever held
        # noted before the request is submitted: a look-up meanwhile reads the file, behind it
        self._references.note(till_reference, store.now_ms())
        try:
            return await self._run_noting(self._note_created, create)
        except asyncio.CancelledError:
            raise  # the request may still commit: the reference stays noted
        except BaseException:
            self._references.forget(till_reference)  # the request failed: nothing written
            raise

    async def create_refund(
        self,
        original_id: str,
        *,
        lane: str,
        amount: int,
        actor: str,
        items: Sequence[Any] | None = None,
        till_reference: str | None = None,
    ) -> Payment:
        """Journal a refund of a settled sale (same currency; refunds never exceed the sale).

        With ``till_reference``, one refund per (sale, reference), across restarts.

        Raises:
            RefundNotAllowed: No such sale, not settled, or the amount exceeds what is left.
            DuplicateReference: The sale already has a refund under ``till_reference``.
        """
        _amount(amount)
        return await self._run_noting(
            self._note_created,
            self._s().create,
            kind=PaymentKind.REFUND,
            lane=lane,
            amount=amount,
            currency="XXX",
            actor=actor,
            items=items,
            refund_of=original_id,
            till_reference=till_reference,
        )

    async def find_sale(self, till_reference: str, *, within: float) -> Payment | None:
        """The newest sale journaled under ``till_reference`` in the last ``within`` seconds
        that may take or has taken money (not cancelled, declined or reversed), if any.

        A reference no sale of that time carries is answered from memory, without a read
        queued behind the writes (:mod:`gateway.journal.sale_references`); others are read
        from the file."""
        store = self._s()
        now = store.now_ms()
        since = now - round(within * 1000)
        if not self._references.may_hold(till_reference, since, now):
            return None
        return await self._run(store.find_sale, till_reference, since)

    async def find_refund(self, original_id: str, till_reference: str) -> Payment | None:
        """The refund of ``original_id`` journaled under ``till_reference``, if any."""
        return await self._run(self._s().find_refund, original_id, till_reference)

    async def on_lane(self, lane: str, states: Sequence[PaymentState]) -> list[Payment]:
        """The payments of ``lane`` in one of ``states``, oldest first (a smart terminal's
        recovery reads its lane's payments left in doubt)."""
        return await self._run(self._s().on_lane, lane, tuple(states))

    # -- transitions --------------------------------------------------------------------------

    async def card_read(
        self,
        payment_id: str,
        *,
        masked_pan: str | None,
        aid: str | None,
        actor: str,
        reason: str = "",
        interface: str | None = None,
    ) -> Payment:
        """CREATED -> CARD_READ: the kernel has read the card (masked PAN and AID only).

        ``reason`` says how the AID was chosen when the card had several brands (EU IFR
        2015/751 art. 8: the cardholder's choice or the merchant's default). ``interface``:
        where the card was read (``contact``, ``contactless``, or ``terminal`` for a payment
        terminal's own reader), kept for the day's totals (schema 8); None leaves it unset.

        Raises:
            InvalidRecord: An AID or interface of the wrong shape.
        """
        updates = card_read_updates(masked_pan, aid, interface)
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.CARD_READ,
            actor=actor,
            reason=reason,
            updates=updates,
        )

    async def card_read_and_request_auth(
        self,
        payment_id: str,
        *,
        masked_pan: str | None,
        aid: str | None,
        actor: str,
        reason: str = "",
        interface: str | None = None,
    ) -> Payment:
        """CREATED -> CARD_READ -> AUTH_REQUESTED in one request, hence one ``COMMIT``.

        Both events are written, as by :meth:`card_read` then :meth:`request_auth`, and the
        row once (CARD_READ passed through, :class:`~gateway.journal.store.Via`); CARD_READ
        announces no side effect of its own, so sharing AUTH_REQUESTED's commit keeps the rule
        that a state is durable before what it announces (a crash leaves both or neither, and
        CREATED means nothing was sent). One ``fsync`` fewer per online payment.

        Returns:
            The payment in AUTH_REQUESTED; send the request with ``payment.idempotency_key``.

        Raises:
            InvalidRecord: An AID or interface of the wrong shape (nothing is written).
        """
        read = Via(S.CARD_READ, actor, reason, card_read_updates(masked_pan, aid, interface))
        return await self._run_noting(
            self._note_passed(S.CARD_READ),
            self._s().transition, payment_id, S.AUTH_REQUESTED, actor=actor, new_key=True,
            via=read,
        )  # fmt: skip

    async def request_auth(self, payment_id: str, *, actor: str) -> Payment:
        """CARD_READ -> AUTH_REQUESTED, storing a new idempotency key before anything is sent.

        Returns:
            The payment; send the request with ``payment.idempotency_key``.
        """
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.AUTH_REQUESTED, actor=actor, new_key=True
        )

    async def approve(
        self,
        payment_id: str,
        *,
        auth_code: str,
        response_code: str = "00",
        actor: str,
        reason: str = "",
        masked_pan: str | None = None,
        aid: str | None = None,
    ) -> Payment:
        """AUTH_REQUESTED or UNKNOWN -> APPROVED: the acquirer approved (answer or status).

        ``masked_pan`` and ``aid``: set by a smart terminal's approval (the card was in the
        terminal, so CARD_READ had none); None keeps what CARD_READ recorded.
        """
        check_code("auth_code", auth_code)
        check_code("response_code", response_code)
        updates = {"auth_code": auth_code, "response_code": response_code}
        if masked_pan is not None:
            check_masked_pan(masked_pan)
            updates["masked_pan"] = masked_pan
        if aid is not None:
            if not AID.fullmatch(aid):
                raise InvalidRecord("aid", "expected 5-16 bytes of upper-case hex")
            updates["aid"] = aid
        return await self._transition(
            payment_id, S.APPROVED, actor=actor, reason=reason, updates=updates
        )

    async def approve_then(
        self,
        payment_id: str,
        approval: HostApproval,
        then: PaymentState,
        *,
        actor: str,
        reason: str = "",
    ) -> Payment:
        """AUTH_REQUESTED or UNKNOWN -> APPROVED -> ``then`` in one request, hence one ``COMMIT``.

        ``then`` is COMPLETED (the card accepted the host's approval: the outbox row is written
        too) or REVERSAL_PENDING (it did not, or the lane failed after the answer). Both events
        are written, APPROVED's by ``approval.actor``, as by :meth:`approve` then
        :meth:`complete` or :meth:`request_reversal`, and the row once (APPROVED passed
        through, :class:`~gateway.journal.store.Via`). APPROVED announces no side effect of its
        own (the card's second GENERATE AC is the card's, EMV 4.4 Book 3, 10.9): a crash before
        this commit leaves AUTH_REQUESTED or UNKNOWN, which recovery resolves by a status query
        under the stored key, finds approved and reverses, as it reverses APPROVED. One
        ``fsync`` and one worker request fewer per online approval.

        Raises:
            InvalidRecord: ``then`` is neither COMPLETED nor REVERSAL_PENDING (nothing written).
        """
        if then not in (S.COMPLETED, S.REVERSAL_PENDING):
            raise InvalidRecord("then", "expected COMPLETED or REVERSAL_PENDING")
        check_code("auth_code", approval.auth_code)
        check_code("response_code", approval.response_code)
        updates = {"auth_code": approval.auth_code, "response_code": approval.response_code}
        return await self._run_noting(
            self._note_passed(S.APPROVED),
            self._s().transition, payment_id, then, actor=actor, reason=reason,
            via=Via(S.APPROVED, approval.actor, "", updates),
        )  # fmt: skip

    async def decline(
        self, payment_id: str, *, response_code: str | None = None, actor: str, reason: str = ""
    ) -> Payment:
        """-> DECLINED: the acquirer declined, or the card declined offline (AAC)."""
        check_code("response_code", response_code)
        return await self._transition(
            payment_id, S.DECLINED, actor=actor, reason=reason,
            updates={"response_code": response_code},
        )  # fmt: skip

    async def pin_retry(
        self,
        payment_id: str,
        *,
        response_code: str,
        actor: str,
        reason: str = "wrong PIN, try again",
    ) -> Payment:
        """AUTH_REQUESTED -> CARD_READ: the issuer said wrong PIN (55) and the card is asked
        again on the same payment (a new ARQC, a new online PIN, a new idempotency key at the
        next :meth:`request_auth`). Nothing was charged by the declined request."""
        check_code("response_code", response_code)
        return await self._transition(
            payment_id, S.CARD_READ, actor=actor, reason=reason,
            updates={"response_code": response_code},
        )  # fmt: skip

    async def mark_unknown(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """AUTH_REQUESTED -> UNKNOWN: the answer never came (timeout, connection lost)."""
        return await self._transition(payment_id, S.UNKNOWN, actor=actor, reason=reason)

    async def complete(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """APPROVED -> COMPLETED, writing the sale record to the outbox in the same transaction."""
        return await self._transition(payment_id, S.COMPLETED, actor=actor, reason=reason)

    async def request_reversal(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """APPROVED or UNKNOWN -> REVERSAL_PENDING (before the reversal is sent)."""
        return await self._transition(payment_id, S.REVERSAL_PENDING, actor=actor, reason=reason)

    async def confirm_reversal(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """REVERSAL_PENDING -> REVERSED: the acquirer acknowledged the reversal."""
        return await self._transition(payment_id, S.REVERSED, actor=actor, reason=reason)

    async def cancel(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """CREATED or CARD_READ -> CANCELLED: nothing was sent to the acquirer."""
        return await self._transition(payment_id, S.CANCELLED, actor=actor, reason=reason)

    async def append_audit(self, note: AuditNote) -> AuditEntry:
        """Append one row to the audit chain through the journal's worker, in its next group
        (no transaction, no ``fsync`` of its own). The chain head is read and written inside
        the group's write transaction, so another writer of the file (a ``posgw`` command on
        its own connection) serialises with it and the chain cannot fork.

        Raises:
            CardDataRejected: A value looks like card data (nothing is written).
        """
        store = self._s()
        return await self._run(
            lambda: note.append_to(store.conn, at_ms=store.now_ms(), keys=store.audit_keys)
        )

    def now_ms(self) -> int:
        """The journal's injected clock, ms since the epoch."""
        return self._s().now_ms()

    # -- reading --------------------------------------------------------------------------------

    async def get(self, payment_id: str) -> Payment:
        """The payment with this id as last committed (UnknownPayment if none).

        A payment changed recently by this journal is answered from memory, without waiting
        behind the queued writes: the record its last COMMIT returned, which is what the file
        holds (the journal is the file's only writer). Others are read from the file.
        """
        store = self._s()
        known = self._recent.get(payment_id)
        if known is not None:
            return known
        return await self._run(store.get, payment_id)

    async def events(self, payment_id: str) -> list[Event]:
        """The payment's event log, oldest first."""
        return await self._run(self._s().events, payment_id)

    # -- recovery ---------------------------------------------------------------------------------

    async def recover(self) -> Recovery:
        """What needs action after a restart; run it before the daemon says it is ready.

        Releases the previous run's outbox claims, and lists every payment in CREATED/CARD_READ
        (cancel), AUTH_REQUESTED/UNKNOWN (status query under the stored idempotency key),
        APPROVED/REVERSAL_PENDING (reverse) and STORED_FOR_FORWARDING (forward).
        """
        return await self._run(self._s().recover)


def _amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRecord("amount", "expected a positive integer of minor units")
    check_value("amount", amount)
