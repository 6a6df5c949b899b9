"""``posgw-sim``: the simulator's command line.

Subcommands live next to what they drive; each module offers ``register(subparsers)``.
Exit status: 0 success, 1 a transaction or device failure, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from terminal import EmvError, decode
from terminal.describe import describe_tlvs, tlv_to_json

# Modules adding subcommands; a module not yet present is simply not offered.
_SUBCOMMAND_MODULES = (
    "simulator.cli_pay",
    "simulator.cli_acquirer",
    "simulator.cli_cards",
    "simulator.cli_devices",
    "simulator.cli_head_office",
    "simulator.cli_tpe",
    "simulator.cli_till",
)


def _cmd_decode(args: argparse.Namespace) -> int:
    text = "".join(args.hex).replace(" ", "").replace(":", "")
    try:
        data = bytes.fromhex(text)
    except ValueError:
        print(f"error: not hexadecimal: {len(text)} characters given", file=sys.stderr)
        return 2
    try:
        tlvs = decode(data)
    except EmvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(tlv_to_json(tlvs), indent=2))
    else:
        print("\n".join(describe_tlvs(tlvs)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="posgw-sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="print a BER-TLV hex string as a tree with tag names")
    dec.add_argument("hex", nargs="+", help="hex bytes (spaces and colons ignored)")
    dec.add_argument("--json", action="store_true", help="JSON output")
    dec.set_defaults(func=_cmd_decode)
    for name in _SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``posgw-sim``."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
