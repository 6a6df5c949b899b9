"""A void gives its basket lines back to local stock, once (docs/day.md "Void").

End to end: the daemon on a sim:// lane, the acquirer host, its journal, mosquitto and the
simulated head office (stock levels come from it). The sale lowers SKU-1 by its two units, the
void raises them again through the stock follower reading the voided sale's record (revision
2), and the records followed again after a restart move nothing more.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from gateway.sync.stock_follow import movements
from simulator.acquirer_host import AcquirerHost
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.daemon.test_stock import BASKET, Shop, _config, _is, until
from tests.gateway.daemon_support import (
    acquirer_fixture,
    fixed_env,
    http_fixture,
    running,
    slot_name,
)
from tests.gateway.sync_support import new_shop

__all__ = ["acquirer_fixture", "http_fixture"]

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]


async def test_a_void_gives_the_basket_back_to_stock_once(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, mqtt_broker: MqttBroker
) -> None:
    shop, slot = new_shop(), slot_name()
    async with HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office:
        await office.publish_stock("SKU-1", level=10)
        config = _config(tmp_path, acquirer, slot, mqtt_broker, shop)
        async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
            app = Shop(http, daemon)
            await until(lambda: _is(app.level("SKU-1"), 10))
            sale = await app.sell(slot, 1250, items=BASKET, reference="T-1")
            await until(lambda: _is(app.level("SKU-1"), 8))
            status, voided = await app.call("POST", f"/api/payments/{sale['id']}/void", json={})
            assert (status, voided["state"]) == (200, "VOIDED"), voided
            await until(lambda: _is(app.level("SKU-1"), 10))  # the two units back
            status, listing = await app.call("GET", "/api/stock")
            (line,) = listing["skus"]
            assert (line["level"], line["local_net"]) == (10, 0)
            position = await daemon.stock.position()
            last = await daemon.journal.outbox_after(0, limit=100)
            # head office took revision 2 ("voided") and gave the lines back in its book too
            await office.wait_for(lambda: office.sales[sale["id"]].get("voided") is True)
            assert office.book.level(shop, "SKU-1") == 10
        assert position == max(item.id for item in last)  # the voided record was followed
        async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
            app = Shop(http, daemon)
            # the stock file knows both keys (sale, void): following again moves nothing
            assert await daemon.stock.follow([m for item in last for m in movements(item)]) == 0
            assert await app.level("SKU-1") == 10
