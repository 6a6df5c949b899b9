"""SDA: verification of the Signed Static Application Data (EMV 4.4 Book 2, 5.4).

The issuer signs, once at personalisation, the static data to be authenticated (Book 3, 10.3;
:mod:`terminal.oda.static_data`) with its private key. The card returns the signature as tag 93;
the terminal recovers it with the issuer public key (from :mod:`terminal.oda.certificates`).

Recovered layout (Book 2 Table 7, N_I the issuer modulus length): ``6A | 03 | hash algo |
data authentication code (2) | pad BB (N_I - 26) | hash (20) | BC``.
"""

from __future__ import annotations

from terminal.oda.recovery import HASH_LEN, HASH_SHA1, envelope_ok, rsa_recover, sha1
from terminal.oda.results import (
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    RsaPublicKey,
    SdaResult,
)

__all__ = ["SSAD_FORMAT", "verify_ssad"]

SSAD_FORMAT = 0x03


def verify_ssad(
    issuer: IssuerPublicKey | RsaPublicKey,
    ssad: bytes | None,
    static_data: bytes,
) -> SdaResult | OdaFailure:
    """Verify the Signed Static Application Data, tag 93 (EMV 4.4 Book 2, 5.4).

    Checks: length = N_I (step 1), header ``6A``/trailer ``BC`` (2, 3), format ``03`` (4),
    hash algorithm and SHA-1 over format .. pad pattern || static data (5-7).

    Args:
        issuer: The recovered issuer public key.
        ssad: Tag 93.
        static_data: The static data to be authenticated (records + 9F4A tag values).

    Returns:
        An :class:`SdaResult` carrying the Data Authentication Code (store it as tag 9F45),
        or an :class:`OdaFailure`.
    """
    stage = OdaStage.SSAD
    if not ssad:
        return OdaFailure(stage, OdaCheck.DATA_MISSING, "tag 93 absent")
    key = issuer.key if isinstance(issuer, IssuerPublicKey) else issuer
    size = key.size
    if len(ssad) != size:
        return OdaFailure(stage, OdaCheck.LENGTH, f"{len(ssad)} bytes, modulus {size}")
    recovered = rsa_recover(key, ssad)
    if recovered is None or size < 5 + HASH_LEN + 1 or not envelope_ok(recovered):
        return OdaFailure(stage, OdaCheck.RECOVERY)
    if recovered[1] != SSAD_FORMAT:
        return OdaFailure(stage, OdaCheck.FORMAT, f"format {recovered[1]:02X}")
    if recovered[2] != HASH_SHA1:
        return OdaFailure(stage, OdaCheck.HASH_ALGORITHM, f"indicator {recovered[2]:02X}")
    end = size - HASH_LEN - 1
    if sha1(recovered[1:end], static_data) != recovered[end:-1]:
        return OdaFailure(stage, OdaCheck.HASH)
    return SdaResult(data_authentication_code=recovered[3:5])
