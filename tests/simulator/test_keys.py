"""The simulator's test PKI: determinism, consistency, and round trips through terminal ODA."""

from __future__ import annotations

import datetime
import json

import pytest

from simulator import gen_keys
from simulator.keys import (
    DEFAULT_KEYS_DIR,
    RsaKeyPair,
    TestPki,
    icc_certificate,
    load_pki,
    sign_cda,
    sign_dda,
    sign_fdda,
    sign_static_data,
)
from terminal import tlv
from terminal.capk import CapkStore
from terminal.oda import (
    IccPublicKey,
    OdaFailure,
    perform_sda,
    recover_icc_public_key,
    verify_cda_response,
    verify_dda,
    verify_fdda,
)
from tests.conftest import load_conformance

h = bytes.fromhex
TODAY = datetime.date(2026, 3, 1)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return load_pki()


@pytest.fixture(scope="module")
def store(pki: TestPki) -> CapkStore:
    s = CapkStore()
    s.load_file(pki.capk_file)
    return s


def test_committed_key_files_are_what_the_seed_generates() -> None:
    generated = gen_keys.generate(gen_keys.DEFAULT_SEED)
    for name, document in generated.items():
        committed = json.loads((DEFAULT_KEYS_DIR / name).read_text())
        assert committed == json.loads(json.dumps(document)), name
    assert gen_keys.generate("another seed")["ca.json"] != generated["ca.json"]


def test_key_pairs_are_consistent_and_sized(pki: TestPki) -> None:
    assert {(rid.hex().upper(), index) for rid, index in pki.cas} == {
        ("A000000003", 0xF0), ("A000000004", 0xF0), ("A000000025", 0xF0)}
    for ca in pki.cas.values():
        assert ca.key.n.bit_length() == 1152
        assert ca.key.e == 3
    for issuer in pki.issuers.values():
        assert issuer.key.n.bit_length() == 1024
    assert {k.e for k in pki.icc_keys} == {3, 65537}
    assert all(k.n.bit_length() == 768 for k in pki.pin_keys)
    key = pki.icc_keys[0]
    block = b"\x00" + bytes(range(1, key.size))
    assert pow(int.from_bytes(key.private_op(block), "big"), key.e, key.n) == \
        int.from_bytes(block, "big")
    assert "d=" not in repr(key)
    assert format(key.d, "X") not in repr(key)
    broken = key.to_json() | {"d": format(key.d + 2, "X")}
    with pytest.raises(ValueError, match="inconsistent"):
        RsaKeyPair.from_json(broken)


def test_our_ca_indexes_do_not_clash_with_public_keys(store: CapkStore) -> None:
    public = set()
    for name in ("capk_emv_utils.json", "capk_proxmark3.json"):
        public |= {(e["rid"], e["index"]) for e in load_conformance("emv", name)["keys"]}
    ours = {(k.rid.hex().upper(), f"{k.index:02X}") for k in store}
    assert len(ours) == 3
    assert not ours & public
    merged = CapkStore.default()
    merged.load_file(load_pki().capk_file)  # both load side by side
    assert len(merged) == len(CapkStore.default()) + 3


@pytest.mark.parametrize(("issuer_name", "rid", "pan"), [
    ("visa", "A000000003", "4761731000000019"),
    ("mastercard", "A000000004", "5413330000000012"),
    ("amex", "A000000025", "374245000000003"),
])
def test_sda_dda_cda_round_trip(pki: TestPki, store: CapkStore, issuer_name: str, rid: str,
                                pan: str) -> None:
    issuer = pki.issuers[issuer_name]
    pan_field = h(pan + "F" * (len(pan) % 2))
    static = b"\x5a" + bytes((len(pan_field),)) + pan_field + h("3900")
    card = {0x8F: b"\xf0", 0x90: issuer.certificate.certificate,
            0x92: issuer.certificate.remainder, 0x9F32: issuer.certificate.exponent,
            0x5A: pan_field, 0x93: sign_static_data(issuer.key, h("DA01"), static)}
    sda = perform_sda(store, h(rid), card, static, TODAY)
    assert not isinstance(sda, OdaFailure), sda
    assert sda.data_authentication_code == h("DA01")

    icc = pki.icc_keys[1]
    cert = icc_certificate(issuer.key, icc.public(), pan, h("1230"), h("000042"), static)
    card |= {0x9F46: cert.certificate, 0x9F48: cert.remainder, 0x9F47: cert.exponent}
    icc_key = recover_icc_public_key(store, h(rid), card, static, TODAY)
    assert isinstance(icc_key, IccPublicKey), icc_key

    ddol = h("01020304")
    dda = verify_dda(icc_key, sign_dda(icc, h("1122334455667788"), ddol), ddol)
    assert not isinstance(dda, OdaFailure)
    assert dda.icc_dynamic_number == h("1122334455667788")

    un, pdol, cdol1 = h("CAFEBABE"), h("8000"), h("000000001000") + h("CAFEBABE")
    head = [(0x9F27, b"\x40"), (0x9F36, h("0007"))]
    tail = [(0x9F26, h("0102030405060708")), (0x9F10, h("0110A00000"))]
    transaction = pdol + cdol1 + tlv.encode_tlvs(head + tail)
    sdad = sign_cda(icc, idn=h("A1A2A3A4"), cid=b"\x40", cryptogram=h("0102030405060708"),
                    unpredictable_number=un, transaction_data=transaction)
    response = tlv.encode(0x77, tlv.encode_tlvs([*head, (0x9F4B, sdad), *tail]))
    cda = verify_cda_response(icc_key, response, unpredictable_number=un, pdol_data=pdol,
                              cdol1_data=cdol1)
    assert not isinstance(cda, OdaFailure), cda
    assert cda.application_cryptogram == h("0102030405060708")

    for version in (h("01A1B2C3D4"), h("00")):
        sig = sign_fdda(icc, idn=h("0015"), unpredictable_number=un,
                        amount_authorised=h("000000000100"), currency_code=h("0978"),
                        card_auth_data=version)
        ok = verify_fdda(icc_key, sig, unpredictable_number=un,
                         amount_authorised=h("000000000100"), currency_code=h("0978"),
                         card_auth_data=version)
        assert not isinstance(ok, OdaFailure), ok
        other = verify_fdda(icc_key, sig, unpredictable_number=un,
                            amount_authorised=h("000000000999"), currency_code=h("0978"),
                            card_auth_data=version)
        # Version 00 signs the UN only, so the amount does not matter there.
        assert isinstance(other, OdaFailure) == (version[0] == 1)


def test_signing_rejects_bad_arguments(pki: TestPki) -> None:
    icc = pki.icc_keys[0]
    with pytest.raises(ValueError, match="2-8"):
        sign_dda(icc, b"\x01", b"")
    with pytest.raises(ValueError, match="2 bytes"):
        sign_static_data(pki.issuers["visa"].key, b"\x01", b"")
    with pytest.raises(ValueError, match="digits"):
        icc_certificate(pki.issuers["visa"].key, icc.public(), "12AB", h("1230"), h("000001"), b"")
