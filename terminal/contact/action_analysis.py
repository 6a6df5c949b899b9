"""Terminal action analysis, GENERATE AC and card action analysis (EMV 4.4 Book 3, 10.7-10.8).

* 10.7 Terminal action analysis. Absent IACs count as: Denial all zero, Online and Default all
  one (``FF``). TVR ∩ (IAC-Denial | TAC-Denial) → AAC. Otherwise, for a terminal that can go
  online, TVR ∩ (IAC-Online | TAC-Online) → ARQC, else TC; for an offline-only terminal,
  TVR ∩ (IAC-Default | TAC-Default) → AAC, else TC. A refund asks for an AAC (the card does
  not authorise credits; the acquirer does). The same Default codes decide when the terminal
  is unable to go online (:func:`default_action`).
* 10.8 GENERATE AC: the CDOL-related data (with the TC Hash Value, tag 98, over the TDOL data
  when the CDOL asks for it: card TDOL 97, else the configured default, which sets "Default
  TDOL used"); CDA is requested (P1 b5) when CDA is the ODA method, the ICC key was
  recovered and the terminal asks for a TC or an ARQC. A status other than 9000 terminates; a
  card answering with a cryptogram above the one requested (AAC < ARQC < TC) or an RFU type
  terminates; TSI "Card risk management was performed" is set.

Data read: 95, 9F0D-9F0F, TACs, 8C, 8D, 97. Data written: 9F27, 9F36, 9F26, 9F10, 98, 9B.
"""

from __future__ import annotations

from terminal.bits import CryptogramType, TsiBit, TvrBit
from terminal.commands import GenAcResponse, generate_ac, parse_genac
from terminal.contact.authentication import check_cda
from terminal.contact.state import Transaction
from terminal.dol import parse_dol
from terminal.environment import TransactionType
from terminal.errors import CardDataError
from terminal.oda.recovery import sha1
from terminal.oda.results import OdaMethod
from terminal.result import Decision

__all__ = [
    "cryptogram_allowed",
    "default_action",
    "request_cryptogram",
    "terminal_action_analysis",
]

_RANK = {CryptogramType.AAC: 0, CryptogramType.ARQC: 1, CryptogramType.TC: 2}
_ALL_ONES = b"\xff" * 5


def _iac(txn: Transaction, tag: int, absent: bytes) -> bytes:
    value = txn.card.get(tag)
    return value if value is not None and len(value) == 5 else absent


def _hits(txn: Transaction, iac: bytes, tac: bytes) -> bool:
    return txn.tvr.intersects(bytes(a | b for a, b in zip(iac, tac, strict=True)))


def _tac(txn: Transaction, which: str) -> bytes:
    return txn.aid_config.tac(which) if txn.aid_config is not None else bytes(5)


def default_action(txn: Transaction) -> CryptogramType:
    """IAC/TAC-Default: AAC when a TVR bit matches, else TC (Book 3, 10.7)."""
    if _hits(txn, _iac(txn, 0x9F0D, _ALL_ONES), _tac(txn, "default")):
        return CryptogramType.AAC
    return CryptogramType.TC


def terminal_action_analysis(txn: Transaction) -> CryptogramType:
    """Decide which cryptogram to ask for in the first GENERATE AC (Book 3, 10.7)."""
    if txn.request.transaction_type is TransactionType.REFUND:
        return CryptogramType.AAC
    if _hits(txn, _iac(txn, 0x9F0E, bytes(5)), _tac(txn, "denial")):
        return CryptogramType.AAC
    if txn.config.online_capable:
        if txn.request.force_online:
            return CryptogramType.ARQC
        if _hits(txn, _iac(txn, 0x9F0F, _ALL_ONES), _tac(txn, "online")):
            return CryptogramType.ARQC
        return CryptogramType.TC
    return default_action(txn)


def cryptogram_allowed(requested: CryptogramType, returned: CryptogramType) -> bool:
    """The card may answer with the requested type or a lower one (Book 3, 6.5.5.4)."""
    if returned not in _RANK:
        return False
    return _RANK[returned] <= _RANK[requested]


def _tc_hash(txn: Transaction) -> None:
    """TC Hash Value (98) over the TDOL data (Book 3, 5.4 and 10.8)."""
    tdol = txn.card.get(0x97)
    if tdol is None and txn.aid_config is not None and txn.aid_config.default_tdol:
        tdol = bytes.fromhex(txn.aid_config.default_tdol)
        txn.set_tvr(TvrBit.DEFAULT_TDOL_USED)
    data = txn.dol_data(tdol) if tdol else b""
    txn.terminal[0x98] = sha1(data)


async def request_cryptogram(
    txn: Transaction, kind: CryptogramType, *, second: bool = False
) -> tuple[GenAcResponse, bool | None]:
    """Send GENERATE AC with CDOL1 (first) or CDOL2 (second) data (Book 3, 10.8 and 10.9).

    Returns:
        The parsed response and the CDA outcome (``None`` when CDA was not requested or the
        card answered with an AAC).

    Raises:
        EndTransaction: TERMINATED on a status other than 9000 or a cryptogram type the card
            may not return.
        CardDataError: on a malformed response.
    """
    cdol = txn.card[0x8D if second else 0x8C]
    entries = parse_dol(cdol)
    if any(tag == 0x98 for tag, _ in entries):
        _tc_hash(txn)
    data = txn.dol_data(entries)
    if not second:
        txn.cdol1_data = data
    cda = (
        txn.oda_method is OdaMethod.CDA
        and txn.icc_key is not None
        and kind is not CryptogramType.AAC
        and not txn.tvr.is_set(TvrBit.CDA_FAILED)
    )
    response = await txn.io.send(generate_ac(kind, data, cda=cda), dol=entries)
    if response.sw != 0x9000:
        step = "second" if second else "first"
        raise txn.end(Decision.TERMINATED, f"{step} GENERATE AC failed ({response.sw:04X})")
    parsed = parse_genac(response.data)
    returned = parsed.cryptogram_type
    if not cryptogram_allowed(kind, returned):
        raise CardDataError("card returned a cryptogram above the one requested", tag=0x9F27)
    txn.set_tsi(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)
    txn.cid = parsed.cid
    for tag, value in parsed.data.items():
        txn.card[tag] = value
    cda_ok: bool | None = None
    if cda and returned is not CryptogramType.AAC:
        cda_ok = check_cda(txn, response.data, data, second)
    if not parsed.cryptogram and cda_ok is None:
        raise CardDataError("application cryptogram absent", tag=0x9F26)
    return parsed, cda_ok
