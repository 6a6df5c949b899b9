"""Head office's snapshots merged with the shop's own movements, and the stock follower on a
real journal: no sale lost or counted twice when a snapshot crosses it (docs/sync.md, Stock)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.sync.stock_follow import StockFollower
from gateway.sync.stock_store import StockStore
from tests.gateway.journal_support import open_journal
from tests.gateway.sync_support import AID, MASKED, complete_sale

BASKET = [{"sku": "SKU-1", "label": "Coffee", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
          {"label": "Bag", "qty": 1, "unit_price": 10, "vat_rate": "20"}]  # fmt: skip


async def test_a_snapshot_crossing_a_sale_neither_loses_nor_doubles_it(tmp_path: Path) -> None:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        await stock.apply_update("SKU-1", level=10, version=1, counted=0)
        assert await stock.apply_sale(BASKET, sale_id="S1") == {"SKU-1": 8}
        # Head office publishes (a delivery of 5) before it has the sale: counted is still 0.
        assert await stock.apply_update("SKU-1", level=15, version=2, counted=0)
        assert await stock.level("SKU-1") == 13
        # Then it receives the sale and counts it.
        assert await stock.apply_update("SKU-1", level=13, version=3, counted=-2)
        assert await stock.level("SKU-1") == 13
        # The order reversed: the stale snapshot arriving late is ignored.
        assert not await stock.apply_update("SKU-1", level=15, version=2, counted=0)
        assert await stock.level("SKU-1") == 13
        row = (await stock.levels())["SKU-1"]
    assert (row["head_office_level"], row["counted"], row["local_net"]) == (13, -2, -2)


async def test_a_refund_raises_and_a_snapshot_without_counted_is_the_whole_truth(
    tmp_path: Path,
) -> None:
    async with await StockStore.open(tmp_path / "stock.db") as stock:
        await stock.apply_update("SKU-1", level=10, version=1, counted=0)
        await stock.apply_sale(BASKET, sale_id="S1")
        assert await stock.apply_sale([{"sku": "SKU-1", "qty": 1}], sale_id="R1",
                                      refund=True) == {"SKU-1": 9}  # fmt: skip
        assert await stock.apply_sale([{"sku": "SKU-1", "qty": 1}], sale_id="R1",
                                      refund=True) == {}  # fmt: skip
        await stock.apply_update("SKU-1", level=4, version=2)  # an older head office
        assert await stock.level("SKU-1") == 4
        await stock.apply_sale([{"sku": "SKU-1"}], sale_id="S2")
        assert await stock.level("SKU-1") == 3


async def test_a_version_1_stock_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "stock.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE stock (sku TEXT PRIMARY KEY, level INTEGER NOT NULL, version INTEGER "
        "NOT NULL, updated_ms INTEGER NOT NULL); CREATE TABLE applied_sales (sale_id TEXT "
        "PRIMARY KEY, at_ms INTEGER NOT NULL); INSERT INTO stock VALUES ('SKU-1', 7, 3, 0);"
        "INSERT INTO applied_sales VALUES ('OLD', 0);"
    )
    conn.close()
    async with await StockStore.open(path) as stock:
        assert await stock.level("SKU-1") == 7
        assert await stock.apply_sale([{"sku": "SKU-1"}], sale_id="OLD") == {}
        assert await stock.apply_sale([{"sku": "SKU-1"}], sale_id="NEW") == {"SKU-1": 6}
        assert await stock.apply_update("SKU-1", level=20, version=4, counted=-1)
        assert await stock.level("SKU-1") == 20
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


async def test_the_follower_applies_each_settled_sale_and_refund_once(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        async with await StockStore.open(tmp_path / "stock.db") as stock:
            await stock.apply_update("SKU-1", level=10, version=1, counted=0)
            sale = await complete_sale(journal, items=BASKET)
            await complete_sale(journal, items=[{"sku": "SKU-2", "label": "Tea", "qty": 3,
                                                 "unit_price": 300}])  # fmt: skip
            await complete_sale(journal)  # no basket: no movement
            refund = await journal.create_refund(sale.id, lane="1", amount=450, actor="test",
                                                 items=[dict(BASKET[0], qty=1)])  # fmt: skip
            await journal.card_read(refund.id, masked_pan=MASKED, aid=AID, actor="test")
            await journal.request_auth(refund.id, actor="test")
            await journal.approve(refund.id, auth_code="R1", actor="test")
            await journal.complete(refund.id, actor="test")
            follower = StockFollower(journal=journal, stock=stock, batch=2)
            assert await follower.catch_up() == 3
            assert await follower.catch_up() == 0
            levels = {sku: v["level"] for sku, v in (await stock.levels()).items()}
            position = await stock.position()
        # A new follower on the reopened file (a restart) resumes and applies nothing again.
        async with await StockStore.open(tmp_path / "stock.db") as stock:
            again = StockFollower(journal=journal, stock=stock)
            assert await again.catch_up() == 0
            assert await stock.position() == position == 4
            # The stored position is what stops a replay: rewound, the payment ids still do.
            stock._db().execute("UPDATE follower SET position = 0")
            assert await again.catch_up() == 0
            after = {sku: v["level"] for sku, v in (await stock.levels()).items()}
    assert levels == {"SKU-1": 9, "SKU-2": -3}
    assert after == levels
