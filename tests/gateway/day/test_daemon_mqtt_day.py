"""Head office hears of a declined forward and of the day close (a private mosquitto).

The acquirer is down: a card sale is approved offline and its record reaches head office
(``offline: true``). The acquirer comes back and its issuer declines the forward: the same sale is
published again, revision 2, ``forward_declined: true``. A manager closes the day: the day's
record arrives on ``posgw/{shop}/days``. No full PAN on the wire.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.journal import PaymentState
from gateway.till.authority import allow_as
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import running, slot_name
from tests.gateway.day.day_support import day_daemon, pay, post, till_session, wait_until

pytestmark = pytest.mark.mqtt

S = PaymentState


async def test_head_office_gets_the_declined_forward_and_the_day(
    tmp_path: Path, mqtt_broker: Any
) -> None:
    down = AcquirerHost()
    url = await down.start()
    port = int(url.rsplit(":", 1)[1])
    await down.stop()
    slot = slot_name()
    mqtt = {"host": mqtt_broker.host, "port": mqtt_broker.port}
    daemon = day_daemon(tmp_path, url, [slot], mqtt=mqtt, acquirer={"retry_interval": 0.2})
    daemon.authorise = allow_as("manager:dora")
    received: list[tuple[str, dict[str, Any]]] = []
    identifier = f"head-office-day-{uuid.uuid4().hex[:8]}"

    def connect() -> aiomqtt.Client:
        return aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier=identifier,
                              clean_session=False)  # fmt: skip

    async with connect() as head_office:  # a persistent session: nothing is missed
        await head_office.subscribe("posgw/shop-test/sales", qos=1)
        await head_office.subscribe("posgw/shop-test/days", qos=1)

    async def listen() -> None:
        while True:
            try:
                async with connect() as client:
                    async for message in client.messages:
                        raw = bytes(message.payload)  # type: ignore[arg-type]
                        assert b"4761739001010010" not in raw
                        received.append((str(message.topic), json.loads(raw)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    listener = asyncio.create_task(listen())
    revived = AcquirerHost()
    revived.faults.decline_all = True
    try:
        async with till_session(tmp_path) as http, running(daemon):
            sale = await pay(daemon, http, slot, 2500)
            assert sale["state"] == "STORED_FOR_FORWARDING", sale
            payment_id = str(sale["id"])
            await revived.start(port=port)

            async def declined() -> bool:
                return (await daemon.journal.get(payment_id)).state is S.FORWARD_DECLINED

            await wait_until(declined)
            status, day = await post(daemon, http, "/api/days/close")
            assert status == 201, day

            async def all_heard() -> bool:
                sales = [b for t, b in received if t.endswith("/sales") and b["id"] == payment_id]
                days = [b for t, b in received if t.endswith("/days")]
                return any(b.get("forward_declined") for b in sales) and bool(days)

            await wait_until(all_heard, within=20)
            assert await daemon.journal.unpublished_days() == []
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await revived.stop()
    sales = [b for t, b in received if t.endswith("/sales")]
    first = next(b for b in sales if b.get("revision") is None)
    assert (first["offline"], first["amount"]) == (True, 2500)
    second = next(b for b in sales if b.get("revision") == 2)
    assert (second["forward_declined"], second["amount"], second["currency"]) == (True, 2500, "EUR")
    days = [b for t, b in received if t.endswith("/days")]
    assert (days[0]["type"], days[0]["day"], days[0]["closed_by"]) == ("day", 1, "manager:dora")
    totals = {(t["dimension"], t["kind"]): t for t in days[0]["record"]["totals"]}
    assert totals[("all", "forward_declined")]["amount"] == 2500
