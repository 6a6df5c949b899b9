"""What every backend promises, checked on each: pcsc, serial (path and USB id), tcp, sim.

* ``close()`` may be called any number of times, before or after ``open()``; a closed device
  cannot be reopened (``DeviceClosed``) and leaves no thread or file descriptor behind;
* ``diagnostics()``, the device's and its supervisor's, survive a JSON round trip unchanged
  (plain str/int/float/bool/None/list/dict only), open and closed;
* a backend whose library is missing is a ``ConfigurationError`` naming what to install.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from serial.tools.list_ports_common import ListPortInfo

from drivers import (
    CardReader,
    ConfigurationError,
    Device,
    DeviceClosed,
    DeviceState,
    DeviceSupervisor,
    create_device,
)
from drivers.sim import slot
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = pytest.mark.usefixtures("no_leaks")

FAST = ("ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=2"
        "&cancel_grace=0.1&keepalive=0")


class Ok:
    def process(self, capdu: bytes) -> bytes:
        return b"\x90\x00"


def _json_safe(diagnostics: dict[str, Any]) -> None:
    assert json.loads(json.dumps(diagnostics, allow_nan=False)) == diagnostics


async def _check(backend: str, url: str, **options: Any) -> None:
    """Close twice (never opened, then opened under a supervisor), JSON-safe diagnostics."""
    never_opened = create_device(url, **options)
    _json_safe(never_opened.diagnostics())
    await never_opened.close()
    await never_opened.close()
    assert never_opened.state is DeviceState.CLOSED
    with pytest.raises(DeviceClosed):
        await never_opened.open()

    async def setup() -> Device:
        device = create_device(url, **options)
        await device.open()
        return device

    supervisor: DeviceSupervisor[Device] = DeviceSupervisor(f"common[{backend}]", setup)
    async with asyncio.TaskGroup() as group:
        group.create_task(supervisor.run(), name=f"common[{backend}]")
        async with asyncio.timeout(10):
            device = await supervisor.wait_ready()
        if isinstance(device, CardReader):
            async with asyncio.timeout(10):
                await device.wait_for_card()
            await device.power_on()
        diagnostics = supervisor.diagnostics()
        _json_safe(diagnostics)
        assert diagnostics["state"] == "ready"
        assert diagnostics["device"]["state"] == "open"
        assert diagnostics["device"]["url"] == url
        await device.close()
        await device.close()
        await supervisor.stop()
    assert device.state is DeviceState.CLOSED
    assert device.executor.closed
    _json_safe(device.diagnostics())
    _json_safe(supervisor.diagnostics())
    with pytest.raises(DeviceClosed):
        await device.open()


async def test_sim() -> None:
    slot("common-lane").insert(Ok())
    await _check("sim", "sim://common-lane")


@pytest.mark.pcsc
async def test_pcsc(pcscd: Any, attach_icc: Any) -> None:
    await attach_icc(Ok())
    await _check("pcsc", f"pcsc://{pcscd.readers[0].name}")


@pytest.mark.serial
async def test_serial(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    await _check("serial", f"serial://{tpe.path}?{FAST}")


@pytest.mark.serial
async def test_serial_usb(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    port = ListPortInfo(tpe.path, skip_link_detection=True)
    port.vid, port.pid, port.serial_number = 0x0B00, 0x0090, "COMMON01"
    await _check("serial-usb", f"serial://usb/0B00:0090:COMMON01?{FAST}", ports=lambda: [port])


async def test_tcp(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory()
    await _check("tcp", f"tcp://127.0.0.1:{tpe.port}?{FAST}")


@pytest.mark.parametrize("url", ["serial:///dev/ttyACM0", "tcp://127.0.0.1:8888"])
def test_missing_pyserial_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    prefixes = ("serial.", "drivers.serial", "drivers.tcp_backend")
    for name in [m for m in sys.modules if m == "serial" or m.startswith(prefixes)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "serial", None)  # import serial -> ImportError
    with pytest.raises(ConfigurationError, match="pip install pyserial"):
        create_device(url)
