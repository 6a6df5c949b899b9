"""Every ODA check fails for the right reason (EMV 4.4 Book 2, 5.3, 5.4, 6.3-6.6, 7.1).

Certificates and signatures are built with the simulator's test PKI (our own CA keys at index
F0), with one field broken at a time.
"""

from __future__ import annotations

import datetime

import pytest

from simulator.keys import (
    TestPki,
    emv_sign,
    icc_certificate,
    issuer_certificate,
    load_pki,
    pin_certificate,
    sign_static_data,
)
from terminal.capk import CapkStore
from terminal.oda import (
    IccPublicKey,
    IssuerPublicKey,
    OdaCheck,
    OdaFailure,
    OdaStage,
    perform_sda,
    recover_icc_public_key,
    recover_issuer_key,
    recover_pin_public_key,
    verify_ssad,
)

h = bytes.fromhex
VISA = h("A000000003")
PAN = "4761731234567890"
TODAY = datetime.date(2026, 1, 15)
STATIC = h("5A0847617312345678905F24032912319F4A0182") + h("3900")


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return load_pki()


@pytest.fixture
def store(pki: TestPki) -> CapkStore:
    s = CapkStore()
    s.load_file(pki.capk_file)
    return s


def _issuer_data(pki: TestPki, name: str = "visa") -> dict[int, bytes]:
    issuer = pki.issuers[name]
    return {0x8F: bytes((issuer.ca.index,)), 0x90: issuer.certificate.certificate,
            0x92: issuer.certificate.remainder, 0x9F32: issuer.certificate.exponent,
            0x5A: h(PAN)}


def test_sda_with_our_pki(pki: TestPki, store: CapkStore) -> None:
    card = _issuer_data(pki) | {0x93: sign_static_data(pki.issuers["visa"].key, h("BEEF"), STATIC)}
    result = perform_sda(store, VISA, card, STATIC, TODAY)
    assert not isinstance(result, OdaFailure), result
    assert result.data_authentication_code == h("BEEF")


def test_expired_issuer_certificate(pki: TestPki, store: CapkStore) -> None:
    card = _issuer_data(pki, "visa_expired")
    card[0x93] = sign_static_data(pki.issuers["visa"].key, h("BEEF"), STATIC)
    out = perform_sda(store, VISA, card, STATIC, TODAY)
    assert out == OdaFailure(OdaStage.ISSUER_CERT, OdaCheck.EXPIRED, "expiry 1220")
    assert not isinstance(perform_sda(store, VISA, card, STATIC, datetime.date(2020, 12, 31)),
                          OdaFailure)


def test_revoked_issuer_certificate(pki: TestPki, store: CapkStore) -> None:
    issuer = pki.issuers["visa"]
    store.revoke(VISA, 0xF0, issuer.serial)
    card = _issuer_data(pki) | {0x93: sign_static_data(issuer.key, h("BEEF"), STATIC)}
    out = perform_sda(store, VISA, card, STATIC, TODAY)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.REVOKED


def _forged_issuer_cert(pki: TestPki, **changes: int) -> bytes:
    """An issuer certificate with one header field changed (format, algorithms, lengths)."""
    ca = pki.cas[(VISA, 0xF0)].key
    issuer = pki.issuers["visa"].key
    fields = {"fmt": 0x02, "hash": 0x01, "pk": 0x01, "n_len": issuer.size, "e_len": 1}
    fields.update(changes)
    room = ca.size - 36
    data = (bytes((fields["fmt"],)) + h("476173FF") + h("1249") + h("000777")
            + bytes((fields["hash"], fields["pk"], fields["n_len"], fields["e_len"]))
            + issuer.modulus[:room])
    return emv_sign(ca, data, issuer.modulus[room:] + issuer.exponent)


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"fmt": 0x04}, OdaCheck.FORMAT),
        ({"hash": 0x02}, OdaCheck.HASH_ALGORITHM),
        ({"pk": 0x02}, OdaCheck.PK_ALGORITHM),
        ({"e_len": 3}, OdaCheck.KEY_LENGTH),
        ({"n_len": 120}, OdaCheck.REMAINDER),
    ],
)
def test_issuer_certificate_header_checks(pki: TestPki, changes: dict[str, int],
                                          check: OdaCheck) -> None:
    ca = pki.cas[(VISA, 0xF0)]
    issuer = pki.issuers["visa"]
    out = recover_issuer_key(ca, _forged_issuer_cert(pki, **changes), issuer.certificate.remainder,
                             issuer.certificate.exponent, h(PAN), TODAY)
    assert isinstance(out, OdaFailure), out
    assert (out.stage, out.check) == (OdaStage.ISSUER_CERT, check)
    assert isinstance(recover_issuer_key(ca, _forged_issuer_cert(pki), issuer.certificate.remainder,
                                         issuer.certificate.exponent, h(PAN), TODAY),
                      IssuerPublicKey)


def test_issuer_certificate_length_remainder_and_identifier(pki: TestPki) -> None:
    ca = pki.cas[(VISA, 0xF0)]
    cert = pki.issuers["visa"].certificate
    short = recover_issuer_key(ca, cert.certificate[1:], cert.remainder, cert.exponent, h(PAN),
                               TODAY)
    assert isinstance(short, OdaFailure)
    assert short.check is OdaCheck.LENGTH
    no_rem = recover_issuer_key(ca, cert.certificate, None, cert.exponent, h(PAN), TODAY)
    assert isinstance(no_rem, OdaFailure)
    assert no_rem.check is OdaCheck.HASH
    wrong_exp = recover_issuer_key(ca, cert.certificate, cert.remainder, h("010001"), h(PAN), TODAY)
    assert isinstance(wrong_exp, OdaFailure)
    assert wrong_exp.check is OdaCheck.HASH
    other_bin = recover_issuer_key(ca, cert.certificate, cert.remainder, cert.exponent,
                                   h("5413330000000000"), TODAY)
    assert isinstance(other_bin, OdaFailure)
    assert other_bin.check is OdaCheck.IDENTIFIER
    not_cn = recover_issuer_key(ca, cert.certificate, cert.remainder, cert.exponent, h("4A"), TODAY)
    assert isinstance(not_cn, OdaFailure)
    assert not_cn.check is OdaCheck.IDENTIFIER
    missing = recover_issuer_key(ca, None, cert.remainder, cert.exponent, h(PAN), TODAY)
    assert isinstance(missing, OdaFailure)
    assert missing.icc_data_missing
    # A value not below the modulus cannot be a signature.
    too_big = recover_issuer_key(ca, b"\xff" * len(cert.certificate), None, cert.exponent,
                                 h(PAN), TODAY)
    assert isinstance(too_big, OdaFailure)
    assert too_big.check is OdaCheck.RECOVERY


def test_invalid_expiry_date_in_certificate(pki: TestPki) -> None:
    ca, issuer = pki.cas[(VISA, 0xF0)], pki.issuers["visa"]
    cert = issuer_certificate(ca.key, issuer.key.public(), "476173", h("1349"), h("000001"))
    out = recover_issuer_key(ca, cert.certificate, cert.remainder, cert.exponent, h(PAN), TODAY)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.DATE_INVALID


def test_icc_and_pin_keys(pki: TestPki, store: CapkStore) -> None:
    issuer = pki.issuers["visa"]
    icc_pair, pin_pair = pki.icc_keys[3], pki.pin_keys[0]  # e = 65537; a 768-bit key
    icc = icc_certificate(issuer.key, icc_pair.public(), PAN, h("1230"), h("000009"), STATIC)
    pin = pin_certificate(issuer.key, pin_pair.public(), PAN, h("1230"), h("00000A"))
    assert len(pin.remainder) == pin_pair.size - (issuer.key.size - 42)
    card = _issuer_data(pki) | {0x9F46: icc.certificate, 0x9F48: icc.remainder,
                                0x9F47: icc.exponent}
    icc_key = recover_icc_public_key(store, VISA, card, STATIC, TODAY)
    assert isinstance(icc_key, IccPublicKey)
    assert icc_key.key == icc_pair.public()
    assert icc_key.key.exponent == h("010001")
    # Without a PIN certificate the ICC key is the PIN key; with one, the PIN key.
    assert recover_pin_public_key(store, VISA, card, STATIC, TODAY) == icc_key
    card |= {0x9F2D: pin.certificate, 0x9F2E: pin.exponent, 0x9F2F: pin.remainder}
    pin_key = recover_pin_public_key(store, VISA, card, STATIC, TODAY)
    assert isinstance(pin_key, IccPublicKey)
    assert pin_key.key == pin_pair.public()
    # The ICC certificate does not verify over other static data; the PIN one does not use it.
    bad = recover_icc_public_key(store, VISA, card, STATIC + b"\x00", TODAY)
    assert isinstance(bad, OdaFailure)
    assert (bad.stage, bad.check) == (OdaStage.ICC_CERT,
                                                                      OdaCheck.HASH)
    assert recover_pin_public_key(store, VISA, card, STATIC + b"\x00", TODAY) == pin_key
    # A static-data failure propagates unchanged.
    failure = OdaFailure(OdaStage.STATIC_DATA, OdaCheck.STATIC_DATA)
    assert recover_icc_public_key(store, VISA, card, failure, TODAY) == failure
    no_cert = {k: v for k, v in card.items() if k != 0x9F46}
    out = recover_icc_public_key(store, VISA, no_cert, STATIC, TODAY)
    assert isinstance(out, OdaFailure)
    assert out.icc_data_missing


def test_ssad_format_and_hash_algorithm(pki: TestPki) -> None:
    issuer = pki.issuers["visa"].key
    pad = b"\xbb" * (issuer.size - 26)
    wrong_format = emv_sign(issuer, h("0401BEEF") + pad, STATIC)
    assert verify_ssad(issuer.public(), wrong_format, STATIC) == OdaFailure(
        OdaStage.SSAD, OdaCheck.FORMAT, "format 04")
    wrong_hash = emv_sign(issuer, h("0302BEEF") + pad, STATIC)
    out = verify_ssad(issuer.public(), wrong_hash, STATIC)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.HASH_ALGORITHM
    assert verify_ssad(issuer.public(), None, STATIC) == OdaFailure(
        OdaStage.SSAD, OdaCheck.DATA_MISSING, "tag 93 absent")
