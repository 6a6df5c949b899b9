"""The hash-chained audit log: who did what, when, with what outcome (docs/security.md).

Every money-moving and administrative action (a payment, refund or cancel asked by a till; a
till credential added, rotated or revoked; a manager added, logged in or locked out; a refund
approved) is one row of the ``audit`` table. Each row holds the SHA-256 of its own canonical
encoding and the hash of the row before it (``prev_hash``; the first row links to
:data:`GENESIS`), so editing, deleting, inserting or reordering any row breaks the chain at that
row. The chain head (row count and last hash) is also kept in the ``meta`` table, so deleting
the tail is detected too (PCI DSS v4.0 requirement 10.3.2: audit logs protected from
modification). No card data: every text passes the journal's card-data guard before it is
written (:func:`gateway.journal.guard.check_value`).

**Signed checkpoints.** Someone who can write the SQLite file could rebuild the whole chain
and its anchor. With a vault key configured, every row the daemon appends also signs the new
head (count and hash) with a key derived from the vault key, which is not in the file
(:mod:`gateway.journal.audit_key`): a checkpoint in ``meta``. :func:`verify`, given the key,
then proves the rows up to the checkpoint were neither changed nor rebuilt; rows appended
after it without the key (``posgw`` commands run without it) are counted as not yet signed
and are covered by the daemon's next signature. A checkpoint is only moved forward while the
chain still holds the head it signed: a chain rebuilt behind the journal's back keeps the old
checkpoint, which then fails :func:`verify` (the evidence is not overwritten). Without a vault
key nothing is signed; the head :func:`verify` prints is then what an operator copies elsewhere
(a ticket, head office) to make a rewrite detectable later. Restoring an older copy of the
whole file (with its older checkpoint) is not detected by the file alone.

These functions take a :class:`sqlite3.Connection` with the journal's schema; :func:`append`
must run inside the caller's write transaction (``BEGIN IMMEDIATE``) so that the row and the
action it records commit together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.journal.audit_key import AuditKey, checkpoint_mac
from gateway.journal.guard import check_value
from gateway.journal.schema import configure, migrate

__all__ = [
    "GENESIS",
    "AuditEntry",
    "AuditKey",
    "AuditNote",
    "ChainVerdict",
    "append",
    "checkpoint_problem",
    "connect",
    "entries",
    "entry_hash",
    "sign_head",
    "verify",
]

#: ``prev_hash`` of the first row.
GENESIS = "0" * 64
_HEAD_COUNT, _HEAD_HASH = "audit_count", "audit_head"
_CHECKPOINT = "audit_checkpoint"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    seq: int
    at_ms: int
    actor: str
    action: str
    subject: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditNote:
    """An audit row still to be appended: what a caller hands the journal so that the row is
    written by the journal's worker, in the same request (or group) as the change it records
    (:meth:`gateway.journal.Journal.append_audit`, ``Journal.create_sale(audit=...)``).

    An empty ``subject`` given with a journal change is filled with the new payment's id.
    """

    actor: str
    action: str
    outcome: str
    subject: str = ""
    detail: Mapping[str, Any] | None = None

    def append_to(
        self,
        conn: sqlite3.Connection,
        *,
        at_ms: int,
        subject: str = "",
        keys: Sequence[AuditKey] = (),
    ) -> AuditEntry:
        """:func:`append` this row (inside the caller's write transaction)."""
        return append(
            conn,
            at_ms=at_ms,
            actor=self.actor,
            action=self.action,
            subject=self.subject or subject,
            outcome=self.outcome,
            detail=self.detail,
            keys=keys,
        )


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What :func:`verify` found.

    Attributes:
        ok: The chain and its anchor agree.
        count: Rows read.
        head: The hash of the last row read (``GENESIS`` when empty).
        anchor_count: The row count kept in ``meta`` (0 when never written).
        anchor_head: The last hash kept in ``meta``.
        broken_at: The ``seq`` (position) of the first broken link, or None.
        reason: Why that link is broken (empty when ``ok``).
        signed: Rows covered by the signed checkpoint (None: verified without a key).
    """

    ok: bool
    count: int
    head: str
    anchor_count: int
    anchor_head: str
    broken_at: int | None
    reason: str
    signed: int | None = None


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection of its own to the journal file, configured (WAL, ``synchronous=FULL``) and
    migrated, for the audit log and the tables of schema version 4 (credentials, approvals)
    beside the journal's own connection (the daemon's security service, the ``posgw`` commands).

    ``check_same_thread`` is off: the caller opens it on one thread and then uses it from one
    worker thread only.

    Raises:
        gateway.journal.SchemaError: Not a journal, or a newer schema.
        sqlite3.Error: The file cannot be opened.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0, check_same_thread=False)
    try:
        configure(conn)
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def entry_hash(
    seq: int,
    at_ms: int,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of a row's canonical JSON encoding, its position and its predecessor."""
    canonical = json.dumps(
        [seq, at_ms, actor, action, subject, outcome, detail, prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, *pairs: tuple[str, str]) -> None:
    """Upsert (key, value) pairs of ``meta`` in one statement."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES "  # noqa: S608 - placeholders only
        + ", ".join(["(?, ?)"] * len(pairs))
        + " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [item for pair in pairs for item in pair],
    )


def append(
    conn: sqlite3.Connection,
    *,
    at_ms: int,
    actor: str,
    action: str,
    subject: str = "",
    outcome: str,
    detail: Mapping[str, Any] | None = None,
    keys: Sequence[AuditKey] = (),
) -> AuditEntry:
    """Append one row to the chain (inside the caller's write transaction); with ``keys``
    (the current key first, then earlier ones), sign the new head (:func:`sign_head`).

    Args:
        conn: A connection in a ``BEGIN IMMEDIATE`` transaction.
        at_ms: When, in milliseconds since the epoch (the injected clock).
        actor: Who (``till:front-1``, ``manager:alice``, ``cli:root``, ``daemon``).
        action: What (``payment.start``, ``refund``, ``till.revoke``, ...).
        subject: On what (a payment id, a till or manager name).
        outcome: ``ok``, ``denied``, ``failed`` or a code the action defines.
        detail: Extra JSON-safe facts (amounts, lanes); never card data.
        keys: Checkpoint keys (none: the row is not signed until a key holder appends).

    Raises:
        gateway.journal.CardDataRejected: A value looks like a PAN or track 2.
    """
    detail_json = json.dumps(dict(detail or {}), separators=(",", ":"), sort_keys=True)
    for field, value in (("actor", actor), ("action", action), ("subject", subject)):
        check_value(field, value)
    check_value("outcome", outcome)
    check_value("detail", detail_json)
    last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
    digest = entry_hash(seq, at_ms, actor, action, subject, outcome, detail_json, prev)
    conn.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, subject, outcome, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at_ms, actor, action, subject, outcome, detail_json, prev, digest),
    )
    head = [(_HEAD_COUNT, str(seq)), (_HEAD_HASH, digest)]
    signed = _signature(conn, keys, seq, digest, previous=(seq - 1, prev)) if keys else None
    _set_meta(conn, *head, *([] if signed is None else [(_CHECKPOINT, signed)]))
    return AuditEntry(seq, at_ms, actor, action, subject, outcome, detail_json, prev, digest)


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    count: int
    head: str
    key_id: str
    mac: str


def _checkpoint(conn: sqlite3.Connection) -> _Checkpoint | None:
    raw = _meta(conn, _CHECKPOINT)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return _Checkpoint(int(data["count"]), str(data["hash"]), str(data["key_id"]),
                           str(data["mac"]))  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return _Checkpoint(-1, "", "", "")  # unreadable: never valid


def _checkpoint_problem(
    conn: sqlite3.Connection,
    point: _Checkpoint,
    keys: Sequence[AuditKey],
    head_at: tuple[int, str] | None = None,
) -> str:
    """Why ``point`` does not prove the chain's first rows ('' when it does). ``head_at``:
    a (count, hash) already known to be the chain's, saving the read of that row."""
    if point.count < 0:
        return "the checkpoint is unreadable (altered)"
    key = next((k for k in keys if k.key_id == point.key_id), None)
    if key is None:
        return f"the checkpoint is signed under key {point.key_id[:16]!r}, not a configured key"
    if not hmac.compare_digest(
        point.mac, checkpoint_mac(key, point.count, point.head)
    ):
        return "the checkpoint's signature is wrong (the checkpoint was forged or altered)"
    if head_at is not None and head_at[0] == point.count:
        held = head_at[1]
    elif point.count == 0:
        held = GENESIS
    else:
        row = conn.execute("SELECT hash FROM audit WHERE seq = ?", (point.count,)).fetchone()
        if row is None:
            return f"the chain is shorter than its signed checkpoint (row {point.count})"
        held = str(row[0])
    if held != point.head:
        return (f"rows up to the signed checkpoint (row {point.count}) were changed: the chain "
                "was rebuilt")  # fmt: skip
    return ""


def _signature(
    conn: sqlite3.Connection,
    keys: Sequence[AuditKey],
    count: int,
    head: str,
    *,
    previous: tuple[int, str] | None = None,
) -> str | None:
    """The new checkpoint (JSON) signing ``head``, or None when the last one no longer holds
    (it is kept: :func:`verify` names the problem)."""
    point = _checkpoint(conn)
    if point is not None and _checkpoint_problem(conn, point, keys, previous):
        return None
    key = keys[0]
    signed = {"count": count, "hash": head, "key_id": key.key_id,
              "mac": checkpoint_mac(key, count, head)}  # fmt: skip
    return json.dumps(signed, separators=(",", ":"))


def checkpoint_problem(conn: sqlite3.Connection, keys: Sequence[AuditKey]) -> str:
    """Why the signed checkpoint does not hold ('' when it does, or when there is none)."""
    point = _checkpoint(conn)
    return "" if point is None else _checkpoint_problem(conn, point, keys)


def sign_head(conn: sqlite3.Connection, keys: Sequence[AuditKey]) -> bool:
    """Sign the chain's current head with ``keys[0]`` (inside the caller's write
    transaction), unless the last checkpoint no longer holds (then it is kept, and False)."""
    count = int(_meta(conn, _HEAD_COUNT) or 0)
    signed = _signature(conn, keys, count, _meta(conn, _HEAD_HASH) or GENESIS)
    if signed is None:
        return False
    _set_meta(conn, (_CHECKPOINT, signed))
    return True


def entries(conn: sqlite3.Connection, *, limit: int | None = None) -> list[AuditEntry]:
    """The rows in chain order (the last ``limit`` when given)."""
    columns = "seq, at_ms, actor, action, subject, outcome, detail, prev_hash, hash"
    if limit is None:
        rows = conn.execute(f"SELECT {columns} FROM audit ORDER BY seq").fetchall()  # noqa: S608
    else:
        rows = conn.execute(
            f"SELECT {columns} FROM audit ORDER BY seq DESC LIMIT ?",  # noqa: S608
            (limit,),
        ).fetchall()[::-1]
    return [AuditEntry(*(tuple(row))) for row in rows]


def verify(conn: sqlite3.Connection, keys: Sequence[AuditKey] = ()) -> ChainVerdict:
    """Recompute the chain from the first row; name the first broken link.

    A link is broken when a row is not at the position the count says (a row deleted or
    inserted without renumbering), its ``prev_hash`` is not the hash of the row before (a row
    deleted, inserted or moved), or its hash is not the hash of its content (a row edited).
    Then the anchor in ``meta`` must name the same count and head (a tail deleted or appended
    to behind the journal's back). With ``keys``, the signed checkpoint must be valid and
    still held by the chain (a chain with rows and no checkpoint fails: it cannot be told apart
    from a rebuilt one); ``signed`` says how many rows it covers.
    """
    anchor_count = int(_meta(conn, _HEAD_COUNT) or 0)
    anchor_head = _meta(conn, _HEAD_HASH) or GENESIS
    prev, count = GENESIS, 0
    cursor = conn.execute(
        "SELECT seq, at_ms, actor, action, subject, outcome, detail, prev_hash, hash"
        " FROM audit ORDER BY seq"
    )
    for row in cursor:
        entry = AuditEntry(*(tuple(row)))
        position = count + 1
        reason = ""
        if entry.seq != position:
            reason = f"row {entry.seq} found where row {position} should be"
        elif entry.prev_hash != prev:
            reason = "does not link to the row before it (deleted, inserted or moved)"
        if reason:
            return ChainVerdict(False, count, prev, anchor_count, anchor_head, position, reason)
        recomputed = entry_hash(
            entry.seq,
            entry.at_ms,
            entry.actor,
            entry.action,
            entry.subject,
            entry.outcome,
            entry.detail,
            entry.prev_hash,
        )
        if recomputed != entry.hash:
            reason = "content does not match its hash (edited)"
            return ChainVerdict(False, count, prev, anchor_count, anchor_head, position, reason)
        prev, count = entry.hash, position
    if (count, prev) != (anchor_count, anchor_head):
        reason = (
            f"the chain ends at row {count} but the anchor says row {anchor_count} "
            "(rows deleted or appended at the end)"
            if count != anchor_count
            else "the last row's hash differs from the anchor's"
        )
        return ChainVerdict(False, count, prev, anchor_count, anchor_head, count + 1, reason)
    if not keys:
        return ChainVerdict(True, count, prev, anchor_count, anchor_head, None, "")
    point = _checkpoint(conn)
    if point is None:
        if count == 0:
            return ChainVerdict(True, 0, prev, anchor_count, anchor_head, None, "", signed=0)
        reason = ("no signed checkpoint: the chain cannot be told apart from a rebuilt one "
                  "(the daemon signs one when it runs with its vault key)")  # fmt: skip
        return ChainVerdict(False, count, prev, anchor_count, anchor_head, 1, reason, signed=0)
    problem = _checkpoint_problem(conn, point, keys, (count, prev))
    if problem:
        return ChainVerdict(False, count, prev, anchor_count, anchor_head,
                            max(point.count, 1), problem, signed=0)  # fmt: skip
    return ChainVerdict(True, count, prev, anchor_count, anchor_head, None, "",
                        signed=point.count)
