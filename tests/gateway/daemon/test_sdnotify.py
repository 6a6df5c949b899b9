"""sd_notify without systemd: datagrams on a real unix socket, abstract names, no socket."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid

from gateway.daemon.sdnotify import Notifier, watchdog_interval


def test_ready_and_status_on_a_path_socket() -> None:
    directory = tempfile.mkdtemp(prefix="posgw-n")
    path = os.path.join(directory, "n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.enabled
        assert notifier.ready("2 lanes")
        assert sock.recv(1024) == b"READY=1\nSTATUS=2 lanes"
        assert notifier.watchdog()
        assert sock.recv(1024) == b"WATCHDOG=1"
    os.unlink(path)
    os.rmdir(directory)


def test_abstract_socket() -> None:
    name = f"posgw-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).stopping()
        assert sock.recv(1024) == b"STOPPING=1"


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready() and notifier.sent == []
    gone = Notifier({"NOTIFY_SOCKET": "/nonexistent/posgw/notify"})
    assert gone.ready() is False  # a vanished socket never raises


def test_watchdog_interval() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(mine) == 0.5
