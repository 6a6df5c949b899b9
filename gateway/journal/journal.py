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

import functools
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from gateway.journal.audit import AuditEntry, AuditNote
from gateway.journal.errors import (
    InvalidRecord,
    JournalClosed,
    JournalError,
    SchemaError,
    StorageError,
    VoidNotAllowed,
)
from gateway.journal.figures import DayFigures, RecentPayments
from gateway.journal.guard import check_masked_pan, check_value
from gateway.journal.money import DayMoney, MoneyReading, read_money
from gateway.journal.queries import (
    DayClose,
    DayPayment,
    OfflineExposure,
    auth_durations_ms,
    day_payments,
    forward_declined,
    insert_day_close,
    last_close,
    mark_day_published,
    offline_exposure,
    unpublished_days,
)
from gateway.journal.records import Event, OutboxItem, Payment, Recovery, TerminalTotals
from gateway.journal.schema import configure, migrate
from gateway.journal.states import PaymentKind, PaymentState, check_transition
from gateway.journal.store import Store
from gateway.journal.vault import VaultKey
from gateway.journal.worker import GroupCommitWorker

__all__ = ["Journal"]

P = ParamSpec("P")
T = TypeVar("T")
S = PaymentState

#: Payments whose last committed record :meth:`Journal.last_committed` keeps (busy lanes).
RECENT = 256

_CURRENCY = re.compile(r"[A-Z]{3}")
_AID = re.compile(r"[0-9A-F]{10,32}")
_SHORT = re.compile(r"[0-9A-Za-z]{1,12}")
#: Keys of a day record that the journal computes itself (times in ms).
_DAY_OWN_NUMBERS = frozenset({"opened_ms", "closed_ms"})


def _short(field: str, value: str | None) -> None:
    if value is not None and not _SHORT.fullmatch(value):
        raise InvalidRecord(field, "expected 1-12 letters or digits")


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


class Journal:
    """The crash-safe payment journal, outbox and store-and-forward vault.

    Open with :meth:`open`; the constructor is internal.
    """

    def __init__(
        self, worker: GroupCommitWorker, store: Store, figures: DayFigures, money: DayMoney
    ) -> None:
        self._worker = worker
        self._store: Store | None = store
        worker.conn = store.conn
        #: Today's figures, kept by the commits (:mod:`gateway.journal.figures`).
        self.figures = figures
        #: The day in money, kept by the commits (:mod:`gateway.journal.money`).
        self.money = money
        self._recent = RecentPayments(RECENT)

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
            store = await _translated(worker.submit(connect, solo=True))
            figures = DayFigures(clock)
            worker.conn = store.conn
            figures.load(
                await _translated(worker.submit(lambda: store.day_counts(figures.day_start_ms())))
            )
            money = DayMoney(clock)
            money.load(await _translated(worker.submit(lambda: read_money(store.conn,
                                                                          store.now_ms()))))
        except BaseException:
            worker.stop()
            raise
        return cls(worker, store, figures, money)

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
            await _translated(self._worker.submit(finish, solo=True))
        finally:
            self._worker.stop()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._store is None

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the journal's worker thread, in the next group; translate SQLite's
        errors. Returns once the group's COMMIT has returned."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return await _translated(self._worker.submit(functools.partial(fn, *args, **kwargs)))

    async def _run_solo(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread alone, outside any transaction (checkpoints)."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return await _translated(self._worker.submit(fn, solo=True))

    async def _run_noting(
        self, note: Callable[[T], None], fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """:meth:`_run`, and ``note`` the committed result on the loop, before the caller
        hears of it and even if the caller was cancelled meanwhile."""
        if self._store is None:
            raise JournalClosed("the journal is closed")
        call = functools.partial(fn, *args, **kwargs)
        return await _translated(self._worker.submit(call, on_commit=note))

    def _note_created(self, payment: Payment) -> None:
        self.figures.created(payment)
        self.money.note(payment, created=True)
        self._recent.remember(payment)

    def _note_change(self, payment: Payment) -> None:
        self.figures.committed(payment)
        self.money.note(payment)
        self._recent.remember(payment)

    def _note_requeued(self, result: tuple[Payment, int]) -> None:
        """A change that re-queued the payment's record for head office (revision 2)."""
        payment, added = result
        self._note_change(payment)
        if added:
            self.figures.sent(-added)  # one more record waits to be sent

    def last_committed(self, payment_id: str) -> Payment | None:
        """The payment as its last change committed by this journal left it, if it is among
        the :data:`RECENT` payments changed last (no I/O, no await: for status pages)."""
        return self._recent.get(payment_id)

    def commit_counts(self) -> tuple[int, int]:
        """(COMMITs made by groups, requests they held): their ratio is the group size."""
        return self._worker.commits, self._worker.committed_requests

    def _s(self) -> Store:
        if self._store is None:
            raise JournalClosed("the journal is closed")
        return self._store

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
                audit.append_to(store.conn, at_ms=store.now_ms(), subject=payment.id)
            return payment

        return await self._run_noting(self._note_created, create)

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
        that may take or has taken money (not cancelled, declined or reversed), if any."""
        store = self._s()
        since = store.now_ms() - round(within * 1000)
        return await self._run(store.find_sale, till_reference, since)

    async def find_refund(self, original_id: str, till_reference: str) -> Payment | None:
        """The refund of ``original_id`` journaled under ``till_reference``, if any."""
        return await self._run(self._s().find_refund, original_id, till_reference)

    async def on_lane(self, lane: str, states: Sequence[PaymentState]) -> list[Payment]:
        """The payments of ``lane`` in one of ``states``, oldest first (a smart terminal's
        recovery reads its lane's payments left in doubt)."""
        return await self._run(self._s().on_lane, lane, tuple(states))

    async def add_terminal_totals(
        self,
        *,
        lane: str,
        actor: str,
        ok: bool,
        transactions: int | None = None,
        debits: int | None = None,
        refunds: int | None = None,
        currency: str | None = None,
        message: str = "",
    ) -> TerminalTotals:
        """Record what a smart terminal reported at its end of day (kept for reconciliation).

        Raises:
            InvalidRecord: A negative count or amount. CardDataRejected: card data in the text.
        """
        for name, value in (("transactions", transactions), ("debits", debits),
                            ("refunds", refunds)):
            if value is not None and value < 0:
                raise InvalidRecord(name, "must not be negative")
        check_value("message", message)
        return await self._run(
            self._s().add_terminal_totals, lane=lane, actor=actor, ok=ok,
            transactions=transactions, debits=debits, refunds=refunds, currency=currency,
            message=message[:200],
        )

    async def terminal_totals(self, lane: str) -> list[TerminalTotals]:
        """A lane's recorded ends of day at its terminal, oldest first."""
        return await self._run(self._s().terminal_totals, lane)

    # -- transitions --------------------------------------------------------------------------

    async def card_read(
        self,
        payment_id: str,
        *,
        masked_pan: str | None,
        aid: str | None,
        actor: str,
        reason: str = "",
    ) -> Payment:
        """CREATED -> CARD_READ: the kernel has read the card (masked PAN and AID only).

        ``reason`` says how the AID was chosen when the card had several brands (EU IFR
        2015/751 art. 8: the cardholder's choice or the merchant's default).
        """
        check_masked_pan(masked_pan)
        if aid is not None and not _AID.fullmatch(aid):
            raise InvalidRecord("aid", "expected 5-16 bytes of upper-case hex")
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.CARD_READ,
            actor=actor,
            reason=reason,
            updates={"masked_pan": masked_pan, "aid": aid},
        )

    async def card_read_and_request_auth(
        self,
        payment_id: str,
        *,
        masked_pan: str | None,
        aid: str | None,
        actor: str,
        reason: str = "",
    ) -> Payment:
        """CREATED -> CARD_READ -> AUTH_REQUESTED in one request, hence one ``COMMIT``.

        Both events are written, as by :meth:`card_read` then :meth:`request_auth`; CARD_READ
        announces no side effect of its own, so sharing AUTH_REQUESTED's commit keeps the rule
        that a state is durable before what it announces (a crash leaves both or neither, and
        CREATED means nothing was sent). One ``fsync`` fewer per online payment.

        Returns:
            The payment in AUTH_REQUESTED; send the request with ``payment.idempotency_key``.
        """
        check_masked_pan(masked_pan)
        if aid is not None and not _AID.fullmatch(aid):
            raise InvalidRecord("aid", "expected 5-16 bytes of upper-case hex")
        store = self._s()

        def both() -> tuple[Payment, Payment]:
            read = store.transition(
                payment_id, S.CARD_READ, actor=actor, reason=reason,
                updates={"masked_pan": masked_pan, "aid": aid},
            )  # fmt: skip
            return read, store.transition(payment_id, S.AUTH_REQUESTED, actor=actor, new_key=True)

        _, asked = await self._run_noting(self._note_changes, both)
        return asked

    def _note_changes(self, payments: tuple[Payment, ...]) -> None:
        for payment in payments:
            self._note_change(payment)

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
        _short("auth_code", auth_code)
        _short("response_code", response_code)
        updates = {"auth_code": auth_code, "response_code": response_code}
        if masked_pan is not None:
            check_masked_pan(masked_pan)
            updates["masked_pan"] = masked_pan
        if aid is not None:
            if not _AID.fullmatch(aid):
                raise InvalidRecord("aid", "expected 5-16 bytes of upper-case hex")
            updates["aid"] = aid
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.APPROVED,
            actor=actor,
            reason=reason,
            updates=updates,
        )

    async def decline(
        self, payment_id: str, *, response_code: str | None = None, actor: str, reason: str = ""
    ) -> Payment:
        """-> DECLINED: the acquirer declined, or the card declined offline (AAC)."""
        _short("response_code", response_code)
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.DECLINED,
            actor=actor,
            reason=reason,
            updates={"response_code": response_code},
        )

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
        _short("response_code", response_code)
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.CARD_READ,
            actor=actor,
            reason=reason,
            updates={"response_code": response_code},
        )

    async def mark_unknown(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """AUTH_REQUESTED -> UNKNOWN: the answer never came (timeout, connection lost)."""
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.UNKNOWN, actor=actor, reason=reason
        )

    async def complete(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """APPROVED -> COMPLETED, writing the sale record to the outbox in the same transaction."""
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.COMPLETED, actor=actor, reason=reason
        )

    async def request_reversal(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """APPROVED or UNKNOWN -> REVERSAL_PENDING (before the reversal is sent)."""
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.REVERSAL_PENDING, actor=actor, reason=reason
        )

    async def confirm_reversal(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """REVERSAL_PENDING -> REVERSED: the acquirer acknowledged the reversal."""
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.REVERSED, actor=actor, reason=reason
        )

    async def cancel(self, payment_id: str, *, actor: str, reason: str) -> Payment:
        """CREATED or CARD_READ -> CANCELLED: nothing was sent to the acquirer."""
        return await self._run_noting(
            self._note_change,
            self._s().transition, payment_id, S.CANCELLED, actor=actor, reason=reason
        )

    async def store_for_forwarding(
        self,
        payment_id: str,
        *,
        request: bytes,
        response_code: str,
        actor: str,
        auth_code: str | None = None,
        reason: str = "",
    ) -> Payment:
        """Offline approval: -> STORED_FOR_FORWARDING with the sealed request and the outbox.

        Args:
            payment_id: A payment in CARD_READ or AUTH_REQUESTED.
            request: The authorisation request to forward later (PAN, ICC data): sealed with
                AES-GCM, never stored in clear.
            response_code: The Authorisation Response Code the terminal set (``Y1`` offline
                approved, ``Y3`` unable to go online; EMV 4.4 Book 4, Annex A6).
            actor: Recorded in the event.
            auth_code: An authorisation code, when the scheme's offline flow gives one.
            reason: Recorded in the event.

        Raises:
            VaultKeyError: No vault key configured. IllegalTransition.
        """
        _short("auth_code", auth_code)
        _short("response_code", response_code)
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.STORED_FOR_FORWARDING,
            actor=actor,
            reason=reason,
            updates={"auth_code": auth_code, "response_code": response_code},
            vault_plaintext=bytes(request),
        )

    async def forwarding_request(self, payment_id: str) -> bytes:
        """Decrypt the stored request of a payment awaiting forwarding.

        Raises:
            VaultKeyMismatch, VaultTampered, VaultKeyError, VaultError (nothing stored).
        """
        return await self._run(self._s().vault_open, payment_id)

    async def vault_rows_by_key(self) -> dict[str, int]:
        """Sealed rows per key id (hex): a previous key holding none can be retired."""
        return await self._run(self._s().vault_rows_by_key)

    async def confirm_forwarded(
        self, payment_id: str, *, actor: str, response_code: str | None = None, reason: str = ""
    ) -> Payment:
        """STORED_FOR_FORWARDING -> FORWARDED; the vault row is purged in the same transaction.

        The WAL is then checkpointed and truncated so the sealed pages leave it too.
        """
        _short("response_code", response_code)
        store = self._s()
        payment = await self._run_noting(
            self._note_change,
            store.transition,
            payment_id,
            S.FORWARDED,
            actor=actor,
            reason=reason,
            updates={"response_code": response_code},
        )
        await self._run_solo(store.checkpoint)  # a checkpoint runs outside any transaction
        return payment

    async def decline_forward(
        self, payment_id: str, *, actor: str, response_code: str | None, reason: str = ""
    ) -> Payment:
        """STORED_FOR_FORWARDING -> FORWARD_DECLINED: the acquirer declined the forwarded request.

        The vault row is purged in the same transaction (the request was sent; it is never sent
        again) and the WAL is truncated, as for :meth:`confirm_forwarded`. The payment stays in
        FORWARD_DECLINED, shown to the manager, until :meth:`acknowledge_declined_forward`.
        """
        _short("response_code", response_code)
        store = self._s()

        def declined() -> tuple[Payment, int]:
            payment = store.transition(
                payment_id,
                S.FORWARD_DECLINED,
                actor=actor,
                reason=reason,
                updates={"response_code": response_code},
            )
            return payment, store.requeued

        payment, _ = await self._run_noting(self._note_requeued, declined)
        await self._run_solo(store.checkpoint)  # a checkpoint runs outside any transaction
        return payment

    async def acknowledge_declined_forward(
        self, payment_id: str, *, actor: str, reason: str = ""
    ) -> Payment:
        """FORWARD_DECLINED -> DECLINE_ACKNOWLEDGED: a manager has seen it (``actor`` names who)."""
        return await self._run_noting(
            self._note_change,
            self._s().transition,
            payment_id,
            S.DECLINE_ACKNOWLEDGED,
            actor=actor,
            reason=reason,
        )

    async def offline_exposure(self) -> dict[str, OfflineExposure]:
        """Per currency: count, amount and oldest creation time of the sales held offline
        (STORED_FOR_FORWARDING, not yet forwarded): what the store-and-forward limits read."""
        return await self._run(offline_exposure, self._s().conn)

    async def store_for_forwarding_within(
        self,
        payment_id: str,
        *,
        request: bytes,
        response_code: str,
        actor: str,
        admit: Callable[[Payment, dict[str, OfflineExposure]], str | None],
        reason: str = "",
    ) -> tuple[Payment, str | None]:
        """Offline approval under the store-and-forward limits, decided atomically.

        ``admit`` (a pure policy, :func:`gateway.day.limits.decide_offline`) is given the
        payment and what is held offline now, and returns None (store it) or the refusal
        (then the payment is DECLINED with 8A ``Z3`` and the refusal as the reason). It runs on
        the journal's one worker thread between no other journal call, so two lanes can never
        both take the last place under a limit.

        Returns:
            The payment and the refusal (None when stored).
        """
        _short("response_code", response_code)
        store = self._s()
        sealed = bytes(request)

        def decide() -> tuple[Payment, str | None]:
            refusal = admit(store.get(payment_id), offline_exposure(store.conn))
            if refusal is not None:
                declined = store.transition(
                    payment_id,
                    S.DECLINED,
                    actor=actor,
                    reason=f"store-and-forward limit: {refusal}"[:200],
                    updates={"response_code": "Z3"},
                )
                return declined, refusal
            stored = store.transition(
                payment_id,
                S.STORED_FOR_FORWARDING,
                actor=actor,
                reason=reason,
                updates={"response_code": response_code},
                vault_plaintext=sealed,
            )
            return stored, None

        return await self._run_noting(lambda result: self._note_change(result[0]), decide)

    async def void_sale(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """A void: COMPLETED -> VOID_PENDING for a sale of the current day, before the reversal
        is sent (the caller then sends it under ``rev-<payment id>``; recovery resends it).

        Raises:
            VoidNotAllowed: ``not_voidable`` (a refund), ``day_closed`` (created before the last
                day close: refund it instead), ``refunded`` (it has refunds).
            IllegalTransition: Not COMPLETED. UnknownPayment.
        """
        check_value("reason", reason)
        store = self._s()

        def void() -> Payment:
            payment = store.get(payment_id)
            if payment.kind is not PaymentKind.SALE:
                raise VoidNotAllowed("not_voidable", f"payment {payment_id!r} is a refund")
            if payment.state is not S.COMPLETED:  # IllegalTransition, naming both states
                check_transition(payment_id, payment.state, S.VOID_PENDING)
            closed = last_close(store.conn)
            if closed is not None and payment.created_ms < closed.closed_ms:
                raise VoidNotAllowed(
                    "day_closed", f"payment {payment_id!r} belongs to a closed day: refund it"
                )
            refunds = store.conn.execute(
                "SELECT count(*) FROM payments WHERE refund_of = ? AND state NOT IN (?, ?, ?)",
                (payment_id, S.DECLINED.value, S.CANCELLED.value, S.REVERSED.value),
            ).fetchone()[0]
            if refunds:
                raise VoidNotAllowed("refunded", f"payment {payment_id!r} has refunds")
            return store.transition(
                payment_id, S.VOID_PENDING, actor=actor, reason=f"void: {reason}"[:200]
            )

        return await self._run_noting(self._note_change, void)

    async def confirm_void(self, payment_id: str, *, actor: str, reason: str = "") -> Payment:
        """VOID_PENDING -> VOIDED: the acquirer reversed the voided sale."""
        store = self._s()

        def voided() -> tuple[Payment, int]:
            payment = store.transition(payment_id, S.VOIDED, actor=actor, reason=reason)
            return payment, store.requeued

        payment, _ = await self._run_noting(self._note_requeued, voided)
        return payment

    async def last_day_close(self) -> DayClose | None:
        """The most recent day close (the current day started then), if any."""
        return await self._run(last_close, self._s().conn)

    async def day_payments(self, since_ms: int, until_ms: int) -> list[DayPayment]:
        """Payments created in ``[since_ms, until_ms)`` with their void/offline flags."""
        return await self._run(day_payments, self._s().conn, since_ms, until_ms)

    async def record_day_close(
        self,
        *,
        opened_ms: int,
        closed_ms: int,
        actor: str,
        differences: int,
        record: dict[str, Any],
    ) -> DayClose:
        """Journal a day close (see :func:`gateway.journal.queries.insert_day_close`).

        Raises:
            DayAlreadyClosed, CardDataRejected (the record is checked like every write).
        """
        check_value("actor", actor)
        # the journal's own millisecond times are not card data (a 13-digit number passes the
        # Luhn check one time in ten); everything else in the record is checked
        check_value("day", {k: v for k, v in record.items() if k not in _DAY_OWN_NUMBERS})
        store = self._s()

        def close() -> tuple[DayClose, MoneyReading]:
            day = insert_day_close(
                store.conn,
                opened_ms=opened_ms,
                closed_ms=closed_ms,
                closed_by=actor,
                differences=differences,
                record=record,
            )
            # the new day's money, read in the close's transaction (payments created since
            # ``closed_ms`` may already be journaled): the memory starts again from it
            return day, read_money(store.conn, store.now_ms())

        day, _ = await self._run_noting(lambda result: self.money.load(result[1]), close)
        return day

    async def unpublished_days(self) -> list[DayClose]:
        """Closed days head office has not acknowledged yet."""
        return await self._run(unpublished_days, self._s().conn)

    async def mark_day_published(self, day_id: int) -> None:
        """Head office acknowledged the day's record."""
        store = self._s()
        await self._run(mark_day_published, store.conn, day_id, store.now_ms())

    async def auth_durations_ms(self, since_ms: int) -> list[int]:
        """Authorisation times (ms) of the requests sent since ``since_ms``."""
        return await self._run(auth_durations_ms, self._s().conn, since_ms)

    async def forward_declined(self) -> list[DayPayment]:
        """The sales whose forward the bank declined, waiting for a manager."""
        return await self._run(forward_declined, self._s().conn)

    async def append_audit(self, note: AuditNote) -> AuditEntry:
        """Append one row to the audit chain through the journal's worker, in its next group
        (no transaction, no ``fsync`` of its own). The chain head is read and written inside
        the group's write transaction, so another writer of the file (a ``posgw`` command on
        its own connection) serialises with it and the chain cannot fork.

        Raises:
            CardDataRejected: A value looks like card data (nothing is written).
        """
        store = self._s()
        return await self._run(lambda: note.append_to(store.conn, at_ms=store.now_ms()))

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

    # -- outbox -----------------------------------------------------------------------------------

    async def claim_batch(self, n: int, *, lease: float = 60.0) -> list[OutboxItem]:
        """Claim up to ``n`` unsent sale records for ``lease`` seconds; each claim is an attempt."""
        if n <= 0 or lease <= 0:
            raise InvalidRecord("claim_batch", "n and lease must be positive")
        return await self._run(self._s().claim_batch, n, round(lease * 1000))

    async def outbox_after(self, position: int, *, limit: int = 200) -> list[OutboxItem]:
        """Outbox records with an id above ``position`` (sent or not), oldest first; read only.

        The local stock follows the settled sales and refunds with this (gateway.sync)."""
        return await self._run(self._s().outbox_after, position, limit)

    async def mark_sent(self, ids: Sequence[int]) -> int:
        """Head office acknowledged these records; returns how many were newly marked."""
        return await self._run_noting(self.figures.sent, self._s().mark_sent, list(ids))

    async def prune_outbox(self, *, older_than: float, batch: int = 500) -> int:
        """Delete outbox records head office acknowledged more than ``older_than`` s ago.

        Unsent records are never deleted, and the payments stay in the journal: the outbox is
        a delivery queue, not the record. Deletes in batches of ``batch`` (short write locks);
        ``secure_delete`` zeroes what is deleted. Returns how many records went.
        """
        if older_than <= 0 or batch <= 0:
            raise InvalidRecord("prune_outbox", "older_than and batch must be positive")
        store = self._s()
        before = store.now_ms() - round(older_than * 1000)
        total = 0
        while True:
            deleted = await self._run(store.prune_sent, before, batch)
            total += deleted
            if deleted < batch:
                return total

    async def mark_failed(self, ids: Sequence[int], *, error: str) -> None:
        """Sending failed: release the claims so the next batch retries them."""
        await self._run(self._s().mark_failed, list(ids), error)

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


async def _translated(future: Awaitable[T]) -> T:
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
