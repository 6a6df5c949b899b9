"""The store-and-forward vault's cryptography: the key, and AES-GCM sealing of one payment.

What an offline-approved payment needs later (the authorisation request with the PAN and the
ICC data) is kept only as a sealed blob (ARCHITECTURE.md, card data; PCI DSS 3.5):

* AES-256-GCM (NIST SP 800-38D) with a fresh 96-bit random nonce per seal from ``os.urandom``.
  The nonce is deliberately not injectable: a repeated nonce under one key breaks GCM.
* Associated data binds the blob to its payment and its record format:
  ``b"posgw.vault\\x00" + version (2 bytes) + payment id``, so a blob copied onto another
  payment, or read under another format version, fails authentication.
* Each row stores a key id (an HMAC-SHA-256 of a fixed label under the key, 8 bytes), so a row
  sealed under another key is told apart from a tampered one.

The key (32 random bytes) comes from a file or a systemd credential
(``$CREDENTIALS_DIRECTORY/<name>``, systemd.exec(5) "Credentials"); it is refused when missing,
not exactly 32 bytes, or readable or writable by others.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.journal.audit_key import AuditKey
from gateway.journal.errors import VaultKeyError, VaultKeyMismatch, VaultTampered

__all__ = ["VAULT_FORMAT", "SealedBlob", "VaultKey", "load_vault_key", "open_blob", "seal"]

#: Version of the sealed record format; part of the associated data.
VAULT_FORMAT = 1
KEY_SIZE = 32
NONCE_SIZE = 12
_KEY_ID_LABEL = b"posgw vault key id v1"
_AUDIT_LABEL = b"posgw audit checkpoint key v1"


class VaultKey:
    """A 32-byte AES-256 key; its repr shows only the key id."""

    __slots__ = ("_aead", "_audit", "key_id")

    def __init__(self, key: bytes) -> None:
        """Wrap raw key bytes.

        Raises:
            VaultKeyError: Unless ``key`` is exactly 32 bytes.
        """
        if len(key) != KEY_SIZE:
            raise VaultKeyError(f"vault key must be exactly {KEY_SIZE} bytes, got {len(key)}")
        self._aead = AESGCM(bytes(key))
        self.key_id = hmac.new(bytes(key), _KEY_ID_LABEL, hashlib.sha256).digest()[:8]
        # a key of its own for the audit chain's checkpoints (gateway.journal.audit): HKDF
        # (RFC 5869) under another label, so the vault key itself signs nothing
        self._audit = HKDF(algorithm=SHA256(), length=KEY_SIZE, salt=None,
                           info=_AUDIT_LABEL).derive(bytes(key))  # fmt: skip

    def audit_key(self) -> AuditKey:
        """The key that signs the audit chain's checkpoints, derived from this one."""
        return AuditKey(key_id=self.key_id.hex(), secret=self._audit)

    def __repr__(self) -> str:
        return f"VaultKey(id={self.key_id.hex()})"


def load_vault_key(
    path: str | os.PathLike[str] | None = None, *, credential: str | None = None
) -> VaultKey:
    """Read the vault key from a file, or from a systemd credential by name.

    Args:
        path: A key file (32 raw bytes, mode 0600 or 0400).
        credential: A credential name, read from ``$CREDENTIALS_DIRECTORY/<name>``
            (``LoadCredential=``/``LoadCredentialEncrypted=`` in the unit).

    Returns:
        The key.

    Raises:
        VaultKeyError: Both or neither source given, no credentials directory, a missing file,
            a file readable or writable by others, or a length other than 32 bytes.
    """
    if (path is None) == (credential is None):
        raise VaultKeyError("give exactly one of a key file path or a credential name")
    if credential is not None:
        if not credential or "/" in credential or credential in (".", ".."):
            raise VaultKeyError(f"bad credential name {credential!r}")
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise VaultKeyError(
                f"credential {credential!r}: $CREDENTIALS_DIRECTORY is not set "
                "(LoadCredential= missing from the unit?)"
            )
        source = Path(directory) / credential
    else:
        assert path is not None
        source = Path(path)
    try:
        with source.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read(KEY_SIZE + 1)
    except FileNotFoundError:
        raise VaultKeyError(f"vault key {source}: no such file") from None
    except OSError as exc:
        raise VaultKeyError(f"vault key {source}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise VaultKeyError(f"vault key {source}: not a regular file")
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise VaultKeyError(
            f"vault key {source}: accessible by others (mode {stat.S_IMODE(mode):04o}); "
            "chmod 600 it"
        )
    if len(data) != KEY_SIZE:
        size = f"more than {KEY_SIZE}" if len(data) > KEY_SIZE else str(len(data))
        raise VaultKeyError(
            f"vault key {source}: must be exactly {KEY_SIZE} raw bytes, found {size}"
        )
    return VaultKey(data)


@dataclass(frozen=True, slots=True)
class SealedBlob:
    """One sealed record as stored: format version, key id, nonce, ciphertext with tag."""

    version: int
    key_id: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"SealedBlob(v{self.version}, key={self.key_id.hex()}, {len(self.ciphertext)} B)"


def _aad(payment_id: str, version: int) -> bytes:
    return b"posgw.vault\x00" + version.to_bytes(2, "big") + payment_id.encode()


def seal(key: VaultKey, payment_id: str, plaintext: bytes) -> SealedBlob:
    """Encrypt ``plaintext`` for ``payment_id`` (AES-256-GCM, NIST SP 800-38D, 96-bit nonce)."""
    nonce = os.urandom(NONCE_SIZE)
    ciphertext = key._aead.encrypt(nonce, plaintext, _aad(payment_id, VAULT_FORMAT))
    return SealedBlob(VAULT_FORMAT, key.key_id, nonce, ciphertext)


def open_blob(key: VaultKey, payment_id: str, blob: SealedBlob) -> bytes:
    """Decrypt and authenticate a sealed record of ``payment_id``.

    Raises:
        VaultKeyMismatch: The row was sealed under another key.
        VaultTampered: Authentication failed (ciphertext, nonce, payment id or version changed).
    """
    if not hmac.compare_digest(blob.key_id, key.key_id):
        raise VaultKeyMismatch(
            f"payment {payment_id!r}: sealed under key {blob.key_id.hex()}, "
            f"current key is {key.key_id.hex()}"
        )
    try:
        return key._aead.decrypt(blob.nonce, blob.ciphertext, _aad(payment_id, blob.version))
    except InvalidTag:
        raise VaultTampered(f"payment {payment_id!r}: vault record failed authentication") from None
