"""Helpers shared by the sync tests (no tests here): a stoppable private mosquitto, sales, scans.

``PrivateBroker`` is a mosquitto of the test's own on a fixed port, with persistence on, that a
test can stop and start again (the session broker of tests/fixtures/mqtt.py cannot be stopped).
Run as a module, this file is also the child process of the last-will test: a real
``OutboxPublisher`` that the test kills with SIGKILL.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.lifecycle import Backoff
from gateway.journal import Journal, Payment
from gateway.journal.guard import find_card_data, luhn_ok
from gateway.sync import mqtt_client_factory
from tests.gateway.journal_support import AID, MASKED, PAN, TRACK2

__all__ = ["AID", "MASKED", "PAN", "TRACK2"]

FAST = Backoff(initial=0.05, maximum=0.3, jitter=0.5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mosquitto() -> str:
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if binary is None:
        pytest.fail("mosquitto not found; install it with: apt-get install mosquitto")
    return binary


class PrivateBroker:
    """A mosquitto on a fixed loopback port that survives :meth:`stop` / :meth:`start` cycles.

    Persistence is on (saved on a clean stop), so persistent sessions and their queued QoS 1
    messages, and retained messages, come back after a restart, as on a production broker.
    """

    def __init__(self, workdir: Path, *, extra: str = "") -> None:
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.workdir = workdir
        self.log = workdir / "mosquitto.log"
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + extra
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        assert self._process is None
        command = [_mosquitto(), "-c", str(self.config)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                pytest.fail(f"mosquitto exited ({self._process.returncode}):\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"mosquitto not listening on {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM: it saves its persistence file) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is answered (no CONNACK, no PUBACK)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """The broker's log so far."""
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A stoppable mosquitto of this test's own (started)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = PrivateBroker(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


_shops = iter(range(1, 1_000_000))


def new_shop() -> str:
    """A shop id unused so far in this session (retained messages of other tests stay apart)."""
    return f"shop-t{next(_shops):04d}-{int(time.time() * 1000) % 100000}"


def factory(host: str, port: int, shop: str, role: str) -> Any:
    """The production client factory with short timeouts for tests."""
    return mqtt_client_factory(host=host, port=port, shop=shop, role=role,  # type: ignore[arg-type]
                               keepalive=5, timeout=2.0)  # fmt: skip


async def complete_sale(
    journal: Journal, *, amount: int = 1250, items: list[dict[str, Any]] | None = None
) -> Payment:
    """A sale walked to COMPLETED (its record is then in the outbox)."""
    sale = await journal.create_sale(lane="1", amount=amount, currency="EUR", actor="test",
                                     items=items)  # fmt: skip
    await journal.card_read(sale.id, masked_pan=MASKED, aid=AID, actor="test")
    await journal.request_auth(sale.id, actor="test")
    await journal.approve(sale.id, auth_code="A1B2C3", actor="test")
    return await journal.complete(sale.id, actor="test")


def unsent_count(db: Path) -> int:
    """Outbox rows not yet sent, read straight from the journal file (tests only)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE sent_ms IS NULL").fetchone()[0])
    finally:
        conn.close()


def backlog_of(db: Path) -> Callable[[], Any]:
    """An ``async () -> int`` backlog source for the publisher (off the event loop)."""

    async def count() -> int:
        return await asyncio.to_thread(unsent_count, db)

    return count


async def eventually(predicate: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``within`` seconds (no timing asserted)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.02)


_DIGIT_RUN = re.compile(rb"\d{12,19}")


def card_data_in(blob: bytes) -> list[str]:
    """What in ``blob`` looks like card data: the test PAN, a Luhn-valid digit run, a track 2."""
    found = []
    if PAN.encode() in blob or TRACK2.encode() in blob:
        found.append("test PAN")
    found += ["luhn run" for run in _DIGIT_RUN.findall(blob) if run[:1] != b"0"
              and luhn_ok(run.decode())]  # fmt: skip
    if find_card_data(blob.decode("utf-8", "replace")) is not None:
        found.append("guard")
    return found


async def _child(host: str, port: int, shop: str, db: str) -> None:
    """The last-will child: a real publisher that says ``connected`` and runs until killed."""
    from gateway.sync import OutboxPublisher

    async with Journal.open(db) as journal:
        clients = factory(host, port, shop, "sales")
        publisher = OutboxPublisher(
            journal=journal, client_factory=clients, shop=shop, backoff=FAST, poll_interval=0.1
        )
        task = asyncio.create_task(publisher.run())
        await eventually(lambda: publisher.diagnostics()["connected"], within=20)
        print("connected", flush=True)
        await task


if __name__ == "__main__":
    asyncio.run(_child(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
