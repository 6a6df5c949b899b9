"""Head office's stock accounting for a fleet of shops (the simulator's side of docs/sync.md).

Per shop and SKU, head office keeps:

* ``level``: what it believes the shop holds (set by deliveries and counts, lowered by each
  sale it receives, raised by each refund);
* ``counted``: the net quantity change of the shop's own sales and refunds it has counted so
  far (a sale of 2 counts -2). Every snapshot it sends carries it, so the shop can add back
  exactly the sales head office had not counted yet when it computed the snapshot: a snapshot
  that crosses a sale in flight neither loses it nor counts it twice
  (``local level = level + (shop's own net - counted)``);
* ``version``: grows with every snapshot of the SKU (the larger of last + 1 and the clock in
  ms, so it keeps growing across restarts of the simulator).

A sale or refund is counted once per id (QoS 1 and the shop's re-sends deliver duplicates); a
sale voided the same day (revision 2, ``"voided": true``) gives its lines back once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Snapshot", "StockBook"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One SKU of one shop as head office publishes it."""

    shop: str
    sku: str
    level: int
    version: int
    counted: int

    def body(self) -> dict[str, Any]:
        """The ``stock/{sku}`` payload (docs/sync.md, gateway/contracts/mqtt/stock.schema.json)."""
        return {"sku": self.sku, "level": self.level, "version": self.version,
                "counted": self.counted}  # fmt: skip


def _stock_lines(items: object) -> Iterable[tuple[str, int]]:
    """``(sku, qty)`` of the lines that are stock (a string ``sku``; ``qty`` defaults to 1)."""
    if not isinstance(items, list):
        return []
    lines = []
    for line in items:
        if isinstance(line, Mapping) and isinstance(line.get("sku"), str):
            qty = line.get("qty", 1)
            if isinstance(qty, int) and not isinstance(qty, bool) and qty > 0:
                lines.append((line["sku"], qty))
    return lines


class StockBook:
    """Levels per shop and SKU, moved by the sales and refunds head office receives."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._level: dict[tuple[str, str], int] = {}
        self._counted: dict[tuple[str, str], int] = {}
        self._version: dict[tuple[str, str], int] = {}
        self._seen: set[tuple[str, str]] = set()

    def set_level(self, shop: str, sku: str, level: int) -> None:
        """A delivery or a stock count: the shop holds ``level`` (sales already counted stay)."""
        self._level[(shop, sku)] = level

    def deliver(self, shop: str, sku: str, qty: int) -> int:
        """Goods arrived at the shop (or left it, negative): the level moves by ``qty``."""
        key = (shop, sku)
        self._level[key] = self._level.get(key, 0) + qty
        return self._level[key]

    def level(self, shop: str, sku: str) -> int:
        """Head office's level for the shop's SKU (0 when never set nor sold)."""
        return self._level.get((shop, sku), 0)

    def count(self, shop: str, sale: Mapping[str, Any]) -> list[str]:
        """Count one sale or refund record once by id; returns the SKUs it moved.

        A sale's revision 2 with ``"voided": true`` gives its lines back, once (the shop's
        follower does the same under ``<id>:void``); other revisions move nothing (a declined
        forward's goods have left the shop all the same).
        """
        sale_id = sale.get("id")
        if not isinstance(sale_id, str):
            return []
        voided = sale.get("voided") is True
        once = sale_id + ":void" if voided else sale_id
        if (shop, once) in self._seen or (not voided and sale.get("revision") == 2):
            return []
        self._seen.add((shop, once))
        sign = 1 if sale.get("type") == "refund" or voided else -1
        moved = []
        for sku, qty in _stock_lines(sale.get("items")):
            key = (shop, sku)
            self._level[key] = self._level.get(key, 0) + sign * qty
            self._counted[key] = self._counted.get(key, 0) + sign * qty
            moved.append(sku)
        return moved

    def snapshot(self, shop: str, sku: str, *, version: int | None = None) -> Snapshot:
        """The next snapshot of the shop's SKU (its version grows)."""
        key = (shop, sku)
        last = self._version.get(key, 0)
        if version is None:
            version = max(last + 1, int(self._clock() * 1000))
        self._version[key] = max(version, last)
        return Snapshot(shop, sku, self._level.get(key, 0), version, self._counted.get(key, 0))

    def skus(self, shop: str) -> list[str]:
        """The SKUs head office knows for the shop, sorted."""
        return sorted(sku for s, sku in self._level if s == shop)
