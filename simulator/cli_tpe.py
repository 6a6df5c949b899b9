"""``posgw-sim tpe``: run a virtual payment terminal standalone.

Examples::

    posgw-sim tpe --protocol concert-v2 --pty
    posgw-sim tpe --protocol caisse-ap --tcp 8888 --fault slow:3 --fault duplicate

The first line printed is the device URL to give the gateway (``serial:///dev/pts/N?...`` or
``tcp://host:port?...``); then one line per transaction (action, amount, outcome: no card
data). The terminal runs until SIGINT/SIGTERM, or ``--transactions N`` answered, or
``--for SECONDS``. Exit status 0, or 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from simulator.tpe import (
    FAULT_NAMES,
    PROTOCOLS,
    TerminalBrain,
    VirtualSerialTpe,
    VirtualTcpTpe,
    parse_faults,
)

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``tpe`` subcommand to ``posgw-sim``."""
    parser = subparsers.add_parser(
        "tpe", help="run a virtual Concert V2 / Caisse-AP payment terminal",
        description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="concert-v2")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve Caisse-AP on a TCP port")
    parser.add_argument("--host", default="127.0.0.1", help="TCP address to listen on")
    parser.add_argument("--framing", choices=("7E1", "8N1"), default="7E1")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[:VALUE]",
                        help=f"inject a fault ({', '.join(FAULT_NAMES)}); repeatable")
    parser.add_argument("--transactions", type=int, metavar="N",
                        help="exit after answering N transactions")
    parser.add_argument("--for", dest="duration", type=float, metavar="SECONDS",
                        help="exit after this many seconds")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the terminal until stopped (the ``tpe`` subcommand's function)."""
    try:
        faults = parse_faults(args.fault)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.tcp is not None and args.protocol != "caisse-ap":
        print("error: only caisse-ap runs over TCP", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args, faults))


async def _serve(args: argparse.Namespace, faults: Any) -> int:
    brain = TerminalBrain(protocol=args.protocol)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    tpe: VirtualSerialTpe | VirtualTcpTpe
    if args.pty:
        tpe = VirtualSerialTpe(brain, faults=faults, seven_bit=args.framing == "7E1")
        path = await tpe.start()
        print(f"serial://{path}?protocol={args.protocol}&framing={args.framing}", flush=True)
    else:
        tpe = VirtualTcpTpe(brain, faults=faults, host=args.host, port=args.tcp)
        port = await tpe.start()
        print(f"tcp://{args.host}:{port}?protocol=caisse-ap", flush=True)
    seen = 0
    try:
        async with asyncio.timeout(args.duration):
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await stop.wait()
                for item in brain.processed[seen:]:
                    print(f"{item.action} {item.amount} {item.outcome}", flush=True)
                seen = len(brain.processed)
                if args.transactions is not None and tpe.answered >= args.transactions:
                    break
    except TimeoutError:
        pass
    finally:
        await tpe.stop()
    return 0
