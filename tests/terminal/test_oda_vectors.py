"""ODA against the public vectors of conformance/emv/oda_vectors.json (EMV 4.4 Book 2, 5-6)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from terminal import tlv
from terminal.capk import CapkStore, CaPublicKey
from terminal.oda import (
    IccPublicKey,
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaMethod,
    OdaStage,
    RsaPublicKey,
    StaticDataCollector,
    cda_transaction_data,
    perform_sda,
    recover_icc_key,
    recover_issuer_key,
    recover_sdad,
    tvr_byte1_bits,
    verify_cda,
    verify_cda_response,
    verify_dda,
    verify_ssad,
)
from terminal.oda.recovery import rsa_recover
from tests.conftest import load_conformance

h = bytes.fromhex
Vectors = dict[str, Any]
CaKeys = dict[tuple[str, str], CaPublicKey]


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return {v["id"]: v for v in load_conformance("emv", "oda_vectors.json")}


@pytest.fixture(scope="module")
def ca_keys() -> dict[tuple[str, str], CaPublicKey]:
    out = {}
    for e in load_conformance("emv", "capk_emv_utils.json")["keys"]:
        out[(e["rid"], e["index"])] = CaPublicKey(
            h(e["rid"]), int(e["index"], 16), h(e["modulus"]), h(e["exponent"]), h(e["sha1"])
        )
    return out


def _issuer(
    vec: dict[str, Any], ca: CaPublicKey, pan: str, today: datetime.date
) -> IssuerPublicKey | OdaFailure:
    i = vec["inputs"]
    return recover_issuer_key(
        ca, h(i["90_issuer_pk_cert"]), h(i["92_issuer_pk_remainder"]),
        h(i["9F32_issuer_pk_exponent"]), h(pan), today,
    )


def test_sda_real_visa_card(vectors: Vectors, ca_keys: CaKeys) -> None:
    vec = vectors["pm3_sda_visa01"]
    i, exp = vec["inputs"], vec["expected"]
    issuer = _issuer(vec, ca_keys[("A000000003", "01")], i["5A_pan_given_in_test"],
                     datetime.date(2009, 6, 1))
    assert isinstance(issuer, IssuerPublicKey), issuer
    assert issuer.key.modulus.hex().upper() == exp["issuer_pk_modulus"]
    assert issuer.issuer_identifier.hex().upper() == exp["issuer_identifier"]
    assert issuer.expiry.hex() == exp["issuer_cert_expiry_MMYY"]
    result = verify_ssad(issuer, h(i["93_signed_static_application_data"]),
                         h(i["static_data_to_authenticate"]))
    assert not isinstance(result, OdaFailure), result
    assert result.data_authentication_code.hex() == exp["data_authentication_code_9F45"]
    # One changed byte of static data: the SSAD hash fails (SDA failed).
    bad = verify_ssad(issuer, h(i["93_signed_static_application_data"]),
                      h(i["static_data_to_authenticate"])[:-1] + b"\x01")
    assert bad == OdaFailure(OdaStage.SSAD, OdaCheck.HASH)
    assert tvr_byte1_bits(OdaMethod.SDA, bad) == 0x40


def test_sda_issuer_certificate_expired_after_december_2009(
    vectors: Vectors, ca_keys: CaKeys
) -> None:
    vec = vectors["pm3_sda_visa01"]
    out = _issuer(vec, ca_keys[("A000000003", "01")], vec["inputs"]["5A_pan_given_in_test"],
                  datetime.date(2010, 1, 1))
    assert isinstance(out, OdaFailure)
    assert (out.stage, out.check) == (OdaStage.ISSUER_CERT, OdaCheck.EXPIRED)


def test_sda_issuer_identifier_must_match_pan(vectors: Vectors, ca_keys: CaKeys) -> None:
    vec = vectors["pm3_sda_visa01"]
    out = _issuer(vec, ca_keys[("A000000003", "01")], "4276560000000000",
                  datetime.date(2009, 6, 1))
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.IDENTIFIER
    assert "427656" not in str(out)


@pytest.mark.parametrize("vector_id", ["pm3_dda_mc05", "pm3_cda_mc05"])
def test_real_mastercard_icc_key_chain(vectors: Vectors, ca_keys: CaKeys, vector_id: str) -> None:
    vec = vectors[vector_id]
    i, exp = vec["inputs"], vec["expected"]
    today = datetime.date(2015, 6, 30)
    issuer = _issuer(vec, ca_keys[("A000000004", "05")], i["5A_pan"], today)
    assert isinstance(issuer, IssuerPublicKey), issuer
    assert issuer.key.modulus.hex().upper() == exp["issuer_pk_modulus"]
    icc = recover_icc_key(issuer, h(i["9F46_icc_pk_cert"]), h(i["9F48_icc_pk_remainder"]),
                          h(i["9F47_icc_pk_exponent"]), h(i["5A_pan"]),
                          h(i["static_data_to_authenticate"]), today)
    assert isinstance(icc, IccPublicKey), icc
    assert icc.key.modulus.hex().upper() == exp["icc_pk_modulus"]
    assert icc.expiry.hex() == exp["icc_cert_expiry_MMYY"]
    # The ICC certificate expired at the end of June 2015.
    late = recover_icc_key(issuer, h(i["9F46_icc_pk_cert"]), None, h(i["9F47_icc_pk_exponent"]),
                           h(i["5A_pan"]), h(i["static_data_to_authenticate"]),
                           datetime.date(2015, 7, 1))
    assert isinstance(late, OdaFailure)
    assert late.check is OdaCheck.EXPIRED
    # Another PAN: the certificate does not bind it.
    other = recover_icc_key(issuer, h(i["9F46_icc_pk_cert"]), None, h(i["9F47_icc_pk_exponent"]),
                            h("5285881254345654"), h(i["static_data_to_authenticate"]), today)
    assert isinstance(other, OdaFailure)
    assert other.check is OdaCheck.IDENTIFIER
    # Static data changed: the ICC certificate hash fails.
    changed = recover_icc_key(issuer, h(i["9F46_icc_pk_cert"]), None,
                              h(i["9F47_icc_pk_exponent"]), h(i["5A_pan"]),
                              h(i["static_data_to_authenticate"]) + b"\x00", today)
    assert isinstance(changed, OdaFailure)
    assert (changed.stage, changed.check) == (OdaStage.ICC_CERT, OdaCheck.HASH)

    if vector_id == "pm3_dda_mc05":
        dyn = verify_dda(icc, h(i["9F4B_signed_dynamic_application_data"]),
                         h(i["ddol_data (9F37 UN)"]))
        assert not isinstance(dyn, OdaFailure), dyn
        assert dyn.raw.hex().upper() == exp["icc_dynamic_data"]
        assert dyn.icc_dynamic_number.hex().upper() == exp["icc_dynamic_number_9F4C"]
        wrong_un = verify_dda(icc, h(i["9F4B_signed_dynamic_application_data"]), h("00000001"))
        assert wrong_un == OdaFailure(OdaStage.SDAD, OdaCheck.HASH)
        assert tvr_byte1_bits(OdaMethod.DDA, wrong_un) == 0x08
        return

    sdad = h(i["9F4B_signed_dynamic_application_data"])
    un = h(i["9F37_unpredictable_number"])
    tx = h(i["cdol1_related_data"]) + h(i["genac_response_tlvs_excluding_9F4B (in order)"])
    dyn = verify_cda(icc, sdad, unpredictable_number=un, cid=h("40"), transaction_data=tx)
    assert not isinstance(dyn, OdaFailure), dyn
    assert dyn.icc_dynamic_number.hex().upper() == exp["icc_dynamic_number_9F4C"]
    assert dyn.cid == h(exp["cid_in_sdad"])
    assert dyn.application_cryptogram == h(exp["application_cryptogram_9F26"])
    assert dyn.transaction_data_hash == h(exp["transaction_data_hash_code"])
    # The same checks from the raw GENERATE AC response template.
    fields = i["genac_response_fields"]
    response = tlv.encode(0x77, tlv.encode_tlvs([
        (0x9F27, h(fields["9F27"])), (0x9F36, h(fields["9F36"])), (0x9F4B, sdad),
        (0x9F10, h(fields["9F10"])),
    ]))
    ok = verify_cda_response(icc, response, unpredictable_number=un, pdol_data=b"",
                             cdol1_data=h(i["cdol1_related_data"]))
    assert not isinstance(ok, OdaFailure), ok
    children = tlv.decode(response)[0].children
    assert children is not None
    assert cda_transaction_data(b"", h(i["cdol1_related_data"]), children) == tx
    # Failures name the right check.
    assert verify_cda(icc, sdad, unpredictable_number=un, cid=h("80"), transaction_data=tx) == \
        OdaFailure(OdaStage.SDAD, OdaCheck.CID_MISMATCH)
    assert verify_cda(icc, sdad, unpredictable_number=un, cid=h("40"),
                      transaction_data=tx + b"\x00") == \
        OdaFailure(OdaStage.SDAD, OdaCheck.TRANSACTION_DATA_HASH)
    bad_un = verify_cda(icc, sdad, unpredictable_number=h("12345778"), cid=h("40"),
                        transaction_data=tx)
    assert bad_un == OdaFailure(OdaStage.SDAD, OdaCheck.HASH)
    assert tvr_byte1_bits(OdaMethod.CDA, bad_un) == 0x04
    missing = verify_cda_response(icc, tlv.encode(0x77, tlv.encode(0x9F27, b"\x40")),
                                  unpredictable_number=un, pdol_data=b"", cdol1_data=b"")
    assert isinstance(missing, OdaFailure)
    assert missing.check is OdaCheck.DATA_MISSING
    assert tvr_byte1_bits(OdaMethod.CDA, missing) == 0x24
    garbage = verify_cda_response(icc, h("7781"), unpredictable_number=un, pdol_data=b"",
                                  cdol1_data=b"")
    assert isinstance(garbage, OdaFailure)


def _icc_key_from_block(issuer: RsaPublicKey, cert: bytes, remainder: bytes, exponent: bytes,
                        length: int) -> RsaPublicKey:
    """Build the ICC key straight from the recovered block (no static data in the vector)."""
    block = rsa_recover(issuer, cert)
    assert block is not None
    field = block[21 : len(block) - 21]
    return RsaPublicKey((field + remainder)[:length], exponent)


def test_visa_test_key_94_primitives_and_broken_variants(vectors: Vectors) -> None:
    vec = vectors["emvutils_visa94_primitives"]
    i, exp = vec["inputs"], vec["expected"]
    store = CapkStore.default()
    ca = store.get(h("A000000003"), 0x94)
    assert ca is not None
    pan = h(i["5A_pan"])

    def issuer_at(
        day: datetime.date, cert: str = "90_issuer_pk_cert"
    ) -> IssuerPublicKey | OdaFailure:
        return recover_issuer_key(ca, h(i[cert]), h(i["92_issuer_pk_remainder"]),
                                  h(i["9F32_issuer_pk_exponent"]), pan, day,
                                  is_revoked=store.is_revoked)

    issuer = issuer_at(datetime.date(2031, 12, 31))
    assert isinstance(issuer, IssuerPublicKey), issuer
    assert issuer.serial.hex().upper() == exp["issuer_cert_serial"]
    assert issuer.key.size == exp["issuer_pk_len"]
    assert issuer.key.modulus.hex().upper() == exp["issuer_pk_modulus"]
    expired = issuer_at(datetime.date(2032, 1, 1))
    assert isinstance(expired, OdaFailure)
    assert expired.check is OdaCheck.EXPIRED
    broken = issuer_at(datetime.date(2031, 12, 31), "90_issuer_pk_cert_INVALID_last_byte")
    assert broken == OdaFailure(OdaStage.ISSUER_CERT, OdaCheck.RECOVERY)
    # Revocation of (RID, index, serial) is honoured.
    store.revoke(h("A000000003"), 0x94, h(exp["issuer_cert_serial"]))
    revoked = issuer_at(datetime.date(2031, 12, 31))
    assert isinstance(revoked, OdaFailure)
    assert revoked.check is OdaCheck.REVOKED

    # SSAD: recovery and DAC; the hash over unknown static data cannot match.
    block = rsa_recover(issuer.key, h(i["93_ssad"]))
    assert block is not None
    assert block[3:5].hex().upper() == exp["ssad_dac"]
    assert block[-21:-1].hex().upper() == exp["ssad_hash_result_in_recovered_data"]
    no_static = verify_ssad(issuer, h(i["93_ssad"]), b"")
    assert no_static == OdaFailure(OdaStage.SSAD, OdaCheck.HASH)
    assert verify_ssad(issuer, h(i["93_ssad_INVALID"]), b"") == \
        OdaFailure(OdaStage.SSAD, OdaCheck.RECOVERY)

    # ICC certificate: passes envelope and format, fails only on the (unknown) static data hash.
    today = datetime.date(2022, 5, 6)
    icc_out = recover_icc_key(issuer, h(i["9F46_icc_pk_cert"]), h(i["9F48_icc_pk_remainder"]),
                              h(i["9F47_icc_pk_exponent"]), pan, b"", today)
    assert icc_out == OdaFailure(OdaStage.ICC_CERT, OdaCheck.HASH)
    invalid = recover_icc_key(issuer, h(i["9F46_icc_pk_cert_INVALID"]),
                              h(i["9F48_icc_pk_remainder"]), h(i["9F47_icc_pk_exponent"]),
                              pan, b"", today)
    assert invalid == OdaFailure(OdaStage.ICC_CERT, OdaCheck.RECOVERY)
    icc_block = rsa_recover(issuer.key, h(i["9F46_icc_pk_cert"]))
    assert icc_block is not None
    assert icc_block[2:12].hex().upper() == exp["icc_cert_pan"]
    assert icc_block[12:14].hex() == exp["icc_cert_expiry_MMYY"]
    assert icc_block[-21:-1].hex().upper() == exp["icc_cert_hash_in_recovered_data"]

    icc = _icc_key_from_block(issuer.key, h(i["9F46_icc_pk_cert"]), h(i["9F48_icc_pk_remainder"]),
                              h(i["9F47_icc_pk_exponent"]), exp["icc_pk_len"])
    dyn = verify_dda(icc, h(i["9F4B_sdad"]), h(i["ddol_data (DDOL 9F3704)"]))
    assert not isinstance(dyn, OdaFailure), dyn
    assert dyn.raw.hex().upper() == exp["icc_dynamic_data"]
    assert dyn.icc_dynamic_number.hex().upper() == exp["icc_dynamic_number"]
    assert verify_dda(icc, h(i["9F4B_sdad_INVALID"]), h(i["ddol_data (DDOL 9F3704)"])) == \
        OdaFailure(OdaStage.SDAD, OdaCheck.RECOVERY)


def test_mastercard_test_key_f1_cda_sdad(vectors: Vectors) -> None:
    vec = vectors["emvutils_mcF1_cda_sdad"]
    i, exp = vec["inputs"], vec["expected"]
    ca = CapkStore.default().get(h("A000000004"), 0xF1)
    assert ca is not None
    today = datetime.date(2025, 5, 6)
    issuer = recover_issuer_key(ca, h(i["90_issuer_pk_cert"]), None,
                                h(i["9F32_issuer_pk_exponent"]), h(i["5A_pan"]), today)
    assert isinstance(issuer, IssuerPublicKey), issuer
    assert issuer.issuer_identifier.hex().upper() == exp["issuer_identifier"]
    assert issuer.key.size == exp["issuer_pk_len"]
    icc = _icc_key_from_block(issuer.key, h(i["9F46_icc_pk_cert"]), h(i["9F48_icc_pk_remainder"]),
                              h(i["9F47_icc_pk_exponent"]), exp["icc_pk_len"])
    un = h(i["9F37_unpredictable_number"])
    dynamic = recover_sdad(icc, h(i["9F4B_sdad"]), un)
    assert isinstance(dynamic, bytes)
    assert dynamic[1:9].hex().upper() == exp["icc_dynamic_number"]
    assert dynamic[9] == 0x00
    assert dynamic[10:18].hex().upper() == exp["application_cryptogram"]
    assert dynamic[18:38].hex().upper() == exp["transaction_data_hash_code"]
    # Without the transaction data only the TDHC check can fail.
    assert verify_cda(icc, h(i["9F4B_sdad"]), unpredictable_number=un, cid=b"\x00",
                      transaction_data=b"") == \
        OdaFailure(OdaStage.SDAD, OdaCheck.TRANSACTION_DATA_HASH)
    assert verify_cda(icc, h(i["9F4B_sdad_INVALID"]), unpredictable_number=un, cid=b"\x00",
                      transaction_data=b"") == OdaFailure(OdaStage.SDAD, OdaCheck.RECOVERY)


def test_synthetic_sda_card_end_to_end(vectors: Vectors) -> None:
    vec = vectors["javaemvreader_sda_emulated_card"]
    capk, i, exp = vec["capk"], vec["inputs"], vec["expected"]
    rid = h(capk["rid"])
    store = CapkStore([CaPublicKey(rid, int(capk["index"], 16), h(capk["modulus"]),
                                   h(capk["exponent"]), h(capk["sha1"]))])
    gpo = tlv.decode(h(i["gpo_response"]))[0]
    assert gpo.tag == 0x80
    aip, afl = gpo.value[:2], gpo.value[2:]
    collector = StaticDataCollector(afl)
    card: dict[int, bytes] = {0x82: aip}
    for name, record in sorted(i["records"].items()):
        number = int(name.rsplit("rec", 1)[1])
        collector.add_record(1, number, h(record))
        tlv.flatten(tlv.decode(h(record)), card)
    static = collector.finish(card.get(0x9F4A), card)
    assert isinstance(static, bytes)
    assert static.hex().upper() == exp["static_data_to_authenticate"]
    today = datetime.date(2011, 1, 1)
    # The mock issuer certificate binds issuer identifier 492564 while the card's PAN is
    # 541111...: everything verifies (hashes included) except Book 2 5.3 step 8.
    result = perform_sda(store, rid, card, static, today)
    assert result == OdaFailure(OdaStage.ISSUER_CERT, OdaCheck.IDENTIFIER,
                                "issuer identifier does not match the PAN")
    mock_ca = store.get(rid, 7)
    assert mock_ca is not None
    issuer = recover_issuer_key(mock_ca, card[0x90], card.get(0x92), card[0x9F32],
                                h("4925640000000000"), today)
    assert isinstance(issuer, IssuerPublicKey), issuer
    assert issuer.key.modulus.hex().upper() == exp["issuer_pk_modulus"]
    ssad = verify_ssad(issuer, card[0x93], static)
    assert not isinstance(ssad, OdaFailure), ssad
    assert ssad.data_authentication_code.hex() == exp["data_authentication_code"]
    assert perform_sda(store, rid, {**card, 0x5A: h("4925641234567890")}, static, today) == ssad
    # An unknown CA index and an absent 8F are different failures.
    assert perform_sda(CapkStore(), rid, card, static, datetime.date(2011, 1, 1)) == \
        OdaFailure(OdaStage.CAPK, OdaCheck.KEY_UNKNOWN, "index 07")
    no_index = {k: v for k, v in card.items() if k != 0x8F}
    out = perform_sda(store, rid, no_index, static, datetime.date(2011, 1, 1))
    assert isinstance(out, OdaFailure)
    assert out.icc_data_missing
