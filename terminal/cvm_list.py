"""CVM List (tag ``8E``) and CVM Results (tag ``9F34``) codecs (EMV 4.4 Book 3, 10.5 and Annex C3).

A CVM List is amount X (4 bytes, binary), amount Y (4 bytes, binary) and then CVM Rules of two
bytes each: the CVM Code (b8 RFU, b7 "apply succeeding CV Rule if this CVM is unsuccessful",
b6-b1 the method) and the CVM Condition Code. Annex A gives its length as 10 to 252 bytes.

This module only decodes and describes; choosing a rule (the conditions, the terminal's
capabilities, the amounts) is the CVM processing step of the kernel (Book 3, 10.5).
Every malformed list raises :class:`~terminal.errors.CardDataError` with tag ``8E`` and the
offset of the problem; nothing else escapes :func:`parse_cvm_list`.
"""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass

from terminal.errors import CardDataError

__all__ = [
    "CVM_LIST_TAG",
    "CVM_RESULTS_TAG",
    "CvmCondition",
    "CvmList",
    "CvmMethod",
    "CvmResult",
    "CvmResults",
    "CvmRule",
    "condition_text",
    "method_text",
    "parse_cvm_list",
]

CVM_LIST_TAG = 0x8E
CVM_RESULTS_TAG = 0x9F34
_APPLY_NEXT = 0x40
_METHOD_MASK = 0x3F
_AMOUNTS_LEN = 8
_MIN_LEN = 10  # Book 3, Annex A: "var. 10-252"


class CvmMethod(enum.IntEnum):
    """CVM codes, b6-b1 of the first rule byte (EMV 4.4 Book 3, Annex C3, Table 43)."""

    FAIL = 0x00
    PLAINTEXT_PIN_ICC = 0x01
    ENCIPHERED_PIN_ONLINE = 0x02
    PLAINTEXT_PIN_ICC_AND_SIGNATURE = 0x03
    ENCIPHERED_PIN_ICC = 0x04
    ENCIPHERED_PIN_ICC_AND_SIGNATURE = 0x05
    FACIAL_BIOMETRIC_OFFLINE = 0x06
    FACIAL_BIOMETRIC_ONLINE = 0x07
    FINGER_BIOMETRIC_OFFLINE = 0x08
    FINGER_BIOMETRIC_ONLINE = 0x09
    PALM_BIOMETRIC_OFFLINE = 0x0A
    PALM_BIOMETRIC_ONLINE = 0x0B
    IRIS_BIOMETRIC_OFFLINE = 0x0C
    IRIS_BIOMETRIC_ONLINE = 0x0D
    VOICE_BIOMETRIC_OFFLINE = 0x0E
    VOICE_BIOMETRIC_ONLINE = 0x0F
    SIGNATURE = 0x1E
    NO_CVM_REQUIRED = 0x1F
    NO_CVM_PERFORMED = 0x3F  # CVM Results only; "not available for use" in a CVM List


_METHOD_TEXT: dict[int, str] = {
    CvmMethod.FAIL: "fail CVM processing",
    CvmMethod.PLAINTEXT_PIN_ICC: "plaintext PIN offline",
    CvmMethod.ENCIPHERED_PIN_ONLINE: "enciphered PIN online",
    CvmMethod.PLAINTEXT_PIN_ICC_AND_SIGNATURE: "plaintext PIN offline and signature",
    CvmMethod.ENCIPHERED_PIN_ICC: "enciphered PIN offline",
    CvmMethod.ENCIPHERED_PIN_ICC_AND_SIGNATURE: "enciphered PIN offline and signature",
    CvmMethod.SIGNATURE: "signature",
    CvmMethod.NO_CVM_REQUIRED: "no CVM required",
    CvmMethod.NO_CVM_PERFORMED: "no CVM performed",
}
for _kind in ("facial", "finger", "palm", "iris", "voice"):
    _METHOD_TEXT[CvmMethod[f"{_kind.upper()}_BIOMETRIC_OFFLINE"]] = f"{_kind} biometric offline"
    _METHOD_TEXT[CvmMethod[f"{_kind.upper()}_BIOMETRIC_ONLINE"]] = f"{_kind} biometric online"


class CvmCondition(enum.IntEnum):
    """CVM Condition Codes, second rule byte (EMV 4.4 Book 3, Annex C3, Table 44)."""

    ALWAYS = 0x00
    UNATTENDED_CASH = 0x01
    NOT_CASH_OR_CASHBACK = 0x02
    TERMINAL_SUPPORTS_CVM = 0x03
    MANUAL_CASH = 0x04
    PURCHASE_WITH_CASHBACK = 0x05
    UNDER_X = 0x06
    OVER_X = 0x07
    UNDER_Y = 0x08
    OVER_Y = 0x09


_CONDITION_TEXT: dict[int, str] = {
    CvmCondition.ALWAYS: "always",
    CvmCondition.UNATTENDED_CASH: "if unattended cash",
    CvmCondition.NOT_CASH_OR_CASHBACK: (
        "if not unattended cash and not manual cash and not purchase with cashback"
    ),
    CvmCondition.TERMINAL_SUPPORTS_CVM: "if terminal supports the CVM",
    CvmCondition.MANUAL_CASH: "if manual cash",
    CvmCondition.PURCHASE_WITH_CASHBACK: "if purchase with cashback",
    CvmCondition.UNDER_X: "if transaction is in the application currency and is under X value",
    CvmCondition.OVER_X: "if transaction is in the application currency and is over X value",
    CvmCondition.UNDER_Y: "if transaction is in the application currency and is under Y value",
    CvmCondition.OVER_Y: "if transaction is in the application currency and is over Y value",
}


def method_text(method_code: int) -> str:
    """Describe a CVM code's method bits b6-b1 (EMV 4.4 Book 3, Annex C3, Table 43)."""
    code = method_code & _METHOD_MASK
    text = _METHOD_TEXT.get(code)
    if text is not None:
        return text
    if code <= 0x1D:
        return f"RFU CVM {code:02X}"
    if code <= 0x2F:
        return f"payment system CVM {code:02X}"
    return f"issuer CVM {code:02X}"


def condition_text(condition_code: int) -> str:
    """Describe a CVM Condition Code (EMV 4.4 Book 3, Annex C3, Table 44)."""
    text = _CONDITION_TEXT.get(condition_code)
    if text is not None:
        return text
    if condition_code < 0x80:
        return f"RFU condition {condition_code:02X}"
    return f"payment system condition {condition_code:02X}"


@dataclass(frozen=True, slots=True)
class CvmRule:
    """One CV Rule: CVM Code and CVM Condition Code (EMV 4.4 Book 3, Annex C3).

    Attributes:
        code: The raw first byte (b8 RFU, b7 apply next, b6-b1 method).
        condition_code: The raw second byte.
    """

    code: int
    condition_code: int

    @property
    def method_code(self) -> int:
        """Bits b6-b1 of the CVM Code."""
        return self.code & _METHOD_MASK

    @property
    def apply_next(self) -> bool:
        """b7: apply the succeeding CV Rule if this CVM is unsuccessful."""
        return bool(self.code & _APPLY_NEXT)

    @property
    def method(self) -> CvmMethod | None:
        """The method, or ``None`` if unrecognised (the kernel then sets TVR "Unrecognised CVM").

        ``3F`` ("not available for use") is unrecognised in a CVM List.
        """
        code = self.method_code
        if code == CvmMethod.NO_CVM_PERFORMED or code not in _METHOD_TEXT:
            return None
        return CvmMethod(code)

    @property
    def condition(self) -> CvmCondition | None:
        """The condition, or ``None`` for an RFU or payment-system-specific code."""
        if self.condition_code in _CONDITION_TEXT:
            return CvmCondition(self.condition_code)
        return None

    def describe(self) -> str:
        """Human-readable rule (Book 3, Annex C3).

        Example: ``"enciphered PIN online (apply next), if unattended cash"``.
        """
        next_text = " (apply next)" if self.apply_next else ""
        return f"{method_text(self.code)}{next_text}, {condition_text(self.condition_code)}"

    def bytes(self) -> builtins.bytes:
        """The two encoded bytes."""
        return builtins.bytes((self.code & 0xFF, self.condition_code & 0xFF))


@dataclass(frozen=True, slots=True)
class CvmList:
    """A decoded CVM List (EMV 4.4 Book 3, 10.5).

    Attributes:
        amount_x: Amount X, in the application currency's minor units.
        amount_y: Amount Y, likewise.
        rules: The CV Rules in card order (the order they must be tried).
    """

    amount_x: int
    amount_y: int
    rules: tuple[CvmRule, ...]

    def encode(self) -> bytes:
        """The value bytes of tag ``8E``."""
        head = self.amount_x.to_bytes(4, "big") + self.amount_y.to_bytes(4, "big")
        return head + b"".join(rule.bytes() for rule in self.rules)


def parse_cvm_list(data: bytes) -> CvmList:
    """Decode the value of a CVM List, tag ``8E`` (EMV 4.4 Book 3, 10.5 and Annex C3).

    Args:
        data: The value bytes (without tag and length).

    Returns:
        The amounts and the rules.

    Raises:
        CardDataError: (tag ``8E``) if the list is shorter than 10 bytes (two amounts and one
            rule) or its rules do not come in whole pairs of bytes.
    """
    size = len(data)
    if size < _MIN_LEN:
        raise CardDataError(
            f"CVM List is {size} bytes, shorter than {_MIN_LEN}", tag=CVM_LIST_TAG, offset=size
        )
    if size % 2:
        raise CardDataError(
            "CVM List ends with an incomplete CV Rule", tag=CVM_LIST_TAG, offset=size - 1
        )
    rules = tuple(CvmRule(data[i], data[i + 1]) for i in range(_AMOUNTS_LEN, size, 2))
    return CvmList(int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big"), rules)


class CvmResult(enum.IntEnum):
    """CVM Results byte 3 (EMV 4.4 Book 4, Annex A4)."""

    UNKNOWN = 0x00
    FAILED = 0x01
    SUCCESSFUL = 0x02


@dataclass(frozen=True, slots=True)
class CvmResults:
    """CVM Results, tag ``9F34`` (EMV 4.4 Book 3, 10.5; Book 4, Annex A4).

    Attributes:
        code: CVM Code of the rule performed (``3F`` when no CVM was performed).
        condition_code: Its CVM Condition Code.
        result: Unknown, failed or successful.
    """

    code: int
    condition_code: int
    result: CvmResult

    @classmethod
    def for_rule(cls, rule: CvmRule, result: CvmResult) -> CvmResults:
        """Results recording that ``rule`` was performed with ``result`` (Book 3, 10.5)."""
        return cls(rule.code, rule.condition_code, result)

    @classmethod
    def no_cvm_performed(cls, result: CvmResult = CvmResult.FAILED) -> CvmResults:
        """``3F 00 xx``: no CVM performed (Book 3, 10.5).

        ``3F0001`` when no CV Rule could be applied; ``3F0000`` (``result=UNKNOWN``) when
        cardholder verification was not done at all (no CVM List, AIP without CV support).
        """
        return cls(CvmMethod.NO_CVM_PERFORMED, 0x00, result)

    @classmethod
    def parse(cls, data: builtins.bytes) -> CvmResults:
        """Decode the three bytes of tag ``9F34``; raises ``CardDataError`` otherwise."""
        if len(data) != 3:
            raise CardDataError(
                f"CVM Results must be 3 bytes, got {len(data)}", tag=CVM_RESULTS_TAG
            )
        try:
            result = CvmResult(data[2])
        except ValueError:
            raise CardDataError(
                "CVM Results byte 3 is not a defined result", tag=CVM_RESULTS_TAG, offset=2
            ) from None
        return cls(data[0], data[1], result)

    def bytes(self) -> builtins.bytes:
        """The three encoded bytes."""
        return builtins.bytes((self.code & 0xFF, self.condition_code & 0xFF, int(self.result)))
