"""The journal's SQLite schema, versioned by ``PRAGMA user_version``, migrated forward only.

Each migration is a tuple of statements run in one ``BEGIN IMMEDIATE`` transaction together with
the ``user_version`` bump, so a crash during a migration leaves the previous version intact.
A file of a newer version than this code knows is refused (never downgraded), and so is a
database that is not a posgw journal (``PRAGMA application_id``).

Version 1: payments and their append-only event log.
Version 2: the outbox (sale records for head office) and the store-and-forward vault.
Version 3: the till's reference of a payment; one refund per (sale, reference); an index of
sent outbox records (pruning).
Version 4: the hash-chained audit log and its anchor (``meta``), till credentials, manager
accounts and refund approvals (docs/security.md; :mod:`gateway.journal.audit`).
Version 5: an index of payments by creation time, covering kind and state (the day's figures
count a day's rows, not the whole table).
Version 6: the shop's days (``days``): each day close with who closed it, its totals and the
reconciliation with the acquirer (JSON, no card data), and when head office acknowledged it;
the current day starts at the last close. Only ``published_ms`` may ever change.
Version 7: the end-of-day totals a smart terminal (TPE) reported, per lane, for
reconciliation (docs/tpe.md).
Version 8: the interface a payment's card was read on (``payments.interface``: ``contact``,
``contactless`` or ``terminal``; NULL for rows journaled before it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from gateway.journal.errors import SchemaError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "configure", "migrate"]

#: ``PRAGMA application_id`` of a posgw journal ("posg" in ASCII).
APPLICATION_ID = 0x706F7367

_V1 = (
    """CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('sale', 'refund')),
        refund_of TEXT REFERENCES payments(id),
        lane TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        state TEXT NOT NULL,
        items TEXT,
        masked_pan TEXT,
        aid TEXT,
        auth_code TEXT,
        response_code TEXT,
        idempotency_key TEXT UNIQUE,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        CHECK ((kind = 'refund') = (refund_of IS NOT NULL))
    ) STRICT""",
    "CREATE INDEX payments_by_state ON payments(state)",
    "CREATE INDEX payments_by_original ON payments(refund_of) WHERE refund_of IS NOT NULL",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        payment_id TEXT NOT NULL REFERENCES payments(id),
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT ''
    ) STRICT""",
    "CREATE INDEX events_by_payment ON events(payment_id, seq)",
    """CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
    """CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END""",
)

_V2 = (
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        payment_id TEXT NOT NULL UNIQUE REFERENCES payments(id),
        body TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_until_ms INTEGER,
        sent_ms INTEGER,
        last_error TEXT
    ) STRICT""",
    "CREATE INDEX outbox_unsent ON outbox(id) WHERE sent_ms IS NULL",
    """CREATE TABLE vault (
        payment_id TEXT PRIMARY KEY REFERENCES payments(id),
        version INTEGER NOT NULL,
        key_id BLOB NOT NULL,
        nonce BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    ) STRICT""",
)

_V3 = (
    "ALTER TABLE payments ADD COLUMN till_reference TEXT",
    """CREATE UNIQUE INDEX payments_refund_by_reference ON payments(refund_of, till_reference)
       WHERE refund_of IS NOT NULL AND till_reference IS NOT NULL""",
    "CREATE INDEX outbox_sent ON outbox(sent_ms) WHERE sent_ms IS NOT NULL",
    """CREATE INDEX payments_by_till_reference ON payments(till_reference, created_ms)
       WHERE till_reference IS NOT NULL""",
)

_V4 = (
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    ) STRICT""",
    """CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
    """CREATE TABLE tills (
        name TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        lanes TEXT NOT NULL,
        refunds INTEGER NOT NULL,
        refund_limit INTEGER,
        cert_sha256 TEXT UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    ) STRICT""",
    """CREATE TABLE managers (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'manager')),
        created_ms INTEGER NOT NULL,
        changed_ms INTEGER NOT NULL,
        disabled_ms INTEGER
    ) STRICT""",
    """CREATE TABLE refund_approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sale_id TEXT NOT NULL,
        amount INTEGER NOT NULL,
        till TEXT NOT NULL,
        requested_ms INTEGER NOT NULL,
        approved_by TEXT,
        approved_ms INTEGER,
        used_ms INTEGER,
        UNIQUE (sale_id, amount, till)
    ) STRICT""",
)
_V5 = ("CREATE INDEX payments_by_created ON payments(created_ms, kind, state)",)


_V_DAYS = (
    """CREATE TABLE days (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        opened_ms INTEGER NOT NULL,
        closed_ms INTEGER NOT NULL,
        closed_by TEXT NOT NULL,
        differences INTEGER NOT NULL CHECK (differences >= 0),
        record TEXT NOT NULL,
        published_ms INTEGER,
        CHECK (closed_ms >= opened_ms)
    ) STRICT""",
    """CREATE TRIGGER days_closed_are_final BEFORE UPDATE
       OF id, opened_ms, closed_ms, closed_by, differences, record ON days
       BEGIN SELECT RAISE(ABORT, 'a closed day is never changed'); END""",
    """CREATE TRIGGER days_never_deleted BEFORE DELETE ON days
       BEGIN SELECT RAISE(ABORT, 'a closed day is never deleted'); END""",
)

_V_TERMINAL_TOTALS = (
    """CREATE TABLE terminal_totals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        lane TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
        transactions INTEGER,
        debits INTEGER,
        refunds INTEGER,
        currency TEXT,
        message TEXT NOT NULL DEFAULT ''
    ) STRICT""",
    "CREATE INDEX terminal_totals_by_lane ON terminal_totals(lane, at_ms)",
)

_V_INTERFACE = ("ALTER TABLE payments ADD COLUMN interface TEXT",)

#: Migration ``i`` takes the database from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1, _V2, _V3, _V4, _V5, _V_DAYS, _V_TERMINAL_TOTALS,
    _V_INTERFACE,
)
SCHEMA_VERSION = len(MIGRATIONS)


def configure(conn: sqlite3.Connection) -> None:
    """Connection settings: WAL, ``synchronous=FULL``, foreign keys, secure delete, busy wait.

    ``synchronous=FULL`` makes every commit durable before it returns, even across a power cut
    (sqlite.org/pragma.html#pragma_synchronous); ``secure_delete`` overwrites deleted content
    with zeros (the vault purge). A page cache of 512 KiB per connection (SQLite's default is
    2 MiB): the day's figures come from memory and the queries left use indexes, so the
    smaller cache costs no speed measured and 1.7 MB of the daemon's peak RSS
    (docs/performance.md).
    """
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise SchemaError(f"cannot switch the journal to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA cache_size=-512")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring the database up to ``len(migrations)``; return the version it was found at.

    Raises:
        SchemaError: Not a posgw journal, or a version newer than ``len(migrations)``.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    tables = int(conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0])
    if app_id != APPLICATION_ID and (found or tables):
        raise SchemaError("this database is not a posgw journal (application_id mismatch)")
    if found > len(migrations):
        raise SchemaError(
            f"journal schema version {found} is newer than this posgw knows "
            f"({len(migrations)}); refusing to downgrade"
        )
    for version in range(found, len(migrations)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found
