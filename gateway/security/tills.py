"""Till credentials: a till's token (stored as its hash), its lanes, its refund rights.

A token is made once and shown once (:func:`gateway.security.tokens.new_token`); the file
keeps its hash (:func:`gateway.security.tokens.hash_token`), and optionally the SHA-256 of a
client certificate the till may present instead. Rotating or revoking bumps the credentials
version, so the daemon stops the old token on its next request (docs/security.md).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable

from gateway.security.errors import InvalidName, PrincipalExists
from gateway.security.principals import TillCredential, check_name, till_from_row
from gateway.security.store_core import StoreCore
from gateway.security.tokens import hash_token, looks_like_token, new_token

__all__ = ["TillCredentials"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class TillCredentials(StoreCore):
    """The credential store's till calls (a mixin of
    :class:`~gateway.security.store.CredentialStore`)."""

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
        check_name(name)
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
        self._change_credential(
            "UPDATE tills SET token_hash = ?, created_ms = ? WHERE name = ? AND revoked_ms IS NULL",
            (hash_token(token), self._now(), name),
            missing=f"no active till {name}", actor=actor, action="till.rotate", subject=name,
        )  # fmt: skip
        return token

    def revoke_till(self, name: str, *, actor: str) -> None:
        """Revoke a till's credential (effective on its next request).

        Raises:
            UnknownPrincipal: No active till of that name.
        """
        self._change_credential(
            "UPDATE tills SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL",
            (self._now(), name),
            missing=f"no active till {name}", actor=actor, action="till.revoke", subject=name,
        )  # fmt: skip

    def tills(self) -> list[TillCredential]:
        """Every till credential, active or revoked, by name."""
        rows = self.conn.execute("SELECT * FROM tills ORDER BY name").fetchall()
        return [till_from_row(row) for row in rows]

    def till_for_token(self, token: str) -> TillCredential | None:
        """The active till holding ``token``, or None."""
        if not looks_like_token(token):
            return None
        row = self.conn.execute(
            "SELECT * FROM tills WHERE token_hash = ? AND revoked_ms IS NULL", (hash_token(token),)
        ).fetchone()
        return None if row is None else till_from_row(row)

    def active_token_hashes(self) -> dict[str, TillCredential]:
        """``{token hash: till}`` of every active till (the daemon's cache)."""
        rows = self.conn.execute("SELECT * FROM tills WHERE revoked_ms IS NULL").fetchall()
        return {row["token_hash"]: till_from_row(row) for row in rows}

    def active_certificates(self) -> dict[str, TillCredential]:
        """``{certificate SHA-256: till}`` of every active till with a certificate."""
        rows = self.conn.execute(
            "SELECT * FROM tills WHERE revoked_ms IS NULL AND cert_sha256 IS NOT NULL"
        ).fetchall()
        return {row["cert_sha256"]: till_from_row(row) for row in rows}
