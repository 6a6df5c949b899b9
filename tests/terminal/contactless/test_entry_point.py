"""Entry Point rules (EMV Contactless Book B, 3.1-3.5), one test per clause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from terminal.config import AidConfig
from terminal.contact.selection import Candidate as ContactCandidate
from terminal.contactless import (
    L2Error,
    Message,
    Outcome,
    Start,
    UiRequest,
    run_contactless_transaction,
)
from terminal.contactless.preprocessing import Combination, preprocess
from terminal.contactless.replay import ReplayChannel, replay_setup
from terminal.contactless.selection import build_candidates, order_candidates, requested_kernel
from terminal.environment import TransactionRequest
from tests.terminal.contactless.helpers import replay, set_response, sim_config, tap, trace

VISA = "A0000000031010"
MC = "A0000000041010"


def _aid(**changes: object) -> AidConfig:
    return AidConfig.model_validate({"aid": VISA, "kernel_id": 3, "ttq": "36C04000", **changes})


def test_book_b_3_1_1_1_ttq_copy_resets_byte2_bits_8_7() -> None:
    indicators = preprocess(_aid(reader_ctls_floor_limit=5000), TransactionRequest(amount=100))
    assert indicators.ttq == bytes.fromhex("36004000")


def test_book_b_3_1_1_2_status_check_single_unit_of_currency() -> None:
    aid = _aid(status_check_supported=True, reader_ctls_floor_limit=5000)
    indicators = preprocess(aid, TransactionRequest(amount=100))
    assert indicators.status_check_requested
    assert indicators.ttq is not None
    assert indicators.ttq[1] & 0x80
    assert not preprocess(aid, TransactionRequest(amount=101)).status_check_requested


def test_book_b_3_1_1_3_zero_amount() -> None:
    allowed = preprocess(_aid(reader_ctls_floor_limit=5000), TransactionRequest(amount=0))
    assert allowed.zero_amount
    assert not allowed.not_allowed
    assert allowed.ttq is not None
    assert allowed.ttq[1] & 0x80
    refused = preprocess(_aid(zero_amount_allowed=False), TransactionRequest(amount=0))
    assert refused.not_allowed


def test_book_b_3_1_1_4_reader_ctls_transaction_limit_exceeded() -> None:
    aid = _aid(reader_ctls_transaction_limit=10000)
    assert preprocess(aid, TransactionRequest(amount=10000)).not_allowed
    assert not preprocess(aid, TransactionRequest(amount=9999)).not_allowed


def test_book_b_3_1_1_5_reader_ctls_floor_limit_exceeded() -> None:
    aid = _aid(reader_ctls_floor_limit=5000)
    above = preprocess(aid, TransactionRequest(amount=5001))
    assert above.floor_limit_exceeded
    assert above.ttq is not None
    assert above.ttq[1] & 0x80
    assert not preprocess(aid, TransactionRequest(amount=5000)).floor_limit_exceeded


def test_book_b_3_1_1_6_terminal_floor_limit_when_no_reader_floor_limit() -> None:
    aid = _aid(reader_ctls_floor_limit=None, floor_limit=2000)
    assert preprocess(aid, TransactionRequest(amount=2001)).floor_limit_exceeded
    assert not preprocess(aid, TransactionRequest(amount=2000)).floor_limit_exceeded


def test_book_b_3_1_1_7_reader_cvm_required_limit_exceeded() -> None:
    aid = _aid(reader_cvm_required_limit=5000, reader_ctls_floor_limit=99999)
    at_limit = preprocess(aid, TransactionRequest(amount=5000))
    assert at_limit.cvm_required_limit_exceeded
    assert at_limit.ttq is not None
    assert at_limit.ttq[1] & 0xC0 == 0x40
    assert not preprocess(aid, TransactionRequest(amount=4999)).cvm_required_limit_exceeded


async def test_book_b_3_1_1_12_all_combinations_not_allowed_try_another_interface() -> None:
    ui: list[UiRequest] = []
    result = await tap("ctls_visa_online", 200_000, ui=ui)  # above every transaction limit
    assert result.outcome is Outcome.TRY_ANOTHER_INTERFACE
    assert result.trace == []  # decided before the field is used
    assert [u.message for u in ui] == [Message.INSERT_SWIPE_OR_OTHER_CARD]


async def test_book_b_3_2_1_2_present_card_then_processing_outcome_ui() -> None:
    ui: list[UiRequest] = []
    result = await tap("ctls_visa_online", 1250, ui=ui)
    assert ui[0].message is Message.PRESENT_CARD
    assert ui[0].amount == 1250
    assert result.ui_requests == ui


def test_book_b_3_3_2_5_kernel_identifier_and_default_kernel() -> None:
    adf = bytes.fromhex(MC)
    assert requested_kernel({}, adf) == 2
    assert requested_kernel({0x9F2A: b"\x03"}, adf) == 3
    assert requested_kernel({0x9F2A: b"\x00"}, bytes.fromhex(VISA)) == 3
    assert requested_kernel({0x9F2A: bytes.fromhex("820001")}, adf) not in (2, 3)


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


async def test_book_b_3_3_2_2_no_ppse_end_application() -> None:
    recorded = trace("mock-visa-online.json")
    set_response(recorded, "00A404000E", "6A82")
    result, _, _ = await replay(recorded)
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.NO_PPSE
    assert len(result.trace) == 1


async def test_book_b_3_4_1_refused_select_removes_the_candidate() -> None:
    result = await tap("ctls_blocked", 1250)  # SELECT answers 6283
    assert result.outcome is Outcome.END_APPLICATION
    assert result.parameters.error.l2 is L2Error.EMPTY_CANDIDATE_LIST


async def test_book_b_3_5_1_2_select_next_tries_the_next_candidate() -> None:
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
