"""Cardholder verification (EMV 4.4 Book 3, 10.5; Book 4, 6.3.4 and Annex A4).

* AIP without "cardholder verification supported": nothing is done, 9F34 = ``3F 00 00``.
* No CVM List (8E), or one without rules: TVR "ICC data missing", 9F34 = ``3F 00 00``, TSI
  "cardholder verification performed" not set (10.5).
* Otherwise the rules are tried in order (10.5): a rule whose condition (Annex C3, Table 44)
  is not satisfied, or not understood, is skipped. An unrecognised CVM sets "Unrecognised
  CVM" and counts as failed. A failed CVM moves on to the next rule when its b7 ("apply
  succeeding rule") is set; otherwise cardholder verification fails: TVR "Cardholder
  verification was not successful" and 9F34 records the failed rule. No satisfied rule at
  all: the same TVR bit and 9F34 = ``3F 00 01``. Conditions on amounts X/Y apply only when
  the transaction is in the application currency (9F42 = 5F2A).
* Methods: offline plaintext/enciphered PIN through the PIN pad (10.5.1; PIN Try Counter by
  GET DATA 9F17, zero → "PIN Try Limit exceeded"; the PIN key from :mod:`terminal.oda`; GET
  CHALLENGE for the enciphered PIN), online PIN (10.5.2, "Online PIN entered"), signature
  (10.5.3, result "unknown"), no CVM required, fail CVM; the combinations PIN + signature.
  A PIN CVM without a (working) PIN pad or without terminal support sets "PIN entry required
  and PIN pad not present or not working"; a bypassed entry sets "PIN entry required, PIN pad
  present, but PIN was not entered".

Data read: 82, 8E, 9F42, 9F33, 5F2A, 9F02, 9F03, 9C, 9F17. Data written: 95, 9B, 9F34.
"""

from __future__ import annotations

from terminal.bits import TerminalCapabilities, TerminalCapabilitiesBit, TsiBit, TvrBit
from terminal.commands import get_challenge, get_data, parse_get_data
from terminal.contact.authentication import static_data
from terminal.contact.state import Transaction
from terminal.cvm_list import (
    CvmCondition,
    CvmList,
    CvmMethod,
    CvmResult,
    CvmResults,
    CvmRule,
    parse_cvm_list,
)
from terminal.errors import CardDataError, TlvError
from terminal.oda import OdaFailure, recover_pin_public_key
from terminal.pinpad import OnlinePinBlock, PinEntry, PinStatus

__all__ = ["cardholder_verification", "condition_satisfied"]

_MAX_PIN_ATTEMPTS = 3
_PIN_METHODS = {
    CvmMethod.PLAINTEXT_PIN_ICC: (TerminalCapabilitiesBit.PLAINTEXT_PIN_ICC, False, False),
    CvmMethod.PLAINTEXT_PIN_ICC_AND_SIGNATURE: (
        TerminalCapabilitiesBit.PLAINTEXT_PIN_ICC,
        False,
        True,
    ),
    CvmMethod.ENCIPHERED_PIN_ICC: (TerminalCapabilitiesBit.ENCIPHERED_PIN_OFFLINE, True, False),
    CvmMethod.ENCIPHERED_PIN_ICC_AND_SIGNATURE: (
        TerminalCapabilitiesBit.ENCIPHERED_PIN_OFFLINE,
        True,
        True,
    ),
}


def _caps(txn: Transaction) -> TerminalCapabilities:
    return TerminalCapabilities(bytes.fromhex(txn.config.terminal_capabilities))


def _terminal_supports(txn: Transaction, method: CvmMethod | None) -> bool:
    caps = _caps(txn)
    if method is None:
        return False
    if method in _PIN_METHODS:
        bit, _, signature = _PIN_METHODS[method]
        return caps.is_set(bit) and (
            not signature or caps.is_set(TerminalCapabilitiesBit.SIGNATURE)
        )
    simple = {
        CvmMethod.ENCIPHERED_PIN_ONLINE: TerminalCapabilitiesBit.ENCIPHERED_PIN_ONLINE,
        CvmMethod.SIGNATURE: TerminalCapabilitiesBit.SIGNATURE,
        CvmMethod.NO_CVM_REQUIRED: TerminalCapabilitiesBit.NO_CVM_REQUIRED,
    }
    if method in simple:
        return caps.is_set(simple[method])
    return method is CvmMethod.FAIL


def condition_satisfied(txn: Transaction, rule: CvmRule, cvm_list: CvmList) -> bool | None:
    """Whether a CV Rule's condition holds (Book 3, 10.5, Annex C3 Table 44).

    Returns:
        ``True``/``False``; ``None`` when the condition is not understood (RFU, proprietary).
    """
    condition = rule.condition
    request = txn.request
    if condition is None:
        return None
    cash = request.is_cash
    unattended = request.unattended
    if condition is CvmCondition.ALWAYS:
        return True
    if condition is CvmCondition.UNATTENDED_CASH:
        return cash and unattended
    if condition is CvmCondition.NOT_CASH_OR_CASHBACK:
        return not cash and not request.is_cashback
    if condition is CvmCondition.TERMINAL_SUPPORTS_CVM:
        return _terminal_supports(txn, rule.method)
    if condition is CvmCondition.MANUAL_CASH:
        return cash and not unattended
    if condition is CvmCondition.PURCHASE_WITH_CASHBACK:
        return request.is_cashback
    app_currency = txn.card.get(0x9F42)
    if app_currency is None or app_currency != txn.terminal.get(0x5F2A):
        return False
    amount = request.amount
    if condition is CvmCondition.UNDER_X:
        return amount < cvm_list.amount_x
    if condition is CvmCondition.OVER_X:
        return amount > cvm_list.amount_x
    if condition is CvmCondition.UNDER_Y:
        return amount < cvm_list.amount_y
    return amount > cvm_list.amount_y  # OVER_Y


async def _pin_try_counter(txn: Transaction) -> int | None:
    """GET DATA 9F17 (Book 3, 10.5.1); ``None`` when the card does not return it."""
    response = await txn.io.send(get_data(0x9F17))
    if response.sw != 0x9000:
        return None
    try:
        value = parse_get_data(response.data, 0x9F17)
    except (CardDataError, TlvError):
        return None
    return value[0] if len(value) == 1 else None


async def _offline_pin(txn: Transaction, method: CvmMethod) -> CvmResult | None:
    """Offline PIN through the PIN pad (Book 3, 10.5.1). ``None`` means the CVM failed."""
    _, enciphered, signature = _PIN_METHODS[method]
    if txn.pinpad is None or not txn.config.pin_pad_present:
        txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
        return None
    tries = await _pin_try_counter(txn)
    if tries == 0:
        txn.set_tvr(TvrBit.PIN_TRY_LIMIT_EXCEEDED)
        return None
    key = None
    challenge = None
    if enciphered:
        recovered = recover_pin_public_key(
            txn.capk, txn.aid[:5], txn.card, static_data(txn), txn.env.clock().date()
        )
        if isinstance(recovered, OdaFailure):
            return None
        key = recovered.key
    for _ in range(_MAX_PIN_ATTEMPTS):
        if enciphered:  # a fresh unpredictable number for each encipherment (Book 2, 7.1)
            response = await txn.io.send(get_challenge())
            if response.sw != 0x9000 or len(response.data) != 8:
                return None
            challenge = response.data
        entry: PinEntry = await txn.pinpad.verify_offline(
            txn.io.send_raw,
            enciphered=enciphered,
            icc_key=key,
            challenge=challenge,
            tries_left=tries,
        )
        if entry.status is PinStatus.VERIFIED:
            txn.signature_required = signature
            return CvmResult.UNKNOWN if signature else CvmResult.SUCCESSFUL
        if entry.status is PinStatus.BLOCKED:
            txn.set_tvr(TvrBit.PIN_TRY_LIMIT_EXCEEDED)
            return None
        if entry.status in (PinStatus.BYPASSED, PinStatus.CANCELLED):
            txn.set_tvr(TvrBit.PIN_NOT_ENTERED)
            return None
        if entry.status is PinStatus.NOT_WORKING:
            txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
            return None
        tries = entry.tries_left
        if tries == 0:
            txn.set_tvr(TvrBit.PIN_TRY_LIMIT_EXCEEDED)
            return None
    return None


async def _online_pin(txn: Transaction) -> CvmResult | None:
    """Online enciphered PIN (Book 3, 10.5.2). ``None`` means the CVM failed."""
    if txn.pinpad is None or not txn.config.pin_pad_present:
        txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
        return None
    outcome = await txn.pinpad.online_pin(pan=txn.pan or "", tries_left=None)
    if isinstance(outcome, OnlinePinBlock):
        txn.online_pin = outcome
        txn.set_tvr(TvrBit.ONLINE_PIN_ENTERED)
        return CvmResult.UNKNOWN
    if outcome.status is PinStatus.NOT_WORKING:
        txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
    else:
        txn.set_tvr(TvrBit.PIN_NOT_ENTERED)
    return None


async def _perform(txn: Transaction, rule: CvmRule) -> CvmResult | None:
    """Perform one recognised CVM; ``None`` when it failed (Book 3, 10.5.1-10.5.3)."""
    method = rule.method
    if method is None:
        txn.set_tvr(TvrBit.UNRECOGNISED_CVM)
        return None
    supported = _terminal_supports(txn, method)
    if method in _PIN_METHODS:
        if not supported:
            txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
            return None
        return await _offline_pin(txn, method)
    if method is CvmMethod.ENCIPHERED_PIN_ONLINE:
        if not supported or not txn.config.online_capable:
            txn.set_tvr(TvrBit.PIN_PAD_NOT_PRESENT)
            return None
        return await _online_pin(txn)
    if method is CvmMethod.SIGNATURE and supported:
        txn.signature_required = True
        return CvmResult.UNKNOWN
    if method is CvmMethod.NO_CVM_REQUIRED and supported:
        return CvmResult.SUCCESSFUL
    return None  # fail CVM, biometrics, or a method the terminal does not support


async def cardholder_verification(txn: Transaction) -> None:
    """Cardholder verification (Book 3, 10.5). Sets TVR byte 3, TSI and 9F34."""
    if not txn.aip.cv_supported:
        txn.set_cvm_results(CvmResults.no_cvm_performed(CvmResult.UNKNOWN).bytes())
        return
    raw = txn.card.get(0x8E)
    cvm_list: CvmList | None = None
    if raw is not None:
        try:
            cvm_list = parse_cvm_list(raw)
        except CardDataError:
            cvm_list = None
    if cvm_list is None or not cvm_list.rules:
        txn.set_tvr(TvrBit.ICC_DATA_MISSING)
        txn.set_cvm_results(CvmResults.no_cvm_performed(CvmResult.UNKNOWN).bytes())
        return
    txn.set_tsi(TsiBit.CV_PERFORMED)
    for rule in cvm_list.rules:
        if not condition_satisfied(txn, rule, cvm_list):
            continue
        result = await _perform(txn, rule)
        if result is not None:
            txn.set_cvm_results(CvmResults.for_rule(rule, result).bytes())
            return
        if not rule.apply_next:
            txn.set_tvr(TvrBit.CV_NOT_SUCCESSFUL)
            txn.set_cvm_results(CvmResults.for_rule(rule, CvmResult.FAILED).bytes())
            return
        last_failed = rule
        txn.set_cvm_results(CvmResults.for_rule(last_failed, CvmResult.FAILED).bytes())
    txn.set_tvr(TvrBit.CV_NOT_SUCCESSFUL)
    if txn.cvm_results == bytes(3):
        txn.set_cvm_results(CvmResults.no_cvm_performed(CvmResult.FAILED).bytes())
