"""Bluetooth payment terminals by stable identity: ``serial://bt/ADDR:CHANNEL``.

A mobile TPE speaks Concert or Caisse-AP over Bluetooth's serial port profile (RFCOMM). Linux
shows a bound RFCOMM link as a tty, ``/dev/rfcommN`` (``rfcomm bind N ADDR CHANNEL``, or
systemd's ``rfcomm.service``); the number N depends on the order of binding, the address does
not. So the URL names the terminal by its Bluetooth address and channel, and each open looks
the tty up again: the kernel's RFCOMM tty driver publishes ``address`` and ``channel`` for
each ``/sys/class/tty/rfcommN`` (linux ``net/bluetooth/rfcomm/tty.c``, ``show_address`` and
``show_channel``). ``serial:///dev/rfcomm0`` remains accepted for a fixed binding.

The lookup reads sysfs (blocking, tiny): it runs in the device's executor like the USB one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from drivers.errors import ConfigurationError
from drivers.serial.line import SerialTerminal
from drivers.serial.results import TerminalUnavailable

__all__ = ["BluetoothSerialTerminal", "parse_bt", "resolve_rfcomm"]

_BT = re.compile(r"(?P<addr>(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}):(?P<channel>[0-9]{1,2})")
SYSFS_TTY = Path("/sys/class/tty")
DEV = Path("/dev")


def parse_bt(spec: str, *, url: str | None = None) -> tuple[str, int]:
    """``ADDR:CHANNEL`` -> (upper-case address, channel 1-30).

    Raises:
        ConfigurationError: Not a Bluetooth address and an RFCOMM channel (1-30).
    """
    match = _BT.fullmatch(spec)
    if match is None or not 1 <= int(match["channel"]) <= 30:
        raise ConfigurationError("Bluetooth device must be ADDR:CHANNEL "
                                 "(AA:BB:CC:DD:EE:FF:1, channel 1-30)", device=url)
    return match["addr"].upper(), int(match["channel"])


def resolve_rfcomm(address: str, channel: int, *, sysfs: Path = SYSFS_TTY,
                   dev: Path = DEV) -> str | None:
    """The ``/dev/rfcommN`` bound to ``address`` and ``channel``, or None if none is.

    Args:
        address: Bluetooth address, upper case.
        channel: RFCOMM channel.
        sysfs: The tty class directory (a test points it at a directory of its own).
        dev: Where the device nodes are.
    """
    for entry in sorted(sysfs.glob("rfcomm*")):
        try:
            bound = (entry / "address").read_text().strip().upper()
            bound_channel = int((entry / "channel").read_text().strip())
        except (OSError, ValueError):
            continue  # released while we looked, or not an RFCOMM tty
        if bound == address and bound_channel == channel:
            return str(dev / entry.name)
    return None


class BluetoothSerialTerminal(SerialTerminal):
    """A serial terminal whose ``/dev/rfcommN`` is looked up by address at each open."""

    def __init__(self, *, address: str, channel: int, sysfs: Path = SYSFS_TTY,
                 dev: Path = DEV, **kwargs: Any) -> None:
        super().__init__(device=f"bt:{address}:{channel}", **kwargs)
        self.address = address
        self.channel = channel
        self._sysfs = sysfs
        self._dev = dev

    async def _connect(self) -> None:
        path = await self.executor.run(resolve_rfcomm, self.address, self.channel,
                                       sysfs=self._sysfs, dev=self._dev)
        if path is None:
            raise TerminalUnavailable(
                f"no RFCOMM tty bound to {self.address} channel {self.channel} "
                "(rfcomm bind N ADDR CHANNEL)", device=self.url)
        self.device = path
        await super()._connect()
