"""A payment's journal-first authorisation steps: the kernel's online step, and the terminal's.

:class:`JournaledAuthoriser` is the kernel's ``OnlineAuthoriser`` for one payment (EMV 4.4
Book 3, 10.9), and the same journal steps for a smart terminal
(:meth:`~JournaledAuthoriser.before_terminal_pays`, :meth:`~JournaledAuthoriser.terminal_approved`).
One payment has one STAN: the request sent online and the request sealed for store-and-forward
carry the same one.

For the kernel: Before any
byte goes to the acquirer it commits CARD_READ (masked PAN, AID) and AUTH_REQUESTED (one
request, one commit: :meth:`gateway.journal.Journal.card_read_and_request_auth`), and it
uses the idempotency key the journal stored as the request's key: after a crash the key in the
journal is the key the host saw (ARCHITECTURE.md, "every request carries an idempotency key
that survives a restart"). Then, by what happened:

* answer: DECLINED (response code), committed before the kernel sees it; an approval is held
  (:attr:`JournaledAuthoriser.approval`) and journaled with the payment's next state once the
  card has answered (:func:`gateway.payments.settle.settle`, one request: APPROVED then
  COMPLETED, or APPROVED then REVERSAL_PENDING). APPROVED announces nothing outside the card;
  a crash before that commit leaves AUTH_REQUESTED or UNKNOWN, which recovery resolves by a
  status query, finds approved and reverses, as it would reverse APPROVED;
* never sent, or 5xx on every attempt (nothing stored at the host): ``None`` to the kernel,
  "unable to go online"; the payment stays AUTH_REQUESTED and the lane settles it from the
  card's decision (Y3: store-and-forward, Z3: declined);
* answer lost: UNKNOWN, then one status query under the key: the host's decision, or "not
  found" (nothing charged: DECLINED). When the host cannot be asked the card is told to decline
  (8A ``Z3``) and the payment stays UNKNOWN for the reconciler, which reverses a charge it finds;
* refused (4xx) or unreadable: DECLINED, 8A ``Z3``;
* wrong online PIN (response code 55) when the policy lets the reader adapter ask for the PIN
  again (:func:`gateway.payments.settle.may_retry_pin`, asked through
  :attr:`JournaledAuthoriser.may_retry_pin`): back to CARD_READ ("wrong PIN, try again"),
  not DECLINED, so the same payment can send a new ARQC with a new PIN block.

An online PIN block (and its KSN) goes into the wire request and nowhere else: the request kept
for store-and-forward (:attr:`JournaledAuthoriser.request`) is a copy without it.

Reachability for the status page is kept by :class:`gateway.acquirer.health.AcquirerHealth`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.acquirer import (
    AcquirerClient,
    AcquirerError,
    AcquirerProtocolError,
    AcquirerServerError,
    AcquirerUnreachable,
    AcquirerUsageError,
    AnswerLost,
    Authorisation,
    AuthorisationRequest,
    Outcome,
)
from gateway.acquirer.health import AcquirerHealth
from gateway.journal import HostApproval, Journal, PaymentState
from gateway.payments.settle import WRONG_PIN_CODE
from terminal import OnlineRequest, OnlineResponse, TlvError, decode, flatten

__all__ = ["REFUSED_ARC", "WRONG_PIN_CODE", "JournaledAuthoriser", "StanCounter"]

log = logging.getLogger("gateway.payments")

#: 8A when the host refused, or the outcome could not be learnt (EMV 4.4 Book 4, Annex A6).
REFUSED_ARC = b"Z3"


class StanCounter:
    """System trace audit numbers 1..999999, wrapping (one per lane)."""

    def __init__(self) -> None:
        self._count = itertools.count()

    def __call__(self) -> int:
        return next(self._count) % 999_999 + 1


def aid_of(icc_data: bytes) -> str | None:
    """The AID (84 or 4F) in field 55, upper-case hex."""
    try:
        values = flatten(decode(icc_data))
    except TlvError:
        return None
    aid = values.get(0x84) or values.get(0x4F)
    return aid.hex().upper() if aid and 5 <= len(aid) <= 16 else None


class JournaledAuthoriser:
    """The kernel's online authoriser for one payment (see the module docstring).

    Attributes:
        request: The request built for the host (kept for store-and-forward), if any.
        authorisation: The host's decision, when one was learnt.
        approval: The host's approval of the last request, not journaled yet (module
            docstring); None when the host did not approve.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        client: AcquirerClient,
        payment_id: str,
        actor: str,
        terminal_id: str,
        merchant_id: str,
        stan: Callable[[], int],
        clock: Callable[[], datetime],
        health: AcquirerHealth,
    ) -> None:
        self._journal = journal
        self._client = client
        self._id = payment_id
        self._actor = actor
        self._terminal_id = terminal_id
        self._merchant_id = merchant_id
        self._stan = stan
        self._clock = clock
        self._health = health
        self._stan_value: int | None = None
        self.request: AuthorisationRequest | None = None
        self.authorisation: Authorisation | None = None
        self.approval: HostApproval | None = None
        #: How the brand was chosen, for the CARD_READ event (co-badged cards; else empty).
        self.card_read_reason: Callable[[], str] = lambda: ""
        #: Where the card is read (``contact``, ``contactless``, ``terminal``), for CARD_READ.
        self.card_read_interface: Callable[[], str | None] = lambda: None
        #: Asked on a wrong online PIN (55): may the lane take the PIN again on this payment?
        self.may_retry_pin: Callable[[], bool] = lambda: False
        #: Set when the last answer was a wrong PIN journaled as "try again" (CARD_READ).
        self.pin_retry = False

    async def mark_card_read(self, masked_pan: str | None, aid: str | None) -> None:
        """CREATED -> CARD_READ (once; later calls do nothing)."""
        payment = await self._journal.get(self._id)
        if payment.state is PaymentState.CREATED:
            await self._journal.card_read(
                self._id,
                masked_pan=masked_pan,
                aid=aid,
                actor=self._actor,
                reason=self.card_read_reason(),
                interface=self.card_read_interface(),
            )

    def build_request(self, request: OnlineRequest) -> AuthorisationRequest | None:
        """The wire request (None without a PAN, or when the kernel's values do not fit)."""
        pan = request.pan
        if pan is None:
            return None
        if self._stan_value is None:
            self._stan_value = self._stan()
        try:
            return AuthorisationRequest(
                amount=request.amount,
                currency=request.currency,
                transaction_type=request.transaction_type,
                icc_data=request.icc_data,
                pan=pan,
                terminal_id=self._terminal_id,
                merchant_id=self._merchant_id,
                stan=self._stan_value,
                local_datetime=self._clock(),
                pin=request.online_pin,
            )
        except AcquirerUsageError as exc:
            log.error("payment %s: cannot build the request: %s", self._id, exc)
            return None

    async def before_terminal_pays(self) -> None:
        """CREATED -> CARD_READ -> AUTH_REQUESTED before a smart terminal is asked to pay.

        The card is in the terminal: no masked PAN or AID yet. From AUTH_REQUESTED on, the
        payment can have moved money, so a failure leaves it in doubt.
        """
        await self.mark_card_read(None, None)
        await self._journal.request_auth(self._id, actor=self._actor)

    async def terminal_approved(
        self, auth_code: str | None, masked_pan: str | None, aid: str | None = None
    ) -> None:
        """AUTH_REQUESTED -> APPROVED: the smart terminal approved (its host answered)."""
        await self._journal.approve(
            self._id,
            auth_code=_alnum(auth_code) or "000000",
            actor="terminal",
            masked_pan=masked_pan,
            aid=aid,
        )

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        """Authorise online, journaling each step before its side effect."""
        self.pin_retry = False
        self.approval = None
        wire = self.build_request(request)
        # Kept for store-and-forward without the PIN block: that goes to the acquirer only.
        self.request = None if wire is None else replace(wire, pin=None)
        payment = await self._journal.get(self._id)
        if payment.state is PaymentState.CREATED:  # CARD_READ and AUTH_REQUESTED, one commit
            payment = await self._journal.card_read_and_request_auth(
                self._id,
                masked_pan=request.masked_pan,
                aid=aid_of(request.icc_data),
                actor=self._actor,
                reason=self.card_read_reason(),
                interface=self.card_read_interface(),
            )
        else:  # CARD_READ already: a PIN tried again
            payment = await self._journal.request_auth(self._id, actor=self._actor)
        key = payment.idempotency_key
        if wire is None or key is None:
            return None
        try:
            answer = await self._client.authorise(wire, idempotency_key=key)
        except (AcquirerUnreachable, AcquirerServerError) as exc:
            log.warning("payment %s key=%s: unable to go online: %s", self._id, key, exc)
            self._health.failure(exc)
            return None
        except AnswerLost as exc:
            self._health.failure(exc)
            return await self._answer_lost(key, exc)
        except AcquirerError as exc:
            log.error("payment %s key=%s: refused: %s", self._id, key, exc)
            self._health.success()
            await self._journal.decline(
                self._id, response_code="Z3", actor="acquirer", reason=_short(exc)
            )
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)
        self._health.success()
        return await self._decided(answer)

    async def _answer_lost(self, key: str, exc: AcquirerError) -> OnlineResponse:
        await self._journal.mark_unknown(self._id, actor=self._actor, reason=_short(exc))
        try:
            resolution = await self._client.resolve_unknown(key)
        except AcquirerError as again:
            log.warning("payment %s key=%s: still unknown (%s)", self._id, key, again)
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)
        self._health.success()
        if resolution.outcome is Outcome.NOT_FOUND or resolution.authorisation is None:
            await self._journal.decline(
                self._id, actor="acquirer", reason="status query: not found, nothing charged"
            )
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)
        return await self._decided(resolution.authorisation, retry=False)  # UNKNOWN: no retry

    async def _decided(self, answer: Authorisation, *, retry: bool = True) -> OnlineResponse:
        self.authorisation = answer
        code = _alnum(answer.response_code)
        wrong_pin = not answer.approved and code == WRONG_PIN_CODE
        if retry and wrong_pin and self.may_retry_pin():
            await self._journal.pin_retry(self._id, response_code=WRONG_PIN_CODE, actor="acquirer")
            self.pin_retry = True
            self._stan_value = None  # the retry is a new request message: a new STAN
        elif answer.approved:  # journaled with the next state (module docstring)
            self.approval = HostApproval(
                auth_code=_alnum(answer.authorisation_code) or "000000",
                response_code=_alnum(answer.response_code) or "00",
            )
        else:
            await self._journal.decline(
                self._id, response_code=_alnum(answer.response_code), actor="acquirer"
            )
        try:
            return answer.to_online_response()
        except AcquirerProtocolError as exc:
            log.error("payment %s: unreadable issuer response: %s", self._id, exc)
            return OnlineResponse(approved=False, authorisation_response_code=REFUSED_ARC)

    def __repr__(self) -> str:
        return f"JournaledAuthoriser(payment={self._id})"


def _alnum(value: Any) -> str | None:
    if isinstance(value, str) and value.isalnum() and value.isascii() and len(value) <= 12:
        return value
    return None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
