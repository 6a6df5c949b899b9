"""Kernel 3 (Visa qVSDC) rules (EMV Contactless Book C-3), one test per clause."""

from __future__ import annotations

import datetime

from terminal.contactless import AlternateInterface, CvmOutcome, L2Error, Outcome
from terminal.environment import Environment
from tests.terminal.contactless.helpers import replay, set_response, sim_config, tap, trace


async def test_book_c3_5_2_1_pdol_without_ttq_ends() -> None:
    recorded = trace("mock-visa-online.json")
    select = recorded["apdus"][1]["resp"].replace("9F38189F6604", "9F38189F6704", 1)
    set_response(recorded, "00A4040007", select)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.CARD_DATA_MISSING


async def test_book_c3_5_2_2_gpo_6984_try_another_interface() -> None:
    result = await tap("ctls_switch_interface", 1250)
    assert result.outcome is Outcome.TRY_ANOTHER_INTERFACE
    assert result.parameters.alternate_interface is AlternateInterface.CONTACT_CHIP


async def test_book_c3_5_2_2_gpo_6986_see_phone() -> None:
    result = await tap("ctls_phone_wallet", 6000)
    assert result.outcome is Outcome.TRY_AGAIN
    assert result.parameters.field_off_hold_ms is not None


async def test_book_c3_5_2_2_gpo_other_status_end_application() -> None:
    recorded = trace("mock-visa-online.json")
    set_response(recorded, "80A8", "6A80")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.sw == 0x6A80


async def test_book_c3_5_3_cryptogram_type_from_iad_when_no_cid() -> None:
    result, _, _ = await replay(trace("mock-visa-offline.json"))
    assert result.cid == b"\x40"  # IAD byte 5 bits 6-5 = 01: TC
    assert result.outcome is Outcome.APPROVED


async def test_book_c3_5_3_aac_declines() -> None:
    recorded = trace("mock-visa-online.json")
    gpo = recorded["apdus"][2]["resp"].replace("9F270180", "9F270100", 1)
    set_response(recorded, "80A8", gpo)
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.DECLINED


async def test_book_c3_5_4_expired_application_declines() -> None:
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
