"""Application cryptograms for the virtual cards and the acquirer host (EMV 4.4 Book 2, 8, A1).

Card side: derive the ICC master keys from the issuer master keys (Annex A1.4, options A and
B), derive the AC session key (A1.3 common session key, or the scheme variants below) and MAC
the transaction data into an ARQC, TC or AAC (A1.2, ISO/IEC 9797-1 MAC algorithm 3).
Issuer side: recompute and compare, then answer with an ARPC (8.2.1 method 1, 8.2.2 method 2).

Cryptogram versions (CVN) supported, as the schemes define them:

=========  ===========  ===================================  =========  ================
CVN        ICC MK       AC session key                       padding    ARPC
=========  ===========  ===================================  =========  ================
Visa 10    option A     none (ICC MK)                        zeros      method 1, ICC MK
Visa 18    option B     common, R = ATC || 00*6              80 00..    method 2, SK
Visa 22    option B     common, R = ATC || 00*6              80 00..    method 2, SK
MC 16      option A     common, R = ATC || 00 00 || UN       80 00..    method 1, ICC MK
MC 17      option A     common, R = ATC || 00 00 || UN       80 00..    method 1, ICC MK
=========  ===========  ===================================  =========  ================

The data MACed is 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82 9F36 followed by the card part: the CVR
(4 bytes, CVN 10; 6 bytes, CVN 16), the whole IAD 9F10 (CVN 18, 22) or CVR and counters
(CVN 17). Keys are double-length TDES keys; single DES and the two-key TDES are built with
``cryptography``'s TripleDES (three-key form, K3 = K1).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

__all__ = [
    "AcTransaction",
    "Cvn",
    "IssuerMasterKeys",
    "ac_session_key",
    "arpc_method1",
    "arpc_method2",
    "common_session_key",
    "derive_card_key",
    "derive_icc_master_key",
    "generate_ac",
    "generate_arpc",
    "key_check_value",
    "mac_iso9797_3",
    "verify_ac",
]


class Cvn(enum.Enum):
    """Cryptogram version numbers implemented (value: scheme and number)."""

    VISA_10 = "visa-10"
    VISA_18 = "visa-18"
    VISA_22 = "visa-22"
    MASTERCARD_16 = "mastercard-16"
    MASTERCARD_17 = "mastercard-17"


_OPTION_B = {Cvn.VISA_18, Cvn.VISA_22}
_MASTERCARD = {Cvn.MASTERCARD_16, Cvn.MASTERCARD_17}


def _adjust_parity(key: bytes) -> bytes:
    return bytes(b & 0xFE | (bin(b >> 1).count("1") + 1) % 2 for b in key)


def _tdes_ecb(key: bytes, data: bytes) -> bytes:
    """TDES-ECB encryption with a single (8), double (16) or triple (24) length key."""
    if len(key) == 8:
        key = key * 3
    elif len(key) == 16:
        key = key + key[:8]
    elif len(key) != 24:
        raise ValueError("DES key must be 8, 16 or 24 bytes")
    enc = Cipher(TripleDES(key), modes.ECB()).encryptor()  # noqa: S305 - EMV block ops
    return enc.update(data) + enc.finalize()


def _pad(data: bytes, method: int) -> bytes:
    if method == 2:
        data += b"\x80"
    elif method != 1:
        raise ValueError("padding method is 1 or 2")
    elif not data:
        return bytes(8)
    elif len(data) % 8 == 0:
        return data
    return data + b"\x00" * (-len(data) % 8)


def mac_iso9797_3(key: bytes, data: bytes, *, padding: int = 2, length: int = 8) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (EMV 4.4 Book 2, Annex A1.2.1).

    Args:
        key: Double-length key K_L || K_R.
        data: The message.
        padding: ISO/IEC 9797-1 padding method 1 (zeros) or 2 (``80`` then zeros).
        length: MAC length, 4 to 8 bytes (leftmost bytes kept).
    """
    if len(key) != 16 or not 4 <= length <= 8:
        raise ValueError("MAC key must be 16 bytes and the MAC 4 to 8 bytes")
    blocks = _pad(data, padding)
    left = key[:8]
    h = bytes(8)
    for i in range(0, len(blocks) - 8, 8):
        h = _tdes_ecb(left, bytes(a ^ b for a, b in zip(h, blocks[i : i + 8], strict=True)))
    last = bytes(a ^ b for a, b in zip(h, blocks[-8:], strict=True))
    return _tdes_ecb(key, last)[:length]


def key_check_value(key: bytes, length: int = 2) -> bytes:
    """Key check value: leftmost bytes of the key encrypting eight zero bytes."""
    return _tdes_ecb(key, bytes(8))[:length]


def derive_icc_master_key(issuer_mk: bytes, pan: str, psn: str = "00", option: str = "A") -> bytes:
    """ICC master key derivation (EMV 4.4 Book 2, Annex A1.4.1 option A, A1.4.2 option B).

    Option A: Y = the rightmost 16 digits of PAN || PSN (zero-padded on the left when
    shorter); ICC MK = TDES(MK)[Y] || TDES(MK)[Y xor FF..FF], parity adjusted. Option B is
    option A when PAN || PSN has at most 16 digits; otherwise Y is the first 16 decimal digits
    of SHA-1(PAN || PSN) (hex letters a-f decimalised as 0-5 if digits run short).

    Args:
        issuer_mk: The issuer master key (16 bytes).
        pan: PAN digits.
        psn: PAN sequence number, 2 digits ("00" when the card has none).
        option: "A" or "B".
    """
    if len(issuer_mk) != 16 or not (pan + psn).isdigit() or option not in ("A", "B"):
        raise ValueError("16-byte issuer key, decimal PAN and PSN, option A or B")
    digits = pan + psn
    if option == "B" and len(pan) > 16:
        packed = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
        digest = hashlib.sha1(packed).hexdigest()  # noqa: S324 - specified by option B
        decimal = [c for c in digest if c.isdigit()]
        letters = [str("abcdef".index(c)) for c in digest if not c.isdigit()]
        y = "".join((decimal + letters)[:16])
    else:
        y = digits[-16:].rjust(16, "0")
    block = bytes.fromhex(y)
    return _adjust_parity(_tdes_ecb(issuer_mk, block + bytes(b ^ 0xFF for b in block)))


def common_session_key(icc_mk: bytes, r: bytes) -> bytes:
    """Common session key derivation (EMV 4.4 Book 2, Annex A1.3.1).

    SK = TDES(MK)[R with byte 3 = F0] || TDES(MK)[R with byte 3 = 0F], parity adjusted.

    Args:
        icc_mk: ICC master key (16 bytes).
        r: Diversification value (8 bytes), e.g. ATC || 00*6.
    """
    if len(icc_mk) != 16 or len(r) != 8:
        raise ValueError("16-byte master key and 8-byte diversification value")
    left = r[:2] + b"\xf0" + r[3:]
    right = r[:2] + b"\x0f" + r[3:]
    return _adjust_parity(_tdes_ecb(icc_mk, left + right))


@dataclass(frozen=True, slots=True)
class IssuerMasterKeys:
    """Issuer master keys for AC, secure messaging integrity and confidentiality."""

    ac: bytes
    smi: bytes = b""
    smc: bytes = b""

    def __repr__(self) -> str:
        return "IssuerMasterKeys(<secret>)"


@dataclass(frozen=True, slots=True)
class AcTransaction:
    """The data an application cryptogram covers (terminal part from CDOL1, card part).

    Attributes:
        amount: 9F02 (6 bytes).
        amount_other: 9F03 (6 bytes).
        country: 9F1A (2 bytes).
        tvr: 95 (5 bytes).
        currency: 5F2A (2 bytes).
        date: 9A (3 bytes).
        txn_type: 9C (1 byte).
        unpredictable_number: 9F37 (4 bytes).
        aip: 82 (2 bytes).
        atc: 9F36 (2 bytes).
        card_data: The card part: CVR (CVN 10, 16), IAD 9F10 (CVN 18, 22), CVR || counters
            (CVN 17).
    """

    amount: bytes
    amount_other: bytes
    country: bytes
    tvr: bytes
    currency: bytes
    date: bytes
    txn_type: bytes
    unpredictable_number: bytes
    aip: bytes
    atc: bytes
    card_data: bytes

    def mac_input(self) -> bytes:
        """The concatenated data the cryptogram MACs (Book 2, 8.1.1 Table 26, then card data)."""
        return (
            self.amount + self.amount_other + self.country + self.tvr + self.currency
            + self.date + self.txn_type + self.unpredictable_number + self.aip + self.atc
            + self.card_data
        )


def ac_session_key(cvn: Cvn, icc_mk_ac: bytes, atc: bytes, unpredictable_number: bytes) -> bytes:
    """The key the card MACs the cryptogram with, per CVN (see the module table)."""
    if cvn is Cvn.VISA_10:
        return icc_mk_ac
    if cvn in _MASTERCARD:
        return common_session_key(icc_mk_ac, atc + b"\x00\x00" + unpredictable_number)
    return common_session_key(icc_mk_ac, atc + bytes(6))


def derive_card_key(cvn: Cvn, issuer_mk_ac: bytes, pan: str, psn: str = "00") -> bytes:
    """The card's ICC MK-AC for this CVN (option B for Visa CVN 18/22, else option A)."""
    return derive_icc_master_key(issuer_mk_ac, pan, psn, "B" if cvn in _OPTION_B else "A")


def generate_ac(cvn: Cvn, icc_mk_ac: bytes, txn: AcTransaction) -> bytes:
    """Card side: compute the ARQC, TC or AAC (EMV 4.4 Book 2, 8.1; Annex A1.2).

    Args:
        cvn: The cryptogram version.
        icc_mk_ac: The card's ICC master key for AC.
        txn: The data covered.

    Returns:
        The 8-byte cryptogram (tag 9F26).
    """
    key = ac_session_key(cvn, icc_mk_ac, txn.atc, txn.unpredictable_number)
    return mac_iso9797_3(key, txn.mac_input(), padding=1 if cvn is Cvn.VISA_10 else 2)


def verify_ac(
    cvn: Cvn, issuer_mk_ac: bytes, pan: str, psn: str, txn: AcTransaction, cryptogram: bytes
) -> bool:
    """Issuer side: recompute the cryptogram from the issuer master key and compare."""
    expected = generate_ac(cvn, derive_card_key(cvn, issuer_mk_ac, pan, psn), txn)
    return hmac.compare_digest(expected, cryptogram)


def arpc_method1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1: TDES(key)[ARQC xor (ARC || 00*6)] (EMV 4.4 Book 2, 8.2.1)."""
    if len(arqc) != 8 or len(arc) != 2:
        raise ValueError("ARQC is 8 bytes and the ARC 2 bytes")
    block = bytes(a ^ b for a, b in zip(arqc, arc + bytes(6), strict=True))
    return _tdes_ecb(key, block)


def arpc_method2(key: bytes, arqc: bytes, csu: bytes, proprietary: bytes = b"") -> bytes:
    """ARPC method 2: MAC (alg. 3, padding 2) of ARQC || CSU || prop. data, 4 bytes (8.2.2)."""
    if len(arqc) != 8 or len(csu) != 4 or len(proprietary) > 8:
        raise ValueError("ARQC 8 bytes, CSU 4 bytes, proprietary data at most 8 bytes")
    return mac_iso9797_3(key, arqc + csu + proprietary, padding=2, length=4)


def generate_arpc(cvn: Cvn, icc_mk_ac: bytes, arqc: bytes, atc: bytes, response: bytes) -> bytes:
    """Issuer side: the ARPC for this CVN (method 1 with ARC, or method 2 with CSU).

    Args:
        cvn: The cryptogram version.
        icc_mk_ac: The card's ICC master key for AC (derived from the issuer master key).
        arqc: The ARQC received (9F26).
        atc: The ATC of the ARQC (9F36), used by the session-key CVNs.
        response: The 2-byte ARC (method 1) or the 4-byte CSU (method 2, Visa CVN 18 and 22).
    """
    if cvn in (Cvn.VISA_18, Cvn.VISA_22):
        return arpc_method2(common_session_key(icc_mk_ac, atc + bytes(6)), arqc, response)
    return arpc_method1(icc_mk_ac, arqc, response)
