"""Bit maps of the EMV kernel: TVR, TSI, AIP, AUC, 9F33, 9F40, TTQ, CTQ and CID.

Positions follow the spec tables: bytes are numbered from 1 (leftmost), bits from b8 (most
significant, ``0x80``) down to b1 (``0x01``).

* TVR ``95``: EMV 4.4 Book 3, Annex C5; byte 5 bits 4-1 for contactless: Book C-2, Annex A
  (relay resistance); contact byte 5 bits 3-2 are the EMV 4.4 ECC bits.
* TSI ``9B``: Book 3, Annex C6.        * AIP ``82``: Book 3, Annex C1; Book C-2, Annex A.
* AUC ``9F07``: Book 3, Annex C2.      * CID ``9F27``: Book 3, 6.5.5.4 (CID coding table).
* Terminal Capabilities ``9F33``: Book 4, Annex A2; Additional Terminal Capabilities ``9F40``:
  Book 4, Annex A3.
* TTQ ``9F66`` and CTQ ``9F6C``: Book A, 5.7 and Book C-3, Annex A.

Each bit is a member of an enum (``TvrBit.SDA_FAILED``) whose value carries its byte, bit and
spec text. :class:`Tvr`, :class:`Tsi`, :class:`TerminalCapabilities`,
:class:`AdditionalTerminalCapabilities` and :class:`Ttq` are mutable (the kernel sets their bits);
:class:`Aip`, :class:`Auc`, :class:`Ctq` and :class:`Cid` are read-only views of card data.
A value of the wrong length raises :class:`~terminal.errors.CardDataError`.
"""

from __future__ import annotations

import builtins
import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, overload

from terminal.errors import CardDataError

__all__ = [
    "AdditionalTerminalCapabilities",
    "AdditionalTerminalCapabilitiesBit",
    "Aip",
    "AipBit",
    "Auc",
    "AucBit",
    "Bit",
    "Cid",
    "CidReason",
    "CryptogramType",
    "Ctq",
    "CtqBit",
    "RrpStatus",
    "TerminalCapabilities",
    "TerminalCapabilitiesBit",
    "Tsi",
    "TsiBit",
    "Ttq",
    "TtqBit",
    "Tvr",
    "TvrBit",
]

Scope = Literal["", "contact", "contactless"]


@dataclass(frozen=True, slots=True)
class Bit:
    """A named bit: ``byte`` 1..n from the left, ``bit`` 8..1 (b8 is ``0x80``)."""

    byte: int
    bit: int
    text: str
    scope: Scope = ""  # "" everywhere; else only for that interface

    @property
    def mask(self) -> int:
        """The bit's mask within its byte."""
        return 1 << (self.bit - 1)


class _BitEnum(enum.Enum):
    """Base of the bit enums; members' values are :class:`Bit`."""

    _value_: Bit

    @property
    def byte(self) -> int:
        """Byte number, 1 = leftmost."""
        return self._value_.byte

    @property
    def bit(self) -> int:
        """Bit number, 8 = most significant."""
        return self._value_.bit

    @property
    def mask(self) -> int:
        """Mask of the bit within its byte."""
        return self._value_.mask

    @property
    def text(self) -> str:
        """The spec's wording."""
        return self._value_.text

    @property
    def scope(self) -> Scope:
        """``"contact"``/``"contactless"`` for bits that exist on one interface only."""
        return self._value_.scope


E = TypeVar("E", bound=_BitEnum)


class _Flag:
    """Read-only bool attribute bound to one bit of a bit map."""

    __slots__ = ("_bit", "doc")

    def __init__(self, bit: _BitEnum) -> None:
        self._bit = bit
        self.doc = bit.text

    @overload
    def __get__(self, obj: None, owner: type) -> _Flag: ...
    @overload
    def __get__(self, obj: _BitMap[Any], owner: type) -> bool: ...
    def __get__(self, obj: _BitMap[Any] | None, owner: type) -> _Flag | bool:
        if obj is None:
            return self
        return obj.is_set(self._bit)


class _BitMap(Generic[E]):
    """A fixed-length bit map, read-only."""

    SIZE: ClassVar[int]
    TAG: ClassVar[int]
    BITS: ClassVar[type[_BitEnum]]
    __slots__ = ("_data",)

    def __init__(self, data: builtins.bytes | None = None) -> None:
        if data is None:
            data = builtins.bytes(self.SIZE)
        if len(data) != self.SIZE:
            raise CardDataError(
                f"{type(self).__name__} must be {self.SIZE} bytes, got {len(data)}", tag=self.TAG
            )
        self._data = bytearray(data)

    @classmethod
    def parse(cls, data: builtins.bytes) -> Self:
        """Decode a value; raises ``CardDataError`` when it has the wrong length."""
        return cls(data)

    def is_set(self, bit: E) -> bool:
        """True if ``bit`` is set."""
        return bool(self._data[bit.byte - 1] & bit.mask)

    def __contains__(self, bit: E) -> bool:
        return self.is_set(bit)

    def bytes(self) -> builtins.bytes:
        """The encoded value."""
        return builtins.bytes(self._data)

    def __bytes__(self) -> builtins.bytes:
        return builtins.bytes(self._data)

    def intersects(self, mask: builtins.bytes) -> bool:
        """True if any bit set here is also set in ``mask`` (e.g. an IAC/TAC, Book 3, 10.7)."""
        return any(a & b for a, b in zip(self._data, mask, strict=False))

    def _label(self, byte: int, bit: int) -> str | None:
        for member in self.BITS:
            if member.byte == byte and member.bit == bit and self._in_scope(member):
                return member.text
        return f"RFU (byte {byte} bit {bit})"

    def _in_scope(self, member: _BitEnum) -> bool:
        return member.scope == ""

    def names(self) -> list[str]:
        """Human-readable texts of the set bits, left to right (RFU bits included)."""
        out: list[str] = []
        for index, value in enumerate(self._data):
            for bit in range(8, 0, -1):
                if value & (1 << (bit - 1)):
                    label = self._label(index + 1, bit)
                    if label is not None:
                        out.append(label)
        return out

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._data == other._data
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, builtins.bytes(self._data)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data.hex().upper()})"


class _MutableBitMap(_BitMap[E]):
    """A bit map the terminal writes."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def set(self, bit: E, value: bool = True) -> None:
        """Set ``bit`` (or clear it with ``value=False``)."""
        if value:
            self._data[bit.byte - 1] |= bit.mask
        else:
            self._data[bit.byte - 1] &= ~bit.mask & 0xFF

    def clear(self, bit: E) -> None:
        """Clear ``bit``."""
        self.set(bit, False)

    def reset(self) -> None:
        """Clear every bit (Book 3, 10.1: TVR and TSI start at zero)."""
        self._data[:] = builtins.bytes(self.SIZE)


class TvrBit(_BitEnum):
    """Terminal Verification Results bits (EMV 4.4 Book 3, Annex C5; Book C-2, Annex A)."""

    ODA_NOT_PERFORMED = Bit(1, 8, "Offline data authentication was not performed")
    SDA_FAILED = Bit(1, 7, "SDA failed")
    ICC_DATA_MISSING = Bit(1, 6, "ICC data missing")
    CARD_ON_EXCEPTION_FILE = Bit(1, 5, "Card appears on terminal exception file")
    DDA_FAILED = Bit(1, 4, "DDA failed")
    CDA_FAILED = Bit(1, 3, "CDA failed")
    SDA_SELECTED = Bit(1, 2, "SDA selected")
    XDA_SELECTED = Bit(1, 1, "XDA selected")
    DIFFERENT_APPLICATION_VERSIONS = Bit(
        2, 8, "ICC and terminal have different application versions"
    )
    EXPIRED_APPLICATION = Bit(2, 7, "Expired application")
    APPLICATION_NOT_YET_EFFECTIVE = Bit(2, 6, "Application not yet effective")
    SERVICE_NOT_ALLOWED = Bit(2, 5, "Requested service not allowed for card product")
    NEW_CARD = Bit(2, 4, "New card")
    BIOMETRIC_PERFORMED_SUCCESSFUL = Bit(2, 2, "Biometric performed and successful")
    BIOMETRIC_TEMPLATE_FORMAT_NOT_SUPPORTED = Bit(2, 1, "Biometric template format not supported")
    CV_NOT_SUCCESSFUL = Bit(3, 8, "Cardholder verification was not successful")
    UNRECOGNISED_CVM = Bit(3, 7, "Unrecognised CVM")
    PIN_TRY_LIMIT_EXCEEDED = Bit(3, 6, "PIN Try Limit exceeded")
    PIN_PAD_NOT_PRESENT = Bit(3, 5, "PIN entry required and PIN pad not present or not working")
    PIN_NOT_ENTERED = Bit(3, 4, "PIN entry required, PIN pad present, but PIN was not entered")
    ONLINE_PIN_ENTERED = Bit(3, 3, "Online PIN entered (online CVM captured)")
    BIOMETRIC_DEVICE_NOT_WORKING = Bit(
        3, 2, "Biometric required but biometric capture device not working"
    )
    BIOMETRIC_SUBTYPE_BYPASSED = Bit(
        3, 1, "Biometric required, capture device present, but biometric subtype entry bypassed"
    )
    EXCEEDS_FLOOR_LIMIT = Bit(4, 8, "Transaction exceeds floor limit")
    LCOL_EXCEEDED = Bit(4, 7, "Lower consecutive offline limit exceeded")
    UCOL_EXCEEDED = Bit(4, 6, "Upper consecutive offline limit exceeded")
    RANDOMLY_SELECTED_ONLINE = Bit(4, 5, "Transaction selected randomly for online processing")
    MERCHANT_FORCED_ONLINE = Bit(4, 4, "Merchant forced transaction online")
    BIOMETRIC_TRY_LIMIT_EXCEEDED = Bit(4, 3, "Biometric try limit exceeded")
    BIOMETRIC_TYPE_NOT_SUPPORTED = Bit(4, 2, "A selected biometric type not supported")
    XDA_FAILED = Bit(4, 1, "XDA signature verification failed")
    DEFAULT_TDOL_USED = Bit(5, 8, "Default TDOL used")
    ISSUER_AUTHENTICATION_FAILED = Bit(5, 7, "Issuer authentication failed")
    SCRIPT_FAILED_BEFORE_FINAL_GENAC = Bit(
        5, 6, "Script processing failed before final GENERATE AC"
    )
    SCRIPT_FAILED_AFTER_FINAL_GENAC = Bit(5, 5, "Script processing failed after final GENERATE AC")
    RR_THRESHOLD_EXCEEDED = Bit(5, 4, "Relay resistance threshold exceeded", "contactless")
    RR_TIME_LIMITS_EXCEEDED = Bit(5, 3, "Relay resistance time limits exceeded", "contactless")
    CA_ECC_KEY_MISSING = Bit(5, 3, "CA ECC key missing", "contact")
    ECC_KEY_RECOVERY_FAILED = Bit(5, 2, "ECC key recovery failed", "contact")


class RrpStatus(enum.IntEnum):
    """TVR byte 5 bits 2-1 on the contactless interface: "Relay resistance performed"."""

    NOT_SUPPORTED = 0b00
    NOT_PERFORMED = 0b01
    PERFORMED = 0b10
    RFU = 0b11


_RRP_TEXT = {
    RrpStatus.NOT_PERFORMED: "Relay resistance protocol not performed",
    RrpStatus.PERFORMED: "Relay resistance protocol performed",
    RrpStatus.RFU: "Relay resistance performed: RFU value 11",
}


class Tvr(_MutableBitMap[TvrBit]):
    """Terminal Verification Results, tag ``95`` (EMV 4.4 Book 3, Annex C5).

    Args:
        data: Five bytes, or ``None`` for all zero.
        contactless: Interpret byte 5 bits 4-1 as the relay resistance bits of Book C-2
            (otherwise as the EMV 4.4 contact ECC bits).
    """

    SIZE, TAG, BITS = 5, 0x95, TvrBit
    __slots__ = ("contactless",)

    def __init__(self, data: builtins.bytes | None = None, *, contactless: bool = False) -> None:
        super().__init__(data)
        self.contactless = contactless

    def _in_scope(self, member: _BitEnum) -> bool:
        return member.scope in ("", "contactless" if self.contactless else "contact")

    @property
    def rrp(self) -> RrpStatus:
        """Relay resistance performed (contactless, byte 5 bits 2-1; Book C-2, Annex A)."""
        return RrpStatus(self._data[4] & 0x03)

    @rrp.setter
    def rrp(self, status: RrpStatus) -> None:
        self._data[4] = (self._data[4] & 0xFC) | int(status)

    def _label(self, byte: int, bit: int) -> str | None:
        if self.contactless and byte == 5 and bit in (2, 1):
            return None  # the two-bit field is reported once, by names()
        return super()._label(byte, bit)

    def names(self) -> list[str]:
        """Texts of the set bits, and on the contactless interface the RRP status."""
        out = super().names()
        if self.contactless and self.rrp in _RRP_TEXT:
            out.append(_RRP_TEXT[self.rrp])
        return out


class TsiBit(_BitEnum):
    """Transaction Status Information bits (EMV 4.4 Book 3, Annex C6)."""

    ODA_PERFORMED = Bit(1, 8, "Offline data authentication was performed")
    CV_PERFORMED = Bit(1, 7, "Cardholder verification was performed")
    CARD_RISK_MANAGEMENT_PERFORMED = Bit(1, 6, "Card risk management was performed")
    ISSUER_AUTHENTICATION_PERFORMED = Bit(1, 5, "Issuer authentication was performed")
    TERMINAL_RISK_MANAGEMENT_PERFORMED = Bit(1, 4, "Terminal risk management was performed")
    SCRIPT_PROCESSING_PERFORMED = Bit(1, 3, "Script processing was performed")


class Tsi(_MutableBitMap[TsiBit]):
    """Transaction Status Information, tag ``9B`` (EMV 4.4 Book 3, Annex C6)."""

    SIZE, TAG, BITS = 2, 0x9B, TsiBit
    __slots__ = ()


class AipBit(_BitEnum):
    """Application Interchange Profile bits (Book 3, Annex C1; Book C-2, Annex A)."""

    XDA_SUPPORTED = Bit(1, 8, "XDA supported")
    SDA_SUPPORTED = Bit(1, 7, "SDA supported")
    DDA_SUPPORTED = Bit(1, 6, "DDA supported")
    CV_SUPPORTED = Bit(1, 5, "Cardholder verification is supported")
    TRM_REQUIRED = Bit(1, 4, "Terminal risk management is to be performed")
    ISSUER_AUTHENTICATION_SUPPORTED = Bit(1, 3, "Issuer authentication is supported")
    ON_DEVICE_CV_SUPPORTED = Bit(1, 2, "On device cardholder verification is supported")
    CDA_SUPPORTED = Bit(1, 1, "CDA supported")
    EMV_MODE_SUPPORTED = Bit(2, 8, "EMV mode is supported (contactless)")
    RRP_SUPPORTED = Bit(2, 1, "Relay resistance protocol is supported")


class Aip(_BitMap[AipBit]):
    """Application Interchange Profile, tag ``82`` (EMV 4.4 Book 3, Annex C1)."""

    SIZE, TAG, BITS = 2, 0x82, AipBit
    __slots__ = ()
    sda_supported = _Flag(AipBit.SDA_SUPPORTED)
    dda_supported = _Flag(AipBit.DDA_SUPPORTED)
    cv_supported = _Flag(AipBit.CV_SUPPORTED)
    trm_required = _Flag(AipBit.TRM_REQUIRED)
    issuer_authentication_supported = _Flag(AipBit.ISSUER_AUTHENTICATION_SUPPORTED)
    on_device_cv_supported = _Flag(AipBit.ON_DEVICE_CV_SUPPORTED)
    cda_supported = _Flag(AipBit.CDA_SUPPORTED)
    emv_mode_supported = _Flag(AipBit.EMV_MODE_SUPPORTED)
    rrp_supported = _Flag(AipBit.RRP_SUPPORTED)


class AucBit(_BitEnum):
    """Application Usage Control bits (EMV 4.4 Book 3, Annex C2)."""

    DOMESTIC_CASH = Bit(1, 8, "Valid for domestic cash transactions")
    INTERNATIONAL_CASH = Bit(1, 7, "Valid for international cash transactions")
    DOMESTIC_GOODS = Bit(1, 6, "Valid for domestic goods")
    INTERNATIONAL_GOODS = Bit(1, 5, "Valid for international goods")
    DOMESTIC_SERVICES = Bit(1, 4, "Valid for domestic services")
    INTERNATIONAL_SERVICES = Bit(1, 3, "Valid for international services")
    ATM = Bit(1, 2, "Valid at ATMs")
    NON_ATM = Bit(1, 1, "Valid at terminals other than ATMs")
    DOMESTIC_CASHBACK = Bit(2, 8, "Domestic cashback allowed")
    INTERNATIONAL_CASHBACK = Bit(2, 7, "International cashback allowed")


class Auc(_BitMap[AucBit]):
    """Application Usage Control, tag ``9F07`` (EMV 4.4 Book 3, Annex C2)."""

    SIZE, TAG, BITS = 2, 0x9F07, AucBit
    __slots__ = ()
    domestic_cash = _Flag(AucBit.DOMESTIC_CASH)
    international_cash = _Flag(AucBit.INTERNATIONAL_CASH)
    domestic_goods = _Flag(AucBit.DOMESTIC_GOODS)
    international_goods = _Flag(AucBit.INTERNATIONAL_GOODS)
    domestic_services = _Flag(AucBit.DOMESTIC_SERVICES)
    international_services = _Flag(AucBit.INTERNATIONAL_SERVICES)
    atm = _Flag(AucBit.ATM)
    non_atm = _Flag(AucBit.NON_ATM)
    domestic_cashback = _Flag(AucBit.DOMESTIC_CASHBACK)
    international_cashback = _Flag(AucBit.INTERNATIONAL_CASHBACK)


class TerminalCapabilitiesBit(_BitEnum):
    """Terminal Capabilities bits (EMV 4.4 Book 4, Annex A2)."""

    MANUAL_KEY_ENTRY = Bit(1, 8, "Manual key entry")
    MAGNETIC_STRIPE = Bit(1, 7, "Magnetic stripe")
    IC_WITH_CONTACTS = Bit(1, 6, "IC with contacts")
    PLAINTEXT_PIN_ICC = Bit(2, 8, "Plaintext PIN for ICC verification")
    ENCIPHERED_PIN_ONLINE = Bit(2, 7, "Enciphered PIN for online verification")
    SIGNATURE = Bit(2, 6, "Signature (paper)")
    ENCIPHERED_PIN_OFFLINE = Bit(2, 5, "Enciphered PIN for offline verification")
    NO_CVM_REQUIRED = Bit(2, 4, "No CVM required")
    SDA = Bit(3, 8, "SDA")
    DDA = Bit(3, 7, "DDA")
    CARD_CAPTURE = Bit(3, 6, "Card capture")
    CDA = Bit(3, 4, "CDA")


class TerminalCapabilities(_MutableBitMap[TerminalCapabilitiesBit]):
    """Terminal Capabilities, tag ``9F33`` (EMV 4.4 Book 4, Annex A2)."""

    SIZE, TAG, BITS = 3, 0x9F33, TerminalCapabilitiesBit
    __slots__ = ()


class AdditionalTerminalCapabilitiesBit(_BitEnum):
    """Additional Terminal Capabilities bits (EMV 4.4 Book 4, Annex A3)."""

    CASH = Bit(1, 8, "Cash")
    GOODS = Bit(1, 7, "Goods")
    SERVICES = Bit(1, 6, "Services")
    CASHBACK = Bit(1, 5, "Cashback")
    INQUIRY = Bit(1, 4, "Inquiry")
    TRANSFER = Bit(1, 3, "Transfer")
    PAYMENT = Bit(1, 2, "Payment")
    ADMINISTRATIVE = Bit(1, 1, "Administrative")
    CASH_DEPOSIT = Bit(2, 8, "Cash deposit")
    NUMERIC_KEYS = Bit(3, 8, "Numeric keys")
    ALPHABETIC_KEYS = Bit(3, 7, "Alphabetic and special characters keys")
    COMMAND_KEYS = Bit(3, 6, "Command keys")
    FUNCTION_KEYS = Bit(3, 5, "Function keys")
    PRINT_ATTENDANT = Bit(4, 8, "Print, attendant")
    PRINT_CARDHOLDER = Bit(4, 7, "Print, cardholder")
    DISPLAY_ATTENDANT = Bit(4, 6, "Display, attendant")
    DISPLAY_CARDHOLDER = Bit(4, 5, "Display, cardholder")
    CODE_TABLE_10 = Bit(4, 2, "Code table 10")
    CODE_TABLE_9 = Bit(4, 1, "Code table 9")
    CODE_TABLE_8 = Bit(5, 8, "Code table 8")
    CODE_TABLE_7 = Bit(5, 7, "Code table 7")
    CODE_TABLE_6 = Bit(5, 6, "Code table 6")
    CODE_TABLE_5 = Bit(5, 5, "Code table 5")
    CODE_TABLE_4 = Bit(5, 4, "Code table 4")
    CODE_TABLE_3 = Bit(5, 3, "Code table 3")
    CODE_TABLE_2 = Bit(5, 2, "Code table 2")
    CODE_TABLE_1 = Bit(5, 1, "Code table 1")


class AdditionalTerminalCapabilities(_MutableBitMap[AdditionalTerminalCapabilitiesBit]):
    """Additional Terminal Capabilities, tag ``9F40`` (EMV 4.4 Book 4, Annex A3)."""

    SIZE, TAG, BITS = 5, 0x9F40, AdditionalTerminalCapabilitiesBit
    __slots__ = ()


class TtqBit(_BitEnum):
    """Terminal Transaction Qualifiers bits (Book A, 5.7; Book C-3, Annex A)."""

    MAG_STRIPE_MODE_SUPPORTED = Bit(1, 8, "Mag-stripe mode supported")
    EMV_MODE_SUPPORTED = Bit(1, 6, "EMV mode supported")
    EMV_CONTACT_CHIP_SUPPORTED = Bit(1, 5, "EMV contact chip supported")
    OFFLINE_ONLY_READER = Bit(1, 4, "Offline-only reader")
    ONLINE_PIN_SUPPORTED = Bit(1, 3, "Online PIN supported")
    SIGNATURE_SUPPORTED = Bit(1, 2, "Signature supported")
    ODA_FOR_ONLINE_SUPPORTED = Bit(
        1, 1, "Offline Data Authentication for Online Authorizations supported"
    )
    ONLINE_CRYPTOGRAM_REQUIRED = Bit(2, 8, "Online cryptogram required")
    CVM_REQUIRED = Bit(2, 7, "CVM required")
    CONTACT_OFFLINE_PIN_SUPPORTED = Bit(2, 6, "(Contact Chip) Offline PIN supported")
    ISSUER_UPDATE_PROCESSING_SUPPORTED = Bit(3, 8, "Issuer Update Processing supported")
    CDCVM_SUPPORTED = Bit(3, 7, "Consumer Device CVM supported")


class Ttq(_MutableBitMap[TtqBit]):
    """Terminal Transaction Qualifiers, tag ``9F66`` (Book A, 5.7; Book C-3, Annex A)."""

    SIZE, TAG, BITS = 4, 0x9F66, TtqBit
    __slots__ = ()
    online_cryptogram_required = _Flag(TtqBit.ONLINE_CRYPTOGRAM_REQUIRED)
    cvm_required = _Flag(TtqBit.CVM_REQUIRED)
    offline_only_reader = _Flag(TtqBit.OFFLINE_ONLY_READER)


class CtqBit(_BitEnum):
    """Card Transaction Qualifiers bits (Book C-3, Annex A)."""

    ONLINE_PIN_REQUIRED = Bit(1, 8, "Online PIN Required")
    SIGNATURE_REQUIRED = Bit(1, 7, "Signature Required")
    ONLINE_IF_ODA_FAILS = Bit(
        1, 6, "Go Online if Offline Data Authentication Fails and Reader is online capable"
    )
    SWITCH_INTERFACE_IF_ODA_FAILS = Bit(
        1, 5, "Switch Interface if Offline Data Authentication fails and Reader supports contact"
    )
    ONLINE_IF_APPLICATION_EXPIRED = Bit(1, 4, "Go Online if Application Expired")
    SWITCH_INTERFACE_FOR_CASH = Bit(1, 3, "Switch Interface for Cash Transactions")
    SWITCH_INTERFACE_FOR_CASHBACK = Bit(1, 2, "Switch Interface for Cashback Transactions")
    CDCVM_PERFORMED = Bit(2, 8, "Consumer Device CVM Performed")
    ISSUER_UPDATE_PROCESSING_SUPPORTED = Bit(
        2, 7, "Card supports Issuer Update Processing at the POS"
    )


class Ctq(_BitMap[CtqBit]):
    """Card Transaction Qualifiers, tag ``9F6C`` (Book C-3, Annex A)."""

    SIZE, TAG, BITS = 2, 0x9F6C, CtqBit
    __slots__ = ()
    online_pin_required = _Flag(CtqBit.ONLINE_PIN_REQUIRED)
    signature_required = _Flag(CtqBit.SIGNATURE_REQUIRED)
    online_if_oda_fails = _Flag(CtqBit.ONLINE_IF_ODA_FAILS)
    switch_interface_if_oda_fails = _Flag(CtqBit.SWITCH_INTERFACE_IF_ODA_FAILS)
    online_if_application_expired = _Flag(CtqBit.ONLINE_IF_APPLICATION_EXPIRED)
    cdcvm_performed = _Flag(CtqBit.CDCVM_PERFORMED)


class CryptogramType(enum.IntEnum):
    """CID bits 8-7, also GENERATE AC P1 bits 8-7 (Book 3, 6.5.5.2 and 6.5.5.4)."""

    AAC = 0x00
    TC = 0x40
    ARQC = 0x80
    RFU = 0xC0


class CidReason(enum.IntEnum):
    """CID bits 3-1: reason/advice code (EMV 4.4 Book 3, 6.5.5.4)."""

    NO_INFORMATION = 0b000
    SERVICE_NOT_ALLOWED = 0b001
    PIN_TRY_LIMIT_EXCEEDED = 0b010
    ISSUER_AUTHENTICATION_FAILED = 0b011


@dataclass(frozen=True, slots=True)
class Cid:
    """Cryptogram Information Data, tag ``9F27`` (EMV 4.4 Book 3, 6.5.5.4).

    Attributes:
        cryptogram_type: Bits 8-7.
        payment_system: Bits 6-5 (payment system-specific cryptogram), as 0..3.
        advice_required: Bit 4.
        reason_code: Bits 3-1 as 0..7; 4-7 are RFU (see :attr:`reason`).
    """

    cryptogram_type: CryptogramType
    payment_system: int = 0
    advice_required: bool = False
    reason_code: int = 0

    @classmethod
    def parse(cls, data: builtins.bytes) -> Cid:
        """Decode the one-byte CID; raises ``CardDataError`` on any other length."""
        if len(data) != 1:
            raise CardDataError(f"CID must be 1 byte, got {len(data)}", tag=0x9F27)
        value = data[0]
        return cls(
            CryptogramType(value & 0xC0), (value >> 4) & 0x03, bool(value & 0x08), value & 0x07
        )

    @property
    def reason(self) -> CidReason | None:
        """The reason/advice code, or ``None`` for an RFU value."""
        try:
            return CidReason(self.reason_code)
        except ValueError:
            return None

    def bytes(self) -> builtins.bytes:
        """The encoded byte."""
        return builtins.bytes(
            [
                int(self.cryptogram_type)
                | (self.payment_system & 0x03) << 4
                | (0x08 if self.advice_required else 0)
                | (self.reason_code & 0x07)
            ]
        )
