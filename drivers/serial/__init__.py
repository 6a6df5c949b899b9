"""Serial payment terminals (Concert V2, Caisse-AP): the ``serial://`` backend.

URLs::

    serial:///dev/ttyACM0?protocol=concert-v2&baud=9600&framing=7E1
    serial:///dev/rfcomm0?protocol=caisse-ap            (Bluetooth SPP: a plain serial device)
    serial://bt/00:1A:7D:DA:71:13:1?protocol=caisse-ap  (Bluetooth ADDR:CHANNEL -> its rfcomm)
    serial://usb/0B00:0080:12345678?protocol=concert-v2  (USB VID:PID[:serial number])

Query options: ``protocol`` (``concert-v2`` default, ``caisse-ap``), ``baud`` (9600),
``framing`` (``7E1`` default, ``8N1``), ``pos`` (POS number, 1), ``answer_timeout`` (120 s),
``cancel_grace`` (2 s), ``keepalive`` (30 s, 0 = off), ``ack_timeout``
(2 s), ``frame_timeout`` (3 s), ``tries`` (3). A malformed URL is a
:class:`~drivers.errors.ConfigurationError`; a USB device that is not plugged in is
:class:`~drivers.serial.results.TerminalUnavailable` when the terminal is opened, and so is a
Bluetooth address with no RFCOMM tty bound to it (:mod:`drivers.serial.bluetooth`).

(The package shares its last name with pyserial's ``serial``; imports are absolute, so
``import serial`` inside it is pyserial, as in python-can's ``can.interfaces.serial``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from drivers.errors import ConfigurationError
from drivers.protocols.link import LinkTimeouts
from drivers.registry import DeviceUrl, parse_url
from drivers.serial.bluetooth import BluetoothSerialTerminal, parse_bt, resolve_rfcomm
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
    "BluetoothSerialTerminal",
    "PortLister",
    "RequestRejected",
    "SerialTerminal",
    "TerminalBusy",
    "TerminalEvent",
    "TerminalOptions",
    "TerminalUnavailable",
    "TpeTerminal",
    "create",
    "parse_options",
    "resolve_rfcomm",
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


#: Lists the serial ports now present (pyserial's ``list_ports.comports`` by default).
PortLister = Callable[[], Iterable[Any]]


def _comports() -> Iterable[Any]:
    from serial.tools import list_ports

    return list(list_ports.comports())


def resolve_usb(spec: str, *, ports: PortLister | None = None,
                url: str | None = None) -> str | None:
    """Find the device path of a USB serial port from ``VID:PID[:SERIAL]`` (hex ids).

    Matches pyserial's :class:`~serial.tools.list_ports_common.ListPortInfo` entries on
    ``vid``, ``pid`` and, when given, ``serial_number`` (the USB iSerialNumber string, compared
    exactly). Blocking (pyserial scans sysfs): run it in the device executor.

    Args:
        spec: ``VID:PID`` or ``VID:PID:SERIAL``, ids in hex (``0B00:0080:12345678``).
        ports: Returns the ports present; pyserial's ``comports()`` by default.
        url: The device URL, for error messages.

    Returns:
        The device path (``/dev/ttyACM0``), or None when no such device is plugged in.

    Raises:
        ConfigurationError: A malformed spec, or several devices match (two terminals of the
            same model without a serial number in the URL): the URL must name one device.
    """
    parts = spec.split(":", 2)
    try:
        vid, pid = int(parts[0], 16), int(parts[1], 16)
    except (ValueError, IndexError):
        raise ConfigurationError("USB device must be VID:PID[:SERIAL] in hex",
                                 device=url) from None
    serial_number = parts[2] if len(parts) > 2 else None
    found = sorted({str(port.device) for port in (ports or _comports)()
                    if port.vid == vid and port.pid == pid and (
                        serial_number is None or port.serial_number == serial_number)})
    if len(found) > 1:
        hint = "" if serial_number is not None else "; add the serial number (VID:PID:SERIAL)"
        raise ConfigurationError(
            f"USB id {spec} matches {len(found)} devices ({', '.join(found)}){hint}",
            device=url)
    return found[0] if found else None


class _UsbSerialTerminal(SerialTerminal):
    """A serial terminal whose device path is looked up by USB ids at each open."""

    def __init__(self, *, usb: str, ports: PortLister | None = None, **kwargs: Any) -> None:
        super().__init__(device=f"usb:{usb}", **kwargs)
        self.usb = usb
        self.ports = ports

    async def _connect(self) -> None:
        path = await self.executor.run(resolve_usb, self.usb, ports=self.ports, url=self.url)
        if path is None:
            raise TerminalUnavailable(f"no USB serial device {self.usb}", device=self.url)
        self.device = path
        await super()._connect()


def create(url: DeviceUrl | str, **kwargs: Any) -> SerialTerminal:
    """Create (not open) the terminal a ``serial://`` URL names.

    Args:
        url: See the module docstring (parsed by :func:`drivers.registry.parse_url`).
        **kwargs: Passed to the terminal (``on_event``, ``clock``; for a ``usb/`` URL also
            ``ports``, the port lister :func:`resolve_usb` reads; for a ``bt/`` URL also
            ``sysfs`` and ``dev``, the directories :func:`resolve_rfcomm` reads).

    Raises:
        ConfigurationError: Malformed URL or option.
    """
    parsed = url if isinstance(url, DeviceUrl) else parse_url(url)
    raw = parsed.raw or str(url)
    ports: PortLister | None = kwargs.pop("ports", None)
    bt_dirs = {key: kwargs.pop(key) for key in ("sysfs", "dev") if key in kwargs}
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
        return _UsbSerialTerminal(usb=spec, ports=ports, name=f"tpe[usb:{spec}]", **common)
    if target.startswith("bt/"):
        address, channel = parse_bt(target[3:], url=raw)
        return BluetoothSerialTerminal(address=address, channel=channel,
                                       name=f"tpe[bt:{address}:{channel}]", **bt_dirs, **common)
    if not target.startswith("/"):
        raise ConfigurationError("serial URL needs an absolute device path", device=raw)
    return SerialTerminal(device=target, name=f"tpe[{target}]", **common)
