"""The contact transaction, step by step (EMV 4.4 Book 3, 10; Book 4, 6; Book 1, 12).

1. Application selection (Book 1, 12) - :mod:`.selection`.
2. Initiate application processing, GPO; ``6985`` removes the application and returns to
   final selection (Book 3, 10.1) - :mod:`.read_data`.
3. Read application data and the mandatory-data check (10.2) - :mod:`.read_data`.
4. Offline data authentication (10.3) - :mod:`.authentication`.
5. Processing restrictions (10.4) - :mod:`.restrictions`.
6. Cardholder verification (10.5) - :mod:`.cvm`.
7. Terminal risk management (10.6) - :mod:`.risk`; a merchant-forced online transaction sets
   TVR "Merchant forced transaction online" (Book 4, 6.3.5 / Annex A).
8. Terminal action analysis and the first GENERATE AC (10.7, 10.8) - :mod:`.action_analysis`.
9. Card action analysis (10.8): TC approves offline (8A ``Y1``), AAC declines (``Z1``), ARQC
   goes online - :mod:`.online`. A failed CDA declines (Book 2, 6.6.2). A refund asks for an
   AAC and is then sent to the acquirer, whose answer decides.

Card data that breaks a rule (malformed TLV, DOL, record, mandatory object) ends the
transaction as TERMINATED with the error's message (a tag and an offset, never card data);
a channel failure (:class:`~terminal.errors.TransportError`) is raised to the caller.
"""

from __future__ import annotations

from terminal.bits import CryptogramType, TvrBit
from terminal.capk import CapkStore
from terminal.commands import CardIo
from terminal.config import TerminalConfig
from terminal.contact.action_analysis import request_cryptogram, terminal_action_analysis
from terminal.contact.authentication import perform_oda
from terminal.contact.cvm import cardholder_verification
from terminal.contact.online import (
    OnlineAuthoriser,
    OnlineRequest,
    OnlineResponse,
    complete_online,
    icc_data,
    online_request,
    unable_to_go_online,
)
from terminal.contact.read_data import initiate, read_application_data
from terminal.contact.restrictions import check_processing_restrictions
from terminal.contact.risk import terminal_risk_management
from terminal.contact.selection import Candidate, build_candidates, final_select
from terminal.contact.state import EndTransaction, Transaction
from terminal.environment import Environment, TransactionRequest, TransactionType
from terminal.errors import ApduError, CardDataError, DolError, TlvError
from terminal.pinpad import PinPad
from terminal.result import Decision, TransactionResult
from terminal.trace import tracer
from terminal.transport import CardChannel

__all__ = [
    "Candidate",
    "OnlineAuthoriser",
    "OnlineRequest",
    "OnlineResponse",
    "TransactionRequest",
    "TransactionType",
    "run_contact_transaction",
]


async def _select_and_initiate(txn: Transaction) -> None:
    """Selection, then GPO; back to final selection on 6985 (Book 3, 10.1)."""
    candidates = await build_candidates(txn)
    while True:
        candidate = await final_select(txn, candidates)
        txn.terminal.update(candidate.config.terminal_data())
        if await initiate(txn):
            return
        txn.card.clear()


async def _card_action_analysis(txn: Transaction, online: OnlineAuthoriser) -> tuple[Decision, str]:
    """First GENERATE AC and what follows it (Book 3, 10.8-10.9)."""
    kind = terminal_action_analysis(txn)
    parsed, cda_ok = await request_cryptogram(txn, kind)
    returned = parsed.cryptogram_type
    if txn.request.transaction_type is TransactionType.REFUND:
        try:
            answer = await online(online_request(txn))
        finally:
            txn.online_pin = None
        if answer is not None and answer.approved:
            txn.terminal[0x8A] = answer.authorisation_response_code[:2]
            return Decision.APPROVED, "refund accepted by the acquirer"
        return Decision.DECLINED, "refund not accepted by the acquirer"
    if returned is CryptogramType.AAC:
        txn.terminal[0x8A] = b"Z1"
        return Decision.DECLINED, "card declined offline (AAC)"
    if cda_ok is False:
        if returned is CryptogramType.ARQC:
            await request_cryptogram(txn, CryptogramType.AAC, second=True)
        txn.terminal[0x8A] = b"Z1"
        return Decision.DECLINED, "CDA failed"
    if returned is CryptogramType.TC:
        txn.terminal[0x8A] = b"Y1"
        return Decision.APPROVED, "approved offline (TC)"
    if not txn.config.online_capable:
        return await unable_to_go_online(txn)
    return await complete_online(txn, online)


async def _run(txn: Transaction, online: OnlineAuthoriser) -> tuple[Decision, str]:
    await _select_and_initiate(txn)
    await read_application_data(txn)
    await perform_oda(txn)
    check_processing_restrictions(txn)
    await cardholder_verification(txn)
    await terminal_risk_management(txn)
    if txn.request.force_online:
        txn.set_tvr(TvrBit.MERCHANT_FORCED_ONLINE)
    return await _card_action_analysis(txn, online)


async def run_contact_transaction(
    channel: CardChannel,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    online: OnlineAuthoriser,
    pinpad: PinPad | None = None,
    capk: CapkStore | None = None,
    trace: bool = True,
) -> TransactionResult:
    """Run one contact EMV transaction over ``channel`` (EMV 4.4 Books 1, 3 and 4).

    Args:
        channel: The card channel (``async transceive``).
        config: Terminal configuration.
        request: Amount, currency, type and the cardholder-choice callback.
        env: Injected clock, unpredictable number and random selection draw.
        online: The online authoriser.
        pinpad: The PIN pad port (``None``: no PIN pad).
        capk: CA public keys (default: those of ``config``).
        trace: Record the masked APDU trace (``False``: ``trace`` is empty and costs nothing,
            :mod:`terminal.trace`).

    Returns:
        The result, with masked PAN and masked trace.

    Raises:
        TransportError: when the card channel fails.
    """
    txn = Transaction(
        io=CardIo(channel, tracer(trace)),
        config=config,
        request=request,
        env=env,
        capk=capk if capk is not None else config.capk_store(),
        pinpad=pinpad,
        terminal=config.terminal_data(request, env),
    )
    try:
        decision, reason = await _run(txn, online)
    except EndTransaction as end:
        decision, reason = end.decision, end.reason
    except (CardDataError, TlvError, DolError, ApduError) as exc:
        decision, reason = Decision.TERMINATED, f"card data error: {exc}"
    return _result(txn, decision, reason)


def _result(txn: Transaction, decision: Decision, reason: str) -> TransactionResult:
    method = txn.oda_method.value if txn.oda_method is not None else None
    return TransactionResult(
        decision=decision,
        reason=reason,
        masked_pan=txn.masked_pan,
        aid=txn.aid.hex().upper() or None,
        label=txn.label,
        oda_method=method,
        oda_verified=txn.oda_verified,
        cid=txn.cid,
        tvr=txn.tvr.bytes(),
        tsi=txn.tsi.bytes(),
        cvm_results=txn.cvm_results,
        icc_data=icc_data(txn) if txn.cid is not None else b"",
        online_pin=txn.online_pin,
        signature_required=txn.signature_required,
        authorisation_response_code=txn.terminal.get(0x8A),
        issuer_script_results=bytes(txn.script_results),
        trace=list(txn.io.tracer.entries),
        pan=txn.pan,
    )
