"""systemd's readiness and watchdog protocol, without a dependency (sd_notify(3)).

The service manager passes ``$NOTIFY_SOCKET``: a unix datagram socket, a path or, starting
with ``@``, an abstract-namespace name. A datagram ``READY=1`` says start-up (restart recovery
included) is over; ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC`` says the main loop is alive;
``STOPPING=1`` says shutdown has begun; ``STATUS=...`` is shown by ``systemctl status``.
Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing. Sending never blocks: the
socket is non-blocking and a full or vanished socket is ignored (systemd must never stall us).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog", "watchdog_interval"]


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET`` (see the module docstring)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = address or None
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        """True under systemd (``$NOTIFY_SOCKET`` set)."""
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when nothing was delivered."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto(message, target)
        except OSError:
            return False
        self.sent.append(message.decode())
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (and a status line)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the main loop is alive."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """``STOPPING=1``."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """``STATUS=text``."""
        return self.notify(f"STATUS={text}")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, or None.

    ``$WATCHDOG_PID``, when set, must be this process (sd_watchdog_enabled(3)).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000


async def watchdog(notifier: Notifier, interval: float) -> None:
    """Task ``sd.watchdog``: ``WATCHDOG=1`` every ``interval`` seconds, until cancelled."""
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)
