"""Serial payment terminals (Concert V2, Caisse-AP): the ``serial://`` backend.

URLs::

    serial:///dev/ttyACM0?protocol=concert-v2&baud=9600&framing=7E1
    serial:///dev/rfcomm0?protocol=caisse-ap            (Bluetooth SPP: a plain serial device)
    serial://usb/0B00:0080:12345678?protocol=concert-v2  (USB VID:PID[:serial number])

Query options: ``protocol`` (``concert-v2`` default, ``caisse-ap``), ``baud`` (9600),
``framing`` (``7E1`` default, ``8N1``), ``pos`` (POS number, 1), ``answer_timeout`` (120 s),
``cancel_grace`` (2 s), ``keepalive`` (30 s, 0 = off), ``ack_timeout``
(2 s), ``frame_timeout`` (3 s), ``tries`` (3). A malformed URL is a
:class:`~drivers.errors.ConfigurationError`; a USB device that is not plugged in is
:class:`~drivers.serial.results.TerminalUnavailable` when the terminal is opened.

(The package shares its last name with pyserial's ``serial``; imports are absolute, so
``import serial`` inside it is pyserial, as in python-can's ``can.interfaces.serial``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivers.errors import ConfigurationError
from drivers.protocols.link import LinkTimeouts
from drivers.registry import DeviceUrl, parse_url
from drivers.serial.codecs import codec_for
from drivers.serial.line import SerialTerminal
from drivers.serial.results import (
    RequestRejected,
    TerminalBusy,
    TerminalEvent,
    TerminalUnavailable,
)
from drivers.serial.terminal import TpeTerminal

__all__ = [
    "RequestRejected",
    "SerialTerminal",
    "TerminalBusy",
    "TerminalEvent",
    "TerminalOptions",
    "TerminalUnavailable",
    "TpeTerminal",
    "create",
    "parse_options",
    "resolve_usb",
]


@dataclass(frozen=True, slots=True)
class TerminalOptions:
    """The query options common to serial and TCP terminal URLs."""

    protocol: str = "concert-v2"
    pos: int = 1
    answer_timeout: float = 120.0
    cancel_grace: float = 2.0
    keepalive: float | None = 30.0
    link: LinkTimeouts = field(default_factory=LinkTimeouts)


def parse_options(url: str, query: dict[str, str], *, default_protocol: str) -> TerminalOptions:
    """Read the common options out of ``query`` (the keys used are removed).

    Raises:
        ConfigurationError: A number that does not parse, or an unknown protocol.
    """
    def number(key: str, default: float) -> float:
        raw = query.pop(key, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(f"option {key} must be a number", device=url) from None
        if not value >= 0:  # also rejects NaN
            raise ConfigurationError(f"option {key} must be >= 0", device=url)
        return value

    protocol = query.pop("protocol", default_protocol)
    pos = int(number("pos", 1))
    try:
        codec_for(protocol, pos_number=pos)
    except ValueError as exc:
        raise ConfigurationError(str(exc), device=url) from None
    keepalive = number("keepalive", 30.0)
    tries = int(number("tries", 3))
    if tries < 1:
        raise ConfigurationError("option tries must be >= 1", device=url)
    return TerminalOptions(
        protocol=protocol, pos=pos,
        answer_timeout=number("answer_timeout", 120.0),
        cancel_grace=number("cancel_grace", 2.0), keepalive=keepalive or None,
        link=LinkTimeouts(ack=number("ack_timeout", 2.0), frame=number("frame_timeout", 3.0),
                          eot=number("eot_timeout", 1.0), tries=tries))


def resolve_usb(spec: str) -> str | None:
    """Find the device path of a USB serial port from ``VID:PID[:SERIAL]`` (hex ids).

    Blocking (it scans sysfs): run it in the device executor.
    """
    from serial.tools import list_ports

    parts = spec.split(":")
    vid, pid = int(parts[0], 16), int(parts[1], 16)
    serial_number = parts[2] if len(parts) > 2 else None
    for port in list_ports.comports():
        if port.vid == vid and port.pid == pid and (
                serial_number is None or port.serial_number == serial_number):
            return str(port.device)
    return None


class _UsbSerialTerminal(SerialTerminal):
    """A serial terminal whose device path is looked up by USB ids at each open."""

    def __init__(self, *, usb: str, **kwargs: Any) -> None:
        super().__init__(device=f"usb:{usb}", **kwargs)
        self.usb = usb

    async def _connect(self) -> None:
        path = await self.executor.run(resolve_usb, self.usb)
        if path is None:
            raise TerminalUnavailable(f"no USB serial device {self.usb}", device=self.url)
        self.device = path
        await super()._connect()


def create(url: DeviceUrl | str, **kwargs: Any) -> SerialTerminal:
    """Create (not open) the terminal a ``serial://`` URL names.

    Args:
        url: See the module docstring (parsed by :func:`drivers.registry.parse_url`).
        **kwargs: Passed to the terminal (``on_event``, ``clock``).

    Raises:
        ConfigurationError: Malformed URL or option.
    """
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    raw = parsed.raw or str(url)
    if parsed.scheme != "serial":
        raise ConfigurationError("not a serial:// URL", device=raw)
    query = dict(parsed.params)
    opts = parse_options(raw, query, default_protocol="concert-v2")
    framing = query.pop("framing", "7E1").upper()
    if framing not in ("7E1", "8N1"):
        raise ConfigurationError("framing must be 7E1 or 8N1", device=raw)
    try:
        baud = int(query.pop("baud", "9600"))
    except ValueError:
        raise ConfigurationError("baud must be an integer", device=raw) from None
    if query:
        raise ConfigurationError(f"unknown option(s): {', '.join(sorted(query))}", device=raw)
    common: dict[str, Any] = dict(
        url=raw, codec=codec_for(opts.protocol, pos_number=opts.pos), baud=baud,
        seven_e1=framing == "7E1", link=opts.link, answer_timeout=opts.answer_timeout,
        cancel_grace=opts.cancel_grace, keepalive=opts.keepalive, **kwargs)
    target = parsed.target
    if target.startswith("usb/"):
        spec = target[4:]
        fields = spec.split(":")
        if len(fields) not in (2, 3) or not all(
                len(f) == 4 and all(c in "0123456789abcdefABCDEF" for c in f)
                for f in fields[:2]):
            raise ConfigurationError("USB device must be VID:PID[:SERIAL] in hex", device=raw)
        return _UsbSerialTerminal(usb=spec, name=f"tpe[usb:{spec}]", **common)
    if not target.startswith("/"):
        raise ConfigurationError("serial URL needs an absolute device path", device=raw)
    return SerialTerminal(device=target, name=f"tpe[{target}]", **common)
