"""Kernel 2 (Mastercard M/Chip) rules (EMV Contactless Book C-2), one test per clause."""

from __future__ import annotations

import pytest

from terminal import tlv
from terminal.config import ConfigError, TerminalConfig
from terminal.contactless import (
    AlternateInterface,
    CvmOutcome,
    Kernel2Settings,
    L2Error,
    Message,
    Outcome,
    Start,
    UiRequest,
)
from terminal.contactless.kernel2 import active_afl
from terminal.contactless.outcome import UiStatus
from tests.terminal.contactless.helpers import replay, set_response, sim_config, tap, trace


def _genac(objects: bytes) -> str:
    return tlv.encode(0x77, objects).hex() + "9000"


def test_book_c2_s3_32_active_afl_skips_the_magstripe_record_when_offered() -> None:
    afl = bytes.fromhex("08010100" "10010101")
    assert active_afl(afl, magstripe_mode_supported=True) == bytes.fromhex("10010101")
    assert active_afl(bytes.fromhex("08010100"), magstripe_mode_supported=True) == bytes.fromhex(
        "08010100")
    assert active_afl(bytes.fromhex("10010101"), magstripe_mode_supported=True) == bytes.fromhex(
        "10010101")


def test_book_c2_s3_31_active_afl_is_the_afl_without_magstripe_mode() -> None:
    afl = bytes.fromhex("08010100" "10010101")
    assert active_afl(afl, magstripe_mode_supported=False) == afl


async def test_book_c2_s3_31_virtual_card_record_sfi1_read_without_magstripe_mode() -> None:
    result = await tap("ctls_mc_cda_offline", 1250, config=sim_config(reader_ctls_floor_limit=5000))
    assert result.trace[3].capdu == "00B2010C00"  # SFI 1 record 1 (the AFL's 08010100)
    magstripe = await tap("ctls_mc_cda_offline", 1250,
                          config=sim_config(reader_ctls_floor_limit=5000),
                          kernel2=Kernel2Settings(magstripe_mode_supported=True))
    assert "00B2010C00" not in [e.capdu for e in magstripe.trace]
    assert result.outcome is magstripe.outcome is Outcome.APPROVED


async def test_book_c2_s3_gpo_status_not_9000_select_next() -> None:
    recorded = trace("mock-msc-online.json")
    set_response(recorded, "80A8", "6A81")
    result, _, _ = await replay(recorded)
    # The only candidate went: SELECT NEXT with nothing left ends the application.
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST


async def test_book_c2_s3_gpo_without_afl_card_data_missing() -> None:
    recorded = trace("mock-msc-online.json")
    set_response(recorded, "80A8", "770482025980" "9000")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CARD_DATA_MISSING


async def test_book_c2_s3_relay_resistance_not_performed_in_tvr() -> None:
    result, _, _ = await replay(trace("mock-msc-online.json"))
    assert result.tvr is not None
    assert result.tvr[4] & 0x03 == 0x01


async def test_book_c2_s4_repeated_tag_in_records_card_data_error() -> None:
    recorded = trace("mock-msc-online.json")
    body = bytes.fromhex("5A0854133300896010345F3401015F340101")
    set_response(recorded, "00B2011400", tlv.encode(0x70, body).hex() + "9000")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CARD_DATA_ERROR


async def test_book_c2_s4_record_not_a_70_template_ends() -> None:
    recorded = trace("mock-msc-online.json")
    set_response(recorded, "00B2011400", "6F035A01019000")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION


async def test_book_c2_s456_on_device_cvm_transaction_limit_select_next() -> None:
    recorded = trace("mock-msc-online.json")
    gpo = recorded["apdus"][2]["resp"].replace("82025980", "82025B80", 1)  # on-device CVM
    set_response(recorded, "80A8", gpo)
    result, channel, _ = await replay(recorded, aid_changes={"mobile_ctls_transaction_limit": 8000})
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST
    assert not any(e.command == "GENERATE AC" for e in result.trace)
    assert channel.stats().unconsumed == 1


async def test_book_c2_s456_cvm_online_pin_above_cvm_limit() -> None:
    result, _, _ = await replay(trace("mock-msc-online.json"))
    assert result.parameters.cvm is CvmOutcome.ONLINE_PIN
    assert result.icc_data[0x9F34] == bytes.fromhex("020300")
    assert result.tvr is not None
    assert result.tvr[2] & 0x04


async def test_book_c2_s456_cvm_no_cvm_below_cvm_limit() -> None:
    result, _, _ = await replay(trace("mock-msc-offline.json"))
    assert result.parameters.cvm is CvmOutcome.NO_CVM
    assert result.icc_data[0x9F34] == bytes.fromhex("1F0302")


async def test_book_c2_s456_cvm_not_supported_by_card() -> None:
    result, _, _ = await replay(trace("mock-msc-offline-2.json"))
    assert result.icc_data[0x9F34] == bytes.fromhex("3F0000")
    assert result.icc_data[0x9F33] == bytes.fromhex("000808")  # CVM capability in byte 2


async def test_book_c2_s456_signature_cvm_approved_with_receipt() -> None:
    # The virtual M/Chip card's CVM list: online PIN (apply next), signature, no CVM.
    config = sim_config(reader_ctls_floor_limit=50000)
    result = await tap("ctls_mc_cda_offline", 6000, config=config,
                       kernel2=Kernel2Settings(cvm_capability_cvm_required=0x20))
    assert result.outcome is Outcome.APPROVED
    assert result.parameters.cvm is CvmOutcome.SIGNATURE
    assert result.parameters.receipt
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.APPROVED_PLEASE_SIGN


async def test_annex_a_kernel2_settings_come_from_the_aid_configuration() -> None:
    # The same signature case, with DF8118 from the configuration file's kernel2 section of
    # each AID rather than from the caller: a shop configures its kernel 2 per AID.
    document = sim_config(reader_ctls_floor_limit=50000).model_dump(mode="json")
    for aid in document["aids"]:
        aid["kernel2"] = {"cvm_capability_cvm_required": 0x20}
    configured = TerminalConfig.from_dict(document)
    result = await tap("ctls_mc_cda_offline", 6000, config=configured)
    assert result.parameters.cvm is CvmOutcome.SIGNATURE
    assert result.icc_data[0x9F33][1] == 0x20
    # without the section the kernel's default (online PIN, 0x60) applies
    plain = sim_config(reader_ctls_floor_limit=50000)
    default = await tap("ctls_mc_cda_offline", 6000, config=plain)
    assert default.parameters.cvm is CvmOutcome.ONLINE_PIN
    assert default.icc_data[0x9F33][1] == 0x60


def test_annex_a_kernel2_configuration_is_validated() -> None:
    document = sim_config().model_dump(mode="json")
    document["aids"][0]["kernel2"] = {"cvm_capability_cvm_required": 0x100}
    with pytest.raises(ConfigError, match=r"kernel2\.cvm_capability_cvm_required"):
        TerminalConfig.from_dict(document)
    document["aids"][0]["kernel2"] = {"relay_resistance": True}
    with pytest.raises(ConfigError, match=r"kernel2\.relay_resistance"):
        TerminalConfig.from_dict(document)


async def test_book_c2_s456_floor_limit_exceeded_goes_online() -> None:
    result = await tap("ctls_mc_cda_offline", 1250, config=sim_config(reader_ctls_floor_limit=0))
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.tvr is not None
    assert result.tvr[3] & 0x80
    assert result.oda_method == "CDA"
    assert result.oda_verified is True


async def test_book_c2_s456_cda_offline_approval() -> None:
    result = await tap("ctls_mc_cda_offline", 1250,
                       config=sim_config(reader_ctls_floor_limit=5000))
    assert result.outcome is Outcome.APPROVED
    assert result.oda_method == "CDA"
    assert result.oda_verified is True
    assert result.cid == b"\x40"


async def test_book_c2_s456_no_cda_sets_oda_not_performed() -> None:
    config = sim_config(reader_ctls_floor_limit=5000).model_copy(
        update={"terminal_capabilities": "E0F8C0"})
    result = await tap("ctls_mc_cda_offline", 1250, config=config)
    assert result.tvr is not None
    assert result.tvr[0] & 0x80
    assert not any(e.capdu.startswith("80AE50") for e in result.trace)  # no CDA request


async def test_book_c2_s910_cid_above_request_card_data_error() -> None:
    recorded = trace("mock-msc-online.json")  # ARQC requested; a TC answer is not allowed
    genac = recorded["apdus"][-1]["resp"].replace("9F270180", "9F270140", 1)
    set_response(recorded, "80AE", genac)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CARD_DATA_ERROR


async def test_book_c2_s910_71_see_phone_restart() -> None:
    recorded = trace("mock-msc-offline.json")
    aac = _genac(bytes.fromhex("9F270100" "9F36020001" "9F2608" + "11" * 8 + "DF4B03000100"))
    set_response(recorded, "80AE", aac)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.start is Start.B
    assert result.parameters.data_record_present
    ui = result.parameters.ui_on_outcome
    assert ui is not None
    assert (ui.message, ui.status) == (Message.SEE_PHONE, UiStatus.NOT_READY)
    assert result.restart is not None
    restart_ui = result.restart.ui_on_restart
    assert restart_ui is not None  # S910.72: the same message, Ready to Read
    assert (restart_ui.message, restart_ui.status) == (Message.SEE_PHONE, UiStatus.READY_TO_READ)


async def test_book_c2_s910_71_see_phone_whatever_the_cryptogram() -> None:
    # The second-tap test is on DF4B & 00030F alone: an ARQC with the bit set restarts too;
    # DF4B bits outside the mask (byte 2 bit 5, "OD-CVM verification successful") do not.
    # A reader without CDA, so that the edited response needs no new signature.
    for pcii, second_tap in (("000008", True), ("000200", True), ("001000", False)):
        recorded = trace("mock-msc-online.json")
        inner = tlv.decode(bytes.fromhex(recorded["apdus"][-1]["resp"][:-4]))[0].value
        patched = tlv.encode(0x77, inner + bytes.fromhex("DF4B03" + pcii)).hex() + "9000"
        set_response(recorded, "80AE", patched)
        recorded["apdus"][-1]["cmd"] = "80AE8000" + recorded["apdus"][-1]["cmd"][8:]  # no CDA
        result, _, _ = await replay(recorded, config_changes={"terminal_capabilities": "E0F8C0"})
        assert result.cid == b"\x80"
        assert (result.parameters.start is Start.B) is second_tap, pcii
        expected = Outcome.END_APPLICATION if second_tap else Outcome.ONLINE_REQUEST
        assert result.outcome is expected, pcii
        assert result.parameters.cvm is CvmOutcome.ONLINE_PIN  # kept on the second-tap outcome


async def test_book_c2_s910_74_aac_purchase_goes_to_contact_when_the_reader_has_it() -> None:
    recorded = trace("mock-msc-offline.json")
    aac = _genac(bytes.fromhex("9F270100" "9F36020001" "9F2608" + "11" * 8))
    set_response(recorded, "80AE", aac)
    result, _, _ = await replay(recorded)  # Terminal Capabilities E0F8C8: IC with contacts
    assert result.outcome is Outcome.TRY_ANOTHER_INTERFACE
    assert result.parameters.alternate_interface is AlternateInterface.CONTACT_CHIP
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.INSERT_CARD
    assert result.parameters.data_record_present


async def test_book_c2_s910_74_aac_declines_without_contact_interface() -> None:
    recorded = trace("mock-msc-offline.json")
    aac = _genac(bytes.fromhex("9F270100" "9F36020001" "9F2608" + "11" * 8))
    set_response(recorded, "80AE", aac)
    result, _, _ = await replay(recorded, config_changes={"terminal_capabilities": "C0F8C8"})
    assert result.outcome is Outcome.DECLINED
    assert result.parameters.ui_on_outcome is not None
    assert result.parameters.ui_on_outcome.message is Message.NOT_AUTHORISED


async def test_book_c2_s910_74_aac_declines_for_a_device_that_cannot_be_inserted() -> None:
    # Third Party Data 9F6E: country 0056, Unique Identifier 0001 (byte 1 bit 8 clear), Device
    # Type "01" (not "00", a card): a phone cannot be inserted, the AAC is a decline.
    for device, outcome in (("3031", Outcome.DECLINED), ("3030", Outcome.TRY_ANOTHER_INTERFACE)):
        recorded = trace("mock-msc-offline.json")
        aac = _genac(bytes.fromhex("9F270100" "9F36020001" "9F2608" + "11" * 8
                                   + "9F6E06" + "0056" "0001" + device))
        set_response(recorded, "80AE", aac)
        result, _, _ = await replay(recorded)
        assert result.outcome is outcome, device


async def test_book_a_7_1_remove_card_before_online_authorisation() -> None:
    ui: list[UiRequest] = []
    result, _, _ = await replay(trace("mock-msc-online.json"), ui=ui)
    assert result.outcome is Outcome.ONLINE_REQUEST
    assert result.card_removable_at == len(result.trace) - 1
    assert result.trace[result.card_removable_at].command == "GENERATE AC"
    statuses = [u.status for u in ui]
    assert statuses.index(UiStatus.CARD_READ_SUCCESSFULLY) < len(ui) - 1
    assert ui[-1].message is Message.AUTHORISING


async def test_book_c2_s910_74_refund_aac_ends_with_data_record() -> None:
    recorded = trace("mock-msc-offline.json")
    recorded["transaction-req"] = recorded["transaction-req"][:-2] + "20"  # 9C = refund
    aac = _genac(bytes.fromhex("9F270100" "9F36020001" "9F2608" + "11" * 8))
    set_response(recorded, "80AE", aac)
    recorded["apdus"][-1]["cmd"] = "80AE0000" + recorded["apdus"][-1]["cmd"][8:]
    result, _, _ = await replay(recorded)
    assert result.trace[-1].capdu.startswith("80AE0000")  # AAC asked for, no CDA
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.data_record_present
    assert result.parameters.error.l2 is L2Error.OK
    ui = result.parameters.ui_on_outcome
    assert ui is not None
    assert (ui.message, ui.hold_time_ms) == (Message.CLEAR_DISPLAY, 0)
    assert 0x9F26 in result.icc_data  # the AAC travels in the clearing record


async def test_book_c2_s910_34_cda_requested_tc_without_sdad_card_data_error() -> None:
    recorded = trace("mock-msc-offline.json")  # TC requested with CDA
    set_response(recorded, "80AE", _genac(bytes.fromhex(
        "9F270140" "9F36020001" "9F2608" + "11" * 8)))
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CARD_DATA_ERROR


async def test_book_c2_s910_7_cda_failure_end_application_cam_failed() -> None:
    recorded = trace("mock-msc-offline.json")
    resp = bytearray(bytes.fromhex(recorded["apdus"][-1]["resp"]))
    resp[20] ^= 0x01  # inside the SDAD
    set_response(recorded, "80AE", resp.hex())
    ui: list[UiRequest] = []
    result, _, _ = await replay(recorded, ui=ui)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CAM_FAILED
    assert result.tvr is not None
    assert result.tvr[0] & 0x04  # CDA failed
    assert [u.message for u in ui][-2:] == [Message.CARD_READ_OK,
                                             Message.INSERT_SWIPE_OR_OTHER_CARD]


async def test_book_c2_5_relay_resistance_protocol_performed() -> None:
    # A card announcing RRP (AIP byte 2 bit 1): EXCHANGE RELAY RESISTANCE DATA with the UN as
    # the terminal entropy; TVR "relay resistance performed" = performed. (The altered AIP is
    # signed static data, so the transaction then fails CDA: not asserted here.)
    recorded = trace("mock-msc-online.json")
    gpo = recorded["apdus"][2]["resp"].replace("82025980", "82025981", 1)
    set_response(recorded, "80A8", gpo)
    rrd = tlv.encode(0x80, bytes.fromhex("CAFEBABE" "0000" "FFFF" "0010")).hex() + "9000"
    recorded["apdus"].insert(3, {"cmd": "80EA000004" + recorded["randoms"] + "00", "resp": rrd})
    result, channel, _ = await replay(recorded)
    assert result.trace[3].capdu.startswith("80EA000004ABABABAB")
    assert result.tvr is not None
    assert result.tvr[4] & 0x03 == 0x02
    assert channel.stats().matched >= 4


async def test_book_c2_5_relay_resistance_malformed_answer_ends() -> None:
    recorded = trace("mock-msc-online.json")
    gpo = recorded["apdus"][2]["resp"].replace("82025980", "82025981", 1)
    set_response(recorded, "80A8", gpo)
    recorded["apdus"].insert(3, {"cmd": "80EA000004" + recorded["randoms"] + "00",
                                 "resp": "8003CAFEBA9000"})
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.PARSING_ERROR
