"""Publishing closed days to head office: ``posgw/{shop}/days`` (QoS 1; docs/sync.md).

The message's contract is ``gateway/contracts/mqtt/day.schema.json``.

A day's record is journaled first (``days``); this task then publishes every record head office
has not acknowledged, oldest first, one JSON message per day with ``"type": "day"``, and marks it
published on the broker's PUBACK. At least once: head office deduplicates by ``shop`` and
``day``. After a restart the records not yet acknowledged are sent again. The record passes the
journal's card-data guard again before it leaves (it holds amounts, counts, lane ids and AIDs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiomqtt

from gateway.journal import CardDataRejected, Journal
from gateway.journal.guard import check_value
from gateway.journal.queries import DayClose, without_own_times
from gateway.sync.messages import days_topic

__all__ = ["DayPublisher", "day_message"]

log = logging.getLogger("gateway.sync.days")


def day_message(day: DayClose, *, shop: str) -> bytes:
    """The payload of one closed day."""
    message: dict[str, Any] = {
        "schema": 1,
        "type": "day",
        "shop": shop,
        "day": day.id,
        "opened_ms": day.opened_ms,
        "closed_ms": day.closed_ms,
        "closed_by": day.closed_by,
        "differences": day.differences,
        "record": day.record,
    }
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


class DayPublisher:
    """Task ``sync.days``: publish unacknowledged day records; woken by each close."""

    def __init__(
        self,
        *,
        journal: Journal,
        client_factory: Callable[[], aiomqtt.Client],
        shop: str,
        retry_interval: float = 5.0,
    ) -> None:
        self._journal = journal
        self._factory = client_factory
        self._shop = shop
        self._retry = retry_interval
        self._wake = asyncio.Event()
        self.published = 0
        self.last_error: str | None = None

    def day_closed(self, _day: object = None) -> None:
        """A day was closed: publish it now."""
        self._wake.set()

    def diagnostics(self) -> dict[str, Any]:
        """For the snapshot (no card data)."""
        return {"published": self.published, "last_error": self.last_error}

    async def run(self) -> None:
        """Until cancelled: when a day is unpublished, connect, publish, disconnect; then wait
        for the next close (or re-check every ``12 * retry_interval``; after a broker fault,
        every ``retry_interval``).

        A day is closed once a day, so no connection is held between closes: a shutdown
        cancels this task while it waits outside any MQTT client (aiomqtt's exit on a
        cancellation can raise the disconnection's error in place of the CancelledError).
        """
        while True:
            self._wake.clear()  # before the read: a close during the publish is not missed
            wait = self._retry * 12
            try:
                pending = await self._journal.unpublished_days()
                if pending:
                    async with self._factory() as client:
                        await self._publish(client, pending)
            except aiomqtt.MqttError as exc:
                if _being_cancelled():  # the exit of a cancelled client: still a shutdown
                    raise asyncio.CancelledError from exc
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                log.info("day records: broker not reachable: %s", self.last_error)
                wait = self._retry
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _publish(self, client: aiomqtt.Client, days: list[DayClose]) -> None:
        for day in days:
            try:
                check_value("day", without_own_times(day.record))  # as the journal checked it
            except CardDataRejected as exc:  # cannot happen: journaled through the same guard
                self.last_error = f"day {day.id} not published: {exc}"
                log.error("%s", self.last_error)
                continue
            await client.publish(days_topic(self._shop), day_message(day, shop=self._shop), qos=1)
            await self._journal.mark_day_published(day.id)
            self.published += 1
            log.info("day %d published to head office", day.id)


def _being_cancelled() -> bool:
    """True when the running task has a cancellation pending (``Task.cancelling``, 3.11)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
