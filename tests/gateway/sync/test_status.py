"""The shop's retained status on MQTT: online on connect, offline on a clean stop, and the
last will (offline, ``clean: false``) when the gateway process dies (MQTT 3.1.1, 3.1.2.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import pytest

from gateway.sync import OutboxPublisher, status_topic
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.journal_support import open_journal
from tests.gateway.sync_support import FAST, factory, new_shop

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[3]


async def retained_status(broker: MqttBroker, shop: str) -> list[tuple[dict[str, object], bool]]:
    """What a newcomer gets on the status topic: the retained message, flagged as retained."""
    async with HeadOffice(host=broker.host, port=broker.port, shop=shop,
                          identifier=f"newcomer-{shop}", persistent=False) as newcomer:  # fmt: skip
        async with asyncio.timeout(10):
            await newcomer.wait_for(lambda: bool(newcomer.statuses))
        flags = [m.retain for m in newcomer.received if m.topic == status_topic(shop)]
        return list(zip(newcomer.statuses, flags, strict=True))


async def test_online_then_clean_offline(tmp_path: Path, mqtt_broker: MqttBroker) -> None:
    shop = new_shop()
    async with (
        HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office,
        open_journal(tmp_path) as journal,
    ):
        publisher = OutboxPublisher(journal=journal, shop=shop, backoff=FAST,
                                    client_factory=factory(mqtt_broker.host, mqtt_broker.port,
                                                           shop, "sales"))  # fmt: skip
        task = asyncio.create_task(publisher.run())
        async with asyncio.timeout(10):
            online = await office.wait_for_status("online")
            assert await retained_status(mqtt_broker, shop) == [(online, True)]
            publisher.stop()
            await task
            offline = await office.wait_for_status("offline")
    assert online == {"schema": 1, "shop": shop, "state": "online"}
    assert offline == {"schema": 1, "shop": shop, "state": "offline", "clean": True}
    assert await retained_status(mqtt_broker, shop) == [(offline, True)]


async def test_cancelled_publisher_says_offline(tmp_path: Path, mqtt_broker: MqttBroker) -> None:
    """The daemon cancels its tasks on shutdown: still a clean offline, not a stale online."""
    shop = new_shop()
    async with (
        HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office,
        open_journal(tmp_path) as journal,
    ):
        clients = factory(mqtt_broker.host, mqtt_broker.port, shop, "sales")
        publisher = OutboxPublisher(
            journal=journal, shop=shop, backoff=FAST, client_factory=clients
        )
        task = asyncio.create_task(publisher.run())
        async with asyncio.timeout(10):
            await office.wait_for_status("online")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            offline = await office.wait_for_status("offline")
    assert offline["clean"] is True
    assert publisher.diagnostics()["connected"] is False
    assert await retained_status(mqtt_broker, shop) == [(offline, True)]


async def test_last_will_when_the_gateway_process_is_killed(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    shop = new_shop()
    async with open_journal(tmp_path):
        pass  # create the journal file the child opens
    async with HeadOffice(host=mqtt_broker.host, port=mqtt_broker.port, shop=shop) as office:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.gateway.sync_support",
            mqtt_broker.host, str(mqtt_broker.port), shop, str(tmp_path / "journal.db"),
            cwd=REPO, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            async with asyncio.timeout(20):
                assert await child.stdout.readline() == b"connected\n"
                await office.wait_for_status("online")
            child.send_signal(signal.SIGKILL)
            await child.wait()
            async with asyncio.timeout(20):
                will = await office.wait_for_status("offline")
        finally:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert will == {"schema": 1, "shop": shop, "state": "offline", "clean": False}
    assert await retained_status(mqtt_broker, shop) == [(will, True)]
