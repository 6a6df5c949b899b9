"""Application selection (EMV 4.4 Book 1, 12) and the GPO 6985 path (Book 3, 10.1)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from terminal.config import AidConfig, TerminalConfig
from terminal.contact.flow import _select_and_initiate
from terminal.contact.selection import Candidate, build_candidates, final_select
from terminal.contact.state import EndTransaction
from terminal.environment import TransactionRequest
from terminal.result import Decision
from terminal.tlv import encode
from tests.terminal.contact.replay import h, make_txn, steps

VISA, MC, CB = "A0000000031010", "A0000000041010", "A0000000421010"
SELECT_PSE = "00A404000E315041592E5359532E444446303100"


def fci(aid: str, label: str = "APP", api: int | None = None, pdol: str | None = None) -> str:
    prop = encode(0x50, label.encode())
    if api is not None:
        prop += encode(0x87, bytes((api,)))
    if pdol is not None:
        prop += encode(0x9F38, h(pdol))
    return (encode(0x6F, encode(0x84, h(aid)) + encode(0xA5, prop))).hex().upper()


def sel(aid: str, next_occurrence: bool = False) -> str:
    return f"00A404{'02' if next_occurrence else '00'}{len(h(aid)):02X}{aid}00"


def config(*aids: str, partial: bool = True, brands: Sequence[str] = ()) -> TerminalConfig:
    return TerminalConfig.default().model_copy(
        update={
            "aids": [AidConfig(aid=a, partial_selection=partial) for a in aids],
            "cobadge_brand_priority": list(brands),
        }
    )


def pse_fci(sfi: int = 1) -> str:
    body = encode(0x84, b"1PAY.SYS.DDF01") + encode(0xA5, encode(0x88, bytes((sfi,))))
    return encode(0x6F, body).hex().upper()


def dir_record(*entries: tuple[str, str, int]) -> str:
    inner = b"".join(
        encode(0x61, encode(0x4F, h(a)) + encode(0x50, lbl.encode()) + encode(0x87, bytes((p,))))
        for a, lbl, p in entries
    )
    return encode(0x70, inner).hex().upper()


async def test_book1_12_3_2_pse_directory_gives_candidates() -> None:
    txn, channel = make_txn(
        config=config(VISA, MC),
        transcript=steps(
            (SELECT_PSE, pse_fci() + "9000", "PSE"),
            ("00B2010C00", dir_record((MC, "MC", 2), (VISA, "VISA", 1)) + "9000", "dir rec 1"),
            ("00B2020C00", "6A83", "end of directory"),
        ),
    )
    candidates = await build_candidates(txn)
    channel.assert_consumed()
    assert [c.label for c in candidates] == ["MC", "VISA"]


async def test_book1_12_3_2_pse_blocked_falls_back_to_list_of_aids() -> None:
    txn, channel = make_txn(
        config=config(VISA),
        transcript=steps(
            (SELECT_PSE, pse_fci() + "6283", "PSE blocked"),
            (sel(VISA), fci(VISA) + "9000", "list of AIDs"),
        ),
    )
    assert [c.aid.hex().upper() for c in await build_candidates(txn)] == [VISA]
    channel.assert_consumed()


async def test_book1_12_3_2_card_blocked_6a81_terminates() -> None:
    txn, _ = make_txn(config=config(VISA), transcript=steps((SELECT_PSE, "6A81", "blocked")))
    with pytest.raises(EndTransaction) as info:
        await build_candidates(txn)
    assert info.value.decision is Decision.CARD_BLOCKED


async def test_book1_12_3_3_partial_selection_by_asi_with_next_occurrence() -> None:
    short = "A000000003"
    txn, channel = make_txn(
        config=config(short),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(short), fci(VISA, "CREDIT") + "9000", "first occurrence"),
            (sel(short, True), fci("A0000000032010", "ELECTRON") + "9000", "next"),
            (sel(short, True), "6A82", "no more"),
        ),
    )
    candidates = await build_candidates(txn)
    channel.assert_consumed()
    assert [c.label for c in candidates] == ["CREDIT", "ELECTRON"]


async def test_book1_12_3_3_no_partial_selection_ignores_longer_df_name() -> None:
    short = "A000000003"
    txn, channel = make_txn(
        config=config(short, partial=False),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(short), fci(VISA) + "9000", "longer DF name, ASI exact"),
        ),
    )
    assert await build_candidates(txn) == []
    channel.assert_consumed()


async def test_book1_12_3_3_blocked_application_6283_is_not_a_candidate() -> None:
    txn, channel = make_txn(
        config=config(VISA, MC),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(VISA), fci(VISA) + "6283", "application blocked"),
            (sel(MC), fci(MC) + "9000", "MC"),
        ),
    )
    assert [c.aid.hex().upper() for c in await build_candidates(txn)] == [MC]
    channel.assert_consumed()


def cand(aid: str, priority: int | None, confirm: bool = False) -> Candidate:
    return Candidate(h(aid), aid[-6:], None, priority, confirm, AidConfig(aid=aid))


async def test_book1_12_4_priority_orders_candidates_and_final_select() -> None:
    txn, channel = make_txn(
        config=config(VISA, MC),
        transcript=steps((sel(MC), fci(MC, "MC", 0x01) + "9000", "final SELECT of priority 1")),
    )
    chosen = await final_select(txn, [cand(VISA, 2), cand(MC, 1)])
    channel.assert_consumed()
    assert chosen.aid == h(MC)
    assert txn.label == "MC"


async def test_book1_12_4_confirmation_required_without_cardholder_not_accepted() -> None:
    txn, _ = make_txn(config=config(VISA))
    with pytest.raises(EndTransaction) as info:
        await final_select(txn, [cand(VISA, 1, confirm=True)])
    assert info.value.decision is Decision.NOT_ACCEPTED


async def test_book1_12_4_cardholder_confirms_application() -> None:
    seen: list[list[str]] = []

    async def choose(candidates: Sequence[Candidate]) -> Candidate | None:
        seen.append([c.display_name for c in candidates])
        return candidates[0]

    txn, channel = make_txn(
        config=config(VISA),
        request=TransactionRequest(amount=100, choose_application=choose),
        transcript=steps((sel(VISA), fci(VISA, "V", 0x81) + "9000", "final SELECT")),
    )
    await final_select(txn, [cand(VISA, 1, confirm=True)])
    channel.assert_consumed()
    assert seen == [["031010"]]


async def test_book1_12_4_cardholder_cancels() -> None:
    async def cancel(candidates: Sequence[Candidate]) -> Candidate | None:
        return None

    txn, _ = make_txn(
        config=config(VISA, MC), request=TransactionRequest(amount=1, choose_application=cancel)
    )
    with pytest.raises(EndTransaction) as info:
        await final_select(txn, [cand(VISA, 1), cand(MC, 2)])
    assert info.value.decision is Decision.CANCELLED


async def test_eu_ifr_cobadge_cardholder_chooses_brand() -> None:
    async def pick_visa(candidates: Sequence[Candidate]) -> Candidate | None:
        return next(c for c in candidates if c.aid == h(VISA))

    txn, channel = make_txn(
        config=config(CB, VISA, brands=[CB]),
        request=TransactionRequest(amount=1, choose_application=pick_visa),
        transcript=steps((sel(VISA), fci(VISA) + "9000", "cardholder chose Visa")),
    )
    chosen = await final_select(txn, [cand(CB, 1), cand(VISA, 1)])
    channel.assert_consumed()
    assert chosen.aid == h(VISA)


async def test_eu_ifr_cobadge_default_brand_priority_without_choice() -> None:
    txn, channel = make_txn(
        config=config(VISA, CB, brands=[CB]),
        transcript=steps((sel(CB), fci(CB) + "9000", "configured default brand CB")),
    )
    chosen = await final_select(txn, [cand(VISA, 1), cand(CB, 2)])
    channel.assert_consumed()
    assert chosen.aid == h(CB)


async def test_book1_12_4_final_select_failure_removes_candidate() -> None:
    txn, channel = make_txn(
        config=config(VISA, MC),
        transcript=steps(
            (sel(VISA), "6283", "blocked at final SELECT"),
            (sel(MC), fci(MC) + "9000", "next candidate"),
        ),
    )
    chosen = await final_select(txn, [cand(VISA, 1), cand(MC, 2)])
    channel.assert_consumed()
    assert chosen.aid == h(MC)


async def test_book1_12_4_no_candidates_not_accepted() -> None:
    txn, _ = make_txn(config=config(VISA))
    with pytest.raises(EndTransaction) as info:
        await final_select(txn, [])
    assert info.value.decision is Decision.NOT_ACCEPTED


async def test_book3_10_1_gpo_6985_removes_application_and_selects_next() -> None:
    txn, channel = make_txn(
        config=config(VISA, MC),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(VISA), fci(VISA, "V", 1) + "9000", "candidate 1"),
            (sel(MC), fci(MC, "M", 2) + "9000", "candidate 2"),
            (sel(VISA), fci(VISA, "V", 1) + "9000", "final SELECT Visa"),
            ("80A80000028300 00", "6985", "GPO: conditions of use not satisfied"),
            (sel(MC), fci(MC, "M", 2) + "9000", "final SELECT Mastercard"),
            ("80A80000028300 00", "800A 1980 08010100 10010200 9000", "GPO ok"),
        ),
    )
    await _select_and_initiate(txn)
    channel.assert_consumed()
    assert txn.aid == h(MC)
    assert txn.card[0x82] == h("1980")
    assert txn.terminal[0x9F09] == h("0096")


async def test_book3_10_1_gpo_with_pdol_data() -> None:
    txn, channel = make_txn(
        config=config(VISA),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(VISA), fci(VISA, pdol="9F6604 9F0206 5F2A02") + "9000", "candidate"),
            (sel(VISA), fci(VISA, pdol="9F6604 9F0206 5F2A02") + "9000", "final"),
            (
                "80A800000E 830C 36000000 000000001000 0978 00",
                "770E 82021980 9408 08010100 10010200 9000",
                "GPO with TTQ, amount, currency",
            ),
        ),
    )
    await _select_and_initiate(txn)
    channel.assert_consumed()
    assert txn.pdol_data == h("36000000 000000001000 0978")


async def test_book3_10_1_gpo_other_error_terminates() -> None:
    txn, _ = make_txn(
        config=config(VISA),
        transcript=steps(
            (SELECT_PSE, "6A82", "no PSE"),
            (sel(VISA), fci(VISA) + "9000", "candidate"),
            (sel(VISA), fci(VISA) + "9000", "final"),
            ("80A80000028300 00", "6A80", "GPO error"),
        ),
    )
    with pytest.raises(EndTransaction) as info:
        await _select_and_initiate(txn)
    assert info.value.decision is Decision.TERMINATED
