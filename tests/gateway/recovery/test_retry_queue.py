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
