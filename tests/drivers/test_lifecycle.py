"""DeviceSupervisor: not ready, jittered backoff, recovery, diagnostics (sim backend)."""

from __future__ import annotations

import asyncio
import json

from drivers import Backoff, DeviceSupervisor, DeviceUnavailable, SupervisorState, open_device
from drivers.base import Device


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.5)
    assert [backoff.delay(n, 0.0) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.delay(2, 0.5) == 3.0  # 4 * (1 - 0.5 * 0.5)


async def test_supervisor_retries_until_ready_then_recovers_from_loss() -> None:
    attempts = 0
    slept: list[float] = []
    clock = iter(range(1000, 2000)).__next__

    async def setup() -> Device:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise DeviceUnavailable("reader not plugged in", device="sim://sup")
        return await open_device("sim://sup")

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    supervisor: DeviceSupervisor[Device] = DeviceSupervisor(
        "lane[1].reader", setup, backoff=Backoff(initial=1.0, maximum=3.0, jitter=0.5),
        random=lambda: 0.0, sleep=fake_sleep, clock=lambda: float(clock()),
    )  # fmt: skip
    assert supervisor.ready_device is None  # not set up yet
    async with asyncio.TaskGroup() as group:
        group.create_task(supervisor.run(), name="lane[1].reader")
        async with asyncio.timeout(5):
            device = await supervisor.wait_ready()
        assert supervisor.ready_device is device
        assert slept == [1.0, 2.0, 3.0]
        diagnostics = supervisor.diagnostics()
        json.dumps(diagnostics)  # JSON-safe for the status page
        assert diagnostics["state"] == "ready"
        assert diagnostics["failures"] == 3
        assert "reader not plugged in" in diagnostics["last_error"]
        assert diagnostics["last_success"] is not None
        supervisor.report_failure(DeviceUnavailable("gone", device="sim://sup"))
        async with asyncio.timeout(5):
            while supervisor.counters["losses"] == 0 or supervisor.device is None:  # noqa: ASYNC110
                await asyncio.sleep(0)
        assert supervisor.device is not device
        assert supervisor.state is SupervisorState.READY
        assert supervisor.diagnostics()["setups"] == 2
        await supervisor.stop()
    assert supervisor.state is SupervisorState.STOPPED
    assert supervisor.ready_device is None
    await supervisor.stop()  # idempotent


async def test_stop_while_setting_up_closes_the_late_device_and_returns() -> None:
    # stop() lands while setup() is still opening the device: run() must not then wait for
    # that device's loss forever, and the device must not stay open.
    entered, release = asyncio.Event(), asyncio.Event()
    opened: list[Device] = []

    async def setup() -> Device:
        entered.set()
        await release.wait()
        device = await open_device("sim://stop-during-setup")
        opened.append(device)
        return device

    supervisor: DeviceSupervisor[Device] = DeviceSupervisor("lane[9].reader", setup)
    async with asyncio.timeout(5), asyncio.TaskGroup() as group:
        group.create_task(supervisor.run(), name="lane[9].reader")
        await entered.wait()
        await supervisor.stop()
        release.set()
    assert supervisor.state is SupervisorState.STOPPED
    assert supervisor.device is None
    assert [d.state.value for d in opened] == ["closed"]


async def test_stop_interrupts_a_backoff_under_way() -> None:
    # The reader is unplugged, so setup fails and the supervisor sleeps an hour before the next
    # try: stop() (daemon shutdown, lane removed) must end run() now, not after the hour.
    attempts: list[int] = []

    async def setup() -> Device:
        attempts.append(1)
        raise DeviceUnavailable("reader unplugged", device="lane[8].reader")

    backing_off = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the real sleep, announced
        backing_off.set()
        await asyncio.sleep(seconds)

    supervisor: DeviceSupervisor[Device] = DeviceSupervisor(
        "lane[8].reader", setup, backoff=Backoff(initial=3600.0, maximum=3600.0), sleep=sleep
    )
    runner = asyncio.ensure_future(supervisor.run())
    async with asyncio.timeout(5):
        await backing_off.wait()
    assert supervisor.next_retry_in is not None and supervisor.next_retry_in >= 1800
    await supervisor.stop()
    async with asyncio.timeout(5):  # an hour without the fix
        await runner
    assert attempts == [1]
    assert supervisor.state is SupervisorState.STOPPED
    assert supervisor.next_retry_in is None  # no retry left scheduled


async def test_state_observer_sees_each_change_and_cannot_break_supervision() -> None:
    seen: list[SupervisorState] = []
    attempts: list[int] = []

    async def setup() -> Device:
        attempts.append(1)
        if len(attempts) == 1:
            raise DeviceUnavailable("not yet", device="lane[7].reader")
        return await open_device("sim://observer")

    def observer(state: SupervisorState) -> None:
        seen.append(state)
        raise RuntimeError("a broken observer")  # logged; supervision goes on

    async def no_wait(_: float) -> None:
        return None

    supervisor: DeviceSupervisor[Device] = DeviceSupervisor("lane[7].reader", setup, sleep=no_wait)
    supervisor.on_state_change = observer
    runner = asyncio.ensure_future(supervisor.run())
    async with asyncio.timeout(5):
        await supervisor.wait_ready()
    await supervisor.stop()
    async with asyncio.timeout(5):
        await runner
    assert seen == [SupervisorState.NOT_READY, SupervisorState.READY, SupervisorState.STOPPED]
