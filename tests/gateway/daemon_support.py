"""Helpers of the daemon tests: a configuration in tmp_path, a running daemon, a till client.

* :func:`make_config`: a :class:`~gateway.daemon.config.DaemonConfig` with the journal and the vault
  key in ``tmp_path``, the simulator's CA keys trusted, HTTP on a free port, one ``sim://``
  lane per name given (each test uses its own slot names, so tests never share a slot).
* :func:`running`: the daemon in process (its own task), ready, stopped cleanly on exit.
* :class:`Till`: a small aiohttp client of the till API.
* :func:`till_token`: the test till's bearer token (``tmp_path/till.token``); ``make_config``
  registers it in the journal as till ``test-till`` (every lane, refunds, no limit), and the
  ``http`` fixture sends it on every request.

The listener of ``make_config`` is plain HTTP on loopback without manager logins (both
configured explicitly: the daemon's defaults are TLS and logins); the security tests
(tests/gateway/security/test_daemon_*.py) override ``http`` for TLS and logins.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio

from drivers import sim as drivers_sim
from gateway.daemon.config import DaemonConfig, parse_config
from gateway.daemon.daemon import Daemon
from gateway.security import CredentialStore, PrincipalExists, new_token
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.cli_pay import FIXED_TIME
from simulator.keys import DEFAULT_KEYS_DIR
from terminal.environment import Environment

__all__ = [
    "CONTACTLESS_ATR",
    "TEST_TILL",
    "Till",
    "acquirer_fixture",
    "fixed_env",
    "http_fixture",
    "insert_card",
    "make_config",
    "register_till",
    "running",
    "slot_name",
    "till_token",
    "vault_key_file",
    "wait_state",
]

#: A contactless card's ATR as a PC/SC reader synthesises it (PC/SC Part 3, 3.1.3.2.3).
CONTACTLESS_ATR = bytes.fromhex("3B8F8001804F0CA0000003060300030000000068")

_counter = itertools.count(1)


def slot_name() -> str:
    """A slot name no other test uses."""
    return f"t{next(_counter)}-{uuid.uuid4().hex[:6]}"


def fixed_env() -> Environment:
    """The kernel's clock at the simulator's fixed time (inside every test certificate)."""
    return Environment(lambda: FIXED_TIME, lambda: os.urandom(4), lambda: 99)


def vault_key_file(tmp_path: Path) -> Path:
    """A 32-byte vault key, mode 0600."""
    path = tmp_path / "vault.key"
    if not path.exists():
        path.write_bytes(os.urandom(32))
        path.chmod(0o600)
    return path


#: The name ``make_config`` gives the test till.
TEST_TILL = "test-till"


def till_token(tmp_path: Path) -> str:
    """The test till's token for this test (made once, kept in ``tmp_path/till.token``)."""
    path = tmp_path / "till.token"
    if not path.exists():
        path.write_text(new_token())
    return path.read_text().strip()


def register_till(journal: Path, name: str, token: str, **permissions: Any) -> None:
    """Give the journal at ``journal`` a till credential holding ``token`` (once)."""
    store = CredentialStore.open(journal)
    try:
        store.add_till(name, token=token, actor="test", **permissions)
    except PrincipalExists:
        pass
    finally:
        store.close()


def make_config(
    tmp_path: Path,
    acquirer_url: str,
    slots: list[str],
    *,
    pin_pad: str = "none",
    timeouts: dict[str, float] | None = None,
    acquirer: dict[str, Any] | None = None,
    **extra: Any,
) -> DaemonConfig:
    """A configuration for the tests (see the module docstring)."""
    register_till(tmp_path / "journal.db", TEST_TILL, till_token(tmp_path))
    document: dict[str, Any] = {
        "shop": "shop-test",
        "http": {"host": "127.0.0.1", "port": 0, "tls": False, "status_login": False},
        "journal": {"path": str(tmp_path / "journal.db")},
        "vault": {"key_file": str(vault_key_file(tmp_path))},
        "acquirer": {
            "url": acquirer_url,
            "merchant_id": "SHOP0001",
            "terminal_id": "LANE0001",
            "connect_timeout": 1.0,
            "total_timeout": 3.0,
            "max_attempts": 1,
            "retry_interval": 0.2,
            **(acquirer or {}),
        },
        "terminal": {"extra_ca_keys": [str(DEFAULT_KEYS_DIR / "capk_sim.json")]},
        "timeouts": {
            "card": 10.0,
            "reader_ready": 5.0,
            "transaction": 15.0,
            "recovery": 5.0,
            **(timeouts or {}),
        },
        "lanes": [
            {"id": i, "reader": f"sim://{name}", "interface": "auto", "pin_pad": pin_pad}
            for i, name in enumerate(slots, start=1)
        ],
        **extra,
    }
    return parse_config(document, source="test")


@contextlib.asynccontextmanager
async def running(
    daemon: Daemon, *, within: float = 15.0, stop_within: float = 30.0
) -> AsyncIterator[Daemon]:
    """Run ``daemon`` in a task; yield once it is ready (within ``within`` s); stop it and
    check it stopped within ``stop_within`` s (the daemon's own bounds: against a broker that
    does not answer, the MQTT goodbye and disconnect alone take 5 + 10 s)."""
    task = asyncio.create_task(daemon.run(), name="test.daemon")
    try:
        async with asyncio.timeout(within):
            while not daemon.ready:
                if task.done():
                    task.result()  # raises what made it stop
                    raise AssertionError("the daemon stopped before it was ready")
                await asyncio.sleep(0.01)
        yield daemon
    finally:
        daemon.request_stop()
        await _stopped(task, stop_within)


async def _stopped(task: asyncio.Task[None], within: float) -> None:
    """Wait for the daemon's task to end; past ``within`` seconds, fail naming the tasks still
    running (which part did not stop), then cancel it."""
    done, _ = await asyncio.wait({task}, timeout=within)
    if done:
        task.result()  # raises what the daemon raised
        return
    current = asyncio.current_task()
    running = sorted(t.get_name() for t in asyncio.all_tasks() if t is not current and not t.done())
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise AssertionError(f"the daemon did not stop within {within} s; still running: {running}")


class Till:
    """The till's side of the API."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}"

    async def pay(self, lane: int, amount: int, **body: Any) -> tuple[int, dict[str, Any]]:
        """POST a payment; (status, JSON)."""
        async with self.session.post(
            f"{self.base}/api/lanes/{lane}/payments", json={"amount": amount, **body}
        ) as response:
            return response.status, await response.json()

    async def get(self, payment_id: str, wait: float | None = None) -> dict[str, Any]:
        """GET a payment (waiting up to ``wait`` s for its end)."""
        query = "" if wait is None else f"?wait={wait}"
        async with self.session.get(f"{self.base}/api/payments/{payment_id}{query}") as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def cancel(self, payment_id: str) -> int:
        """POST cancel; the status."""
        url = f"{self.base}/api/payments/{payment_id}/cancel"
        async with self.session.post(url, json={}) as response:
            return response.status

    async def lanes(self) -> dict[str, Any]:
        """GET /api/lanes."""
        async with self.session.get(f"{self.base}/api/lanes") as response:
            body: dict[str, Any] = await response.json()
            return body

    async def wait_prompt(self, lane: int, prompt: str, within: float = 5.0) -> None:
        """Poll /api/lanes until ``lane`` shows ``prompt``."""
        async with asyncio.timeout(within):
            while True:
                lanes = (await self.lanes())["lanes"]
                if any(item["id"] == lane and item["prompt"] == prompt for item in lanes):
                    return
                await asyncio.sleep(0.02)


@pytest_asyncio.fixture(name="acquirer")
async def acquirer_fixture() -> AsyncIterator[AcquirerHost]:
    """The simulated acquirer host on 127.0.0.1 (a free port)."""
    host = AcquirerHost()
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


@pytest_asyncio.fixture(name="http")
async def http_fixture(tmp_path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session for the till, sending the test till's token."""
    headers = {"Authorization": f"Bearer {till_token(tmp_path)}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


def insert_card(slot: str, profile: str = "visa_credit", *, contactless: bool = False) -> Any:
    """Insert a virtual card of ``profile`` in the sim slot (a contactless ATR makes it a tap)."""
    card = VirtualCard.from_profile(profile)
    if contactless:
        drivers_sim.slot(slot).insert(card, CONTACTLESS_ATR)
    else:
        drivers_sim.slot(slot).insert(card)
    return card


async def wait_state(journal: Any, payment_id: str, state: Any, within: float = 10.0) -> None:
    """Poll the journal until the payment reaches ``state`` (the reconciler works behind)."""
    async with asyncio.timeout(within):
        while True:
            if (await journal.get(payment_id)).state is state:
                return
            await asyncio.sleep(0.05)
