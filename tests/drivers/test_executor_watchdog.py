"""The exchange timeout of CardReader.transceive: one lazily armed Watchdog per device.

The backend here is a real one in miniature: its card answers on the device thread, or never
(a blocking wait that the test releases), as a reader that lost the card mid-command.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from drivers.base import CardReader
from drivers.errors import Timeout

ANSWER = b"\x6f\x00\x90\x00"


class StallingReader(CardReader):
    """Answers at once while :attr:`answering` is set, else blocks its thread until it is."""

    def __init__(self, *, timeout: float | None) -> None:
        super().__init__(url="test://stall", name="stall", timeout=timeout)
        self.answering = threading.Event()
        self.answering.set()
        self.released = threading.Event()

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _connect(self) -> bytes:
        return b"\x3b\x00"

    async def _disconnect(self) -> None:
        pass

    def _answer(self) -> bytes:
        if not self.answering.is_set():
            self.released.wait(10)
        return ANSWER

    async def _transceive(self, capdu: bytes) -> bytes:
        return await self.executor.run(self._answer)

    async def aclose(self) -> None:
        self.released.set()
        await self.close()


async def test_a_stalled_exchange_times_out_and_ends_the_session() -> None:
    reader = StallingReader(timeout=0.05)
    await reader.open()
    try:
        await reader.power_on()
        assert await reader.transceive(b"\x00\xa4\x04\x00") == ANSWER
        reader.answering.clear()
        with pytest.raises(Timeout, match=r"no answer in 0\.05 s"):
            await reader.transceive(b"\x00\xb2\x01\x0c")
        assert not reader.powered
        assert reader.diagnostics()["timeouts"] == 1
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    finally:
        await reader.aclose()


async def test_the_watchdog_rearms_across_many_exchanges() -> None:
    reader = StallingReader(timeout=0.03)
    await reader.open()
    try:
        await reader.power_on()
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.1  # spans several deadlines: the one timer fires and re-arms
        count = 0
        while loop.time() < end or count < 50:
            assert await reader.transceive(b"\x00\xb2\x01\x0c") == ANSWER
            count += 1
        await asyncio.sleep(0.05)  # idle past a deadline: the timer fires with nothing to do
        assert await reader.transceive(b"\x00\xb2\x01\x0c") == ANSWER
        reader.answering.clear()
        with pytest.raises(Timeout):
            await reader.transceive(b"\x00\xb2\x01\x0c")
        assert reader.diagnostics()["apdus"] == count + 1
    finally:
        await reader.aclose()


async def test_an_outer_cancellation_is_not_a_reader_timeout() -> None:
    reader = StallingReader(timeout=5.0)
    await reader.open()
    try:
        await reader.power_on()
        reader.answering.clear()
        with pytest.raises(TimeoutError) as info:
            async with asyncio.timeout(0.05):
                await reader.transceive(b"\x00\xb2\x01\x0c")
        assert not isinstance(info.value, Timeout)
        assert reader.diagnostics()["timeouts"] == 0
        task = asyncio.ensure_future(reader.transceive(b"\x00\xb2\x01\x0c"))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await reader.aclose()


async def test_concurrent_exchanges_each_get_a_timeout() -> None:
    reader = StallingReader(timeout=0.05)
    await reader.open()
    try:
        await reader.power_on()
        reader.answering.clear()
        outcomes = await asyncio.gather(
            reader.transceive(b"\x00\xb2\x01\x0c"),
            reader.transceive(b"\x00\xb2\x02\x0c"),
            return_exceptions=True,
        )
        assert [type(outcome) for outcome in outcomes] == [Timeout, Timeout]
    finally:
        await reader.aclose()


async def test_no_timeout_means_no_watchdog() -> None:
    reader = StallingReader(timeout=None)
    await reader.open()
    try:
        await reader.power_on()
        reader.answering.clear()
        pending = asyncio.ensure_future(reader.transceive(b"\x00\xb2\x01\x0c"))
        await asyncio.sleep(0.05)
        assert not pending.done()
        reader.released.set()
        async with asyncio.timeout(5):
            assert await pending == ANSWER
    finally:
        await reader.aclose()


async def test_a_shorter_timeout_is_honoured_at_once() -> None:
    reader = StallingReader(timeout=30.0)
    await reader.open()
    try:
        await reader.power_on()
        assert await reader.transceive(b"\x00\xb2\x01\x0c") == ANSWER  # arms for 30 s
        reader.timeout = 0.05
        reader.answering.clear()
        async with asyncio.timeout(5):  # a late watchdog would end here, not in Timeout
            with pytest.raises(Timeout):
                await reader.transceive(b"\x00\xb2\x01\x0c")
    finally:
        await reader.aclose()
