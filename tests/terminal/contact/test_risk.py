"""Terminal risk management (EMV 4.4 Book 3, 10.6): TVR byte 4, New card, exception file."""

from __future__ import annotations

import pytest

from terminal.bits import TsiBit, TvrBit
from terminal.config import AidConfig, TerminalConfig, exception_file_entry
from terminal.contact.risk import random_selection_target, terminal_risk_management
from terminal.environment import TransactionRequest
from tests.terminal.contact.replay import h, make_txn, steps

PAN = h("4761739001010010")


def config(**fields) -> TerminalConfig:
    aid = AidConfig(aid="A0000000031010", **fields)
    return TerminalConfig.default().model_copy(update={"aids": [aid]})


def bits(txn) -> set[TvrBit]:
    return {b for b in TvrBit if txn.tvr.is_set(b) and b.scope != "contactless"}


async def run(amount=1000, card=None, transcript=(), percent=99, cfg=None, aip="5C00"):
    txn, channel = make_txn(
        {0x5A: PAN, **(card or {})},
        transcript=steps(*transcript),
        aip=h(aip),
        percent=percent,
        request=TransactionRequest(amount=amount),
        config=cfg or config(floor_limit=5000),
    )
    await terminal_risk_management(txn)
    channel.assert_consumed()
    return txn


async def test_book3_10_6_not_performed_when_aip_says_not() -> None:
    txn = await run(amount=99999, aip="5400")
    assert bits(txn) == set()
    assert not txn.tsi.is_set(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)


async def test_book3_10_6_1_floor_limit_exceeded() -> None:
    txn = await run(amount=5000)
    assert bits(txn) == {TvrBit.EXCEEDS_FLOOR_LIMIT}
    assert txn.tsi.is_set(TsiBit.TERMINAL_RISK_MANAGEMENT_PERFORMED)
    assert bits(await run(amount=4999)) == set()


async def test_book3_10_6_1_card_on_exception_file() -> None:
    listed = config(floor_limit=5000).model_copy(
        update={"exception_file": [exception_file_entry("4761739001010010", 1)]}
    )
    txn = await run(card={0x5F34: h("01")}, cfg=listed)
    assert bits(txn) == {TvrBit.CARD_ON_EXCEPTION_FILE}


@pytest.mark.parametrize(
    ("amount", "percent", "selected"),
    [
        (100, 10, True),
        (100, 11, False),
        (1999, 10, True),
        (3500, 30, True),
        (3500, 31, False),
        (4999, 49, True),
    ],
)
async def test_book3_10_6_2_random_transaction_selection(amount, percent, selected) -> None:
    cfg = config(
        floor_limit=5000,
        random_selection_threshold=2000,
        random_selection_target_percent=10,
        random_selection_max_target_percent=50,
    )
    txn = await run(amount=amount, percent=percent, cfg=cfg)
    assert (TvrBit.RANDOMLY_SELECTED_ONLINE in bits(txn)) is selected


def test_book3_10_6_2_target_interpolation() -> None:
    assert random_selection_target(1000, 5000, 2000, 10, 50) == 10
    assert random_selection_target(3500, 5000, 2000, 10, 50) == 30
    assert random_selection_target(5000, 5000, 2000, 10, 50) is None


VELOCITY = {0x9F14: h("02"), 0x9F23: h("04")}


def counters(atc: str, last_online: str) -> list[tuple[str, str, str]]:
    return [
        ("80CA9F3600", f"9F3602{atc}9000", "GET DATA ATC"),
        ("80CA9F1300", f"9F1302{last_online}9000", "GET DATA last online ATC"),
    ]


async def test_book3_10_6_3_velocity_within_limits() -> None:
    assert bits(await run(card=VELOCITY, transcript=counters("0010", "000F"))) == set()


async def test_book3_10_6_3_lower_consecutive_offline_limit_exceeded() -> None:
    txn = await run(card=VELOCITY, transcript=counters("0013", "0010"))
    assert bits(txn) == {TvrBit.LCOL_EXCEEDED}


async def test_book3_10_6_3_upper_consecutive_offline_limit_exceeded() -> None:
    txn = await run(card=VELOCITY, transcript=counters("0015", "0010"))
    assert bits(txn) == {TvrBit.LCOL_EXCEEDED, TvrBit.UCOL_EXCEEDED}


async def test_book3_10_6_3_new_card() -> None:
    txn = await run(card=VELOCITY, transcript=counters("0001", "0000"))
    assert bits(txn) == {TvrBit.NEW_CARD}


async def test_book3_10_6_3_counters_not_returned_set_both_limits() -> None:
    txn = await run(
        card=VELOCITY,
        transcript=[("80CA9F3600", "6A88", "no ATC"), ("80CA9F1300", "9F130200019000", "LOATC")],
    )
    assert bits(txn) == {TvrBit.LCOL_EXCEEDED, TvrBit.UCOL_EXCEEDED}


async def test_book3_10_6_3_no_velocity_without_lcol_ucol() -> None:
    assert bits(await run(card={0x9F14: h("02")})) == set()
