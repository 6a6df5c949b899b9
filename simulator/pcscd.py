"""A private pcscd with vsmartcard's vpcd readers, for tests, benchmarks and the simulator.

pcsc-lite 1.9.9 facts this relies on (checked against the Debian build):

* The *client* library (libpcsclite, under pyscard) reads ``PCSCLITE_CSOCK_NAME`` once, at its
  first connection, for the daemon socket path; the *daemon* ignores it and always uses
  ``/run/pcscd/pcscd.comm`` and ``/run/pcscd/pcscd.pid`` (and refuses to start when that socket
  exists). So a private daemon gets a private ``/run/pcscd``: we start it in its own mount
  namespace (``unshare --mount``, root) with a private directory bind-mounted on
  ``/run/pcscd``. Where namespaces are not allowed we fall back to systemd socket activation
  (``LISTEN_FDS``: pcscd then serves a socket we created), which still writes the pid file.
* ``-c DIR`` reads reader.conf files from ``DIR``; ``-f`` stays in the foreground.
* vpcd's ``DEVICENAME /dev/null:PORT`` makes one reader entry with two slots,
  ``"<FRIENDLYNAME> 00 00"`` on TCP ``PORT`` and ``"<FRIENDLYNAME> 00 01"`` on ``PORT + 1``;
  vpcd listens there for the virtual ICC (see :mod:`simulator.vpcd`).
* pcscd polls vpcd for card presence every 400 ms (PCSCLITE_STATUS_POLL_RATE).
* vpcd keeps its virtual ICC connections in one static table indexed by the slot number only
  (``Lun & 0xffff``), and pcscd ``dlopen``-s a driver file once, sharing it between every
  reader entry that names the same ``LIBPATH``. Two reader entries on one driver file therefore
  share slots ``00 00`` and ``00 01``: every entry shows the last card attached, and a T=0 lane
  can hang talking to a T=1 card. So each reader entry gets its own copy of the driver file
  (``drivers/libifdvpcd-<n>.so`` in the work directory): a separate ``dlopen``, a separate
  slot table.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["VPCD_DRIVER", "PcscdError", "PrivatePcscd", "VirtualReader", "free_port_pair"]

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
INSTALL_HINT = "install them with: apt-get install pcscd vsmartcard-vpcd"


class PcscdError(RuntimeError):
    """pcscd or the vpcd driver is missing, or the daemon did not start."""


@dataclass(frozen=True, slots=True)
class VirtualReader:
    """One vpcd slot: the PC/SC reader name and the TCP port its virtual ICC connects to."""

    name: str
    port: int


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P such that P and P+1 are both free now (vpcd takes two)."""
    for _ in range(200):
        with socket.socket() as first:
            first.bind((host, 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise PcscdError("no free pair of TCP ports")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


class PrivatePcscd:
    """Start, stop, kill and restart one private pcscd serving vpcd readers.

    Each name in ``readers`` becomes a reader entry with two slots (``"<name> 00 00"`` and
    ``"<name> 00 01"``). Use :meth:`export_env` before pyscard first talks to pcsc-lite.
    """

    def __init__(
        self,
        readers: list[str] | tuple[str, ...] = ("Virtual PCD",),
        *,
        workdir: Path | None = None,
        mode: str | None = None,
    ) -> None:
        """Describe the daemon (nothing starts until :meth:`start`).

        Args:
            readers: Friendly names of the vpcd reader entries.
            workdir: Directory for config, socket and log (default: a new temp directory).
            mode: ``"unshare"`` or ``"socket"`` (default: unshare when allowed).
        """
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="posgw-pcscd-"))
        self.confdir = self.workdir / "reader.conf.d"
        self.driverdir = self.workdir / "drivers"
        self.rundir = self.workdir / "run"
        self.log_path = self.workdir / "pcscd.log"
        self.mode = mode
        self.readers: list[VirtualReader] = []
        for name in readers:
            port = free_port_pair()
            self.readers += [VirtualReader(f"{name} 00 00", port),
                             VirtualReader(f"{name} 00 01", port + 1)]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self._listener: socket.socket | None = None

    @property
    def socket_path(self) -> Path:
        """The daemon socket clients must use (``PCSCLITE_CSOCK_NAME``)."""
        return self.rundir / "pcscd.comm"

    def reader(self, name: str) -> VirtualReader:
        """The slot of that exact name."""
        for reader in self.readers:
            if reader.name == name:
                return reader
        raise KeyError(name)

    def export_env(self) -> None:
        """Point this process's pcsc-lite client at the private daemon (before first use)."""
        os.environ["PCSCLITE_CSOCK_NAME"] = str(self.socket_path)

    @staticmethod
    def check_installed() -> None:
        """Raise PcscdError naming the packages to install when pcscd or vpcd is missing."""
        missing = []
        if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
            missing.append("pcscd")
        if not VPCD_DRIVER.exists():
            missing.append(f"vpcd driver {VPCD_DRIVER}")
        if missing:
            raise PcscdError(f"missing {', '.join(missing)}; {INSTALL_HINT}")

    def _write_config(self) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.driverdir.mkdir(parents=True, exist_ok=True)
        for index, reader in enumerate(self.readers[::2]):
            friendly = reader.name.removesuffix(" 00 00")
            driver = self.driverdir / f"libifdvpcd-{index}.so"
            shutil.copyfile(VPCD_DRIVER, driver)  # one dlopen, one slot table per entry
            (self.confdir / f"vpcd{index}").write_text(
                f'FRIENDLYNAME "{friendly}"\n'
                f"DEVICENAME   /dev/null:{reader.port}\n"
                f"LIBPATH      {driver}\n"
                f"CHANNELID    {reader.port}\n"
            )

    def start(self, timeout: float = 10.0) -> None:
        """Start the daemon and wait until its socket accepts connections.

        Raises:
            PcscdError: pcscd/vpcd missing, or the daemon did not come up.
        """
        self.check_installed()
        if self.mode is None:
            self.mode = "unshare" if _can_unshare() else "socket"
        self._write_config()
        pcscd = shutil.which("pcscd") or "/usr/sbin/pcscd"
        log = self.log_path.open("ab")
        for stale in (self.socket_path, self.rundir / "pcscd.pid"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        if self.mode == "unshare":
            script = (
                'mkdir -p /run/pcscd && mount --bind "$0" /run/pcscd && exec "$1" -f -c "$2"'
            )
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                    str(self.rundir), pcscd, str(self.confdir)]  # fmt: skip
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        else:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.socket_path))
            listener.listen(64)
            self.socket_path.chmod(0o666)
            fd = listener.fileno()
            script = f'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -f -c "$1" 3<&{fd}'
            self.process = subprocess.Popen(
                ["sh", "-c", script, pcscd, str(self.confdir)],
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,),
            )  # fmt: skip
            listener.close()
        log.close()
        try:
            self._wait_ready(timeout)
        except PcscdError:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise PcscdError(f"pcscd exited with {self.process.returncode}:\n{tail}")
            if self.socket_path.exists() and self._socket_answers():
                return
            time.sleep(0.01)
        raise PcscdError(f"pcscd not ready within {timeout} s (log: {self.log_path})")

    def _socket_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                return False
            return True

    @property
    def running(self) -> bool:
        """True while the daemon process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL); idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._mark_log("stopped")

    def kill(self) -> None:
        """Kill the daemon abruptly (SIGKILL: readers vanish, like a crash or an unplug)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self._mark_log("killed")

    def restart(self) -> None:
        """Stop, then start again on the same socket and ports."""
        self.stop()
        self.start()

    def _mark_log(self, what: str) -> None:
        with self.log_path.open("a") as log:
            log.write(f"==== posgw: pcscd {what}\n")

    def cleanup(self) -> None:
        """Stop and delete the work directory when we created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrivatePcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
