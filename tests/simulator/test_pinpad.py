"""The virtual PIN pad against the PinPad port and a virtual card: VERIFY plaintext and
enciphered (EMV 4.4 Book 3, 6.5.12; Book 2, 7.2), ISO 9564 format 4 and 0 online PIN blocks
under AES DUKPT, and a sequence of PINs typed one per entry."""

from __future__ import annotations

import pytest
from psec import pinblock

from simulator.card import VirtualCard
from simulator.pinpad import VirtualPinPad
from terminal.dukpt import KeyType, KeyUsage, Ksn, host_working_key
from terminal.online_pin import TEST_BDK, TEST_INITIAL_KEY_ID
from terminal.pinpad import OnlinePinBlock, PinError, PinPad, PinStatus

from .test_card_select import send


def card_send(card: VirtualCard):
    async def send_(capdu: bytes) -> bytes:
        return card.process(capdu)

    return send_


def selected(name: str) -> VirtualCard:
    card = VirtualCard.from_profile(name)
    aid = card.applications[0].profile.aid.hex()
    send(card, f"00A40400{len(aid) // 2:02X}{aid}00")
    return card


def pin_key(card: VirtualCard):
    app = card.applications[0]
    return (app.pin_key or app.icc_key).public()


def test_virtual_pinpad_implements_the_port():
    assert isinstance(VirtualPinPad(), PinPad)


async def test_plaintext_pin_verified_then_wrong():
    card = selected("dda_card")
    pad = VirtualPinPad("1234")
    entry = await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                     challenge=None, tries_left=3)
    assert entry.status is PinStatus.VERIFIED
    pad.type_pin("4321")
    entry = await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                     challenge=None, tries_left=3)
    assert (entry.status, entry.tries_left, entry.sw) == (PinStatus.WRONG, 2, 0x63C2)


async def test_enciphered_pin_with_its_own_get_challenge():
    card = selected("visa_credit")
    pad = VirtualPinPad("1234", random_bytes=lambda n: b"\x33" * n)
    entry = await pad.verify_offline(card_send(card), enciphered=True, icc_key=pin_key(card),
                                     challenge=None, tries_left=None)
    assert entry.status is PinStatus.VERIFIED


async def test_enciphered_pin_with_the_kernels_challenge_wrong_pin():
    card = selected("visa_credit")
    challenge, _ = send(card, "0084000000")
    pad = VirtualPinPad("9999")
    entry = await pad.verify_offline(card_send(card), enciphered=True, icc_key=pin_key(card),
                                     challenge=challenge, tries_left=None)
    assert (entry.status, entry.tries_left) == (PinStatus.WRONG, 2)


async def test_enciphered_pin_needs_a_key():
    with pytest.raises(PinError, match="public key"):
        await VirtualPinPad().verify_offline(card_send(selected("visa_credit")),
                                             enciphered=True, icc_key=None, challenge=None,
                                             tries_left=None)


async def test_last_try_reports_blocked():
    card = selected("dda_card")
    pad = VirtualPinPad("0000")
    statuses = [
        (await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                  challenge=None, tries_left=None)).status
        for _ in range(4)
    ]
    assert statuses == [PinStatus.WRONG, PinStatus.WRONG, PinStatus.BLOCKED, PinStatus.BLOCKED]


@pytest.mark.parametrize(("mode", "status"), [("bypass", PinStatus.BYPASSED),
                                              ("cancel", PinStatus.CANCELLED),
                                              ("not_working", PinStatus.NOT_WORKING)])
async def test_bypass_cancel_not_working_send_nothing(mode, status):
    card = selected("dda_card")
    pad = VirtualPinPad(mode=mode)
    entry = await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                     challenge=None, tries_left=None)
    assert entry.status is status
    assert pad.verify_count == 0
    assert card.pin_tries == 3
    assert (await pad.online_pin(pan="4761739001010010", tries_left=None)).status is status


async def test_online_pin_format_0_checks_with_psec():
    pad = VirtualPinPad("1234", online_format=0)
    block = await pad.online_pin(pan="4761739001010010", tries_left=None)
    assert isinstance(block, OnlinePinBlock)
    assert (block.fmt, len(block.block)) == (0, 8)
    assert Ksn.parse(block.ksn) == Ksn(TEST_INITIAL_KEY_ID, 1)
    assert pad.decrypt_online(block, "4761739001010010") == "1234"
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = host_working_key(TEST_BDK, block.ksn, KeyUsage.PIN_ENCRYPTION, KeyType.TDEA2)
    dec = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()
    clear = dec.update(block.block) + dec.finalize()
    assert pinblock.decode_pinblock_iso_0(clear, "4761739001010010") == "1234"


async def test_online_pin_format_4_is_the_default_and_round_trips():
    pad = VirtualPinPad("987654")
    block = await pad.online_pin(pan="5413339000001513", tries_left=None)
    assert (block.fmt, len(block.block)) == (4, 16)
    key = host_working_key(TEST_BDK, block.ksn, KeyUsage.PIN_ENCRYPTION)
    assert pinblock.decipher_pinblock_iso_4(key, block.block, "5413339000001513") == "987654"
    assert pad.decrypt_online(block, "5413339000001513") == "987654"
    with pytest.raises(PinError):
        pad.decrypt_online(block, "4761739001010010")  # bound to the PAN


async def test_a_sequence_of_pins_one_per_entry_the_last_one_repeated():
    pad = VirtualPinPad("1111,1234")
    pan = "5413339000001513"
    typed = []
    for _ in range(3):
        block = await pad.online_pin(pan=pan, tries_left=None)
        assert isinstance(block, OnlinePinBlock)
        typed.append((pad.decrypt_online(block, pan), Ksn.parse(block.ksn).counter))
    assert typed == [("1111", 1), ("1234", 2), ("1234", 3)]
    # Offline: a wrong PIN then the right one on the card (63C2, then 9000).
    card = selected("dda_card")
    pad = VirtualPinPad(["0000", "1234"])
    first = await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                     challenge=None, tries_left=3)
    second = await pad.verify_offline(card_send(card), enciphered=False, icc_key=None,
                                      challenge=None, tries_left=2)
    assert (first.status, first.sw, second.status) == (PinStatus.WRONG, 0x63C2,
                                                       PinStatus.VERIFIED)


def test_pin_never_shows():
    pad = VirtualPinPad("8642")
    assert "8642" not in repr(pad)
    assert "8642" not in str(pad)
    with pytest.raises(PinError) as info:
        VirtualPinPad("12a4")
    assert "12a4" not in str(info.value)
    with pytest.raises(PinError) as info:
        VirtualPinPad("1234,98x7")
    assert "98x7" not in str(info.value)
    assert "1234" not in repr(VirtualPinPad("1111,1234"))
    with pytest.raises(PinError):
        VirtualPinPad("1234", online_format=1)  # type: ignore[arg-type]
