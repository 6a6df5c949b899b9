"""``posgw backup``, ``posgw restore`` and ``posgw close-day``: the shop-day admin commands.

``close-day`` closes the day on the box while the daemon is stopped (it takes the journal's
owner lock; with the daemon running a manager closes the day through ``POST /api/days/close``)
and journals ``cli:<user>`` as who closed it.

Registered on ``posgw``'s parser by :func:`add_commands` (gateway/cli.py); each handler returns
the process exit status of ``posgw`` (0 done, 1 failed, 2 bad input: an invalid configuration, a
damaged or too-new backup, a journal in use). Messages name files and reasons, never card data
or key material.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from gateway.daemon.config import DaemonConfig, load_config
from gateway.errors import ConfigError
from gateway.journal import JournalError, VaultKey, VaultKeyError, load_vault_key
from gateway.journal.backup import BackupError, restore_backup, take_backup
from gateway.journal.lock import JournalInUse, journal_lock

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_commands",
    "configured_vault_key_ids",
    "configured_vault_keys",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def configured_vault_keys(config: DaemonConfig) -> list[VaultKey]:
    """The current vault key the configuration names (first, when there is one), then the
    previous ones.

    Raises:
        VaultKeyError: A configured key cannot be read.
    """
    vault = config.vault
    keys = []
    if vault.key_file is not None:
        keys.append(load_vault_key(vault.key_file))
    elif vault.credential is not None:
        keys.append(load_vault_key(credential=vault.credential))
    return keys + [load_vault_key(path) for path in vault.previous_key_files]


def configured_vault_key_ids(config: DaemonConfig) -> set[str]:
    """Key ids (hex) of the current and previous vault keys the configuration names.

    Raises:
        VaultKeyError: A configured key cannot be read.
    """
    return {key.key_id.hex() for key in configured_vault_keys(config)}


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
    if args.json:
        print(json.dumps({"backup": str(args.dest), "journal": str(config.journal.path),
                          "schema_version": manifest.schema_version, "sha256": manifest.sha256,
                          **manifest.content}, sort_keys=True))  # fmt: skip
        return EXIT_OK
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
    if args.json:
        print(json.dumps({"restored": str(args.src), "journal": str(report.journal),
                          "schema_version": report.manifest.schema_version,
                          "kept": [str(p) for p in report.kept]}, sort_keys=True))  # fmt: skip
        return EXIT_OK
    print(f"restored {args.src} into {report.journal} (schema {report.manifest.schema_version})")
    for path in report.kept:
        print(f"previous journal kept as {path}")
    return EXIT_OK


async def _close_day(config: DaemonConfig, actor: str) -> dict[str, Any]:
    from drivers import parse_url
    from gateway.acquirer import AcquirerClient
    from gateway.day.close import DayCloser
    from gateway.journal import Journal
    from gateway.payments.smart_terminal import TERMINAL_SCHEMES
    from gateway.till.day import day_json

    vault = config.vault
    key = None
    if vault.key_file is not None:
        key = load_vault_key(vault.key_file)
    elif vault.credential is not None:
        key = load_vault_key(credential=vault.credential)
    client = AcquirerClient(
        base_url=config.acquirer.url,
        connect_timeout=config.acquirer.connect_timeout,
        total_timeout=config.acquirer.total_timeout,
        max_attempts=config.acquirer.max_attempts,
        keepalive_s=config.acquirer.keepalive,
    )
    with journal_lock(config.journal.path):
        async with Journal.open(config.journal.path, vault_key=key) as journal, client:
            closer = DayCloser(
                journal=journal,
                client=client,
                merchant_id=config.acquirer.merchant_id,
                lane_interfaces={
                    str(x.id): x.interface for x in config.lanes if x.interface != "auto"
                },
                terminal_lanes=frozenset(
                    str(x.id) for x in config.lanes
                    if parse_url(x.reader).scheme in TERMINAL_SCHEMES
                ),
            )
            return day_json(await closer.close(actor=actor))


def _cmd_close_day(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    actor = f"cli:{getpass.getuser()}"
    try:
        day = asyncio.run(_close_day(config, actor))
    except JournalInUse as exc:
        print(
            f"error: {exc}; the daemon is running: a manager closes the day with"
            " POST /api/days/close (the status page), or stop the daemon first",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except (JournalError, OSError) as exc:
        print(f"error: day close failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(day, sort_keys=True))
        return EXIT_OK
    state = "reconciled" if day["reconciled"] else "NOT reconciled (acquirer unavailable)"
    print(f"day {day['day']} closed by {actor}: {day['record']['payments']} payment(s), {state}")
    for line in day["record"].get("acquirer", {}).get("differences", []):
        print(
            f"difference {line['currency']} {line['kind']}: journal {line['journal']['count']}"
            f" / {line['journal']['amount']}, acquirer {line['other']['count']}"
            f" / {line['other']['amount']} ({line['difference']:+d} minor units)"
        )
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Add ``backup``, ``restore`` and ``close-day`` to ``posgw``'s subparsers."""
    backup = sub.add_parser("backup", help="copy the journal online, with a manifest")
    backup.add_argument("dest", help="a new (or empty) directory")
    backup.add_argument("--config", required=True, help="the TOML configuration file")
    backup.add_argument("--json", action="store_true", help="print the manifest as JSON")
    backup.set_defaults(func=_cmd_backup)
    restore = sub.add_parser("restore", help="replace the journal with a verified backup")
    restore.add_argument("src", help="a directory written by posgw backup")
    restore.add_argument("--config", required=True, help="the TOML configuration file")
    restore.add_argument("--json", action="store_true", help="JSON output")
    restore.set_defaults(func=_cmd_restore)
    close = sub.add_parser("close-day", help="close the shop's day (the daemon stopped)")
    close.add_argument("--config", required=True, help="the TOML configuration file")
    close.add_argument("--json", action="store_true", help="print the day as JSON")
    close.set_defaults(func=_cmd_close_day)
