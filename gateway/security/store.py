"""Till credentials, manager accounts and refund approvals, in the journal's SQLite file.

:class:`CredentialStore` is synchronous: the ``posgw`` commands use it directly, the daemon
through :class:`gateway.security.service.SecurityService` (its own worker thread). It opens its
own connection to the journal file (WAL lets it work beside the daemon's;
:func:`gateway.journal.audit.connect` brings the schema up to date, version 4), and writes
each change with its audit row (:mod:`gateway.journal.audit`) in one transaction. Every change
to a credential bumps ``meta.credentials_version``, which the daemon reads on each request to
drop its cache: a revoked token stops working on the next request, without a restart.

Stored: a till's token as its hash (:func:`gateway.security.tokens.hash_token`), a manager's
password as its Argon2id hash. Nothing here returns, logs or audits a token or a password.

The store is put together from one module per kind of credential, on
:class:`~gateway.security.store_core.StoreCore` (the connection, transactions, audit rows and
the version): :mod:`~gateway.security.tills`, :mod:`~gateway.security.accounts` (managers),
:mod:`~gateway.security.approvals` (refund approvals); the records they return are in
:mod:`~gateway.security.principals`. Reading and appending the audit chain is here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gateway.journal import audit
from gateway.security.accounts import ManagerAccounts
from gateway.security.approvals import RefundApprovals
from gateway.security.principals import ManagerAccount, RefundApproval, Role, TillCredential
from gateway.security.tills import TillCredentials

__all__ = [
    "CredentialStore",
    "ManagerAccount",
    "RefundApproval",
    "Role",
    "TillCredential",
]


class CredentialStore(TillCredentials, ManagerAccounts, RefundApprovals):
    """Credentials and approvals on one connection (one thread at a time).

    Args:
        conn: A connection to the journal file (configured and migrated by :meth:`open`).
        clock: Seconds since the epoch.
    """

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        audit_keys: Sequence[audit.AuditKey] = (),
    ) -> CredentialStore:
        """Open the journal file at ``path`` (created and migrated when needed); with
        ``audit_keys`` every audit row it appends signs the chain's head.

        Raises:
            gateway.journal.SchemaError: Not a journal, or a newer schema.
            sqlite3.Error: The file cannot be opened.
        """
        return cls(audit.connect(path), clock=clock, audit_keys=audit_keys)

    # -- audit ---------------------------------------------------------------------------

    def record(
        self,
        *,
        actor: str,
        action: str,
        subject: str = "",
        outcome: str,
        detail: Mapping[str, Any] | None = None,
    ) -> audit.AuditEntry:
        """Append one audit row in its own transaction (:func:`gateway.journal.audit.append`)."""
        with self._write():
            return self._audit(actor, action, subject, outcome, detail)

    def verify_audit(self, keys: Sequence[audit.AuditKey] = ()) -> audit.ChainVerdict:
        """Recompute the audit chain and, with ``keys``, check its signed checkpoint
        (:func:`gateway.journal.audit.verify`)."""
        return audit.verify(self.conn, keys)

    def audit_entries(self, *, limit: int | None = None) -> list[audit.AuditEntry]:
        """The audit rows in chain order (the last ``limit``)."""
        return audit.entries(self.conn, limit=limit)
