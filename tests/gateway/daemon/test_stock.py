"""End to end with stock: the daemon (sim:// lane, acquirer host, journal, mosquitto, the
simulated head office). A basket sale lowers the local level, a refund naming a line raises it,
both reach head office once with their lines, a snapshot that crosses a sale in flight neither
loses nor doubles it, and the levels show on the till API, the status page and /metrics."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.daemon import stock_child
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)
from tests.gateway.sync_support import PrivateBroker, new_shop, private_broker

__all__ = ["acquirer_fixture", "http_fixture", "private_broker"]

REPO = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]

PAN = "4761739001010010"
BASKET: list[dict[str, Any]] = [
    {"sku": "SKU-1", "label": "Coffee 250g", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
    {"label": "Gift wrap", "qty": 1, "unit_price": 350, "vat_rate": "20"},
]


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Await ``check()`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.05)


class Shop:
    """The daemon's HTTP side as a till and a manager see it."""

    def __init__(self, http: aiohttp.ClientSession, daemon: Daemon) -> None:
        assert daemon.http_port is not None
        self.till = Till(http, daemon.http_port)
        self.http = http

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.till.base + path, **kwargs) as response:
            text = await response.text()
            assert PAN not in text
            return response.status, (await response.json() if path.startswith("/api")
                                     else text)  # fmt: skip

    async def level(self, sku: str) -> int | None:
        status, body = await self.call("GET", f"/api/stock/{sku}")
        return int(body["level"]) if status == 200 else None

    async def sell(self, slot: str, amount: int, **body: Any) -> dict[str, Any]:
        status, started = await self.till.pay(1, amount, **body)
        assert status == 202, started
        await self.till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        result = await self.till.get(str(started["id"]), wait=10)
        assert result["state"] == "COMPLETED", result
        return result


def _config(tmp_path: Path, acquirer: AcquirerHost, slot: str, broker: MqttBroker,
            shop: str) -> Any:  # fmt: skip
    assert acquirer.url is not None
    mqtt = {"host": broker.host, "port": broker.port, "low_stock": 8, "acknowledgements": True}
    return make_config(tmp_path, acquirer.url, [slot], mqtt=mqtt, shop=shop)


async def test_a_basket_sale_lowers_stock_and_a_refund_raises_it(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, mqtt_broker: MqttBroker
) -> None:
    shop, slot = new_shop(), slot_name()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with HeadOffice(host=host, port=port, shop=shop) as office:
        await office.publish_stock("SKU-1", level=10)
        config = _config(tmp_path, acquirer, slot, mqtt_broker, shop)
        async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
            app = Shop(http, daemon)
            await until(lambda: _is(app.level("SKU-1"), 10))
            # A basket that does not add up is refused, naming the field; nothing is journaled.
            status, refused = await app.till.pay(1, 1200, items=BASKET)
            assert (status, refused["field"]) == (400, "items")
            status, refused = await app.till.pay(1, 1250, items=[dict(BASKET[0], qty=0)])
            assert (status, refused["field"]) == (400, "items[0].qty")
            sale = await app.sell(slot, 1250, items=BASKET, reference="T-1")
            assert sale["items"] == BASKET
            await until(lambda: _is(app.level("SKU-1"), 8))
            # The stock on the page and in /metrics (8 is at the low-stock threshold).
            status, page = await app.call("GET", "/")
            assert status == 200 and "SKU-1" in page and "8 left" in page
            status, metrics = await app.call("GET", "/metrics")
            assert 'posgw_stock_low_level{sku="SKU-1"} 8.0' in metrics
            status, listing = await app.call("GET", "/api/stock")
            assert status == 200
            (line,) = listing["skus"]
            assert (line["sku"], line["level"], line["low"], line["local_net"]) == (
                "SKU-1", 8, True, -2)  # fmt: skip
            assert (await app.call("GET", "/api/stock/NOPE"))[0] == 404
            assert (await app.call("GET", "/api/stock/a%20b"))[0] == 400
            # A refund naming one of the sale's lines raises the level.
            status, refund = await app.call(
                "POST", f"/api/payments/{sale['id']}/refunds",
                json={"amount": 450, "reference": "R-1", "items": [{"sku": "SKU-1", "qty": 1}]},
            )  # fmt: skip
            assert status == 201 and refund["state"] == "COMPLETED", refund
            assert refund["items"] == [dict(BASKET[0], qty=1)]
            status, wrong = await app.call(
                "POST", f"/api/payments/{sale['id']}/refunds",
                json={"amount": 10, "reference": "R-2", "items": [{"sku": "SKU-9", "qty": 1}]},
            )  # fmt: skip
            assert (status, wrong["field"]) == (400, "items[0].sku")
            await until(lambda: _is(app.level("SKU-1"), 9))
            # Head office got both, once each, with their lines, and counted them.
            async with asyncio.timeout(15):
                await office.wait_for_sales(2, shop=shop)
            await until(lambda: _acknowledged(daemon, 2))
    received = office.sales_by_shop[shop]
    assert received[sale["id"]]["items"] == BASKET
    assert received[refund["id"]]["items"] == [dict(BASKET[0], qty=1)]
    assert office.book.level(shop, "SKU-1") == 9
    assert office.duplicates == 0


async def test_a_snapshot_crossing_a_sale_in_flight_loses_and_doubles_nothing(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, mqtt_broker: MqttBroker
) -> None:
    shop, slot = new_shop(), slot_name()
    office = HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop)
    await office.start()
    try:
        await office.publish_stock("SKU-1", level=10)
        config = _config(tmp_path, acquirer, slot, mqtt_broker, shop)
        async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
            app = Shop(http, daemon)
            await until(lambda: _is(app.level("SKU-1"), 10))
            await office.stop()  # head office away: the sale waits in its session
            await app.sell(slot, 1250, items=BASKET)
            await until(lambda: _is(app.level("SKU-1"), 8))
            # A delivery of 5 while head office has not got the sale yet: its snapshot says
            # level 15, counted 0, and crosses the sale (published by another connection, as
            # head office's session still holds the sale).
            office.book.deliver(shop, "SKU-1", 5)
            snapshot = office.book.snapshot(shop, "SKU-1")
            assert (snapshot.level, snapshot.counted) == (15, 0)
            async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as other:
                await other.publish(f"posgw/{shop}/stock/SKU-1", json.dumps(snapshot.body()),
                                    qos=1, retain=True)  # fmt: skip
            # Neither lost (15) nor counted twice (11).
            await until(lambda: _line_is(app, level=13, counted=0))
            await office.start()
            async with asyncio.timeout(15):
                await office.wait_for_sales(1, shop=shop)
            assert office.book.level(shop, "SKU-1") == 13
            await office.push_stock(shop, ["SKU-1"])  # the snapshot that counts the sale
            await until(lambda: _line_is(app, level=13, counted=-2))
    finally:
        await office.stop()


async def _is(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected


async def _acknowledged(daemon: Daemon, n: int) -> bool:
    """Head office's acknowledgements reached the shop, and its ledger is empty."""
    assert daemon._parts is not None
    (publisher,) = [w for name, w in daemon._parts.sync if name == "sync.outbox"]
    await publisher._refresh_backlog()
    diag = publisher.diagnostics()
    return bool(diag["acknowledged"] >= n and diag["unacknowledged"] == 0)


async def _line_is(app: Shop, *, level: int, counted: int) -> bool:
    status, line = await app.call("GET", "/api/stock/SKU-1")
    return bool(status == 200 and (line["level"], line["counted"]) == (level, counted))


async def test_sigkill_between_the_sale_and_its_publication(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession,
    private_broker: PrivateBroker,
) -> None:  # fmt: skip
    """The daemon dies right after the sale, the broker unreachable: after the restart, the
    sale reaches head office once and its stock movement is counted once, here and there."""
    shop, slot = new_shop(), slot_name()
    host, port = private_broker.host, private_broker.port
    office = HeadOffice(host=host, port=port, shop=shop)
    await office.start()
    await office.publish_stock("SKU-1", level=10)
    await office.stop()
    private_broker.stop()  # nothing can be published before the kill
    assert acquirer.url is not None
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.gateway.daemon.stock_child", str(tmp_path), acquirer.url,
        host, str(port), shop, slot, cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None
    try:
        async with asyncio.timeout(40):
            line = (await child.stdout.readline()).decode().split()
    finally:
        child.kill()  # SIGKILL
        await child.wait()
    assert line[0] == "completed", line
    sale_id = line[1]
    private_broker.start()
    await office.start()
    try:
        config = stock_child.config(tmp_path, acquirer.url, host, port, shop, slot)
        async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
            app = Shop(http, daemon)
            async with asyncio.timeout(20):
                await office.wait_for_sales(1, shop=shop)
            await until(lambda: _acknowledged(daemon, 1))
            await office.push_stock(shop, ["SKU-1"])
            await until(lambda: _line_is(app, level=8, counted=-2))
    finally:
        await office.stop()
    assert set(office.sales_by_shop[shop]) == {sale_id}
    assert office.sales_by_shop[shop][sale_id]["items"] == stock_child.BASKET
    assert office.book.level(shop, "SKU-1") == 8
