"""Online backup and verified restore of the journal (docs/day.md, "Backup and restore").

``posgw backup DEST`` copies the journal while the daemon runs with SQLite's online backup API
(``sqlite3_backup_step`` through :meth:`sqlite3.Connection.backup`, sqlite.org/backup.html), in
one step: the copy is made inside one read transaction of the source, so it is one consistent
snapshot of the WAL database however many payments are being written meanwhile (a file copy of
``journal.db`` without its ``-wal`` would miss committed sales and could be torn). ``DEST`` is a
new directory holding:

* ``journal.db``: the snapshot, switched to rollback-journal mode so it is one self-contained
  file;
* ``manifest.json``: format, time, schema version, SHA-256 and size of ``journal.db``, the row
  count of every table, the sums of payment amounts per kind and currency, a SHA-256 digest of the
  append-only event log (who moved which payment, in order), the head of the hash-chained audit
  log (``audit_head``: last sequence number and hash) and the ids of the vault keys
  the sealed offline sales need. The manifest is computed from the snapshot itself.

``posgw restore SRC`` first verifies the backup: the file's SHA-256 and size, SQLite's
``integrity_check``, the posgw ``application_id``, the schema version (a backup from a newer posgw
is refused: the journal is never downgraded), and every count, sum and the event digest recomputed
from the file. Then it takes the journal's owner lock (:mod:`gateway.journal.lock`; a running
daemon holds it, so its journal is never overwritten), moves the current journal and its
``-wal``/``-shm`` aside as ``journal.db.before-restore-<time>`` (nothing is deleted) and renames a
verified copy into place.

The vault key is never in a backup: the snapshot holds only AES-GCM ciphertexts and the key ids.
A restore refuses a backup whose sealed rows need a key id the configuration does not provide.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.journal.errors import JournalError
from gateway.journal.lock import journal_lock
from gateway.journal.schema import APPLICATION_ID, SCHEMA_VERSION

__all__ = [
    "DATABASE_NAME",
    "FORMAT",
    "MANIFEST_NAME",
    "BackupDamaged",
    "BackupError",
    "BackupNewerSchema",
    "Manifest",
    "RestoreReport",
    "restore_backup",
    "summarise",
    "take_backup",
    "verify_backup",
]

FORMAT = "posgw-journal-backup/1"
DATABASE_NAME = "journal.db"
MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


class BackupError(JournalError):
    """A backup cannot be taken or restored (the message says which file and why)."""


class BackupDamaged(BackupError):
    """The backup does not match its manifest, or is not a sound posgw journal."""


class BackupNewerSchema(BackupError):
    """The backup was written by a newer posgw (schema version above this code's)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``manifest.json`` says about a backup (see the module docstring)."""

    created_ms: int
    schema_version: int
    sha256: str
    size: int
    content: dict[str, Any]

    def to_json(self) -> str:
        """The manifest file's text."""
        document = {
            "format": FORMAT,
            "created_ms": self.created_ms,
            "schema_version": self.schema_version,
            "database": DATABASE_NAME,
            "sha256": self.sha256,
            "size": self.size,
            **self.content,
        }
        return json.dumps(document, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        """Parse ``manifest.json``.

        Raises:
            BackupDamaged: Not JSON, another format, or a field missing or of the wrong type.
        """
        try:
            document = json.loads(text)
        except ValueError:
            raise BackupDamaged(f"{where}: not JSON") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupDamaged(f"{where}: not a {FORMAT} manifest")
        try:
            manifest = cls(
                created_ms=_int(document.pop("created_ms")),
                schema_version=_int(document.pop("schema_version")),
                sha256=str(document.pop("sha256")),
                size=_int(document.pop("size")),
                content={k: v for k, v in document.items() if k not in ("format", "database")},
            )
        except (KeyError, TypeError) as exc:
            raise BackupDamaged(f"{where}: missing or malformed field ({exc})") from None
        for key in ("tables", "sums", "events_digest", "vault_key_ids"):
            if key not in manifest.content:
                raise BackupDamaged(f"{where}: missing field {key!r}")
        return manifest

    @property
    def tables(self) -> dict[str, int]:
        """Row count per table."""
        return dict(self.content["tables"])

    @property
    def vault_key_ids(self) -> list[str]:
        """Key ids (hex) the sealed offline sales in this backup need."""
        return list(self.content["vault_key_ids"])


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did.

    Attributes:
        manifest: The verified backup's manifest.
        journal: The journal file now holding the backup.
        kept: The previous journal's files, moved aside (empty when there was none).
    """

    manifest: Manifest
    journal: Path
    kept: tuple[Path, ...]


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def summarise(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts, sums, event-log digest and vault key ids of a journal, read in one transaction.

    Works on any schema version (tables are found in ``sqlite_schema``), so a newer backup is
    still described, and refused for its version rather than for its content.
    """
    conn.execute("BEGIN")
    try:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        tables = {
            name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # noqa: S608
            for name in names
        }
        sums: dict[str, dict[str, int]] = {}
        if "payments" in tables:
            for kind, currency, total in conn.execute(
                "SELECT kind, currency, sum(amount) FROM payments GROUP BY kind, currency"
            ):
                sums.setdefault(str(kind), {})[str(currency)] = int(total)
        digest = hashlib.sha256()
        last_seq = 0
        if "events" in tables:
            for row in conn.execute(
                "SELECT seq, payment_id, at_ms, actor, from_state, to_state, reason"
                " FROM events ORDER BY seq"
            ):
                digest.update(json.dumps(list(row), separators=(",", ":")).encode())
                digest.update(b"\n")
                last_seq = int(row[0])
        audit_head = None
        if tables.get("audit"):
            row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            audit_head = {"seq": int(row[0]), "hash": str(row[1])}
        key_ids: list[str] = []
        if "vault" in tables:
            key_ids = [
                bytes(row[0]).hex()
                for row in conn.execute("SELECT DISTINCT key_id FROM vault ORDER BY key_id")
            ]
    finally:
        conn.execute("COMMIT")
    return {
        "tables": tables,
        "sums": sums,
        "events_digest": digest.hexdigest(),
        "last_event_seq": last_seq,
        "audit_head": audit_head,
        "vault_key_ids": key_ids,
    }


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pragma_int(conn: sqlite3.Connection, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def take_backup(
    journal_path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    clock: Callable[[], float] = time.time,
) -> Manifest:
    """Copy the journal online into the new directory ``dest`` with its manifest.

    Safe while the daemon writes: the source is read in one SQLite read transaction (WAL
    readers never block the writer, and the writer never blocks them).

    Raises:
        BackupError: ``dest`` exists and is not empty, the journal does not exist or is not a
            posgw journal, or SQLite fails.
    """
    source = Path(journal_path)
    target = Path(dest)
    if not source.is_file():
        raise BackupError(f"{source}: no journal there")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target}: exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / (DATABASE_NAME + ".partial")
    try:
        src = sqlite3.connect(source, timeout=10.0, isolation_level=None)
        try:
            src.execute("PRAGMA busy_timeout=10000")
            if _pragma_int(src, "application_id") != APPLICATION_ID:
                raise BackupError(f"{source}: not a posgw journal (application_id)")
            dst = sqlite3.connect(partial, isolation_level=None)
            try:
                src.backup(dst, pages=-1)  # one step: one consistent snapshot
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                content = summarise(dst)
                schema_version = _pragma_int(dst, "user_version")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"{source}: backup failed: {exc}") from exc
    _fsync(partial)
    sha, size = _sha256(partial)
    manifest = Manifest(round(clock() * 1000), schema_version, sha, size, content)
    manifest_tmp = target / (MANIFEST_NAME + ".partial")
    manifest_tmp.write_text(manifest.to_json(), encoding="utf-8")
    _fsync(manifest_tmp)
    os.replace(partial, target / DATABASE_NAME)
    os.replace(manifest_tmp, target / MANIFEST_NAME)
    _fsync(target)
    return manifest


def verify_backup(src: str | os.PathLike[str]) -> Manifest:
    """Check a backup directory against its manifest and SQLite's own checks.

    Raises:
        BackupDamaged: Missing files, checksum or size mismatch, failed ``integrity_check``, not
            a posgw journal, or content (counts, sums, event digest) different from the manifest.
        BackupNewerSchema: Written by a newer posgw.
    """
    directory = Path(src)
    manifest_file = directory / MANIFEST_NAME
    database = directory / DATABASE_NAME
    if not manifest_file.is_file() or not database.is_file():
        raise BackupDamaged(f"{directory}: expected {MANIFEST_NAME} and {DATABASE_NAME}")
    manifest = Manifest.from_json(manifest_file.read_text(encoding="utf-8"), manifest_file)
    sha, size = _sha256(database)
    if (sha, size) != (manifest.sha256, manifest.size):
        raise BackupDamaged(
            f"{database}: SHA-256 or size differs from the manifest (damaged or changed)"
        )
    try:
        conn = sqlite3.connect(
            f"{database.resolve().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None
        )
        try:
            check = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
            app_id = _pragma_int(conn, "application_id")
            version = _pragma_int(conn, "user_version")
            content = summarise(conn) if check == ["ok"] else None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupDamaged(f"{database}: not a readable SQLite database ({exc})") from None
    if content is None:
        raise BackupDamaged(f"{database}: integrity_check failed: {'; '.join(check[:3])}")
    if app_id != APPLICATION_ID:
        raise BackupDamaged(f"{database}: not a posgw journal (application_id)")
    if version != manifest.schema_version:
        raise BackupDamaged(f"{database}: schema version {version}, manifest says otherwise")
    if version > SCHEMA_VERSION:
        raise BackupNewerSchema(
            f"{database}: schema version {version} is newer than this posgw knows"
            f" ({SCHEMA_VERSION}); restore it with that posgw version or later"
        )
    if content != manifest.content:
        different = sorted(k for k in content if content[k] != manifest.content.get(k))
        raise BackupDamaged(f"{database}: differs from the manifest in {', '.join(different)}")
    return manifest


def restore_backup(
    src: str | os.PathLike[str],
    journal_path: str | os.PathLike[str],
    *,
    vault_key_ids: Collection[str] | None = None,
    clock: Callable[[], float] = time.time,
) -> RestoreReport:
    """Replace the journal at ``journal_path`` with the verified backup in ``src``.

    Args:
        src: A directory written by :func:`take_backup`.
        journal_path: The journal to replace (need not exist).
        vault_key_ids: Key ids (hex) the configuration provides; when given, a backup whose
            sealed offline sales need another key is refused (they could never be forwarded).
        clock: Names the moved-aside previous journal.

    Raises:
        BackupDamaged, BackupNewerSchema: See :func:`verify_backup`.
        JournalInUse: A daemon (or another restore) owns the journal: nothing was changed.
        BackupError: The vault key the backup needs is not configured.
    """
    manifest = verify_backup(src)
    if vault_key_ids is not None:
        missing = sorted(set(manifest.vault_key_ids) - set(vault_key_ids))
        if missing:
            raise BackupError(
                f"the backup holds offline sales sealed under vault key id(s) {', '.join(missing)}"
                " that the configuration does not provide: configure that key (docs/day.md)"
            )
    journal = Path(journal_path)
    with journal_lock(journal):
        incoming = journal.with_name(journal.name + ".restoring")
        shutil.copyfile(Path(src) / DATABASE_NAME, incoming)
        _fsync(incoming)
        if _sha256(incoming)[0] != manifest.sha256:
            incoming.unlink()
            raise BackupDamaged(f"{incoming}: the copy differs from the backup (I/O error?)")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
        kept: list[Path] = []
        for suffix in ("", "-wal", "-shm"):
            current = journal.with_name(journal.name + suffix)
            if current.exists():
                aside = journal.with_name(f"{journal.name}.before-restore-{stamp}{suffix}")
                os.replace(current, aside)
                kept.append(aside)
        os.replace(incoming, journal)
        _fsync(journal.parent)
    return RestoreReport(manifest, journal, tuple(kept))
