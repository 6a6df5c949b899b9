"""Kernel 3 (Visa qVSDC) rules (EMV Contactless Book C-3), one test per clause."""

from __future__ import annotations

import datetime

from terminal.bits import Ctq, Ttq
from terminal.contactless import AlternateInterface, CvmOutcome, L2Error, Message, Outcome, Start
from terminal.contactless.kernel3 import _cvm
from terminal.environment import Environment
from tests.terminal.contactless.helpers import replay, set_response, sim_config, tap, trace


async def test_book_c3_5_2_2_gpo_6984_try_another_interface() -> None:
    result = await tap("ctls_switch_interface", 1250)
    assert result.outcome is Outcome.TRY_ANOTHER_INTERFACE
    assert result.parameters.alternate_interface is AlternateInterface.CONTACT_CHIP
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.INSERT_CARD


async def test_book_c3_5_2_2_gpo_6985_select_next() -> None:
    recorded = trace("mock-visa-online.json")
    set_response(recorded, "80A8", "6985")
    result, _, _ = await replay(recorded)
    # SELECT NEXT removed the only candidate: the Entry Point ends (Book B, 3.5.1.4).
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST


async def test_book_c3_5_2_2_gpo_6986_see_phone() -> None:
    result = await tap("ctls_phone_wallet", 6000)
    assert result.outcome is Outcome.TRY_AGAIN
    assert result.parameters.start is Start.B
    assert result.parameters.field_off_hold_ms is not None
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.SEE_PHONE
    assert result.restart is not None
    assert result.restart.ui_on_restart is not None
    assert result.restart.ui_on_restart.message is Message.PRESENT_CARD_AGAIN
    assert result.card_removable_at is not None  # no online step follows a see-phone


async def test_book_c3_5_2_2_gpo_other_status_end_application() -> None:
    recorded = trace("mock-visa-online.json")
    set_response(recorded, "80A8", "6A80")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.sw == 0x6A80


async def test_book_c3_5_4_3_1_cryptogram_type_from_iad_when_no_cid() -> None:
    result, _, _ = await replay(trace("mock-visa-offline.json"))
    assert result.cid == b"\x40"  # IAD 06011103 90..: byte 5 bits 6-5 = 01: TC
    assert result.outcome is Outcome.APPROVED
    for cvr_byte2, cid, outcome in (("A0", b"\x80", Outcome.ONLINE_REQUEST),
                                    ("80", b"\x00", Outcome.DECLINED)):
        recorded = trace("mock-visa-offline.json")
        gpo = recorded["apdus"][2]["resp"].replace(
            "9F100706011103900000", "9F100706011103" + cvr_byte2 + "0000", 1)
        set_response(recorded, "80A8", gpo)
        result, _, _ = await replay(recorded)
        assert (result.cid, result.outcome) == (cid, outcome), cvr_byte2


async def test_book_c3_5_4_3_2_tc_when_the_reader_asked_online_goes_online() -> None:
    # Floor limit below the amount: the TTQ copy asks for an online cryptogram; the recorded
    # card still answers a TC, which the reader sends online instead of approving.
    result, _, _ = await replay(trace("mock-visa-offline.json"),
                                aid_changes={"reader_ctls_floor_limit": 100})
    assert result.cid == b"\x40"
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.oda_method is None  # no offline approval, no fDDA


async def test_book_c3_5_3_aac_declines() -> None:
    recorded = trace("mock-visa-online.json")
    gpo = recorded["apdus"][2]["resp"].replace("9F270180", "9F270100", 1)
    set_response(recorded, "80A8", gpo)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.DECLINED


async def test_book_c3_5_5_1_1_expired_application_declines() -> None:
    recorded = trace("mock-visa-offline.json")
    later = Environment.fixed(datetime.datetime(2020, 1, 2), bytes.fromhex(recorded["randoms"]))
    result, _, _ = await replay(recorded, env=later)
    assert result.outcome is Outcome.DECLINED
    assert result.tvr is not None
    assert result.tvr[1] & 0x40


async def test_book_c3_5_5_ctq_online_pin() -> None:
    result, _, _ = await replay(trace("mock-visa-online.json"))
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.parameters.cvm is CvmOutcome.ONLINE_PIN
    assert result.card_removable_at == 2  # after GPO: no records


async def test_book_c3_5_5_no_cvm_below_limit() -> None:
    result = await tap("ctls_visa_online", 1250)
    assert result.parameters.cvm is CvmOutcome.NO_CVM


async def test_book_c3_5_5_online_pin_above_cvm_limit() -> None:
    result = await tap("ctls_visa_online_pin", 6000)
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.parameters.cvm is CvmOutcome.ONLINE_PIN


async def test_book_c3_5_7_fdda_verified_offline_approval() -> None:
    result = await tap("ctls_visa_offline_fdda", 1250,
                       config=sim_config(reader_ctls_floor_limit=5000))
    assert result.outcome is Outcome.APPROVED
    assert (result.oda_method, result.oda_verified) == ("fDDA", True)


async def test_book_c3_5_7_fdda_failure_declines() -> None:
    # Another amount in the PDOL data than the card signed: fDDA fails, CTQ says nothing.
    recorded = trace("mock-visa-offline.json")
    recorded["transaction-req"] = "9F02060000000002015F2A0208409C0100"
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.DECLINED
    assert result.oda_verified is False
    assert result.tvr is not None
    assert result.tvr[0] & 0x08


async def test_book_c3_5_8_unable_to_go_online_declines() -> None:
    result, _, _ = await replay(trace("mock-visa-online.json"),
                                config_changes={"online_capable": False})
    assert result.outcome is Outcome.DECLINED


async def test_book_c3_5_5_1_1_expired_application_online_when_ctq_says_so() -> None:
    recorded = trace("mock-visa-offline.json")
    set_response(recorded, "80A8", recorded["apdus"][2]["resp"].replace(
        "9F6C020000", "9F6C020800", 1))  # CTQ byte 1 bit 4: go online if application expired
    later = Environment.fixed(datetime.datetime(2020, 1, 2), bytes.fromhex(recorded["randoms"]))
    result, _, _ = await replay(recorded, env=later)
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.tvr is not None
    assert result.tvr[1] & 0x40


async def test_book_c3_5_7_1_2_online_pin_required_on_a_tc_goes_online() -> None:
    recorded = trace("mock-visa-offline.json")  # TTQ 24004000: online PIN supported
    set_response(recorded, "80A8", recorded["apdus"][2]["resp"].replace(
        "9F6C020000", "9F6C028000", 1))
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.parameters.cvm is CvmOutcome.ONLINE_PIN


def test_book_c3_5_7_1_cvm_rules() -> None:
    no_ctq_required = Ttq(bytes.fromhex("26404000"))  # online PIN + signature, CVM required
    assert _cvm(no_ctq_required, None, {}, 0x40) == (CvmOutcome.SIGNATURE, False)
    pin_only = Ttq(bytes.fromhex("24404000"))
    assert _cvm(pin_only, None, {}, 0x40) == (CvmOutcome.ONLINE_PIN, True)
    assert _cvm(Ttq(bytes.fromhex("20404000")), None, {}, 0x40) == (None, False)
    assert _cvm(Ttq(bytes.fromhex("20004000")), None, {}, 0x40) == (CvmOutcome.NO_CVM, False)
    cdcvm = Ctq(bytes.fromhex("0080"))
    matching = {0x9F69: bytes.fromhex("01AABBCCDD0080")}
    other = {0x9F69: bytes.fromhex("01AABBCCDD0000")}
    assert _cvm(pin_only, cdcvm, matching, 0x40)[0] is CvmOutcome.CONFIRMATION_CODE_VERIFIED
    assert _cvm(pin_only, cdcvm, other, 0x40)[0] is None  # CTQ copy differs: decline
    assert _cvm(pin_only, cdcvm, {}, 0x80)[0] is CvmOutcome.CONFIRMATION_CODE_VERIFIED
    assert _cvm(pin_only, cdcvm, {}, 0x40)[0] is None  # TC without the signed copy
    assert _cvm(pin_only, Ctq(bytes.fromhex("4000")), {}, 0x80) == (None, False)  # 5.7.1.3
    assert _cvm(no_ctq_required, Ctq(bytes.fromhex("4000")), {}, 0x80)[0] is CvmOutcome.SIGNATURE


async def test_book_c3_refund_aac_ends_with_data_record() -> None:
    recorded = trace("mock-visa-online.json")
    recorded["transaction-req"] = recorded["transaction-req"][:-2] + "20"
    gpo = recorded["apdus"][2]["resp"].replace("9F270180", "9F270100", 1)
    set_response(recorded, "80A8", gpo)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.data_record_present
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.CLEAR_DISPLAY
