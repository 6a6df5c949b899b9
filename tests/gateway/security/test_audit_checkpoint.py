"""The audit chain's signed checkpoint (gateway.journal.audit, audit_key): a chain rebuilt by
someone who has the file but not the vault key is caught; rows appended without the key are
counted, then covered by the next signature; a rebuilt chain's checkpoint is never moved on."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from gateway.journal import Journal, VaultKey, audit
from gateway.journal.audit_key import checkpoint_mac
from gateway.journal.schema import configure, migrate

KEY = VaultKey(bytes(range(32)))
OLD = VaultKey(bytes(range(1, 33)))
OTHER = VaultKey(os.urandom(32))


def _journal(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "journal.db", isolation_level=None)
    configure(conn)
    migrate(conn)
    return conn


def _append(conn: sqlite3.Connection, n: int, keys: list[audit.AuditKey]) -> None:
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        audit.append(conn, at_ms=1_700_000_000_000 + i, actor="till:front-1",
                     action="payment.start", subject=f"pay_{i}", outcome="ok",
                     detail={"amount": 100 + i}, keys=keys)  # fmt: skip
        conn.execute("COMMIT")


def _rebuild(conn: sqlite3.Connection, seq: int) -> None:
    """What someone with the file and without the key can do: change a row, then recompute
    every hash after it and the anchor, so the chain is consistent again."""
    conn.execute("DROP TRIGGER IF EXISTS audit_append_only_update")
    conn.execute("UPDATE audit SET subject = 'pay_forged' WHERE seq = ?", (seq,))
    prev = audit.GENESIS
    for entry in audit.entries(conn):
        digest = audit.entry_hash(entry.seq, entry.at_ms, entry.actor, entry.action,
                                  entry.subject, entry.outcome, entry.detail, prev)  # fmt: skip
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?",
                     (prev, digest, entry.seq))  # fmt: skip
        prev = digest
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (prev,))


def test_a_signed_chain_verifies_and_says_how_far(tmp_path: Path) -> None:
    conn = _journal(tmp_path)
    _append(conn, 20, [KEY.audit_key()])
    verdict = audit.verify(conn, [KEY.audit_key()])
    assert (verdict.ok, verdict.signed, verdict.count) == (True, 20, 20)
    assert audit.verify(conn).signed is None  # without the key: the chain only


def test_a_chain_rebuilt_without_the_key_passes_the_hashes_but_not_the_checkpoint(
    tmp_path: Path,
) -> None:
    conn = _journal(tmp_path)
    _append(conn, 20, [KEY.audit_key()])
    _rebuild(conn, 7)
    assert audit.verify(conn).ok  # the hash chain alone cannot tell (the old limit)
    verdict = audit.verify(conn, [KEY.audit_key()])
    assert not verdict.ok and "rebuilt" in verdict.reason
    # the daemon's next signed append does not launder it: the old checkpoint stays
    _append(conn, 1, [KEY.audit_key()])
    again = audit.verify(conn, [KEY.audit_key()])
    assert not again.ok and "rebuilt" in again.reason


def test_a_forged_missing_or_foreign_checkpoint_fails(tmp_path: Path) -> None:
    conn = _journal(tmp_path)
    _append(conn, 5, [KEY.audit_key()])
    head = conn.execute("SELECT value FROM meta WHERE key = 'audit_checkpoint'").fetchone()[0]
    forged = head.replace(head[-10:-2], "00000000")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_checkpoint'", (forged,))
    assert "signature is wrong" in audit.verify(conn, [KEY.audit_key()]).reason
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_checkpoint'", ("{not json",))
    assert "unreadable" in audit.verify(conn, [KEY.audit_key()]).reason
    conn.execute("DELETE FROM meta WHERE key = 'audit_checkpoint'")
    missing = audit.verify(conn, [KEY.audit_key()])
    assert not missing.ok and "no signed checkpoint" in missing.reason
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_checkpoint'", (head,))
    conn.execute("INSERT INTO meta (key, value) VALUES ('audit_checkpoint', ?)", (head,))
    assert "not a configured key" in audit.verify(conn, [OTHER.audit_key()]).reason


def test_rows_appended_without_the_key_are_counted_then_covered(tmp_path: Path) -> None:
    """A ``posgw`` command run without the vault key appends unsigned; the daemon's next row
    signs the head over them."""
    conn = _journal(tmp_path)
    _append(conn, 4, [KEY.audit_key()])
    _append(conn, 3, [])
    verdict = audit.verify(conn, [KEY.audit_key()])
    assert (verdict.ok, verdict.signed, verdict.count) == (True, 4, 7)
    _append(conn, 1, [KEY.audit_key()])
    assert audit.verify(conn, [KEY.audit_key()]).signed == 8


def test_a_rotated_key_still_proves_the_old_checkpoint_and_signs_the_next(tmp_path: Path) -> None:
    conn = _journal(tmp_path)
    _append(conn, 3, [OLD.audit_key()])
    rotated = [KEY.audit_key(), OLD.audit_key()]
    assert audit.verify(conn, rotated).signed == 3
    _append(conn, 1, rotated)
    point = conn.execute("SELECT value FROM meta WHERE key = 'audit_checkpoint'").fetchone()[0]
    assert KEY.key_id.hex() in point
    assert audit.verify(conn, [KEY.audit_key()]).signed == 4


def test_the_checkpoint_key_is_not_the_vault_key_and_the_mac_binds_count_and_head() -> None:
    key = KEY.audit_key()
    assert key.secret != bytes(range(32)) and len(key.secret) == 32
    assert "secret" not in repr(key) and key.secret.hex() not in repr(key)
    mac = checkpoint_mac(key, 3, "ab" * 32)
    assert mac != checkpoint_mac(key, 4, "ab" * 32) != checkpoint_mac(key, 3, "ac" * 32)


async def test_the_journal_signs_at_open_and_says_when_its_checkpoint_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A journal file from before the checkpoints: the first open with a vault key signs the
    chain as found; a chain rebuilt while the journal was closed is logged as an error at the
    next open, and the checkpoint is kept."""
    conn = _journal(tmp_path)
    _append(conn, 6, [])  # no key yet
    conn.close()
    async with Journal.open(tmp_path / "journal.db", vault_key=KEY):
        pass
    conn = _journal(tmp_path)
    assert audit.verify(conn, [KEY.audit_key()]).signed == 6
    _rebuild(conn, 2)
    conn.close()
    with caplog.at_level(logging.ERROR, logger="gateway.journal"):
        async with Journal.open(tmp_path / "journal.db", vault_key=KEY):
            pass
    assert any("audit chain" in r.getMessage() and "rebuilt" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    conn = _journal(tmp_path)
    assert not audit.verify(conn, [KEY.audit_key()]).ok
