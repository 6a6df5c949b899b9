"""The outbox's journal calls: the sale records head office is sent, claimed and acknowledged.

A settled payment's record is written to the outbox in the transition's own transaction
(:meth:`gateway.journal.store.Store.transition`); the publisher (:mod:`gateway.sync`) claims a
batch under a lease, marks it sent once head office acknowledged it or failed otherwise, and
old acknowledged records are pruned (docs/journal.md, "Outbox").
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.journal.base import JournalBase
from gateway.journal.errors import InvalidRecord
from gateway.journal.records import OutboxItem

__all__ = ["OutboxCalls"]


class OutboxCalls(JournalBase):
    """The journal's outbox calls (a mixin of :class:`~gateway.journal.Journal`)."""

    async def claim_batch(self, n: int, *, lease: float = 60.0) -> list[OutboxItem]:
        """Claim up to ``n`` unsent sale records for ``lease`` seconds; each claim is an attempt."""
        if n <= 0 or lease <= 0:
            raise InvalidRecord("claim_batch", "n and lease must be positive")
        return await self._run(self._s().claim_batch, n, round(lease * 1000))

    async def outbox_after(self, position: int, *, limit: int = 200) -> list[OutboxItem]:
        """Outbox records with an id above ``position`` (sent or not), oldest first; read only.

        The local stock follows the settled sales and refunds with this (gateway.sync)."""
        return await self._run(self._s().outbox_after, position, limit)

    async def mark_sent(self, ids: Sequence[int]) -> int:
        """Head office acknowledged these records; returns how many were newly marked."""
        return await self._run_noting(self.figures.sent, self._s().mark_sent, list(ids))

    async def prune_outbox(self, *, older_than: float, batch: int = 500) -> int:
        """Delete outbox records head office acknowledged more than ``older_than`` s ago.

        Unsent records are never deleted, and the payments stay in the journal: the outbox is
        a delivery queue, not the record. Deletes in batches of ``batch`` (short write locks);
        ``secure_delete`` zeroes what is deleted. Returns how many records went.
        """
        if older_than <= 0 or batch <= 0:
            raise InvalidRecord("prune_outbox", "older_than and batch must be positive")
        store = self._s()
        before = store.now_ms() - round(older_than * 1000)
        total = 0
        while True:
            deleted = await self._run(store.prune_sent, before, batch)
            total += deleted
            if deleted < batch:
                return total

    async def mark_failed(self, ids: Sequence[int], *, error: str) -> None:
        """Sending failed: release the claims so the next batch retries them."""
        await self._run(self._s().mark_failed, list(ids), error)
