"""One contactless payment as a till would run it: tap, optional second tap, then online.

The Entry Point returns as soon as the card may leave the field; an ONLINE REQUEST is then sent
to the acquirer (with the online PIN block when the CVM asks for one) after the card is gone
(EMV Contactless Book A, 6.2 and Book B, 3.5): "card read OK, please remove card" (Book A,
9.4 message '17', status Card Read Successfully) is always shown before the authorisation
starts. A "see phone" outcome (kernel 3 Try Again, or kernel 2 End Application with Start B)
is followed by the second tap with the restart context, as the cardholder would do after
confirming on the phone.
"""

from __future__ import annotations

from typing import Any

from terminal import (
    ContactlessResult,
    Environment,
    OnlineAuthoriser,
    OnlinePinBlock,
    OnlineRequest,
    PinPad,
    TerminalConfig,
    TraceEntry,
    TransactionRequest,
    encode_tlvs,
    run_contactless_transaction,
)
from terminal.contactless import Outcome
from terminal.contactless.outcome import CvmOutcome
from terminal.contactless.session import UiCallback

__all__ = ["pay_contactless"]

#: Taps before giving up on a card that keeps asking for another one.
MAX_TAPS = 2


async def pay_contactless(
    channel: Any,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    acquirer: OnlineAuthoriser,
    pinpad: PinPad | None,
    ui: UiCallback | None = None,
) -> tuple[dict[str, Any], list[TraceEntry], bool]:
    """Tap, re-tap when asked, authorise online when asked (Book A, 6.2; Book B, 3.5).

    Args:
        channel: The card channel (a card in the field).
        config: Terminal configuration.
        request: Amount, currency, transaction type.
        env: Injected clock and unpredictable number.
        acquirer: Answers the online request (after the card has left the field).
        pinpad: Takes the online PIN when the CVM asks for it.
        ui: Receives every UI request of every tap, in order.

    Returns:
        A masked summary, the card trace of every tap, and whether the payment is approved.
    """
    trace: list[TraceEntry] = []
    result: ContactlessResult | None = None
    restart = None
    for _ in range(MAX_TAPS):
        result = await run_contactless_transaction(
            channel, config=config, request=request, env=env, restart=restart, ui=ui
        )
        trace.extend(result.trace)
        if result.restart is None:
            break
        restart = result.restart
    assert result is not None
    summary = result.to_json()
    for key in ("trace", "icc_data", "parameters"):
        summary.pop(key, None)
    summary["interface"] = "contactless"
    summary["cvm"] = result.parameters.cvm.value
    approved = result.outcome is Outcome.APPROVED
    if result.outcome is Outcome.ONLINE_REQUEST:
        approved = await _authorise(result, request, acquirer, pinpad, summary)
    summary["decision"] = "approved" if approved else "not approved"
    return summary, trace, approved


async def _authorise(
    result: ContactlessResult,
    request: TransactionRequest,
    acquirer: OnlineAuthoriser,
    pinpad: PinPad | None,
    summary: dict[str, Any],
) -> bool:
    online_pin: OnlinePinBlock | None = None
    if result.parameters.cvm is CvmOutcome.ONLINE_PIN:
        if pinpad is None or result.pan is None:
            summary["online"] = "no PIN pad for the online PIN"
            return False
        entry = await pinpad.online_pin(pan=result.pan, tries_left=None)
        if not isinstance(entry, OnlinePinBlock):
            summary["online"] = f"online PIN not entered ({entry.status.name.lower()})"
            return False
        online_pin = entry
    answer = await acquirer(
        OnlineRequest(
            icc_data=encode_tlvs(result.icc_data.items()),
            amount=request.amount,
            currency=request.currency_code,
            transaction_type=int(request.transaction_type),
            masked_pan=result.masked_pan,
            online_pin=online_pin,
            pan=result.pan,
        )
    )
    if answer is None:
        summary["online"] = "unable to go online: declined (contactless has no second cryptogram)"
        return False
    summary["online"] = "approved" if answer.approved else "declined"
    summary["authorisation_response_code"] = answer.authorisation_response_code.decode(
        "ascii", "replace"
    )
    return answer.approved
