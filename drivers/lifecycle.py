"""Device supervision (Home Assistant's config-entry lifecycle, for one reader or terminal).

:class:`DeviceSupervisor` sets a device up, and when it cannot (or when the device is lost
later) marks it *not ready* and retries with jittered exponential backoff. It keeps the last
success, the last error, since when the current state holds, and counters, and exposes them as
a JSON-safe :meth:`~DeviceSupervisor.diagnostics` dict for the status page and metrics.

A device that can be lost without noticing it (a payment terminal that stops answering while
its line stays open) is watched with a *probe*: an awaitable that raises
:class:`~drivers.errors.DriverError` when the device does not answer. The supervisor probes
once right after each setup (a device that does not answer is not ready) and then every
``probe_interval`` seconds while ready; a failed probe marks the device lost, so it goes
*not ready* and is set up again with backoff.

Randomness, sleep and clock are injected, so a test drives the retry schedule exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from drivers.base import Device
from drivers.errors import DeviceUnavailable, DriverError

__all__ = ["Backoff", "DeviceSupervisor", "SupervisorState"]

log = logging.getLogger("posgw.drivers.lifecycle")

D = TypeVar("D", bound=Device)


class SupervisorState(enum.Enum):
    """Where the supervised device stands."""

    SETTING_UP = "setting_up"
    READY = "ready"
    NOT_READY = "not_ready"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Jittered exponential backoff: ``min(maximum, initial * factor**n) * (1 - jitter * r)``.

    With ``r`` uniform in [0, 1), ``jitter=0.5`` spreads retries of many devices over half the
    delay ("equal jitter"), so a shop's readers do not all hit pcscd at the same instant.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, r: float) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), with random ``r``."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * r)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class DeviceSupervisor(Generic[D]):
    """Keeps one device set up, retrying with backoff; :meth:`run` is a long-lived task."""

    def __init__(
        self,
        name: str,
        setup: Callable[[], Awaitable[D]],
        *,
        backoff: Backoff = Backoff(),
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        on_ready: Callable[[D], Awaitable[None]] | None = None,
        probe: Callable[[D], Awaitable[None]] | None = None,
        probe_interval: float = 30.0,
    ) -> None:
        """Create the supervisor (nothing runs until :meth:`run`).

        Args:
            name: Name in logs and diagnostics (``lane[2].reader``).
            setup: Creates *and opens* the device; raises DriverError when it cannot.
            backoff: Retry schedule.
            random: Uniform [0, 1) source for the jitter.
            sleep: Awaitable sleep (injected in tests).
            clock: Wall clock for the timestamps in diagnostics.
            on_ready: Awaited after each successful setup (subscribe to events, warm up).
            probe: Raises DriverError when the device does not answer (keep-alive); awaited
                after each setup and every ``probe_interval`` seconds while ready.
            probe_interval: Seconds between probes while ready.
        """
        self.name = name
        self._setup = setup
        self._backoff = backoff
        self._random = random
        self._sleep = sleep
        self._clock = clock
        self._on_ready = on_ready
        self._probe = probe
        self._probe_interval = probe_interval
        self.device: D | None = None
        self.state = SupervisorState.SETTING_UP
        self.since = clock()
        self.last_success: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.attempt = 0
        self.next_retry_in: float | None = None
        self.counters = {"setups": 0, "failures": 0, "losses": 0, "probe_failures": 0}
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._state_changed = asyncio.Condition()
        #: Called (on the loop, after the change) with each new state; must not block or raise.
        self.on_state_change: Callable[[SupervisorState], None] | None = None

    async def _set_state(self, state: SupervisorState) -> None:
        if state is not self.state:
            log.info("%s: %s -> %s", self.name, self.state.value, state.value)
            self.state = state
            self.since = self._clock()
            if self.on_state_change is not None:
                try:
                    self.on_state_change(state)
                except Exception:  # an observer's defect never stops supervision
                    log.exception("%s: state observer failed", self.name)
        async with self._state_changed:
            self._state_changed.notify_all()

    def _record_error(self, exc: BaseException | None, what: str) -> None:
        self.last_error = f"{what}: {_describe(exc)}" if exc else what
        self.last_error_at = self._clock()

    async def run(self) -> None:
        """Set up, wait for loss, set up again... until :meth:`stop` (or cancellation)."""
        try:
            while not self._stopping:
                device = await self._try_setup()
                if self._stopping:  # stop() came while setting up: _shutdown closes it
                    break
                if device is None:
                    delay = self._backoff.delay(self.attempt, self._random())
                    self.attempt += 1
                    self.next_retry_in = delay
                    await self._back_off(delay)
                    self.next_retry_in = None
                    continue
                reason = await self._watch(device)
                if self._stopping:
                    break
                self.counters["losses"] += 1
                self._record_error(reason, "lost")
                log.warning("%s: device lost (%s)", self.name, _describe(reason) if reason else "")
                self.device = None
                await self._set_state(SupervisorState.NOT_READY)
                with contextlib.suppress(DriverError, OSError):
                    await device.close()
        finally:
            await self._shutdown()

    async def _watch(self, device: D) -> DriverError | None:
        """Wait until the device is lost, probing it every ``probe_interval`` if a probe is set.

        A failed probe marks the device lost with the probe's error.
        """
        if self._probe is None:
            return await device.wait_lost()
        lost = asyncio.ensure_future(device.wait_lost())
        try:
            while True:
                pause = asyncio.ensure_future(self._sleep(self._probe_interval))
                await asyncio.wait((lost, pause), return_when=asyncio.FIRST_COMPLETED)
                pause.cancel()
                await asyncio.gather(pause, return_exceptions=True)
                if lost.done():
                    return lost.result()
                try:
                    await self._probe(device)
                except DriverError as exc:
                    self.counters["probe_failures"] += 1
                    log.warning("%s: keep-alive failed (%s)", self.name, _describe(exc))
                    device.mark_lost(exc)
        finally:
            lost.cancel()
            await asyncio.gather(lost, return_exceptions=True)

    async def _back_off(self, delay: float) -> None:
        """Sleep ``delay`` seconds before the next setup, or until :meth:`stop` is called."""
        sleeping = asyncio.ensure_future(self._sleep(delay))
        stopping = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, stopping):
                waiter.cancel()
            await asyncio.gather(sleeping, stopping, return_exceptions=True)

    async def _try_setup(self) -> D | None:
        try:
            device = await self._setup()
        except (DriverError, OSError) as exc:
            self.counters["failures"] += 1
            self._record_error(exc, "setup failed")
            log.info("%s: not ready (%s)", self.name, _describe(exc))
            await self._set_state(SupervisorState.NOT_READY)
            return None
        checks = [(hook, what) for hook, what in ((self._on_ready, "ready hook failed"),
                                                  (self._probe, "first keep-alive failed"))
                  if hook is not None]
        for hook, what in checks:
            try:
                await hook(device)
            except (DriverError, OSError) as exc:
                self.counters["failures"] += 1
                self._record_error(exc, what)
                with contextlib.suppress(DriverError, OSError):
                    await device.close()
                await self._set_state(SupervisorState.NOT_READY)
                return None
        self.device = device
        self.attempt = 0
        self.counters["setups"] += 1
        self.last_success = self._clock()
        await self._set_state(SupervisorState.READY)
        return device

    @property
    def ready_device(self) -> D | None:
        """The device if it is ready now, else None (no wait)."""
        return self.device if self.state is SupervisorState.READY else None

    async def wait_ready(self) -> D:
        """Return the device once ready (bound the wait with ``asyncio.timeout``).

        Raises:
            DeviceUnavailable: the supervisor stopped.
        """
        while True:
            if self.state is SupervisorState.STOPPED:
                raise DeviceUnavailable("supervisor stopped", device=self.name)
            device = self.ready_device
            if device is not None:
                return device
            async with self._state_changed:
                await self._state_changed.wait()

    def report_failure(self, exc: DriverError) -> None:
        """Tell the supervisor that a caller found the device unusable: it sets it up again."""
        device = self.device
        if device is not None:
            device.mark_lost(exc)

    async def stop(self) -> None:
        """Stop supervising, close the device (idempotent); ends run(), even mid-backoff."""
        self._stopping = True
        self._stop_requested.set()
        device = self.device
        if device is not None:
            device.mark_lost(DeviceUnavailable("stopping", device=self.name))
        await self._shutdown()

    async def _shutdown(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            with contextlib.suppress(DriverError, OSError):
                await device.close()
        self._stopping = True
        await self._set_state(SupervisorState.STOPPED)

    def diagnostics(self) -> dict[str, Any]:
        """JSON-safe state for the status page: state, since, last success/error, counters."""
        return {
            "name": self.name,
            "state": self.state.value,
            "since": self.since,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "retry_attempt": self.attempt,
            "next_retry_in": self.next_retry_in,
            **self.counters,
            "device": self.device.diagnostics() if self.device is not None else None,
        }
