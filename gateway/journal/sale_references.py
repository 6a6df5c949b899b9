"""The till references of recent sales, in memory: a new reference needs no read of the file.

A till sends its own reference with a sale so that a request it sends again never charges twice
(docs/daemon.md, "Till API"): before a sale starts, the till API asks the journal for a sale
already journaled under that reference (:meth:`gateway.journal.Journal.find_sale`). Nearly
every answer is "none", and each was a read queued on the journal's worker behind the payment
writes. :class:`SaleReferences` holds every reference of the sales created in the last
:data:`REFERENCE_MEMORY_S` seconds: read from the file at open, and noted by each creation
*before* its request is submitted (a second request with the same reference that comes while
the first sale is being written is looked up in the file, behind that write). A reference it
does not hold has no sale in that time, so the lookup answers at once; one it holds is looked up
in the file, as before. It holds no card data: references are the till's, checked by the
card-data guard like every journaled value.
"""

from __future__ import annotations

import sqlite3
from collections import deque

__all__ = ["REFERENCE_MEMORY_S", "SaleReferences", "read_references"]

#: How far back the memory reaches (twice the till API's 24 h window; a look-up further back
#: reads the file).
REFERENCE_MEMORY_S = 48 * 3600


class SaleReferences:
    """The references of the sales created since ``now - REFERENCE_MEMORY_S`` (loop thread)."""

    def __init__(self) -> None:
        self._count: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()

    def __len__(self) -> int:
        return len(self._count)

    def note(self, reference: str, created_ms: int) -> None:
        """A sale under ``reference``, created (or being created) at ``created_ms``."""
        self._count[reference] = self._count.get(reference, 0) + 1
        self._order.append((created_ms, reference))

    def forget(self, reference: str) -> None:
        """A creation noted by :meth:`note` that certainly wrote nothing (its request failed)."""
        left = self._count.get(reference, 0) - 1
        if left > 0:
            self._count[reference] = left
        else:
            self._count.pop(reference, None)
        for index in range(len(self._order) - 1, -1, -1):  # the newest first: it was the last
            if self._order[index][1] == reference:
                del self._order[index]
                break

    def may_hold(self, reference: str, since_ms: int, now_ms: int) -> bool:
        """False when no sale under ``reference`` was created since ``since_ms``: certain if
        ``since_ms`` is within the memory's reach, else True (the file must be read)."""
        self._expire(now_ms)
        if since_ms < now_ms - REFERENCE_MEMORY_S * 1000:
            return True
        return reference in self._count

    def _expire(self, now_ms: int) -> None:
        oldest = now_ms - REFERENCE_MEMORY_S * 1000
        order, count = self._order, self._count
        while order and order[0][0] < oldest:
            _, reference = order.popleft()
            left = count.get(reference, 0) - 1
            if left > 0:
                count[reference] = left
            else:
                count.pop(reference, None)


def read_references(conn: sqlite3.Connection, now_ms: int) -> SaleReferences:
    """The memory as the file holds it at open (the sales of the last
    :data:`REFERENCE_MEMORY_S` seconds, oldest first; ``payments_by_created`` bounds the read)."""
    references = SaleReferences()
    rows = conn.execute(
        "SELECT created_ms, till_reference FROM payments"
        " WHERE created_ms >= ? AND kind = 'sale' AND till_reference IS NOT NULL"
        " ORDER BY created_ms",
        (now_ms - REFERENCE_MEMORY_S * 1000,),
    )
    for created_ms, reference in rows:
        references.note(reference, created_ms)
    return references
