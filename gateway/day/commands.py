"""``posgw backup``, ``posgw restore`` (and the shop-day admin commands): the CLI side.

Registered on ``posgw``'s parser by :func:`add_commands` (gateway/cli.py); each handler returns
the process exit status of ``posgw`` (0 done, 1 failed, 2 bad input: an invalid configuration, a
damaged or too-new backup, a journal in use). Messages name files and reasons, never card data
or key material.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.daemon.config import DaemonConfig, load_config
from gateway.errors import ConfigError
from gateway.journal import JournalError, VaultKeyError, load_vault_key
from gateway.journal.backup import BackupError, restore_backup, take_backup
from gateway.journal.lock import JournalInUse

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_commands", "configured_vault_key_ids"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def configured_vault_key_ids(config: DaemonConfig) -> set[str]:
    """Key ids (hex) of the current and previous vault keys the configuration names.

    Raises:
        VaultKeyError: A configured key cannot be read.
    """
    vault = config.vault
    keys = [load_vault_key(path) for path in vault.previous_key_files]
    if vault.key_file is not None:
        keys.append(load_vault_key(vault.key_file))
    elif vault.credential is not None:
        keys.append(load_vault_key(credential=vault.credential))
    return {key.key_id.hex() for key in keys}


def _config(args: argparse.Namespace) -> DaemonConfig | None:
    try:
        return load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _cmd_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    try:
        manifest = take_backup(config.journal.path, args.dest)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (JournalError, OSError) as exc:
        print(f"error: backup failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    tables = ", ".join(f"{name} {count}" for name, count in manifest.tables.items())
    print(f"backup of {config.journal.path} in {args.dest}")
    print(f"schema {manifest.schema_version}, sha256 {manifest.sha256}")
    print(f"rows: {tables}")
    if manifest.vault_key_ids:
        print(f"vault key ids needed to forward held sales: {', '.join(manifest.vault_key_ids)}")
    return EXIT_OK


def _cmd_restore(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    try:
        key_ids = configured_vault_key_ids(config)
    except VaultKeyError as exc:
        print(f"error: vault key: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = restore_backup(args.src, config.journal.path, vault_key_ids=key_ids)
    except JournalInUse as exc:
        print(f"error: {exc}; stop the daemon first", file=sys.stderr)
        return EXIT_USAGE
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (JournalError, OSError) as exc:
        print(f"error: restore failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"restored {args.src} into {report.journal} (schema {report.manifest.schema_version})")
    for path in report.kept:
        print(f"previous journal kept as {path}")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to ``posgw``'s subparsers."""
    backup = sub.add_parser("backup", help="copy the journal online, with a manifest")
    backup.add_argument("dest", help="a new (or empty) directory")
    backup.add_argument("--config", required=True, help="the TOML configuration file")
    backup.set_defaults(func=_cmd_backup)
    restore = sub.add_parser("restore", help="replace the journal with a verified backup")
    restore.add_argument("src", help="a directory written by posgw backup")
    restore.add_argument("--config", required=True, help="the TOML configuration file")
    restore.set_defaults(func=_cmd_restore)
