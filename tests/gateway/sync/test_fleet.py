"""A fleet on one broker: 5 ``posgw run`` daemons, 2,000 basket sales, two broker restarts.

Real parts end to end: five shops, each a ``posgw run`` child process with its own journal,
stock file, acknowledgement ledger and MQTT client ids (``posgw-{shop}-sales`` / ``-stock``),
two lanes on virtual Caisse-AP terminals over TCP (they live in this process and approve by
amount, docs/tpe.md), one private mosquitto with persistence (the broker of the fleet), and the
simulated head office (simulator/head_office.py) consuming every shop's sales, acknowledging
them by id and pushing each shop's stock back as it counts them.

Head office first publishes a starting level for every SKU of every shop (retained). The till
API of each daemon then takes 400 basket sales (2,000 in all), a third at a time; between the
thirds the broker is stopped, sales go on while it is down (they wait in each journal's
outbox), and it is started again: two restarts. At the end:

* head office holds every completed sale once (by id; a re-send is counted as a duplicate and
  never stored twice), exactly the set each shop's till API completed, no more, no less;
* every journal's outbox is sent and every ledger empty (head office acknowledged everything);
* head office's book and every shop's ``GET /api/stock`` show the starting level less what the
  shop sold, SKU by SKU, with head office's ``counted`` equal to the shop's sales;
* each daemon's log shows its sales client lost the broker at both restarts, and each daemon
  stops on SIGTERM with exit status 0 and no traceback (no "Exception in callback" either).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.head_office import HeadOffice
from simulator.tpe import VirtualTcpTpe
from tests.gateway.daemon_support import TEST_TILL, register_till, till_token, vault_key_file
from tests.gateway.sync_support import PrivateBroker, new_shop, private_broker, unsent_count

__all__ = ["private_broker"]

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(300)]

SHOPS, SALES, LANES = 5, 400, 2
SKUS, START = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"], 10_000
REPO = Path(__file__).resolve().parents[3]
#: Seconds for a daemon to be up with its lanes ready, and for the fleet to settle.
READY_WITHIN, SETTLE_WITHIN = 60.0, 180.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ShopDaemon:
    """One shop: ``posgw run`` as a child process, its terminals, and what its till sold."""

    name: str
    workdir: Path
    broker: PrivateBroker
    terminals: list[VirtualTcpTpe]
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    sold: dict[str, int] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)

    @property
    def journal(self) -> Path:
        return self.workdir / "journal.db"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {till_token(self.workdir)}"}

    def write_config(self) -> Path:
        lanes = "".join(
            f'[[lanes]]\nid = {n}\nreader = "tcp://127.0.0.1:{tpe.port}?protocol=caisse-ap'
            f'&answer_timeout=5&cancel_grace=0.3&keepalive=0"\n'
            for n, tpe in enumerate(self.terminals, start=1)
        )
        config = self.workdir / "posgw.toml"
        config.write_text(f"""shop = "{self.name}"
[http]
host = "127.0.0.1"
port = {self.port}
tls = false
status_login = false
[journal]
path = "{self.journal}"
[vault]
key_file = "{vault_key_file(self.workdir)}"
[acquirer]
url = "http://127.0.0.1:9"
merchant_id = "SHOP0001"
[mqtt]
host = "{self.broker.host}"
port = {self.broker.port}
acknowledgements = true
ack_timeout = 5.0
{lanes}""")
        register_till(self.journal, TEST_TILL, till_token(self.workdir))
        return config

    def start(self) -> None:
        config = self.write_config()
        log = (self.workdir / "daemon.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.daemon.cli", "run", "--config", str(config)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
        )  # fmt: skip
        log.close()

    def log_tail(self) -> str:
        return (self.workdir / "daemon.log").read_text(errors="replace")[-3000:]

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 30 s; the exit status (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    async def ready(self, http: aiohttp.ClientSession) -> None:
        """Wait (bounded) until every lane's terminal is ready and idle."""
        async with asyncio.timeout(READY_WITHIN):
            while True:
                assert self.process is not None and self.process.poll() is None, self.log_tail()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base}/api/lanes", headers=self.headers) as answer:
                        lanes = (await answer.json())["lanes"]
                        if len(lanes) == LANES and all(
                            lane["device"]["state"] == "ready" and lane["prompt"] == "IDLE"
                            for lane in lanes
                        ):
                            return
                await asyncio.sleep(0.1)  # another process's state: no event to wait on

    async def sell(self, http: aiohttp.ClientSession, lane: int, rng: random.Random) -> None:
        """One basket sale through the till API on ``lane``, to COMPLETED."""
        lines: list[dict[str, Any]] = []
        for sku in rng.sample(SKUS, rng.randint(1, 3)):
            qty = rng.randint(1, 3)
            lines.append({"sku": sku, "label": sku, "qty": qty, "unit_price": 100,
                          "vat_rate": "20"})  # fmt: skip
        amount = sum(line["qty"] * line["unit_price"] for line in lines)
        url = f"{self.base}/api/lanes/{lane}/payments"
        body = {"amount": amount, "currency": "EUR", "items": lines}
        async with http.post(url, json=body, headers=self.headers) as answer:
            started = await answer.json()
            assert answer.status == 202, started
        url = f"{self.base}/api/payments/{started['id']}?wait=20"
        async with http.get(url, headers=self.headers) as answer:
            result = await answer.json()
        assert result["state"] == "COMPLETED", result
        self.completed.append(str(result["id"]))
        for line in lines:
            self.sold[line["sku"]] = self.sold.get(line["sku"], 0) + line["qty"]

    async def stock(self, http: aiohttp.ClientSession) -> dict[str, dict[str, Any]]:
        async with http.get(f"{self.base}/api/stock", headers=self.headers) as answer:
            assert answer.status == 200, await answer.text()
            return {line["sku"]: line for line in (await answer.json())["skus"]}


@contextlib.asynccontextmanager
async def fleet(tmp_path: Path, broker: PrivateBroker,
                names: list[str]) -> AsyncIterator[list[ShopDaemon]]:  # fmt: skip
    """The shops' terminals and daemons, started; stopped (SIGTERM) at the end."""
    shops: list[ShopDaemon] = []
    try:
        for name in names:
            terminals = [VirtualTcpTpe() for _ in range(LANES)]
            for tpe in terminals:
                await tpe.start()
            workdir = tmp_path / name
            workdir.mkdir()
            shops.append(ShopDaemon(name, workdir, broker, terminals))
        for shop in shops:
            shop.start()
        yield shops
    finally:
        for shop in shops:
            await asyncio.to_thread(shop.stop)
            for tpe in shop.terminals:
                await tpe.stop()


async def sell_share(shop: ShopDaemon, http: aiohttp.ClientSession, n: int,
                     rng: random.Random) -> None:  # fmt: skip
    """``n`` sales on the shop's lanes, the lanes selling side by side."""

    async def lane(number: int, count: int) -> None:
        for _ in range(count):
            await shop.sell(http, number, rng)

    share = [n // LANES + (k < n % LANES) for k in range(LANES)]
    await asyncio.gather(*(lane(k + 1, share[k]) for k in range(LANES)))


def ledger_count(workdir: Path) -> int:
    """Sales still waiting for head office's acknowledgement (the daemon's acks.db)."""
    conn = sqlite3.connect(f"file:{workdir / 'acks.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM unacknowledged").fetchone()[0])
    finally:
        conn.close()


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``check`` (other processes' state: no event to wait on) for ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while not await check():  # noqa: ASYNC110 - no event crosses the processes
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"not within {within:.0f} s: {what}")


async def test_five_daemons_two_thousand_sales_and_two_broker_restarts(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    names = [new_shop() for _ in range(SHOPS)]
    rng = random.Random(13)
    office = HeadOffice(host=private_broker.host, port=private_broker.port, shops=names,
                        identifier=f"head-office-fleet-{names[0]}", auto_push=True)  # fmt: skip
    await office.start()
    try:
        for name in names:
            for sku in SKUS:
                await office.publish_stock(sku, level=START, shop=name)
        async with fleet(tmp_path, private_broker, names) as shops, aiohttp.ClientSession() as http:
            await asyncio.gather(*(shop.ready(http) for shop in shops))
            thirds = [SALES // 3, SALES // 3, SALES - 2 * (SALES // 3)]
            for third, share in enumerate(thirds):
                outage = share // 4 if third else 0
                if outage:  # a broker restart, with sales made while it is down
                    await asyncio.to_thread(private_broker.stop)
                    await asyncio.gather(*(sell_share(s, http, outage, rng) for s in shops))
                    # they wait in each journal's outbox (with the ones the stop cut off)
                    assert all(unsent_count(s.journal) >= outage for s in shops)
                    await asyncio.to_thread(private_broker.start)
                rest = share - outage
                await asyncio.gather(*(sell_share(s, http, rest, rng) for s in shops))

            async def settled() -> bool:
                for shop in shops:
                    if len(office.sales_by_shop[shop.name]) < SALES:
                        return False
                    if unsent_count(shop.journal) or ledger_count(shop.workdir):
                        return False
                return True

            try:
                await until(settled, SETTLE_WITHIN, "every sale at head office, acknowledged")
            except BaseException:
                for shop in shops:
                    print(shop.name, len(office.sales_by_shop[shop.name]),
                          unsent_count(shop.journal), ledger_count(shop.workdir),
                          shop.log_tail())  # fmt: skip
                raise
            for name in names:
                await office.push_stock(name, SKUS)

            async def levels_match() -> bool:
                for shop in shops:
                    levels = await shop.stock(http)
                    for sku in SKUS:
                        line, sold = levels.get(sku), shop.sold.get(sku, 0)
                        if line is None or line["level"] != START - sold or \
                                line["counted"] != -sold:  # fmt: skip
                            return False
                return True

            await until(levels_match, 60, "every shop's stock as expected")
            for shop in shops:  # the status page agrees: connected again, nothing left
                async with http.get(f"{shop.base}/status.json", headers=shop.headers) as answer:
                    snapshot = await answer.json()
                assert snapshot["mqtt"]["connected"] is True, snapshot["mqtt"]
                assert snapshot["mqtt"]["backlog"] == 0, snapshot["mqtt"]
                assert snapshot["journal"]["outbox_backlog"] == 0, snapshot["journal"]
            exits = [await asyncio.to_thread(shop.stop) for shop in shops]
            assert exits == [0] * SHOPS, [shop.log_tail() for shop in shops]
    finally:
        await office.stop()
    for shop in shops:  # each daemon lost the broker twice, and stopped without a traceback
        log = (shop.workdir / "daemon.log").read_text(errors="replace")
        assert log.count("publisher: head office MQTT: MqttError: Disconnected") >= 2, log
        assert "Traceback" not in log and "Exception in callback" not in log, log
    for shop in shops:
        assert len(shop.completed) == SALES
        assert sorted(office.sales_by_shop[shop.name]) == sorted(shop.completed)
        for sku in SKUS:
            assert office.book.level(shop.name, sku) == START - shop.sold.get(sku, 0)
    assert sum(len(office.sales_by_shop[n]) for n in names) == SHOPS * SALES
    assert office.connects >= 3  # head office lived through both restarts
    print(f"fleet: {SHOPS * SALES} sales, {office.duplicates} re-sends deduplicated by head office")
