"""The ids a background task must retry: queued once, passed over on a wake-up or a period.

Shared by the reconciler (sales whose outcome or forwarding is pending) and the refund service
(refunds waiting for the host). Insertion order is kept, so the oldest is tried first.

Several tasks may pass over one queue (the reconciler's forwarder and resolver): each has its
own wake-up, so a wake-up one task took is not lost to another that was busy in a pass. (With
one shared event, the resolver's short passes cleared the wake-ups the forwarder needed, and a
backlog of forwards waited for the next period, 30 s by default: docs/performance.md.)
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
        #: One wake-up per running :meth:`run` (the module docstring).
        self._wakes: set[asyncio.Event] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def add(self, item: str, *, wake: bool = True) -> None:
        """Queue ``item``; wake the loop unless ``wake`` is false (then: the next period)."""
        self._ids[item] = None
        if wake:
            for event in self._wakes:
                event.set()

    def discard(self, item: str) -> None:
        """Drop ``item`` (done, or not this queue's business)."""
        self._ids.pop(item, None)

    def snapshot(self) -> list[str]:
        """The queued ids, oldest first (a copy: a pass may discard while it iterates)."""
        return list(self._ids)

    async def run(
        self,
        one_pass: Callable[[], Awaitable[object]],
        *,
        come_back: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Call ``one_pass`` now, then after each wake-up or ``interval``, until cancelled.

        A wake-up that comes while ``one_pass`` runs starts the next pass as soon as it ends.
        ``come_back``, asked after each pass: seconds within which the next pass is wanted even
        if nothing wakes the loop (None: the ``interval``), for work a pass left to do later.
        """
        wake = asyncio.Event()
        self._wakes.add(wake)
        try:
            while True:
                wake.clear()
                await one_pass()
                soon = come_back()
                wait = self.interval if soon is None else max(0.0, min(self.interval, soon))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await wake.wait()
        finally:
            self._wakes.discard(wake)
