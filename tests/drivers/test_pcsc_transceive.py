"""Both PC/SC backends through the real pcscd + vpcd stack: events, T=1 and T=0 exchanges."""

from __future__ import annotations

import asyncio

import pytest

from drivers import NoCard, ReaderEventKind, open_device
from drivers.pcsc import PcscReader
from simulator.pcscd import PrivatePcscd
from simulator.vpcd import ATR_T0, ATR_T1
from terminal.transport import exchange
from tests.fixtures.pcsc import AttachIcc

pytestmark = pytest.mark.pcsc

SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
FCI = bytes.fromhex("6F1A840E315041592E5359532E4444463031A5088801025F2D02656E")


class Applet:
    """Answers SELECT with an FCI, READ RECORD (case 2) with 300 bytes, echo otherwise."""

    def process(self, capdu: bytes) -> bytes:
        if capdu[1] == 0xA4:
            return FCI + b"\x90\x00"
        if capdu[1] == 0xB2:
            return bytes(range(256))[:200] + b"\x90\x00"
        return capdu[5:-1] + b"\x90\x00" if len(capdu) > 5 else b"\x90\x00"


@pytest.fixture(params=["native", "pyscard"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test runs on both backends of ``pcsc://``."""
    return str(request.param)


async def _open(pcscd: PrivatePcscd, backend: str, **options: object) -> PcscReader:
    device = await open_device(f"pcsc://{pcscd.readers[0].name}", backend=backend, **options)
    assert isinstance(device, PcscReader)
    assert device.backend == backend
    return device


async def test_t1_transceive_and_card_events(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    async with await _open(pcscd, backend) as reader:
        assert reader.reader_present
        assert not reader.card_present
        with pytest.raises(NoCard):
            await reader.power_on()
        events = reader.events()
        pending = asyncio.ensure_future(anext(events))
        await attach_icc(Applet())
        async with asyncio.timeout(5):
            event = await pending
        assert event.kind is ReaderEventKind.CARD_INSERTED
        assert event.atr == ATR_T1
        assert await reader.wait_for_card() == ATR_T1
        assert reader.protocol == "T=1"
        assert await reader.transceive(SELECT_PSE) == FCI + b"\x90\x00"
        response = await exchange(reader, SELECT_PSE)
        assert response.data == FCI
        assert response.sw == 0x9000
        assert reader.diagnostics()["apdus"] == 2
        await reader.power_off()
        await events.aclose()


async def test_glob_pattern_picks_reader(pcscd: PrivatePcscd, backend: str) -> None:
    async with await open_device("pcsc://posgw*01", backend=backend) as reader:
        assert reader.name == pcscd.readers[1].name


async def test_t0_get_response_and_wrong_le(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    await attach_icc(Applet(), protocol="T=0")
    async with await _open(pcscd, backend) as reader:
        async with asyncio.timeout(5):
            assert await reader.wait_for_card() == ATR_T0
        assert reader.protocol == "T=0"
        # case 4 on T=0: the card announces its data with 61xx ...
        raw = await reader.transceive(SELECT_PSE)
        assert raw == bytes((0x61, len(FCI)))
        # ... and the transport layer fetches it with GET RESPONSE through the real stack
        response = await exchange(reader, SELECT_PSE)
        assert response.data == FCI
        assert response.sw == 0x9000
        # case 2 with the wrong Le: 6Cxx, then re-issued with the right Le
        read_record = bytes.fromhex("00B2010C00")
        assert await reader.transceive(read_record) == b"\x6c\xc8"
        response = await exchange(reader, read_record)
        assert response.data == bytes(range(200))
        assert response.sw == 0x9000


async def test_exclusive_access_refuses_second_client(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, backend: str
) -> None:
    from drivers import DeviceBusy

    await attach_icc(Applet())
    other = "pyscard" if backend == "native" else "native"  # across backends, too
    async with (
        await _open(pcscd, backend) as first,
        await _open(pcscd, other, share="shared") as second,
    ):
        async with asyncio.timeout(5):
            await first.wait_for_card()
        with pytest.raises(DeviceBusy):
            await second.power_on()
        assert first.pin_pad.has_pin_pad is False  # vpcd has no Part 10 features
