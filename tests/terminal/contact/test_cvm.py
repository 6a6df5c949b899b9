"""Cardholder verification (EMV 4.4 Book 3, 10.5): one test per rule, TVR byte 3 and 9F34."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from terminal.bits import TerminalCapabilities, TsiBit, TvrBit
from terminal.config import TerminalConfig
from terminal.contact.cvm import cardholder_verification
from terminal.contact.flow import run_contact_transaction
from terminal.environment import Environment, TransactionRequest, TransactionType
from tests.terminal.contact.model_card import ModelCard, capk
from tests.terminal.contact.replay import Authoriser, TestPinPad, h, make_txn, steps

PIN_TRIES = ("80CA9F1700", "9F1701039000", "GET DATA PIN try counter")
VERIFY_OK = ("0020008008 241234FFFFFFFFFF", "9000", "VERIFY plaintext")


def cvm(rules: str, x: int = 0, y: int = 0) -> bytes:
    return x.to_bytes(4, "big") + y.to_bytes(4, "big") + h(rules)


def tvr_bits(txn) -> set[TvrBit]:
    return {b for b in TvrBit if txn.tvr.is_set(b) and b.scope != "contactless"}


async def run(
    rules: str,
    *,
    transcript=(),
    amount=1000,
    pinpad=None,
    x=0,
    y=0,
    card=None,
    request=None,
    config=None,
):
    data = {0x8E: cvm(rules, x, y), 0x9F42: h("0978"), **(card or {})}
    txn, channel = make_txn(
        data,
        transcript=steps(*transcript),
        pinpad=pinpad,
        request=request or TransactionRequest(amount=amount),
        config=config,
    )
    await cardholder_verification(txn)
    channel.assert_consumed()
    return txn


async def test_book3_10_5_aip_without_cv_support_skips_cvm() -> None:
    txn, _ = make_txn({0x8E: cvm("1F00")}, aip=h("0C00"))
    await cardholder_verification(txn)
    assert txn.cvm_results == h("3F0000")
    assert not txn.tsi.is_set(TsiBit.CV_PERFORMED)


async def test_book3_10_5_no_cvm_list_sets_icc_data_missing() -> None:
    txn, _ = make_txn({})
    await cardholder_verification(txn)
    assert tvr_bits(txn) == {TvrBit.ICC_DATA_MISSING}
    assert txn.cvm_results == h("3F0000")


async def test_book3_10_5_no_cvm_required_always() -> None:
    txn = await run("1F00")
    assert txn.cvm_results == h("1F0002")
    assert tvr_bits(txn) == set()
    assert txn.tsi.is_set(TsiBit.CV_PERFORMED)


async def test_book3_10_5_1_offline_plaintext_pin_verified() -> None:
    pad = TestPinPad()
    txn = await run("0100", transcript=[PIN_TRIES, VERIFY_OK], pinpad=pad)
    assert txn.cvm_results == h("010002")
    assert pad.calls == ["plaintext"]


async def test_book3_10_5_1_wrong_pin_then_right_pin() -> None:
    pad = TestPinPad(pin="9999")
    transcript = [PIN_TRIES, ("0020008008 249999FFFFFFFFFF", "63C2", "wrong, 2 left")] * 1
    txn, channel = make_txn(
        {0x8E: cvm("0100")},
        transcript=steps(
            *transcript,
            ("0020008008 249999FFFFFFFFFF", "63C1", "wrong, 1 left"),
            ("0020008008 249999FFFFFFFFFF", "63C0", "blocked"),
        ),
        pinpad=pad,
    )
    await cardholder_verification(txn)
    channel.assert_consumed()
    assert tvr_bits(txn) == {TvrBit.PIN_TRY_LIMIT_EXCEEDED, TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("010001")


async def test_book3_10_5_1_pin_try_counter_zero_pin_try_limit_exceeded() -> None:
    txn = await run(
        "4100 1E00",
        transcript=[("80CA9F1700", "9F1701009000", "no tries left")],
        pinpad=TestPinPad(),
    )
    assert TvrBit.PIN_TRY_LIMIT_EXCEEDED in tvr_bits(txn)
    assert txn.cvm_results == h("1E0000")
    assert txn.signature_required


async def test_book3_10_5_1_pin_pad_not_present() -> None:
    txn = await run("0100")
    assert tvr_bits(txn) == {TvrBit.PIN_PAD_NOT_PRESENT, TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("010001")


async def test_book3_10_5_1_pin_bypassed_pin_not_entered() -> None:
    txn = await run("4100 1F00", transcript=[PIN_TRIES], pinpad=TestPinPad(bypass=True))
    assert tvr_bits(txn) == {TvrBit.PIN_NOT_ENTERED}
    assert txn.cvm_results == h("1F0002")


async def test_book3_10_5_unrecognised_cvm() -> None:
    txn = await run("2000")
    assert tvr_bits(txn) == {TvrBit.UNRECOGNISED_CVM, TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("200001")


async def test_book3_10_5_fail_cvm_processing() -> None:
    txn = await run("0000 1F00")
    assert tvr_bits(txn) == {TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("000001")


async def test_book3_10_5_apply_succeeding_rule_when_cvm_fails() -> None:
    txn = await run("4000 1F00")
    assert txn.cvm_results == h("1F0002")
    assert tvr_bits(txn) == set()


async def test_book3_10_5_no_condition_satisfied_3f0001() -> None:
    txn = await run("1F01 1F04")  # unattended cash, manual cash: a purchase satisfies neither
    assert tvr_bits(txn) == {TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("3F0001")


async def test_book3_10_5_condition_not_understood_is_skipped() -> None:
    txn = await run("1E0A 1F00")
    assert txn.cvm_results == h("1F0002")


async def test_book3_10_5_3_signature() -> None:
    txn = await run("1E00")
    assert txn.cvm_results == h("1E0000")
    assert txn.signature_required


async def test_book3_10_5_2_online_pin_entered() -> None:
    pad = TestPinPad()
    txn = await run("0200", pinpad=pad)
    assert tvr_bits(txn) == {TvrBit.ONLINE_PIN_ENTERED}
    assert txn.cvm_results == h("020000")
    assert txn.online_pin is not None
    assert "11111111" not in repr(txn.online_pin)


async def test_book3_10_5_2_online_pin_bypassed() -> None:
    txn = await run("0200", pinpad=TestPinPad(bypass=True))
    assert tvr_bits(txn) == {TvrBit.PIN_NOT_ENTERED, TvrBit.CV_NOT_SUCCESSFUL}


async def test_book3_10_5_terminal_does_not_support_cvm_condition_03() -> None:
    no_sig = TerminalConfig.default().model_copy(update={"terminal_capabilities": "E0D8C8"})
    txn = await run("1E03 1F00", config=no_sig)
    assert txn.cvm_results == h("1F0002")


async def test_book3_10_5_signature_not_supported_fails() -> None:
    caps = TerminalCapabilities(h("E0D8C8"))
    assert caps.bytes() == h("E0D8C8")
    no_sig = TerminalConfig.default().model_copy(update={"terminal_capabilities": "E0D8C8"})
    txn = await run("1E00", config=no_sig)
    assert tvr_bits(txn) == {TvrBit.CV_NOT_SUCCESSFUL}
    assert txn.cvm_results == h("1E0001")


async def test_book3_10_5_cvm_condition_amount_under_x() -> None:
    txn = await run("1F06 1E00", amount=999, x=1000)
    assert txn.cvm_results == h("1F0602")
    txn = await run("1F06 1E00", amount=1000, x=1000)
    assert txn.cvm_results == h("1E0000")


async def test_book3_10_5_cvm_condition_amount_over_x() -> None:
    assert (await run("1E07 1F00", amount=1001, x=1000)).cvm_results == h("1E0700")
    assert (await run("1E07 1F00", amount=1000, x=1000)).cvm_results == h("1F0002")


async def test_book3_10_5_cvm_condition_amount_under_and_over_y() -> None:
    assert (await run("1F08 1E00", amount=10, y=20)).cvm_results == h("1F0802")
    assert (await run("1E09 1F00", amount=30, y=20)).cvm_results == h("1E0900")


async def test_book3_10_5_amount_conditions_need_application_currency() -> None:
    txn = await run("1F06 1E00", amount=1, x=1000, card={0x9F42: h("0840")})
    assert txn.cvm_results == h("1E0000")


async def test_book3_10_5_cvm_condition_purchase_with_cashback() -> None:
    cashback = TransactionRequest(
        amount=3000, amount_other=1000, transaction_type=TransactionType.CASHBACK
    )
    txn = await run("1E05 1F00", request=cashback)
    assert txn.cvm_results == h("1E0500")
    txn = await run("1E02 1F00", request=cashback)  # not cash or cashback: not satisfied
    assert txn.cvm_results == h("1F0002")


async def test_book3_10_5_cvm_condition_cash() -> None:
    manual = TransactionRequest(amount=3000, transaction_type=TransactionType.CASH)
    assert (await run("1E04 1F00", request=manual)).cvm_results == h("1E0400")
    unattended = TransactionRequest(
        amount=3000, transaction_type=TransactionType.CASH, unattended=True
    )
    assert (await run("1E01 1F00", request=unattended)).cvm_results == h("1E0100")


async def test_book3_10_5_1_plaintext_pin_and_signature_combination() -> None:
    txn = await run("0300", transcript=[PIN_TRIES, VERIFY_OK], pinpad=TestPinPad())
    assert txn.cvm_results == h("030000")
    assert txn.signature_required


async def _flow(card: ModelCard, pad: TestPinPad):
    return await run_contact_transaction(
        card,
        config=TerminalConfig.default(),
        request=TransactionRequest(amount=1000),
        env=Environment.fixed(datetime(2025, 6, 1), h("11223344")),
        online=Authoriser(),
        pinpad=pad,
        capk=capk(),
    )


async def test_book3_10_5_1_offline_enciphered_pin_with_pin_key() -> None:
    card = ModelCard(oda="DDA", pin_key=True, cvm_list=cvm("0400"))
    pad = TestPinPad()
    result = await _flow(card, pad)
    assert pad.calls == ["enciphered"]
    assert result.cvm_results == h("040002")
    assert any(c[1] == 0x84 for c in card.log)  # GET CHALLENGE
    assert card.pin_tries == 3


async def test_book3_10_5_1_offline_enciphered_pin_with_icc_key() -> None:
    card = ModelCard(oda="CDA", pin_key=False, cvm_list=cvm("0500"))
    result = await _flow(card, TestPinPad())
    assert result.cvm_results == h("050000")
    assert result.signature_required


@dataclass
class SequencePinPad(TestPinPad):
    """The cardholder types ``pins`` in turn (a wrong PIN, then the right one)."""

    __test__ = False
    pins: list[str] = field(default_factory=list)

    async def verify_offline(self, send, **kwargs):  # type: ignore[no-untyped-def]
        self.pin = self.pins.pop(0)
        return await super().verify_offline(send, **kwargs)


async def test_book3_10_5_1_enciphered_pin_wrong_then_right_with_a_fresh_challenge() -> None:
    # Each enciphered VERIFY needs its own GET CHALLENGE (Book 2, 7.1; the card accepts a
    # challenge once): the second attempt asks again and succeeds.
    card = ModelCard(oda="DDA", pin_key=True, cvm_list=cvm("4400 1E00"))
    pad = SequencePinPad(pins=["0000", "1234"])
    result = await _flow(card, pad)
    assert pad.calls == ["enciphered", "enciphered"]
    assert card.challenges == 2
    assert result.cvm_results == h("440002")
    assert card.pin_tries == 3  # reset by the right PIN


async def test_book3_10_5_1_enciphered_pin_wrong_pin_counts_down() -> None:
    card = ModelCard(oda="DDA", pin_key=True, cvm_list=cvm("4400 1E00"))
    result = await _flow(card, TestPinPad(pin="0000"))
    assert card.pin_tries < 3
    assert result.cvm_results == h("1E0000")
