"""A one-way flag for a payment's ``done`` and ``cancel_requested``: set once, awaited by any.

It answers ``set()``, ``is_set()`` and ``wait()`` as :class:`asyncio.Event` does, but keeps no
waiter list until someone waits. The daemon keeps the views of its recent payments
(``gateway/daemon/daemon.py``, ``RECENT``, and the lanes' own), each with two flags; as
``asyncio.Event``s, each with its ``deque``, they were the largest growth of the daemon's memory
under load (about 1,070 of them, 0.4 MB, in ``benchmarks/rss.py --tracemalloc``;
docs/performance.md, "Session 10"). Nothing clears a payment's flag, so there is no ``clear()``.
"""

from __future__ import annotations

import asyncio

__all__ = ["Flag"]


class Flag:
    """Set once; :meth:`wait` returns at once when set, else when :meth:`set` is called."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return f"<Flag {'set' if self._set else 'unset'}>"

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter (on the loop's thread, as ``asyncio.Event``)."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> bool:
        """Return ``True`` once the flag is set (at once if it is)."""
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if self._waiters is not None and waiter in self._waiters:  # cancelled: forget it
                self._waiters.remove(waiter)
