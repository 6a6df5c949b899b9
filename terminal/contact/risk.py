"""Terminal risk management (EMV 4.4 Book 3, 10.6).

Performed when the AIP asks for it (82 byte 1 b4); TSI "Terminal risk management was
performed" is then set.

* 10.6.1 Floor limits and the exception file: the amount at or above the application's
  floor limit → "Transaction exceeds floor limit"; the PAN (with or without its sequence
  number) on the exception file → "Card appears on terminal exception file". The exception
  file holds SHA-256 hashes only (:func:`terminal.config.exception_file_entry`).
* 10.6.2 Random transaction selection: below the threshold the draw (1..99, injected) selects
  the transaction when it is at most the target percentage; from the threshold up to the floor
  limit the target rises linearly to the maximum target. Selected → "Transaction selected
  randomly for online processing". Not applied when the terminal cannot go online.
* 10.6.3 Velocity checking, when the card has LCOL (9F14) and UCOL (9F23): GET DATA ATC
  (9F36) and Last Online ATC Register (9F13). Either not returned, or ATC not above the last
  online ATC: both "Lower/Upper consecutive offline limit exceeded". Otherwise the
  difference above LCOL/UCOL sets the matching bit; a last online ATC of zero sets "New card".

Data read: 82, 5A, 5F34, 9F14, 9F23, 9F02; GET DATA 9F36, 9F13. Data written: 95, 9B.
"""

from __future__ import annotations

from terminal.bits import TsiBit, TvrBit
from terminal.commands import get_data, parse_get_data
from terminal.contact.state import Transaction
from terminal.errors import CardDataError, TlvError

__all__ = ["random_selection_target", "terminal_risk_management"]


def random_selection_target(
    amount: int, floor_limit: int, threshold: int, target: int, max_target: int
) -> int | None:
    """The target percentage for random selection (Book 3, 10.6.2), ``None`` above the floor.

    Below the threshold: ``target``. From the threshold to the floor limit:
    ``target + (max_target - target) * (amount - threshold) / (floor_limit - threshold)``.
    """
    if amount >= floor_limit > 0:
        return None
    if amount < threshold or floor_limit <= threshold:
        return target
    interpolation = (max_target - target) * (amount - threshold) / (floor_limit - threshold)
    return int(target + interpolation)


async def _get_counter(txn: Transaction, tag: int) -> int | None:
    response = await txn.io.send(get_data(tag))
    if response.sw != 0x9000:
        return None
    try:
        value = parse_get_data(response.data, tag)
    except (CardDataError, TlvError):
        return None
    return int.from_bytes(value, "big") if len(value) == 2 else None


async def _velocity(txn: Transaction) -> None:
    lcol_raw, ucol_raw = txn.card.get(0x9F14), txn.card.get(0x9F23)
    if lcol_raw is None or ucol_raw is None or len(lcol_raw) != 1 or len(ucol_raw) != 1:
        return
    atc = await _get_counter(txn, 0x9F36)
    last_online = await _get_counter(txn, 0x9F13)
    if atc is None or last_online is None or atc <= last_online:
        txn.set_tvr(TvrBit.LCOL_EXCEEDED)
        txn.set_tvr(TvrBit.UCOL_EXCEEDED)
        return
    if last_online == 0:
        txn.set_tvr(TvrBit.NEW_CARD)
    offline_count = atc - last_online
    if offline_count > lcol_raw[0]:
        txn.set_tvr(TvrBit.LCOL_EXCEEDED)
    if offline_count > ucol_raw[0]:
        txn.set_tvr(TvrBit.UCOL_EXCEEDED)


async def terminal_risk_management(txn: Transaction) -> None:
    """Floor limit, exception file, random selection and velocity (Book 3, 10.6)."""
    if not txn.aip.trm_required:
        return
    txn.set_tsi(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)
    pan = txn.pan
    if pan is not None and txn.config.on_exception_file(pan, txn.pan_sequence_number):
        txn.set_tvr(TvrBit.CARD_ON_EXCEPTION_FILE)
    aid = txn.aid_config
    floor_limit = aid.floor_limit if aid is not None else 0
    amount = txn.request.amount
    if amount >= floor_limit:
        txn.set_tvr(TvrBit.EXCEEDS_FLOOR_LIMIT)
    elif aid is not None and txn.config.online_capable:
        target = random_selection_target(
            amount,
            floor_limit,
            aid.random_selection_threshold,
            aid.random_selection_target_percent,
            aid.random_selection_max_target_percent,
        )
        if target is not None and txn.env.random_percent() <= target:
            txn.set_tvr(TvrBit.RANDOMLY_SELECTED_ONLINE)
    await _velocity(txn)
