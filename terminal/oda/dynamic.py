"""Dynamic signatures: DDA, CDA and fDDA verification (EMV 4.4 Book 2, 6.5, 6.6; Visa kernel 3).

All three check a Signed Dynamic Application Data (tag 9F4B) recovered with the ICC public key.
Recovered layout (Book 2 Table 17, N_IC the ICC modulus length): ``6A | 05 | hash algo |
L_DD | ICC dynamic data (L_DD) | pad BB (N_IC - L_DD - 25) | hash (20) | BC``; the hash covers
format .. pad followed by the terminal dynamic data, which differs per method:

* DDA (6.5.2): the DDOL-related data sent in INTERNAL AUTHENTICATE;
* CDA (6.6.2): the Unpredictable Number (9F37); the ICC dynamic data then also carries the CID,
  the application cryptogram and the Transaction Data Hash Code (see :mod:`terminal.oda.cda`);
* fDDA (Visa Contactless, kernel 3): UN || Amount Authorised (9F02) || Transaction Currency
  Code (5F2A) || Card Authentication Related Data (9F69) when fDDA version ``01``; UN only for
  version ``00``.

The ICC dynamic data starts with the ICC Dynamic Number length (2-8) and the number (9F4C).
"""

from __future__ import annotations

from terminal.oda.recovery import HASH_LEN, recover_signed_data
from terminal.oda.results import (
    IccDynamicData,
    IccPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    RsaPublicKey,
)

__all__ = [
    "SDAD_FORMAT",
    "fdda_terminal_data",
    "recover_sdad",
    "verify_dda",
    "verify_fdda",
]

SDAD_FORMAT = 0x05
_STAGE = OdaStage.SDAD


def recover_sdad(
    icc: IccPublicKey | RsaPublicKey,
    sdad: bytes | None,
    terminal_dynamic_data: bytes,
) -> bytes | OdaFailure:
    """Recover a Signed Dynamic Application Data and check it (EMV 4.4 Book 2, 6.5.2 steps 1-7).

    Args:
        icc: The recovered ICC public key.
        sdad: Tag 9F4B.
        terminal_dynamic_data: The data the terminal appends to the hash (DDOL data, UN...).

    Returns:
        The ICC Dynamic Data field (its length byte L_DD stripped), or an :class:`OdaFailure`.
    """
    key = icc.key if isinstance(icc, IccPublicKey) else icc
    recovered = recover_signed_data(
        key, sdad, stage=_STAGE, tag="9F4B", data_format=SDAD_FORMAT, header=4,
        hashed_extra=terminal_dynamic_data,
    )  # fmt: skip
    if isinstance(recovered, OdaFailure):
        return recovered
    end = key.size - HASH_LEN - 1
    length = recovered[3]
    if 4 + length > end:
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, f"L_DD {length} exceeds the block")
    return recovered[4 : 4 + length]


def _split_idn(dynamic: bytes) -> tuple[bytes, bytes] | OdaFailure:
    """Split ICC dynamic data into (ICC Dynamic Number, rest) (Book 2, Table 18)."""
    if not dynamic:
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, "no ICC dynamic number")
    idn_len = dynamic[0]
    if not 2 <= idn_len <= 8 or 1 + idn_len > len(dynamic):
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, f"ICC dynamic number length {idn_len}")
    return dynamic[1 : 1 + idn_len], dynamic[1 + idn_len :]


def verify_dda(
    icc: IccPublicKey | RsaPublicKey,
    sdad: bytes | None,
    ddol_data: bytes,
) -> IccDynamicData | OdaFailure:
    """Verify the SDAD returned by INTERNAL AUTHENTICATE (EMV 4.4 Book 2, 6.5.2).

    Args:
        icc: The recovered ICC public key.
        sdad: Tag 9F4B from the INTERNAL AUTHENTICATE response.
        ddol_data: The DDOL-related data the terminal sent (Book 3, 6.5.9).

    Returns:
        The :class:`IccDynamicData` (its ``icc_dynamic_number`` goes to tag 9F4C), or a failure.
    """
    dynamic = recover_sdad(icc, sdad, ddol_data)
    if isinstance(dynamic, OdaFailure):
        return dynamic
    split = _split_idn(dynamic)
    if isinstance(split, OdaFailure):
        return split
    return IccDynamicData(raw=dynamic, icc_dynamic_number=split[0])


def fdda_terminal_data(
    unpredictable_number: bytes,
    amount_authorised: bytes,
    currency_code: bytes,
    card_auth_data: bytes | None,
) -> bytes:
    """The terminal dynamic data hashed in a Visa fDDA signature (Visa Contactless, kernel 3).

    fDDA version ``01`` (first byte of 9F69): UN (9F37) || Amount, Authorised (9F02) ||
    Transaction Currency Code (5F2A) || Card Authentication Related Data (9F69). Version ``00``
    (or 9F69 absent): the UN alone.
    """
    if card_auth_data and card_auth_data[0] == 0x01:
        return unpredictable_number + amount_authorised + currency_code + card_auth_data
    return unpredictable_number


def verify_fdda(
    icc: IccPublicKey | RsaPublicKey,
    sdad: bytes | None,
    *,
    unpredictable_number: bytes,
    amount_authorised: bytes,
    currency_code: bytes,
    card_auth_data: bytes | None,
) -> IccDynamicData | OdaFailure:
    """Verify a Visa fDDA signature from the GPO response (Visa Contactless, kernel 3).

    Args:
        icc: The recovered ICC public key.
        sdad: Tag 9F4B from the GPO response (or from a record).
        unpredictable_number: Tag 9F37 the reader sent in the PDOL data.
        amount_authorised: Tag 9F02 (6 bytes) as sent in the PDOL data.
        currency_code: Tag 5F2A (2 bytes).
        card_auth_data: Tag 9F69, or ``None`` when the card returned none.

    Returns:
        The :class:`IccDynamicData` or an :class:`OdaFailure`.
    """
    data = fdda_terminal_data(
        unpredictable_number, amount_authorised, currency_code, card_auth_data
    )
    return verify_dda(icc, sdad, data)
