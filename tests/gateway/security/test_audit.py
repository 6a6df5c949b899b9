"""The hash-chained audit log: appended, verified, and 1,000 random tamperings all detected."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import CardDataRejected, audit
from gateway.journal.schema import configure, migrate

ROWS = 120
FIELDS = ("at_ms", "actor", "action", "subject", "outcome", "detail", "prev_hash", "hash")


def _chain(rows: int = ROWS, path: Path | None = None) -> sqlite3.Connection:
    conn = sqlite3.connect(path or ":memory:", isolation_level=None)
    if path is not None:
        configure(conn)
    migrate(conn)
    rng = random.Random(7)
    for i in range(rows):
        conn.execute("BEGIN IMMEDIATE")
        audit.append(
            conn,
            at_ms=1_700_000_000_000 + i * 1000,
            actor=rng.choice(["till:front-1", "till:front-2", "manager:alice", "cli:root"]),
            action=rng.choice(["payment.start", "refund", "payment.cancel", "till.add"]),
            subject=f"pay_{i:04d}",
            outcome=rng.choice(["ok", "denied"]),
            detail={"amount": rng.randint(1, 99_999), "lane": rng.randint(1, 4)},
        )
        conn.execute("COMMIT")
    return conn


def _copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    twin = sqlite3.connect(":memory:", isolation_level=None)
    conn.backup(twin)
    # the attacker has the file: the append-only triggers are no obstacle
    twin.execute("DROP TRIGGER audit_append_only_update")
    twin.execute("DROP TRIGGER audit_append_only_delete")
    return twin


def _renumber(conn: sqlite3.Connection, start: int, shift: int) -> None:
    """Move rows seq >= start by ``shift`` (ordered so the primary key never collides)."""
    order = "DESC" if shift > 0 else "ASC"
    seqs = [r[0] for r in conn.execute(f"SELECT seq FROM audit WHERE seq >= ? ORDER BY seq {order}", (start,))]  # noqa: E501
    for seq in seqs:
        conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq + shift, seq))


def _edit(conn: sqlite3.Connection, rng: random.Random) -> str:
    seq = rng.randint(1, ROWS)
    field = rng.choice(FIELDS)
    if field == "at_ms":
        shift = rng.randint(1, 10**6)
        conn.execute("UPDATE audit SET at_ms = at_ms + ? WHERE seq = ?", (shift, seq))
    elif field == "detail":
        row = conn.execute("SELECT detail FROM audit WHERE seq = ?", (seq,)).fetchone()
        detail = json.loads(row[0])
        detail["amount"] = detail["amount"] + rng.randint(1, 100)
        conn.execute("UPDATE audit SET detail = ? WHERE seq = ?", (json.dumps(detail), seq))
    elif field in ("prev_hash", "hash"):
        conn.execute(f"UPDATE audit SET {field} = ? WHERE seq = ?", (rng.randbytes(32).hex(), seq))
    else:
        conn.execute(f"UPDATE audit SET {field} = {field} || 'x' WHERE seq = ?", (seq,))
    return f"edit {field} of row {seq}"


def _delete(conn: sqlite3.Connection, rng: random.Random) -> str:
    seq = rng.randint(1, ROWS)
    conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))
    if rng.random() < 0.5:  # close the gap, as a careful attacker would
        _renumber(conn, seq + 1, -1)
    return f"delete row {seq}"


def _insert(conn: sqlite3.Connection, rng: random.Random) -> str:
    """A forged row, correctly hashed and linked to the row before it, at a random place."""
    seq = rng.randint(1, ROWS + 1)
    before = conn.execute("SELECT hash FROM audit WHERE seq = ?", (seq - 1,)).fetchone()
    prev = audit.GENESIS if before is None else before[0]
    _renumber(conn, seq, +1)
    fields = (1_700_000_000_500, "manager:mallory", "refund.approve", "pay_x", "ok", "{}")
    digest = audit.entry_hash(seq, *fields, prev)
    conn.execute(
        "INSERT INTO audit (seq, at_ms, actor, action, subject, outcome, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, *fields, prev, digest),
    )
    return f"insert at {seq}"


def _reorder(conn: sqlite3.Connection, rng: random.Random) -> str:
    """Two rows swap places (their whole content, hashes included)."""
    first, second = sorted(rng.sample(range(1, ROWS + 1), 2))
    conn.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (first,))
    conn.execute("UPDATE audit SET seq = ? WHERE seq = ?", (first, second))
    conn.execute("UPDATE audit SET seq = ? WHERE seq = -1", (second,))
    return f"swap rows {first} and {second}"


def test_a_chain_verifies_and_its_head_is_anchored() -> None:
    conn = _chain()
    verdict = audit.verify(conn)
    assert verdict.ok, verdict.reason
    assert verdict.count == verdict.anchor_count == ROWS
    assert verdict.head == verdict.anchor_head == audit.entries(conn)[-1].hash
    assert audit.entries(conn)[0].prev_hash == audit.GENESIS


def test_the_log_is_append_only_for_the_daemon() -> None:
    conn = _chain(3)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET outcome = 'ok'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 3")


def test_one_thousand_random_tamperings_are_all_detected() -> None:
    conn = _chain()
    rng = random.Random(20261205)
    kinds = (_edit, _delete, _insert, _reorder)
    detected: dict[str, int] = dict.fromkeys((k.__name__ for k in kinds), 0)
    tried = dict(detected)
    missed: list[str] = []
    for _ in range(1000):
        twin = _copy(conn)
        kind = rng.choice(kinds)
        what = kind(twin, rng)
        tried[kind.__name__] += 1
        verdict = audit.verify(twin)
        if verdict.ok:
            missed.append(what)
        else:
            detected[kind.__name__] += 1
            assert verdict.broken_at is not None
        twin.close()
    print(f"audit tamperings detected: {sum(detected.values())}/1000 {detected}")
    assert missed == []
    assert sum(detected.values()) == 1000
    assert all(tried[name] > 150 for name in tried)  # every kind was exercised


def test_deleting_the_tail_is_caught_by_the_anchor() -> None:
    twin = _copy(_chain())
    twin.execute("DELETE FROM audit WHERE seq > ?", (ROWS - 5,))
    verdict = audit.verify(twin)
    assert not verdict.ok
    assert verdict.broken_at == ROWS - 4
    assert "anchor" in verdict.reason


def test_the_first_broken_link_is_named() -> None:
    twin = _copy(_chain())
    twin.execute("UPDATE audit SET outcome = 'ok!' WHERE seq = 37")
    twin.execute("UPDATE audit SET outcome = 'ok!' WHERE seq = 90")
    verdict = audit.verify(twin)
    assert (verdict.ok, verdict.broken_at, verdict.count) == (False, 37, 36)
    assert "edited" in verdict.reason


def test_card_data_never_reaches_the_log() -> None:
    conn = _chain(1)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(CardDataRejected):
        audit.append(conn, at_ms=1, actor="till:a", action="refund", outcome="ok",
                     detail={"note": "4111 1111 1111 1111"})  # fmt: skip
    conn.execute("ROLLBACK")
    assert audit.verify(conn).count == 1


def test_the_chain_survives_reopening_the_file(tmp_path: Path) -> None:
    _chain(10, tmp_path / "journal.db").close()
    conn = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    migrate(conn)
    conn.execute("BEGIN IMMEDIATE")
    entry = audit.append(conn, at_ms=5, actor="cli:root", action="till.revoke", outcome="ok")
    conn.execute("COMMIT")
    assert entry.seq == 11
    assert audit.verify(conn).ok
