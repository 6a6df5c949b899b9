"""Typed outcomes of offline data authentication (EMV 4.4 Book 2, 5 and 6; Book 3, 10.3).

Every ODA function returns either its product (a recovered public key, a verified signature) or
an :class:`OdaFailure` naming the stage and the check that failed. Nothing here raises on bad
card data: a certificate that does not decrypt, a wrong hash or a truncated field is a failure
value, so the kernel can set the right TVR bit (Book 3, 10.3 and Annex C5) and carry on.

Reprs and details never contain card data: at most a tag, a length or a check name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "IccDynamicData",
    "IccPublicKey",
    "IssuerPublicKey",
    "OdaCheck",
    "OdaFailure",
    "OdaMethod",
    "OdaStage",
    "RsaPublicKey",
    "SdaResult",
    "tvr_byte1_bits",
]


class OdaMethod(enum.Enum):
    """The offline data authentication method being performed (Book 3, 10.3)."""

    SDA = "SDA"
    DDA = "DDA"
    CDA = "CDA"
    FDDA = "fDDA"


class OdaStage(enum.Enum):
    """Which object was being checked when the failure happened."""

    CAPK = "CA public key"
    ISSUER_CERT = "issuer public key certificate"
    ICC_CERT = "ICC public key certificate"
    PIN_CERT = "ICC PIN encipherment public key certificate"
    STATIC_DATA = "static data to be authenticated"
    SSAD = "signed static application data"
    SDAD = "signed dynamic application data"


class OdaCheck(enum.Enum):
    """The check that failed (Book 2, 5.3, 5.4, 6.3-6.6)."""

    DATA_MISSING = "mandatory data object missing"
    KEY_UNKNOWN = "CA public key not found for RID and index"
    LENGTH = "length differs from the key modulus"
    RECOVERY = "recovered data header/trailer wrong (not 6A..BC)"
    FORMAT = "wrong format byte"
    HASH_ALGORITHM = "unsupported hash algorithm indicator"
    PK_ALGORITHM = "unsupported public key algorithm indicator"
    KEY_LENGTH = "public key length inconsistent with the certificate"
    REMAINDER = "public key remainder missing or of the wrong length"
    HASH = "hash result differs"
    IDENTIFIER = "issuer identifier or PAN does not match the card PAN"
    DATE_INVALID = "certificate expiration date is not a valid MMYY"
    EXPIRED = "certificate expired"
    REVOKED = "certificate revoked"
    STATIC_DATA = "static data to be authenticated invalid"
    DYNAMIC_DATA = "ICC dynamic data malformed"
    CID_MISMATCH = "cryptogram information data differs from the signed one"
    TRANSACTION_DATA_HASH = "transaction data hash code differs"


@dataclass(frozen=True, slots=True)
class OdaFailure:
    """A failed ODA check: a value, not an exception.

    Attributes:
        stage: The object being checked.
        check: The check that failed.
        detail: A short human-readable note (never card data).
    """

    stage: OdaStage
    check: OdaCheck
    detail: str = ""

    @property
    def icc_data_missing(self) -> bool:
        """True when the failure is a missing mandatory data object (TVR byte 1 bit 6)."""
        return self.check is OdaCheck.DATA_MISSING

    def __str__(self) -> str:
        extra = f": {self.detail}" if self.detail else ""
        return f"{self.stage.value}: {self.check.value}{extra}"


#: TVR byte 1 bits (Book 3, Annex C5).
_TVR_ODA_NOT_PERFORMED = 0x80
_TVR_SDA_FAILED = 0x40
_TVR_ICC_DATA_MISSING = 0x20
_TVR_DDA_FAILED = 0x08
_TVR_CDA_FAILED = 0x04

_FAILED_BIT = {
    OdaMethod.SDA: _TVR_SDA_FAILED,
    OdaMethod.DDA: _TVR_DDA_FAILED,
    OdaMethod.FDDA: _TVR_DDA_FAILED,
    OdaMethod.CDA: _TVR_CDA_FAILED,
}


def tvr_byte1_bits(method: OdaMethod, failure: OdaFailure | None) -> int:
    """TVR byte 1 bits to set after ODA (EMV 4.4 Book 3, 10.3 and Annex C5).

    Args:
        method: The method that was performed.
        failure: The failure, or ``None`` when ODA succeeded.

    Returns:
        The bits to OR into TVR byte 1: the method's "failed" bit, plus "ICC data missing"
        where a mandatory object was absent; 0 on success. Contactless fDDA failures map to
        "DDA failed" (the Visa kernel 3 convention).
    """
    if failure is None:
        return 0
    bits = _FAILED_BIT[method]
    if failure.icc_data_missing:
        bits |= _TVR_ICC_DATA_MISSING
    return bits


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key as EMV carries it: big-endian modulus and exponent bytes."""

    modulus: bytes
    exponent: bytes

    @property
    def size(self) -> int:
        """Modulus length in bytes (N_CA, N_I or N_IC in Book 2)."""
        return len(self.modulus)

    def __repr__(self) -> str:
        return f"RsaPublicKey({len(self.modulus) * 8} bits, e={self.exponent.hex().upper()})"


@dataclass(frozen=True, slots=True)
class IssuerPublicKey:
    """An issuer public key recovered from its certificate (Book 2, 5.3 / 6.3).

    Attributes:
        key: The recovered RSA public key.
        issuer_identifier: The 4-byte issuer identifier (leftmost PAN digits, F-padded).
        expiry: Certificate expiration date, MMYY as BCD bytes.
        serial: Certificate serial number (3 bytes).
    """

    key: RsaPublicKey
    issuer_identifier: bytes
    expiry: bytes
    serial: bytes

    def __repr__(self) -> str:
        # The identifier holds up to 8 leading PAN digits: keep it out of logs.
        return f"IssuerPublicKey({self.key!r}, expiry={self.expiry.hex()})"


@dataclass(frozen=True, slots=True)
class IccPublicKey:
    """An ICC (or ICC PIN encipherment) public key recovered from its certificate.

    Attributes:
        key: The recovered RSA public key.
        expiry: Certificate expiration date, MMYY as BCD bytes.
        serial: Certificate serial number (3 bytes).
    """

    key: RsaPublicKey
    expiry: bytes
    serial: bytes

    def __repr__(self) -> str:
        return f"IccPublicKey({self.key!r}, expiry={self.expiry.hex()})"


@dataclass(frozen=True, slots=True)
class SdaResult:
    """A verified Signed Static Application Data (Book 2, 5.4).

    Attributes:
        data_authentication_code: The 2-byte DAC to store as tag 9F45.
    """

    data_authentication_code: bytes


@dataclass(frozen=True, slots=True)
class IccDynamicData:
    """The ICC dynamic data of a verified SDAD (Book 2, 6.5.2 and 6.6.2).

    Attributes:
        raw: The whole ICC Dynamic Data field as signed.
        icc_dynamic_number: The ICC Dynamic Number (tag 9F4C).
        cid: Cryptogram Information Data (CDA only, else ``None``).
        application_cryptogram: The AC (tag 9F26; CDA only, else ``None``).
        transaction_data_hash: The Transaction Data Hash Code (CDA only, else ``None``).
    """

    raw: bytes
    icc_dynamic_number: bytes
    cid: bytes | None = None
    application_cryptogram: bytes | None = None
    transaction_data_hash: bytes | None = None
