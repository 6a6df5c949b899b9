"""The key that signs the audit chain's checkpoints, and the signature (RFC 2104 HMAC-SHA-256).

The audit chain (:mod:`gateway.journal.audit`) proves its rows were not changed behind its
back only to someone holding a copy of its head: anyone who can write the SQLite file can
rebuild the chain. A *checkpoint* (row count and head hash) signed with a key the file does
not hold closes that gap: rows up to a signed checkpoint cannot be edited, deleted, inserted
or rebuilt without the key. The key is derived from the vault key
(:meth:`gateway.journal.vault.VaultKey.audit_key`, HKDF, RFC 5869), which lives outside the
journal file (a file or a systemd credential); the key id is the vault key's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

__all__ = ["AuditKey", "checkpoint_mac"]


@dataclass(frozen=True, slots=True)
class AuditKey:
    """A checkpoint signing key; its repr shows the key id only."""

    key_id: str
    secret: bytes = field(repr=False)


def checkpoint_mac(key: AuditKey, count: int, head: str) -> str:
    """HMAC-SHA-256 (hex) of the checkpoint ``count`` rows, last hash ``head``."""
    message = f"posgw.audit.checkpoint\x00{count}\x00{head}".encode("ascii")
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()
