"""The native pcsc-lite client (drivers/pcsc/client.py) and backend against the real pcscd.

Everything here talks to the private pcscd 1.9.9 with vpcd readers of
:mod:`tests.fixtures.pcsc` (IPC protocol 4.4), except the last tests, which need a daemon that
misbehaves: see :class:`BrokenDaemon`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from drivers import DeviceBusy, DriverError, ProtocolError, ReaderRemoved, Timeout, open_device
from drivers.pcsc import NativePcscReader
from drivers.pcsc.client import PcscClient, UnsupportedIpcVersion
from drivers.pcsc.common import PROTOCOL_T1, SHARE_EXCLUSIVE, UNPOWER_CARD
from drivers.pcsc.errors import (
    E_NO_SMARTCARD,
    W_REMOVED_CARD,
    W_RESET_CARD,
    W_UNPOWERED_CARD,
    W_UNRESPONSIVE_CARD,
)
from drivers.pcsc.wire import ReaderState, WireError
from simulator.pcscd import PrivatePcscd
from simulator.vpcd import ATR_T1
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark
from tests.fixtures.pcsc import AttachIcc, Blocking

pytestmark = [pytest.mark.pcsc, pytest.mark.usefixtures("no_leaks")]

LEAVE_CARD = 0x0000  # SCARD_LEAVE_CARD (pcsclite.h)
UNKNOWN_CONTROL = 0x42000000 + 3999  # SCARD_CTL_CODE(3999): no driver knows it
SELECT_PSE = bytes.fromhex("00A404000E315041592E5359532E444446303100")
SLOW = bytes.fromhex("0099000000")  # the Blocking card's slow command
CARD_GONE = {W_REMOVED_CARD, W_RESET_CARD, W_UNPOWERED_CARD, W_UNRESPONSIVE_CARD, E_NO_SMARTCARD}


class Echo:
    """Answers with the command's data and 9000 (and 6A82 to INS 0xA4 with no data)."""

    def process(self, capdu: bytes) -> bytes:
        return capdu[5 : 5 + capdu[4]] + b"\x90\x00" if len(capdu) > 5 else b"\x6a\x82"


@contextlib.asynccontextmanager
async def _client(**options: Any) -> AsyncIterator[PcscClient]:
    client = await PcscClient.open(**options)
    try:
        yield client
    finally:
        await client.aclose()


def _entry(table: tuple[ReaderState, ...], name: str) -> ReaderState:
    return next(entry for entry in table if entry.name == name)


async def _wait_card(client: PcscClient, reader: str) -> None:
    """Until pcscd's table shows the card's ATR (vpcd asked for it a moment before)."""
    async with asyncio.timeout(5):
        while not _entry(await client.reader_states(), reader).atr:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _connect_when_free(client: PcscClient, context: int, reader: str) -> tuple[int, int]:
    """SCardConnect, retried while pcscd still holds an earlier client's exclusive handle.

    pcscd releases a dead client's handles in that client's own thread, after the call it was
    serving returns: a few milliseconds after our socket closed, not before.
    """
    async with asyncio.timeout(5):
        while True:
            try:
                return await client.connect(context, reader, SHARE_EXCLUSIVE, PROTOCOL_T1)
            except DeviceBusy:
                await asyncio.sleep(0.02)


# -- version negotiation ------------------------------------------------------------------


async def test_version_negotiated_down_to_the_daemons(pcscd: PrivatePcscd) -> None:
    # pcscd 1.9.9 answers 4.5 with SCARD_E_SERVICE_STOPPED and its own 4.4 (winscard_svc.c)
    async with _client(versions=((4, 5), (4, 4))) as client:
        assert client.version == (4, 4)
        assert not client.closed
        context = await client.establish_context()  # the connection is usable after it
        await client.release_context(context)
    assert client.closed


async def test_unknown_version_refused(pcscd: PrivatePcscd) -> None:
    with pytest.raises(UnsupportedIpcVersion) as caught:
        await PcscClient.open(versions=((4, 9),))
    message = str(caught.value)
    assert "backend=pyscard" in message
    assert "4.4" in message  # names what the daemon speaks


async def test_no_daemon_is_reader_removed(tmp_path: Path) -> None:
    with pytest.raises(ReaderRemoved):
        await PcscClient.open(str(tmp_path / "nothing.comm"))


# -- a session with the raw client --------------------------------------------------------


async def test_full_session(pcscd: PrivatePcscd, attach_icc: AttachIcc) -> None:
    names = [reader.name for reader in pcscd.readers]
    icc = await attach_icc(Echo())
    async with _client() as client:
        context = await client.establish_context()
        await _wait_card(client, names[0])
        table = {entry.name: entry for entry in await client.reader_states()}
        assert set(names) <= set(table)
        assert table[names[0]].atr == ATR_T1
        assert table[names[1]].atr == b""

        card, protocol = await client.connect(context, names[0], SHARE_EXCLUSIVE, 3)
        assert protocol == PROTOCOL_T1  # the ATR offers T=1 only
        assert await client.status(card) == 0
        rv, rapdu = await client.transmit(card, protocol, SELECT_PSE)
        assert (rv, rapdu) == (0, SELECT_PSE[5:-1] + b"\x90\x00")
        assert icc.apdus >= 1

        with pytest.raises(DriverError) as caught:
            await client.control(card, UNKNOWN_CONTROL, b"\x01")
        assert type(caught.value) is not DriverError  # a typed subclass
        assert "control" in str(caught.value)
        assert not client.closed  # a refused call leaves the connection in step
        rv, rapdu = await client.transmit(card, protocol, bytes.fromhex("00B2010C00"))
        assert (rv, rapdu) == (0, b"\x6a\x82")

        await client.disconnect(card, LEAVE_CARD)
        card, protocol = await client.connect(context, names[0], SHARE_EXCLUSIVE, PROTOCOL_T1)
        await icc.disconnect()  # the card leaves
        async with asyncio.timeout(5):
            while (code := await client.status(card)) == 0:  # noqa: ASYNC110 - no signal
                await asyncio.sleep(0.05)
        assert code in CARD_GONE, f"status 0x{code:08X}"
        rv, rapdu = await client.transmit(card, protocol, SELECT_PSE)
        assert rv != 0
        assert rapdu == b""
        await client.release_context(context)
        assert not client.closed


async def test_event_registration(pcscd: PrivatePcscd, attach_icc: AttachIcc) -> None:
    name = pcscd.readers[0].name
    async with _client() as client:
        table = {entry.name: entry for entry in await client.register_for_events()}
        assert table[name].atr == b""
        waiting = asyncio.ensure_future(client.next_event())
        await asyncio.sleep(0)
        assert not waiting.done()
        await attach_icc(Echo(), wait=False)
        async with asyncio.timeout(5):
            assert await waiting == 0
            # pcscd signals each change (presence, then power-up): read until the ATR shows
            while not (entry := _entry(await client.register_for_events(), name)).atr:
                await client.next_event()
        assert entry.atr == ATR_T1
        assert entry.initialised


# -- cancellation and a dying daemon ------------------------------------------------------


async def test_cancelled_transmit_closes_client(pcscd: PrivatePcscd, attach_icc: AttachIcc) -> None:
    name = pcscd.readers[0].name
    card_model = Blocking()
    await attach_icc(card_model)
    try:
        async with _client() as client:
            context = await client.establish_context()
            await _wait_card(client, name)
            card, protocol = await client.connect(context, name, SHARE_EXCLUSIVE, PROTOCOL_T1)
            in_flight = asyncio.ensure_future(client.transmit(card, protocol, SLOW))
            async with asyncio.timeout(5):
                await card_model.entered.wait()
            in_flight.cancel()
            with pytest.raises(asyncio.CancelledError):
                await in_flight
            assert client.closed
            with pytest.raises(ReaderRemoved):
                await client.status(card)
            with pytest.raises(ReaderRemoved):
                await client.transmit(card, protocol, SELECT_PSE)
            with pytest.raises(ReaderRemoved):
                await client.reader_states()
        card_model.release.set()  # pcscd's transmit returns, then it sees our socket closed
        async with _client() as again:
            context = await again.establish_context()
            card, protocol = await _connect_when_free(again, context, name)
            assert await again.transmit(card, protocol, SELECT_PSE) == (0, b"\x90\x00")
            await again.disconnect(card, UNPOWER_CARD)
    finally:
        card_model.release.set()


async def test_daemon_killed_during_transmit(pcscd: PrivatePcscd, attach_icc: AttachIcc) -> None:
    card_model = Blocking()
    await attach_icc(card_model)
    try:
        async with _client() as client:
            context = await client.establish_context()
            await _wait_card(client, pcscd.readers[0].name)
            card, protocol = await client.connect(
                context, pcscd.readers[0].name, SHARE_EXCLUSIVE, PROTOCOL_T1
            )
            in_flight = asyncio.ensure_future(client.transmit(card, protocol, SLOW))
            async with asyncio.timeout(5):
                await card_model.entered.wait()
            pcscd.kill()  # the fixture starts it again for the next test
            with pytest.raises(ReaderRemoved):
                async with asyncio.timeout(5):
                    await in_flight
            assert client.closed
            with pytest.raises(ReaderRemoved):
                await client.status(card)
    finally:
        card_model.release.set()


# -- the backend ----------------------------------------------------------------------------


async def _native(pcscd: PrivatePcscd, **options: Any) -> NativePcscReader:
    device = await open_device(f"pcsc://{pcscd.readers[0].name}", **options)
    assert isinstance(device, NativePcscReader)
    return device


async def test_backend_timeout_then_new_connection(
    pcscd: PrivatePcscd, attach_icc: AttachIcc
) -> None:
    card_model = Blocking()
    await attach_icc(card_model)
    try:
        async with await _native(pcscd, timeout=0.3) as reader:
            async with asyncio.timeout(5):
                assert await reader.wait_for_card() == ATR_T1
            assert await reader.transceive(SELECT_PSE) == b"\x90\x00"
            with pytest.raises(Timeout):
                await reader.transceive(SLOW)
            assert card_model.entered.is_set()
            assert not reader.powered
            card_model.release.set()
            async with asyncio.timeout(5):
                while True:
                    try:
                        assert await reader.power_on() == ATR_T1
                        break
                    except DeviceBusy:  # pcscd still releasing the old connection's handle
                        await asyncio.sleep(0.02)
            assert await reader.transceive(SELECT_PSE) == b"\x90\x00"
            assert reader.diagnostics()["timeouts"] == 1
    finally:
        card_model.release.set()


async def test_backend_runs_without_a_thread(
    pcscd: PrivatePcscd, attach_icc: AttachIcc, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    original_start = threading.Thread.start

    def recording_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        original_start(thread)

    await attach_icc(Echo())
    before = threading.active_count()
    monkeypatch.setattr(threading.Thread, "start", recording_start)
    reader = await _native(pcscd)
    try:
        async with asyncio.timeout(5):
            await reader.wait_for_card()
        for index in range(50):
            capdu = bytes((0x00, 0xCA, 0x00, index, 1, index))
            assert await reader.transceive(capdu) == bytes((index, 0x90, 0x00))
        during = threading.active_count()
        names = [thread.name for thread in threading.enumerate()]
    finally:
        await reader.close()
    monkeypatch.undo()
    assert started == [], f"threads started by the native backend: {started}"
    assert during == before == threading.active_count()
    assert reader.url not in names


# -- a daemon that misbehaves ---------------------------------------------------------------

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class BrokenDaemon:
    """A Unix-socket server that answers CMD_VERSION like pcscd 1.9.9, then runs a script.

    It stands in for a broken or hostile daemon because the real pcscd cannot be made to
    send a malformed reader table or an oversized answer; the bytes it sends follow the
    structures of pcsc-lite's ``winscard_msg.h``.
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self._dir = Path(tempfile.mkdtemp(prefix="posgw-broken-"))  # short: sun_path limit
        self.path = str(self._dir / "pcscd.comm")
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> BrokenDaemon:
        self._server = await asyncio.start_unix_server(self._serve, self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()  # the scripts' last read ends
        async with asyncio.timeout(5):
            await asyncio.gather(*self._handlers)
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            size, command = struct.unpack("<II", await reader.readexactly(8))
            assert (size, command) == (12, 0x11)
            await reader.readexactly(size)
            writer.write(struct.pack("<iiI", 4, 4, 0))  # version_struct: 4.4, success
            await self._script(reader, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._handlers.discard(task)
            self._writers.discard(writer)


def _reader_entry(name: bytes, atr: bytes, atr_length: int) -> bytes:
    # eventhandler.h READER_STATE: name[128], counter, state, sharing, atr[33], pad, len, proto
    return struct.pack("<128sIIi33s3xII", name, 1, 0x34, 0, atr, atr_length, 2)


async def _table_with_atr_length_40(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await reader.readexactly(8)  # CMD_GET_READERS_STATE
    w.write(_reader_entry(b"bad", ATR_T1, 40) + bytes(15 * 184))
    await reader.read()  # keep the connection until the client closes it


async def _short_table(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(8)
    writer.write(_reader_entry(b"short", ATR_T1, len(ATR_T1)) + bytes(100))  # then hang up


async def _transmit_70000(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    size, _command = struct.unpack("<II", await reader.readexactly(8))
    body = await reader.readexactly(size)
    await reader.readexactly(struct.unpack_from("<I", body, 12)[0])  # the C-APDU
    # transmit_struct: pcbRecvLength = 70,000 (more than MAX_BUFFER_SIZE_EXTENDED), rv = 0
    writer.write(struct.pack("<iIIIIIII", 1, 2, 8, 5, 2, 8, 70_000, 0) + bytes(1000))
    await reader.read()


async def _control_70000(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    size, _command = struct.unpack("<II", await reader.readexactly(8))
    body = await reader.readexactly(size)
    await reader.readexactly(struct.unpack_from("<I", body, 8)[0])
    writer.write(struct.pack("<iIIIII", 1, UNKNOWN_CONTROL, 0, 65548, 70_000, 0))
    await reader.read()


async def test_broken_daemon_short_table() -> None:
    async with BrokenDaemon(_short_table) as daemon, _client(path=daemon.path) as client:
        with pytest.raises(ReaderRemoved):  # the daemon hung up mid-table
            await asyncio.wait_for(client.reader_states(), 5)
        assert client.closed


async def test_broken_daemon_bad_table() -> None:
    script = _table_with_atr_length_40
    async with BrokenDaemon(script) as daemon, _client(path=daemon.path) as client:
        with pytest.raises(WireError, match="ATR length 40"):
            await asyncio.wait_for(client.reader_states(), 5)
        assert client.closed, (
            "PcscClient.reader_states(): a malformed reader table raises WireError but "
            "leaves the connection to the broken daemon open (register_for_events too)"
        )


@pytest.mark.parametrize(
    ("script", "call"),
    [
        (_transmit_70000, lambda client: client.transmit(1, PROTOCOL_T1, SELECT_PSE)),
        (_control_70000, lambda client: client.control(1, UNKNOWN_CONTROL)),
    ],
    ids=["transmit", "control"],
)
async def test_broken_daemon_oversized_answer(
    script: Script, call: Callable[[PcscClient], Awaitable[object]]
) -> None:
    async with BrokenDaemon(script) as daemon, _client(path=daemon.path) as client:
        with pytest.raises(ProtocolError) as caught:
            await asyncio.wait_for(call(client), 5)
        assert isinstance(caught.value, WireError)
        assert "70000" in str(caught.value)
        assert client.closed
        with pytest.raises(ReaderRemoved):
            await client.status(1)
