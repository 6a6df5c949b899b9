"""The daemon's life: restart recovery before READY=1, sd_notify on a real unix datagram
socket, the watchdog, SIGTERM on ``posgw run`` as a subprocess, a reader that is not ready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from drivers import DeviceUnavailable
from gateway.acquirer import AcquirerClient, seal_request
from gateway.daemon.daemon import Daemon
from gateway.journal import Journal, PaymentState, load_vault_key
from simulator.acquirer_host import AcquirerHost
from tests.gateway.acquirer_support import wire_request
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    make_config,
    running,
    slot_name,
    vault_key_file,
    wait_state,
)

__all__ = ["acquirer_fixture", "http_fixture"]

S = PaymentState
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(name="notify_socket")
def notify_socket_fixture() -> Iterator[tuple[socket.socket, str]]:
    """A unix datagram socket standing in for systemd's notify socket (short /tmp path)."""
    directory = tempfile.mkdtemp(prefix="posgw-n")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(directory)


async def _receive(sock: socket.socket, within: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        data = await loop.sock_recv(sock, 4096)
    return data.decode()


async def test_recovery_resolves_everything_before_ready(
    tmp_path: Path,
    acquirer: AcquirerHost,
    notify_socket: tuple[socket.socket, str],
    http: aiohttp.ClientSession,
) -> None:
    assert acquirer.url is not None
    sock, path = notify_socket
    key = load_vault_key(vault_key_file(tmp_path))
    async with Journal.open(tmp_path / "journal.db", vault_key=key) as journal:
        created = await journal.create_sale(lane="1", amount=100, currency="EUR", actor="t")
        charged = await journal.create_sale(lane="1", amount=1250, currency="EUR", actor="t")
        await journal.card_read(charged.id, masked_pan=None, aid=None, actor="t")
        charged = await journal.request_auth(charged.id, actor="t")
        never_sent = await journal.create_sale(lane="1", amount=700, currency="EUR", actor="t")
        await journal.card_read(never_sent.id, masked_pan=None, aid=None, actor="t")
        never_sent = await journal.request_auth(never_sent.id, actor="t")
    # the crash happened after the request reached the host, before the answer was journaled
    assert charged.idempotency_key is not None
    async with AcquirerClient(base_url=acquirer.url) as client:
        sent_key = charged.idempotency_key
        first = await client.authorise(await wire_request(), idempotency_key=sent_key)
    assert first.approved
    config = make_config(tmp_path, acquirer.url, [slot_name()])
    daemon = Daemon(config, env=fixed_env, environ={"NOTIFY_SOCKET": path})
    task = asyncio.create_task(daemon.run())
    try:
        message = await _receive(sock)
        assert message.startswith("READY=1")
        # READY=1 came after recovery: every unfinished payment is already resolved
        assert (await daemon.journal.get(created.id)).state is S.CANCELLED
        assert (await daemon.journal.get(charged.id)).state is S.REVERSED
        assert (await daemon.journal.get(never_sent.id)).state is S.DECLINED
        events = [e.to_state for e in await daemon.journal.events(charged.id)]
        assert events[-3:] == [S.UNKNOWN, S.REVERSAL_PENDING, S.REVERSED]
        snapshot = (await daemon.snapshot()).to_json()
        assert snapshot["ready"] is True and snapshot["journal"]["awaiting_recovery"] == 0
        assert daemon.http_port is not None
        lanes = await Till(http, daemon.http_port).lanes()
        assert lanes["lanes"][0]["id"] == 1
    finally:
        daemon.request_stop()
        async with asyncio.timeout(10):
            await task
    assert [entry.kind for entry in acquirer.ledger] == ["charge", "reversal"]
    assert "STOPPING=1" in daemon.notifier.sent


async def test_watchdog_pings_when_watchdog_usec_is_set(
    tmp_path: Path, acquirer: AcquirerHost, notify_socket: tuple[socket.socket, str]
) -> None:
    assert acquirer.url is not None
    sock, path = notify_socket
    config = make_config(tmp_path, acquirer.url, [slot_name()])
    environ = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())}
    async with running(Daemon(config, env=fixed_env, environ=environ)):
        assert (await _receive(sock)).startswith("READY=1")
        assert await _receive(sock) == "WATCHDOG=1"
        assert await _receive(sock) == "WATCHDOG=1"


async def test_reader_not_ready_gives_a_defined_outcome(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    assert acquirer.url is not None
    opened: list[str] = []

    async def unplugged(url: str) -> object:
        opened.append(url)
        raise DeviceUnavailable("no such reader", device=url)

    config = make_config(tmp_path, acquirer.url, [slot_name()], timeouts={"reader_ready": 0.3})
    daemon = Daemon(config, env=fixed_env, environ={}, open_reader=unplugged)
    async with running(daemon):
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        result = await till.get(str(body["id"]), wait=5)
        assert result["state"] == "CANCELLED" and result["outcome"] == "error"
        assert result["reason"] == "reader not ready"
        lane = (await daemon.snapshot()).to_json()["lanes"][0]
        assert lane["device"]["state"] == "not_ready"
        assert "no such reader" in lane["device"]["last_error"]
        assert lane["prompt"] == "IDLE"
    assert opened


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_posgw_run_stops_cleanly_on_sigterm(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], loop: str
) -> None:
    sock, path = notify_socket
    sock.setblocking(True)
    sock.settimeout(20)
    key = vault_key_file(tmp_path)
    config = tmp_path / "posgw.toml"
    config.write_text(
        f"""shop = "shop-sig"
event_loop = "{loop}"
[http]
port = 0
[journal]
path = "journal.db"
[vault]
key_file = "{key}"
[acquirer]
url = "http://127.0.0.1:9"
merchant_id = "SHOP0001"
[[lanes]]
id = 1
reader = "sim://{slot_name()}"
"""
    )
    env = {**os.environ, "NOTIFY_SOCKET": path}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.daemon.cli", "run", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sock.recv(4096).decode().startswith("READY=1")
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert sock.recv(4096).decode() == "STOPPING=1"
    assert "posgw stopped" in err
    assert f"event loop {loop}" in err  # the "posgw ready" line names the loop it runs on
    assert "Task was destroyed" not in err and "Traceback" not in err
    assert (tmp_path / "journal.db").exists()


async def test_rotated_vault_key_still_forwards_what_the_old_key_sealed(
    tmp_path: Path, acquirer: AcquirerHost, caplog: pytest.LogCaptureFixture
) -> None:
    # An offline approval sealed under the old key, then the key is rotated: the daemon seals
    # with the new key and forwards the old row with the previous key, which it then reports
    # as holding nothing (it can be removed).
    assert acquirer.url is not None
    old_path = tmp_path / "old.key"
    old_path.write_bytes(os.urandom(32))
    old_path.chmod(0o600)
    async with Journal.open(tmp_path / "journal.db", vault_key=load_vault_key(old_path)) as journal:
        sale = await journal.create_sale(lane="1", amount=900, currency="EUR", actor="t")
        await journal.card_read(sale.id, masked_pan=None, aid=None, actor="t")
        request = seal_request(await wire_request())
        await journal.store_for_forwarding(sale.id, request=request, response_code="Y3", actor="t")
    vault = {"key_file": str(vault_key_file(tmp_path)), "previous_key_files": [str(old_path)]}
    config = make_config(tmp_path, acquirer.url, [slot_name()], vault=vault)
    caplog.set_level(logging.INFO, logger="gateway.daemon")
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        await wait_state(daemon.journal, sale.id, S.FORWARDED)
        assert await daemon.journal.vault_rows_by_key() == {}
    assert [entry.kind for entry in acquirer.ledger] == ["charge"]
    assert "still seals 1 row(s)" in caplog.text  # at start, before forwarding
