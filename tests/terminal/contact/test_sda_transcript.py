"""The synthetic SDA card of oda_vectors.json replayed byte for byte through the whole flow."""

from __future__ import annotations

from terminal.contact.flow import OnlineResponse, run_contact_transaction
from terminal.environment import TransactionRequest
from terminal.result import Decision
from tests.terminal.contact import sda_card
from tests.terminal.contact.replay import Authoriser, ReplayChannel, TestPinPad, env, h


async def run(channel, answer=None, **request):
    authoriser = Authoriser(
        answer
        or OnlineResponse(
            approved=True,
            authorisation_response_code=b"00",
            issuer_authentication_data=h(sda_card.ARPC),
        )
    )
    result = await run_contact_transaction(
        channel,
        config=sda_card.config(),
        request=TransactionRequest(amount=10000, **request),
        env=env(),
        online=authoriser,
        pinpad=TestPinPad(),
        capk=sda_card.capk_store(),
    )
    return result, authoriser


async def test_sda_card_whole_flow_byte_for_byte() -> None:
    channel = ReplayChannel(sda_card.reading() + sda_card.pin() + sda_card.online_approved())
    result, authoriser = await run(channel)
    channel.assert_consumed()
    assert result.decision is Decision.APPROVED
    assert result.aid == sda_card.AID
    assert result.label == "VISA Classic"
    assert result.masked_pan == "541111******8882"
    assert result.oda_method == "SDA"
    # EMV 4.4 Book 2, 5.3 step 8: the issuer identifier in the issuer certificate (492564)
    # must match the leftmost PAN digits (541111...), "if not, SDA has failed". Every other
    # check of the mock card passes (test_oda_vectors.test_synthetic_sda_card_end_to_end).
    assert result.oda_verified is False
    assert result.tvr == h("4200008000")  # SDA selected+failed; exceeds floor limit
    assert result.tsi == h("F800")
    assert result.cvm_results == h("410302")  # plaintext PIN, if terminal supports, successful
    assert result.cid == h("40")
    assert result.authorisation_response_code == b"00"
    request = authoriser.requests[0]
    assert request.masked_pan == "541111******8882"
    assert h("9F2608 0102030405060708") in request.icc_data
    assert h("9505 4200008000") in request.icc_data
    assert b"\x5a" not in result.icc_data[:1]


async def test_sda_card_trace_is_masked() -> None:
    channel = ReplayChannel(sda_card.reading() + sda_card.pin() + sda_card.online_approved())
    result, _ = await run(channel)
    printed = str(result.to_json()) + repr(result)
    assert "5411118888888882" not in printed
    assert "541111******8882" in printed
    verify = next(e for e in result.trace if e.command == "VERIFY")
    assert "1234" not in verify.capdu[10:]
    assert verify.capdu.endswith("*" * 16)
    assert "SMITH" not in printed
    assert "534D495448" not in printed


async def test_book3_10_9_issuer_declines_second_genac_aac() -> None:
    data = sda_card.cdol_data("4200008000")
    tail = ReplayChannel(
        sda_card.reading()
        + sda_card.pin()
        + [
            *sda_card.steps(
                (f"80AE8000 1D {data} 00", sda_card.ARQC_RESPONSE + "9000", "ARQC"),
                (f"80AE0000 1F 3035 {data} 00", sda_card.AAC_RESPONSE + "9000", "AAC"),
            )
        ]
    )
    result, _ = await run(tail, OnlineResponse(approved=False, authorisation_response_code=b"05"))
    tail.assert_consumed()
    assert result.decision is Decision.DECLINED
    assert result.authorisation_response_code == b"05"


async def test_book3_10_7_unable_to_go_online_default_action_z3() -> None:
    # TVR 4200008000 meets TAC-Default DC4000A800 (SDA failed) -> AAC with Z3.
    data = sda_card.cdol_data("4200008000")
    channel = ReplayChannel(
        sda_card.reading()
        + sda_card.pin()
        + sda_card.steps(
            (f"80AE8000 1D {data} 00", sda_card.ARQC_RESPONSE + "9000", "ARQC"),
            (f"80AE0000 1F 5A33 {data} 00", sda_card.AAC_RESPONSE + "9000", "AAC, 8A=Z3"),
        )
    )
    authoriser = Authoriser(None)
    result = await run_contact_transaction(
        channel,
        config=sda_card.config(),
        request=TransactionRequest(amount=10000),
        env=env(),
        online=authoriser,
        pinpad=TestPinPad(),
        capk=sda_card.capk_store(),
    )
    channel.assert_consumed()
    assert result.decision is Decision.DECLINED
    assert result.authorisation_response_code == b"Z3"
