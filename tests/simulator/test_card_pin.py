"""Card side of VERIFY (plaintext and enciphered) and GET CHALLENGE (EMV 4.4 Book 3, 6.5.12,
6.5.6; Book 2, 7.2), with the PIN try counter kept per card object."""

from __future__ import annotations

import itertools

import pytest

from simulator.card import VirtualCard
from terminal.pinpad import enciphered_pin_data, plaintext_pin_block, verify_command

from .test_card_data import selected
from .test_card_select import send


def verify_plain(card: VirtualCard, pin: str) -> int:
    return int.from_bytes(card.process(verify_command(plaintext_pin_block(pin),
                                                      enciphered=False))[-2:], "big")


def verify_enciphered(card: VirtualCard, pin: str, challenge: bytes | None = None) -> int:
    if challenge is None:
        resp, sw = send(card, "0084000000")
        assert sw == 0x9000
        challenge = resp
    app = card.applications[0]
    key = (app.pin_key or app.icc_key).public()
    data = enciphered_pin_data(pin, challenge, key, lambda n: b"\xa5" * n)
    return int.from_bytes(card.process(verify_command(data, enciphered=True))[-2:], "big")


def test_book3_6_5_12_plaintext_pin_right_and_wrong():
    card = selected("dda_card")
    assert verify_plain(card, "1234") == 0x9000
    assert verify_plain(card, "9999") == 0x63C2
    assert card.pin_tries == 2
    assert verify_plain(card, "1234") == 0x9000
    assert card.pin_tries == 3


def test_pin_try_limit_then_blocked_6983():
    card = selected("dda_card")
    assert [verify_plain(card, "0000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert verify_plain(card, "1234") == 0x6983
    assert send(card, "80CA9F1700") == (bytes.fromhex("9F170100"), 0x9000)


def test_pin_try_counter_persists_across_sessions():
    card = selected("dda_card")
    assert verify_plain(card, "0000") == 0x63C2
    send(card, "00A4040007A000000003101000")  # new session
    assert verify_plain(card, "0000") == 0x63C1


def test_pin_blocked_profile_answers_6983():
    assert verify_plain(selected("pin_blocked"), "1234") == 0x6983


def test_malformed_plaintext_block_and_parameters():
    card = selected("dda_card")
    assert send(card, "0020008008" + "3412" + "34FFFFFFFFFF")[1] == 0x6A80  # control nibble 3
    assert send(card, "0020008008" + "2A" + "12345678FFFFFF")[1] == 0x6A80  # hex digits? no
    assert send(card, "0020008004241234FF")[1] == 0x6700
    assert send(card, "0020008108241234FFFFFFFFFF")[1] == 0x6A86
    assert send(card, "0020018008241234FFFFFFFFFF")[1] == 0x6A86
    assert card.pin_tries == 3  # format errors cost no try


def test_verify_without_selection_is_6985():
    card = VirtualCard.from_profile("dda_card")
    assert verify_plain(card, "1234") == 0x6985


def test_book2_7_2_enciphered_pin_with_pin_key_right_and_wrong():
    card = selected("visa_credit")  # has an ICC PIN encipherment key
    assert verify_enciphered(card, "1234") == 0x9000
    assert verify_enciphered(card, "4321") == 0x63C2
    assert verify_enciphered(card, "1234") == 0x9000


def test_enciphered_pin_under_the_icc_key_when_no_pin_key():
    card = selected("amex")
    assert card.applications[0].pin_key is None
    assert verify_enciphered(card, "1234") == 0x9000


def test_enciphered_pin_needs_a_fresh_challenge():
    card = selected("visa_credit")
    assert verify_enciphered(card, "1234", challenge=b"\x00" * 8) == 0x6985  # none asked
    resp, _ = send(card, "0084000000")
    assert verify_enciphered(card, "1234", challenge=bytes(8)) == 0x63C2  # wrong challenge
    assert verify_enciphered(card, "1234", challenge=resp) == 0x6985  # used up


def test_enciphered_pin_length_must_be_the_modulus_length():
    card = selected("visa_credit")
    send(card, "0084000000")
    assert send(card, "0020008810" + "00" * 16)[1] == 0x6700


def test_enciphered_pin_on_a_card_without_any_key_is_6a88():
    card = selected("sda_legacy")
    send(card, "0084000000")
    assert send(card, "0020008810" + "00" * 16)[1] == 0x6A88


def test_book3_6_5_6_get_challenge_uses_the_injected_random_source():
    counter = itertools.count()
    card = VirtualCard.from_profile("visa_credit", rng=lambda n: bytes([next(counter)] * n))
    send(card, "00A4040007A000000003101000")
    assert send(card, "0084000000") == (bytes(8), 0x9000)
    assert send(card, "0084000000") == (b"\x01" * 8, 0x9000)
    assert send(card, "0084010000")[1] == 0x6A86


@pytest.mark.parametrize("pin", ["0000", "123456789012"])
def test_wrong_pins_of_any_length_are_wrong(pin):
    assert verify_plain(selected("dda_card"), pin) == 0x63C2
