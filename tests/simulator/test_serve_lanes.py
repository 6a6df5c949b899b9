"""``posgw-sim serve`` with four lanes: each lane's readers see only their own cards.

A private pcscd of its own (not the session one: it needs four reader entries), read with the
native pcsc-lite client (:mod:`drivers.pcsc.client`), which takes the socket path, so this
process's libpcsclite setting is left alone. Each lane's card answers with its own label, so a
cross-wired slot (vpcd's one slot table per driver file, see :mod:`simulator.pcscd`) shows up
as the wrong label, an absent card or a hang.

The cards go in and out following a 4-bit Gray code, forwards then backwards: every one of
the 16 combinations of occupied lanes is reached, each lane's card is inserted and removed
while every other combination of the other lanes holds, and after each step every reader of
every lane is checked. A second test takes the lanes' contact cards in and out in all 24
orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.pcsc.client import PcscClient
from drivers.pcsc.common import PROTOCOL_T0, PROTOCOL_T1, SHARE_SHARED
from drivers.pcsc.native_monitor import card_present
from drivers.pcsc.wire import ReaderState
from simulator.pcscd import PrivatePcscd
from simulator.serve import DeviceServer, LaneConfig
from simulator.vpcd import ATR_T0, ATR_T1, contactless_atr

pytestmark = pytest.mark.pcsc

GET_LABEL = bytes.fromhex("00CA000000")  # case 2, Le=00: a T=0 lane answers 6Cxx first
LANES = (
    LaneConfig(1, "posgw Four 1", protocol="T=0"),
    LaneConfig(2, "posgw Four 2", protocol="T=1"),
    LaneConfig(3, "posgw Four 3", protocol="T=0"),
    LaneConfig(4, "posgw Four 4", protocol="T=1"),
)


class LabelCard:
    """A card that answers every command with its own label (which lane, which card)."""

    def __init__(self, label: str) -> None:
        self.label = label.encode()

    def process(self, capdu: bytes) -> bytes:
        return self.label + b"\x90\x00"


def gray_code(bits: int) -> list[int]:
    """The reflected binary Gray code: consecutive values differ in exactly one bit."""
    return [n ^ (n >> 1) for n in range(1 << bits)]


def test_gray_code_visits_every_combination_one_toggle_at_a_time() -> None:
    codes = gray_code(4)
    assert sorted(codes) == list(range(16))
    assert all(bin(a ^ b).count("1") == 1 for a, b in itertools.pairwise(codes))


@contextlib.asynccontextmanager
async def _client(path: Path) -> AsyncIterator[tuple[PcscClient, int]]:
    client = await PcscClient.open(str(path))
    context = await client.establish_context()
    try:
        yield client, context
    finally:
        await client.release_context(context)
        await client.aclose()


async def _table(client: PcscClient) -> dict[str, ReaderState]:
    return {entry.name: entry for entry in await client.reader_states() if entry.name}


async def _wait_table(path: Path, expected: dict[str, bytes | None]) -> dict[str, ReaderState]:
    """Wait (on pcscd's change events, bounded) until each reader shows the expected ATR."""
    async with _client(path) as (events, _context):
        async with asyncio.timeout(15):
            while True:
                table = {e.name: e for e in await events.register_for_events() if e.name}
                seen = {
                    name: (table[name].atr if card_present(table[name]) else None)
                    for name in expected
                }
                if seen == expected:
                    return table
                await events.next_event()


async def _label(client: PcscClient, context: int, reader: str) -> bytes:
    card, protocol = await client.connect(context, reader, SHARE_SHARED, PROTOCOL_T0 | PROTOCOL_T1)
    try:
        rv, rapdu = await client.transmit(card, protocol, GET_LABEL)
        assert rv == 0, hex(rv)
        if rapdu[0] == 0x6C:  # T=0: wrong Le, the card tells the right one (ISO 7816-3)
            rv, rapdu = await client.transmit(card, protocol, GET_LABEL[:4] + rapdu[1:2])
        assert rapdu[-2:] == b"\x90\x00", rapdu.hex()
        return rapdu[:-2]
    finally:
        await client.disconnect(card, 0)


async def test_four_lanes_each_reader_sees_only_its_own_card(tmp_path: Path) -> None:
    pcscd = PrivatePcscd([lane.reader for lane in LANES], workdir=tmp_path / "pcscd")
    server = DeviceServer(list(LANES), pcscd=pcscd, card_factory=LabelCard)
    await asyncio.to_thread(pcscd.start)
    await server.start()
    try:
        # every reader entry loads its own copy of the vpcd driver
        confs = [conf.read_text().splitlines() for conf in pcscd.confdir.iterdir()]
        libpaths = {line for lines in confs for line in lines if line.startswith("LIBPATH")}
        assert len(libpaths) == len(LANES)
        present: set[tuple[int, str]] = set()  # (lane, "contact" | "contactless")
        steps = gray_code(4) + gray_code(4)[::-1]
        previous = 0
        for step, code in enumerate(steps):
            changed = code ^ previous
            previous = code
            for index, lane in enumerate(LANES):
                if not changed >> index & 1:
                    continue
                # lanes 1-2 use the contact slot, 3-4 alternate contact / contactless by step
                contactless = lane.id >= 3 and step % 2 == 1
                interface = "contactless" if contactless else "contact"
                if code >> index & 1:
                    await server.insert(lane.id, f"lane{lane.id}-{interface}",
                                        contactless=contactless)  # fmt: skip
                    present = {p for p in present if p[0] != lane.id} | {(lane.id, interface)}
                else:
                    await server.remove(lane.id)
                    present = {p for p in present if p[0] != lane.id}
            readers = {lane["lane"]: lane for lane in server.status()["lanes"]}
            expected: dict[str, bytes | None] = {}
            for lane in LANES:
                contact_atr = ATR_T0 if lane.protocol == "T=0" else ATR_T1
                status = readers[lane.id]
                expected[status["contact_reader"]] = (
                    contact_atr if (lane.id, "contact") in present else None
                )
                expected[status["contactless_reader"]] = (
                    contactless_atr() if (lane.id, "contactless") in present else None
                )
            await _wait_table(pcscd.socket_path, expected)
            async with _client(pcscd.socket_path) as (client, context):
                for lane_id, interface in sorted(present):
                    reader = readers[lane_id][f"{interface}_reader"]
                    label = await _label(client, context, reader)
                    assert label == f"lane{lane_id}-{interface}".encode(), (step, reader)
    finally:
        await server.stop()
        await asyncio.to_thread(pcscd.cleanup)


async def test_four_lanes_in_every_insertion_and_removal_order(tmp_path: Path) -> None:
    """All 24 orders: cards go in one lane after another, then out in the same order; every
    reader is checked when all four are in and when two are out. Each card's label names the
    order, so a card left over from an earlier order (or another lane's) cannot pass."""
    pcscd = PrivatePcscd([lane.reader for lane in LANES], workdir=tmp_path / "pcscd")
    server = DeviceServer(list(LANES), pcscd=pcscd, card_factory=LabelCard)
    await asyncio.to_thread(pcscd.start)
    await server.start()
    try:
        readers = {lane["lane"]: lane["contact_reader"] for lane in server.status()["lanes"]}
        atrs = {lane.id: ATR_T0 if lane.protocol == "T=0" else ATR_T1 for lane in LANES}
        for number, order in enumerate(itertools.permutations(LANES)):
            for lane in order:
                await server.insert(lane.id, f"order{number}-lane{lane.id}")
            for present in ([lane.id for lane in order], [lane.id for lane in order[2:]]):
                expected = {readers[i]: (atrs[i] if i in present else None) for i in readers}
                await _wait_table(pcscd.socket_path, expected)
                async with _client(pcscd.socket_path) as (client, context):
                    for lane_id in present:
                        label = await _label(client, context, readers[lane_id])
                        assert label == f"order{number}-lane{lane_id}".encode(), order
                for lane in order[:2]:
                    if lane.id in present:
                        await server.remove(lane.id)
            for lane in order[2:]:
                await server.remove(lane.id)
            # pcscd must have seen the cards go (as with a hand taking them) before the next
            # order puts cards in: else its table still shows the old ones as present
            await _wait_table(pcscd.socket_path, dict.fromkeys(readers.values()))
    finally:
        await server.stop()
        await asyncio.to_thread(pcscd.cleanup)
