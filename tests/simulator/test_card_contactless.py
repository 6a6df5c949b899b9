"""Contactless virtual cards: Visa qVSDC decisions in GPO (EMV Contactless Book C-3), fDDA,
"see phone" on a phone wallet, try another interface, M/Chip CDA, and the card in the field."""

from __future__ import annotations

import asyncio

import pytest

from simulator.acquirer_inprocess import InProcessAcquirer
from simulator.card import CardInField, VirtualCard
from simulator.cli_pay import fixed_environment, kernel_config, pay_virtual_card
from simulator.issuer import IssuerHost, IssuerPolicy
from terminal.dol import build_dol
from terminal.environment import TransactionRequest
from terminal.tlv import decode, encode, flatten

from .test_card_select import send

PPSE = "00A404000E325041592E5359532E444446303100"


async def pay(
    name: str, acquirer: InProcessAcquirer, *, floor_limit: int | None = None
) -> tuple[dict, bool]:
    """One payment through the real contactless kernel and the in-process issuer."""
    overrides = None if floor_limit is None else {"reader_ctls_floor_limit": floor_limit}
    summary, _trace, approved = await pay_virtual_card(
        VirtualCard.from_profile(name),
        interface="contactless",
        config=kernel_config(aid_overrides=overrides),
        request=TransactionRequest(amount=1250),
        env=fixed_environment(),
        acquirer=acquirer,
        pinpad=None,
    )
    return summary, approved


def qvsdc_gpo(card: VirtualCard, amount: int = 1250, ttq: str = "36000000") -> tuple[dict, int]:
    send(card, PPSE)
    fci, sw = send(card, "00A4040007A000000003101000")
    assert sw == 0x9000
    pdol = flatten(decode(fci))[0x9F38]
    values = {0x9F66: bytes.fromhex(ttq), 0x9F02: bytes.fromhex(f"{amount:012d}"),
              0x9F1A: b"\x02\x50", 0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex("261125"),
              0x9F37: b"\xab\xab\xab\xab"}
    data = encode(0x83, build_dol(pdol, values))
    resp, sw = send(card, "80A80000" + f"{len(data):02X}" + data.hex() + "00")
    return (flatten(decode(resp)) if sw == 0x9000 else {}), sw


def test_book_c3_offline_approval_with_fdda_signature():
    values, sw = qvsdc_gpo(VirtualCard.from_profile("ctls_visa_offline_fdda"))
    assert sw == 0x9000
    assert values[0x9F27] == b"\x40"
    assert values[0x9F69][0] == 0x01
    assert len(values[0x9F4B]) == 128
    assert 0x94 in values


def test_book_c3_online_cryptogram_required_by_the_reader_gives_arqc_without_afl():
    values, _ = qvsdc_gpo(VirtualCard.from_profile("ctls_visa_offline_fdda"), ttq="36800000")
    assert values[0x9F27] == b"\x80"
    assert 0x9F4B not in values
    assert 0x94 not in values


def test_offline_only_reader_gets_an_aac_when_the_card_wants_online():
    values, _ = qvsdc_gpo(VirtualCard.from_profile("ctls_visa_online"), ttq="28000000")
    assert values[0x9F27] == b"\x00"


def test_cvm_required_gives_online_pin_in_the_ctq():
    values, _ = qvsdc_gpo(VirtualCard.from_profile("ctls_visa_online_pin"), 6000, "36400000")
    assert values[0x9F6C][0] & 0x80
    assert values[0x9F27] == b"\x80"


def test_signature_when_the_reader_has_no_online_pin():
    values, _ = qvsdc_gpo(VirtualCard.from_profile("ctls_visa_online_pin"), 6000, "32400000")
    assert values[0x9F6C][0] == 0x40


def test_phone_wallet_see_phone_then_second_tap_with_cdcvm():
    card = VirtualCard.from_profile("ctls_phone_wallet")
    assert qvsdc_gpo(card, 6000, "36C00000")[1] == 0x6986
    values, sw = qvsdc_gpo(card, 6000, "36C00000")
    assert sw == 0x9000
    assert values[0x9F6C][1] & 0x80
    assert qvsdc_gpo(card, 6000, "36C00000")[1] == 0x6986  # each payment needs the phone


def test_phone_wallet_below_the_cvm_limit_needs_no_phone():
    values, sw = qvsdc_gpo(VirtualCard.from_profile("ctls_phone_wallet"), 1000, "36800000")
    assert sw == 0x9000
    assert values[0x9F6C] == b"\x00\x00"


def test_try_another_interface_is_6984():
    assert qvsdc_gpo(VirtualCard.from_profile("ctls_switch_interface"))[1] == 0x6984


async def test_qvsdc_atc_increments_at_gpo_and_arqc_verifies_at_the_issuer():
    card = VirtualCard.from_profile("ctls_visa_online")
    first, _ = qvsdc_gpo(card)
    second, _ = qvsdc_gpo(card)
    assert int.from_bytes(second[0x9F36], "big") == int.from_bytes(first[0x9F36], "big") + 1
    acquirer = InProcessAcquirer()
    summary, approved = await pay("ctls_visa_online", acquirer)
    assert (approved, summary["outcome"], acquirer.requests) == (True, "ONLINE REQUEST", 1)
    assert acquirer.last_arqc_valid is True


def test_generate_ac_is_refused_by_a_qvsdc_application():
    card = VirtualCard.from_profile("ctls_visa_online")
    qvsdc_gpo(card)
    assert send(card, "80AE80000100")[1] == 0x6985


async def test_mchip_cda_offline_and_declined_arqc():
    acquirer = InProcessAcquirer()
    summary, approved = await pay("ctls_mc_cda_offline", acquirer, floor_limit=5000)
    assert (approved, summary["outcome"], acquirer.requests) == (True, "APPROVED", 0)
    assert (summary["oda_method"], summary["oda_verified"]) == ("CDA", True)
    declining = InProcessAcquirer(host=IssuerHost(policy=IssuerPolicy(decline_above=1000)))
    summary, approved = await pay("ctls_mc_cda_online", declining)
    assert (approved, declining.requests, declining.last_arqc_valid) == (False, 1, True)
    assert (summary["oda_method"], summary["oda_verified"]) == ("CDA", True)
    assert summary["authorisation_response_code"] == "51"


async def test_card_in_field_waits_per_exchange_and_counts():
    field = CardInField(VirtualCard.from_profile("ctls_visa_online"), latency_s=0.001)
    rapdu = await field.transceive(bytes.fromhex(PPSE))
    assert rapdu[-2:] == b"\x90\x00"
    assert field.exchanges == 1
    assert "1 ms" in repr(field)


async def test_card_in_field_latency_is_an_await_not_a_block():
    slow = CardInField(VirtualCard.from_profile("ctls_visa_online"), latency_s=0.05)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await slow.transceive(bytes.fromhex(PPSE))
    task.cancel()
    assert ticks > 1  # the loop kept running while the card was "in the field"


def test_card_in_field_rejects_negative_latency():
    with pytest.raises(ValueError, match="negative"):
        CardInField(VirtualCard.from_profile("ctls_visa_online"), latency_s=-1)
