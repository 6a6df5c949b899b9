"""The child process of the SIGKILL stock test (no tests here): a real daemon that sells one
basket, prints ``completed <id>`` as soon as the sale is COMPLETED, and waits to be killed.

Run as ``python -m tests.gateway.daemon.stock_child TMP ACQUIRER_URL HOST PORT SHOP SLOT``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

from gateway.daemon.daemon import Daemon
from tests.gateway.daemon_support import (
    Till,
    fixed_env,
    insert_card,
    make_config,
    running,
    till_token,
)

BASKET: list[dict[str, Any]] = [
    {"sku": "SKU-1", "label": "Coffee 250g", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
    {"label": "Gift wrap", "qty": 1, "unit_price": 350, "vat_rate": "20"},
]


def config(tmp: Path, url: str, host: str, port: int, shop: str, slot: str) -> Any:
    """The configuration the child and the test's restarted daemon share."""
    mqtt = {"host": host, "port": port, "acknowledgements": True}
    return make_config(tmp, url, [slot], mqtt=mqtt, shop=shop)


async def _main(tmp: Path, url: str, host: str, port: int, shop: str, slot: str) -> None:
    daemon = Daemon(config(tmp, url, host, port, shop, slot), env=fixed_env, environ={})
    headers = {"Authorization": f"Bearer {till_token(tmp)}"}
    async with running(daemon), aiohttp.ClientSession(headers=headers) as http:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        status, started = await till.pay(1, 1250, items=BASKET)
        assert status == 202, started
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        result = await till.get(str(started["id"]), wait=10)
        print(result["state"].lower(), result["id"], flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    tmp_dir, acquirer_url, broker_host, broker_port, shop_id, slot_id = sys.argv[1:7]
    asyncio.run(_main(Path(tmp_dir), acquirer_url, broker_host, int(broker_port), shop_id,
                      slot_id))  # fmt: skip
