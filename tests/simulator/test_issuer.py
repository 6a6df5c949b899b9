"""The simulated issuer host: ARQC check from field-55 data (cross-checked with pyemv), the
decision, ARPC / 8A / 91 that the card accepts (EMV 4.4 Book 2, 8.1-8.2), policy hooks."""

from __future__ import annotations

import json

import pytest
from pyemv import cvn as pyemv_cvn

from simulator.card import VirtualCard
from simulator.cryptogram import Cvn
from simulator.issuer import IssuerError, IssuerHost, IssuerPolicy, IssuerUnavailable
from terminal.tlv import decode, encode_tlvs, flatten

from .test_card_genac import Txn, _field55, _lc
from .test_card_select import send


def pyemv_warnings(func):
    """pyemv 1.5.0 uses TripleDES from its old place: silence that warning for pyemv only."""
    for message in ("TripleDES has been moved", "Two-key TripleDES", "Single-key TripleDES"):
        func = pytest.mark.filterwarnings(
            f"ignore:{message}:cryptography.utils.CryptographyDeprecationWarning"
        )(func)
    return func


def arqc_request(name: str = "visa_credit", **kwargs) -> tuple[Txn, dict[int, bytes]]:
    txn = Txn(name, **kwargs)
    values, sw, _ = txn.genac(0x80)
    assert sw == 0x9000
    return txn, _field55(txn, values)


@pyemv_warnings
@pytest.mark.parametrize(
    ("name", "reference"),
    [("visa_credit", pyemv_cvn.VisaCVN10), ("mastercard_debit", pyemv_cvn.MasterCardCVN16),
     ("cda_card", pyemv_cvn.MasterCardCVN17)],
)
def test_card_arqc_matches_pyemv(name, reference):
    txn, request = arqc_request(name)
    prof = txn.app.profile
    keys = IssuerHost().keys[prof.master_keys].keys
    ref = reference(keys.ac, keys.smi, keys.smc, prof.pan, prof.psn)
    iad = request[0x9F10]
    args = [request[t] for t in (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37,
                                 0x82, 0x9F36)]
    if reference is pyemv_cvn.VisaCVN10:
        expected = ref.generate_ac(*args, cvr=iad[3:7])
    elif reference is pyemv_cvn.MasterCardCVN16:
        expected = ref.generate_ac(*args, cvr=iad[2:8])
    else:
        expected = ref.generate_ac(*args, cvr=iad[2:8], counters=iad[10:18])
    assert expected == request[0x9F26]


@pyemv_warnings
def test_approval_with_method_1_arpc_matches_pyemv():
    txn, request = arqc_request("visa_credit")
    answer = IssuerHost().authorise(encode_tlvs(request.items()))
    assert (answer.approved, answer.arc, answer.arqc_valid, answer.cvn) == (
        True, b"00", True, Cvn.VISA_10)
    prof = txn.app.profile
    keys = IssuerHost().keys["visa"].keys
    ref = pyemv_cvn.VisaCVN10(keys.ac, keys.smi, keys.smc, prof.pan, prof.psn)
    assert answer.issuer_auth_data == ref.generate_arpc(request[0x9F26], b"00") + b"00"
    response = flatten(decode(answer.field55()))
    assert response[0x8A] == b"00"
    assert response[0x91] == answer.issuer_auth_data


def test_cvn18_method_2_arpc_accepted_by_the_card(tmp_path):
    doc = json.loads((VirtualCard.from_profile("visa_credit").profile.source).read_text())
    doc["base"] = "_visa_contact"
    doc["applications"][0]["cvn"] = "visa-18"
    path = tmp_path / "visa18.json"
    path.write_text(json.dumps(doc))
    from simulator.card.profile import PROFILES_DIR

    card = VirtualCard.from_profile(path, directory=PROFILES_DIR)
    txn, request = arqc_request(card)
    answer = IssuerHost().authorise(request)
    assert answer.cvn is Cvn.VISA_18
    assert len(answer.issuer_auth_data) == 8
    assert send(txn.card, "00820000" + _lc(answer.issuer_auth_data))[1] == 0x9000


def test_wrong_arqc_is_declined_without_arpc():
    _, request = arqc_request()
    request[0x9F26] = bytes(8)
    answer = IssuerHost().authorise(request)
    assert (answer.approved, answer.arc, answer.arqc_valid) == (False, b"05", False)
    assert answer.issuer_auth_data == b""


def test_tampered_amount_breaks_the_arqc():
    _, request = arqc_request()
    request[0x9F02] = bytes.fromhex("000000000001")
    assert IssuerHost().authorise(request).arqc_valid is False


def test_a_verified_tc_is_booked_as_a_completion_without_arpc():
    txn = Txn("dda_card")
    values, _, _ = txn.genac(0x40)
    answer = IssuerHost().authorise(_field55(txn, values))
    assert (answer.approved, answer.arc, answer.arqc_valid) == (True, b"00", True)
    assert answer.issuer_auth_data == b"" and answer.scripts == b""


def test_a_tampered_tc_is_declined():
    txn = Txn("dda_card")
    values, _, _ = txn.genac(0x40)
    request = _field55(txn, values)
    request[0x9F02] = bytes.fromhex("000000000001")
    answer = IssuerHost().authorise(request)
    assert (answer.approved, answer.arc, answer.reason) == (False, b"05", "TC does not verify")


def test_an_aac_is_declined():
    txn = Txn("dda_card")
    values, _, _ = txn.genac(0x00)
    answer = IssuerHost().authorise(_field55(txn, values))
    assert (answer.approved, answer.reason) == (False, "cryptogram is an AAC")


def test_unknown_card_is_14():
    _, request = arqc_request()
    request[0x5A] = bytes.fromhex("9999999999999999")
    assert IssuerHost().authorise(request).arc == b"14"


def test_pan_from_track2_when_5a_is_absent():
    txn, request = arqc_request()
    del request[0x5A]
    request[0x57] = txn.data[0x57]
    assert IssuerHost().authorise(request).approved


def test_policy_decline_above_and_hook():
    _, request = arqc_request()
    declined = IssuerHost(policy=IssuerPolicy(decline_above=1000)).authorise(request)
    assert (declined.approved, declined.arc) == (False, b"51")
    assert len(declined.issuer_auth_data) == 10  # ARPC over the decline: the card checks it
    hooked = IssuerHost(policy=IssuerPolicy(hook=lambda data: b"05")).authorise(request)
    assert (hooked.arc, hooked.reason) == (b"05", "policy hook")


def test_declined_arpc_is_accepted_by_the_card_which_then_declines():
    txn, request = arqc_request()
    answer = IssuerHost(policy=IssuerPolicy(decline_above=1)).authorise(request)
    assert send(txn.card, "00820000" + _lc(answer.issuer_auth_data))[1] == 0x9000
    assert txn.genac(0x00, 0x8D, t8A=answer.arc)[0][0x9F27] == b"\x00"


def test_issuer_unavailable_policies():
    _, request = arqc_request()
    assert IssuerHost(policy=IssuerPolicy(availability="none")).authorise(request) is None
    with pytest.raises(IssuerUnavailable):
        IssuerHost(policy=IssuerPolicy(availability="raise")).authorise(request)


def test_malformed_field55_and_missing_tags_are_typed_errors():
    with pytest.raises(IssuerError, match="BER-TLV"):
        IssuerHost().authorise(bytes.fromhex("9F0206000000"))
    _, request = arqc_request()
    del request[0x9F37]
    with pytest.raises(IssuerError) as info:
        IssuerHost().authorise(request)
    assert info.value.tag == 0x9F37
    del request[0x5A]
    with pytest.raises(IssuerError) as info:
        IssuerHost().authorise(request)
    assert "4761739001010010" not in str(info.value)


def test_repr_shows_no_keys():
    text = repr(IssuerHost())
    assert "0123456789ABCDEF" not in text.upper()
