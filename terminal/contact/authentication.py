"""Offline data authentication as a kernel step (EMV 4.4 Book 3, 10.3; Book 2, 5-6).

Method choice (Book 3, 10.3): CDA when both the AIP (82 byte 1 b1) and the terminal (9F33
byte 3 b4) support it, else DDA (AIP b6, 9F33 b7), else SDA (AIP b7, 9F33 b8); none of these:
TVR "Offline data authentication was not performed". The checks themselves belong to
:mod:`terminal.oda`; this module feeds them and sets the TVR/TSI:

* SDA: TVR "SDA selected"; on failure "SDA failed" (+ "ICC data missing" when an object was
  absent); on success the DAC goes to 9F45.
* DDA: DDOL (9F49) or the configured default DDOL, which must contain the UN (9F37); INTERNAL
  AUTHENTICATE (a status other than 9000 terminates, Book 3, 6.5.9.4); on failure "DDA
  failed"; on success the ICC Dynamic Number goes to 9F4C.
* CDA: the ICC key is recovered before the first GENERATE AC (Book 2, 6.6); on failure "CDA
  failed" and CDA is not requested. The signature is checked by :func:`check_cda` after each
  GENERATE AC that asked for it.

TSI "Offline data authentication was performed" is set whenever a method was attempted.
Data read: 82, 8F, 90, 92, 93, 9F32, 9F46, 9F47, 9F48, 9F49, 9F4A, 5A, records for ODA.
Data written: 95, 9B, 9F45, 9F4C.
"""

from __future__ import annotations

from terminal.bits import TerminalCapabilities, TerminalCapabilitiesBit, TsiBit, TvrBit
from terminal.commands import internal_authenticate, parse_internal_authenticate
from terminal.contact.state import Transaction
from terminal.dol import parse_dol
from terminal.oda import (
    OdaCheck,
    OdaFailure,
    OdaMethod,
    OdaStage,
    perform_sda,
    recover_icc_public_key,
    tvr_byte1_bits,
    verify_cda_response,
    verify_dda,
)
from terminal.result import Decision

__all__ = ["check_cda", "choose_method", "perform_oda", "static_data"]

_BYTE1_BITS = [bit for bit in TvrBit if bit.byte == 1]


def choose_method(txn: Transaction) -> OdaMethod | None:
    """Pick the ODA method both sides support (Book 3, 10.3)."""
    caps = TerminalCapabilities(bytes.fromhex(txn.config.terminal_capabilities))
    aip = txn.aip
    if aip.cda_supported and caps.is_set(TerminalCapabilitiesBit.CDA):
        return OdaMethod.CDA
    if aip.dda_supported and caps.is_set(TerminalCapabilitiesBit.DDA):
        return OdaMethod.DDA
    if aip.sda_supported and caps.is_set(TerminalCapabilitiesBit.SDA):
        return OdaMethod.SDA
    return None


def _fail(txn: Transaction, method: OdaMethod, failure: OdaFailure) -> None:
    bits = tvr_byte1_bits(method, failure)
    for bit in _BYTE1_BITS:
        if bits & bit.mask:
            txn.set_tvr(bit)
    txn.oda_verified = False


def static_data(txn: Transaction) -> bytes | OdaFailure:
    """The static data to be authenticated, from the collector (Book 3, 10.3)."""
    if txn.collector is None:
        return OdaFailure(OdaStage.STATIC_DATA, OdaCheck.DATA_MISSING, "records not read")
    return txn.collector.finish(txn.card.get(0x9F4A), txn.card)


async def perform_oda(txn: Transaction) -> None:
    """Perform SDA or DDA, or prepare CDA (Book 3, 10.3).

    Raises:
        EndTransaction: TERMINATED when INTERNAL AUTHENTICATE is not answered with 9000.
    """
    method = choose_method(txn)
    txn.oda_method = method
    if method is None:
        txn.set_tvr(TvrBit.ODA_NOT_PERFORMED)
        return
    txn.set_tsi(TsiBit.ODA_PERFORMED)
    today = txn.env.clock().date()
    rid = txn.aid[:5]
    data = static_data(txn)
    if method is OdaMethod.SDA:
        txn.set_tvr(TvrBit.SDA_SELECTED)
        sda = perform_sda(txn.capk, rid, txn.card, data, today)
        if isinstance(sda, OdaFailure):
            _fail(txn, method, sda)
            return
        txn.terminal[0x9F45] = sda.data_authentication_code
        txn.oda_verified = True
        return
    icc = recover_icc_public_key(txn.capk, rid, txn.card, data, today)
    if isinstance(icc, OdaFailure):
        _fail(txn, method, icc)
        return
    txn.icc_key = icc
    if method is OdaMethod.CDA:
        return  # verified with the GENERATE AC response (check_cda)
    await _dda(txn, method)


async def _dda(txn: Transaction, method: OdaMethod) -> None:
    """INTERNAL AUTHENTICATE and SDAD check (Book 3, 6.5.9; Book 2, 6.5)."""
    assert txn.icc_key is not None
    ddol = txn.card.get(0x9F49)
    if ddol is None and txn.aid_config is not None:
        ddol = bytes.fromhex(txn.aid_config.default_ddol)
    entries = parse_dol(ddol) if ddol else []
    if not any(tag == 0x9F37 for tag, _ in entries):
        _fail(txn, method, OdaFailure(OdaStage.SDAD, OdaCheck.DATA_MISSING, "DDOL without 9F37"))
        return
    ddol_data = txn.dol_data(entries)
    response = await txn.io.send(internal_authenticate(ddol_data), dol=entries)
    if response.sw != 0x9000:
        raise txn.end(Decision.TERMINATED, f"INTERNAL AUTHENTICATE failed ({response.sw:04X})")
    sdad = parse_internal_authenticate(response.data)
    result = verify_dda(txn.icc_key, sdad, ddol_data)
    if isinstance(result, OdaFailure):
        _fail(txn, method, result)
        return
    txn.card[0x9F4C] = result.icc_dynamic_number
    txn.oda_verified = True


def check_cda(txn: Transaction, response_data: bytes, cdol_data: bytes, second: bool) -> bool:
    """Verify the CDA signature of a GENERATE AC response (Book 2, 6.6.2; Book 3, 10.8).

    Args:
        txn: The transaction (ICC key, UN, PDOL and CDOL1 data).
        response_data: The GENERATE AC response data field.
        cdol_data: The CDOL1 data (first) or CDOL2 data (second GENERATE AC).
        second: True for the second GENERATE AC.

    Returns:
        True when the signature verifies; on failure TVR "CDA failed" is set.
    """
    assert txn.icc_key is not None
    result = verify_cda_response(
        txn.icc_key,
        response_data,
        unpredictable_number=txn.terminal[0x9F37],
        pdol_data=txn.pdol_data,
        cdol1_data=txn.cdol1_data,
        cdol2_data=cdol_data if second else None,
    )
    if isinstance(result, OdaFailure):
        _fail(txn, OdaMethod.CDA, result)
        return False
    txn.card[0x9F4C] = result.icc_dynamic_number
    if result.application_cryptogram is not None:
        txn.card[0x9F26] = result.application_cryptogram
    txn.oda_verified = True
    return True
