"""Online PIN blocks under AES DUKPT (terminal/online_pin.py): ISO 9564-1 formats 4 and 0, the
PIN pad side (initial key, counter) against the host side (BDK), and no PIN material in errors
or reprs."""

from __future__ import annotations

import pytest

from terminal.dukpt import DukptError, KeyUsage, Ksn, host_working_key
from terminal.online_pin import (
    TEST_BDK,
    TEST_INITIAL_KEY_ID,
    DukptPinEncipherer,
    decipher_pin_block,
)
from terminal.pinpad import OnlinePinBlock, PinError

PAN = "5413339000001513"
OTHER_BDK = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


@pytest.mark.parametrize(("fmt", "size"), [(4, 16), (0, 8)])
def test_pad_and_host_agree_and_every_block_has_its_own_key(fmt: int, size: int) -> None:
    pad = DukptPinEncipherer.for_testing(fmt=fmt)  # type: ignore[arg-type]
    first = pad.encipher("1234", PAN)
    second = pad.encipher("1234", PAN)
    assert (len(first.block), len(second.block)) == (size, size)
    assert first.fmt == fmt
    assert Ksn.parse(first.ksn) == Ksn(TEST_INITIAL_KEY_ID, 1)
    assert Ksn.parse(second.ksn) == Ksn(TEST_INITIAL_KEY_ID, 2)
    assert first.block != second.block
    assert decipher_pin_block(first, PAN, TEST_BDK) == "1234"
    assert decipher_pin_block(second, PAN + "F", TEST_BDK) == "1234"


def test_format_4_block_is_under_the_published_pin_key_of_its_counter() -> None:
    # Counter 1's AES-128 PIN encryption key is AF8CB133... (X9.24-3-2017 Supplement).
    block = DukptPinEncipherer.for_testing().encipher("987654", PAN)
    key = host_working_key(TEST_BDK, block.ksn, KeyUsage.PIN_ENCRYPTION)
    assert key == bytes.fromhex("AF8CB133A78F8DC2D1359F18527593FB")


@pytest.mark.parametrize("fmt", [4, 0])
def test_wrong_bdk_or_wrong_pan_does_not_give_the_pin(fmt: int) -> None:
    block = DukptPinEncipherer.for_testing(fmt=fmt).encipher("1234", PAN)  # type: ignore[arg-type]
    with pytest.raises(PinError, match="does not decipher"):
        decipher_pin_block(block, PAN, OTHER_BDK)
    if fmt == 4:  # format 0 binds 12 PAN digits only; format 4 the whole PAN
        with pytest.raises(PinError):
            decipher_pin_block(block, "5413339000001521", TEST_BDK)


def test_counter_skips_and_exhausts() -> None:
    pad = DukptPinEncipherer.for_testing(counter=0x1FFFE)
    assert Ksn.parse(pad.encipher("1234", PAN).ksn).counter == 0x20000
    pad = DukptPinEncipherer.for_testing(counter=0xFFFF0000)
    with pytest.raises(DukptError, match="exhausted"):
        pad.encipher("1234", PAN)
    assert pad.counter == 0xFFFF0000


@pytest.mark.parametrize(("pin", "pan"), [("123", PAN), ("12345678901234", PAN), ("12a4", PAN),
                                          ("1234", "12345"), ("1234", "54133390000015AB")])
def test_bad_pin_or_pan_is_a_pin_error_quoting_neither(pin: str, pan: str) -> None:
    pad = DukptPinEncipherer.for_testing()
    with pytest.raises(PinError) as info:
        pad.encipher(pin, pan)
    assert pin not in str(info.value) and pan not in str(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_malformed_blocks_are_typed_errors() -> None:
    good = DukptPinEncipherer.for_testing().encipher("1234", PAN)
    with pytest.raises(PinError, match="16 bytes"):
        decipher_pin_block(OnlinePinBlock(good.block[:8], good.ksn, 4), PAN, TEST_BDK)
    with pytest.raises(DukptError, match="12 bytes"):
        decipher_pin_block(OnlinePinBlock(good.block, good.ksn[:10], 4), PAN, TEST_BDK)
    with pytest.raises(PinError):
        DukptPinEncipherer.for_testing(fmt=1)  # type: ignore[arg-type]


def test_reprs_hide_keys_and_blocks() -> None:
    pad = DukptPinEncipherer.for_testing()
    block = pad.encipher("1234", PAN)
    text = repr(pad) + str(pad) + repr(block)
    assert block.block.hex() not in text.lower() and block.ksn.hex() not in text.lower()
    assert "1273671E" not in text.upper()
