"""The sync wire format without a broker: topics, sale envelope, card-data refusal, stock."""

from __future__ import annotations

import json

import pytest

from gateway.journal import OutboxItem
from gateway.sync import (
    CardDataRefused,
    MessageError,
    StockUpdate,
    parse_stock_update,
    sale_message,
    sales_topic,
    status_payload,
    status_topic,
    stock_filter,
    stock_topic,
)
from gateway.sync.client import mqtt_client_factory
from gateway.sync.messages import check_name
from tests.gateway.sync_support import MASKED, PAN, TRACK2, card_data_in

SHOP = "shop-001"


def record(**changes: object) -> OutboxItem:
    body = {"type": "sale", "payment_id": "P1", "lane": "2", "amount": 1250, "currency": "EUR",
            "masked_pan": MASKED, "aid": "A0000000031010", "auth_code": "A1B2C3",
            "response_code": "00", "offline": False, "completed_ms": 1_700_000_000_123,
            "items": [{"sku": "SKU-1", "qty": 2}]}  # fmt: skip
    body.update(changes)
    return OutboxItem.of(7, "P1", body, attempts=1, created_ms=0)


def test_topics() -> None:
    assert sales_topic(SHOP) == "posgw/shop-001/sales"
    assert stock_topic(SHOP, "SKU-1") == "posgw/shop-001/stock/SKU-1"
    assert stock_filter(SHOP) == "posgw/shop-001/stock/+"
    assert status_topic(SHOP) == "posgw/shop-001/status"
    for bad in ("", "a/b", "a+", "#", "x" * 65, "é"):
        with pytest.raises(ValueError, match="shop"):
            check_name("shop", bad)
    with pytest.raises(ValueError, match="shop"):
        mqtt_client_factory(host="h", port=1883, shop="a/b", role="sales")
    with pytest.raises(ValueError, match="port"):
        mqtt_client_factory(host="h", port=0, shop=SHOP, role="sales")


def test_sale_envelope() -> None:
    message = json.loads(sale_message(record(), shop=SHOP))
    assert message["id"] == "P1"
    assert message["outbox_id"] == 7
    assert message["shop"] == SHOP
    assert message["schema"] == 1
    assert message["time"] == "2023-11-14T22:13:20.123Z"
    assert message["masked_pan"] == MASKED
    assert message["amount"] == 1250
    assert message["items"] == [{"sku": "SKU-1", "qty": 2}]
    assert card_data_in(sale_message(record(), shop=SHOP)) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"masked_pan": PAN}, "masked_pan"),
        ({"masked_pan": "4761739001****10"}, "masked_pan"),
        ({"items": [{"sku": "SKU-1", "note": PAN}]}, "sale.items[0].note"),
        ({"items": [{"sku": TRACK2}]}, "sale.items[0].sku"),
        ({"auth_code": "4761-7390-0101-0010"}, "sale.auth_code"),
    ],
)
def test_card_data_is_refused_and_never_quoted(changes: dict[str, object], field: str) -> None:
    with pytest.raises(CardDataRefused) as caught:
        sale_message(record(**changes), shop=SHOP)
    assert caught.value.field == field
    text = str(caught.value) + repr(caught.value)
    assert PAN not in text and "47617390" not in text


def test_status_payloads() -> None:
    assert json.loads(status_payload(SHOP, online=True)) == {
        "schema": 1, "shop": SHOP, "state": "online"}  # fmt: skip
    assert json.loads(status_payload(SHOP, online=False, clean=False))["clean"] is False


def test_stock_update_parsed() -> None:
    body = json.dumps({"sku": "SKU-1", "level": 0, "version": 2**63 - 1}).encode()
    update = parse_stock_update(stock_topic(SHOP, "SKU-1"), body, shop=SHOP)
    assert update == StockUpdate(sku="SKU-1", level=0, version=2**63 - 1)


@pytest.mark.parametrize(
    ("topic", "payload", "field"),
    [
        ("posgw/other/stock/SKU-1", b"{}", "topic"),
        ("posgw/shop-001/stock/", b"{}", "topic"),
        ("posgw/shop-001/stock/a/b", b"{}", "topic"),
        ("posgw/shop-001/stock/SKU-1", b"\xff", "payload"),
        ("posgw/shop-001/stock/SKU-1", b"{", "payload"),
        ("posgw/shop-001/stock/SKU-1", b"[1]", "payload"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-2","level":1,"version":1}', "sku"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","version":1}', "level"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","level":-1,"version":1}', "level"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","level":1.5,"version":1}', "level"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","level":1,"version":0}', "version"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","level":1,"version":true}', "version"),
        ("posgw/shop-001/stock/SKU-1", b'{"sku":"SKU-1","level":1,"version":1e30}', "version"),
        (
            "posgw/shop-001/stock/SKU-1",
            b'{"sku":"SKU-1","level":1,"version":99999999999999999999}',
            "version",
        ),
    ],
)
def test_bad_stock_messages(topic: str, payload: bytes, field: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse_stock_update(topic, payload, shop=SHOP)
    assert caught.value.field == field
    assert caught.value.topic == topic


def test_generated_numbers_that_pass_luhn_still_publish() -> None:
    # 1795616578989 ms (a completion time in 2026) passes the Luhn check, as one timestamp in ten
    # does: the sale must still leave, or one sale in ten would wait in the outbox for ever.
    from gateway.journal.guard import luhn_ok

    assert luhn_ok("1795616578989")
    message = json.loads(sale_message(record(completed_ms=1_795_616_578_989), shop=SHOP))
    assert message["completed_ms"] == 1_795_616_578_989
    # Card data in a caller's field is still refused.
    with pytest.raises(CardDataRefused):
        sale_message(record(completed_ms=1_795_616_578_989, auth_code=PAN), shop=SHOP)
