"""Helpers shared by the reconciler tests (no tests here): the real journal, its calls counted.

:class:`CountingJournal` passes every call through to the journal it wraps and counts the two
the reconciler's economies are about: ``get`` and ``get_for_forwarding`` per payment (the reads
each task makes) and ``truncate_wal`` (the WAL's checkpoints after forwards), and the
forwarder's own reads of a stored request (``forwarding_request``). The work itself is the
journal's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from gateway.acquirer import AcquirerClient, AcquirerHealth
from gateway.journal import Journal, Payment
from gateway.recovery.reconciler import Reconciler


class CountingJournal:
    """The real journal, its reads counted per payment and its WAL truncations."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.reads: Counter[str] = Counter()
        self.request_reads: Counter[str] = Counter()
        self.with_request: Counter[str] = Counter()  # the reads made by get_for_forwarding
        self.truncations = 0
        self.truncated = asyncio.Event()

    async def get(self, payment_id: str) -> Payment:
        self.reads[payment_id] += 1
        return await self.journal.get(payment_id)

    async def get_for_forwarding(self, payment_id: str) -> tuple[Payment, bytes | None]:
        self.reads[payment_id] += 1
        self.with_request[payment_id] += 1
        return await self.journal.get_for_forwarding(payment_id)

    async def forwarding_request(self, payment_id: str) -> bytes:
        self.request_reads[payment_id] += 1
        return await self.journal.forwarding_request(payment_id)

    async def truncate_wal(self) -> None:
        self.truncations += 1
        await self.journal.truncate_wal()
        self.truncated.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.journal, name)


def counted_reconciler(
    journal: Journal, client: AcquirerClient, **options: Any
) -> tuple[CountingJournal, Reconciler]:
    """A reconciler on ``journal`` seen through a :class:`CountingJournal`."""
    counting = CountingJournal(journal)
    reconciler = Reconciler(
        journal=counting,  # type: ignore[arg-type]
        client=client,
        health=AcquirerHealth("x"),
        **options,
    )
    return counting, reconciler
