"""DeviceExecutor: one worker thread per device, results back through the loop's fd watch."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from drivers.errors import DeviceClosed
from drivers.executor import DeviceExecutor


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without fd watching, as Windows' proactor loop: the portable path must serve."""

    def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:  # type: ignore[override]
        raise NotImplementedError


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_results_exceptions_and_one_thread_in_order() -> None:
    executor = DeviceExecutor("test://order")
    seen: list[tuple[int, int]] = []

    def call(index: int) -> int:
        seen.append((index, threading.get_ident()))
        return index * 2

    try:
        results = await asyncio.gather(*(executor.run(call, i) for i in range(300)))
        assert results == [i * 2 for i in range(300)]
        assert [index for index, _ in seen] == list(range(300))
        threads = {ident for _, ident in seen}
        assert len(threads) == 1
        assert threading.get_ident() not in threads
        empty: dict[str, int] = {}
        with pytest.raises(KeyError, match="missing"):
            await executor.run(empty.__getitem__, "missing")
        assert await executor.run(int, "ff", base=16) == 255
    finally:
        await executor.aclose()


async def test_aclose_joins_the_thread_and_closes_the_fd() -> None:
    before = open_fds()
    executor = DeviceExecutor("test://close")
    assert await executor.run(threading.current_thread) is not threading.current_thread()
    assert len(open_fds() - before) == 1  # the wake-up fd
    await executor.aclose()
    await executor.aclose()  # twice is fine
    assert open_fds() <= before
    assert executor.closed
    assert not any(t.name == "test://close" for t in threading.enumerate())
    with pytest.raises(DeviceClosed):
        await executor.run(int)


async def test_a_cancelled_call_does_not_wedge_the_device() -> None:
    executor = DeviceExecutor("test://cancel")
    release = threading.Event()
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    try:
        stuck = asyncio.ensure_future(executor.run(release.wait, 10))
        await asyncio.sleep(0.01)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        release.set()  # its late result must be dropped quietly
        assert await executor.run(len, "abc") == 3
    finally:
        release.set()
        await executor.aclose()
    assert errors == []


async def test_a_result_after_aclose_gave_up_still_arrives() -> None:
    executor = DeviceExecutor("test://late")
    release = threading.Event()
    pending = asyncio.ensure_future(executor.run(lambda: release.wait(10) and "late"))
    await asyncio.sleep(0.01)
    await executor.aclose(patience=0.01)  # the worker is stuck: aclose returns anyway
    assert not pending.done()
    release.set()
    async with asyncio.timeout(5):
        assert await pending == "late"


async def test_a_second_loop_in_another_thread_is_served() -> None:
    executor = DeviceExecutor("test://two-loops")
    try:
        assert await executor.run(len, "ab") == 2  # binds the fast path to this loop

        async def elsewhere() -> list[int]:
            return list(await asyncio.gather(*(executor.run(abs, -i) for i in range(50))))

        assert await asyncio.to_thread(asyncio.run, elsewhere()) == list(range(50))
        assert await executor.run(len, "abc") == 3  # this loop still on its fast path
    finally:
        await executor.aclose()


def test_a_loop_without_add_reader_is_served() -> None:
    executor = DeviceExecutor("test://no-reader")

    async def use() -> list[int]:
        try:
            return list(await asyncio.gather(*(executor.run(abs, -i) for i in range(50))))
        finally:
            await executor.aclose()

    with asyncio.Runner(loop_factory=NoReaderLoop) as runner:
        assert runner.run(use()) == list(range(50))


def test_a_new_loop_after_the_first_closed_takes_the_fast_path_over() -> None:
    executor = DeviceExecutor("test://rebind")
    before = open_fds()
    assert asyncio.run(executor.run(len, "a")) == 1
    assert asyncio.run(executor.run(len, "ab")) == 2
    assert len(open_fds() - before) <= 1  # the first loop's fd was closed on rebinding

    async def close() -> None:
        await executor.aclose()

    asyncio.run(close())
    assert open_fds() <= before
