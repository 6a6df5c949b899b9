"""The retry queue the reconciler and the refund service share (gateway/lanes/retry_queue.py)."""

from __future__ import annotations

import asyncio
import contextlib

from gateway.recovery.retry_queue import RetryQueue


async def test_passes_run_at_once_on_wake_up_and_not_before_the_period() -> None:
    queue = RetryQueue(interval=3600.0)  # a pass by period alone would never come here
    passes: list[list[str]] = []
    passed = asyncio.Event()

    async def one_pass() -> None:
        passes.append(queue.snapshot())
        for item in queue.snapshot():
            if item.startswith("done"):
                queue.discard(item)
        passed.set()

    queue.add("a", wake=False)
    queue.add("done-1", wake=False)
    runner = asyncio.ensure_future(queue.run(one_pass))
    try:
        async with asyncio.timeout(5):
            await passed.wait()  # the first pass comes at once
        passed.clear()
        queue.add("b", wake=False)  # held for the next pass: no wake-up
        await asyncio.sleep(0.05)
        assert not passed.is_set()
        queue.add("done-2")  # wakes the loop
        async with asyncio.timeout(5):
            await passed.wait()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert passes == [["a", "done-1"], ["a", "b", "done-2"]]
    assert len(queue) == 2 and "a" in queue and "done-2" not in queue


async def test_a_wake_up_reaches_every_task_even_one_busy_in_a_pass() -> None:
    # the reconciler's forwarder and resolver pass over one queue: the resolver's short pass
    # must not take the wake-up the forwarder, busy forwarding, needs (it would wait a period)
    queue = RetryQueue(interval=3600.0)
    long_passes: list[list[str]] = []
    short_passes: list[list[str]] = []
    in_long_pass, release, long_passed, short_passed = (asyncio.Event() for _ in range(4))

    async def long_pass() -> None:
        long_passes.append(queue.snapshot())
        if len(long_passes) == 1:
            in_long_pass.set()
            await release.wait()
        long_passed.set()

    async def short_pass() -> None:
        short_passes.append(queue.snapshot())
        short_passed.set()

    queue.add("a", wake=False)
    runners = [asyncio.ensure_future(queue.run(long_pass)),
               asyncio.ensure_future(queue.run(short_pass))]  # fmt: skip
    try:
        async with asyncio.timeout(5):
            await in_long_pass.wait()
            await short_passed.wait()
        short_passed.clear()
        queue.add("b")  # while the long pass runs
        async with asyncio.timeout(5):
            await short_passed.wait()  # the short task passed, its wake-up taken
        release.set()
        async with asyncio.timeout(5):  # the long task's own wake-up is still there
            while len(long_passes) < 2:
                long_passed.clear()
                await long_passed.wait()
    finally:
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner
    assert long_passes == [["a"], ["a", "b"]]
    assert short_passes[-1] == ["a", "b"]


async def test_a_pass_that_left_work_for_later_is_followed_by_one_without_a_wake_up() -> None:
    queue = RetryQueue(interval=3600.0)  # a pass by period alone would never come here
    passes = 0
    second = asyncio.Event()
    due: list[float | None] = [0.01, None]  # the first pass asks to come back; then nothing

    async def one_pass() -> None:
        nonlocal passes
        passes += 1
        if passes == 2:
            second.set()

    runner = asyncio.ensure_future(queue.run(one_pass, come_back=lambda: due.pop(0)))
    try:
        async with asyncio.timeout(5):
            await second.wait()  # came back with no wake-up, long before the period
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert passes == 2 and due == []
