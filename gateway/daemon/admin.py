"""``posgw``'s administrative commands: till credentials, manager accounts, audit, TLS.

Each works on the journal file named by ``--config`` (its own SQLite connection; the daemon may
be running: changes take effect on the next request, no restart) and is audited as
``cli:USER`` (the Unix account that ran it). A command that changed a credential returns
:data:`~gateway.security.store_core.CREDENTIALS_FRESH_S` (0.25 s) after its commit, when a
running daemon's till requests no longer rely on a version read from before it
(:mod:`gateway.security.service`):

* ``posgw till add NAME [--lanes 1,2] [--no-refunds] [--refund-limit CENTS] [--cert FILE]``:
  prints the new till's token once (it is stored only as a hash); ``--cert`` binds a client
  certificate (from ``[http] client_ca_file``) the till may present instead.
  ``till rotate NAME``: a new token, the old one stops. ``till revoke NAME``. ``till list``.
* ``posgw manager add NAME --role viewer|manager``: the password is read from the terminal
  twice (or one line of stdin with ``--password-stdin``). ``manager passwd NAME``,
  ``manager disable NAME``, ``manager list``.
* ``posgw audit verify``: recompute the hash chain; exit 1 naming the first broken link.
  ``audit show [--last N]``.
* ``posgw tls fingerprint``: the listener certificate's SHA-256 (what tills pin).

Each takes ``--json`` (one JSON object on stdout; errors on stderr, docs/cli.md). Exit status:
0 done, 1 a check failed (audit), 2 bad input (unknown till, weak password, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import getpass
import io
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.daemon.config import ConfigError, DaemonConfig, load_config
from gateway.daemon.journal_admin import configured_vault_keys
from gateway.daemon.listener import tls_files
from gateway.journal import JournalError, VaultKeyError
from gateway.journal.audit_key import AuditKey
from gateway.security import CredentialError, CredentialStore, SecurityError
from gateway.security.store_core import CREDENTIALS_FRESH_S
from gateway.security.tls import certificate_sha256, fingerprint

__all__ = ["add_admin_commands"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: How a command that changed a credential waits before it returns (tests record the calls).
wait_in_force: Callable[[float], None] = time.sleep


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    safe = "".join(c for c in user if c.isascii() and (c.isalnum() or c in "._-"))[:32]
    return f"cli:{safe or 'unknown'}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _json(document: dict[str, Any]) -> int:
    print(json.dumps(document))
    return EXIT_OK


def _with_store(func: Callable[[CredentialStore, argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
            store = CredentialStore.open(config.journal.path)
        except (ConfigError, JournalError, sqlite3.Error) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        said = io.StringIO()  # what the command prints, held until the change is in force
        try:
            before = store.version()
            with contextlib.redirect_stdout(said):
                status = func(store, args)
            if store.version() != before:
                wait_in_force(CREDENTIALS_FRESH_S)
            return status
        except SecurityError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            store.close()
            sys.stdout.write(said.getvalue())

    return run


def _lanes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        lanes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--lanes: expected numbers like 1,2") from None
    if not lanes or any(not 1 <= lane <= 999 for lane in lanes):
        raise argparse.ArgumentTypeError("--lanes: lane numbers are 1-999")
    return lanes


def _till_add(store: CredentialStore, args: argparse.Namespace) -> int:
    certificate = None if args.cert is None else certificate_sha256(Path(args.cert))
    token = store.add_till(
        args.name,
        lanes=args.lanes,
        refunds=not args.no_refunds,
        refund_limit=args.refund_limit,
        actor=_actor(),
        cert_sha256=certificate,
    )
    if args.json:
        return _json({"till": args.name, "token": token, "certificate": certificate})
    if certificate is not None:
        print(f"till {args.name}: client certificate SHA-256 {certificate} bound")
    print(f"till {args.name} added; its token (shown once, give it to the till):")
    print(token)
    return EXIT_OK


def _till_rotate(store: CredentialStore, args: argparse.Namespace) -> int:
    token = store.rotate_till(args.name, actor=_actor())
    if args.json:
        return _json({"till": args.name, "token": token})
    print(f"till {args.name}: new token (the old one no longer works):")
    print(token)
    return EXIT_OK


def _till_revoke(store: CredentialStore, args: argparse.Namespace) -> int:
    store.revoke_till(args.name, actor=_actor())
    if args.json:
        return _json({"till": args.name, "revoked": True})
    print(f"till {args.name} revoked (effective on its next request)")
    return EXIT_OK


def _till_list(store: CredentialStore, args: argparse.Namespace) -> int:
    if args.json:
        return _json({"tills": [
            {"name": t.name, "lanes": None if t.lanes is None else sorted(t.lanes),
             "refunds": t.refunds, "refund_limit": t.refund_limit,
             "certificate": t.has_certificate, "created_ms": t.created_ms,
             "revoked_ms": t.revoked_ms}
            for t in store.tills()
        ]})  # fmt: skip
    print(f"{'name':<20} {'lanes':<12} {'refunds':<8} {'limit':>10}  cert  created"
          "           revoked")  # fmt: skip
    for till in store.tills():
        lanes = "all" if till.lanes is None else ",".join(map(str, sorted(till.lanes)))
        limit = "-" if till.refund_limit is None else str(till.refund_limit)
        print(
            f"{till.name:<20} {lanes:<12} {'yes' if till.refunds else 'no':<8} {limit:>10}  "
            f"{'yes' if till.has_certificate else 'no':<4}  {_when(till.created_ms)}  "
            f"{_when(till.revoked_ms)}"
        )
    return EXIT_OK


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise CredentialError("the two passwords differ")
    return first


def _manager_add(store: CredentialStore, args: argparse.Namespace) -> int:
    store.add_manager(args.name, _password(args), role=args.role, actor=_actor())
    if args.json:
        return _json({"manager": args.name, "role": args.role})
    print(f"manager {args.name} added ({args.role})")
    return EXIT_OK


def _manager_passwd(store: CredentialStore, args: argparse.Namespace) -> int:
    store.set_password(args.name, _password(args), actor=_actor())
    if args.json:
        return _json({"manager": args.name, "password_changed": True})
    print(f"manager {args.name}: password changed")
    return EXIT_OK


def _manager_disable(store: CredentialStore, args: argparse.Namespace) -> int:
    store.disable_manager(args.name, actor=_actor())
    if args.json:
        return _json({"manager": args.name, "disabled": True})
    print(f"manager {args.name} disabled")
    return EXIT_OK


def _manager_list(store: CredentialStore, args: argparse.Namespace) -> int:
    if args.json:
        return _json({"managers": [
            {"name": a.name, "role": a.role, "created_ms": a.created_ms,
             "disabled_ms": a.disabled_ms}
            for a in store.managers()
        ]})  # fmt: skip
    for account in store.managers():
        state = "disabled" if account.disabled_ms is not None else "enabled"
        print(f"{account.name:<20} {account.role:<8} {state}  created {_when(account.created_ms)}")
    return EXIT_OK


def _audit_keys(args: argparse.Namespace) -> tuple[list[AuditKey], str]:
    """The checkpoint keys from the configured vault keys, or none and why."""
    try:
        keys = configured_vault_keys(load_config(args.config))
    except (ConfigError, VaultKeyError) as exc:
        return [], f"not checked: the vault key cannot be read here ({exc})"
    if not keys:
        return [], "not checked: no vault key is configured"
    return [key.audit_key() for key in keys], ""


def _audit_verify(store: CredentialStore, args: argparse.Namespace) -> int:
    keys, unchecked = _audit_keys(args)
    verdict = store.verify_audit(keys)
    if args.json:
        _json({
            "ok": verdict.ok, "count": verdict.count, "head": verdict.head,
            "anchor_count": verdict.anchor_count, "anchor_head": verdict.anchor_head,
            "broken_at": verdict.broken_at, "reason": verdict.reason,
            "signed": verdict.signed,
        })  # fmt: skip
        return EXIT_OK if verdict.ok else EXIT_FAILED
    print(f"audit rows: {verdict.count} (anchor: {verdict.anchor_count})")
    print(f"chain head: {verdict.head}")
    if verdict.signed is None:
        print(f"signed checkpoint: {unchecked}")
    elif verdict.ok:
        print(f"signed checkpoint: rows 1-{verdict.signed} "
              f"({verdict.count - verdict.signed} after it, not signed yet)")  # fmt: skip
    if verdict.ok:
        print("audit chain: OK")
        return EXIT_OK
    print(f"audit chain: BROKEN at row {verdict.broken_at}: {verdict.reason}")
    return EXIT_FAILED


def _audit_show(store: CredentialStore, args: argparse.Namespace) -> int:
    if args.json:
        return _json({"entries": [
            {"seq": e.seq, "at_ms": e.at_ms, "actor": e.actor, "action": e.action,
             "subject": e.subject, "outcome": e.outcome, "detail": json.loads(e.detail),
             "prev_hash": e.prev_hash, "hash": e.hash}
            for e in store.audit_entries(limit=args.last)
        ]})  # fmt: skip
    for entry in store.audit_entries(limit=args.last):
        detail = json.loads(entry.detail)
        print(
            f"{entry.seq:>6} {_when(entry.at_ms)} {entry.actor:<22} {entry.action:<18} "
            f"{entry.subject:<24} {entry.outcome:<10} {json.dumps(detail) if detail else ''}"
        )
    return EXIT_OK


def _tls_fingerprint(args: argparse.Namespace) -> int:
    try:
        config: DaemonConfig = load_config(args.config)
        cert, _key = tls_files(config)
        sha256 = fingerprint(cert)
        if args.json:
            return _json({"certificate": str(cert), "sha256": sha256})
        print(f"{cert}: SHA-256 {sha256}")
    except (ConfigError, SecurityError) as exc:
        print(f"error: {exc} (the daemon makes its certificate at first start)", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _sub(
    group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text)
    parser.add_argument("--config", required=True, help="the TOML configuration file")
    parser.add_argument("--json", action="store_true", help="JSON output (one object)")
    return parser


def add_admin_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``till``, ``manager``, ``audit`` and ``tls`` to ``posgw``'s sub-commands."""
    till = sub.add_parser("till", help="till credentials").add_subparsers(
        dest="till_command", required=True
    )
    add = _sub(till, "add", "create a till credential and print its token once")
    add.add_argument("name")
    add.add_argument("--lanes", type=_lanes, default=None, help="lanes it may use (default all)")
    add.add_argument("--no-refunds", action="store_true", help="it may not refund")
    add.add_argument("--cert", default=None,
                     help="a PEM client certificate the till may present instead of its token")
    add.add_argument("--refund-limit", type=int, default=None,
                     help="minor units above which a manager must approve a refund")  # fmt: skip
    add.set_defaults(func=_with_store(_till_add))
    for name, func, text in (
        ("rotate", _till_rotate, "give a till a new token"),
        ("revoke", _till_revoke, "revoke a till's credential"),
    ):
        parser = _sub(till, name, text)
        parser.add_argument("name")
        parser.set_defaults(func=_with_store(func))
    _sub(till, "list", "list till credentials").set_defaults(func=_with_store(_till_list))

    manager = sub.add_parser("manager", help="status page accounts").add_subparsers(
        dest="manager_command", required=True
    )
    madd = _sub(manager, "add", "create a manager account")
    madd.add_argument("name")
    madd.add_argument("--role", choices=("viewer", "manager"), required=True)
    madd.add_argument("--password-stdin", action="store_true")
    madd.set_defaults(func=_with_store(_manager_add))
    passwd = _sub(manager, "passwd", "change a manager's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(func=_with_store(_manager_passwd))
    disable = _sub(manager, "disable", "disable a manager account")
    disable.add_argument("name")
    disable.set_defaults(func=_with_store(_manager_disable))
    _sub(manager, "list", "list manager accounts").set_defaults(func=_with_store(_manager_list))

    audit = sub.add_parser("audit", help="the hash-chained audit log").add_subparsers(
        dest="audit_command", required=True
    )
    _sub(audit, "verify", "recompute the chain").set_defaults(func=_with_store(_audit_verify))
    show = _sub(audit, "show", "print the audit rows")
    show.add_argument("--last", type=int, default=50)
    show.set_defaults(func=_with_store(_audit_show))

    tls = sub.add_parser("tls", help="the listener's certificate").add_subparsers(
        dest="tls_command", required=True
    )
    _sub(tls, "fingerprint", "print the SHA-256 fingerprint").set_defaults(func=_tls_fingerprint)
