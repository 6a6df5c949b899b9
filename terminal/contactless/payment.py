"""A whole contactless payment: the Entry Point, a second tap, and the online step.

:func:`run_contactless_transaction` ends at the kernel's outcome (EMV Contactless Book A, 6.2).
A payment goes on from there, and that belongs to the kernel too, not to its caller:

* an outcome that asks for a restart (Book A, 6.2, Start B, "see phone") is run again, up to
  ``max_taps`` times (Book B, 3.2.1);
* APPROVED (TC) approves offline (8A ``Y1``), DECLINED (AAC) declines (``Z1``);
* ONLINE REQUEST: the card may leave once the kernel has its cryptogram, so
  ``on_card_removable`` runs first (Book A, 9.4, message '17' "remove card"); then online PIN
  from the PIN pad when the outcome's CVM asks for it (Book A, 6.2, CVM "online PIN"); then the
  online authoriser, as in the contact flow. A contactless card gives no second cryptogram, so
  "unable to go online" is a decline (8A ``Z3``), and the issuer's answer decides;
* any other outcome (try another interface, end application...) is TERMINATED with the
  outcome named in the reason.

The result is the same :class:`terminal.result.TransactionResult` the contact flow returns,
with the final ICC data and the PAN (for the acquirer and the store-and-forward vault only:
never in its ``repr`` or :meth:`~terminal.result.TransactionResult.to_json`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from terminal.config import TerminalConfig
from terminal.contact.online import OnlineAuthoriser, OnlineRequest
from terminal.contactless.entry_point import run_contactless_transaction
from terminal.contactless.outcome import CvmOutcome, Outcome
from terminal.contactless.result import ContactlessResult
from terminal.environment import Environment, TransactionRequest
from terminal.pinpad import OnlinePinBlock, PinPad
from terminal.result import Decision, TransactionResult
from terminal.tlv import encode_tlvs
from terminal.transport import CardChannel

__all__ = ["MAX_TAPS", "run_contactless_payment"]

#: Taps before giving up on a card that keeps asking for another one.
MAX_TAPS = 2


async def run_contactless_payment(
    channel: CardChannel,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    online: OnlineAuthoriser,
    pinpad: PinPad | None = None,
    on_card_removable: Callable[[], Awaitable[None]] | None = None,
    max_taps: int = MAX_TAPS,
    trace: bool = True,
) -> TransactionResult:
    """One contactless payment, from the first tap to the issuer's answer (module docstring).

    Args:
        channel: The card channel (a card is in the field).
        config: Terminal configuration.
        request: Amount, currency and transaction type.
        env: Injected clock and unpredictable number.
        online: The online authoriser (``None`` back: unable to go online).
        pinpad: The PIN pad, for an online PIN CVM (``None``: no PIN pad).
        on_card_removable: Called once the card may leave, before going online.
        max_taps: How many times a restart outcome is followed.
        trace: Record the masked APDU trace (``False``: the result's ``trace`` is empty and
            costs nothing, :mod:`terminal.trace`).

    Returns:
        The decision, reason, 8A, masked PAN, AID, final ICC data and the PAN.

    Raises:
        TransportError: when the card channel fails.
    """
    result: ContactlessResult | None = None
    restart = None
    for _ in range(max(1, max_taps)):
        result = await run_contactless_transaction(
            channel, config=config, request=request, env=env, restart=restart, trace=trace
        )
        if result.restart is None:
            break
        restart = result.restart
    assert result is not None
    icc = encode_tlvs(result.icc_data.items())

    def end(decision: Decision, reason: str, arc: bytes | None = None) -> TransactionResult:
        return TransactionResult(
            decision=decision,
            reason=reason,
            masked_pan=result.masked_pan,
            aid=result.aid.hex().upper() if result.aid else None,
            label=result.label,
            oda_method=result.oda_method,
            oda_verified=result.oda_verified,
            cid=result.cid,
            tvr=result.tvr or bytes(5),
            icc_data=icc,
            authorisation_response_code=arc,
            trace=list(result.trace),
            pan=result.pan,
        )

    outcome = result.outcome
    if outcome is Outcome.APPROVED:
        return end(Decision.APPROVED, "approved offline (contactless)", b"Y1")
    if outcome is Outcome.DECLINED:
        return end(Decision.DECLINED, "declined offline (contactless)", b"Z1")
    if outcome is not Outcome.ONLINE_REQUEST:
        return end(Decision.TERMINATED, f"contactless outcome: {outcome.value}")
    if on_card_removable is not None:
        await on_card_removable()
    pin = None
    if result.parameters.cvm is CvmOutcome.ONLINE_PIN:
        entry = (
            None
            if pinpad is None or result.pan is None
            else await pinpad.online_pin(pan=result.pan, tries_left=None)
        )
        if not isinstance(entry, OnlinePinBlock):
            return end(Decision.DECLINED, "online PIN required, none entered", b"Z3")
        pin = entry
    answer = await online(
        OnlineRequest(
            icc_data=icc,
            amount=request.amount,
            currency=request.currency_code,
            transaction_type=int(request.transaction_type),
            masked_pan=result.masked_pan,
            online_pin=pin,
            pan=result.pan,
        )
    )
    if answer is None:
        return end(Decision.DECLINED, "unable to go online (contactless: declined)", b"Z3")
    arc = answer.authorisation_response_code[:2]
    if answer.approved:
        return end(Decision.APPROVED, "approved by issuer", arc)
    return end(Decision.DECLINED, "declined by issuer", arc)
