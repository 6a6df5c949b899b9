"""VirtualIcc against a stand-in vpcd on a real socket, and the T=0 behaviour (61xx/6Cxx)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from simulator.vpcd import ATR_T0, ATR_T1, T0Adapter, VirtualIcc, atr_tck, contactless_atr


class Card:
    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> bytes:
        self.resets += 1
        return b""

    def process(self, capdu: bytes) -> bytes:
        if capdu[1] == 0xB2:
            return bytes(300) + b"\x90\x00"
        return bytes.fromhex("6F03840100") + b"\x90\x00"


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _vpcd() -> tuple[asyncio.Server, asyncio.Queue[Streams]]:
    accepted: asyncio.Queue[Streams] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    return server, accepted


async def _ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> bytes:
    writer.write(struct.pack(">H", len(payload)))
    await writer.drain()
    writer.write(payload)  # vpcd sends length and payload in two writes
    (length,) = struct.unpack(">H", await reader.readexactly(2))
    return await reader.readexactly(length)


async def test_framing_control_bytes_and_nodelay() -> None:
    server, accepted = await _vpcd()
    port = server.sockets[0].getsockname()[1]
    card = Card()
    async with server, VirtualIcc(card, port=port) as icc:
        reader, writer = await asyncio.wait_for(accepted.get(), 5)
        assert await _ask(reader, writer, b"\x04") == ATR_T1  # get ATR
        await icc.wait_seen()
        writer.write(b"\x00\x01\x01")  # power on: no answer
        assert await _ask(reader, writer, bytes.fromhex("00A4040000")) == bytes.fromhex(
            "6F038401009000"
        )
        assert icc.powered
        assert card.resets == 1
        assert icc.apdus == 1
        sock = icc._writer.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(5):
            await icc.wait_disconnected()
        assert not icc.connected
        assert not icc.powered
    await icc.disconnect()  # idempotent


async def test_connect_gives_up_with_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError):
        await VirtualIcc(Card(), port=port).connect(retry_for=0.1)


def test_t0_case4_get_response_chain() -> None:
    t0 = T0Adapter()
    assert t0.answer(bytes.fromhex("00A404000200AA00"), bytes(300) + b"\x62\x83") == b"\x61\x00"
    assert t0.get_response(bytes.fromhex("00C0000000")) == bytes(256) + b"\x61\x2c"
    assert t0.get_response(bytes.fromhex("00C0000030")) == b"\x6c\x2c"  # too long: 6Cxx
    assert t0.get_response(bytes.fromhex("00C000002C")) == bytes(44) + b"\x62\x83"
    assert t0.get_response(bytes.fromhex("00C000002C")) is None  # nothing pending


def test_t0_case2_wrong_le_and_status_only() -> None:
    t0 = T0Adapter()
    assert t0.answer(bytes.fromhex("00B2010C00"), bytes(10) + b"\x90\x00") == b"\x6c\x0a"
    assert t0.answer(bytes.fromhex("00B2010C0A"), bytes(10) + b"\x90\x00") == bytes(10) + (
        b"\x90\x00"
    )
    assert t0.answer(bytes.fromhex("00B2010C00"), b"\x6a\x83") == b"\x6a\x83"


def test_atrs() -> None:
    assert bytes.fromhex("3B600000") == ATR_T0
    atr = contactless_atr(b"\x80\x01")
    assert atr[:4] == bytes.fromhex("3B828001")
    checksum = 0
    for byte in atr[1:]:
        checksum ^= byte
    assert checksum == 0  # TCK makes T0..TCK XOR to zero (ISO/IEC 7816-3, 8.2.5)
    with pytest.raises(ValueError):
        VirtualIcc(Card(), protocol="T=2")


def _atr_protocols_and_tck(atr: bytes) -> tuple[set[int], int | None]:
    """Walk an ATR's interface bytes (ISO/IEC 7816-3, 8.2.2-8.2.3): protocols offered, TCK."""
    assert atr[0] in (0x3B, 0x3F)
    y, historical = atr[1] >> 4, atr[1] & 0x0F
    offset, protocols = 2, set()
    while True:
        offset += bin(y & 0x7).count("1")  # TA, TB, TC
        if not y & 0x8:
            break
        td = atr[offset]
        protocols.add(td & 0x0F)
        y, offset = td >> 4, offset + 1
    offset += historical
    protocols = protocols or {0}
    if protocols == {0}:
        assert len(atr) == offset  # T=0 only: no TCK
        return protocols, None
    assert len(atr) == offset + 1, "TCK missing or extra bytes"
    return protocols, atr[offset]


@pytest.mark.parametrize(
    ("atr", "protocols"),
    [(ATR_T1, {1}), (ATR_T0, {0}), (contactless_atr(), {0, 1}),
     (contactless_atr(b"\x80\x4f\x0c"), {0, 1})],
)
def test_atr_carries_its_tck_when_a_protocol_other_than_t0_is_indicated(
    atr: bytes, protocols: set[int]
) -> None:
    """ISO/IEC 7816-3, 8.2.5: the XOR of T0 .. TCK is zero whenever T != 0 is indicated."""
    found, tck = _atr_protocols_and_tck(atr)
    assert found == protocols
    if protocols != {0}:
        assert tck == atr_tck(atr[:-1])
        check = 0
        for byte in atr[1:]:
            check ^= byte
        assert check == 0
