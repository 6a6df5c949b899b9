"""Referenced refunds from the till: journal first, then the acquirer, never refunded twice.

A referenced refund gives back part or all of a settled sale without the card: the refund names
the original sale and the acquirer refunds that sale's authorisation (docs/acquirer-api.md,
``POST /v1/refunds``). The flow follows ARCHITECTURE.md ("every state change is committed
before the side effect it announces"; "an answer that never came is resolved ... never by
guessing")::

    create_refund (CREATED, checks: settled sale, same currency, never above the sale)
      -> CARD_READ (the sale's masked PAN and AID: the card is not present again)
      -> AUTH_REQUESTED (committed)      -> status query of the sale's key (its authorisation id)
                                         -> POST /v1/refunds, key ``rfnd-<refund id>``
      -> APPROVED -> COMPLETED (refund record in the outbox)   the host refunded
      -> DECLINED                                             the host refused (4xx, 404)
      -> UNKNOWN                                              no answer: time-out, 5xx, refused
                                                              connection; re-sent later

The key derives from the refund's journal id (``rfnd-<id>``): a re-send, even after a restart,
is a replay at the host, never a second refund. :meth:`RefundService.run` re-sends what is left
in AUTH_REQUESTED or UNKNOWN; the reconciler gets the sales only (:func:`sales_only`).

The till's reference is journaled with the refund, one refund per (sale, reference) (a unique
index, schema version 3): the same reference asked again, even after a restart, answers the
refund journaled under it.

A sale taken on a smart terminal (TPE) lane was never seen by our acquirer: its refund goes to
that terminal (:class:`TerminalRefunder`, wired by the daemon), with the same journal steps;
one left in doubt is settled from the terminal's last transaction by the lane, never re-sent
from here (a second refund at a terminal would be a second credit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.acquirer import (
    AcquirerClient,
    AcquirerError,
    AcquirerHealth,
    AcquirerRejected,
    IdempotencyConflict,
    NotFound,
)
from gateway.errors import GatewayError
from gateway.journal import (
    Journal,
    JournalError,
    Payment,
    PaymentKind,
    PaymentState,
    Recovery,
    RefundNotAllowed,
    UnknownPayment,
)
from gateway.recovery.retry_queue import RetryQueue
from terminal.currency import CurrencyError, currency

__all__ = [
    "InvalidRefund",
    "RefundError",
    "RefundRejected",
    "RefundResult",
    "RefundService",
    "SaleNotFound",
    "TerminalRefunder",
    "refund_key",
    "sales_only",
]

log = logging.getLogger("gateway.recovery.refunds")

S = PaymentState
#: Refund states that still need the host (re-send under the same key).
_SEND_AGAIN = frozenset({S.AUTH_REQUESTED, S.UNKNOWN})
#: Refund states the host has answered (the till gets 201).
_ANSWERED = frozenset({S.COMPLETED, S.DECLINED})
_ACTOR = "till.refunds"


class RefundError(GatewayError):
    """Base of the refund service's errors (messages carry ids and amounts, no card data)."""


class SaleNotFound(RefundError):
    """No payment with that id (the till API answers 404)."""


class InvalidRefund(RefundError):
    """A field of the refund request is wrong (400).

    Attributes:
        field: The request field (``currency``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RefundRejected(RefundError):
    """The refund cannot be made (409).

    Attributes:
        code: ``not_refundable`` (sale not settled, not a sale, not yet forwarded, amount above
            what remains) or ``reference_conflict`` (the reference names another amount).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class RefundResult:
    """A refund as the till sees it.

    Attributes:
        payment: The refund's journal row (kind ``refund``, ``refund_of`` the sale).
        reference: The till's reference.
        replayed: The reference was seen before: this is the existing refund, not a new one.
    """

    payment: Payment
    reference: str
    replayed: bool = False

    @property
    def answered(self) -> bool:
        """The acquirer answered (COMPLETED or DECLINED); otherwise it is still pending."""
        return self.payment.state in _ANSWERED


def refund_key(refund_id: str) -> str:
    """The idempotency key of a refund's ``POST /v1/refunds``, derived from its journal id.

    docs/acquirer-api.md, Idempotency: the key survives a restart, so a re-send is a replay.
    """
    return f"rfnd-{refund_id}"


def sales_only(recovery: Recovery) -> Recovery:
    """``recovery`` without its refunds: what :class:`gateway.payments.Reconciler` may handle.

    The reconciler treats AUTH_REQUESTED/UNKNOWN as an authorisation (status query, then
    reversal or decline); a refund is resolved by re-sending it (:meth:`RefundService.recover`).
    """
    pending = tuple(p for p in recovery.pending if p.payment.kind is PaymentKind.SALE)
    return Recovery(pending, recovery.outbox_unsent, recovery.released_claims)


def _auth_code(host_id: str) -> str:
    """The journal's auth code for a refund: the host's refund id as 1-12 letters or digits."""
    code = re.sub(r"[^0-9A-Za-z]", "", host_id)[-12:]
    if not code or sum(c.isdigit() for c in code) >= 12:  # never a PAN-shaped value
        return "REFUNDED"
    return code


class TerminalRefunder(Protocol):
    """Refunds at the smart terminal of a lane (gateway.payments, wired by the daemon)."""

    def handles(self, lane: str) -> bool:
        """True when ``lane`` is a smart-terminal lane: its refunds go to its terminal."""
        ...

    async def refund(self, refund: Payment, sale: Payment) -> Payment:
        """Refund at the terminal (AUTH_REQUESTED journaled); return the journaled end."""
        ...


class RefundService:
    """Makes referenced refunds and resolves the ones whose answer never came.

    Args:
        journal: The daemon's journal.
        client: The open acquirer client.
        health: Acquirer reachability for the status page (optional).
        retry_interval: Seconds between passes of :meth:`run`.
        duplicate_wait: Seconds a repeated reference waits for the first request to finish.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        client: AcquirerClient,
        health: AcquirerHealth | None = None,
        retry_interval: float = 30.0,
        duplicate_wait: float = 30.0,
    ) -> None:
        self._journal = journal
        self._client = client
        self._health = health
        self._queue = RetryQueue(retry_interval)
        self._duplicate_wait = duplicate_wait
        self._create_lock = asyncio.Lock()
        self._in_flight: dict[str, asyncio.Event] = {}
        self.resolved = 0
        #: The smart-terminal lanes' refunds (set by the daemon once the lanes exist).
        self.terminals: TerminalRefunder | None = None

    def _at_terminal(self, payment: Payment) -> bool:
        return self.terminals is not None and self.terminals.handles(payment.lane)

    @property
    def pending(self) -> int:
        """Refunds waiting for the host (AUTH_REQUESTED, UNKNOWN, or left by a restart)."""
        return len(self._queue)

    def add(self, refund_id: str) -> None:
        """Queue a refund for :meth:`resolve_pending_refunds` and wake :meth:`run`."""
        self._queue.add(refund_id)

    # -- the till's request -----------------------------------------------------------------

    async def replays(self, sale_id: str, reference: str) -> bool:
        """True when a refund of ``sale_id`` already has ``reference`` (asking again replays it).

        Raises:
            SaleNotFound: No such payment. JournalError: The journal failed.
        """
        try:
            await self._journal.get(sale_id)
        except UnknownPayment:
            raise SaleNotFound(f"no payment {sale_id!r}") from None
        return await self._journal.find_refund(sale_id, reference) is not None

    async def refund(
        self,
        sale_id: str,
        *,
        amount: int,
        reference: str,
        currency_code: str | None = None,
        requested_by: str = _ACTOR,
        items: list[dict[str, Any]] | None = None,
    ) -> RefundResult:
        """Refund ``amount`` of sale ``sale_id`` once per ``reference`` (``items``: the sale's
        lines it gives back, journaled with it and raising local stock once settled).

        Journals the refund and commits AUTH_REQUESTED before anything is sent; ends COMPLETED
        (refunded), DECLINED (refused by the host) or UNKNOWN (no answer; queued for re-send).

        Raises:
            SaleNotFound: No such payment. InvalidRefund: ``currency_code`` is not the sale's.
            RefundRejected: Not refundable, or the reference was used for another amount.
            JournalError: The journal failed.

        ``requested_by`` (``till:NAME``) is the actor of the refund's first journal event.
        """
        try:
            sale = await self._journal.get(sale_id)
        except UnknownPayment:
            raise SaleNotFound(f"no payment {sale_id!r}") from None
        if currency_code is not None and currency_code != sale.currency:
            raise InvalidRefund("currency", f"the sale is in {sale.currency}")
        if sale.kind is not PaymentKind.SALE:
            raise RefundRejected("not_refundable", f"{sale_id} is a refund, not a sale")
        if sale.state is S.STORED_FOR_FORWARDING and not self._at_terminal(sale):
            raise RefundRejected(
                "not_refundable", f"sale {sale_id} has not reached the acquirer (forwarding)"
            )
        async with self._create_lock:
            found = await self._journal.find_refund(sale_id, reference)
            existing = None if found is None else found.id
            if existing is None:
                created = await self._create(sale, amount, reference, requested_by, items)
                # a cancelled request leaves it to run()
                self._queue.add(created.id, wake=False)
                self._in_flight[created.id] = asyncio.Event()
        if existing is not None:
            return await self._existing(existing, amount, reference)
        try:
            payment = await self._send(created, sale)
        finally:
            self._in_flight.pop(created.id).set()
        return RefundResult(payment, reference)

    async def _create(
        self,
        sale: Payment,
        amount: int,
        reference: str,
        requested_by: str,
        items: list[dict[str, Any]] | None,
    ) -> Payment:
        try:
            currency(sale.currency)
        except CurrencyError:
            raise RefundRejected("not_refundable", f"unknown currency {sale.currency}") from None
        try:
            refund = await self._journal.create_refund(
                sale.id,
                lane=sale.lane,
                amount=amount,
                actor=requested_by,
                till_reference=reference,
                items=items,
            )
        except RefundNotAllowed as exc:
            raise RefundRejected("not_refundable", str(exc)) from None
        # the card of a refund at a smart terminal is presented there; elsewhere it is not read
        await self._journal.card_read(
            refund.id, masked_pan=sale.masked_pan, aid=sale.aid, actor=_ACTOR,
            interface="terminal" if self._at_terminal(sale) else None,
        )
        refund = await self._journal.request_auth(refund.id, actor=_ACTOR)
        log.info("refund %s of %s: %d %s journaled", refund.id, sale.id, amount, refund.currency)
        return refund

    async def _existing(self, refund_id: str, amount: int, reference: str) -> RefundResult:
        payment = await self._journal.get(refund_id)
        if payment.amount != amount:
            raise RefundRejected(
                "reference_conflict",
                f"reference already used for refund {refund_id} of {payment.amount}",
            )
        event = self._in_flight.get(refund_id)
        if event is not None:  # the first request is still sending it: wait for its answer
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._duplicate_wait):
                    await event.wait()
        elif payment.state in _SEND_AGAIN:  # the till asks again: so do we, same key
            await self._resolve_exclusive(refund_id)
        return RefundResult(await self._journal.get(refund_id), reference, replayed=True)

    # -- the acquirer ------------------------------------------------------------------------

    async def _send(self, refund: Payment, sale: Payment) -> Payment:
        """Send (or re-send) a refund in AUTH_REQUESTED or UNKNOWN; journal what came back."""
        if self.terminals is not None and self._at_terminal(sale):
            self._queue.discard(refund.id)  # in doubt: the lane's terminal recovery settles it
            return await self.terminals.refund(refund, sale)
        key = refund_key(refund.id)
        try:
            authorisation = await self._client.status(sale.idempotency_key or f"fwd-{sale.id}")
            answer = await self._client.refund(
                authorisation.id,
                amount=refund.amount,
                currency=currency(refund.currency).numeric,
                idempotency_key=key,
            )
        except NotFound:
            self._success()
            return await self._decline(refund, "the sale's authorisation is unknown to the host")
        except IdempotencyConflict as exc:  # the key was used with another body: ask a human
            self._success()
            return await self._unknown(refund, f"host: {exc.code}", exc)
        except AcquirerRejected as exc:
            self._success()
            return await self._decline(refund, f"refused by the host: {exc.code}")
        except AcquirerError as exc:
            if self._health is not None:
                self._health.failure(exc)
            return await self._unknown(refund, f"no answer: {type(exc).__name__}", exc)
        self._success()
        approved = await self._journal.approve(
            refund.id, auth_code=_auth_code(answer.id), actor="acquirer", reason="refunded"
        )
        completed = await self._journal.complete(approved.id, actor=_ACTOR)
        self._queue.discard(refund.id)
        log.info("refund %s: refunded by the host (%s, key %s)", refund.id, answer.id, key)
        return completed

    def _success(self) -> None:
        if self._health is not None:
            self._health.success()

    async def _decline(self, refund: Payment, reason: str) -> Payment:
        self._queue.discard(refund.id)
        log.info("refund %s: declined (%s)", refund.id, reason)
        return await self._journal.decline(refund.id, actor="acquirer", reason=reason)

    async def _unknown(self, refund: Payment, reason: str, exc: Exception) -> Payment:
        log.warning("refund %s: outcome unknown, will re-send (%s)", refund.id, exc)
        self._queue.add(refund.id, wake=False)  # the next pass, not a busy loop
        if refund.state is S.UNKNOWN:
            return refund
        return await self._journal.mark_unknown(refund.id, actor=_ACTOR, reason=reason)

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self, recovery: Recovery, *, within: float) -> int:
        """Restart recovery, before ready: queue the refunds ``recovery`` lists, one pass.

        Returns:
            How many refunds are still pending (the host could not be asked in time).
        """
        for item in recovery.pending:
            if item.payment.kind is PaymentKind.REFUND:
                self._queue.add(item.payment.id, wake=False)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.resolve_pending_refunds()
        return self.pending

    async def resolve_pending_refunds(self) -> int:
        """One pass over the queued refunds: re-send, complete or cancel each as its state asks.

        CREATED/CARD_READ: nothing was sent, CANCELLED. AUTH_REQUESTED/UNKNOWN: re-sent under
        the SAME key (the host replays a refund it made). APPROVED: COMPLETED.

        Returns:
            How many refunds are still pending.
        """
        for refund_id in self._queue.snapshot():
            if refund_id in self._in_flight:
                continue  # a till request is sending it right now
            try:
                if await self._resolve_exclusive(refund_id):
                    self._queue.discard(refund_id)
                    self.resolved += 1
            except JournalError as exc:
                log.error("refund %s: cannot resolve: %s", refund_id, exc)
        return self.pending

    async def _resolve_exclusive(self, refund_id: str) -> bool:
        """:meth:`_resolve`, marked in flight so that no other path sends it meanwhile."""
        event = self._in_flight[refund_id] = asyncio.Event()
        try:
            return await self._resolve(await self._journal.get(refund_id))
        finally:
            self._in_flight.pop(refund_id, None)
            event.set()

    async def _resolve(self, refund: Payment) -> bool:
        sale_id = refund.refund_of
        if refund.kind is not PaymentKind.REFUND or sale_id is None:
            return True
        if refund.state in (S.CREATED, S.CARD_READ):
            await self._journal.cancel(refund.id, actor="recovery", reason="nothing sent")
            return True
        if refund.state is S.APPROVED:
            await self._journal.complete(refund.id, actor="recovery")
            return True
        if refund.state not in _SEND_AGAIN:
            return True
        if self._at_terminal(refund):
            return True  # never re-sent: its lane asks the terminal's last transaction
        if refund.state is S.AUTH_REQUESTED:
            refund = await self._journal.mark_unknown(
                refund.id, actor="recovery", reason="no answer journaled"
            )
        sale = await self._journal.get(sale_id)
        return (await self._send(refund, sale)).state in _ANSWERED

    async def run(self) -> None:
        """Re-send the queued refunds every ``retry_interval`` seconds (or when woken)."""
        await self._queue.run(self.resolve_pending_refunds)
