"""Local stock: versioned head-office levels applied once, sales taken off once (docs/sync.md).

The store runs on a real SQLite file; StockSync runs against the real mosquitto with the
simulated head office publishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.sync import StockSync, stock_topic
from gateway.sync.stock_store import InvalidItems, StockClosed, StockStore
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.sync_support import FAST, eventually, factory, new_shop

# -- the store on its own ---------------------------------------------------------------------


async def test_newer_version_applies_and_stale_or_equal_is_ignored(tmp_path: Path) -> None:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        assert await stock.apply_update("SKU-1", level=10, version=5) is True
        assert await stock.apply_update("SKU-1", level=99, version=4) is False  # stale
        assert await stock.apply_update("SKU-1", level=99, version=5) is False  # duplicate
        assert await stock.level("SKU-1") == 10
        assert await stock.apply_update("SKU-1", level=7, version=6) is True
        assert await stock.level("SKU-1") == 7
        assert (await stock.levels())["SKU-1"]["version"] == 6
        assert await stock.level("nope") is None


async def test_sale_decrements_once_per_sale_id(tmp_path: Path) -> None:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        await stock.apply_update("SKU-1", level=10, version=1)
        items = [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-1"}, {"name": "gift wrap"},
                 {"sku": "SKU-9", "qty": 1}]  # fmt: skip
        assert await stock.apply_sale(items, sale_id="P1") == {"SKU-1": 7, "SKU-9": -1}
        assert await stock.apply_sale(items, sale_id="P1") == {}  # replayed: no change
        assert await stock.level("SKU-1") == 7
        assert await stock.apply_sale([{"sku": "SKU-1"}]) == {"SKU-1": 6}  # no id: applied
        # A later head-office level overrides local arithmetic, a never-set SKU takes any version.
        assert await stock.apply_update("SKU-9", level=3, version=1) is True
        assert await stock.level("SKU-9") == 3
        assert await stock.apply_sale(None, sale_id="P2") == {}


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ("SKU-1", "items"),
        ([1], "items[0]"),
        ([{"sku": "SKU-1"}, {"sku": 5}], "items[1].sku"),
        ([{"sku": ""}], "items[0].sku"),
        ([{"sku": "SKU-1", "qty": 0}], "items[0].qty"),
        ([{"sku": "SKU-1", "qty": True}], "items[0].qty"),
        ([{"sku": "SKU-1", "qty": "2"}], "items[0].qty"),
    ],
)
async def test_bad_basket_is_refused_whole(tmp_path: Path, items: object, field: str) -> None:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        await stock.apply_update("SKU-1", level=10, version=1)
        with pytest.raises(InvalidItems) as caught:
            await stock.apply_sale(items, sale_id="P1")  # type: ignore[arg-type]
        assert caught.value.field == field
        assert await stock.level("SKU-1") == 10
        assert await stock.apply_sale([{"sku": "SKU-1"}], sale_id="P1") == {"SKU-1": 9}


async def test_levels_survive_reopen_and_close_is_idempotent(tmp_path: Path) -> None:
    stock = await StockStore.open(tmp_path / "stock.db")
    await stock.apply_update("SKU-1", level=4, version=2)
    await stock.apply_sale([{"sku": "SKU-1"}], sale_id="P1")
    await stock.close()
    await stock.close()
    with pytest.raises(StockClosed):
        await stock.level("SKU-1")
    async with await StockStore.open(tmp_path / "stock.db") as again:
        assert await again.level("SKU-1") == 3
        assert await again.apply_sale([{"sku": "SKU-1"}], sale_id="P1") == {}
        assert await again.apply_update("SKU-1", level=50, version=1) is False


# -- StockSync over MQTT --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stock_sync(tmp_path: Path, broker: MqttBroker, shop: str) -> AsyncIterator[StockSync]:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        sync = StockSync(stock=stock, client_factory=factory(broker.host, broker.port, shop,
                         "stock"), shop=shop, backoff=FAST)  # fmt: skip
        task = asyncio.create_task(sync.run(), name="sync.stock")
        try:
            async with asyncio.timeout(10):
                await sync.wait_subscribed()
            yield sync
        finally:
            sync.stop()
            async with asyncio.timeout(10):
                await task


@pytest.mark.mqtt
@pytest.mark.timeout(60)
async def test_stock_updates_from_head_office(tmp_path: Path, mqtt_broker: MqttBroker) -> None:
    shop = new_shop()
    async with HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office:
        # Published before the shop subscribed: arrives as a retained message.
        await office.publish_stock("SKU-1", level=40, version=10)
        async with stock_sync(tmp_path, mqtt_broker, shop) as sync:
            await eventually(lambda: sync.diagnostics()["applied"] == 1)
            await office.publish_stock("SKU-2", level=5, version=1)
            await office.publish_stock("SKU-1", level=30, version=9)  # stale: ignored
            await office.publish_stock("SKU-1", level=35, version=11)
            await office.publish_stock("SKU-1", level=35, version=11)  # duplicate: ignored
            # Malformed messages are refused and the subscriber goes on.
            await office.publish_raw(stock_topic(shop, "SKU-3"), b"not json")
            body = {"sku": "SKU-4", "level": -1, "version": 1}
            await office.publish_raw(stock_topic(shop, "SKU-4"), json.dumps(body).encode())
            body = {"sku": "SKU-X", "level": 1, "version": 1}
            await office.publish_raw(stock_topic(shop, "SKU-5"), json.dumps(body).encode())
            await office.publish_stock("SKU-6", level=1, version=1)
            await eventually(lambda: sync.diagnostics()["applied"] == 4)
            await eventually(lambda: sync.diagnostics()["ignored_stale"] == 2)
            await eventually(lambda: sync.diagnostics()["rejected"] == 3)
            levels = await sync.levels()
            diag = sync.diagnostics()
            # A sale (the daemon's call after COMPLETED) takes from local stock.
            after = await sync.apply_sale([{"sku": "SKU-1", "qty": 3}], sale_id="P1")
            assert after == {"SKU-1": 32}
            assert await sync.apply_sale([{"sku": "SKU-1", "qty": 3}], sale_id="P1") == {}
            # Head office's next snapshot counts that sale (counted -3): its level is the level.
            body = {"sku": "SKU-1", "level": 31, "version": 12, "counted": -3}
            await office.publish_raw(stock_topic(shop, "SKU-1"), json.dumps(body).encode())
            await eventually(lambda: sync.diagnostics()["applied"] == 5)
            final = await sync.levels()
    assert {sku: v["level"] for sku, v in levels.items()} == {"SKU-1": 35, "SKU-2": 5, "SKU-6": 1}
    assert levels["SKU-1"]["version"] == 11
    assert diag["connected"] is True
    assert diag["last_error"] == f"{stock_topic(shop, 'SKU-5')}: sku: does not match the topic"
    assert final["SKU-1"]["level"] == 31
    assert "SKU-3" not in final and "SKU-4" not in final and "SKU-5" not in final


@pytest.mark.mqtt
@pytest.mark.timeout(60)
async def test_updates_published_while_away_apply_on_return(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    """Persistent session (queued QoS 1) and retained levels: the newest one wins on return."""
    shop = new_shop()
    async with HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office:
        async with stock_sync(tmp_path, mqtt_broker, shop):
            pass
        await office.publish_stock("SKU-1", level=8, version=3)
        await office.publish_stock("SKU-1", level=6, version=4)
        async with stock_sync(tmp_path, mqtt_broker, shop) as sync:
            await eventually(lambda: sync.diagnostics()["applied"] >= 1)
            await eventually(lambda: (sync.diagnostics()["applied"]
                                      + sync.diagnostics()["ignored_stale"]) >= 2)  # fmt: skip
            levels = await sync.levels()
    assert (levels["SKU-1"]["level"], levels["SKU-1"]["version"]) == (6, 4)
