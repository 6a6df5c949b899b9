"""The daemon with ``[mqtt]``: a completed sale reaches head office through the outbox, on a
private mosquitto, and the snapshot reports the connection (no full PAN on the wire)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from gateway.daemon.daemon import Daemon
from simulator.acquirer_host import AcquirerHost
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)

__all__ = ["acquirer_fixture", "http_fixture"]

pytestmark = pytest.mark.mqtt


async def test_completed_sale_is_published_to_head_office(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, mqtt_broker: Any
) -> None:
    pytest.importorskip("gateway.sync")
    assert acquirer.url is not None
    slot = slot_name()
    config = make_config(
        tmp_path, acquirer.url, [slot], mqtt={"host": mqtt_broker.host, "port": mqtt_broker.port}
    )
    # Head office keeps a persistent session (clean_session=False) under its own id, so a
    # sale queued while its connection dropped is delivered when it reconnects (MQTT 3.1.1,
    # 3.1.2.4): the test reads the sale however the connection behaves meanwhile.
    identifier = f"head-office-test-{uuid.uuid4().hex[:8]}"

    def head_office_client() -> aiomqtt.Client:
        return aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier=identifier,
                              clean_session=False)  # fmt: skip

    async with head_office_client() as head_office:
        await head_office.subscribe("posgw/shop-test/sales", qos=1)
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        result = await till.get(str(body["id"]), wait=10)
        assert result["state"] == "COMPLETED"
        payload = await _first_sale(head_office_client)
        assert b"4761739001010010" not in payload
        record = json.loads(payload)
        assert body["id"] in json.dumps(record)
        snapshot = (await daemon.snapshot()).to_json()
        assert snapshot["mqtt"]["enabled"] is True


async def _first_sale(connect: Callable[[], aiomqtt.Client]) -> bytes:
    """The first sale message, reconnecting (same persistent session) if the link drops."""
    async with asyncio.timeout(20):
        while True:
            try:
                async with connect() as client:
                    async for message in client.messages:
                        return bytes(message.payload)  # type: ignore[arg-type]
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)
