"""The payment view's one-way flag (gateway/payments/flag.py): asyncio.Event's set, is_set and
wait, with no waiter list kept until someone waits."""

from __future__ import annotations

import asyncio
import tracemalloc

from gateway.payments.flag import Flag


async def test_a_set_flag_is_waited_for_at_once() -> None:
    flag = Flag()
    assert not flag.is_set()
    flag.set()
    flag.set()  # twice: no error, still set
    assert flag.is_set()
    async with asyncio.timeout(1):
        assert await flag.wait() is True


async def test_every_waiter_wakes_when_the_flag_is_set() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)  # let them wait
    assert not any(task.done() for task in waiters)
    flag.set()
    async with asyncio.timeout(1):
        assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag._waiters is None


async def test_a_cancelled_waiter_is_forgotten() -> None:
    flag = Flag()
    gone = asyncio.create_task(flag.wait())
    stays = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert flag._waiters is not None and len(flag._waiters) == 1
    flag.set()
    async with asyncio.timeout(1):
        assert await stays is True


def test_a_flag_costs_a_fraction_of_an_event() -> None:
    def traced(make: type) -> int:
        tracemalloc.start()
        try:
            kept = [make() for _ in range(1000)]
            size = tracemalloc.get_traced_memory()[0]
            del kept
            return size
        finally:
            tracemalloc.stop()

    flags, events = traced(Flag), traced(asyncio.Event)
    assert flags * 4 < events, (flags, events)
