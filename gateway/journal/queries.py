"""Aggregate queries over the journal: store-and-forward exposure, the day's payments, days.

Plain functions of a ``sqlite3.Connection`` so they run on the journal's worker thread
(:meth:`gateway.journal.Journal.offline_exposure`) or on a separate read connection (the backup
manifest, ``posgw close-day``). Each is one ``SELECT`` statement, so it reads one consistent
snapshot of the WAL database. Amounts are integers of minor units; nothing here reads or returns
card data beyond the masked PAN the journal already holds.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateway.journal.errors import DayAlreadyClosed, InvalidRecord
from gateway.journal.states import PaymentKind, PaymentState

__all__ = [
    "DayClose",
    "DayPayment",
    "OfflineExposure",
    "auth_durations_ms",
    "day_payments",
    "forward_declined",
    "insert_day_close",
    "last_close",
    "mark_day_published",
    "offline_exposure",
    "unpublished_days",
]


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


@dataclass(frozen=True, slots=True)
class DayClose:
    """One closed day (a row of ``days``).

    Attributes:
        id: Its number (grows by one per close).
        opened_ms: Start of the day (the previous close, or 0 for the first day).
        closed_ms: When it was closed; payments created from then on belong to the next day.
        closed_by: Who closed it (``manager:alice``, ``cli``).
        differences: How many reconciliation lines differed from the acquirer's (or a TPE's).
        record: The day's record: totals, reconciliation (JSON-safe; docs/day.md).
    """

    id: int
    opened_ms: int
    closed_ms: int
    closed_by: str
    differences: int
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DayPayment:
    """What the day's totals need of one payment (masked PAN only; no card data).

    ``voided``: the sale was voided (VOID_PENDING or VOIDED); ``offline``: it was
    approved offline (it went through STORED_FOR_FORWARDING); ``interface``: where the card
    was read (None when it was not read, or journaled before schema 8).
    """

    id: str
    kind: str
    state: str
    lane: str
    amount: int
    currency: str
    aid: str | None
    masked_pan: str | None
    response_code: str | None
    created_ms: int
    updated_ms: int
    voided: bool
    offline: bool
    #: Where the card was read (``payments.interface``, schema 8); None if not recorded.
    interface: str | None = None


def last_close(conn: sqlite3.Connection) -> DayClose | None:
    """The most recent day close, if any."""
    row = conn.execute(
        "SELECT id, opened_ms, closed_ms, closed_by, differences, record FROM days"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return _day(tuple(row))


def day_payments(conn: sqlite3.Connection, since_ms: int, until_ms: int) -> list[DayPayment]:
    """Payments created in ``[since_ms, until_ms)``, oldest first, with their void and offline
    flags read from the event log (one statement: one snapshot)."""
    rows = conn.execute(
        "SELECT p.id, p.kind, p.state, p.lane, p.amount, p.currency, p.aid, p.masked_pan,"
        " p.response_code, p.created_ms, p.updated_ms,"
        " p.state IN ('VOID_PENDING', 'VOIDED'),"
        " EXISTS (SELECT 1 FROM events e WHERE e.payment_id = p.id"
        "   AND e.to_state = 'STORED_FOR_FORWARDING'),"
        " p.interface"
        " FROM payments p WHERE p.created_ms >= ? AND p.created_ms < ?"
        " ORDER BY p.created_ms, p.id",
        (since_ms, until_ms),
    ).fetchall()
    return [
        DayPayment(
            id=str(r[0]),
            kind=str(r[1]),
            state=str(r[2]),
            lane=str(r[3]),
            amount=int(r[4]),
            currency=str(r[5]),
            aid=r[6],
            masked_pan=r[7],
            response_code=r[8],
            created_ms=int(r[9]),
            updated_ms=int(r[10]),
            voided=bool(r[11]),
            offline=bool(r[12]),
            interface=r[13],
        )
        for r in rows
    ]


@contextmanager
def _writing(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, or, inside the journal worker's group, that group's (its
    savepoint undoes this call if it fails; the group's COMMIT makes it durable)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_day_close(
    conn: sqlite3.Connection,
    *,
    opened_ms: int,
    closed_ms: int,
    closed_by: str,
    differences: int,
    record: dict[str, Any],
) -> DayClose:
    """Journal a day close in its own transaction, unless another close got there first.

    Raises:
        DayAlreadyClosed: The last close is not the one this day started from.
    """
    with _writing(conn):
        last = last_close(conn)
        if (last.closed_ms if last else 0) != opened_ms:
            raise DayAlreadyClosed("the day was closed meanwhile; close the new day instead")
        _check_cited_totals(conn, record)
        conn.execute(
            "INSERT INTO days (opened_ms, closed_ms, closed_by, differences, record)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                opened_ms,
                closed_ms,
                closed_by,
                differences,
                json.dumps(record, separators=(",", ":"), sort_keys=True),
            ),
        )
    closed = last_close(conn)
    assert closed is not None
    return closed


#: Keys of a day record that the journal computes itself (times in ms).
_DAY_OWN_NUMBERS = frozenset({"opened_ms", "closed_ms"})


def without_own_times(record: dict[str, Any]) -> dict[str, Any]:
    """A day record without the journal's own times, for the card-data guard.

    A 13-digit millisecond time passes the Luhn check one time in ten, so the guard would
    refuse one close in ten (a 503) if it saw them: the day's bounds (``opened_ms``,
    ``closed_ms``) and each ``terminals[i].at_ms``, the time of the journal's own
    ``terminal_totals`` row that entry cites (checked by :func:`insert_day_close`).
    """
    kept = {k: v for k, v in record.items() if k not in _DAY_OWN_NUMBERS}
    terminals = kept.get("terminals")
    if isinstance(terminals, list):
        kept["terminals"] = [
            {k: v for k, v in entry.items() if k != "at_ms"} if isinstance(entry, dict) else entry
            for entry in terminals
        ]
    return kept


def _check_cited_totals(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    """Each ``terminals[i].at_ms`` must be the time of the ``terminal_totals`` row it cites.

    Only such a time is spared the card-data guard; any other number there is refused.

    Raises:
        InvalidRecord: ``day.terminals[i].at_ms`` is not the time of row ``totals_id``.
    """
    for index, entry in enumerate(record.get("terminals") or []):
        if not isinstance(entry, dict) or "at_ms" not in entry:
            continue
        row = conn.execute(
            "SELECT at_ms FROM terminal_totals WHERE id = ?", (entry.get("totals_id"),)
        ).fetchone()
        if row is None or row[0] != entry["at_ms"]:
            raise InvalidRecord(
                f"day.terminals[{index}].at_ms", "not the time of the terminal totals it cites"
            )


def _day(row: tuple[Any, ...]) -> DayClose:
    return DayClose(
        int(row[0]), int(row[1]), int(row[2]), str(row[3]), int(row[4]), json.loads(row[5])
    )


def unpublished_days(conn: sqlite3.Connection) -> list[DayClose]:
    """Closed days head office has not acknowledged yet, oldest first."""
    rows = conn.execute(
        "SELECT id, opened_ms, closed_ms, closed_by, differences, record FROM days"
        " WHERE published_ms IS NULL ORDER BY id"
    ).fetchall()
    return [_day(tuple(row)) for row in rows]


def mark_day_published(conn: sqlite3.Connection, day_id: int, at_ms: int) -> None:
    """Head office acknowledged day ``day_id`` (QoS 1 PUBACK)."""
    with _writing(conn):
        conn.execute(
            "UPDATE days SET published_ms = ? WHERE id = ? AND published_ms IS NULL",
            (at_ms, day_id),
        )


def auth_durations_ms(conn: sqlite3.Connection, since_ms: int) -> list[int]:
    """Authorisation times of the payments created since ``since_ms``: from AUTH_REQUESTED to
    the acquirer's answer (APPROVED, DECLINED or UNKNOWN), in ms, from the event log (read
    through each payment's events, ``events_by_payment``)."""
    rows = conn.execute(
        "SELECT a.at_ms - r.at_ms FROM payments p"
        " JOIN events r ON r.payment_id = p.id AND r.to_state = 'AUTH_REQUESTED'"
        " JOIN events a ON a.payment_id = p.id AND a.from_state = 'AUTH_REQUESTED'"
        " AND a.to_state IN ('APPROVED', 'DECLINED', 'UNKNOWN')"
        " WHERE p.created_ms >= ?",
        (since_ms,),
    ).fetchall()
    return [int(row[0]) for row in rows]


def forward_declined(conn: sqlite3.Connection) -> list[DayPayment]:
    """Every sale in FORWARD_DECLINED (whatever its day): they wait for a manager."""
    rows = conn.execute(
        "SELECT id, kind, state, lane, amount, currency, aid, masked_pan, response_code,"
        " created_ms, updated_ms FROM payments WHERE state = 'FORWARD_DECLINED'"
        " ORDER BY updated_ms"
    ).fetchall()
    return [
        DayPayment(
            str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), r[6], r[7], r[8],
            int(r[9]), int(r[10]), voided=False, offline=True,
        )
        for r in rows
    ]  # fmt: skip
