"""The sync part's SQLite files on their own thread: the part's errors, closing, the thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gateway.sync.ledger import AckLedger, LedgerError
from gateway.sync.stock_store import StockClosed, StockError, StockStore


@pytest.mark.parametrize(("kind", "error"), [(AckLedger, LedgerError), (StockStore, StockError)])
async def test_a_file_that_cannot_be_opened_is_the_part_s_error(
    tmp_path: Path, kind: type[AckLedger] | type[StockStore], error: type[Exception]
) -> None:
    with pytest.raises(error, match="cannot open the"):
        await kind.open(tmp_path / "no such folder" / "file.db")


async def test_calls_run_on_one_thread_of_their_own_and_stop_once_closed(tmp_path: Path) -> None:
    ledger = await AckLedger.open(tmp_path / "acks.db")
    async with ledger:
        names = {await ledger._run(lambda: threading.current_thread().name) for _ in range(5)}
        assert len(names) == 1 and next(iter(names)).startswith("posgw-acks")
        assert names != {threading.current_thread().name}
        await ledger.record_sent([("pay_1", b"{}")])
    await ledger.close()  # a second close does nothing
    with pytest.raises(LedgerError, match="is closed"):
        await ledger.record_sent([("pay_2", b"{}")])
    store = await StockStore.open(tmp_path / "stock.db")
    await store.close()
    with pytest.raises(StockClosed, match="the stock store is closed"):
        await store._run(lambda: None)
