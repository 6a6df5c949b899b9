"""The day-record publisher stops when the daemon cancels it, whatever aiomqtt does on the way out.

Found by the demo: after a day close, the daemon's shutdown hung on ``sync.days``. Leaving
``async with client`` on a cancellation, aiomqtt can raise the disconnection's ``MqttError`` in
place of the ``CancelledError``; the publisher's reconnect loop took it for a broker fault and
waited on, so the TaskGroup never ended. That exit depends on aiomqtt's timing and did not
happen against mosquitto in a test, so the second test stands in for aiomqtt's client with one
that raises the same way (a stand-in for a foreign library's behaviour, said here); the first
runs against the real broker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType

import aiomqtt
import pytest

from gateway.day.terminals import terminal_reconciliation
from gateway.day.totals import AcquirerLine
from gateway.sync.days import DayPublisher
from simulator.head_office import HeadOffice
from tests.fixtures.mqtt import MqttBroker
from tests.gateway.day.test_terminal_times import LUHN_MS
from tests.gateway.journal_support import open_journal
from tests.gateway.sync.test_contracts import _day_record
from tests.gateway.sync_support import complete_sale, eventually, factory, new_shop

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]


async def test_cancelled_after_publishing_a_day_it_ends(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    async with HeadOffice(host=host, port=port, shop=shop), open_journal(tmp_path) as journal:
        await complete_sale(journal, amount=1250)
        days = DayPublisher(
            journal=journal, client_factory=factory(host, port, shop, "days"), shop=shop,
            retry_interval=0.2,
        )  # fmt: skip
        task = asyncio.create_task(days.run())
        await journal.record_day_close(
            opened_ms=0, closed_ms=journal.now_ms(), actor="manager:test", differences=0,
            record=await _day_record(journal),
        )  # fmt: skip
        days.day_closed()
        await eventually(lambda: days.published == 1)
        task.cancel()
        async with asyncio.timeout(10):
            with pytest.raises(asyncio.CancelledError):
                await task


class _ClientRaisingOnExit:
    """Enters at once; leaving on a CancelledError raises an MqttError instead (as aiomqtt can)."""

    entered = asyncio.Event()

    async def __aenter__(self) -> _ClientRaisingOnExit:
        return self

    async def publish(self, *_args: object, **_kwargs: object) -> None:
        type(self).entered.set()
        await asyncio.Event().wait()  # a PUBACK that never comes: cancelled in here

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is asyncio.CancelledError:
            raise aiomqtt.MqttCodeError(128, "Unexpected disconnection")


async def test_an_mqtt_error_raised_by_the_cancelled_client_still_ends_it(tmp_path: Path) -> None:
    async with open_journal(tmp_path) as journal:
        await journal.record_day_close(
            opened_ms=0, closed_ms=journal.now_ms(), actor="manager:test", differences=0,
            record=await _day_record(journal),
        )  # fmt: skip
        days = DayPublisher(
            journal=journal, client_factory=_ClientRaisingOnExit, shop="s", retry_interval=0.05
        )
        _ClientRaisingOnExit.entered = asyncio.Event()
        task = asyncio.create_task(days.run())
        async with asyncio.timeout(5):
            await _ClientRaisingOnExit.entered.wait()  # inside ``async with client``, publishing
        task.cancel()
        async with asyncio.timeout(5):  # before the fix: reconnects, waits for ever
            with pytest.raises(asyncio.CancelledError):
                await task
        assert days.last_error is None  # a shutdown, not a broker fault


async def test_a_day_citing_a_luhn_valid_totals_time_is_published(
    tmp_path: Path, mqtt_broker: MqttBroker
) -> None:
    """The demo found it: the journal took the day (its guard skips its own times) but the
    publisher's second check saw ``terminals[0].at_ms`` and refused it one close in ten."""
    shop = new_shop()
    host, port = mqtt_broker.host, mqtt_broker.port
    clock = lambda: LUHN_MS / 1000  # noqa: E731 - the journal's clock on a Luhn-valid time
    async with HeadOffice(host=host, port=port, shop=shop), \
            open_journal(tmp_path, clock=clock) as journal:  # fmt: skip
        totals = await journal.add_terminal_totals(
            lane="1", actor="manager:test", ok=True, transactions=1, debits=5000, refunds=0,
            currency="EUR")  # fmt: skip
        entry, count = terminal_reconciliation(
            "1", [AcquirerLine("EUR", "sales_net", 1, 5000)], totals)  # fmt: skip
        record = {**await _day_record(journal), "terminals": [entry]}
        await journal.record_day_close(opened_ms=0, closed_ms=LUHN_MS, actor="manager:test",
                                       differences=count, record=record)  # fmt: skip
        days = DayPublisher(journal=journal, client_factory=factory(host, port, shop, "days"),
                            shop=shop, retry_interval=0.2)  # fmt: skip
        task = asyncio.create_task(days.run())
        days.day_closed()
        try:
            await eventually(lambda: days.published == 1 or days.last_error is not None)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert days.last_error is None and days.published == 1
