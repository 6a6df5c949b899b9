"""Card side of GENERATE AC, INTERNAL and EXTERNAL AUTHENTICATE (EMV 4.4 Book 3, 6.5.4,
6.5.5, 6.5.9, 9.3; Book 2, 6.5-6.6, 8): decisions, ATC, cryptograms, CDA and DDA signatures,
ARPC checks and sequence errors."""

from __future__ import annotations

import datetime

import pytest

from simulator.card import VirtualCard, default_pki
from simulator.card.iad import card_data_for_mac
from simulator.cryptogram import AcTransaction, verify_ac
from simulator.issuer import IssuerHost
from terminal.capk import CapkStore
from terminal.dol import build_dol
from terminal.oda import (
    OdaFailure,
    StaticDataCollector,
    recover_icc_public_key,
    verify_cda_response,
    verify_dda,
)
from terminal.tlv import decode, encode, flatten

from .test_card_select import send

UN = bytes.fromhex("CAFEBABE")
TODAY = datetime.date(2026, 11, 25)


def terminal_data(amount: int = 1250, tvr: bytes = bytes(5)) -> dict[int, bytes]:
    return {
        0x9F02: bytes.fromhex(f"{amount:012d}"), 0x9F03: bytes(6), 0x9F1A: b"\x02\x50",
        0x95: tvr, 0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex("261125"), 0x9C: b"\x00",
        0x9F37: UN, 0x9F35: b"\x22", 0x9F34: bytes.fromhex("1F0302"),
    }


class Txn:
    """Select, GPO and read the records of a contact card, as a terminal would."""

    def __init__(self, name: str, amount: int = 1250, tvr: bytes = bytes(5)) -> None:
        self.card = VirtualCard.from_profile(name) if isinstance(name, str) else name
        self.app = self.card.applications[0]
        self.terminal = terminal_data(amount, tvr)
        aid = self.app.profile.aid.hex()
        fci, sw = send(self.card, f"00A40400{len(aid) // 2:02X}{aid}00")
        assert sw == 0x9000
        self.data = flatten(decode(fci))
        self.pdol_data = build_dol(self.data.get(0x9F38, b""), self.terminal)
        _, sw = send(self.card, "80A80000" + _lc(encode(0x83, self.pdol_data)) + "00")
        assert sw == 0x9000
        self.collector = StaticDataCollector(self.app.afl)
        for sfi, number in sorted(self.app.records):
            record, sw = send(self.card, f"00B2{number:02X}{sfi << 3 | 4:02X}00")
            assert sw == 0x9000
            self.collector.add_record(sfi, number, record)
            self.data.update(flatten(decode(record)))
        self.cdol1_data = b""

    def genac(
        self, p1: int, dol_tag: int = 0x8C, **extra: bytes
    ) -> tuple[dict[int, bytes], int, bytes]:
        values = self.terminal | {int(k[1:], 16): v for k, v in extra.items()}
        data = build_dol(self.data[dol_tag], values)
        if dol_tag == 0x8C:
            self.cdol1_data = data
        resp, sw = send(self.card, f"80AE{p1:02X}00" + _lc(data) + "00")
        return (flatten(decode(resp)) if sw == 0x9000 else {}), sw, resp

    def icc_key(self):
        static = self.collector.finish(self.data.get(0x9F4A), {0x82: self.app.aip})
        store = CapkStore()
        store.load_file(default_pki().capk_file)
        key = recover_icc_public_key(store, self.app.profile.aid[:5], self.data, static, TODAY)
        assert not isinstance(key, OdaFailure), key
        return key


def _lc(data: bytes) -> str:
    return f"{len(data):02X}{data.hex()}"


def mac_ok(txn: Txn, values: dict[int, bytes]) -> bool:
    prof = txn.app.profile
    t = txn.terminal
    ac = AcTransaction(t[0x9F02], t[0x9F03], t[0x9F1A], t[0x95], t[0x5F2A], t[0x9A], t[0x9C],
                       t[0x9F37], txn.app.aip, values[0x9F36],
                       card_data_for_mac(prof.cvn, values[0x9F10]))
    master = IssuerHost().keys[prof.master_keys].keys.ac
    return verify_ac(prof.cvn, master, prof.pan, prof.psn or "00", ac, values[0x9F26])


def test_book3_9_3_tc_requested_below_the_card_limit_gives_a_verifiable_tc():
    txn = Txn("dda_card")
    values, sw, _ = txn.genac(0x40)
    assert sw == 0x9000
    assert values[0x9F27] == b"\x40"
    assert mac_ok(txn, values)


def test_card_turns_a_tc_request_into_an_arqc_above_its_offline_limit():
    values, _, _ = Txn("visa_credit", amount=1250).genac(0x40)  # card limit 10.00
    assert values[0x9F27] == b"\x80"
    values, _, _ = Txn("visa_credit", amount=900).genac(0x40)
    assert values[0x9F27] == b"\x40"


def test_card_never_answers_a_higher_type_than_asked():
    assert Txn("visa_credit", amount=1).genac(0x00)[0][0x9F27] == b"\x00"
    assert Txn("dda_card").genac(0x80)[0][0x9F27] == b"\x80"


def test_iac_like_denial_mask_makes_the_card_decline():
    values, _, _ = Txn("dda_card", tvr=bytes.fromhex("0000800000")).genac(0x40)
    assert values[0x9F27] == b"\x40"  # dda_card has no denial mask
    card = VirtualCard.from_profile("pin_blocked")
    assert Txn(card).genac(0x40)[0][0x9F27] == b"\x80"  # PIN try limit exceeded: online


def test_atc_increments_once_per_transaction():
    card = VirtualCard.from_profile("mastercard_debit")
    atcs = []
    for _ in range(3):
        txn = Txn(card)
        values, _, _ = txn.genac(0x80)
        atcs.append(int.from_bytes(values[0x9F36], "big"))
    assert atcs == [2, 3, 4]
    assert card.atc() == 4


def test_book2_6_6_cda_signature_verifies_with_the_terminal_code():
    txn = Txn("cda_card")
    values, sw, resp = txn.genac(0x50)
    assert sw == 0x9000
    assert values[0x9F27] == b"\x40"
    result = verify_cda_response(txn.icc_key(), resp, unpredictable_number=UN,
                                 pdol_data=txn.pdol_data, cdol1_data=txn.cdol1_data)
    assert not isinstance(result, OdaFailure), result
    assert result.application_cryptogram == values[0x9F26]


def test_cda_not_requested_or_aac_means_no_signature():
    assert 0x9F4B not in Txn("cda_card").genac(0x40)[0]
    assert 0x9F4B not in Txn("cda_card").genac(0x10)[0]


def test_cda_on_second_generate_ac_includes_cdol2_data():
    txn = Txn("mastercard_debit")
    values, _, _ = txn.genac(0x90)
    answer = IssuerHost().authorise(_field55(txn, values))
    data = txn.data | {0x8A: answer.arc, 0x91: answer.issuer_auth_data}
    cdol2 = build_dol(txn.data[0x8D], data | txn.terminal)
    resp = txn.card.process(bytes.fromhex("80AE5000") + bytes((len(cdol2),)) + cdol2 + b"\x00")
    assert resp[-2:] == b"\x90\x00"
    result = verify_cda_response(txn.icc_key(), resp[:-2], unpredictable_number=UN,
                                 pdol_data=txn.pdol_data, cdol1_data=txn.cdol1_data,
                                 cdol2_data=cdol2)
    assert not isinstance(result, OdaFailure), result
    assert flatten(decode(resp[:-2]))[0x9F27] == b"\x40"


def _field55(txn: Txn, values: dict[int, bytes]) -> dict[int, bytes]:
    return txn.terminal | values | {0x82: txn.app.aip, 0x5A: txn.data[0x5A],
                                    0x5F34: txn.data.get(0x5F34, b"\x00"),
                                    0x4F: txn.app.profile.aid}


def test_mastercard_arpc_in_cdol2_wrong_gives_aac():
    txn = Txn("mastercard_debit")
    txn.genac(0x80)
    values, sw, _ = txn.genac(0x40, 0x8D, t8A=b"00", t91=bytes(10))
    assert sw == 0x9000
    assert values[0x9F27] == b"\x00"  # issuer authentication failed and is required


def test_book3_6_5_4_external_authenticate():
    txn = Txn("visa_credit")
    values, _, _ = txn.genac(0x80)
    answer = IssuerHost().authorise(_field55(txn, values))
    assert answer.approved
    auth = answer.issuer_auth_data
    assert send(txn.card, "00820000" + _lc(auth))[1] == 0x9000
    assert send(txn.card, "00820000" + _lc(auth))[1] == 0x6985  # only once
    values, _, _ = txn.genac(0x40, 0x8D, t8A=answer.arc)
    assert values[0x9F27] == b"\x40"
    assert send(txn.card, "80CA9F1300")[0] == encode(0x9F13, values[0x9F36])


def test_external_authenticate_failure_is_6300_and_sets_the_cvr():
    txn = Txn("visa_credit")
    txn.genac(0x80)
    assert send(txn.card, "00820000" + _lc(bytes(10)))[1] == 0x6300
    values, _, _ = txn.genac(0x40, 0x8D, t8A=b"00")
    assert values[0x9F10][4] & 0x08  # CVR: issuer authentication failed
    assert values[0x9F27] == b"\x00"


def test_external_authenticate_sequence_and_length_errors():
    txn = Txn("visa_credit")
    assert send(txn.card, "00820000" + _lc(bytes(10)))[1] == 0x6985  # no ARQC yet
    txn.genac(0x80)
    assert send(txn.card, "00820000" + _lc(bytes(4)))[1] == 0x6700
    assert send(txn.card, "00820100" + _lc(bytes(10)))[1] == 0x6A86


def test_generate_ac_sequence_and_parameter_errors():
    card = VirtualCard.from_profile("dda_card")
    send(card, "00A4040007A000000003101000")
    assert send(card, "80AE400002000000")[1] == 0x6985  # before GPO
    txn = Txn("dda_card")
    assert txn.card.process(bytes.fromhex("80AEC0000100"))[-2:] == b"\x6a\x86"  # RFU type
    assert txn.card.process(bytes.fromhex("80AE40010100"))[-2:] == b"\x6a\x86"  # P2
    assert txn.card.process(bytes.fromhex("80AE40000100"))[-2:] == b"\x67\x00"  # length
    assert txn.card.process(bytes.fromhex("00AE40000100"))[-2:] == b"\x6e\x00"
    txn.genac(0x40)
    assert txn.genac(0x40, 0x8D)[1] == 0x6985  # no second GENERATE AC after a TC


def test_third_generate_ac_is_refused():
    txn = Txn("visa_credit")
    txn.genac(0x80)
    assert txn.genac(0x00, 0x8D, t8A=b"Z3")[1] == 0x9000
    assert txn.genac(0x00, 0x8D)[1] == 0x6985


def test_unable_to_go_online_sets_the_cvr_bit():
    txn = Txn("visa_credit")
    txn.genac(0x80)
    values, _, _ = txn.genac(0x40, 0x8D, t8A=b"Z3")
    assert values[0x9F10][4] & 0x01


def test_book2_6_5_internal_authenticate_dda():
    txn = Txn("dda_card")
    resp, sw = send(txn.card, "0088000004" + UN.hex() + "00")
    assert sw == 0x9000
    sdad = flatten(decode(resp))[0x9F4B]
    assert not isinstance(verify_dda(txn.icc_key(), sdad, UN), OdaFailure)


def test_internal_authenticate_format_1_and_errors():
    assert send(Txn("sda_legacy").card, "0088000004" + UN.hex() + "00")[1] == 0x6D00
    txn = Txn("dda_card")
    assert send(txn.card, "0088010004" + UN.hex() + "00")[1] == 0x6A86
    assert send(txn.card, "80880000" + "04" + UN.hex() + "00")[1] == 0x6E00


@pytest.mark.parametrize("name", ["sda_legacy"])
def test_format_1_generate_ac(name):
    txn = Txn(name)
    _, sw, resp = txn.genac(0x40)
    assert sw == 0x9000
    assert resp[0] == 0x80
    assert resp[2] == 0x40  # CID first


def _risk_card(tmp_path, **risk) -> VirtualCard:
    import json

    from simulator.card.profile import PROFILES_DIR

    path = tmp_path / f"risk_{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({
        "base": "_visa_contact", "expected": {},
        "applications": [{"icc_key": 3, "oda": ["DDA"], "risk": risk}],
    }))
    return VirtualCard.from_profile(path, directory=PROFILES_DIR)


def test_card_risk_denial_and_online_masks_on_the_tvr(tmp_path):
    card = _risk_card(tmp_path, denial_mask="0000800000", online_mask="0800000000")
    assert Txn(card, tvr=bytes.fromhex("0000800000")).genac(0x40)[0][0x9F27] == b"\x00"
    assert Txn(card, tvr=bytes.fromhex("0800000000")).genac(0x40)[0][0x9F27] == b"\x80"
    assert Txn(card).genac(0x40)[0][0x9F27] == b"\x40"


def test_card_risk_consecutive_offline_limit(tmp_path):
    card = _risk_card(tmp_path, consecutive_offline_limit=2)
    cids = [Txn(card).genac(0x40)[0][0x9F27] for _ in range(3)]
    assert cids == [b"\x40", b"\x40", b"\x80"]
    txn = Txn(card)  # online with issuer approval resets the count
    values, _, _ = txn.genac(0x40)
    answer = IssuerHost().authorise(_field55(txn, values))
    send(txn.card, "00820000" + _lc(answer.issuer_auth_data))
    assert txn.genac(0x40, 0x8D, t8A=b"00")[0][0x9F27] == b"\x40"
    assert Txn(card).genac(0x40)[0][0x9F27] == b"\x40"


def test_card_risk_decline_always_and_issuer_auth_required(tmp_path):
    assert Txn(_risk_card(tmp_path, decline_always=True)).genac(0x80)[0][0x9F27] == b"\x00"
    txn = Txn(_risk_card(tmp_path, issuer_auth_required=True))
    txn.genac(0x80)
    assert txn.genac(0x40, 0x8D, t8A=b"00")[0][0x9F27] == b"\x00"  # no EXTERNAL AUTHENTICATE
