"""``posgw``: the daemon's command line (the daemon and its admin commands).

Exit status: 0 success, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version


def _cmd_version(_args: argparse.Namespace) -> int:
    try:
        print(f"posgw {version('posgw')}")
    except PackageNotFoundError:
        print("posgw (not installed)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``posgw``."""
    parser = argparse.ArgumentParser(prog="posgw", description="posgw payment gateway daemon")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the installed version").set_defaults(func=_cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``posgw``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
