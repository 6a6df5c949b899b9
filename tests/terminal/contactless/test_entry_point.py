"""Entry Point rules (EMV Contactless Book B, 3.1-3.5), one test per clause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from terminal import tlv
from terminal.config import AidConfig
from terminal.contact.selection import Candidate as ContactCandidate
from terminal.contactless import (
    AlternateInterface,
    L2Error,
    Message,
    Outcome,
    Start,
    UiRequest,
    UiStatus,
    run_contactless_transaction,
)
from terminal.contactless.preprocessing import Combination, preprocess
from terminal.contactless.replay import ReplayChannel, replay_setup
from terminal.contactless.selection import (
    ANY_KERNEL,
    build_candidates,
    order_candidates,
    requested_kernel,
)
from terminal.environment import TransactionRequest
from tests.terminal.contactless.helpers import replay, set_response, sim_config, tap, trace

VISA = "A0000000031010"
MC = "A0000000041010"


def _aid(**changes: object) -> AidConfig:
    return AidConfig.model_validate({"aid": VISA, "kernel_id": 3, "ttq": "36C04000", **changes})


def test_book_b_3_1_1_2_ttq_copy_resets_byte2_bits_8_7() -> None:
    indicators = preprocess(_aid(reader_ctls_floor_limit=5000), TransactionRequest(amount=100))
    assert indicators.ttq == bytes.fromhex("36004000")


def test_book_b_3_1_1_3_and_10_status_check_single_unit_of_currency() -> None:
    aid = _aid(status_check_supported=True, reader_ctls_floor_limit=5000)
    indicators = preprocess(aid, TransactionRequest(amount=100))
    assert indicators.status_check_requested
    assert indicators.ttq is not None
    assert indicators.ttq[1] & 0x80
    assert not preprocess(aid, TransactionRequest(amount=101)).status_check_requested


def test_book_b_3_1_1_4_and_11_zero_amount() -> None:
    allowed = preprocess(_aid(reader_ctls_floor_limit=5000), TransactionRequest(amount=0))
    assert allowed.zero_amount
    assert not allowed.not_allowed
    assert allowed.ttq is not None
    assert allowed.ttq[1] & 0x80
    refused = preprocess(_aid(zero_amount_allowed=False), TransactionRequest(amount=0))
    assert refused.not_allowed
    # 3.1.1.11: an offline-only reader (TTQ byte 1 bit 4) cannot take a zero amount online.
    offline_only = preprocess(_aid(ttq="3E004000"), TransactionRequest(amount=0))
    assert offline_only.zero_amount
    assert offline_only.not_allowed


def test_book_b_3_1_1_5_reader_ctls_transaction_limit_greater_or_equal() -> None:
    aid = _aid(reader_ctls_transaction_limit=10000)
    assert preprocess(aid, TransactionRequest(amount=10000)).not_allowed
    assert not preprocess(aid, TransactionRequest(amount=9999)).not_allowed


def test_book_b_3_1_1_6_and_9_reader_ctls_floor_limit_greater_than() -> None:
    aid = _aid(reader_ctls_floor_limit=5000)
    above = preprocess(aid, TransactionRequest(amount=5001))
    assert above.floor_limit_exceeded
    assert above.ttq is not None
    assert above.ttq[1] & 0x80
    assert not preprocess(aid, TransactionRequest(amount=5000)).floor_limit_exceeded


def test_book_b_3_1_1_7_terminal_floor_limit_when_no_reader_floor_limit() -> None:
    aid = _aid(reader_ctls_floor_limit=None, floor_limit=2000)
    assert preprocess(aid, TransactionRequest(amount=2001)).floor_limit_exceeded
    assert not preprocess(aid, TransactionRequest(amount=2000)).floor_limit_exceeded


def test_book_b_3_1_1_8_and_12_reader_cvm_required_limit_greater_or_equal() -> None:
    aid = _aid(reader_cvm_required_limit=5000, reader_ctls_floor_limit=99999)
    at_limit = preprocess(aid, TransactionRequest(amount=5000))
    assert at_limit.cvm_required_limit_exceeded
    assert at_limit.ttq is not None
    assert at_limit.ttq[1] & 0xC0 == 0x40
    assert not preprocess(aid, TransactionRequest(amount=4999)).cvm_required_limit_exceeded


async def test_book_b_3_1_1_13_all_combinations_not_allowed_try_another_interface() -> None:
    ui: list[UiRequest] = []
    result = await tap("ctls_visa_online", 200_000, ui=ui)  # above every transaction limit
    assert result.outcome is Outcome.TRY_ANOTHER_INTERFACE
    assert result.trace == []  # decided before the field is used
    assert [(u.message, u.status) for u in ui] == [
        (Message.INSERT_OR_SWIPE, UiStatus.PROCESSING_ERROR)]
    assert result.parameters.alternate_interface is AlternateInterface.NA


async def test_book_b_3_1_1_5_transaction_limit_reached_exactly_is_not_allowed() -> None:
    config = sim_config(reader_ctls_transaction_limit=1250)
    assert (await tap("ctls_visa_online", 1250, config=config)).outcome is \
        Outcome.TRY_ANOTHER_INTERFACE
    assert (await tap("ctls_visa_online", 1249, config=config)).outcome is Outcome.ONLINE_REQUEST


async def test_book_b_3_2_1_2_present_card_then_processing_outcome_ui() -> None:
    ui: list[UiRequest] = []
    result = await tap("ctls_visa_online", 1250, ui=ui)
    assert ui[0].message is Message.PRESENT_CARD
    assert ui[0].amount == 1250
    assert result.ui_requests == ui


def test_book_b_3_3_2_5_kernel_identifier_and_default_kernel() -> None:
    adf = bytes.fromhex(MC)
    assert requested_kernel({}, adf) == 2
    assert requested_kernel({0x9F2A: b""}, adf) == 2  # empty: the RID's default (Table 3-6)
    assert requested_kernel({0x9F2A: b"\x03"}, adf) == 3
    assert requested_kernel({0x9F2A: b"\x00"}, bytes.fromhex(VISA)) == ANY_KERNEL
    assert requested_kernel({0x9F2A: b"\x42"}, adf) == 0x42  # b8b7 = 01: byte 1 as it is
    assert requested_kernel({0x9F2A: bytes.fromhex("820001")}, adf) not in (2, 3)
    assert requested_kernel({0x9F2A: bytes.fromhex("8200")}, adf) is None  # too short


def test_book_b_3_3_2_5_d_requested_kernel_zero_accepts_the_reader_kernel() -> None:
    combo = Combination(_aid(), 3, preprocess(_aid(), TransactionRequest(amount=1)))
    entries = [{0x4F: bytes.fromhex(VISA), 0x9F2A: b"\x00"},
               {0x4F: bytes.fromhex(VISA), 0x9F2A: b"\x42"}]
    assert [c.order for c in build_candidates(entries, [combo])] == [0]


def test_book_b_3_3_2_5_entry_requesting_another_kernel_is_not_a_candidate() -> None:
    combo = Combination(_aid(), 3, preprocess(_aid(), TransactionRequest(amount=1)))
    entries = [{0x4F: bytes.fromhex(VISA), 0x9F2A: b"\x02"}, {0x4F: bytes.fromhex(VISA)}]
    candidates = build_candidates(entries, [combo])
    assert [c.order for c in candidates] == [1]


def test_book_b_3_3_2_5_partial_aid_match_and_not_allowed() -> None:
    combo = Combination(_aid(), 3, preprocess(_aid(), TransactionRequest(amount=1)))
    long_adf = bytes.fromhex(VISA + "01")
    assert len(build_candidates([{0x4F: long_adf}], [combo])) == 1
    exact_only = _aid(partial_selection=False)
    combo2 = Combination(exact_only, 3, preprocess(exact_only, TransactionRequest(amount=1)))
    assert build_candidates([{0x4F: long_adf}], [combo2]) == []
    blocked = _aid(reader_ctls_transaction_limit=1)
    combo3 = Combination(blocked, 3, preprocess(blocked, TransactionRequest(amount=1)))
    assert build_candidates([{0x4F: bytes.fromhex(VISA)}], [combo3]) == []


def test_book_b_3_3_3_priority_then_ppse_order_and_cobadge_brand() -> None:
    visa = Combination(_aid(), 3, preprocess(_aid(), TransactionRequest(amount=1)))
    mc_cfg = AidConfig.model_validate({"aid": MC, "kernel_id": 2})
    mc = Combination(mc_cfg, 2, preprocess(mc_cfg, TransactionRequest(amount=1)))
    entries = [{0x4F: bytes.fromhex(VISA), 0x87: b"\x02"}, {0x4F: bytes.fromhex(MC)},
               {0x4F: bytes.fromhex(MC), 0x87: b"\x01"}]
    ordered = order_candidates(build_candidates(entries, [visa, mc]), [])
    assert [c.order for c in ordered] == [2, 0, 1]
    brand_first = order_candidates(build_candidates(entries, [visa, mc]), [VISA])
    assert brand_first[0].order == 0


async def test_book_b_3_3_2_3_no_ppse_end_application() -> None:
    recorded = trace("mock-visa-online.json")
    set_response(recorded, "00A404000E", "6A82")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.NO_PPSE
    assert len(result.trace) == 1
    # 3.3.2.7: "Insert, swipe or try another card", status Ready to Read.
    ui = result.parameters.ui_on_outcome
    assert ui is not None
    assert (ui.message, ui.status) == (Message.INSERT_SWIPE_OR_OTHER_CARD, UiStatus.READY_TO_READ)


async def test_book_b_3_3_3_5_refused_select_removes_the_candidate() -> None:
    result = await tap("ctls_blocked", 1250)  # SELECT answers 6283
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST


async def test_book_b_3_5_1_4_select_next_tries_the_next_candidate() -> None:
    # Mag-stripe transcript: the PPSE offers Mastercard then Maestro. A GPO refused with
    # 6985 is SELECT NEXT (Book C-2, S3.x): the Entry Point selects Maestro next.
    recorded = trace("mock-msc-ms-mode.json")
    set_response(recorded, "80A8", "6985")
    recorded["apdus"].insert(3, {"cmd": "00A4040007A000000004306000", "resp": "6A82"})
    result, channel, _ = await replay(recorded)
    assert channel.stats().matched == 4
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST


async def test_book_b_3_5_restart_context_after_see_phone() -> None:
    config = sim_config()
    from simulator.card.engine import VirtualCard

    card = VirtualCard.from_profile("ctls_phone_wallet")
    first = await tap(card, 6000, config=config)
    assert first.outcome is Outcome.TRY_AGAIN
    assert first.restart is not None
    assert first.restart.start is Start.B
    assert first.parameters.ui_on_outcome is not None
    assert first.parameters.ui_on_outcome.message is Message.SEE_PHONE
    ui: list[UiRequest] = []
    second = await tap(card, 6000, config=config, restart=first.restart, ui=ui)
    assert ui[0].message is Message.PRESENT_CARD_AGAIN
    assert second.outcome is Outcome.ONLINE_REQUEST
    assert second.parameters.cvm.name == "CONFIRMATION_CODE_VERIFIED"


async def test_book_b_3_3_3_cobadged_cardholder_brand_choice() -> None:
    # Mag-stripe transcript PPSE: Mastercard (priority 1) and Maestro (priority 3). The
    # cardholder picks Maestro: it is selected first.
    recorded = trace("mock-msc-ms-mode.json")
    recorded["apdus"].insert(1, {"cmd": "00A4040007A000000004306000", "resp": "6A82"})
    offered: list[str] = []

    async def choose(candidates: Sequence[ContactCandidate]) -> ContactCandidate | None:
        offered.extend(c.aid.hex().upper() for c in candidates)
        return candidates[-1]

    setup = replay_setup(recorded)
    config = setup.config.model_copy(update={"aids": [
        a.model_copy(update={"aid": "A0000000043060"}) if a.aid == VISA else a
        for a in setup.config.aids]})
    channel = ReplayChannel(setup.apdus)
    result = await run_contactless_transaction(
        channel, config=config, request=replace(setup.request, choose_application=choose),
        env=setup.env, kernel2=setup.kernel2)
    assert offered == [MC, "A0000000043060"]
    assert result.trace[1].rapdu == "6A82"  # the recorded answer to SELECT Maestro
    assert channel.stats().matched == 4  # PPSE, SELECT Maestro, SELECT Mastercard, GPO
    assert result.outcome is Outcome.END_APPLICATION  # Mastercard next: mag-stripe only


async def test_book_b_3_3_3_cardholder_cancel_ends() -> None:
    recorded = trace("mock-msc-ms-mode.json")

    async def cancel(candidates: Sequence[ContactCandidate]) -> ContactCandidate | None:
        return None

    setup = replay_setup(recorded)
    config = setup.config.model_copy(update={"aids": [
        a.model_copy(update={"aid": "A0000000043060"}) if a.aid == VISA else a
        for a in setup.config.aids]})
    result = await run_contactless_transaction(
        ReplayChannel(setup.apdus), config=config,
        request=replace(setup.request, choose_application=cancel), env=setup.env)
    assert result.outcome is Outcome.END_APPLICATION
    assert len(result.trace) == 1  # only the PPSE


def _with_extended_selection(recorded: dict[str, object], extension: str) -> None:
    """Give the recorded PPSE entry an Extended Selection (9F29) and the SELECT its suffix."""
    entry = tlv.encode(0x4F, bytes.fromhex(MC)) + tlv.encode(0x87, b"\x01") + tlv.encode(
        0x9F29, bytes.fromhex(extension))
    fci = tlv.encode(0x6F, tlv.encode(0x84, b"2PAY.SYS.DDF01") + tlv.encode(
        0xA5, tlv.encode(0xBF0C, tlv.encode(0x61, entry))))
    set_response(recorded, "00A404000E", fci.hex() + "9000")
    apdus = recorded["apdus"]
    assert isinstance(apdus, list)
    apdus[1]["cmd"] = "00A404000A" + MC + extension + "00"


async def test_book_b_3_3_3_3_extended_selection_appended_when_supported() -> None:
    recorded = trace("mock-msc-online.json")
    _with_extended_selection(recorded, "0102AB")
    result, channel, _ = await replay(recorded, aid_changes={"extended_selection_supported": True})
    assert result.trace[1].capdu == "00A404000A" + MC + "0102AB" + "00"
    assert channel.stats().matched == channel.stats().recorded  # byte for byte
    assert result.outcome is Outcome.ONLINE_REQUEST


async def test_book_b_3_3_3_3_extended_selection_ignored_without_support_flag() -> None:
    recorded = trace("mock-msc-online.json")
    _with_extended_selection(recorded, "0102AB")
    result, channel, _ = await replay(recorded)  # Extended Selection Support flag 0
    assert result.trace[1].capdu == "00A4040007" + MC + "00"
    assert channel.stats().matched == channel.stats().recorded - 1  # the SELECT differs


def test_book_b_3_3_2_5_e_extended_selection_kept_in_the_candidate() -> None:
    supported = AidConfig.model_validate({"aid": MC, "kernel_id": 2,
                                          "extended_selection_supported": True})
    combo = Combination(supported, 2, preprocess(supported, TransactionRequest(amount=1)))
    plain = Combination(supported.model_copy(update={"extended_selection_supported": False}), 2,
                        preprocess(supported, TransactionRequest(amount=1)))
    entry = {0x4F: bytes.fromhex(MC), 0x9F29: b"\x01\x02"}
    assert build_candidates([entry], [combo])[0].extended_selection == b"\x01\x02"
    assert build_candidates([entry], [plain])[0].extended_selection == b""
    assert build_candidates([{0x4F: bytes.fromhex(MC)}], [combo])[0].extended_selection == b""


async def test_book_b_3_3_3_6_visa_pdol_without_ttq_removes_the_candidate() -> None:
    # A Visa AID for kernel 3 whose PDOL lacks 9F66 is a kernel 1 card; kernel 1 is not
    # supported, so the candidate goes and, with none left, the Entry Point ends.
    recorded = trace("mock-visa-online.json")
    select = recorded["apdus"][1]["resp"].replace("9F38189F6604", "9F38189F6704", 1)
    set_response(recorded, "00A4040007", select)
    result, channel, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST
    assert [e.command for e in result.trace] == ["SELECT", "SELECT"]  # no GPO
    assert channel.stats().unconsumed == 1
