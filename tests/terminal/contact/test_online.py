"""Online processing, issuer authentication, scripts, completion (EMV 4.4 Book 3, 10.9-10.11)."""

from __future__ import annotations

from terminal.bits import TsiBit, Tvr, TvrBit
from terminal.config import AidConfig, TerminalConfig
from terminal.contact.flow import OnlineResponse
from terminal.contact.scripts import TEMPLATE_AFTER, TEMPLATE_BEFORE, process_scripts
from terminal.environment import TransactionRequest, TransactionType
from terminal.result import Decision
from terminal.tlv import decode
from tests.terminal.contact.flows import flow
from tests.terminal.contact.model_card import CDOL1, ModelCard
from tests.terminal.contact.replay import Authoriser, h, make_txn, steps

ARPC = h("0102030405060708 3030")


def config(**fields) -> TerminalConfig:
    fields.setdefault("tac_online", "0000008000")  # floor limit 0: every transaction online
    aid = AidConfig(aid="A0000000031010", floor_limit=0, **fields)
    return TerminalConfig.default().model_copy(update={"aids": [aid]})


def tvr(result) -> Tvr:
    return Tvr(result.tvr)


async def test_book3_10_9_external_authenticate_success() -> None:
    card = ModelCard(oda="DDA")
    result = await flow(
        card, config=config(), answer=OnlineResponse(approved=True, issuer_authentication_data=ARPC)
    )
    assert result.decision is Decision.APPROVED
    assert any(c[:4] == h("00820000") for c in card.log)
    assert TsiBit.ISSUER_AUTHENTICATION_PERFORMED.mask & result.tsi[0]


async def test_book3_10_9_issuer_authentication_failed() -> None:
    card = ModelCard(oda="DDA", external_auth_sw=h("6300"))
    result = await flow(
        card, config=config(), answer=OnlineResponse(approved=True, issuer_authentication_data=ARPC)
    )
    assert tvr(result).is_set(TvrBit.ISSUER_AUTHENTICATION_FAILED)


async def test_book3_10_9_issuer_authentication_data_in_cdol2() -> None:
    card = ModelCard(oda="DDA", extra={0x8D: h("8A02 910A" + CDOL1)})
    result = await flow(
        card, config=config(), answer=OnlineResponse(approved=True, issuer_authentication_data=ARPC)
    )
    assert result.decision is Decision.APPROVED
    assert not any(c[1] == 0x82 for c in card.log)
    second = [c for c in card.log if c[1] == 0xAE][1]
    assert ARPC in second


async def test_book3_10_9_declined_by_issuer() -> None:
    card = ModelCard(oda="DDA")
    result = await flow(
        card,
        config=config(),
        answer=OnlineResponse(approved=False, authorisation_response_code=b"05"),
    )
    assert result.decision is Decision.DECLINED
    assert [c[2] & 0xC0 for c in card.log if c[1] == 0xAE] == [0x80, 0x00]


async def test_book3_10_9_card_declines_after_issuer_approval() -> None:
    card = ModelCard(oda="DDA", answer_ac2=0x00)
    result = await flow(card, config=config())
    assert result.decision is Decision.DECLINED


async def test_book3_10_7_unable_to_go_online_approves_with_y3() -> None:
    card = ModelCard(oda="DDA")
    result = await flow(card, config=config(), authoriser=Authoriser(None))
    assert result.decision is Decision.APPROVED
    assert result.authorisation_response_code == b"Y3"


async def test_book3_10_7_unable_to_go_online_declines_with_z3() -> None:
    card = ModelCard(oda="DDA", extra={0x9F0D: h("0000008000")})
    result = await flow(card, config=config(), authoriser=Authoriser(None))
    assert result.decision is Decision.DECLINED
    assert result.authorisation_response_code == b"Z3"


def script(template: int, *commands: str, identifier: str = "11223344") -> bytes:
    from terminal.tlv import encode

    body = encode(0x9F18, h(identifier)) + b"".join(encode(0x86, h(c)) for c in commands)
    return encode(template, body)


async def test_book3_10_10_scripts_before_and_after_second_genac() -> None:
    card = ModelCard(oda="DDA")
    scripts = script(0x71, "8418000000") + script(0x72, "841E000000", identifier="55667788")
    result = await flow(
        card, config=config(), answer=OnlineResponse(approved=True, scripts=scripts)
    )
    order = [c[1] for c in card.log if c[1] in (0x18, 0x1E, 0xAE)]
    assert order == [0xAE, 0x18, 0xAE, 0x1E]
    assert result.issuer_script_results == h("2011223344 2055667788")
    assert TsiBit.SCRIPT_PROCESSING_PERFORMED.mask & result.tsi[0]
    assert not tvr(result).is_set(TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENAC)


async def test_book3_10_10_script_failed_before_final_genac() -> None:
    txn, channel = make_txn(
        transcript=steps(
            ("8418000000", "9000", "command 1"),
            ("8424000008 0102030405060708", "6A88", "command 2 fails"),
        )
    )
    data = script(0x71, "8418000000", "8424000008 0102030405060708", "841E000000")
    await process_scripts(txn, data, TEMPLATE_BEFORE)
    channel.assert_consumed()
    assert txn.tvr.is_set(TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENAC)
    assert txn.terminal[0x9F5B] == h("1211223344")


async def test_book3_10_10_script_failed_after_final_genac() -> None:
    txn, channel = make_txn(transcript=steps(("841E000000", "6985", "refused")))
    await process_scripts(txn, script(0x72, "841E000000"), TEMPLATE_AFTER)
    channel.assert_consumed()
    assert txn.tvr.is_set(TvrBit.SCRIPT_FAILED_AFTER_FINAL_GENAC)
    assert txn.terminal[0x9F5B] == h("1111223344")


async def test_book3_10_10_malformed_script_not_performed() -> None:
    txn, _ = make_txn()
    await process_scripts(txn, h("7105 9F1804 1122"), TEMPLATE_BEFORE)
    assert txn.tvr.is_set(TvrBit.SCRIPT_FAILED_BEFORE_FINAL_GENAC)
    assert txn.terminal[0x9F5B] == h("0000000000")


async def test_book3_10_10_warning_status_continues_script() -> None:
    txn, channel = make_txn(
        transcript=steps(("8418000000", "6283", "warning"), ("841E000000", "9000", "next"))
    )
    await process_scripts(txn, script(0x72, "8418000000", "841E000000"), TEMPLATE_AFTER)
    channel.assert_consumed()
    assert txn.terminal[0x9F5B] == h("2011223344")


async def test_purchase_with_cashback_sends_amount_other() -> None:
    card = ModelCard(oda="DDA", extra={0x9F07: h("FF80")})
    request = TransactionRequest(
        amount=3000, amount_other=1000, transaction_type=TransactionType.CASHBACK
    )
    authoriser = Authoriser()
    result = await flow(card, config=config(), request=request, authoriser=authoriser)
    assert result.decision is Decision.APPROVED
    first = next(c for c in card.log if c[1] == 0xAE)
    assert h("000000003000 000000001000") in first
    assert first[5 + 24] == 0x09
    assert h("9F0306000000001000") in authoriser.requests[0].icc_data


async def test_refund_asks_aac_and_the_acquirer_decides() -> None:
    card = ModelCard(oda="DDA")
    request = TransactionRequest(amount=3000, transaction_type=TransactionType.REFUND)
    authoriser = Authoriser()
    result = await flow(card, config=config(), request=request, authoriser=authoriser)
    assert result.decision is Decision.APPROVED
    assert [c[2] for c in card.log if c[1] == 0xAE] == [0x00]
    assert authoriser.requests[0].transaction_type == 0x20
    declined = await flow(
        ModelCard(oda="DDA"), config=config(), request=request, authoriser=Authoriser(None)
    )
    assert declined.decision is Decision.DECLINED


async def test_merchant_forced_online_sets_tvr() -> None:
    card = ModelCard(oda="DDA")
    request = TransactionRequest(amount=1, force_online=True)
    result = await flow(card, request=request)
    assert tvr(result).is_set(TvrBit.MERCHANT_FORCED_ONLINE)
    assert next(c[2] & 0xC0 for c in card.log if c[1] == 0xAE) == 0x80


def test_icc_data_parses_and_never_holds_pan() -> None:
    txn, _ = make_txn({0x5A: h("4761739001010010"), 0x9F26: bytes(8), 0x9F27: h("80")})
    from terminal.contact.online import icc_data

    tags = [obj.tag for obj in decode(icc_data(txn))]
    assert 0x5A not in tags
    assert 0x57 not in tags
    assert tags[:2] == [0x9F26, 0x9F27]
    assert 0x95 in tags
    assert 0x9F37 in tags


async def test_book3_10_7_offline_only_terminal_completes_arqc_with_default_codes() -> None:
    offline = config().model_copy(update={"online_capable": False})
    card = ModelCard(oda="DDA", answer_ac=0x80)
    authoriser = Authoriser()
    result = await flow(card, config=offline, authoriser=authoriser)
    assert authoriser.requests == []
    assert result.authorisation_response_code in (b"Y3", b"Z3")
    assert len([c for c in card.log if c[1] == 0xAE]) == 2
