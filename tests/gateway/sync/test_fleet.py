"""A fleet on one broker: 5 shops, 2,000 sales with baskets, two broker restarts in between.

Each shop runs the daemon's sync parts on its own journal and stock file (the outbox
publisher with the acknowledgement ledger, the stock subscriber, the stock follower); the
simulated head office consumes every shop's sales and pushes each shop's stock back as it
counts them. At the end: every sale once at head office, and head office's levels and every
shop's levels equal to the expected ones (the initial level less what was sold)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.journal import Journal
from gateway.sync import AckLedger, OutboxPublisher, StockSync
from gateway.sync.stock_follow import StockFollower
from gateway.sync.stock_store import StockStore
from simulator.head_office import HeadOffice
from tests.gateway.journal_support import open_journal
from tests.gateway.sync_support import (
    FAST,
    PrivateBroker,
    complete_sale,
    factory,
    new_shop,
    private_broker,
    unsent_count,
)

__all__ = ["private_broker"]

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(240)]

SHOPS, SALES, SKUS, START = 5, 400, ["SKU-A", "SKU-B", "SKU-C", "SKU-D"], 10_000


@dataclass
class Shop:
    """One shop's sync parts, running."""

    name: str
    journal: Journal
    stock: StockStore
    ledger: AckLedger
    publisher: OutboxPublisher
    subscriber: StockSync
    follower: StockFollower
    sold: dict[str, int] = field(default_factory=dict)
    sale_ids: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def shop_running(tmp_path: Path, broker: PrivateBroker, name: str,
                       seed: int) -> AsyncIterator[Shop]:  # fmt: skip
    folder = tmp_path / name
    folder.mkdir()
    host, port = broker.host, broker.port
    async with (
        open_journal(folder, seed=seed) as journal,
        await StockStore.open(folder / "stock.db") as stock,
        await AckLedger.open(folder / "acks.db") as ledger,
    ):
        publisher = OutboxPublisher(journal=journal, client_factory=factory(host, port, name,
                                    "sales"), shop=name, poll_interval=0.2, backoff=FAST,
                                    ledger=ledger, ack_timeout=3.0)  # fmt: skip
        subscriber = StockSync(stock=stock, client_factory=factory(host, port, name, "stock"),
                               shop=name, backoff=FAST)  # fmt: skip
        follower = StockFollower(journal=journal, stock=stock, poll_interval=0.2)
        shop = Shop(name, journal, stock, ledger, publisher, subscriber, follower)
        shop.tasks = [asyncio.create_task(w.run()) for w in (publisher, subscriber, follower)]
        try:
            yield shop
        finally:
            for worker in (publisher, subscriber, follower):
                worker.stop()
            async with asyncio.timeout(20):
                await asyncio.gather(*shop.tasks, return_exceptions=True)


async def sell(shop: Shop, n: int, rng: random.Random) -> None:
    """``n`` basket sales, each settled in the journal, waking the publisher and the follower."""
    for _ in range(n):
        lines: list[dict[str, Any]] = []
        for sku in rng.sample(SKUS, rng.randint(1, 3)):
            qty = rng.randint(1, 3)
            lines.append({"sku": sku, "label": sku, "qty": qty, "unit_price": 100})
            shop.sold[sku] = shop.sold.get(sku, 0) + qty
        amount = sum(line["qty"] * line["unit_price"] for line in lines)
        sale = await complete_sale(shop.journal, amount=amount, items=lines)
        shop.sale_ids.append(sale.id)
        shop.publisher.notify()
        shop.follower.notify()


async def settled(shops: list[Shop], office: HeadOffice, tmp_path: Path) -> bool:
    for shop in shops:
        if len(office.sales_by_shop[shop.name]) < SALES:
            return False
        if unsent_count(tmp_path / shop.name / "journal.db") or await shop.ledger.count():
            return False
    return True


async def levels_match(shops: list[Shop]) -> bool:
    for shop in shops:
        levels = await shop.stock.levels()
        for sku in SKUS:
            row = levels.get(sku)
            expected = START - shop.sold.get(sku, 0)
            if row is None or row["level"] != expected or row["counted"] != -shop.sold.get(sku, 0):
                return False
    return True


async def until(check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("the fleet did not settle in time")
        await asyncio.sleep(0.1)


async def test_five_shops_two_thousand_sales_and_broker_restarts(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    names = [new_shop() for _ in range(SHOPS)]
    rng = random.Random(7)
    office = HeadOffice(host=private_broker.host, port=private_broker.port, shops=names,
                        identifier=f"head-office-fleet-{names[0]}", auto_push=True)  # fmt: skip
    await office.start()
    try:
        for name in names:
            for sku in SKUS:
                await office.publish_stock(sku, level=START, shop=name)
        async with contextlib.AsyncExitStack() as stack:
            shops = [await stack.enter_async_context(shop_running(tmp_path, private_broker,
                                                                  name, seed=n + 1))
                     for n, name in enumerate(names)]  # fmt: skip
            for third in range(3):
                await asyncio.gather(*(sell(shop, SALES // 3 + (third == 2) * (SALES % 3), rng)
                                       for shop in shops))  # fmt: skip
                if third < 2:  # a broker restart between the thirds (sales go on meanwhile)
                    private_broker.stop()
                    await asyncio.gather(*(sell(shop, 0, rng) for shop in shops))
                    private_broker.start()
            try:
                await until(lambda: settled(shops, office, tmp_path), within=120)
            except BaseException:
                for shop in shops:
                    print(shop.name, len(office.sales_by_shop[shop.name]),
                          unsent_count(tmp_path / shop.name / "journal.db"),
                          await shop.ledger.count(), shop.publisher.diagnostics())
                raise
            for name in names:
                await office.push_stock(name, SKUS)
            await until(lambda: levels_match(shops), within=60)
    finally:
        await office.stop()
    for shop in shops:
        assert sorted(office.sales_by_shop[shop.name]) == sorted(shop.sale_ids)
        assert len(shop.sale_ids) == SALES
        for sku in SKUS:
            assert office.book.level(shop.name, sku) == START - shop.sold.get(sku, 0)
    assert sum(len(office.sales_by_shop[n]) for n in names) == SHOPS * SALES
    assert office.connects >= 3  # it lived through both restarts
