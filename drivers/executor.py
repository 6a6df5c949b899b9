"""Threads and the event loop: one executor per device, and a bridge for foreign callbacks.

Blocking libraries (pyscard, pyserial) never run inside an ``async def``: each device owns one
:class:`DeviceExecutor`, a single worker thread, so one device is never used by two threads at
once and calls to it are serialised in submission order. Callbacks that a library fires on its
own threads (pyscard monitors, a blocking read loop) reach the loop through
:class:`LoopBridge`, which drops them quietly once the loop is closed (bleak does the same for
BlueZ/WinRT callbacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from drivers.errors import DeviceClosed

__all__ = ["DeviceExecutor", "LoopBridge", "join_thread"]

P = ParamSpec("P")
T = TypeVar("T")


class DeviceExecutor:
    """A single worker thread dedicated to one device.

    Leaner than ``run_in_executor`` on a one-thread pool (a queue put, and one
    ``call_soon_threadsafe`` back): the hop is the driver's whole overhead per APDU. The thread
    is created on first use and joined by :meth:`aclose` / :meth:`shutdown`, so a closed device
    leaves no thread behind.
    """

    def __init__(self, name: str) -> None:
        """Create the executor (no thread yet).

        Args:
            name: Thread name, e.g. ``"pcsc://Virtual PCD 00 00"``.
        """
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` or :meth:`aclose` was called."""
        return self._closed

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                raise DeviceClosed("executor shut down", device=self._name)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            loop, future, call = job
            try:
                result = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_set_exception, future, exc)
            else:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_set_result, future, result)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking call on the device thread and await its result.

        Args:
            fn: The blocking callable.
            *args: Positional arguments for ``fn``.
            **kwargs: Keyword arguments for ``fn``.

        Returns:
            What ``fn`` returned; its exception is re-raised here.

        Raises:
            DeviceClosed: when the executor was shut down.
        """
        if self._thread is None or self._closed:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = functools.partial(fn, *args, **kwargs) if args or kwargs else fn
        self._queue.put((loop, future, call))
        return await future

    def shutdown(self) -> None:
        """Stop accepting work; the thread ends after the calls already queued (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)

    async def aclose(self, *, patience: float = 5.0) -> None:
        """Shut down and wait (without blocking the loop) for the worker thread to end.

        Args:
            patience: Seconds to wait for a worker stuck in a blocking call before giving up.
        """
        self.shutdown()
        if self._thread is not None:
            await join_thread(self._thread, patience)


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _set_result(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


async def join_thread(thread: threading.Thread, patience: float = 5.0) -> bool:
    """Wait for ``thread`` to end without blocking the loop; False if still alive after it."""
    deadline = time.monotonic() + patience
    while thread.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110 - polled join
        await asyncio.sleep(0.002)
    return not thread.is_alive()


class LoopBridge:
    """Moves calls from foreign threads onto one event loop.

    Create it on the loop thread; hand :meth:`call` (or a :meth:`wrap`-ped callback) to the
    foreign library. Calls after the loop closed are dropped instead of raising in the foreign
    thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to ``loop`` (default: the running loop)."""
        self._loop = loop or asyncio.get_running_loop()
        self._thread_id = threading.get_ident()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The target loop."""
        return self._loop

    def call(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop; direct call when already on the loop thread."""
        if threading.get_ident() == self._thread_id and self._loop.is_running():
            fn(*args)
            return
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening any more
            self._loop.call_soon_threadsafe(fn, *args)

    def wrap(self, fn: Callable[P, None]) -> Callable[P, None]:
        """Return a thread-safe version of ``fn`` (positional arguments only)."""

        def bridged(*args: P.args, **kwargs: P.kwargs) -> None:
            self.call(functools.partial(fn, *args, **kwargs))

        return bridged
