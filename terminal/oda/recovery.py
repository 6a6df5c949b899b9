"""RSA message recovery and the checks common to every EMV signature (EMV 4.4 Book 2, Annex A2.1).

EMV signatures use the ISO/IEC 9796-2 scheme with message recovery: the signer builds
``6A || format || data || hash(20) || BC`` of exactly the modulus length and applies its private
key; the verifier applies ``pow(x, e, n)`` and checks the envelope. The helpers here do that part,
plus the pieces of certificate checking shared by the issuer and ICC certificates: the SHA-1
hash, the MMYY expiration date and the PAN-digit comparisons.

Nothing here raises on card data: functions return ``None`` or a bool that the callers turn into
an :class:`~terminal.oda.results.OdaFailure`.
"""

from __future__ import annotations

import datetime
import hashlib

from terminal.oda.results import OdaCheck, OdaFailure, OdaStage, RsaPublicKey

__all__ = [
    "HASH_LEN",
    "HASH_SHA1",
    "PK_RSA",
    "RECOVERED_HEADER",
    "RECOVERED_TRAILER",
    "cert_expired",
    "digits",
    "envelope_ok",
    "parse_mmyy",
    "recover_signed_data",
    "rsa_recover",
    "sha1",
]

RECOVERED_HEADER = 0x6A
RECOVERED_TRAILER = 0xBC
#: Hash Algorithm Indicator '01' = SHA-1 (Book 2, Annex B3.1).
HASH_SHA1 = 0x01
#: Public Key Algorithm Indicator '01' = RSA (Book 2, Annex B2.1).
PK_RSA = 0x01
HASH_LEN = 20


def rsa_recover(key: RsaPublicKey, signature: bytes) -> bytes | None:
    """Apply the public key to a signature and return the recovered data (Book 2, A2.1).

    Args:
        key: The signer's public key.
        signature: The certificate or signature bytes; must be as long as the modulus.

    Returns:
        The recovered block, ``len(key.modulus)`` bytes, or ``None`` when the input cannot be a
        signature under this key (wrong length, value not below the modulus, empty key).
    """
    size = len(key.modulus)
    if size == 0 or len(signature) != size or not key.exponent:
        return None
    n = int.from_bytes(key.modulus, "big")
    x = int.from_bytes(signature, "big")
    e = int.from_bytes(key.exponent, "big")
    if n < 3 or x >= n or e == 0:
        return None
    return pow(x, e, n).to_bytes(size, "big")


def envelope_ok(recovered: bytes) -> bool:
    """True when the recovered data starts with ``6A`` and ends with ``BC`` (Book 2, 5.3 step 2)."""
    return (
        len(recovered) >= 2 + HASH_LEN
        and recovered[0] == RECOVERED_HEADER
        and recovered[-1] == RECOVERED_TRAILER
    )


def recover_signed_data(
    key: RsaPublicKey,
    signature: bytes | None,
    *,
    stage: OdaStage,
    tag: str,
    data_format: int,
    header: int,
    hashed_extra: bytes,
) -> bytes | OdaFailure:
    """Recover a signed data block and run the checks SSAD and SDAD share (Book 2, 5.4; 6.5.2).

    Checks, in the spec's order: present, length equal to the modulus, envelope (6A .. BC),
    the format byte, the hash algorithm, then the hash over format .. pad and ``hashed_extra``.

    Args:
        key: The public key recovering the block (issuer for SSAD, ICC for SDAD).
        signature: The signature (tag 93 or 9F4B).
        stage: Where a failure is reported.
        tag: The tag name for the "absent" failure.
        data_format: The expected format byte (03 SSAD, 05 SDAD).
        header: Bytes before the pad that must fit (envelope header included).
        hashed_extra: Data the hash covers after the recovered part (static or terminal data).

    Returns:
        The recovered block, or an :class:`OdaFailure` naming the failed check.
    """
    if not signature:
        return OdaFailure(stage, OdaCheck.DATA_MISSING, f"tag {tag} absent")
    size = key.size
    if len(signature) != size:
        return OdaFailure(stage, OdaCheck.LENGTH, f"{len(signature)} bytes, modulus {size}")
    recovered = rsa_recover(key, signature)
    if recovered is None or size < header + HASH_LEN + 1 or not envelope_ok(recovered):
        return OdaFailure(stage, OdaCheck.RECOVERY)
    if recovered[1] != data_format:
        return OdaFailure(stage, OdaCheck.FORMAT, f"format {recovered[1]:02X}")
    if recovered[2] != HASH_SHA1:
        return OdaFailure(stage, OdaCheck.HASH_ALGORITHM, f"indicator {recovered[2]:02X}")
    end = size - HASH_LEN - 1
    if sha1(recovered[1:end], hashed_extra) != recovered[end:-1]:
        return OdaFailure(stage, OdaCheck.HASH)
    return recovered


def sha1(*parts: bytes) -> bytes:
    """SHA-1 over the concatenation of ``parts`` (Book 2, Annex B3.1)."""
    h = hashlib.sha1()  # noqa: S324 - SHA-1 is what EMV ODA specifies
    for part in parts:
        h.update(part)
    return h.digest()


def digits(data: bytes) -> str | None:
    """The BCD digits of ``data`` up to the first ``F`` nibble (cn format), or ``None``.

    Returns ``None`` when a nibble is A-E or a non-F nibble follows an F (malformed cn).
    """
    out: list[str] = []
    padding = False
    for byte in data:
        for nibble in (byte >> 4, byte & 0x0F):
            if nibble == 0x0F:
                padding = True
            elif padding or nibble > 9:
                return None
            else:
                out.append(chr(0x30 + nibble))
    return "".join(out)


def parse_mmyy(mmyy: bytes) -> tuple[int, int] | None:
    """Decode a 2-byte BCD MMYY date into ``(year, month)`` (Book 4 pivot: YY < 50 is 20YY)."""
    if len(mmyy) != 2:
        return None
    text = mmyy.hex()
    if not text.isdigit():
        return None
    month, yy = int(text[:2]), int(text[2:])
    if not 1 <= month <= 12:
        return None
    year = 2000 + yy if yy < 50 else 1900 + yy
    return year, month


def cert_expired(mmyy: bytes, today: datetime.date) -> bool | None:
    """Whether a certificate with expiration MMYY is expired on ``today`` (Book 2, 5.3 step 9).

    A certificate is valid up to and including the last day of its expiration month.

    Returns:
        ``True`` if expired, ``False`` if still valid, ``None`` if the date is malformed.
    """
    parsed = parse_mmyy(mmyy)
    if parsed is None:
        return None
    year, month = parsed
    return (today.year, today.month) > (year, month)
