"""The credential store's connection: one transaction per change, its audit row, the version.

:class:`StoreCore` is what the credential groups (:mod:`~gateway.security.tills`,
:mod:`~gateway.security.accounts`, :mod:`~gateway.security.approvals`) share: the connection
to the journal file, ``BEGIN IMMEDIATE`` transactions, the audit row written in the change's
own transaction (:func:`gateway.journal.audit.append`), and ``meta.credentials_version``,
bumped by every change to a credential so the daemon drops its cache on its next request.

:data:`CREDENTIALS_FRESH_S` is the contract between the daemon and another process that changes
a credential (``posgw till revoke``): the daemon's till requests rely on a version read at most
that old, and the command returns no sooner than that after its commit, so a change is in force
once the command has returned.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.journal import audit
from gateway.security.errors import UnknownPrincipal

__all__ = ["CREDENTIALS_FRESH_S", "StoreCore"]

#: How old (seconds, ``CLOCK_MONOTONIC``) a read of the credentials version may be when a till
#: request relies on it; a command that changed a credential waits this long before it returns.
CREDENTIALS_FRESH_S = 0.25

_VERSION = "credentials_version"


class StoreCore:
    """Credentials and approvals on one connection (one thread at a time).

    Args:
        conn: A connection to the journal file (configured and migrated by
            :meth:`CredentialStore.open <gateway.security.store.CredentialStore.open>`).
        clock: Seconds since the epoch.
        audit_keys: The audit chain's checkpoint keys, the current one first (the daemon's,
            from its vault key: gateway.journal.audit); none: rows are appended unsigned.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        clock: Callable[[], float] = time.time,
        audit_keys: Sequence[audit.AuditKey] = (),
    ):
        self.conn = conn
        conn.row_factory = sqlite3.Row
        self._clock = clock
        self.audit_keys = tuple(audit_keys)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def _now(self) -> int:
        return round(self._clock() * 1000)

    def _write(self) -> _Txn:
        return _Txn(self.conn)

    def _bump(self) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (_VERSION,),
        )

    def _audit(
        self,
        actor: str,
        action: str,
        subject: str,
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> audit.AuditEntry:
        return audit.append(
            self.conn,
            at_ms=self._now(),
            actor=actor,
            action=action,
            subject=subject,
            outcome=outcome,
            detail=detail,
            keys=self.audit_keys,
        )

    def _change_credential(
        self,
        sql: str,
        params: tuple[object, ...],
        *,
        missing: str,
        actor: str,
        action: str,
        subject: str,
    ) -> None:
        """One ``UPDATE`` of a credential in its own transaction, with the version bump and
        the ``ok`` audit row (``action`` on ``subject`` by ``actor``).

        Raises:
            UnknownPrincipal: ``missing``, when the statement changed no row.
        """
        with self._write():
            if not self.conn.execute(sql, params).rowcount:
                raise UnknownPrincipal(missing)
            self._bump()
            self._audit(actor, action, subject, "ok")

    def version(self) -> int:
        """The credentials version: changes whenever a till or manager credential changes."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
        return 0 if row is None else int(row[0])


class _Txn:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
