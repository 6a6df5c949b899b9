"""Finishing what a lane could not: restart recovery, unknown outcomes, reversals, forwarding.

ARCHITECTURE.md: "an answer that never came is resolved by status query or reversal, never by
guessing approved", and "restart recovery runs before the daemon says it is ready". The
:class:`Reconciler` takes a payment id and does what its journaled state asks
(:func:`gateway.journal.states.recovery_action`, docs/journal.md "Restart recovery"):

* CREATED / CARD_READ: nothing was sent, CANCELLED;
* AUTH_REQUESTED / UNKNOWN: status query under the stored idempotency key. Found approved: the
  sale was abandoned at the lane, so REVERSAL_PENDING then reversal; found declined: DECLINED;
  not found: nothing was charged, DECLINED;
* APPROVED / REVERSAL_PENDING: reversal (key ``rev-<payment id>``), then REVERSED; a void
  (VOID_PENDING) the same way, under the same key, then VOIDED;
* STORED_FOR_FORWARDING: the sealed request is sent under the payment's key (or
  ``fwd-<payment id>``), then FORWARDED, which purges the vault row; when the issuer declines it
  (or the host refuses it), FORWARD_DECLINED instead (vault purged too, the sale record sent
  again to head office as declined) and :attr:`Reconciler.on_forward_declined` is told.

A failure to reach the host leaves the payment queued; :meth:`Reconciler.run` retries every
``retry_interval`` seconds or when woken. Two tasks pass over the one queue, the forwarder
(:data:`FORWARDING`) and the resolver (:data:`RESOLVING`); each remembers the action a queued
payment showed when last read and passes over the other task's payments without reading them
again (a shop that went offline queues hundreds of forwards, and every new one woke the resolver
to read them all through the journal's worker, docs/performance.md). A payment queued again
(:meth:`Reconciler.add`) is read again; one whose state changed otherwise is read by the task
whose business it was, which notes its new action for the other task's next pass. Keys are
derived from the payment id, so a retry after a restart is a replay at the host, never a second
charge or a second reversal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection

from gateway.acquirer import (
    AcquirerClient,
    AcquirerError,
    AcquirerHealth,
    AcquirerRejected,
    ForwardingError,
    NotFound,
    Outcome,
    open_request,
)
from gateway.journal import Action, Journal, JournalError, Payment, PaymentState, Recovery
from gateway.journal.states import PaymentKind, recovery_action
from gateway.recovery.retry_queue import RetryQueue

__all__ = ["FORWARDING", "RESOLVING", "Reconciler"]

log = logging.getLogger("gateway.reconcile")

#: Forwards journaled between two truncations of the WAL within a pass (see ``pass_once``).
WAL_TRUNCATE_EVERY = 32
#: Seconds a forward's sealed pages may stay in the WAL after it is journaled (``pass_once``).
WAL_TRUNCATE_AFTER = 1.0

S = PaymentState
#: What the forwarder task does; the resolver task does the rest.
FORWARDING = frozenset({Action.FORWARD})
RESOLVING = frozenset({Action.CANCEL, Action.STATUS_QUERY, Action.REVERSE})


class Reconciler:
    """Resolves unfinished payments (see the module docstring)."""

    def __init__(
        self,
        *,
        journal: Journal,
        client: AcquirerClient,
        health: AcquirerHealth,
        retry_interval: float = 30.0,
    ) -> None:
        self._journal = journal
        self._client = client
        self._health = health
        self._queue = RetryQueue(retry_interval)
        #: The action each queued payment showed when last read (the module docstring).
        self._seen: dict[str, Action] = {}
        self.resolved = 0
        #: Forwards journaled since the WAL was last truncated (their sealed pages are in it),
        #: and when the first of them was (``time.monotonic``).
        self._untruncated = 0
        self._untruncated_since = 0.0
        #: Told of each forward the acquirer declined, after it is journaled (FORWARD_DECLINED):
        #: the daemon tells the till's event stream and wakes the head-office publisher.
        self.on_forward_declined: Callable[[Payment], None] = lambda _payment: None

    @property
    def pending(self) -> int:
        """Payments waiting to be resolved or forwarded."""
        return len(self._queue)

    def add(self, payment_id: str) -> None:
        """Queue a payment and wake the tasks (it is read again, whatever it showed before)."""
        self._seen.pop(payment_id, None)
        self._queue.add(payment_id)

    async def recover(self, recovery: Recovery, *, within: float) -> int:
        """Restart recovery, before ready: one bounded pass over everything ``recover()`` found.

        Returns:
            How many payments are still pending (the host could not be asked in time); they
            stay queued for :meth:`run`.
        """
        for item in recovery.pending:
            self._queue.add(item.payment.id, wake=False)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.pass_once(None)
        return self.pending

    async def pass_once(self, actions: Collection[Action] | None) -> None:
        """Try every queued payment whose action is in ``actions`` (None: all) once.

        The WAL is truncated after every :data:`WAL_TRUNCATE_EVERY` forwards, and at the end
        of a pass that comes :data:`WAL_TRUNCATE_AFTER` seconds or more after the first forward
        not yet truncated (:meth:`run` comes back for it): the sealed requests the forwards
        purged leave the WAL then. Not after each forward, nor after each pass: at load a pass
        ends every few forwards, and a truncation (a checkpoint of the whole WAL, 0.8 ms of
        CPU) after each cost about 0.1 ms per payment (docs/performance.md).
        """
        for payment_id in self._queue.snapshot():
            if self._untruncated >= WAL_TRUNCATE_EVERY:
                await self._truncate_wal()
            seen = self._seen.get(payment_id)
            if actions is not None and seen is not None and seen not in actions:
                continue  # the other task's, as last read: not read again for nothing
            try:
                sealed: bytes | None = None
                if actions is None or Action.FORWARD in actions:  # read with its request
                    payment, sealed = await self._journal.get_for_forwarding(payment_id)
                else:
                    payment = await self._journal.get(payment_id)
                action = recovery_action(payment.state)
                if action is None or payment.kind is PaymentKind.REFUND:  # refunds: RefundService
                    self._done(payment_id)
                    continue
                self._seen[payment_id] = action
                if actions is not None and action not in actions:
                    continue
                if await self._handle(payment, action, sealed):
                    self._done(payment_id)
                    self.resolved += 1
            except AcquirerError as exc:
                self._health.failure(exc)
                log.info("payment %s: acquirer not reachable yet: %s", payment_id, exc)
            except (JournalError, ForwardingError) as exc:
                log.error("payment %s: cannot resolve: %s", payment_id, exc)
        left = self.truncation_due_in()
        if left is not None and left <= 0:
            await self._truncate_wal()

    def truncation_due_in(self) -> float | None:
        """Seconds until the WAL is due for truncation (None: no forward waits for it)."""
        if not self._untruncated:
            return None
        return WAL_TRUNCATE_AFTER - (time.monotonic() - self._untruncated_since)

    async def _truncate_wal(self) -> None:
        try:
            await self._journal.truncate_wal()
        except JournalError as exc:  # tried again WAL_TRUNCATE_AFTER later, and at close
            log.error("the WAL could not be truncated after forwarding: %s", exc)
            self._untruncated_since = time.monotonic()
            return
        self._untruncated = 0

    def _done(self, payment_id: str) -> None:
        self._queue.discard(payment_id)
        self._seen.pop(payment_id, None)

    async def run(self, actions: Collection[Action]) -> None:
        """Retry the queued payments of ``actions`` until cancelled."""
        await self._queue.run(lambda: self.pass_once(actions), come_back=self.truncation_due_in)

    async def _handle(self, payment: Payment, action: Action, sealed: bytes | None) -> bool:
        if action is Action.CANCEL:
            await self._journal.cancel(payment.id, actor="recovery", reason="abandoned: restart")
            return True
        if action is Action.STATUS_QUERY:
            return await self._status(payment)
        if action is Action.REVERSE:
            return await self._reverse(payment)
        return await self._forward(payment, sealed)

    async def _status(self, payment: Payment) -> bool:
        if payment.state is S.AUTH_REQUESTED:
            payment = await self._journal.mark_unknown(
                payment.id, actor="recovery", reason="no answer journaled"
            )
        key = payment.idempotency_key
        if key is None:  # cannot happen: request_auth stores the key
            await self._journal.decline(payment.id, actor="recovery", reason="no key: not sent")
            return True
        resolution = await self._client.resolve_unknown(key)
        self._health.success()
        if resolution.outcome is Outcome.APPROVED:
            await self._journal.request_reversal(
                payment.id, actor="recovery", reason="approved by the host, abandoned at the lane"
            )
            return await self._reverse(await self._journal.get(payment.id))
        code = None
        if resolution.authorisation is not None:
            code = resolution.authorisation.response_code
        reason = "status query: declined" if code else "status query: not found, nothing charged"
        await self._journal.decline(
            payment.id,
            response_code=code if code and code.isalnum() else None,
            actor="recovery",
            reason=reason,
        )
        return True

    async def _reverse(self, payment: Payment) -> bool:
        if payment.state is S.APPROVED:
            payment = await self._journal.request_reversal(
                payment.id, actor="recovery", reason="approved, not completed at the lane"
            )
        confirm = (
            self._journal.confirm_void
            if payment.state is S.VOID_PENDING
            else self._journal.confirm_reversal
        )
        if payment.idempotency_key is None:
            await confirm(payment.id, actor="recovery", reason="never sent")
            return True
        reason = "reversed by the host"
        try:
            await self._client.reverse(
                original_idempotency_key=payment.idempotency_key,
                idempotency_key=f"rev-{payment.id}",
                reason="void" if payment.state is S.VOID_PENDING else "abandoned",
            )
        except NotFound:
            reason = "not found at the host: nothing charged"
        except AcquirerRejected as exc:
            if exc.code != "not_reversible":
                raise
            reason = "not reversible at the host (declined)"
        self._health.success()
        await confirm(payment.id, actor="acquirer", reason=reason)
        log.info("payment %s: %s", payment.id, reason)
        return True

    async def _forward(self, payment: Payment, sealed: bytes | None) -> bool:
        """Send a stored payment's request (``sealed``: read with the payment; None: read it now,
        and raise what keeps it from being read) and journal the acquirer's answer."""
        if sealed is None:
            sealed = await self._journal.forwarding_request(payment.id)
        request = open_request(sealed)
        key = payment.idempotency_key or f"fwd-{payment.id}"
        code: str | None
        try:
            answer = await self._client.authorise(request, idempotency_key=key)
            approved, code = answer.approved, answer.response_code
            reason = "forwarded" if approved else f"forward declined by the issuer ({code})"
        except AcquirerRejected as exc:
            approved, code, reason = False, "Z3", f"forward refused: {exc.code or exc.status}"
        self._health.success()
        code = code if code and code.isalnum() and len(code) <= 12 else None
        if approved:
            await self._journal.confirm_forwarded(
                payment.id, actor="forwarder", response_code=code, reason=reason,
                truncate_wal=False,
            )  # fmt: skip
        else:
            # Its own state, not FORWARDED: the goods left and no money will come. It stays
            # shown until a manager acknowledges it (docs/day.md, "Declined forwards").
            declined = await self._journal.decline_forward(
                payment.id, actor="forwarder", response_code=code, reason=reason,
                truncate_wal=False,
            )  # fmt: skip
            self._notify_declined(declined)
        if not self._untruncated:
            self._untruncated_since = time.monotonic()
        self._untruncated += 1
        log.info("payment %s: %s (%s)", payment.id, reason, code)
        return True

    def _notify_declined(self, payment: Payment) -> None:
        try:
            self.on_forward_declined(payment)
        except Exception:  # a listener's defect never stops the forwarder
            log.exception("payment %s: forward-declined listener failed", payment.id)
