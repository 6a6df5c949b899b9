"""The EMV data dictionary: name, format, length, template and source of every tag we meet.

Sources of the table (facts, written out by hand for this project):

* EMV 4.4 Book 3, Annex A, Table 33 (data elements dictionary), plus Book 1 Annex B for the
  selection tags (``61``, ``6F``, ``A5``, ``BF0C``, ``9F0A``...);
* EMV Contactless Book B (Entry Point) for ``9F29`` and ``9F2A``;
* EMV Contactless Book C-2 (kernel 2, Mastercard) Annex A for the ``DF81xx``/``DF83xx``/
  ``FF81xx`` kernel data, the mag-stripe ``9F60``-``9F6E`` tags and Data Storage;
* EMV Contactless Book C-3 (kernel 3, Visa) Annex A for ``9F66``, ``9F6C``, ``9F69``, ``9F6E``,
  ``9F5D``, ``9F7C``, plus the EMV tokenisation tags ``9F19``, ``9F24``, ``9F25``.

Lengths are in **bytes**; for ``n`` and ``cn`` data the digit count of the spec is kept in
:attr:`TagInfo.digits` (``9F02`` is n 12: 12 digits in 6 bytes). "var." entries without a
lower bound have ``min_len`` 0; certificate lengths (N_CA, N_I, N_IC) are bounded by 248, the
longest RSA modulus EMV allows.

A few tags mean different things to different kernels (``9F66`` is the TTQ for Entry Point and
kernel 3 but PUNATC(Track2) for kernel 2). :data:`TAGS` holds the Entry Point / kernel 3 meaning;
``lookup(tag, kernel=2)`` gives the kernel 2 meaning where it differs.

``sensitive`` marks data that must never be logged in clear (ARCHITECTURE.md, card data):
PAN, track 1/2 data and their discretionary data, cardholder names, PIN data, IBAN.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "KERNEL_TAGS",
    "SENSITIVE_TAGS",
    "TAGS",
    "Format",
    "Source",
    "TagInfo",
    "is_sensitive",
    "lookup",
    "name_of",
]


class Format(enum.StrEnum):
    """Data element formats (EMV 4.4 Book 3, 4.3)."""

    N = "n"  # numeric, BCD, right-justified, padded with leading 0
    CN = "cn"  # compressed numeric, BCD, left-justified, padded with trailing F
    AN = "an"  # alphanumeric
    ANS = "ans"  # alphanumeric and special
    B = "b"  # binary
    A = "a"  # alphabetic


class Source(enum.StrEnum):
    """Who provides a data element (EMV 4.4 Book 3, Annex A, column "Source")."""

    ICC = "icc"
    TERMINAL = "terminal"
    ISSUER = "issuer"


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One entry of the data dictionary.

    Attributes:
        tag: The tag as an integer (``0x9F02``).
        name: The spec name.
        fmt: The format; DOL padding and truncation depend on it (Book 3, 5.4).
        min_len: Shortest valid length in bytes.
        max_len: Longest valid length in bytes.
        template: Templates the tag may appear in (``(0x70, 0x77)``); empty if none.
        source: Who provides the value.
        constructed: True for a template (bit 6 of the first tag byte set).
        sensitive: True where the value must never reach a log in clear.
        digits: The digit count of ``n``/``cn`` data (maximum, for variable lengths).
    """

    tag: int
    name: str
    fmt: Format
    min_len: int
    max_len: int
    template: tuple[int, ...] = ()
    source: Source = Source.ICC
    constructed: bool = False
    sensitive: bool = False
    digits: int | None = None


N, CN, AN, ANS, B, A = Format.N, Format.CN, Format.AN, Format.ANS, Format.B, Format.A
ICC, TRM, ISS = Source.ICC, Source.TERMINAL, Source.ISSUER

_REC = (0x70, 0x77)  # record data, or GPO format 2
_GAC = (0x77, 0x80)  # GPO / GENERATE AC / INTERNAL AUTHENTICATE responses
_DIR = (0x61, 0xA5)  # directory entry or FCI proprietary template
_IDD = (0xBF0C,)  # FCI issuer discretionary data
_SCR = (0x71, 0x72)  # issuer scripts
_CERT = 248  # longest N_CA / N_I / N_IC in bytes


def _e(
    tag: int,
    name: str,
    fmt: Format,
    lo: int,
    hi: int,
    template: tuple[int, ...] = (),
    source: Source = ICC,
    *,
    digits: int | None = None,
    sensitive: bool = False,
) -> TagInfo:
    """A primitive data element."""
    return TagInfo(tag, name, fmt, lo, hi, template, source, False, sensitive, digits)


def _t(tag: int, name: str, hi: int, template: tuple[int, ...] = (), src: Source = ICC) -> TagInfo:
    """A constructed data object (template)."""
    return TagInfo(tag, name, B, 0, hi, template, src, constructed=True)


# EMV 4.4 Book 3, Annex A, Table 33 (and Book 1, Annex B), in tag order.
_EMV: tuple[TagInfo, ...] = (
    _e(0x42, "Issuer Identification Number (IIN)", N, 3, 3, _IDD, digits=6),
    _e(0x4F, "Application Identifier (AID) - card", B, 5, 16, (0x61,)),
    _e(0x50, "Application Label", ANS, 1, 16, _DIR),
    _e(0x57, "Track 2 Equivalent Data", B, 0, 19, _REC, sensitive=True),
    _e(0x5A, "Application Primary Account Number (PAN)", CN, 0, 10, _REC,
       digits=19, sensitive=True),
    _e(0x5F20, "Cardholder Name", ANS, 2, 26, _REC, sensitive=True),
    _e(0x5F24, "Application Expiration Date", N, 3, 3, _REC, digits=6),
    _e(0x5F25, "Application Effective Date", N, 3, 3, _REC, digits=6),
    _e(0x5F28, "Issuer Country Code", N, 2, 2, _REC, digits=3),
    _e(0x5F2A, "Transaction Currency Code", N, 2, 2, (), TRM, digits=3),
    _e(0x5F2D, "Language Preference", AN, 2, 8, (0xA5,)),
    _e(0x5F30, "Service Code", N, 2, 2, _REC, digits=3),
    _e(0x5F34, "Application PAN Sequence Number", N, 1, 1, _REC, digits=2),
    _e(0x5F36, "Transaction Currency Exponent", N, 1, 1, (), TRM, digits=1),
    _e(0x5F50, "Issuer URL", ANS, 0, 252, _IDD),
    _e(0x5F53, "International Bank Account Number (IBAN)", AN, 0, 34, _IDD, sensitive=True),
    _e(0x5F54, "Bank Identifier Code (BIC)", AN, 8, 11, _IDD),
    _e(0x5F55, "Issuer Country Code (alpha2 format)", A, 2, 2, _IDD),
    _e(0x5F56, "Issuer Country Code (alpha3 format)", A, 3, 3, _IDD),
    _t(0x61, "Application Template", 252, (0x70,)),
    _t(0x6F, "File Control Information (FCI) Template", 252),
    _t(0x70, "READ RECORD Response Message Template", 252),
    _t(0x71, "Issuer Script Template 1", 255, (), ISS),
    _t(0x72, "Issuer Script Template 2", 255, (), ISS),
    _t(0x73, "Directory Discretionary Template", 252, (0x61,)),
    _t(0x77, "Response Message Template Format 2", 255),
    _e(0x80, "Response Message Template Format 1", B, 0, 255),
    _e(0x81, "Amount, Authorised (Binary)", B, 4, 4, (), TRM),
    _e(0x82, "Application Interchange Profile", B, 2, 2, _GAC),
    _e(0x83, "Command Template", B, 0, 255, (), TRM),
    _e(0x84, "Dedicated File (DF) Name", B, 5, 16, (0x6F,)),
    _e(0x86, "Issuer Script Command", B, 0, 261, _SCR, ISS),
    _e(0x87, "Application Priority Indicator", B, 1, 1, _DIR),
    _e(0x88, "Short File Identifier (SFI)", B, 1, 1, (0xA5,)),
    _e(0x89, "Authorisation Code", ANS, 6, 6, (), ISS),
    _e(0x8A, "Authorisation Response Code", AN, 2, 2, (), ISS),
    _e(0x8C, "Card Risk Management Data Object List 1 (CDOL1)", B, 0, 252, _REC),
    _e(0x8D, "Card Risk Management Data Object List 2 (CDOL2)", B, 0, 252, _REC),
    _e(0x8E, "Cardholder Verification Method (CVM) List", B, 10, 252, _REC),
    _e(0x8F, "Certification Authority Public Key Index", B, 1, 1, _REC),
    _e(0x90, "Issuer Public Key Certificate", B, 0, _CERT, _REC),
    _e(0x91, "Issuer Authentication Data", B, 8, 16, (), ISS),
    _e(0x92, "Issuer Public Key Remainder", B, 0, _CERT, _REC),
    _e(0x93, "Signed Static Application Data", B, 0, _CERT, _REC),
    _e(0x94, "Application File Locator (AFL)", B, 0, 252, _GAC),
    _e(0x95, "Terminal Verification Results", B, 5, 5, (), TRM),
    _e(0x97, "Transaction Certificate Data Object List (TDOL)", B, 0, 252, _REC),
    _e(0x98, "Transaction Certificate (TC) Hash Value", B, 20, 20, (), TRM),
    _e(0x99, "Transaction Personal Identification Number (PIN) Data", B, 0, 255, (), TRM,
       sensitive=True),
    _e(0x9A, "Transaction Date", N, 3, 3, (), TRM, digits=6),
    _e(0x9B, "Transaction Status Information", B, 2, 2, (), TRM),
    _e(0x9C, "Transaction Type", N, 1, 1, (), TRM, digits=2),
    _e(0x9D, "Directory Definition File (DDF) Name", B, 5, 16, (0x61,)),
    _t(0xA5, "File Control Information (FCI) Proprietary Template", 252, (0x6F,)),
    _t(0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", 222, (0xA5,)),
    _e(0x9F01, "Acquirer Identifier", N, 6, 6, (), TRM, digits=11),
    _e(0x9F02, "Amount, Authorised (Numeric)", N, 6, 6, (), TRM, digits=12),
    _e(0x9F03, "Amount, Other (Numeric)", N, 6, 6, (), TRM, digits=12),
    _e(0x9F04, "Amount, Other (Binary)", B, 4, 4, (), TRM),
    _e(0x9F05, "Application Discretionary Data", B, 1, 32, _REC),
    _e(0x9F06, "Application Identifier (AID) - terminal", B, 5, 16, (), TRM),
    _e(0x9F07, "Application Usage Control", B, 2, 2, _REC),
    _e(0x9F08, "Application Version Number (card)", B, 2, 2, _REC),
    _e(0x9F09, "Application Version Number (terminal)", B, 2, 2, (), TRM),
    _e(0x9F0A, "Application Selection Registered Proprietary Data", B, 0, 222, _IDD),
    _e(0x9F0B, "Cardholder Name Extended", ANS, 27, 45, _REC, sensitive=True),
    _e(0x9F0C, "Issuer Identification Number Extended (IINE)", N, 3, 4, _IDD, digits=8),
    _e(0x9F0D, "Issuer Action Code - Default", B, 5, 5, _REC),
    _e(0x9F0E, "Issuer Action Code - Denial", B, 5, 5, _REC),
    _e(0x9F0F, "Issuer Action Code - Online", B, 5, 5, _REC),
    _e(0x9F10, "Issuer Application Data", B, 0, 32, _GAC),
    _e(0x9F11, "Issuer Code Table Index", N, 1, 1, (0xA5,), digits=2),
    _e(0x9F12, "Application Preferred Name", ANS, 1, 16, _DIR),
    _e(0x9F13, "Last Online Application Transaction Counter (ATC) Register", B, 2, 2),
    _e(0x9F14, "Lower Consecutive Offline Limit", B, 1, 1, _REC),
    _e(0x9F15, "Merchant Category Code", N, 2, 2, (), TRM, digits=4),
    _e(0x9F16, "Merchant Identifier", ANS, 15, 15, (), TRM),
    _e(0x9F17, "Personal Identification Number (PIN) Try Counter", B, 1, 1),
    _e(0x9F18, "Issuer Script Identifier", B, 4, 4, _SCR, ISS),
    _e(0x9F19, "Token Requestor ID", N, 6, 6, _REC, digits=11),
    _e(0x9F1A, "Terminal Country Code", N, 2, 2, (), TRM, digits=3),
    _e(0x9F1B, "Terminal Floor Limit", B, 4, 4, (), TRM),
    _e(0x9F1C, "Terminal Identification", AN, 8, 8, (), TRM),
    _e(0x9F1D, "Terminal Risk Management Data", B, 1, 8, (), TRM),
    _e(0x9F1E, "Interface Device (IFD) Serial Number", AN, 8, 8, (), TRM),
    _e(0x9F1F, "Track 1 Discretionary Data", ANS, 0, 76, _REC, sensitive=True),
    _e(0x9F20, "Track 2 Discretionary Data", CN, 0, 16, _REC, sensitive=True),
    _e(0x9F21, "Transaction Time", N, 3, 3, (), TRM, digits=6),
    _e(0x9F22, "Certification Authority Public Key Index (terminal)", B, 1, 1, (), TRM),
    _e(0x9F23, "Upper Consecutive Offline Limit", B, 1, 1, _REC),
    _e(0x9F24, "Payment Account Reference (PAR)", AN, 29, 29, _REC),
    _e(0x9F25, "Last 4 Digits of PAN", N, 2, 2, _REC, digits=4),
    _e(0x9F26, "Application Cryptogram", B, 8, 8, _GAC),
    _e(0x9F27, "Cryptogram Information Data", B, 1, 1, _GAC),
    _e(0x9F29, "Extended Selection", B, 0, 11, (0x61,)),
    _e(0x9F2A, "Kernel Identifier", B, 1, 8, (0x61,)),
    _e(0x9F2D, "ICC PIN Encipherment Public Key Certificate", B, 0, _CERT, _REC),
    _e(0x9F2E, "ICC PIN Encipherment Public Key Exponent", B, 1, 3, _REC),
    _e(0x9F2F, "ICC PIN Encipherment Public Key Remainder", B, 0, _CERT, _REC),
    _e(0x9F32, "Issuer Public Key Exponent", B, 1, 3, _REC),
    _e(0x9F33, "Terminal Capabilities", B, 3, 3, (), TRM),
    _e(0x9F34, "Cardholder Verification Method (CVM) Results", B, 3, 3, (), TRM),
    _e(0x9F35, "Terminal Type", N, 1, 1, (), TRM, digits=2),
    _e(0x9F36, "Application Transaction Counter (ATC)", B, 2, 2, _GAC),
    _e(0x9F37, "Unpredictable Number", B, 4, 4, (), TRM),
    _e(0x9F38, "Processing Options Data Object List (PDOL)", B, 0, 252, (0xA5,)),
    _e(0x9F39, "Point-of-Service (POS) Entry Mode", N, 1, 1, (), TRM, digits=2),
    _e(0x9F3A, "Amount, Reference Currency", B, 4, 4, (), TRM),
    _e(0x9F3B, "Application Reference Currency", N, 2, 8, _REC),
    _e(0x9F3C, "Transaction Reference Currency Code", N, 2, 2, (), TRM, digits=3),
    _e(0x9F3D, "Transaction Reference Currency Exponent", N, 1, 1, (), TRM, digits=1),
    _e(0x9F40, "Additional Terminal Capabilities", B, 5, 5, (), TRM),
    _e(0x9F41, "Transaction Sequence Counter", N, 2, 4, (), TRM, digits=8),
    _e(0x9F42, "Application Currency Code", N, 2, 2, _REC, digits=3),
    _e(0x9F43, "Application Reference Currency Exponent", N, 1, 4, _REC),
    _e(0x9F44, "Application Currency Exponent", N, 1, 1, _REC, digits=1),
    _e(0x9F45, "Data Authentication Code", B, 2, 2),
    _e(0x9F46, "ICC Public Key Certificate", B, 0, _CERT, _REC),
    _e(0x9F47, "ICC Public Key Exponent", B, 1, 3, _REC),
    _e(0x9F48, "ICC Public Key Remainder", B, 0, _CERT, _REC),
    _e(0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", B, 0, 252, _REC),
    _e(0x9F4A, "Static Data Authentication Tag List", B, 0, 252, _REC),
    _e(0x9F4B, "Signed Dynamic Application Data", B, 0, _CERT, _GAC),
    _e(0x9F4C, "ICC Dynamic Number", B, 2, 8),
    _e(0x9F4D, "Log Entry", B, 2, 2, (0xBF0C, 0x73)),
    _e(0x9F4E, "Merchant Name and Location", ANS, 0, 255, (), TRM),
    _e(0x9F4F, "Log Format", B, 0, 255),
)

# EMV Contactless Books C-2 (kernel 2) and C-3 (kernel 3). Where the two kernels define the
# same tag differently, this table holds the kernel 3 / Entry Point meaning.
_CONTACTLESS: tuple[TagInfo, ...] = (
    _e(0x56, "Track 1 Data", ANS, 0, 76, _REC, sensitive=True),
    _e(0x9F50, "Offline Accumulator Balance", N, 6, 6, _REC, digits=12),
    _e(0x9F51, "DRDOL", B, 0, 252, _REC),
    _e(0x9F53, "Transaction Category Code", AN, 1, 1, (), TRM),
    _e(0x9F54, "DS ODS Card", B, 0, 160, _REC),
    _e(0x9F5A, "Application Program Identifier", B, 1, 16, _DIR),
    _e(0x9F5B, "DSDOL", B, 0, 252, _REC),
    _e(0x9F5C, "DS Requested Operator ID", B, 8, 8, (), TRM),
    _e(0x9F5D, "Available Offline Spending Amount", N, 6, 6, _GAC, digits=12),
    _e(0x9F5E, "DS ID", B, 8, 11, _REC),
    _e(0x9F5F, "DS Slot Availability", B, 1, 1, _REC),
    _e(0x9F60, "CVC3 (Track1)", B, 2, 2, _GAC),
    _e(0x9F61, "CVC3 (Track2)", B, 2, 2, _GAC),
    _e(0x9F62, "PCVC3 (Track1)", B, 6, 6, _REC),
    _e(0x9F63, "PUNATC (Track1)", B, 6, 6, _REC),
    _e(0x9F64, "NATC (Track1)", B, 1, 1, _REC),
    _e(0x9F65, "PCVC3 (Track2)", B, 2, 2, _REC),
    _e(0x9F66, "Terminal Transaction Qualifiers (TTQ)", B, 4, 4, (), TRM),
    _e(0x9F67, "NATC (Track2)", B, 1, 1, _REC),
    _e(0x9F69, "Card Authentication Related Data", B, 5, 16, _REC),
    _e(0x9F6A, "Unpredictable Number (Numeric)", N, 4, 4, (), TRM, digits=8),
    _e(0x9F6B, "Track 2 Data", B, 0, 19, _REC, sensitive=True),
    _e(0x9F6C, "Card Transaction Qualifiers (CTQ)", B, 2, 2, _GAC),
    _e(0x9F6D, "Mag-stripe Application Version Number (Reader)", B, 2, 2, (), TRM),
    _e(0x9F6E, "Form Factor Indicator (FFI)", B, 4, 4, _REC),
    _e(0x9F6F, "DS Slot Management Control", B, 1, 1, _REC),
    *(_e(0x9F70 + i, f"Protected Data Envelope {i + 1}", B, 0, 192, _REC) for i in range(5)),
    *(_e(0x9F75 + i, f"Unprotected Data Envelope {i + 1}", B, 0, 192, _REC) for i in range(5)),
    _e(0x9F7C, "Customer Exclusive Data (CED)", B, 0, 32, _GAC),
    _e(0x9F7D, "DS Summary 1", B, 8, 16, _GAC),
    _e(0x9F7E, "Mobile Support Indicator", B, 1, 1, (), TRM),
    _e(0x9F7F, "DS Unpredictable Number", B, 4, 4, (), TRM),
    _e(0xDF4B, "POS Cardholder Interaction Information", B, 3, 3, _GAC),
    _e(0xDF60, "DS Input (Card)", B, 8, 8, (), TRM),
    _e(0xDF61, "DS Digest H", B, 8, 8, (), TRM),
    _e(0xDF62, "DS ODS Info", B, 1, 1, (), TRM),
    _e(0xDF63, "DS ODS Term", B, 0, 160, (), TRM),
    _e(0xDF8101, "DS Summary 2", B, 8, 16),
    _e(0xDF8102, "DS Summary 3", B, 8, 16),
    _e(0xDF8104, "Balance Read Before Gen AC", N, 6, 6, (), TRM, digits=12),
    _e(0xDF8105, "Balance Read After Gen AC", N, 6, 6, (), TRM, digits=12),
    _e(0xDF8106, "Data Needed", B, 0, 255, (), TRM),
    _e(0xDF8107, "CDOL1 Related Data", B, 0, 255, (), TRM),
    _e(0xDF8108, "DS AC Type", B, 1, 1, (), TRM),
    _e(0xDF8109, "DS Input (Term)", B, 8, 8, (), TRM),
    _e(0xDF810A, "DS ODS Info For Reader", B, 1, 1, (), TRM),
    _e(0xDF810B, "DS Summary Status", B, 1, 1, (), TRM),
    _e(0xDF810C, "Kernel ID", B, 1, 1, (), TRM),
    _e(0xDF810D, "DSVN Term", B, 0, 255, (), TRM),
    _e(0xDF810E, "Post-Gen AC Put Data Status", B, 1, 1, (), TRM),
    _e(0xDF810F, "Pre-Gen AC Put Data Status", B, 1, 1, (), TRM),
    _e(0xDF8110, "Proceed To First Write Flag", B, 1, 1, (), TRM),
    _e(0xDF8111, "PDOL Related Data", B, 0, 255, (), TRM),
    _e(0xDF8112, "Tags To Read", B, 0, 255, (), TRM),
    _e(0xDF8113, "DRDOL Related Data", B, 0, 255, (), TRM),
    _e(0xDF8114, "Reference Control Parameter", B, 1, 1, (), TRM),
    _e(0xDF8115, "Error Indication", B, 6, 6, (), TRM),
    _e(0xDF8116, "User Interface Request Data", B, 22, 22, (), TRM),
    _e(0xDF8117, "Card Data Input Capability", B, 1, 1, (), TRM),
    _e(0xDF8118, "CVM Capability - CVM Required", B, 1, 1, (), TRM),
    _e(0xDF8119, "CVM Capability - No CVM Required", B, 1, 1, (), TRM),
    _e(0xDF811A, "Default UDOL", B, 3, 3, (), TRM),
    _e(0xDF811B, "Kernel Configuration", B, 1, 1, (), TRM),
    _e(0xDF811C, "Max Lifetime of Torn Transaction Log Record", B, 2, 2, (), TRM),
    _e(0xDF811D, "Max Number of Torn Transaction Log Records", B, 1, 1, (), TRM),
    _e(0xDF811E, "Mag-stripe CVM Capability - CVM Required", B, 1, 1, (), TRM),
    _e(0xDF811F, "Security Capability", B, 1, 1, (), TRM),
    _e(0xDF8120, "Terminal Action Code - Default", B, 5, 5, (), TRM),
    _e(0xDF8121, "Terminal Action Code - Denial", B, 5, 5, (), TRM),
    _e(0xDF8122, "Terminal Action Code - Online", B, 5, 5, (), TRM),
    _e(0xDF8123, "Reader Contactless Floor Limit", N, 6, 6, (), TRM, digits=12),
    _e(0xDF8124, "Reader Contactless Transaction Limit (No On-device CVM)", N, 6, 6, (), TRM,
       digits=12),
    _e(0xDF8125, "Reader Contactless Transaction Limit (On-device CVM)", N, 6, 6, (), TRM,
       digits=12),
    _e(0xDF8126, "Reader CVM Required Limit", N, 6, 6, (), TRM, digits=12),
    _e(0xDF8127, "Time Out Value", B, 2, 2, (), TRM),
    _e(0xDF8128, "IDS Status", B, 1, 1, (), TRM),
    _e(0xDF8129, "Outcome Parameter Set", B, 8, 8, (), TRM),
    _e(0xDF812A, "DD Card (Track1)", ANS, 0, 56, (), TRM, sensitive=True),
    _e(0xDF812B, "DD Card (Track2)", B, 0, 8, (), TRM, sensitive=True),
    _e(0xDF812C, "Mag-stripe CVM Capability - No CVM Required", B, 1, 1, (), TRM),
    _e(0xDF812D, "Message Hold Time", N, 3, 3, (), TRM, digits=6),
    _e(0xDF8130, "Hold Time Value", B, 1, 1, (), TRM),
    _e(0xDF8131, "Phone Message Table", B, 0, 255, (), TRM),
    _e(0xDF8132, "Minimum Relay Resistance Grace Period", B, 2, 2, (), TRM),
    _e(0xDF8133, "Maximum Relay Resistance Grace Period", B, 2, 2, (), TRM),
    _e(0xDF8134, "Terminal Expected Transmission Time For Relay Resistance C-APDU", B, 2, 2,
       (), TRM),
    _e(0xDF8135, "Terminal Expected Transmission Time For Relay Resistance R-APDU", B, 2, 2,
       (), TRM),
    _e(0xDF8136, "Relay Resistance Accuracy Threshold", B, 2, 2, (), TRM),
    _e(0xDF8137, "Relay Resistance Transmission Time Mismatch Threshold", B, 1, 1, (), TRM),
    _e(0xDF8301, "Terminal Relay Resistance Entropy", B, 4, 4, (), TRM),
    _e(0xDF8302, "Device Relay Resistance Entropy", B, 4, 4),
    _e(0xDF8303, "Min Time For Processing Relay Resistance APDU", B, 2, 2),
    _e(0xDF8304, "Max Time For Processing Relay Resistance APDU", B, 2, 2),
    _e(0xDF8305, "Device Estimated Transmission Time For Relay Resistance R-APDU", B, 2, 2),
    _e(0xDF8306, "Measured Relay Resistance Processing Time", B, 2, 2, (), TRM),
    _e(0xDF8307, "RRP Counter", B, 1, 1, (), TRM),
    _t(0xFF8101, "Torn Record", 255, (), TRM),
    _t(0xFF8102, "Tags To Write Before Gen AC", 255, (), TRM),
    _t(0xFF8103, "Tags To Write After Gen AC", 255, (), TRM),
    _t(0xFF8104, "Data To Send", 255, (), TRM),
    _t(0xFF8105, "Data Record", 255, (), TRM),
    _t(0xFF8106, "Discretionary Data", 255, (), TRM),
)

# Kernel 2 (Book C-2) meanings of tags that kernel 3 / Entry Point define differently.
_KERNEL2: tuple[TagInfo, ...] = (
    _e(0x9F5D, "Application Capabilities Information", B, 3, 3, _REC),
    _e(0x9F66, "PUNATC (Track2)", B, 2, 2, _REC),
    _e(0x9F69, "UDOL", B, 0, 252, _REC),
    _e(0x9F6C, "Mag-stripe Application Version Number (Card)", B, 2, 2, _REC),
    _e(0x9F6E, "Third Party Data", B, 5, 32, _REC),
    _e(0x9F7C, "Merchant Custom Data", B, 20, 20, (), TRM),
)


def _index(entries: tuple[TagInfo, ...]) -> Mapping[int, TagInfo]:
    table: dict[int, TagInfo] = {}
    for info in entries:
        if info.tag in table:  # a typo in the table must not pass silently
            raise RuntimeError(f"duplicate tag {info.tag:02X} in the data dictionary")
        table[info.tag] = info
    return MappingProxyType(table)


TAGS: Mapping[int, TagInfo] = _index(_EMV + _CONTACTLESS)
"""Every known tag, keyed by its integer value."""

KERNEL_TAGS: Mapping[int, Mapping[int, TagInfo]] = MappingProxyType({2: _index(_KERNEL2)})
"""Per-kernel overrides of :data:`TAGS`, keyed by kernel identifier."""

SENSITIVE_TAGS: frozenset[int] = frozenset(
    info.tag
    for table in (TAGS, *KERNEL_TAGS.values())
    for info in table.values()
    if info.sensitive
)
"""Tags whose values must never be logged, printed or put in an exception in clear."""


def lookup(tag: int, kernel: int | None = None) -> TagInfo | None:
    """Find a tag in the data dictionary (EMV 4.4 Book 3, Annex A).

    Args:
        tag: The tag as an integer (``0x9F02``).
        kernel: A contactless kernel identifier (Book B, 3.3.2.5); where that kernel gives the
            tag its own meaning (kernel 2: ``9F5D``, ``9F66``, ``9F69``, ``9F6C``, ``9F6E``,
            ``9F7C``) that meaning is returned.

    Returns:
        The entry, or ``None`` for a tag the dictionary does not know.
    """
    if kernel is not None:
        override = KERNEL_TAGS.get(kernel)
        if override is not None and tag in override:
            return override[tag]
    return TAGS.get(tag)


def name_of(tag: int, kernel: int | None = None) -> str:
    """The name of a tag, or ``"Unknown tag 9F7F"`` for one the dictionary does not know."""
    info = lookup(tag, kernel)
    if info is not None:
        return info.name
    digits = max(2, (tag.bit_length() + 7) // 8 * 2)
    return f"Unknown tag {tag:0{digits}X}"


def is_sensitive(tag: int, kernel: int | None = None) -> bool:
    """True if the value of ``tag`` is card data that must be masked (PAN, tracks, PIN...)."""
    info = lookup(tag, kernel)
    return info is not None and info.sensitive
