"""PC/SC Part 10 secure PIN entry: FEATURE_VERIFY_PIN_DIRECT for the EMV offline plaintext PIN,
and FEATURE_MODIFY_PIN_DIRECT detection (drivers/pcsc/pin_verify.py, features.py).

vsmartcard's vpcd has no Part 10 (its readers answer GET_FEATURE_REQUEST with nothing), so these
tests run the real native PC/SC client (drivers/pcsc/client.py) against a stand-in daemon on a
real Unix socket that speaks pcscd's protocol (the ``BrokenDaemon`` server of
test_pcsc_native_client.py, here with a script that behaves as a CCID PIN pad reader does
under libccid): it answers GET_FEATURE_REQUEST with VERIFY/MODIFY control codes, and to
VERIFY_PIN_DIRECT it checks the PIN_VERIFY_STRUCTURE, "types" the PIN of its keypad into the
VERIFY template as the structure says, sends the command to a virtual card and returns the
card's status word. This stands in for hardware we cannot run here; the bytes follow
pcsc-lite's winscard_msg.h and PC/SC Part 10 v2.02.09, 2.5.2.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from drivers import ConfigurationError, ProtocolError
from drivers.pcsc.client import PcscClient
from drivers.pcsc.features import (
    CM_IOCTL_GET_FEATURE_REQUEST,
    FEATURE_MODIFY_PIN_DIRECT,
    FEATURE_VERIFY_PIN_DIRECT,
    parse_features,
)
from drivers.pcsc.pin_verify import (
    EMV_PLAINTEXT_VERIFY_TEMPLATE,
    SW_PIN_CANCELLED,
    SW_PIN_TIMEOUT,
    PinVerifyParameters,
    verify_pin_direct,
    verify_pin_structure,
)
from simulator.card import VirtualCard
from tests.drivers.test_pcsc_native_client import BrokenDaemon
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = [pytest.mark.usefixtures("no_leaks")]

IOCTL_VERIFY = 0x42330006  # libccid: SCARD_CTL_CODE(FEATURE_VERIFY_PIN_DIRECT + 0x330000)
IOCTL_MODIFY = 0x42330007
CONTROL = 0x0A
CONTROL_STRUCT = struct.Struct("<iIIIII")  # card, code, send length, receive length, returned, rv
STRUCTURE_HEADER = struct.Struct("<BBBBBHBBHB3sI")


@dataclass
class CcidPinPad:
    """What the stand-in reader does; ``keypad`` is what the cardholder types on it, in order
    (``"timeout"``: nothing typed in time, ``"cancel"``: the cancel key)."""

    card: VirtualCard
    keypad: list[str]
    features: bytes = struct.pack(">BBI", FEATURE_VERIFY_PIN_DIRECT, 4, IOCTL_VERIFY) + \
        struct.pack(">BBI", FEATURE_MODIFY_PIN_DIRECT, 4, IOCTL_MODIFY)
    received: list[bytes] = field(default_factory=list)
    structures: list[tuple[int, ...]] = field(default_factory=list)

    def verify(self, data: bytes) -> bytes:
        fields = STRUCTURE_HEADER.unpack_from(data)
        (_t1, _t2, fmt, block, length_fmt, min_max, validation, _messages, _lang, _index,
         _prologue, data_length) = fields
        self.structures.append(fields)
        apdu = bytearray(data[STRUCTURE_HEADER.size:])
        if len(apdu) != data_length or validation != 0x02:
            return b"\x6b\x80"
        typed = self.keypad.pop(0)
        if typed == "timeout":
            return SW_PIN_TIMEOUT.to_bytes(2, "big")
        if typed == "cancel":
            return SW_PIN_CANCELLED.to_bytes(2, "big")
        if not (min_max >> 8) <= len(typed) <= (min_max & 0xFF):
            return b"\x6b\x80"
        # bmFormatString: units bytes (bit 7), position (bits 6-3), BCD (bits 1-0 = 01).
        assert fmt & 0x80 and fmt & 0x03 == 0x01 and not fmt & 0x04
        body = apdu[5:]
        position = (fmt >> 3) & 0x0F
        digits = typed + "F" * (-len(typed) % 2)
        packed = bytes.fromhex(digits)
        assert position + len(packed) <= (block & 0x0F)
        body[position : position + len(packed)] = packed
        if len(typed) % 2:  # the last nibble keeps the template's filler
            body[position + len(packed) - 1] |= 0x0F
        # bmPINLengthFormat: units bits (bit 4 clear), position in bits; length size from
        # bmPINBlockString bits 7-4.
        assert not length_fmt & 0x10 and block >> 4 == 4 and length_fmt & 0x0F == 4
        body[0] = (body[0] & 0xF0) | len(typed)
        rapdu = self.card.process(bytes(apdu[:5]) + bytes(body))
        return rapdu[-2:]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            size, command = struct.unpack("<II", await reader.readexactly(8))
            assert command == CONTROL
            body = await reader.readexactly(size)
            card, code, send_length, receive_length, _, _ = CONTROL_STRUCT.unpack(body)
            data = await reader.readexactly(send_length)
            self.received.append(body + data)
            if code == CM_IOCTL_GET_FEATURE_REQUEST:
                answer = self.features
            elif code == IOCTL_VERIFY and self.features:
                answer = self.verify(data)
            else:
                writer.write(CONTROL_STRUCT.pack(card, code, send_length, receive_length, 0,
                                                 0x80100001))  # SCARD_F_INTERNAL_ERROR
                continue
            writer.write(CONTROL_STRUCT.pack(card, code, send_length, receive_length,
                                             len(answer), 0) + answer)


def selected_card(profile: str = "dda_card") -> VirtualCard:
    card = VirtualCard.from_profile(profile)
    aid = card.applications[0].profile.aid.hex()
    assert card.process(bytes.fromhex(f"00A40400{len(aid) // 2:02X}{aid}00"))[-2:] == b"\x90\x00"
    return card


@contextlib.asynccontextmanager
async def pin_pad_reader(pad: CcidPinPad) -> AsyncIterator[PcscClient]:
    async with BrokenDaemon(pad.serve) as daemon:
        client = await PcscClient.open(path=daemon.path)
        try:
            yield client
        finally:
            await client.aclose()


def test_structure_layout() -> None:
    structure = verify_pin_structure(PinVerifyParameters(timeout_s=30, first_key_timeout_s=15))
    assert structure.hex().upper() == (
        "1E0F" "89" "48" "04" "0C04" "02" "01" "0904" "00" "000000" "0D000000"
        "0020008008" "20FFFFFFFFFFFFFF")
    assert structure.endswith(EMV_PLAINTEXT_VERIFY_TEMPLATE)
    with pytest.raises(ValueError, match="4 to 12"):
        PinVerifyParameters(min_digits=3)


async def test_features_detect_verify_and_modify_then_pin_on_the_keypad() -> None:
    card = selected_card()
    pad = CcidPinPad(card, keypad=["1234"])
    async with pin_pad_reader(pad) as client:
        capabilities = parse_features(await client.control(1, CM_IOCTL_GET_FEATURE_REQUEST))
        assert capabilities.verify_pin_direct and capabilities.modify_pin_direct
        assert capabilities.features[FEATURE_VERIFY_PIN_DIRECT] == IOCTL_VERIFY
        sw = await verify_pin_direct(functools.partial(client.control, 1), capabilities)
    assert sw == 0x9000
    assert card.pin_tries == 3
    # The PIN went from the keypad to the card: nothing this process sent holds its digits.
    sent = b"".join(pad.received)
    assert bytes.fromhex("241234FFFFFFFFFF") not in sent and b"\x12\x34" not in sent


async def test_wrong_pin_then_right_counts_tries_on_the_card() -> None:
    card = selected_card()
    pad = CcidPinPad(card, keypad=["9999", "12345", "1234"])
    async with pin_pad_reader(pad) as client:
        capabilities = parse_features(await client.control(1, CM_IOCTL_GET_FEATURE_REQUEST))
        control = functools.partial(client.control, 1)
        sws = [await verify_pin_direct(control, capabilities) for _ in range(3)]
    assert sws == [0x63C2, 0x63C1, 0x9000]
    assert len(pad.structures) == 3


async def test_timeout_and_cancel_on_the_keypad_are_reader_status_words() -> None:
    pad = CcidPinPad(selected_card(), keypad=["timeout", "cancel"])
    async with pin_pad_reader(pad) as client:
        capabilities = parse_features(await client.control(1, CM_IOCTL_GET_FEATURE_REQUEST))
        control = functools.partial(client.control, 1)
        assert await verify_pin_direct(control, capabilities) == SW_PIN_TIMEOUT
        assert await verify_pin_direct(control, capabilities) == SW_PIN_CANCELLED


async def test_reader_without_part_10_is_a_configuration_error() -> None:
    pad = CcidPinPad(selected_card(), keypad=[], features=b"")
    async with pin_pad_reader(pad) as client:
        capabilities = parse_features(await client.control(1, CM_IOCTL_GET_FEATURE_REQUEST))
        assert not capabilities.has_pin_pad
        with pytest.raises(ConfigurationError, match="VERIFY_PIN_DIRECT"):
            await verify_pin_direct(functools.partial(client.control, 1), capabilities)


async def test_an_answer_that_is_not_a_status_word_is_a_protocol_error() -> None:
    async def three_bytes(_code: int, _data: bytes) -> bytes:
        return b"\x90\x00\x00"

    capabilities = parse_features(struct.pack(">BBI", FEATURE_VERIFY_PIN_DIRECT, 4, 1))
    with pytest.raises(ProtocolError, match="3 bytes"):
        await verify_pin_direct(three_bytes, capabilities)
