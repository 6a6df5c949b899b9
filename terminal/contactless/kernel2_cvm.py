"""Kernel 2 CVM selection (EMV Contactless Book C-2, 3.x "CVM Selection", S456.x; EMV 4.4 Book 3,
10.5).

Kernel 2 chooses the CVM but performs none itself: online PIN and signature are outcome
parameters for the POS system (Book A, Table 6-1 "CVM"); the consumer device CVM was done on
the phone. The steps:

1. On-device CVM (C-2, S456.x): card (AIP byte 1 bit 2) and reader (Kernel Configuration)
   support it: above the Reader CVM Required Limit the CVM is "Confirmation Code Verified",
   CVM Results ``01 00 02``; at or below it "No CVM", ``3F 00 02``.
2. AIP without "cardholder verification supported": "No CVM", ``3F 00 00``.
3. No CVM List (8E), or one without rules: TVR "ICC data missing", ``3F 00 00``.
4. The CV Rules in order, with the conditions of Book 3 Annex C3 (shared with the contact
   kernel: :func:`terminal.contact.cvm.condition_satisfied`), the CVM capability deciding which
   methods the terminal "supports": online PIN (Online PIN entered, result unknown), signature
   (result unknown), no CVM required (successful), fail CVM processing (failed). An
   unrecognised CVM sets "Unrecognised CVM"; an unsupported or failed CVM moves to the next
   rule when its b7 says so, else verification fails. No satisfied rule: ``3F 00 01``.
   CVM Results byte 1 carries the method bits b6-b1 (Book C-2, S456.x).

Data read: 82, 8E, 9F42, 5F2A, 9F02, 9C, CVM capability. Data written: 9F34, 95 (byte 3).
"""

from __future__ import annotations

from terminal.bits import TvrBit
from terminal.contact.cvm import condition_satisfied
from terminal.contact.state import Transaction
from terminal.contactless.outcome import CvmOutcome
from terminal.cvm_list import CvmMethod, CvmResult, CvmRule, parse_cvm_list
from terminal.errors import CardDataError

__all__ = ["select_cvm"]

_CAPABILITY_BIT = {
    CvmMethod.ENCIPHERED_PIN_ONLINE: 0x40,
    CvmMethod.SIGNATURE: 0x20,
    CvmMethod.NO_CVM_REQUIRED: 0x08,
    CvmMethod.FAIL: 0x00,
}


def _results(method: int, condition: int, result: CvmResult) -> bytes:
    return bytes((method & 0x3F, condition, int(result)))


def select_cvm(txn: Transaction, *, above_cvm_limit: bool, on_device_cvm: bool) -> CvmOutcome:
    """Choose the CVM of a kernel 2 transaction (Book C-2, S456.x; Book 3, 10.5).

    Args:
        txn: The transaction state; its configuration's Terminal Capabilities byte 2 must hold
            the CVM capability in force (CVM Required or No CVM Required).
        above_cvm_limit: Amount, Authorised exceeds the Reader CVM Required Limit.
        on_device_cvm: The reader supports on-device CVM (Kernel Configuration).

    Returns:
        The CVM outcome parameter; CVM Results (9F34) and the TVR are updated.
    """
    if txn.aip.on_device_cv_supported and on_device_cvm:
        if above_cvm_limit:
            txn.set_cvm_results(bytes.fromhex("010002"))
            return CvmOutcome.CONFIRMATION_CODE_VERIFIED
        txn.set_cvm_results(bytes.fromhex("3F0002"))
        return CvmOutcome.NO_CVM
    if not txn.aip.cv_supported:
        txn.set_cvm_results(bytes.fromhex("3F0000"))
        return CvmOutcome.NO_CVM
    raw = txn.card.get(0x8E)
    try:
        cvm_list = parse_cvm_list(raw) if raw else None
    except CardDataError:
        cvm_list = None
    if cvm_list is None or not cvm_list.rules:
        txn.set_tvr(TvrBit.ICC_DATA_MISSING)
        txn.set_cvm_results(bytes.fromhex("3F0000"))
        return CvmOutcome.NO_CVM
    capability = bytes.fromhex(txn.config.terminal_capabilities)[1]
    for rule in cvm_list.rules:
        if not condition_satisfied(txn, rule, cvm_list):
            continue
        outcome = _apply(txn, rule, capability)
        if outcome is not None:
            return outcome
        if not rule.apply_next:
            return _failed(txn, rule)
    txn.set_tvr(TvrBit.CV_NOT_SUCCESSFUL)
    txn.set_cvm_results(bytes.fromhex("3F0001"))
    return CvmOutcome.NO_CVM


def _apply(txn: Transaction, rule: CvmRule, capability: int) -> CvmOutcome | None:
    """Try one rule; ``None`` when its CVM is unrecognised, unsupported or fails."""
    method = rule.method
    if method is None or method not in _CAPABILITY_BIT:
        if method is None:
            txn.set_tvr(TvrBit.UNRECOGNISED_CVM)
        return None
    if method is CvmMethod.FAIL:
        return None
    if not capability & _CAPABILITY_BIT[method]:
        return None
    if method is CvmMethod.ENCIPHERED_PIN_ONLINE:
        txn.set_tvr(TvrBit.ONLINE_PIN_ENTERED)
        txn.set_cvm_results(_results(rule.code, rule.condition_code, CvmResult.UNKNOWN))
        return CvmOutcome.ONLINE_PIN
    if method is CvmMethod.SIGNATURE:
        txn.set_cvm_results(_results(rule.code, rule.condition_code, CvmResult.UNKNOWN))
        return CvmOutcome.SIGNATURE
    txn.set_cvm_results(_results(rule.code, rule.condition_code, CvmResult.SUCCESSFUL))
    return CvmOutcome.NO_CVM


def _failed(txn: Transaction, rule: CvmRule) -> CvmOutcome:
    """Cardholder verification failed on ``rule`` (Book 3, 10.5)."""
    txn.set_tvr(TvrBit.CV_NOT_SUCCESSFUL)
    txn.set_cvm_results(_results(rule.code, rule.condition_code, CvmResult.FAILED))
    return CvmOutcome.NO_CVM
