"""The MQTT contract: every message on the wire, captured from a real mosquitto, matches its
JSON Schema in gateway/contracts/mqtt/ (docs/contracts.md); a changed message fails."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest

from gateway.contracts import MQTT_SCHEMAS, mqtt_schema, mqtt_validator, schema_name_for_topic
from gateway.sync import OutboxPublisher, messages
from gateway.sync.days import DayPublisher
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.journal_support import open_journal
from tests.gateway.sync_support import FAST, complete_sale, eventually, factory, new_shop

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]

CONTRACTS = Path(__file__).resolve().parents[3] / "gateway" / "contracts" / "mqtt"
BASKET: list[dict[str, Any]] = [
    {"sku": "SKU-1", "label": "Coffee 250g", "qty": 2, "unit_price": 450, "vat_rate": "5.5"},
    {"label": "Gift wrap", "qty": 1, "unit_price": 350, "vat_rate": "20"},
]


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    files = sorted(p.name for p in CONTRACTS.glob("*.schema.json"))
    assert set(MQTT_SCHEMAS.values()) | {"line.schema.json"} == set(files)
    for name in files:
        jsonschema.Draft202012Validator.check_schema(mqtt_schema(name))


def test_every_topic_the_gateway_names_has_a_schema() -> None:
    """A new topic function in gateway/sync/messages.py without a schema fails here."""
    topics = []
    for name, function in inspect.getmembers(messages, inspect.isfunction):
        if name.endswith("_topic") and function.__module__ == messages.__name__:
            arguments = ["shop-1", "SKU-1"][: len(inspect.signature(function).parameters)]
            topics.append(function(*arguments))
    assert len(topics) == len(MQTT_SCHEMAS)
    for topic in topics:
        assert (CONTRACTS / schema_name_for_topic(topic)).exists(), topic


@contextlib.asynccontextmanager
async def capture(broker: MqttBroker, shop: str) -> AsyncIterator[list[aiomqtt.Message]]:
    """Every message on ``posgw/{shop}/#`` while the block runs (an MQTT 5 subscriber)."""
    seen: list[aiomqtt.Message] = []
    async with aiomqtt.Client(broker.host, broker.port,
                              protocol=aiomqtt.ProtocolVersion.V5) as client:  # fmt: skip
        await client.subscribe(f"posgw/{shop}/#", qos=1)

        async def record() -> None:
            async for message in client.messages:
                seen.append(message)

        task = asyncio.create_task(record())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


def make_publisher(journal: Any, host: str, port: int, shop: str) -> OutboxPublisher:
    return OutboxPublisher(journal=journal, client_factory=factory(host, port, shop, "sales"),
                           shop=shop, poll_interval=0.05, backoff=FAST)  # fmt: skip


async def _day_record(journal: Any) -> dict[str, Any]:
    """The record a day close journals (gateway/day/close.py), for the journal's payments."""
    from gateway.day.terminals import terminal_reconciliation, unavailable
    from gateway.day.totals import day_totals, journal_acquirer_lines

    payments = await journal.day_payments(0, journal.now_ms() + 1)
    # a TPE lane whose totals count a debit the journal has not (differences with nulls), and
    # one whose terminal gave none
    totals = await journal.add_terminal_totals(
        lane="2", actor="manager:test", ok=True, transactions=2, debits=5700, refunds=0,
        currency="EUR", message="")
    differing, _count = terminal_reconciliation("2", journal_acquirer_lines([]), totals)
    assert differing["differences"]
    return {
        "day": 1, "opened_ms": 0, "closed_ms": journal.now_ms(), "closed_by": "manager:test",
        "payments": len(payments), "in_flight": 0,
        "totals": [line.to_json() for line in day_totals(payments)],
        "journal_lines": [{"currency": line.currency, "kind": line.kind, "count": line.count,
                           "amount": line.amount} for line in journal_acquirer_lines(payments)],
        "acquirer": {"reconciled": False, "error": "not asked in this test"},
        "terminals": [differing, unavailable("3", [], "Concert V2 has no end-of-day")],
    }  # fmt: skip


def families(seen: list[aiomqtt.Message]) -> set[str]:
    return {schema_name_for_topic(str(m.topic)) for m in seen}


async def test_live_messages_match_their_schemas(tmp_path: Path, mqtt_broker: MqttBroker) -> None:
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with (
        capture(mqtt_broker, shop) as seen,
        HeadOffice(host=host, port=port, shop=shop) as office,
        open_journal(tmp_path) as journal,
    ):
        sale = await complete_sale(journal, amount=1250, items=BASKET)
        await complete_sale(journal, amount=990)
        refund = await journal.create_refund(sale.id, lane="1", amount=450, actor="test",
                                             items=[dict(BASKET[0], qty=1)])  # fmt: skip
        await journal.card_read(refund.id, masked_pan="476173******0010", aid="A0000000031010",
                                actor="test")  # fmt: skip
        await journal.request_auth(refund.id, actor="test")
        await journal.approve(refund.id, auth_code="R00001", actor="test")
        await journal.complete(refund.id, actor="test")
        await office.publish_stock("SKU-1", level=40)
        # a closed day (docs/day.md), published on posgw/{shop}/days
        await journal.record_day_close(
            opened_ms=0, closed_ms=journal.now_ms(), actor="manager:test", differences=0,
            record=await _day_record(journal),
        )  # fmt: skip
        days = DayPublisher(journal=journal, client_factory=factory(host, port, shop, "days"),
                            shop=shop, retry_interval=0.2)  # fmt: skip
        days_task = asyncio.create_task(days.run())
        publisher = make_publisher(journal, host, port, shop)
        task = asyncio.create_task(publisher.run())
        async with asyncio.timeout(15):
            await office.wait_for_sales(3)
            await eventually(lambda: publisher.diagnostics()["acknowledged"] >= 3)
        publisher.stop()
        await task
        await eventually(lambda: days.published == 1)
        days_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await days_task
        async with asyncio.timeout(10):
            await office.wait_for_status("offline")
        await eventually(lambda: families(seen) == set(MQTT_SCHEMAS.values()))
    checked = 0
    for message in seen:
        validator = mqtt_validator(schema_name_for_topic(str(message.topic)))
        errors = [e.message for e in validator.iter_errors(json.loads(message.payload))]
        assert errors == [], (str(message.topic), errors)
        checked += 1
    assert checked >= 8  # 3 sales, a snapshot, acks, online and offline status, a day
    kinds = {json.loads(m.payload).get("type") for m in seen if str(m.topic).endswith("/sales")}
    assert kinds == {"sale", "refund"}


async def test_a_message_that_changes_without_its_schema_fails(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with (
        HeadOffice(host=host, port=port, shop=shop) as office,
        open_journal(tmp_path) as journal,
    ):
        await complete_sale(journal, items=BASKET)
        publisher = make_publisher(journal, host, port, shop)
        task = asyncio.create_task(publisher.run())
        async with asyncio.timeout(15):
            (live,) = (await office.wait_for_sales(1)).values()
        publisher.stop()
        await task
    validator = mqtt_validator("sale.schema.json")
    assert validator.is_valid(live)
    assert not validator.is_valid(dict(live, cashier="alice"))  # a field added
    assert not validator.is_valid({k: v for k, v in live.items() if k != "currency"})  # removed
    assert not validator.is_valid(dict(live, amount="12.50"))  # a type changed
    line = dict(live["items"][0], discount=10)
    assert not validator.is_valid(dict(live, items=[line]))  # a line changed
