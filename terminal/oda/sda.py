"""SDA: verification of the Signed Static Application Data (EMV 4.4 Book 2, 5.4).

The issuer signs, once at personalisation, the static data to be authenticated (Book 3, 10.3;
:mod:`terminal.oda.static_data`) with its private key. The card returns the signature as tag 93;
the terminal recovers it with the issuer public key (from :mod:`terminal.oda.certificates`).

Recovered layout (Book 2 Table 7, N_I the issuer modulus length): ``6A | 03 | hash algo |
data authentication code (2) | pad BB (N_I - 26) | hash (20) | BC``.
"""

from __future__ import annotations

from terminal.oda.recovery import recover_signed_data
from terminal.oda.results import (
    IssuerPublicKey,
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
    key = issuer.key if isinstance(issuer, IssuerPublicKey) else issuer
    recovered = recover_signed_data(
        key, ssad, stage=OdaStage.SSAD, tag="93", data_format=SSAD_FORMAT, header=5,
        hashed_extra=static_data,
    )  # fmt: skip
    if isinstance(recovered, OdaFailure):
        return recovered
    return SdaResult(data_authentication_code=recovered[3:5])
