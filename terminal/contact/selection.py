"""Application selection (EMV 4.4 Book 1, 12): PSE directory, list of AIDs, final selection.

* 12.3.2: SELECT ``1PAY.SYS.DDF01``; ``6A81`` means the card is blocked (terminate); ``9000``
  gives the directory SFI (88), whose records (until ``6A83``) list ADFs (61/4F) matched
  against the terminal's AIDs (exact, or partial when the terminal AID's ASI allows). A PSE
  that is missing, blocked (``6283``) or gives no match falls back to the list of AIDs.
* 12.3.3: for each terminal AID, SELECT it; a DF name equal to it is a candidate; a longer one
  beginning with it is a candidate when partial selection is allowed, and the terminal asks
  for the next occurrence (P2 ``02``). ``6283`` (application blocked) is not a candidate.
* 12.4: candidates ordered by Application Priority Indicator (87, 1 highest, none last);
  cardholder choice when the request has a callback (co-badged cards: EU IFR 2015/751 art. 8),
  else automatic: the configured co-badge brand priority, then card priority, never an
  application that requires cardholder confirmation (87 b8). Then the final SELECT; a failure
  there (``6283``...) removes the candidate and selection starts again.

Data written: the FCI (6F, 84, A5 contents) and the matching :class:`AidConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence

from terminal.application import Candidate
from terminal.commands import PSE_NAME, Fci, parse_directory_record, parse_fci, read_record, select
from terminal.config import AidConfig
from terminal.contact.state import Transaction
from terminal.errors import CardDataError, TlvError
from terminal.result import Decision

__all__ = ["Candidate", "build_candidates", "choose", "final_select", "order_candidates"]

_MAX_OCCURRENCES = 16
_MAX_DIRECTORY_RECORDS = 16


def _match(aid: bytes, txn: Transaction) -> AidConfig | None:
    """The terminal AID an ADF name matches (Book 1, 12.3.1)."""
    for entry in txn.config.aids:
        mine = entry.aid_bytes
        if aid == mine or (entry.partial_selection and aid.startswith(mine)):
            return entry
    return None


async def _from_pse(txn: Transaction) -> list[Candidate] | None:
    """Candidates from the PSE directory (Book 1, 12.3.2); ``None`` to fall back to the list."""
    response = await txn.io.send(select(PSE_NAME))
    if response.sw == 0x6A81:
        raise txn.end(Decision.CARD_BLOCKED, "card blocked or SELECT not supported (6A81)")
    if response.sw != 0x9000:
        return None
    try:
        fci = parse_fci(response.data)
    except (CardDataError, TlvError):
        return None
    if fci.sfi is None or not 1 <= fci.sfi <= 10:
        return None
    found: list[Candidate] = []
    for number in range(1, _MAX_DIRECTORY_RECORDS + 1):
        record = await txn.io.send(read_record(fci.sfi, number))
        if record.sw == 0x6A83:
            break
        if record.sw != 0x9000:
            return None
        try:
            entries = parse_directory_record(record.data)
        except (CardDataError, TlvError):
            return None
        for entry in entries:
            config = _match(entry.aid, txn)
            if config is not None:
                found.append(
                    Candidate(
                        entry.aid,
                        entry.label,
                        entry.preferred_name,
                        entry.priority,
                        entry.confirmation_required,
                        config,
                    )
                )
    return found or None


async def _from_aid_list(txn: Transaction) -> list[Candidate]:
    """Candidates by SELECTing each terminal AID (Book 1, 12.3.3)."""
    found: list[Candidate] = []
    for config in txn.config.aids:
        mine = config.aid_bytes
        next_occurrence = False
        for _ in range(_MAX_OCCURRENCES):
            response = await txn.io.send(select(mine, next_occurrence=next_occurrence))
            if response.sw == 0x6A81:
                raise txn.end(Decision.CARD_BLOCKED, "card blocked (6A81)")
            if response.sw not in (0x9000, 0x6283):
                break
            try:
                fci = parse_fci(response.data)
            except (CardDataError, TlvError):
                break
            exact = fci.df_name == mine
            partial = (
                config.partial_selection
                and len(fci.df_name) > len(mine)
                and fci.df_name.startswith(mine)
            )
            if not exact and not partial:
                break
            if response.sw == 0x9000:
                found.append(_candidate(fci, config))
            if exact or not config.partial_selection:
                break
            next_occurrence = True
    return found


def _candidate(fci: Fci, config: AidConfig) -> Candidate:
    return Candidate(
        fci.df_name,
        fci.label,
        fci.preferred_name,
        fci.priority,
        fci.confirmation_required,
        config,
    )


async def build_candidates(txn: Transaction) -> list[Candidate]:
    """Build the candidate list: PSE first, else the list of AIDs (Book 1, 12.3)."""
    from_pse = await _from_pse(txn)
    if from_pse:
        return from_pse
    return await _from_aid_list(txn)


def order_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Order by the card's Application Priority Indicator, 1 first, none last (Book 1, 12.4).

    Stable: equal priorities keep the card's (or the terminal's) order.
    """
    return sorted(candidates, key=lambda c: c.priority or 16)


def _automatic(candidates: Sequence[Candidate], brand_priority: Sequence[str]) -> Candidate | None:
    """Automatic choice without the cardholder (Book 1, 12.4; EU IFR 2015/751 art. 8(6))."""
    eligible = [c for c in candidates if not c.confirmation_required]
    if not eligible:
        return None
    wanted = [bytes.fromhex(aid) for aid in brand_priority]
    for aid in wanted:
        for candidate in eligible:
            if candidate.aid.startswith(aid):
                return candidate
    return eligible[0]


async def choose(txn: Transaction, candidates: Sequence[Candidate]) -> Candidate:
    """Choose the application to select (Book 1, 12.4).

    Raises:
        EndTransaction: NOT_ACCEPTED when no candidate is left or none may be chosen without
            cardholder confirmation; CANCELLED when the cardholder cancels.
    """
    ordered = order_candidates(candidates)
    if not ordered:
        raise txn.end(Decision.NOT_ACCEPTED, "no mutually supported application")
    chooser = txn.request.choose_application
    if chooser is not None and (len(ordered) > 1 or ordered[0].confirmation_required):
        chosen = await chooser(ordered)
        if chosen is None:
            raise txn.end(Decision.CANCELLED, "cardholder cancelled application selection")
        if chosen not in ordered:
            raise txn.end(Decision.NOT_ACCEPTED, "chosen application is not a candidate")
        return chosen
    picked = _automatic(ordered, txn.config.cobadge_brand_priority)
    if picked is None:
        raise txn.end(
            Decision.NOT_ACCEPTED, "application requires cardholder confirmation, none possible"
        )
    return picked


async def final_select(txn: Transaction, candidates: list[Candidate]) -> Candidate:
    """Choose and SELECT the application; on failure remove it and choose again (Book 1, 12.4).

    Writes ``txn.fci``, ``txn.aid_config`` and ``txn.label``; removes the chosen candidate
    from ``candidates`` (so a later GPO 6985 can re-enter with the rest).
    """
    while True:
        candidate = await choose(txn, candidates)
        candidates.remove(candidate)
        response = await txn.io.send(select(candidate.aid))
        if response.sw != 0x9000:
            continue
        try:
            fci = parse_fci(response.data)
        except (CardDataError, TlvError):
            continue
        if fci.df_name != candidate.aid:
            continue
        txn.fci = fci
        txn.aid_config = candidate.config
        txn.label = fci.preferred_name or fci.label or candidate.label
        txn.card.update({k: v for k, v in fci.data.items() if k not in (0x9F38,)})
        txn.card[0x4F] = fci.df_name
        return candidate
