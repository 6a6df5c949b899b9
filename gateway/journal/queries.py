"""Read-only aggregate queries over the journal (store-and-forward exposure, day totals).

Plain functions of a ``sqlite3.Connection`` so they run on the journal's worker thread
(:meth:`gateway.journal.Journal.offline_exposure`) or on a separate read connection (the backup
manifest, ``posgw close-day``). Each is one ``SELECT`` statement, so it reads one consistent
snapshot of the WAL database. Amounts are integers of minor units; nothing here reads or returns
card data beyond the masked PAN the journal already holds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gateway.journal.states import PaymentKind, PaymentState

__all__ = ["OfflineExposure", "offline_exposure"]


@dataclass(frozen=True, slots=True)
class OfflineExposure:
    """What a shop holds offline in one currency: approved by the card, not yet forwarded.

    Attributes:
        currency: ISO 4217 alphabetic code.
        count: Sales in STORED_FOR_FORWARDING.
        amount: Their sum, in minor units.
        oldest_ms: Creation time of the oldest of them (ms since the epoch).
    """

    currency: str
    count: int
    amount: int
    oldest_ms: int


def offline_exposure(conn: sqlite3.Connection) -> dict[str, OfflineExposure]:
    """Count, amount and oldest creation time of the sales awaiting forwarding, per currency.

    Uses the ``payments_by_state`` index (only STORED_FOR_FORWARDING rows are visited).
    """
    rows = conn.execute(
        "SELECT currency, count(*), coalesce(sum(amount), 0), min(created_ms) FROM payments"
        " WHERE state = ? AND kind = ? GROUP BY currency ORDER BY currency",
        (PaymentState.STORED_FOR_FORWARDING.value, PaymentKind.SALE.value),
    ).fetchall()
    return {
        str(row[0]): OfflineExposure(str(row[0]), int(row[1]), int(row[2]), int(row[3]))
        for row in rows
    }
