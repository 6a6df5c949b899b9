"""APDUs, status words and the transport procedure (EMV 4.4 Book 1, 9.2-9.4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.apdu import CommandApdu, ResponseApdu, sw_meaning
from terminal.errors import ApduError, TransportError
from terminal.transport import MAX_EXCHANGES, CardChannel, exchange


class ScriptedCard:
    """Answers from a list of expected (C-APDU, R-APDU) pairs; fails on anything else.

    This is a transcript replay, not a mock of a library: the kernel's own transport is under test.
    """

    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]

    async def transceive(self, capdu: bytes) -> bytes:
        assert self.script, f"unexpected command {capdu.hex()}"
        want, answer = self.script.pop(0)
        assert capdu == want, f"expected {want.hex()}, got {capdu.hex()}"
        return answer

    def done(self) -> None:
        assert not self.script, "transcript not consumed"


def test_book1_9_4_1_command_encoding_cases() -> None:
    assert CommandApdu(0x00, 0xB2, 1, 0x0C).encode() == bytes.fromhex("00B2010C")
    assert CommandApdu(0x00, 0xB2, 1, 0x0C, le=256).encode() == bytes.fromhex("00B2010C00")
    select = CommandApdu(0x00, 0xA4, 4, 0, bytes.fromhex("A0000000031010"), 256)
    assert select.encode() == bytes.fromhex("00A4040007A000000003101000")
    assert CommandApdu.parse(select.encode()) == select
    assert CommandApdu.parse(bytes.fromhex("80AE8000020000")).data == b"\x00\x00"


@pytest.mark.parametrize("raw", ["00A4", "00A4040005A0", "00A404000300", "00A40400000102"])
def test_book1_9_4_1_malformed_command_raises(raw: str) -> None:
    with pytest.raises(ApduError):
        CommandApdu.parse(bytes.fromhex(raw))


def test_book1_9_4_2_response_parts_and_meanings() -> None:
    r = ResponseApdu.parse(bytes.fromhex("6F009000"))
    assert r.ok and r.data == b"\x6f\x00" and r.sw == 0x9000
    assert ResponseApdu.parse(bytes.fromhex("6283")).warning
    assert "blocked" in sw_meaning(0x6283)
    assert "2 tries" in sw_meaning(0x63C2)
    assert "GET RESPONSE" in sw_meaning(0x6110)
    with pytest.raises(ApduError):
        ResponseApdu.parse(b"\x90")


async def test_book1_9_3_get_response_on_61xx_collects_all_data() -> None:
    card = ScriptedCard(
        [
            ("00A4040007A000000003101000", "6105"),
            ("00C0000005", "01020304056103"),
            ("00C0000003", "0607089000"),
        ]
    )
    r = await exchange(card, bytes.fromhex("00A4040007A000000003101000"))
    assert r.data == bytes.fromhex("0102030405060708") and r.ok
    card.done()


async def test_book1_9_3_wrong_le_6cxx_reissues_with_le() -> None:
    card = ScriptedCard(
        [("00B2010C00", "6C10"), ("00B2010C10", "70" + "0E" + "5F" * 0 + "00" * 14 + "9000")]
    )
    r = await exchange(card, CommandApdu(0, 0xB2, 1, 0x0C, le=256))
    assert r.ok and len(r.data) == 16
    card.done()


async def test_transport_trace_hook_sees_each_physical_exchange() -> None:
    card = ScriptedCard([("0084000008", "6108"), ("00C0000008", "11223344556677889000")])
    seen: list[tuple[bytes, bytes]] = []
    await exchange(card, bytes.fromhex("0084000008"), trace=lambda c, r, t: seen.append((c, r)))
    assert [c.hex() for c, _ in seen] == ["0084000008", "00c0000008"]


async def test_transport_endless_61xx_is_a_transport_error() -> None:
    class Endless:
        async def transceive(self, capdu: bytes) -> bytes:
            return b"\x61\x01"

    assert isinstance(Endless(), CardChannel)
    with pytest.raises(TransportError, match=str(MAX_EXCHANGES)):
        await exchange(Endless(), bytes.fromhex("00B2010C00"))


async def test_transport_short_response_is_a_transport_error() -> None:
    class Mute:
        async def transceive(self, capdu: bytes) -> bytes:
            return b"\x90"

    with pytest.raises(TransportError, match="no status word"):
        await exchange(Mute(), bytes.fromhex("00B2010C00"))


@settings(max_examples=2_000, deadline=None)
@given(st.binary(max_size=300))
def test_property_command_parse_raises_only_typed_error(raw: bytes) -> None:
    try:
        cmd = CommandApdu.parse(raw)
    except ApduError:
        return
    assert CommandApdu.parse(cmd.encode()) == cmd
