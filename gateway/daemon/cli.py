"""``posgw``: the daemon's command line (the daemon and its admin commands).

* ``posgw run --config FILE``: run the daemon until SIGTERM/SIGINT (docs/daemon.md).
* ``posgw check-config --config FILE [--json]``: validate a configuration file and print a
  summary (``posgw check-config FILE`` still works: a deprecated alias).
* ``posgw backup DEST --config FILE`` / ``posgw restore SRC --config FILE``: online backup of
  the journal and verified restore; ``posgw close-day --config FILE`` closes the shop's day
  (docs/day.md; gateway/daemon/admin.py).
* ``posgw version [--json]``.
* ``posgw till|manager|audit|tls ... --config FILE``: credentials, accounts, the audit chain,
  the listener's certificate (:mod:`gateway.daemon.admin`, docs/security.md).

Conventions shared with ``posgw-sim`` and the exit codes: docs/cli.md. Exit status: 0 success,
1 the daemon failed, 2 bad input or usage (an invalid configuration).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from gateway.daemon.admin import add_admin_commands
from gateway.daemon.config import ConfigError, load_config
from gateway.daemon.logs import configure_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _cmd_version(args: argparse.Namespace) -> int:
    try:
        installed: str | None = version("posgw")
    except PackageNotFoundError:
        installed = None
    if args.json:
        print(json.dumps({"name": "posgw", "version": installed}))
    else:
        print(f"posgw {installed}" if installed else "posgw (not installed)")
    return EXIT_OK


def _cmd_check_config(args: argparse.Namespace) -> int:
    path = args.config
    if args.file is not None:
        if path is not None and path != args.file:
            print("error: give the file once, with --config", file=sys.stderr)
            return EXIT_USAGE
        print("warning: `posgw check-config FILE` is deprecated; use --config FILE",
              file=sys.stderr)  # fmt: skip
        path = args.file
    if path is None:
        print("error: --config FILE is required", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(path)
    except ConfigError as exc:
        if args.json:
            print(json.dumps({"file": path, "ok": False, "error": str(exc)}))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps({
            "file": path, "ok": True, "shop": config.shop,
            "http": f"{config.http.host}:{config.http.port}",
            "journal": str(config.journal.path), "acquirer": config.acquirer.url,
            "mqtt": None if config.mqtt is None else f"{config.mqtt.host}:{config.mqtt.port}",
            "lanes": [{"id": lane.id, "name": lane.display_name, "reader": lane.reader,
                       "interface": lane.interface, "pin_pad": lane.pin_pad.split(":", 1)[0]}
                      for lane in config.lanes],
        }))  # fmt: skip
        return EXIT_OK
    print(f"{path}: OK")
    print(f"shop: {config.shop}")
    scheme = "https" if config.http.tls else "http"
    print(f"http: {scheme}://{config.http.host}:{config.http.port}")
    print(f"journal: {config.journal.path}")
    print(f"acquirer: {config.acquirer.url}")
    print(f"mqtt: {'off' if config.mqtt is None else f'{config.mqtt.host}:{config.mqtt.port}'}")
    for lane in config.lanes:
        pin = lane.pin_pad.split(":", 1)[0]
        print(f"lane {lane.id} ({lane.display_name}): {lane.reader} {lane.interface} pin={pin}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.log_level, sys.stderr)
    from gateway.daemon import event_loop
    from gateway.daemon.daemon import Daemon

    daemon = Daemon(config, install_signals=True)
    try:
        event_loop.run(daemon.run(), config.event_loop)
    except KeyboardInterrupt:
        return EXIT_OK
    except ConfigError as exc:  # also a configured part whose library is missing
        logging.getLogger("gateway").error("posgw cannot start: %s", exc)
        return EXIT_USAGE
    except Exception:
        logging.getLogger("gateway").exception("posgw failed")
        return EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``posgw``."""
    parser = argparse.ArgumentParser(prog="posgw", description="posgw payment gateway daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    ver = sub.add_parser("version", help="print the installed version")
    ver.add_argument("--json", action="store_true", help="JSON output")
    ver.set_defaults(func=_cmd_version)
    run = sub.add_parser("run", help="run the daemon")
    run.add_argument("--config", required=True, help="the TOML configuration file")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.set_defaults(func=_cmd_run)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("--config", help="the TOML configuration file")
    check.add_argument("file", nargs="?", help=argparse.SUPPRESS)  # deprecated positional form
    check.add_argument("--json", action="store_true", help="JSON output")
    check.set_defaults(func=_cmd_check_config)
    add_admin_commands(sub)
    from gateway.daemon.journal_admin import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``posgw``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
