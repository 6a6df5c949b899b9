"""Run the EMV kernel for a lane: contact or contactless, one verdict either way.

Contact: :func:`terminal.contact.flow.run_contact_transaction` (EMV 4.4 Books 1-4) with the
lane's online step; the card stays in the reader until the second GENERATE AC.
Contactless: :func:`terminal.contactless.run_contactless_transaction` (EMV Contactless Book B,
3), a second tap when the outcome asks for a restart (Book A, 6.2, "see phone"), then for an
ONLINE REQUEST the "remove card" prompt *before* the authorisation (Book A, 9.4, message '17':
the card may leave once the kernel has its cryptogram), and the host's answer decides: a
contactless card gives no second cryptogram, so "unable to go online" is a decline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.payments.settle import Verdict
from terminal.capk import CapkStore
from terminal.config import TerminalConfig
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineAuthoriser, OnlineRequest
from terminal.contactless import ContactlessResult, Outcome, run_contactless_transaction
from terminal.contactless.outcome import CvmOutcome
from terminal.environment import Environment, TransactionRequest
from terminal.pinpad import PinPad
from terminal.result import Decision
from terminal.tlv import encode_tlvs
from terminal.transport import CardChannel

__all__ = ["MAX_TAPS", "KernelRun", "run_kernel"]

#: Taps before giving up on a card that keeps asking for another one.
MAX_TAPS = 2


@dataclass(frozen=True, slots=True)
class KernelRun:
    """What the lane keeps of a kernel run (masked; no PAN).

    Attributes:
        verdict: Approved, declined, or no decision.
        reason: In plain words.
        arc: Authorisation Response Code (8A) at the end, if any.
        masked_pan: First 6 + last 4 digits.
        aid: Selected AID, upper-case hex.
        online_request: The final ICC data as a request (PAN left to the lane), for
            store-and-forward of an offline approval.
    """

    verdict: Verdict
    reason: str
    arc: bytes | None = None
    masked_pan: str | None = None
    aid: str | None = None
    online_request: OnlineRequest | None = None


async def run_kernel(
    interface: str,
    channel: CardChannel,
    *,
    config: TerminalConfig,
    capk: CapkStore,
    request: TransactionRequest,
    env: Environment,
    online: OnlineAuthoriser,
    pinpad: PinPad | None,
    on_remove_card: Callable[[], Awaitable[None]],
) -> KernelRun:
    """One transaction on ``interface`` (``contact`` or ``contactless``); see the module doc.

    Raises:
        Whatever the card channel raises (card removed, reader gone, time-out).
    """
    if interface == "contactless":
        return await _contactless(channel, config, request, env, online, pinpad, on_remove_card)
    result = await run_contact_transaction(
        channel,
        config=config,
        request=request,
        env=env,
        online=online,
        pinpad=pinpad,
        capk=capk,
    )
    verdict = {Decision.APPROVED: Verdict.APPROVED, Decision.DECLINED: Verdict.DECLINED}.get(
        result.decision, Verdict.NONE
    )
    final = OnlineRequest(
        icc_data=result.icc_data,
        amount=request.amount,
        currency=request.currency_code,
        transaction_type=int(request.transaction_type),
        masked_pan=result.masked_pan,
    )
    return KernelRun(
        verdict=verdict,
        reason=result.reason,
        arc=result.authorisation_response_code,
        masked_pan=result.masked_pan,
        aid=result.aid,
        online_request=final,
    )


async def _contactless(
    channel: CardChannel,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    online: OnlineAuthoriser,
    pinpad: PinPad | None,
    on_remove_card: Callable[[], Awaitable[None]],
) -> KernelRun:
    result: ContactlessResult | None = None
    restart = None
    for _ in range(MAX_TAPS):
        result = await run_contactless_transaction(
            channel, config=config, request=request, env=env, restart=restart
        )
        if result.restart is None:
            break
        restart = result.restart
    assert result is not None
    aid = result.aid.hex().upper() if result.aid else None
    as_request = OnlineRequest(
        icc_data=encode_tlvs(result.icc_data.items()),
        amount=request.amount,
        currency=request.currency_code,
        transaction_type=int(request.transaction_type),
        masked_pan=result.masked_pan,
        pan=result.pan,
    )

    def run(verdict: Verdict, reason: str, arc: bytes | None = None) -> KernelRun:
        return KernelRun(verdict, reason, arc, result.masked_pan, aid, as_request)

    outcome = result.outcome
    if outcome is Outcome.APPROVED:
        return run(Verdict.APPROVED, "approved offline (contactless)", b"Y1")
    if outcome is Outcome.DECLINED:
        return run(Verdict.DECLINED, "declined offline (contactless)", b"Z1")
    if outcome is not Outcome.ONLINE_REQUEST:
        return run(Verdict.NONE, f"contactless outcome: {outcome.value}")
    await on_remove_card()
    pin = None
    if result.parameters.cvm is CvmOutcome.ONLINE_PIN:
        entry = (
            None
            if pinpad is None or result.pan is None
            else await pinpad.online_pin(pan=result.pan, tries_left=None)
        )
        from terminal.pinpad import OnlinePinBlock

        if not isinstance(entry, OnlinePinBlock):
            return run(Verdict.DECLINED, "online PIN required, none entered", b"Z3")
        pin = entry
    answer = await online(
        OnlineRequest(
            icc_data=as_request.icc_data,
            amount=request.amount,
            currency=request.currency_code,
            transaction_type=int(request.transaction_type),
            masked_pan=result.masked_pan,
            online_pin=pin,
            pan=result.pan,
        )
    )
    if answer is None:
        return run(Verdict.DECLINED, "unable to go online (contactless: declined)", b"Z3")
    arc = answer.authorisation_response_code[:2]
    if answer.approved:
        return run(Verdict.APPROVED, "approved by issuer", arc)
    return run(Verdict.DECLINED, "declined by issuer", arc)
