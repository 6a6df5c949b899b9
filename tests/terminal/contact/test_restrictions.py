"""Processing restrictions (EMV 4.4 Book 3, 10.4): TVR byte 2."""

from __future__ import annotations

import datetime

import pytest

from terminal.bits import TvrBit
from terminal.config import TerminalConfig
from terminal.contact.restrictions import check_processing_restrictions, parse_yymmdd
from terminal.environment import TransactionRequest, TransactionType
from tests.terminal.contact.replay import h, make_txn

VALID = {0x5F24: h("301231"), 0x5F25: h("100101")}  # clock: 2011-06-01


def run(card: dict[int, bytes], **kwargs) -> set[TvrBit]:
    txn, _ = make_txn({**VALID, **card}, **kwargs)
    check_processing_restrictions(txn)
    return {bit for bit in TvrBit if txn.tvr.is_set(bit) and bit.scope != "contactless"}


def test_book3_10_4_valid_card_sets_nothing() -> None:
    assert run({0x9F08: h("0096"), 0x9F07: h("FF00"), 0x5F28: h("0250")}) == set()


def test_book3_10_4_1_different_application_versions() -> None:
    # A VIS 1.4 card (008C) at a terminal configured for VIS 1.5 (0096).
    assert run({0x9F08: h("008C")}) == {TvrBit.DIFFERENT_APPLICATION_VERSIONS}


def test_book3_10_4_3_expired_application() -> None:
    assert run({0x5F24: h("110531")}) == {TvrBit.EXPIRED_APPLICATION}


def test_book3_10_4_3_application_not_yet_effective() -> None:
    assert run({0x5F25: h("110602")}) == {TvrBit.APPLICATION_NOT_YET_EFFECTIVE}


def test_book3_10_4_3_invalid_date_counts_as_failed() -> None:
    assert run({0x5F24: h("301331")}) == {TvrBit.EXPIRED_APPLICATION}
    assert parse_yymmdd(h("491231")) == datetime.date(2049, 12, 31)
    assert parse_yymmdd(h("501231")) == datetime.date(1950, 12, 31)
    assert parse_yymmdd(h("AB0101")) is None


def test_book3_10_4_2_auc_not_valid_at_non_atm_terminals() -> None:
    assert run({0x9F07: h("FE00")}) == {TvrBit.SERVICE_NOT_ALLOWED}


def test_book3_10_4_2_auc_not_valid_at_atms() -> None:
    atm = TerminalConfig.default().model_copy(update={"terminal_type": "14"})
    assert run({0x9F07: h("FD00")}, config=atm) == {TvrBit.SERVICE_NOT_ALLOWED}
    assert run({0x9F07: h("FE00")}, config=atm) == set()


@pytest.mark.parametrize(
    ("auc", "country", "allowed"),
    [
        ("2900", "0250", True),  # domestic goods+services
        ("1500", "0250", False),  # international only, domestic transaction
        ("1500", "0840", True),
        ("2900", "0840", False),
    ],
)
def test_book3_10_4_2_auc_domestic_international_goods(auc, country, allowed) -> None:
    result = run({0x9F07: h(auc), 0x5F28: h(country)})
    assert (TvrBit.SERVICE_NOT_ALLOWED not in result) is allowed


def test_book3_10_4_2_auc_cashback_not_allowed() -> None:
    cashback = TransactionRequest(
        amount=3000, amount_other=1000, transaction_type=TransactionType.CASHBACK
    )
    assert run({0x9F07: h("FF00"), 0x5F28: h("0250")}, request=cashback) == {
        TvrBit.SERVICE_NOT_ALLOWED
    }
    assert run({0x9F07: h("FF80"), 0x5F28: h("0250")}, request=cashback) == set()
    assert run({0x9F07: h("FF80"), 0x5F28: h("0840")}, request=cashback) == {
        TvrBit.SERVICE_NOT_ALLOWED
    }


def test_book3_10_4_2_auc_cash() -> None:
    cash = TransactionRequest(amount=3000, transaction_type=TransactionType.CASH)
    assert run({0x9F07: h("7F00"), 0x5F28: h("0250")}, request=cash) == {TvrBit.SERVICE_NOT_ALLOWED}
    assert run({0x9F07: h("8100"), 0x5F28: h("0250")}, request=cash) == set()
