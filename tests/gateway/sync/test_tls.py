"""Head-office sync over TLS, against a real mosquitto with a client-certificate listener.

The broker (``mqtt_tls_broker``) has a TLS listener that requires a client certificate and a
plain listener the test reads from as head office. The PKI is made for the session.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import aiohttp
import aiomqtt
import pytest

from gateway.daemon.config import ConfigError, parse_config
from gateway.daemon.daemon import Daemon
from gateway.sync import TlsConfigError, client_tls_context, mqtt_client_factory
from simulator.acquirer_host import AcquirerHost
from tests.fixtures.mqtt import MqttTlsBroker
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

pytestmark = [pytest.mark.mqtt, pytest.mark.both_loops]  # the daemon's two event loops


def _factory(broker: MqttTlsBroker, **tls: Path | None) -> aiomqtt.Client:
    context = client_tls_context(**tls)
    make = mqtt_client_factory(host=broker.host, port=broker.tls_port, shop="shop-tls",
                               role="sales", tls_context=context, timeout=5)  # fmt: skip
    return make()


async def test_publish_over_tls_with_client_certificate(mqtt_tls_broker: MqttTlsBroker) -> None:
    files = mqtt_tls_broker.files
    topic = f"posgw/tls-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(mqtt_tls_broker.host, mqtt_tls_broker.plain_port) as head_office:
        await head_office.subscribe(topic, qos=1)
        client = _factory(mqtt_tls_broker, ca_file=files.ca, cert_file=files.client_cert,
                          key_file=files.client_key)  # fmt: skip
        async with client:
            await client.publish(topic, b"over tls", qos=1)
        async with asyncio.timeout(10):
            message = await anext(head_office.messages)
    assert message.payload == b"over tls"


# paho-mqtt drops the SSL socket of a failed handshake without closing it; the garbage collector
# closes it (ResourceWarning). Not a leak of ours: the warning is all this filter hides.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_broker_signed_by_another_ca_is_refused(mqtt_tls_broker: MqttTlsBroker) -> None:
    files = mqtt_tls_broker.files
    client = _factory(mqtt_tls_broker, ca_file=files.other_ca, cert_file=files.client_cert,
                      key_file=files.client_key)  # fmt: skip
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)certificate"):
        async with asyncio.timeout(10), client:
            pass


async def test_broker_refuses_a_client_without_certificate(
    mqtt_tls_broker: MqttTlsBroker,
) -> None:
    client = _factory(mqtt_tls_broker, ca_file=mqtt_tls_broker.files.ca)
    with pytest.raises(aiomqtt.MqttError):
        async with asyncio.timeout(10), client:
            await client.publish("posgw/never", b"x", qos=1)


def test_unusable_tls_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(TlsConfigError, match=r"missing\.pem"):
        client_tls_context(ca_file=missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(TlsConfigError, match=r"garbage\.pem"):
        client_tls_context(ca_file=garbage)
    with pytest.raises(TlsConfigError, match="key_file"):
        client_tls_context(cert_file=garbage, key_file=missing)


def _document(**mqtt: object) -> dict[str, object]:
    return {
        "shop": "shop-test",
        "acquirer": {"url": "http://127.0.0.1:9/", "merchant_id": "M1"},
        "mqtt": {"host": "broker.example", **mqtt},
        "lanes": [{"id": 1, "reader": "sim://lane1"}],
    }


def test_tls_configuration_is_checked_and_paths_resolved(tmp_path: Path) -> None:
    config = parse_config(
        _document(tls=True, port=8883, ca_file="ca.pem", cert_file="c.pem", key_file="c.key"),
        base=tmp_path,
    )
    assert config.mqtt is not None
    assert config.mqtt.ca_file == tmp_path / "ca.pem"
    assert config.mqtt.key_file == tmp_path / "c.key"
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        parse_config(_document(tls=True, cert_file="c.pem"))
    with pytest.raises(ConfigError, match="need tls = true"):
        parse_config(_document(ca_file="ca.pem"))


async def test_daemon_sends_sales_over_tls(
    tmp_path: Path,
    acquirer: AcquirerHost,
    http: aiohttp.ClientSession,
    mqtt_tls_broker: MqttTlsBroker,
) -> None:
    assert acquirer.url is not None
    files, slot = mqtt_tls_broker.files, slot_name()
    mqtt = {
        "host": mqtt_tls_broker.host, "port": mqtt_tls_broker.tls_port, "tls": True,
        "ca_file": str(files.ca), "cert_file": str(files.client_cert),
        "key_file": str(files.client_key),
    }  # fmt: skip
    config = make_config(tmp_path, acquirer.url, [slot], mqtt=mqtt)
    identifier = f"head-office-tls-{uuid.uuid4().hex[:8]}"

    def head_office() -> aiomqtt.Client:
        return aiomqtt.Client(mqtt_tls_broker.host, mqtt_tls_broker.plain_port,
                              identifier=identifier, clean_session=False)  # fmt: skip

    async with head_office() as client:
        await client.subscribe("posgw/shop-test/sales", qos=1)
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 1250)
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot)
        assert (await till.get(str(body["id"]), wait=10))["state"] == "COMPLETED"
        async with asyncio.timeout(20), head_office() as client:
            message = await anext(client.messages)
    record = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    assert body["id"] in json.dumps(record)
    assert b"4761739001010010" not in bytes(message.payload)  # type: ignore[arg-type]
