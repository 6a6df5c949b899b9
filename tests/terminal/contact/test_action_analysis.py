"""Terminal and card action analysis, GENERATE AC (EMV 4.4 Book 3, 10.7-10.8)."""

from __future__ import annotations

import pytest

from terminal.bits import CryptogramType, TsiBit, TvrBit
from terminal.config import AidConfig, TerminalConfig
from terminal.contact.action_analysis import (
    cryptogram_allowed,
    request_cryptogram,
    terminal_action_analysis,
)
from terminal.contact.state import EndTransaction
from terminal.environment import TransactionRequest, TransactionType
from terminal.errors import CardDataError
from terminal.result import Decision
from tests.terminal.contact.flows import flow
from tests.terminal.contact.model_card import CDOL1, ModelCard
from tests.terminal.contact.replay import h, make_txn, steps


def config(online: bool = True, **tacs) -> TerminalConfig:
    aid = AidConfig(aid="A0000000031010", **tacs)
    return TerminalConfig.default().model_copy(update={"aids": [aid], "online_capable": online})


def analyse(tvr_bit=None, card=None, online=True, request=None, **tacs) -> CryptogramType:
    txn, _ = make_txn(
        card or {}, config=config(online, **tacs), request=request or TransactionRequest(amount=100)
    )
    if tvr_bit is not None:
        txn.set_tvr(tvr_bit)
    return terminal_action_analysis(txn)


def test_book3_10_7_nothing_set_asks_tc() -> None:
    iacs = {0x9F0D: bytes(5), 0x9F0E: bytes(5), 0x9F0F: bytes(5)}
    assert analyse(card=iacs) is CryptogramType.TC


def test_book3_10_7_absent_iac_online_means_all_ones() -> None:
    assert analyse(TvrBit.NEW_CARD) is CryptogramType.ARQC


def test_book3_10_7_tac_denial_gives_aac() -> None:
    assert analyse(TvrBit.EXPIRED_APPLICATION, tac_denial="0040000000") is CryptogramType.AAC


def test_book3_10_7_iac_denial_gives_aac() -> None:
    card = {0x9F0E: h("0000800000")}
    assert analyse(TvrBit.CV_NOT_SUCCESSFUL, card=card) is CryptogramType.AAC


def test_book3_10_7_tac_online_gives_arqc() -> None:
    card = {0x9F0D: bytes(5), 0x9F0E: bytes(5), 0x9F0F: bytes(5)}
    result = analyse(TvrBit.EXCEEDS_FLOOR_LIMIT, card=card, tac_online="0000008000")
    assert result is CryptogramType.ARQC


def test_book3_10_7_offline_only_terminal_uses_default_codes() -> None:
    card = {0x9F0D: bytes(5), 0x9F0E: bytes(5), 0x9F0F: h("FFFFFFFFFF")}
    assert analyse(TvrBit.EXCEEDS_FLOOR_LIMIT, card=card, online=False) is CryptogramType.TC
    result = analyse(TvrBit.EXCEEDS_FLOOR_LIMIT, card=card, online=False, tac_default="0000008000")
    assert result is CryptogramType.AAC


def test_book4_merchant_forced_online_asks_arqc() -> None:
    card = {0x9F0D: bytes(5), 0x9F0E: bytes(5), 0x9F0F: bytes(5)}
    forced = TransactionRequest(amount=100, force_online=True)
    assert analyse(card=card, request=forced) is CryptogramType.ARQC


def test_refund_asks_aac() -> None:
    refund = TransactionRequest(amount=100, transaction_type=TransactionType.REFUND)
    assert analyse(request=refund) is CryptogramType.AAC


@pytest.mark.parametrize(
    ("requested", "returned", "ok"),
    [
        (CryptogramType.TC, CryptogramType.ARQC, True),
        (CryptogramType.TC, CryptogramType.AAC, True),
        (CryptogramType.ARQC, CryptogramType.TC, False),
        (CryptogramType.AAC, CryptogramType.ARQC, False),
        (CryptogramType.TC, CryptogramType.RFU, False),
    ],
)
def test_book3_6_5_5_4_card_may_not_return_a_higher_cryptogram(requested, returned, ok) -> None:
    assert cryptogram_allowed(requested, returned) is ok


GENAC_DATA = "000000000100 000000000000 0250 0000000000 0978 110601 00 11223344"


async def test_book3_10_8_first_generate_ac_with_cdol1() -> None:
    txn, channel = make_txn(
        {0x8C: h(CDOL1), 0x8D: h("8A02")},
        request=TransactionRequest(amount=100),
        transcript=steps(
            (
                f"80AE4000 1D {GENAC_DATA} 00",
                "7714 9F270140 9F36020001 9F2608 0102030405060708 9000",
                "TC asked, TC given",
            ),
        ),
    )
    parsed, cda = await request_cryptogram(txn, CryptogramType.TC)
    channel.assert_consumed()
    assert parsed.cryptogram_type is CryptogramType.TC
    assert cda is None
    assert txn.tsi.is_set(TsiBit.CARD_RISK_MANAGEMENT_PERFORMED)


async def test_book3_10_8_generate_ac_error_terminates() -> None:
    txn, _ = make_txn(
        {0x8C: h(CDOL1)},
        request=TransactionRequest(amount=100),
        transcript=steps((f"80AE4000 1D {GENAC_DATA} 00", "6985", "refused")),
    )
    with pytest.raises(EndTransaction) as info:
        await request_cryptogram(txn, CryptogramType.TC)
    assert info.value.decision is Decision.TERMINATED


async def test_book3_10_8_higher_cryptogram_is_card_data_error() -> None:
    txn, _ = make_txn(
        {0x8C: h(CDOL1)},
        request=TransactionRequest(amount=100),
        transcript=steps(
            (
                f"80AE0000 1D {GENAC_DATA} 00",
                "7714 9F270140 9F36020001 9F2608 0102030405060708 9000",
                "TC for AAC",
            ),
        ),
    )
    with pytest.raises(CardDataError):
        await request_cryptogram(txn, CryptogramType.AAC)


async def test_book3_10_8_tc_hash_value_with_default_tdol() -> None:
    txn, channel = make_txn(
        {0x8C: h("9F3704 9814")},
        config=TerminalConfig.default().model_copy(
            update={"aids": [AidConfig(aid="A0000000031010", default_tdol="9F3704")]}
        ),
        transcript=steps(
            # SHA-1(11223344) = 3F6DDB2...: computed by the kernel; the card echoes a TC
            (
                "80AE4000 18 11223344 "
                + __import__("hashlib").sha1(h("11223344")).hexdigest()
                + " 00",
                "7714 9F270140 9F36020001 9F2608 0102030405060708 9000",
                "TC hash",
            ),
        ),
    )
    await request_cryptogram(txn, CryptogramType.TC)
    channel.assert_consumed()
    assert txn.tvr.is_set(TvrBit.DEFAULT_TDOL_USED)


async def test_book3_10_8_card_action_analysis_tc_approves_offline() -> None:
    card = ModelCard(oda="DDA", extra={0x9F0F: bytes(5)})
    result = await flow(card, amount=100, config=config(floor_limit=5000))
    assert result.decision is Decision.APPROVED
    assert result.authorisation_response_code == b"Y1"
    assert result.cid == h("40")


async def test_book3_10_8_card_action_analysis_aac_declines() -> None:
    card = ModelCard(oda="DDA", answer_ac=0x00)
    result = await flow(card, amount=100)
    assert result.decision is Decision.DECLINED
    assert result.authorisation_response_code == b"Z1"


async def test_book3_10_8_card_action_analysis_arqc_goes_online() -> None:
    card = ModelCard(oda="DDA", answer_ac=0x80)
    result = await flow(card, amount=100, config=config(floor_limit=5000))
    assert result.decision is Decision.APPROVED
    assert result.authorisation_response_code == b"00"
