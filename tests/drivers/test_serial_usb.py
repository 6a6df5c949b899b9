"""``serial://usb/VID:PID[:SERIAL]``: resolution through pyserial's port listing.

The port list is made of real :class:`serial.tools.list_ports_common.ListPortInfo` entries (what
``comports()`` returns on Linux, filled as its sysfs scan fills them) and injected into the
resolver; the end-to-end case then opens the resolved device, a real pseudo-terminal with the
virtual Concert V2 terminal behind it.
"""

from __future__ import annotations

from typing import Any

import pytest
from serial.tools.list_ports_common import ListPortInfo

from drivers import Money
from drivers.errors import ConfigurationError
from drivers.registry import create_device
from drivers.serial import TerminalUnavailable, resolve_usb
from drivers.serial import create as create_serial

pytestmark = pytest.mark.serial

FAST = ("ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=2"
        "&cancel_grace=0.1&keepalive=0")


def port(device: str, vid: int | None, pid: int | None, serial: str | None) -> ListPortInfo:
    """A port entry as pyserial's Linux scan builds it for a USB CDC-ACM device."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial
    if vid is not None:
        info.manufacturer, info.product = "Ingenico", "Move/5000"
        info.hwid = info.usb_info()
    return info


PORTS = [
    port("/dev/ttyS0", None, None, None),                   # a UART: no USB ids
    port("/dev/ttyACM0", 0x0B00, 0x0080, "12345678"),       # terminal A
    port("/dev/ttyACM1", 0x0B00, 0x0080, "87654321"),       # terminal B, same model
    port("/dev/ttyUSB0", 0x0403, 0x6001, "A50285BI"),       # an FTDI adapter
]


def listing() -> list[ListPortInfo]:
    return list(PORTS)


@pytest.mark.parametrize(("spec", "expected"), [
    ("0B00:0080:12345678", "/dev/ttyACM0"),
    ("0b00:0080:87654321", "/dev/ttyACM1"),   # hex ids in either case
    ("0403:6001", "/dev/ttyUSB0"),            # VID:PID alone when it is unique
    ("0403:6001:A50285BI", "/dev/ttyUSB0"),
    ("0B00:0080:99999999", None),             # that serial number is not plugged in
    ("0B00:0081:12345678", None),             # wrong PID
    ("0403:6001:a50285bi", None),             # the USB serial string is matched exactly
])
def test_resolution_by_vid_pid_serial(spec: str, expected: str | None) -> None:
    assert resolve_usb(spec, ports=listing) == expected


def test_two_devices_of_one_model_are_ambiguous_without_a_serial_number() -> None:
    url = "serial://usb/0B00:0080"
    with pytest.raises(ConfigurationError, match="matches 2 devices") as info:
        resolve_usb("0B00:0080", ports=listing, url=url)
    assert "/dev/ttyACM0" in str(info.value)
    assert "/dev/ttyACM1" in str(info.value)
    assert "serial number" in str(info.value)
    assert info.value.device == url


def test_one_device_listed_twice_is_not_ambiguous() -> None:
    twice = [port("/dev/ttyACM0", 0x0B00, 0x0080, "X1"), port("/dev/ttyACM0", 0x0B00, 0x0080,
                                                               "X1")]
    assert resolve_usb("0B00:0080", ports=lambda: twice) == "/dev/ttyACM0"


@pytest.mark.parametrize("spec", ["0B00", "ZZZZ:0080", ""])
def test_malformed_spec_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_usb(spec, ports=listing)


def test_default_lister_is_pyserial_comports() -> None:
    # No USB terminal on a build machine: whatever comports() lists, this id is not there.
    assert resolve_usb("FFFF:FFFE:posgw-test") is None


async def test_usb_url_opens_the_resolved_device_and_pays(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    ports = [*PORTS, port(tpe.path, 0x0B00, 0x0090, "SIM00001")]
    term = create_device(f"serial://usb/0B00:0090:SIM00001?protocol=concert-v2&{FAST}",
                         ports=lambda: ports)
    async with term:
        assert term.device == tpe.path  # type: ignore[attr-defined]
        result = await term.pay(Money(700, "978"))  # type: ignore[attr-defined]
    assert result.approved
    assert [p.action for p in tpe.brain.processed] == ["payment"]


async def test_ambiguous_usb_url_fails_to_open_with_a_configuration_error() -> None:
    term = create_serial(f"serial://usb/0B00:0080?{FAST}", ports=listing)
    with pytest.raises(ConfigurationError, match="matches 2 devices"):
        await term.open()
    await term.close()


async def test_unplugged_usb_terminal_is_unavailable_until_it_appears(tpe_factory: Any) -> None:
    present: list[ListPortInfo] = []
    url = f"serial://usb/0B00:0090:SIM00002?{FAST}"
    with pytest.raises(TerminalUnavailable, match="no USB serial device"):
        await create_serial(url, ports=lambda: present).open()
    tpe = await tpe_factory()
    present.append(port(tpe.path, 0x0B00, 0x0090, "SIM00002"))  # plugged in
    async with create_serial(url, ports=lambda: present) as term:  # the supervisor's retry
        assert term.device == tpe.path
        assert (await term.pay(Money(100, "978"))).approved
