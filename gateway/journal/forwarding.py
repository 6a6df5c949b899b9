"""Store and forward: offline approvals, their sealed requests, and what became of them.

A payment approved offline (the terminal's ``Y1``/``Y3``) goes to STORED_FOR_FORWARDING with its
authorisation request sealed in the vault (:mod:`gateway.journal.vault`, AES-GCM), under the
store-and-forward limits when :meth:`ForwardingCalls.store_for_forwarding_within` decides. The
forwarder later reads the request back, sends it, and journals the acquirer's answer: FORWARDED
or FORWARD_DECLINED, both purging the vault row, and the WAL is truncated so the sealed pages
leave the file too: at once, or (``truncate_wal=False``) by the caller's :meth:`truncate_wal`
after a run of forwards (docs/journal.md, "Store-and-forward vault").
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.journal.base import JournalBase, check_code
from gateway.journal.card_read import CardRead
from gateway.journal.errors import VaultError
from gateway.journal.queries import OfflineExposure, offline_exposure
from gateway.journal.records import Payment
from gateway.journal.states import PaymentState
from gateway.journal.store import Via

__all__ = ["ForwardingCalls"]

S = PaymentState


class ForwardingCalls(JournalBase):
    """The journal's store-and-forward calls (a mixin of :class:`~gateway.journal.Journal`)."""

    async def store_for_forwarding(
        self,
        payment_id: str,
        *,
        request: bytes,
        response_code: str,
        actor: str,
        auth_code: str | None = None,
        reason: str = "",
        read: CardRead | None = None,
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
            read: A payment still in CREATED: its CARD_READ step, passed through in the same
                request (one ``COMMIT``, the row written once; :mod:`gateway.journal.card_read`,
                :class:`~gateway.journal.store.Via`).

        Raises:
            VaultKeyError: No vault key configured (nothing is written). IllegalTransition.
        """
        check_code("auth_code", auth_code)
        check_code("response_code", response_code)
        updates = {"auth_code": auth_code, "response_code": response_code}
        if read is None:
            return await self._transition(
                payment_id, S.STORED_FOR_FORWARDING, actor=actor, reason=reason,
                updates=updates, vault_plaintext=bytes(request),
            )  # fmt: skip
        return await self._run_noting(
            self._note_passed(S.CARD_READ),
            self._s().transition, payment_id, S.STORED_FOR_FORWARDING, actor=actor,
            reason=reason, updates=updates, vault_plaintext=bytes(request),
            via=Via(S.CARD_READ, read.actor, read.reason, read.updates()),
        )  # fmt: skip

    async def get_for_forwarding(self, payment_id: str) -> tuple[Payment, bytes | None]:
        """The payment as last committed and, when it awaits forwarding, its stored request
        decrypted: the forwarder's two reads in one request to the worker, one after the other
        as before (docs/performance.md, "Session 7").

        The request is None when the payment does not await forwarding, and when its vault row
        cannot be opened: :meth:`forwarding_request` then raises what is wrong.

        Raises:
            UnknownPayment.
        """
        known = self._recent.get(payment_id)
        if known is not None and known.state is not S.STORED_FOR_FORWARDING:
            return known, None
        store = self._s()

        def both() -> tuple[Payment, bytes | None]:
            payment = store.get(payment_id)
            if payment.state is not S.STORED_FOR_FORWARDING:
                return payment, None
            try:
                return payment, store.vault_open(payment_id)
            except VaultError:  # said again, and raised, by the forwarder's own read
                return payment, None

        return await self._run(both)

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
        self,
        payment_id: str,
        *,
        actor: str,
        response_code: str | None = None,
        reason: str = "",
        truncate_wal: bool = True,
    ) -> Payment:
        """STORED_FOR_FORWARDING -> FORWARDED; the vault row is purged in the same transaction.

        The WAL is then checkpointed and truncated so the sealed pages leave it too, unless
        ``truncate_wal`` is false: the caller then calls :meth:`truncate_wal` after its run.
        """
        check_code("response_code", response_code)
        return await self._forward_ended(
            payment_id, S.FORWARDED, actor=actor, response_code=response_code, reason=reason,
            truncate_wal=truncate_wal,
        )  # fmt: skip

    async def truncate_wal(self) -> None:
        """Checkpoint the WAL into the file and truncate it: the pages of the forwards
        journaled with ``truncate_wal=False`` (their sealed requests, zeroed in the file by
        ``secure_delete``) leave the WAL."""
        await self._run_solo(self._s().checkpoint)  # a checkpoint runs outside any transaction

    async def decline_forward(
        self,
        payment_id: str,
        *,
        actor: str,
        response_code: str | None,
        reason: str = "",
        truncate_wal: bool = True,
    ) -> Payment:
        """STORED_FOR_FORWARDING -> FORWARD_DECLINED: the acquirer declined the forwarded request.

        The vault row is purged in the same transaction (the request was sent; it is never sent
        again) and the WAL is truncated, as for :meth:`confirm_forwarded`. The payment stays in
        FORWARD_DECLINED, shown to the manager, until :meth:`acknowledge_declined_forward`.
        """
        check_code("response_code", response_code)
        return await self._forward_ended(
            payment_id, S.FORWARD_DECLINED, actor=actor, response_code=response_code,
            reason=reason, requeues=True, truncate_wal=truncate_wal,
        )  # fmt: skip

    async def _forward_ended(
        self,
        payment_id: str,
        state: PaymentState,
        *,
        actor: str,
        response_code: str | None,
        reason: str,
        requeues: bool = False,
        truncate_wal: bool = True,
    ) -> Payment:
        """The forward's answer: ``state`` with the response code (the store purges the vault
        row in the same transaction), then the WAL checkpointed and truncated (when asked)."""
        payment = await self._transition(
            payment_id, state, actor=actor, reason=reason,
            updates={"response_code": response_code}, requeues=requeues,
        )  # fmt: skip
        if truncate_wal:
            await self.truncate_wal()
        return payment

    async def acknowledge_declined_forward(
        self, payment_id: str, *, actor: str, reason: str = ""
    ) -> Payment:
        """FORWARD_DECLINED -> DECLINE_ACKNOWLEDGED: a manager has seen it (``actor`` names who)."""
        return await self._transition(
            payment_id, S.DECLINE_ACKNOWLEDGED, actor=actor, reason=reason
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
        read: CardRead | None = None,
    ) -> tuple[Payment, str | None]:
        """Offline approval under the store-and-forward limits, decided atomically.

        ``admit`` (a pure policy, :func:`gateway.day.limits.decide_offline`) is given the
        payment and what is held offline now, and returns None (store it) or the refusal
        (then the payment is DECLINED with 8A ``Z3`` and the refusal as the reason). It runs on
        the journal's one worker thread between no other journal call, so two lanes can never
        both take the last place under a limit.

        ``read``: as for :meth:`store_for_forwarding` (CARD_READ first, in the same request).

        Returns:
            The payment and the refusal (None when stored).
        """
        check_code("response_code", response_code)
        read_updates = None if read is None else read.updates()
        store = self._s()
        sealed = bytes(request)

        def decide() -> tuple[tuple[Payment, ...], str | None]:
            """The payments changed (the last one is the answer) and the refusal."""
            changed: tuple[Payment, ...] = ()
            if read is not None:
                card = store.transition(
                    payment_id, S.CARD_READ, actor=read.actor, reason=read.reason,
                    updates=read_updates,
                )  # fmt: skip
                changed = (card,)
            else:
                card = store.get(payment_id)
            refusal = admit(card, offline_exposure(store.conn))
            if refusal is not None:
                declined = store.transition(
                    payment_id,
                    S.DECLINED,
                    actor=actor,
                    reason=f"store-and-forward limit: {refusal}"[:200],
                    updates={"response_code": "Z3"},
                )
                return (*changed, declined), refusal
            stored = store.transition(
                payment_id,
                S.STORED_FOR_FORWARDING,
                actor=actor,
                reason=reason,
                updates={"response_code": response_code},
                vault_plaintext=sealed,
            )
            return (*changed, stored), None

        changed, refusal = await self._run_noting(
            lambda result: self._note_changes(result[0]), decide
        )
        return changed[-1], refusal
