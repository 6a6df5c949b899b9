"""Threads and the event loop: one executor per device, and a bridge for foreign callbacks.

Blocking libraries (pyscard, pyserial) never run inside an ``async def``: each device owns one
:class:`DeviceExecutor`, a single worker thread, so one device is never used by two threads at
once and calls to it are serialised in submission order. Callbacks that a library fires on its
own threads (pyscard monitors, a blocking read loop) reach the loop through
:class:`LoopBridge`, which drops them quietly once the loop is closed (bleak does the same for
BlueZ/WinRT callbacks). :class:`Watchdog` bounds a device's exchanges with one lazily armed
timer instead of one ``asyncio.timeout`` per call.

The loop-to-thread hop is the driver's whole overhead per APDU (benchmarks/pcsc.py), so the
executor keeps it to two thread wake-ups: a ``SimpleQueue.put`` towards the worker, and one
write on an ``eventfd`` (a pipe off Linux) that the loop watches with ``add_reader``, draining
every finished call in one callback. Loops without ``add_reader`` (Windows' proactor), and a
second loop using the same executor, fall back to ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from drivers.errors import DeviceClosed

__all__ = ["DeviceExecutor", "LoopBridge", "Watchdog", "join_thread"]

P = ParamSpec("P")
T = TypeVar("T")

_ONE = (1).to_bytes(8, sys.byteorder)  # one eventfd increment (any byte wakes a pipe)

#: What the worker hands back: the future, the result, or the exception the call raised.
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """Resolve ``future`` on its loop thread unless it was cancelled (timeout) meanwhile."""
    if future.done():
        return
    if exc is None:
        future.set_result(result)
    else:
        future.set_exception(exc)


class _Waker:
    """Completion channel from one worker thread to one loop: a deque and a wake-up fd."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._done: collections.deque[_Outcome] = collections.deque()
        self._lock = threading.Lock()  # no write after close: the fd number may be reused
        if hasattr(os, "eventfd"):  # Linux: one fd holding a counter
            self._rfd = self._wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - other systems: a non-blocking pipe
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)
        self._finalizer = weakref.finalize(self, _close_fds, {self._rfd, self._wfd})
        try:
            loop.add_reader(self._rfd, self._drain)
        except BaseException:
            self._finalizer()
            raise

    def post(self, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> bool:
        """Worker thread: queue the outcome and wake the loop; False once closed."""
        with self._lock:
            if not self._finalizer.alive:
                return False
            self._done.append((future, result, exc))
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
                os.write(self._wfd, _ONE)
        return True

    def _drain(self) -> None:
        # Read first: an outcome appended after this read comes with a wake-up of its own.
        with contextlib.suppress(BlockingIOError, InterruptedError):
            os.read(self._rfd, 512)
        done = self._done
        while done:
            _settle(*done.popleft())

    def close(self) -> None:
        """Loop thread: stop watching, close the fd, settle what is still queued."""
        if not self.loop.is_closed():
            self.loop.remove_reader(self._rfd)
        with self._lock:
            self._finalizer()
        while self._done:
            future, result, exc = self._done.popleft()
            if not future.get_loop().is_closed():
                _settle(future, result, exc)


def _close_fds(fds: set[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


#: One job: the future to resolve, the call, and the waker of the future's loop (or None).
_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any],
             _Waker | None]  # fmt: skip


class DeviceExecutor:
    """A single worker thread dedicated to one device.

    Leaner than ``run_in_executor`` on a one-thread pool (no concurrent future, no chained
    callbacks): a queue put towards the worker and one fd write back. The thread is created on
    first use and joined by :meth:`aclose`, so a closed device leaves no thread behind.
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
        self._waker: _Waker | None = None
        self._no_waker: asyncio.AbstractEventLoop | None = None  # a loop without add_reader

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

    def _bind(self, loop: asyncio.AbstractEventLoop) -> _Waker | None:
        """The waker for ``loop``: made on first use; None means ``call_soon_threadsafe``."""
        waker = self._waker
        if waker is not None and not waker.loop.is_closed():
            return None  # bound to another live loop: the portable path for this one
        if loop is self._no_waker:
            return None
        if waker is not None:
            waker.close()
        try:
            self._waker = _Waker(loop)
        except (NotImplementedError, OSError):  # proactor loop, or out of fds
            self._waker, self._no_waker = None, loop
        return self._waker

    def _work(self) -> None:
        get = self._queue.get
        while (job := get()) is not None:
            future, fn, args, kwargs, waker = job
            try:
                result, exc = fn(*args, **kwargs), None
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting coroutine
                result, exc = None, error
            if waker is None or not waker.post(future, result, exc):
                with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting
                    future.get_loop().call_soon_threadsafe(_settle, future, result, exc)
            del job, future, result, exc  # hold nothing while idle

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
        waker = self._waker
        if waker is None or waker.loop is not loop:
            waker = self._bind(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((future, fn, args, kwargs, waker))
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
            patience: Seconds to wait for a worker stuck in a blocking call before giving up
                (its late result then reaches the loop through ``call_soon_threadsafe``).
        """
        self.shutdown()
        if self._thread is not None:
            await join_thread(self._thread, patience)
        waker, self._waker = self._waker, None
        if waker is not None:
            if waker.loop is asyncio.get_running_loop() or waker.loop.is_closed():
                waker.close()
            else:  # bound to a loop of another thread: close it there
                with contextlib.suppress(RuntimeError):
                    waker.loop.call_soon_threadsafe(waker.close)


class Watchdog:
    """Bounds one exchange at a time with one lazily armed timer.

    ``asyncio.timeout`` schedules and cancels a timer handle per exchange; an APDU takes a
    fraction of a millisecond and the timeout is seconds, so this keeps one timer that, when it
    fires, either cancels the exchange past its deadline or re-arms for the one in flight (or
    stays unarmed when idle). Same semantics as ``asyncio.timeout``: the task is cancelled and
    the owner turns that cancellation, and only that one, into ``TimeoutError``.
    """

    def __init__(self) -> None:
        """Create an idle, unarmed watchdog."""
        self._task: asyncio.Task[Any] | None = None
        self._deadline = 0.0
        self._cancelling = 0
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> bool:
        """True while an exchange is being watched."""
        return self._task is not None

    def arm(self, task: asyncio.Task[Any], timeout: float) -> None:
        """Watch ``task`` (the current one) for ``timeout`` seconds from now (loop thread)."""
        loop = task.get_loop()
        self._task = task
        self._deadline = deadline = loop.time() + timeout
        self._cancelling = task.cancelling()
        self._expired = False
        handle = self._handle
        if handle is None or self._loop is not loop or deadline < handle.when():
            if handle is not None:  # another loop, or a shorter timeout than the armed one
                handle.cancel()
            self._loop = loop
            self._handle = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._handle = None
        task, loop = self._task, self._loop
        if task is None or loop is None:
            return  # idle: armed again by the next exchange
        if loop.time() >= self._deadline:
            self._expired = True
            task.cancel()
        else:
            self._handle = loop.call_at(self._deadline, self._fire)

    def disarm(self, *, cancelled: bool = False) -> bool:
        """End the watched exchange (idempotent).

        Args:
            cancelled: True when the exchange ended with ``CancelledError``.

        Returns:
            True when that cancellation was the watchdog's, so it must become ``TimeoutError``.
        """
        task, self._task = self._task, None
        if task is None or not self._expired:
            return False
        self._expired = False
        return task.uncancel() <= self._cancelling and cancelled

    def close(self) -> None:
        """Cancel the timer (the device is closing)."""
        self._task = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


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
