"""Manager accounts: the status page's viewers and managers, their Argon2id passwords.

A password is stored as its Argon2id hash (:mod:`gateway.security.passwords`) and rehashed on
a successful login when the parameters moved; a changed password or a disabled account ends
the sessions opened before it (:mod:`gateway.security.sessions`, docs/security.md).
"""

from __future__ import annotations

import sqlite3

from gateway.security.errors import InvalidName, PrincipalExists
from gateway.security.passwords import hash_password, needs_rehash, verify_password
from gateway.security.principals import ManagerAccount, Role, check_name
from gateway.security.store_core import StoreCore

__all__ = ["ManagerAccounts"]


class ManagerAccounts(StoreCore):
    """The credential store's manager-account calls (a mixin of
    :class:`~gateway.security.store.CredentialStore`)."""

    def add_manager(self, name: str, password: str, *, role: Role, actor: str) -> None:
        """Create a manager account.

        Raises:
            InvalidName, PrincipalExists, WeakPassword.
        """
        check_name(name)
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
        self._change_credential(
            "UPDATE managers SET password_hash = ?, changed_ms = ? WHERE name = ?",
            (hashed, self._now(), name),
            missing=f"no manager {name}", actor=actor, action="manager.password", subject=name,
        )  # fmt: skip

    def disable_manager(self, name: str, *, actor: str) -> None:
        """Disable a manager account (its sessions end on their next request).

        Raises:
            UnknownPrincipal: No enabled manager of that name.
        """
        self._change_credential(
            "UPDATE managers SET disabled_ms = ? WHERE name = ? AND disabled_ms IS NULL",
            (self._now(), name),
            missing=f"no enabled manager {name}", actor=actor, action="manager.disable",
            subject=name,
        )  # fmt: skip

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
