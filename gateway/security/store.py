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
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.journal import audit
from gateway.security.errors import InvalidName, PrincipalExists, UnknownPrincipal
from gateway.security.passwords import hash_password, needs_rehash, verify_password
from gateway.security.tokens import hash_token, looks_like_token, new_token

__all__ = [
    "CredentialStore",
    "ManagerAccount",
    "RefundApproval",
    "Role",
    "TillCredential",
]

Role = Literal["viewer", "manager"]
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,32}$")
_VERSION = "credentials_version"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidName("a name is 1-32 of A-Z a-z 0-9 . _ -")
    return name


@dataclass(frozen=True, slots=True)
class TillCredential:
    """A till's credential and permissions (never its token).

    Attributes:
        name: The till's name; the journal's actor is ``till:NAME``.
        lanes: The lanes it may use, or None for every lane.
        refunds: Whether it may ask for refunds at all.
        refund_limit: Refunds above this many minor units need a manager's approval
            (None: no limit).
        has_certificate: A client certificate is bound to it (it may present it instead of
            its token).
        created_ms: When the credential was made (or last rotated).
        revoked_ms: When it was revoked, or None while active.
    """

    name: str
    lanes: frozenset[int] | None
    refunds: bool
    refund_limit: int | None
    has_certificate: bool
    created_ms: int
    revoked_ms: int | None

    @property
    def actor(self) -> str:
        """``till:NAME``, as the journal and the audit log record it."""
        return f"till:{self.name}"

    def may_use_lane(self, lane: int) -> bool:
        """True when this till may start payments on ``lane``."""
        return self.lanes is None or lane in self.lanes

    def needs_approval(self, amount: int) -> bool:
        """True when a refund of ``amount`` needs a manager's approval."""
        return self.refund_limit is not None and amount > self.refund_limit


@dataclass(frozen=True, slots=True)
class ManagerAccount:
    """A status-page account (never its password hash outside this module)."""

    name: str
    role: Role
    created_ms: int
    #: When the password last changed (sessions from before it end).
    changed_ms: int
    disabled_ms: int | None

    @property
    def actor(self) -> str:
        """``manager:NAME``."""
        return f"manager:{self.name}"


@dataclass(frozen=True, slots=True)
class RefundApproval:
    """A refund above a till's limit: asked by the till, approved (or not) by a manager."""

    id: int
    sale_id: str
    amount: int
    till: str
    requested_ms: int
    approved_by: str | None
    approved_ms: int | None
    used_ms: int | None


def _till(row: sqlite3.Row) -> TillCredential:
    lanes = json.loads(row["lanes"])
    return TillCredential(
        name=row["name"],
        lanes=None if lanes is None else frozenset(int(x) for x in lanes),
        refunds=bool(row["refunds"]),
        refund_limit=row["refund_limit"],
        has_certificate=row["cert_sha256"] is not None,
        created_ms=row["created_ms"],
        revoked_ms=row["revoked_ms"],
    )


def _approval(row: sqlite3.Row) -> RefundApproval:
    return RefundApproval(*(row[k] for k in row.keys()))  # noqa: SIM118 (sqlite3.Row)


class CredentialStore:
    """Credentials and approvals on one connection (one thread at a time).

    Args:
        conn: A connection to the journal file (configured and migrated by :meth:`open`).
        clock: Seconds since the epoch.
    """

    def __init__(self, conn: sqlite3.Connection, *, clock: Callable[[], float] = time.time):
        self.conn = conn
        conn.row_factory = sqlite3.Row
        self._clock = clock

    @classmethod
    def open(
        cls, path: str | Path, *, clock: Callable[[], float] = time.time
    ) -> CredentialStore:
        """Open the journal file at ``path`` (created and migrated when needed).

        Raises:
            gateway.journal.SchemaError: Not a journal, or a newer schema.
            sqlite3.Error: The file cannot be opened.
        """
        return cls(audit.connect(path), clock=clock)

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
        )

    def version(self) -> int:
        """The credentials version: changes whenever a till or manager credential changes."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
        return 0 if row is None else int(row[0])

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

    def verify_audit(self) -> audit.ChainVerdict:
        """Recompute the audit chain (:func:`gateway.journal.audit.verify`)."""
        return audit.verify(self.conn)

    def audit_entries(self, *, limit: int | None = None) -> list[audit.AuditEntry]:
        """The audit rows in chain order (the last ``limit``)."""
        return audit.entries(self.conn, limit=limit)

    # -- tills ---------------------------------------------------------------------------

    def add_till(
        self,
        name: str,
        *,
        lanes: Iterable[int] | None = None,
        refunds: bool = True,
        refund_limit: int | None = None,
        actor: str,
        token: str | None = None,
        cert_sha256: str | None = None,
    ) -> str:
        """Create a till credential; return its token (shown once, never stored).

        Args:
            name: 1-32 of ``A-Z a-z 0-9 . _ -``.
            lanes: Lanes it may use (None: all).
            refunds: Whether it may ask for refunds.
            refund_limit: Minor units above which a refund needs a manager (None: no limit).
            actor: Who asks (audited).
            token: A token made elsewhere with :func:`~gateway.security.tokens.new_token`
                (tests and the demo); default: a fresh one.
            cert_sha256: The SHA-256 (hex) of a client certificate the till may present on
                the TLS listener instead of its token (``[http] client_ca_file`` signs it).

        Raises:
            InvalidName, PrincipalExists (an active till of that name).
        """
        _check_name(name)
        token = new_token() if token is None else token
        if not looks_like_token(token):
            raise InvalidName("not a till token")
        lanes_json = json.dumps(None if lanes is None else sorted(set(lanes)))
        if cert_sha256 is not None and not _SHA256.match(cert_sha256):
            raise InvalidName("a certificate fingerprint is 64 hex digits")
        with self._write():
            row = self.conn.execute("SELECT revoked_ms FROM tills WHERE name = ?", (name,))
            found = row.fetchone()
            if found is not None and found[0] is None:
                raise PrincipalExists(f"till {name} exists (rotate or revoke it first)")
            self.conn.execute("DELETE FROM tills WHERE name = ?", (name,))
            try:
                self.conn.execute(
                    "INSERT INTO tills (name, token_hash, lanes, refunds, refund_limit,"
                    " cert_sha256, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, hash_token(token), lanes_json, int(refunds), refund_limit,
                     cert_sha256, self._now()),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise PrincipalExists("that certificate is bound to another till") from None
            self._bump()
            detail = {"lanes": json.loads(lanes_json), "refunds": refunds, "limit": refund_limit,
                      "certificate": cert_sha256}  # fmt: skip
            self._audit(actor, "till.add", name, "ok", detail)
        return token

    def rotate_till(self, name: str, *, actor: str) -> str:
        """Give an active till a new token (the old one stops at once); return it.

        Raises:
            UnknownPrincipal: No active till of that name.
        """
        token = new_token()
        with self._write():
            changed = self.conn.execute(
                "UPDATE tills SET token_hash = ?, created_ms = ? "
                "WHERE name = ? AND revoked_ms IS NULL",
                (hash_token(token), self._now(), name),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no active till {name}")
            self._bump()
            self._audit(actor, "till.rotate", name, "ok")
        return token

    def revoke_till(self, name: str, *, actor: str) -> None:
        """Revoke a till's credential (effective on its next request).

        Raises:
            UnknownPrincipal: No active till of that name.
        """
        with self._write():
            changed = self.conn.execute(
                "UPDATE tills SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL",
                (self._now(), name),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no active till {name}")
            self._bump()
            self._audit(actor, "till.revoke", name, "ok")

    def tills(self) -> list[TillCredential]:
        """Every till credential, active or revoked, by name."""
        rows = self.conn.execute("SELECT * FROM tills ORDER BY name").fetchall()
        return [_till(row) for row in rows]

    def till_for_token(self, token: str) -> TillCredential | None:
        """The active till holding ``token``, or None."""
        if not looks_like_token(token):
            return None
        row = self.conn.execute(
            "SELECT * FROM tills WHERE token_hash = ? AND revoked_ms IS NULL", (hash_token(token),)
        ).fetchone()
        return None if row is None else _till(row)

    def active_token_hashes(self) -> dict[str, TillCredential]:
        """``{token hash: till}`` of every active till (the daemon's cache)."""
        rows = self.conn.execute("SELECT * FROM tills WHERE revoked_ms IS NULL").fetchall()
        return {row["token_hash"]: _till(row) for row in rows}

    def active_certificates(self) -> dict[str, TillCredential]:
        """``{certificate SHA-256: till}`` of every active till with a certificate."""
        rows = self.conn.execute(
            "SELECT * FROM tills WHERE revoked_ms IS NULL AND cert_sha256 IS NOT NULL"
        ).fetchall()
        return {row["cert_sha256"]: _till(row) for row in rows}

    # -- managers ------------------------------------------------------------------------

    def add_manager(self, name: str, password: str, *, role: Role, actor: str) -> None:
        """Create a manager account.

        Raises:
            InvalidName, PrincipalExists, WeakPassword.
        """
        _check_name(name)
        if role not in ("viewer", "manager"):
            raise InvalidName("role is viewer or manager")
        hashed = hash_password(password)
        with self._write():
            try:
                self.conn.execute(
                    "INSERT INTO managers (name, password_hash, role, created_ms, changed_ms)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, hashed, role, self._now(), self._now()),
                )
            except sqlite3.IntegrityError:
                raise PrincipalExists(f"manager {name} exists") from None
            self._bump()
            self._audit(actor, "manager.add", name, "ok", {"role": role})

    def set_password(self, name: str, password: str, *, actor: str) -> None:
        """Replace a manager's password (rotation).

        Raises:
            UnknownPrincipal, WeakPassword.
        """
        hashed = hash_password(password)
        with self._write():
            changed = self.conn.execute(
                "UPDATE managers SET password_hash = ?, changed_ms = ? WHERE name = ?",
                (hashed, self._now(), name),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no manager {name}")
            self._bump()
            self._audit(actor, "manager.password", name, "ok")

    def disable_manager(self, name: str, *, actor: str) -> None:
        """Disable a manager account (its sessions end on their next request).

        Raises:
            UnknownPrincipal: No enabled manager of that name.
        """
        with self._write():
            changed = self.conn.execute(
                "UPDATE managers SET disabled_ms = ? WHERE name = ? AND disabled_ms IS NULL",
                (self._now(), name),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no enabled manager {name}")
            self._bump()
            self._audit(actor, "manager.disable", name, "ok")

    def managers(self) -> list[ManagerAccount]:
        """Every manager account, by name."""
        rows = self.conn.execute(
            "SELECT name, role, created_ms, changed_ms, disabled_ms FROM managers ORDER BY name"
        ).fetchall()
        return [ManagerAccount(*tuple(row)) for row in rows]

    def manager(self, name: str) -> ManagerAccount | None:
        """The enabled manager of that name, or None."""
        row = self.conn.execute(
            "SELECT name, role, created_ms, changed_ms, disabled_ms FROM managers "
            "WHERE name = ? AND disabled_ms IS NULL",
            (name,),
        ).fetchone()
        return None if row is None else ManagerAccount(*tuple(row))

    def check_password(self, name: str, password: str) -> ManagerAccount | None:
        """The enabled manager when ``password`` is theirs, else None (one hash either way)."""
        row = self.conn.execute(
            "SELECT password_hash FROM managers WHERE name = ? AND disabled_ms IS NULL", (name,)
        ).fetchone()
        stored = None if row is None else str(row[0])
        if not verify_password(stored, password):
            return None
        if stored is not None and needs_rehash(stored):
            with self._write():
                self.conn.execute(
                    "UPDATE managers SET password_hash = ? WHERE name = ?",
                    (hash_password(password), name),
                )
        return self.manager(name)

    # -- refund approvals ----------------------------------------------------------------

    def request_approval(self, sale_id: str, amount: int, till: str) -> RefundApproval:
        """The approval request for this refund (made once; asked again: the same one)."""
        with self._write():
            self.conn.execute(
                "INSERT INTO refund_approvals (sale_id, amount, till, requested_ms)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (sale_id, amount, till, self._now()),
            )
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE sale_id = ? AND amount = ? AND till = ?",
                (sale_id, amount, till),
            ).fetchone()
        return _approval(row)

    def approve(self, approval_id: int, *, manager: str) -> RefundApproval:
        """A manager approves a pending request (audited as ``refund.approve``).

        Raises:
            UnknownPrincipal: No pending request with that id.
        """
        with self._write():
            changed = self.conn.execute(
                "UPDATE refund_approvals SET approved_by = ?, approved_ms = ? "
                "WHERE id = ? AND approved_ms IS NULL AND used_ms IS NULL",
                (manager, self._now(), approval_id),
            ).rowcount
            if not changed:
                raise UnknownPrincipal(f"no pending approval {approval_id}")
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE id = ?", (approval_id,)
            ).fetchone()
            approval = _approval(row)
            self._audit(
                f"manager:{manager}",
                "refund.approve",
                approval.sale_id,
                "ok",
                {"amount": approval.amount, "till": approval.till, "approval": approval_id},
            )
        return approval

    def consume_approval(self, sale_id: str, amount: int, till: str) -> RefundApproval | None:
        """Use an approved, unused approval for this refund (once); None if there is none."""
        with self._write():
            row = self.conn.execute(
                "SELECT * FROM refund_approvals WHERE sale_id = ? AND amount = ? AND till = ?"
                " AND approved_ms IS NOT NULL AND used_ms IS NULL",
                (sale_id, amount, till),
            ).fetchone()
            if row is None:
                return None
            self.conn.execute(
                "UPDATE refund_approvals SET used_ms = ? WHERE id = ?", (self._now(), row["id"])
            )
        return _approval(row)

    def pending_approvals(self) -> list[RefundApproval]:
        """Requests no manager has approved yet, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM refund_approvals WHERE approved_ms IS NULL AND used_ms IS NULL "
            "ORDER BY id"
        ).fetchall()
        return [_approval(row) for row in rows]


class _Txn:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
