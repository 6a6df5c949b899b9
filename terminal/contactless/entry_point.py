"""The contactless Entry Point (EMV Contactless Book B, 3) and :func:`run_contactless_transaction`.

Start A - pre-processing (Book B, 3.1): :mod:`.preprocessing` computes the indicators per
combination; if no combination may be used the outcome is TRY ANOTHER INTERFACE (3.1.1.12).

Start B - protocol activation (Book B, 3.2): the reader (the caller's channel) has the card in
the field; the Entry Point shows "present card" (3.2.1.2), or the UI request on restart kept
from the previous outcome when this call is a restart (3.2.1.1).

Start C - combination selection (Book B, 3.3): SELECT PPSE and build the ordered Candidate
List (:mod:`.selection`); with several brands and a cardholder-choice callback, the cardholder
picks the brand as in the contact kernel (EMV 4.4 Book 1, 12.4). No PPSE (3.3.2.3) or no
candidate left (3.3.2.7): END APPLICATION with "insert, swipe or try another card" ('1C'),
status Ready to Read.

Final combination selection (Book B, 3.3.3) and kernel activation (3.4): SELECT the
candidate's ADF (with the Extended Selection when supported, 3.3.3.3); a Visa AID for kernel 3
whose PDOL lacks the TTQ is a kernel 1 card, not supported here (3.3.3.6); kernel 2 or 3 runs
(:mod:`.kernel2`, :mod:`.kernel3`). A card refusing the SELECT (3.3.3.5), a kernel 1 card, or a
kernel returning SELECT NEXT (3.5.1.4) removes the candidate and goes back to Start C with the
next one. A communication error (3.3.3.7: back to Start B) is raised as ``TransportError``: the
caller polls for the card again.

Outcome processing (Book B, 3.5.1; Book A, 6.2-7.1): the UI request on outcome is shown; an
outcome with Start B carries a :class:`~.result.RestartContext` that the caller passes to the
next call (the "see phone" second tap). The card-in-field part ends when the kernel says so:
``card_removable_at`` marks the last exchange the card was needed for, and "card read OK" was
shown then, before any online authorisation (which the caller performs after an ONLINE REQUEST).
"""

from __future__ import annotations

from terminal.config import TerminalConfig
from terminal.contact.selection import Candidate as ContactCandidate
from terminal.contactless.kernel2 import run_kernel2
from terminal.contactless.kernel3 import run_kernel3
from terminal.contactless.outcome import (
    L2Error,
    Message,
    Outcome,
    OutcomeParameters,
    Start,
    UiRequest,
    UiStatus,
    end_application,
    entry_point_end_application,
)
from terminal.contactless.preprocessing import Kernel2Settings, all_not_allowed, combinations
from terminal.contactless.result import ContactlessResult, RestartContext
from terminal.contactless.selection import (
    Candidate,
    SelectedApplication,
    build_candidates,
    final_select,
    order_candidates,
    select_ppse,
    visa_legacy,
)
from terminal.contactless.session import CardSession, UiCallback
from terminal.environment import Environment, TransactionRequest
from terminal.transport import CardChannel

__all__ = ["activate_kernel", "run_contactless_transaction"]


async def run_contactless_transaction(
    channel: CardChannel,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    ui: UiCallback | None = None,
    restart: RestartContext | None = None,
    kernel2: Kernel2Settings | None = None,
    trace: bool = True,
) -> ContactlessResult:
    """Run one contactless transaction through the Entry Point (EMV Contactless Book B, 3).

    Args:
        channel: The card channel (a card is in the field).
        config: Terminal configuration; contactless combinations come from ``config.aids``.
        request: Amount, currency and transaction type.
        env: Injected clock and unpredictable number.
        ui: Receives each UI request as it is emitted (Book A, 7.1).
        restart: The context of a previous outcome that asked for a restart at B.
        kernel2: Kernel 2 settings for every kernel 2 AID, instead of each AID's ``kernel2``
            configuration (tests and replays).
        trace: Record the masked APDU trace (``False``: ``trace`` is empty; the card-removal
            index is counted all the same, :mod:`terminal.trace`).

    Returns:
        The outcome with its parameters, trace and card-removal index.

    Raises:
        TransportError: when the card channel fails (the caller treats it as Try Again).
    """
    session = CardSession(channel, ui, trace=trace)
    combos = combinations(config, request)
    blocked = all_not_allowed(combos)
    if blocked is not None:
        return _finish(session, ContactlessResult(blocked))
    if restart is not None and restart.ui_on_restart is not None:
        session.show(restart.ui_on_restart)
    else:
        session.show(UiRequest(Message.PRESENT_CARD, UiStatus.READY_TO_READ, amount=request.amount))
    entries = await select_ppse(session)
    if entries is None:
        return _finish(session, ContactlessResult(entry_point_end_application(L2Error.NO_PPSE)))
    ordered = order_candidates(build_candidates(entries, combos), config.cobadge_brand_priority)
    candidates = await _cardholder_choice(request, ordered)
    if candidates is None:
        return _finish(
            session,
            ContactlessResult(
                end_application(L2Error.OK, "cardholder cancelled", message=Message.CLEAR_DISPLAY)
            ),
        )
    result: ContactlessResult | None = None
    while candidates:
        candidate = candidates.pop(0)
        selected = await final_select(session, candidate)
        if selected is None or visa_legacy(selected):
            continue
        result = await activate_kernel(
            session, selected, config=config, request=request, env=env, kernel2=kernel2
        )
        if result.parameters.outcome is not Outcome.SELECT_NEXT:
            break
    if result is None or result.parameters.outcome is Outcome.SELECT_NEXT:
        last = result
        result = ContactlessResult(entry_point_end_application(L2Error.EMPTY_CANDIDATE_LIST))
        if last is not None:
            result.kernel_id, result.aid, result.label = last.kernel_id, last.aid, last.label
    return _finish(session, result)


async def activate_kernel(
    session: CardSession,
    selected: SelectedApplication,
    *,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    kernel2: Kernel2Settings | None = None,
) -> ContactlessResult:
    """Hand the selected application to its kernel (Book B, 3.5)."""
    if selected.candidate.kernel_id == 2:
        return await run_kernel2(
            session, selected, config=config, request=request, env=env, settings=kernel2
        )
    return await run_kernel3(session, selected, config=config, request=request, env=env)


async def _cardholder_choice(
    request: TransactionRequest, candidates: list[Candidate]
) -> list[Candidate] | None:
    """Co-badged cards: the cardholder's brand choice, as in the contact kernel (EMV 4.4 Book 1,
    12.4; EU IFR 2015/751 art. 8). With a chooser and several candidates, the chosen one goes
    first; ``None`` when the cardholder cancels."""
    chooser = request.choose_application
    if chooser is None or len(candidates) < 2:
        return candidates
    offered = [
        ContactCandidate(c.adf_name, c.label, None, c.priority or None, False, c.combination.config)
        for c in candidates
    ]
    chosen = await chooser(offered)
    if chosen is None or chosen not in offered:
        return None
    index = offered.index(chosen)
    return [candidates[index], *candidates[:index], *candidates[index + 1 :]]


def _finish(session: CardSession, result: ContactlessResult) -> ContactlessResult:
    """Outcome processing (Book B, 3.5.1; Book A, 7.1)."""
    exchanges = session.io.tracer.exchanges
    if session.card_removable_at is None and exchanges:
        session.card_removable_at = exchanges - 1
    params: OutcomeParameters = result.parameters
    if params.ui_on_outcome is not None:
        session.show(params.ui_on_outcome)
    if params.start is Start.B:
        result.restart = RestartContext(Start.B, params.ui_on_restart, result.kernel_id, result.aid)
    result.trace = session.trace
    result.ui_requests = session.ui_requests
    result.card_removable_at = session.card_removable_at
    return result
