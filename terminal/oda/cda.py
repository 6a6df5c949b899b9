"""Combined DDA / Application Cryptogram Generation verification (EMV 4.4 Book 2, 6.6.2).

With CDA the card signs, in its GENERATE AC response, the ICC dynamic data
``IDN length | IDN | CID | AC (8) | Transaction Data Hash Code (20)`` together with the
terminal's Unpredictable Number. The terminal then checks:

1. the SDAD (9F4B) as for DDA, with the UN (9F37) as terminal dynamic data (6.6.2 steps 1-7);
2. the CID in the signature equals the CID (9F27) returned in the response (step 8);
3. the Transaction Data Hash Code equals SHA-1 over, in this order, the PDOL-related data (the
   value of tag 83 in GET PROCESSING OPTIONS), the CDOL1-related data, the CDOL2-related data
   (second GENERATE AC only) and the TLV objects of the GENERATE AC response in the order
   returned, the SDAD excepted (step 9 and Table 19).

Results are values; malformed response data is a failure, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from terminal.errors import TlvError
from terminal.oda.dynamic import recover_sdad
from terminal.oda.recovery import HASH_LEN, sha1
from terminal.oda.results import (
    IccDynamicData,
    IccPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    RsaPublicKey,
)
from terminal.tlv import Tlv, decode

__all__ = [
    "cda_transaction_data",
    "genac_tlvs_for_hash",
    "verify_cda",
    "verify_cda_response",
]

_STAGE = OdaStage.SDAD
TAG_SDAD = 0x9F4B
TAG_CID = 0x9F27
TEMPLATE_FORMAT2 = 0x77


def genac_tlvs_for_hash(objects: Iterable[Tlv]) -> bytes:
    """Encode the GENERATE AC response objects that enter the hash (Book 2, 6.6.2 step 9).

    Args:
        objects: The children of the response template 77, in the order returned.

    Returns:
        Their encodings concatenated, tag 9F4B (the SDAD) left out.
    """
    return b"".join(obj.encode() for obj in objects if obj.tag != TAG_SDAD)


def cda_transaction_data(
    pdol_data: bytes,
    cdol1_data: bytes,
    response_objects: Iterable[Tlv],
    cdol2_data: bytes | None = None,
) -> bytes:
    """The data whose SHA-1 is the Transaction Data Hash Code (EMV 4.4 Book 2, 6.6.1, Table 19).

    Args:
        pdol_data: The PDOL-related data sent in GPO (value of tag 83; empty if no PDOL).
        cdol1_data: The CDOL1-related data of the first GENERATE AC.
        response_objects: The children of template 77 of the GENERATE AC response.
        cdol2_data: The CDOL2-related data, for the second GENERATE AC only.
    """
    return pdol_data + cdol1_data + (cdol2_data or b"") + genac_tlvs_for_hash(response_objects)


def verify_cda(
    icc: IccPublicKey | RsaPublicKey,
    sdad: bytes | None,
    *,
    unpredictable_number: bytes,
    cid: bytes | None,
    transaction_data: bytes,
) -> IccDynamicData | OdaFailure:
    """Verify a CDA signature (EMV 4.4 Book 2, 6.6.2).

    Args:
        icc: The recovered ICC public key.
        sdad: Tag 9F4B from the GENERATE AC response.
        unpredictable_number: Tag 9F37 the terminal sent in the CDOL data.
        cid: Tag 9F27 from the GENERATE AC response.
        transaction_data: See :func:`cda_transaction_data`.

    Returns:
        The :class:`IccDynamicData` with IDN, CID, AC (9F26) and TDHC, or an
        :class:`OdaFailure` (CDA failed).
    """
    if not cid:
        return OdaFailure(_STAGE, OdaCheck.DATA_MISSING, "tag 9F27 absent")
    dynamic = recover_sdad(icc, sdad, unpredictable_number)
    if isinstance(dynamic, OdaFailure):
        return dynamic
    if not dynamic or dynamic[0] < 2 or dynamic[0] > 8:
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, "ICC dynamic number length")
    idn_len = dynamic[0]
    need = 1 + idn_len + 1 + 8 + HASH_LEN
    if len(dynamic) < need:
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, f"{len(dynamic)} bytes, {need} needed")
    pos = 1 + idn_len
    signed_cid = dynamic[pos : pos + 1]
    cryptogram = dynamic[pos + 1 : pos + 9]
    tdhc = dynamic[pos + 9 : pos + 9 + HASH_LEN]
    if signed_cid != cid[:1] or len(cid) != 1:
        return OdaFailure(_STAGE, OdaCheck.CID_MISMATCH)
    if sha1(transaction_data) != tdhc:
        return OdaFailure(_STAGE, OdaCheck.TRANSACTION_DATA_HASH)
    return IccDynamicData(
        raw=dynamic,
        icc_dynamic_number=dynamic[1:pos],
        cid=signed_cid,
        application_cryptogram=cryptogram,
        transaction_data_hash=tdhc,
    )


def verify_cda_response(
    icc: IccPublicKey | RsaPublicKey,
    response_data: bytes,
    *,
    unpredictable_number: bytes,
    pdol_data: bytes,
    cdol1_data: bytes,
    cdol2_data: bytes | None = None,
) -> IccDynamicData | OdaFailure:
    """Verify CDA from the raw data field of a GENERATE AC response (EMV 4.4 Book 2, 6.6.2).

    Convenience for the kernel: parses template 77, takes 9F27 and 9F4B from it and calls
    :func:`verify_cda`. A response in format 1 (template 80) cannot carry CDA and fails.

    Args:
        icc: The recovered ICC public key.
        response_data: The R-APDU data field (without SW1 SW2).
        unpredictable_number: Tag 9F37 sent in the CDOL data.
        pdol_data: The value of tag 83 sent in GPO.
        cdol1_data: The CDOL1-related data.
        cdol2_data: The CDOL2-related data (second GENERATE AC), else ``None``.
    """
    try:
        objects = decode(response_data)
    except TlvError:
        return OdaFailure(_STAGE, OdaCheck.DYNAMIC_DATA, "response is not valid BER-TLV")
    if len(objects) != 1 or objects[0].tag != TEMPLATE_FORMAT2 or objects[0].children is None:
        return OdaFailure(_STAGE, OdaCheck.DATA_MISSING, "response is not a template 77")
    children = objects[0].children
    found = {obj.tag: obj.value for obj in children}
    return verify_cda(
        icc,
        found.get(TAG_SDAD),
        unpredictable_number=unpredictable_number,
        cid=found.get(TAG_CID),
        transaction_data=cda_transaction_data(pdol_data, cdol1_data, children, cdol2_data),
    )


