"""The real services the suite relies on: private pcscd + vpcd, and mosquitto."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest
from smartcard.System import readers

from simulator.pcscd import PrivatePcscd
from simulator.vpcd import ATR_T1
from tests.fixtures.mqtt import MqttBroker
from tests.fixtures.pcsc import AttachIcc


class Echo:
    def process(self, capdu: bytes) -> bytes:
        return b"\x90\x00"


@pytest.mark.pcsc
async def test_pyscard_lists_virtual_reader_and_sees_atr(
    pcscd: PrivatePcscd, attach_icc: AttachIcc
) -> None:
    names = [str(r) for r in await asyncio.to_thread(readers)]
    assert names == [r.name for r in pcscd.readers]
    await attach_icc(Echo())

    def atr_of_first_reader() -> bytes:
        connection = readers()[0].createConnection()
        connection.connect()
        try:
            return bytes(connection.getATR())
        finally:
            connection.disconnect()
            connection.release()

    assert await asyncio.to_thread(atr_of_first_reader) == ATR_T1


@pytest.mark.mqtt
async def test_message_round_trips_through_mosquitto(mqtt_broker: MqttBroker) -> None:
    topic = f"posgw/test/{uuid.uuid4().hex}"
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as subscriber:
        await subscriber.subscribe(topic, qos=1)
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as publisher:
            await publisher.publish(topic, b"sale 42", qos=1)
        async with asyncio.timeout(10):
            async for message in subscriber.messages:
                assert message.payload == b"sale 42"
                assert str(message.topic) == topic
                break
