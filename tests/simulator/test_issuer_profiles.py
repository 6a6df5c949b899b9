"""Issuer profiles in a file: the format, the shipped issuers, the cryptogram versions.

The EMV generic derivation (common session key, ARPC method 1 and 2) is cross-checked against
pyemv 1.5.0; the scheme CVNs expressed as specs against the simulator's own CVN functions
(themselves checked against pyemv in test_cryptogram.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.card import VirtualCard
from simulator.card.iad import CvrState, build_iad, card_data_for_mac
from simulator.card.profile import ProfileError, load_profile
from simulator.cryptogram import AcTransaction, Cvn, derive_card_key, generate_ac, generate_arpc
from simulator.cryptogram_spec import (
    DEFAULT_AC_TAGS,
    CryptogramSpec,
    check_issuer_auth,
    issuer_auth_data,
    spec_for_cvn,
)
from simulator.issuer import IssuerHost
from simulator.issuer_profiles import (
    ISSUERS_SCHEMA_FILE,
    CryptogramModel,
    IssuerFileError,
    default_issuers,
    issuers_schema,
    load_issuers,
    parse_issuers,
)
from tests.simulator.test_cryptogram import pyemv_warnings

h = bytes.fromhex
KEY = "00112233445566778899AABBCCDDEEFF"
ONE_ISSUER = {"issuers": [{"name": "acme", "pan_ranges": [{"low": "4999", "high": "5001"}],
                           "keys": {"ac": KEY}, "cryptogram": {"version": "emv-csk"}}]}


def test_shipped_schema_is_the_models_schema() -> None:
    """The documented JSON Schema cannot drift from what the host validates."""
    assert json.loads(ISSUERS_SCHEMA_FILE.read_text()) == issuers_schema()


def test_shipped_issuers_are_the_cards_keys() -> None:
    book = default_issuers()
    assert [issuer.name for issuer in book.issuers] == ["visa", "mastercard", "amex", "cb"]
    assert all(issuer.cryptogram.version == "auto" for issuer in book.issuers)
    card = VirtualCard.from_profile("visa_credit")
    app = card.applications[0]
    visa = IssuerHost().keys["visa"].keys
    assert app.mk_ac == derive_card_key(Cvn.VISA_10, visa.ac, app.profile.pan, "01")


def test_toml_and_json_files_and_their_errors(tmp_path: Path) -> None:
    toml = tmp_path / "issuers.toml"
    toml.write_text(
        '[[issuers]]\nname = "acme"\npan_ranges = [{low = "4999", high = "5001"}]\n'
        f'keys = {{ac = "{KEY}"}}\ncryptogram = {{version = "emv-csk", arpc_method = 2}}\n'
        '[issuers.pin]\nbdk = "0123456789ABCDEFFEDCBA9876543210"\nexpected_pin = "1234"\n'
    )
    book = load_issuers(toml)
    acme = book.issuers[0]
    assert acme.serves(h("A0000000031010"), "5000123412341234")
    assert acme.serves(h("A0000000041010"), "4999000000000000")
    assert not acme.serves(h("A0000000031010"), "5002000000000000")
    assert not acme.serves(h("A0000000031010"), "49")
    spec = acme.cryptogram.spec()
    assert spec is not None and spec.arpc_method == 2 and spec.session_key == "atc"
    assert acme.pin is not None and "1234" not in repr(acme.pin)
    assert KEY not in repr(acme)
    as_json = tmp_path / "issuers.json"
    as_json.write_text(json.dumps(ONE_ISSUER))
    assert load_issuers(as_json).issuers[0].name == "acme"

    bad = json.loads(json.dumps(ONE_ISSUER))
    bad["issuers"][0]["keys"]["ac"] = "0011"
    with pytest.raises(IssuerFileError, match=r"issuers\.0\.keys\.ac"):
        parse_issuers(bad, "f.json")
    bad = json.loads(json.dumps(ONE_ISSUER))
    bad["issuers"][0]["cryptogram"] = {"version": "visa-10", "arpc_method": 2}
    with pytest.raises(IssuerFileError, match="fixes its options"):
        parse_issuers(bad)
    bad = json.loads(json.dumps(ONE_ISSUER))
    bad["issuers"][0]["pan_ranges"] = [{"low": "5001", "high": "4999"}]
    with pytest.raises(IssuerFileError, match="low <= high"):
        parse_issuers(bad)
    bad = json.loads(json.dumps(ONE_ISSUER))
    bad["issuers"][0]["surprise"] = 1
    with pytest.raises(IssuerFileError, match="surprise"):
        parse_issuers(bad)
    (tmp_path / "x.toml").write_text("[[issuers]\n")
    with pytest.raises(IssuerFileError, match="not valid TOML"):
        load_issuers(tmp_path / "x.toml")
    with pytest.raises(IssuerFileError, match="cannot read"):
        load_issuers(tmp_path / "missing.json")


def test_card_profile_cryptogram_object(tmp_path: Path) -> None:
    profile = tmp_path / "card.json"
    profile.write_text(json.dumps({
        "base": "visa_credit", "applications": [{"cryptogram": {"version": "auto"}}]}))
    with pytest.raises(ProfileError, match="not 'auto'"):
        load_profile(profile, Path(__file__).resolve().parents[2] / "simulator" / "profiles")
    profile.write_text(json.dumps({
        "base": "visa_credit", "applications": [{"cryptogram": {"version": "emv-csk",
                                                                "padding": 3}}]}))
    with pytest.raises(ProfileError, match=r"cryptogram\.padding"):
        load_profile(profile, Path(__file__).resolve().parents[2] / "simulator" / "profiles")


tags = st.fixed_dictionaries({tag: st.binary(min_size=size, max_size=size) for tag, size in (
    (0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1),
    (0x9F37, 4), (0x82, 2), (0x9F36, 2))})  # fmt: skip
RANDOM = settings(max_examples=40, deadline=None)


@RANDOM
@given(mk=st.binary(min_size=16, max_size=16), data=tags, cvn=st.sampled_from(list(Cvn)),
       pan=st.text("0123456789", min_size=12, max_size=19), arc=st.sampled_from([b"00", b"05"]))
def test_scheme_cvns_as_specs_equal_the_cvn_functions(
    mk: bytes, data: dict[int, bytes], cvn: Cvn, pan: str, arc: bytes
) -> None:
    spec = spec_for_cvn(cvn)
    iad = build_iad(cvn, CvrState(first_ac=0x80))
    txn = AcTransaction(
        amount=data[0x9F02], amount_other=data[0x9F03], country=data[0x9F1A], tvr=data[0x95],
        currency=data[0x5F2A], date=data[0x9A], txn_type=data[0x9C],
        unpredictable_number=data[0x9F37], aip=data[0x82], atc=data[0x9F36],
        card_data=card_data_for_mac(cvn, iad),
    )
    icc_mk = derive_card_key(cvn, mk, pan, "01")
    assert spec.icc_master_key(mk, pan, "01") == icc_mk
    arqc = generate_ac(cvn, icc_mk, txn)
    assert spec.cryptogram(icc_mk, data, iad) == arqc
    auth = issuer_auth_data(spec, icc_mk, arqc, data[0x9F36], data[0x9F37], arc)
    response = auth[4:8] if spec.arpc_method == 2 else arc
    expected = generate_arpc(cvn, icc_mk, arqc, data[0x9F36], response)
    assert auth.startswith(expected)
    assert check_issuer_auth(spec, icc_mk, arqc, data[0x9F36], data[0x9F37], auth)
    assert not check_issuer_auth(spec, icc_mk, bytes(8), data[0x9F36], data[0x9F37], auth)


@pyemv_warnings
@RANDOM
@given(mk=st.binary(min_size=16, max_size=16), data=tags, iad=st.binary(max_size=32),
       pan=st.text("0123456789", min_size=12, max_size=19), option=st.sampled_from("AB"),
       arc=st.binary(min_size=2, max_size=2), csu=st.binary(min_size=4, max_size=4))
def test_emv_common_session_key_and_arpc_methods_match_pyemv(
    mk: bytes, data: dict[int, bytes], iad: bytes, pan: str, option: str, arc: bytes,
    csu: bytes,
) -> None:
    """EMV 4.4 Book 2 A1.4 (option A/B), A1.3 (R = ATC || 00*6), 8.1, 8.2.1 and 8.2.2."""
    from pyemv import ac, kd

    model = CryptogramModel.model_validate({"version": "emv-csk", "master_key_option": option})
    spec = model.spec()
    assert spec is not None
    derive = kd.derive_icc_mk_a if option == "A" else kd.derive_icc_mk_b
    icc_mk = derive(mk, pan, "01")
    assert spec.icc_master_key(mk, pan, "01") == icc_mk
    session = kd.derive_common_sk(icc_mk, data[0x9F36] + bytes(6))
    covered = b"".join(data[tag] for tag in DEFAULT_AC_TAGS) + iad
    arqc = ac.generate_ac(session, covered, ac.PaddingType.EMV)
    assert spec.cryptogram(icc_mk, data, iad) == arqc
    method1 = CryptogramSpec("emv-csk", arpc_method=1)
    assert method1.arpc(icc_mk, arqc, data[0x9F36], data[0x9F37], arc) == ac.generate_arpc_1(
        session, arqc, arc)
    method2 = CryptogramSpec("emv-csk", arpc_method=2)
    assert method2.arpc(icc_mk, arqc, data[0x9F36], data[0x9F37], csu) == ac.generate_arpc_2(
        session, arqc, csu)
