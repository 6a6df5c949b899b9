"""Faults through the real stack, each with a defined typed outcome.

* card removed mid-transaction (the virtual ICC drops while a command is in flight);
* reader unplugged mid-transaction (vpcd gone: pcscd killed under a command);
* pcscd restarted (the backend establishes a new context and serves the card again).
"""

from __future__ import annotations

import asyncio

import pytest

from drivers import (
    CardRemoved,
    DeviceUnavailable,
    NoCard,
    ProtocolError,
    ReaderEventKind,
    ReaderRemoved,
    open_device,
)
from drivers.pcsc import PcscReader
from drivers.pcsc.features import parse_features
from simulator.pcscd import PrivatePcscd
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark
from tests.fixtures.pcsc import AttachIcc, Blocking

pytestmark = [pytest.mark.pcsc, pytest.mark.usefixtures("no_leaks")]


@pytest.fixture(params=["native", "pyscard"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each fault is shown on both backends of ``pcsc://``."""
    return str(request.param)


async def _ready_reader(pcscd: PrivatePcscd, backend: str) -> PcscReader:
    device = await open_device(f"pcsc://{pcscd.readers[0].name}", backend=backend)
    assert isinstance(device, PcscReader)
    return device


async def test_card_removed_mid_transaction(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    card = Blocking()
    icc = await attach_icc(card)
    async with await _ready_reader(pcscd, backend) as reader:
        async with asyncio.timeout(5):
            await reader.wait_for_card()
        in_flight = asyncio.ensure_future(reader.transceive(bytes.fromhex("0099000000")))
        async with asyncio.timeout(5):
            await card.entered.wait()
        await icc.disconnect()
        with pytest.raises(CardRemoved):
            async with asyncio.timeout(10):
                await in_flight
        assert not reader.powered
        with pytest.raises(NoCard):  # the session is over; a new power on finds no card
            await reader.transceive(bytes.fromhex("00010000"))


async def test_reader_unplugged_mid_transaction(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    card = Blocking()
    await attach_icc(card)
    reader = await _ready_reader(pcscd, backend)
    try:
        async with asyncio.timeout(5):
            await reader.wait_for_card()
        events = reader.events()
        in_flight = asyncio.ensure_future(reader.transceive(bytes.fromhex("0099000000")))
        async with asyncio.timeout(5):
            await card.entered.wait()
        pcscd.kill()  # vpcd goes with pcscd: the reader disappears under the command
        with pytest.raises((ReaderRemoved, ProtocolError)) as caught:
            async with asyncio.timeout(10):
                await in_flight
        assert isinstance(caught.value, ReaderRemoved | ProtocolError)
        async with asyncio.timeout(10):
            while (await anext(events)).kind is not ReaderEventKind.READER_REMOVED:
                pass
        assert not reader.reader_present
        with pytest.raises(DeviceUnavailable):
            await reader.power_on()
        await events.aclose()
    finally:
        await reader.close()
        card.release.set()


async def test_pcscd_restart_backend_recovers(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    icc = await attach_icc(Blocking())
    async with await _ready_reader(pcscd, backend) as reader:
        async with asyncio.timeout(5):
            await reader.wait_for_card()
        assert await reader.transceive(bytes.fromhex("00010000")) == b"\x90\x00"
        events = reader.events()
        await asyncio.to_thread(pcscd.restart)
        await icc.disconnect()  # the old vpcd is gone; the card goes into the new one
        await icc.connect()
        async with asyncio.timeout(10):
            kinds = []
            while ReaderEventKind.READER_ADDED not in kinds:
                kinds.append((await anext(events)).kind)
        assert ReaderEventKind.READER_REMOVED in kinds
        async with asyncio.timeout(10):
            await reader.wait_for_card()
        assert await reader.transceive(bytes.fromhex("00010000")) == b"\x90\x00"
        assert reader.reader_present
        await events.aclose()


def test_part10_feature_list() -> None:
    caps = parse_features(bytes.fromhex("0604423300060704423300070A0442330E2A"))
    assert caps.verify_pin_direct
    assert caps.modify_pin_direct
    assert caps.has_pin_pad
    assert caps.features[0x06] == 0x42330006
    assert not parse_features(b"").has_pin_pad
    for bad in ("06", "0603423300", "060442"):
        with pytest.raises(ProtocolError):
            parse_features(bytes.fromhex(bad))
