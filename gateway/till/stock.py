"""The till API's stock routes: the local levels, as merged from head office and the shop.

=====================================  =========================================================
``GET /api/stock``                     every SKU the shop knows:
                                       ``{"low_threshold": 3, "skus": [{"sku", "level", "low",
                                       "version", "head_office_level", "counted",
                                       "local_net", "updated"}, ...]}``, sorted by SKU
``GET /api/stock/{sku}``               one SKU; ``404 not_found`` when unknown
=====================================  =========================================================

``level`` is head office's last level plus the shop's own sales and refunds it had not counted
(docs/sync.md, "Stock"); ``low`` is ``level <= low_threshold`` (``[mqtt] low_stock``).
Without ``[mqtt]`` there is no stock: ``503 stock_unavailable``. A malformed SKU is
``400 invalid_request`` naming ``sku``.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Protocol

from aiohttp import web

from gateway.errors import GatewayError
from gateway.till.jsonio import bad_request, error

__all__ = ["StockBackend", "add_stock_routes", "stock_line"]

_SKU = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class StockSource(Protocol):
    """What the routes read: :class:`gateway.sync.stock_store.StockStore`."""

    async def levels(self) -> dict[str, dict[str, Any]]: ...


class StockBackend(Protocol):
    """The daemon: its stock store (None without ``[mqtt]``) and the low-stock threshold."""

    @property
    def stock(self) -> StockSource | None: ...

    def low_stock_threshold(self) -> int: ...


def stock_line(sku: str, row: dict[str, Any], threshold: int) -> dict[str, Any]:
    """One SKU as the till API answers it."""
    updated = _dt.datetime.fromtimestamp(row["updated_ms"] / 1000, tz=_dt.UTC)
    return {
        "sku": sku,
        "level": row["level"],
        "low": row["level"] <= threshold,
        "version": row["version"],
        "head_office_level": row["head_office_level"],
        "counted": row["counted"],
        "local_net": row["local_net"],
        "updated": updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def add_stock_routes(app: web.Application, backend: StockBackend) -> None:
    """Mount ``GET /api/stock`` and ``GET /api/stock/{sku}`` (see the module docstring)."""

    async def levels() -> dict[str, dict[str, Any]]:
        store = backend.stock
        if store is None:
            raise error(web.HTTPServiceUnavailable, "stock_unavailable",
                        "no local stock: head-office sync ([mqtt]) is not configured")  # fmt: skip
        try:
            return await store.levels()
        except GatewayError:  # the store's SyncError; its base here: no MQTT library at start
            raise error(web.HTTPServiceUnavailable, "stock_unavailable",
                        "the stock file cannot be read") from None  # fmt: skip

    async def all_skus(_request: web.Request) -> web.Response:
        rows = await levels()
        threshold = backend.low_stock_threshold()
        skus = [stock_line(sku, row, threshold) for sku, row in rows.items()]
        return web.json_response({"low_threshold": threshold, "skus": skus})

    async def one_sku(request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        if not _SKU.match(sku):
            raise bad_request("sku", "expected 1-64 of A-Z a-z 0-9 . _ -")
        row = (await levels()).get(sku)
        if row is None:
            raise error(web.HTTPNotFound, "not_found", "no such SKU")
        return web.json_response(stock_line(sku, row, backend.low_stock_threshold()))

    app.router.add_get("/api/stock", all_skus)
    app.router.add_get("/api/stock/{sku}", one_sku)
