"""``posgw-sim acquirer``: run the simulated acquirer host (docs/acquirer-api.md) standalone.

Listens on ``--bind`` (default 127.0.0.1) and ``--port`` (0: a free port), prints one line
``listening on http://HOST:PORT`` (flushed, so a parent process can read the port), and serves
until SIGINT or SIGTERM. Faults for manual tests: ``--decline-all``, ``--delay S``.

Exit status: 0 after a signal, 2 when the address cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from simulator.acquirer_host import AcquirerHost, HostFaults

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Any) -> None:
    """Add ``acquirer`` to the ``posgw-sim`` subcommands."""
    parser = sub.add_parser("acquirer", help="run the simulated acquirer host (online API)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port)")
    parser.add_argument("--decline-all", action="store_true", help="decline every request (05)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.set_defaults(func=_cmd_acquirer)


async def serve(bind: str, port: int, faults: HostFaults) -> None:
    """Run the host until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host = AcquirerHost(faults=faults)
    try:
        url = await host.start(bind, port)
        print(f"listening on {url}", flush=True)
        await stop.wait()
    finally:
        await host.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _cmd_acquirer(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535 or args.delay < 0:
        print("error: --port must be 0..65535 and --delay not negative", file=sys.stderr)
        return EXIT_BAD_INPUT
    faults = HostFaults(delay_s=args.delay, decline_all=args.decline_all)
    try:
        asyncio.run(serve(args.bind, args.port, faults))
    except OSError as exc:
        print(f"error: cannot listen on {args.bind}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``acquirer`` alone (``python -m simulator.cli_acquirer``), before cli.py lists it."""
    parser = argparse.ArgumentParser(prog="posgw-sim")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["acquirer", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
