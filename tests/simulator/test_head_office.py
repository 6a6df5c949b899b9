"""The simulated head office against the real mosquitto: dedup by sale id, status, stock, CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiomqtt
import pytest

from simulator.head_office import HeadOffice
from simulator.stock_book import StockBook
from tests.fixtures.mqtt import MqttBroker

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]
_n = iter(range(1, 1_000_000))


def shop_id() -> str:
    return f"ho-test-{next(_n)}"


async def test_records_each_sale_once_and_counts_duplicates(mqtt_broker: MqttBroker) -> None:
    shop = shop_id()
    async with (
        HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office,
        aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as till,
    ):
        topic = f"posgw/{shop}/sales"
        for sale_id in ("A", "B", "A", "C", "B"):
            await till.publish(topic, json.dumps({"id": sale_id, "amount": 1}).encode(), qos=1)
        await till.publish(topic, b"not json", qos=1)
        await till.publish(topic, b'{"amount": 1}', qos=1)
        await till.publish(f"posgw/{shop}/status", b'{"state": "online"}', qos=1)
        async with asyncio.timeout(10):
            await office.wait_for(lambda: office.malformed == 2 and len(office.statuses) == 1)
    assert sorted(office.sales) == ["A", "B", "C"]
    assert office.duplicates == 2
    assert len(office.received) == 8
    assert office.statuses == [{"state": "online"}]


async def test_stock_is_retained_with_growing_versions(mqtt_broker: MqttBroker) -> None:
    shop = shop_id()
    clock = iter([1.0, 1.0, 0.5]).__next__  # a clock that does not move or goes back
    async with HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop,
                          clock=clock) as office:  # fmt: skip
        first = await office.publish_stock("SKU-1", level=5)
        second = await office.publish_stock("SKU-1", level=4)
        third = await office.publish_stock("SKU-1", level=3)
        with pytest.raises(ValueError, match="sku"):
            await office.publish_stock("a/b", level=1)
    assert first < second < third
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as shop_client:
        await shop_client.subscribe(f"posgw/{shop}/stock/+", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(shop_client.messages))
    assert message.retain
    assert json.loads(message.payload) == {"sku": "SKU-1", "level": 3, "version": third,
                                           "counted": 0}


async def test_cli_prints_sales_until_signalled(mqtt_broker: MqttBroker) -> None:
    shop = shop_id()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli_head_office",
        "--broker", f"{mqtt_broker.host}:{mqtt_broker.port}", "--shop", shop,
        "--stock", "SKU-1=12", cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            stock = json.loads(await proc.stdout.readline())
            assert await proc.stdout.readline() == f"listening for posgw/{shop}/sales\n".encode()
            async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as till:
                sale = {"id": "P9", "amount": 250, "masked_pan": "476173******0010"}
                for _ in range(2):
                    await till.publish(f"posgw/{shop}/sales", json.dumps(sale).encode(), qos=1)
            printed = json.loads(await proc.stdout.readline())
            proc.send_signal(signal.SIGTERM)
            rest = await proc.stdout.read()
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert stock["stock"] == "SKU-1" and stock["level"] == 12
    assert printed == {"sale": sale}
    assert b"P9" not in rest  # the duplicate was not printed again


@pytest.mark.parametrize(
    "args",
    [
        ["--broker", "nohostport", "--shop", "s"],
        ["--broker", "127.0.0.1:1", "--shop", "s"],
        ["--broker", "127.0.0.1:1883", "--shop", "s", "--stock", "SKU"],
        ["--broker", "127.0.0.1:1883", "--shop", "a/b"],
    ],
)
async def test_cli_bad_input_exits_2(args: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli_head_office", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert err.startswith(b"error: ")


def test_the_book_gives_a_voided_sale_back_once_and_ignores_other_revisions() -> None:
    book = StockBook(clock=lambda: 1.0)
    book.set_level("s1", "SKU-1", 10)
    sale = {"id": "pay_1", "items": [{"sku": "SKU-1", "qty": 2}]}
    assert book.count("s1", sale) == ["SKU-1"]
    declined = {**sale, "revision": 2, "forward_declined": True}  # goods left all the same
    assert book.count("s1", declined) == []
    voided = {**sale, "revision": 2, "voided": True}
    assert book.count("s1", voided) == ["SKU-1"]
    assert book.count("s1", voided) == []  # a re-send moves nothing
    assert book.level("s1", "SKU-1") == 10
