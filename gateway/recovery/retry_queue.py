"""The ids a background task must retry: queued once, passed over on a wake-up or a period.

Shared by the reconciler (sales whose outcome or forwarding is pending) and the refund service
(refunds waiting for the host). Insertion order is kept, so the oldest is tried first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["RetryQueue"]


class RetryQueue:
    """Pending ids, and the loop that passes over them every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        """Create an empty queue retried every ``interval`` seconds (or when woken)."""
        self.interval = interval
        self._ids: dict[str, None] = {}
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def add(self, item: str, *, wake: bool = True) -> None:
        """Queue ``item``; wake the loop unless ``wake`` is false (then: the next period)."""
        self._ids[item] = None
        if wake:
            self._wake.set()

    def discard(self, item: str) -> None:
        """Drop ``item`` (done, or not this queue's business)."""
        self._ids.pop(item, None)

    def snapshot(self) -> list[str]:
        """The queued ids, oldest first (a copy: a pass may discard while it iterates)."""
        return list(self._ids)

    async def run(self, one_pass: Callable[[], Awaitable[object]]) -> None:
        """Call ``one_pass`` now, then after each wake-up or ``interval``, until cancelled."""
        while True:
            self._wake.clear()
            await one_pass()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
