"""``posgw-sim acquirer``: run the simulated acquirer host (docs/acquirer-api.md) standalone.

Listens on ``--bind`` (default 127.0.0.1) and ``--port`` (0: a free port), prints one line
``listening on http://HOST:PORT`` (flushed, so a parent process can read the port), and serves
until SIGINT or SIGTERM. ``--issuers FILE`` replaces the shipped test issuers
(:mod:`simulator.issuer_profiles`). The amount/PAN outcome table of docs/sandbox.md applies
unless ``--no-test-rules``; every outcome also exists as an option applying to every
authorisation: ``--decline-all``, ``--response-code {05,51,55,91}``, ``--server-errors N``,
``--always-5xx``, ``--drop-after-processing N`` (answer lost after the charge), ``--delay S``
(before each answer), ``--issuer-delay S`` (before the decision), ``--slow-seconds S`` (the
"timeout" outcome's delay). ``GET /sim/ledger`` shows what moved money.

Exit status: 0 after a signal, 2 bad options, an invalid issuers file or an address that
cannot be bound (docs/cli.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from simulator.acquirer_host import AcquirerHost, HostFaults
from simulator.issuer import IssuerHost
from simulator.issuer_profiles import IssuerFileError, issuers_schema, load_issuers

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Any) -> None:
    """Add ``acquirer`` to the ``posgw-sim`` subcommands."""
    parser = sub.add_parser("acquirer", help="run the simulated acquirer host (online API)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port)")
    parser.add_argument(
        "--issuers",
        metavar="FILE",
        help="issuer profiles (TOML or JSON, simulator/data/issuers.schema.json); "
        "default: the shipped test issuers",
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"listening": URL} instead of a line'
    )
    parser.add_argument(
        "--print-issuers-schema",
        action="store_true",
        help="print the JSON Schema of the issuers file and exit",
    )
    faults = parser.add_argument_group("faults (every authorisation; see docs/sandbox.md)")
    faults.add_argument("--decline-all", action="store_true", help="decline every request (05)")
    faults.add_argument(
        "--response-code",
        choices=("05", "51", "55", "91"),
        help="the issuer answers this code (05, 51, 55 with a valid ARPC; 91 unavailable)",
    )
    faults.add_argument(
        "--server-errors", type=int, default=0, metavar="N", help="answer the next N with 503"
    )
    faults.add_argument("--always-5xx", action="store_true", help="answer every one with 503")
    faults.add_argument(
        "--drop-after-processing",
        type=int,
        default=0,
        metavar="N",
        help="charge the next N, then close the connection without answering",
    )
    faults.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    faults.add_argument(
        "--issuer-delay", type=float, default=0.0, help="seconds before the issuer decides"
    )
    faults.add_argument(
        "--slow-seconds",
        type=float,
        default=30.0,
        help="how long the issuer takes for the 'timeout' test amount (default 30)",
    )
    faults.add_argument(
        "--no-test-rules", action="store_true", help="ignore the amount/PAN outcome table"
    )
    parser.set_defaults(func=_cmd_acquirer)


async def serve(
    bind: str,
    port: int,
    faults: HostFaults,
    issuer: IssuerHost | None = None,
    *,
    as_json: bool = False,
) -> None:
    """Run the host until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host = AcquirerHost(faults=faults, issuer=issuer)
    try:
        url = await host.start(bind, port)
        print(json.dumps({"listening": url}) if as_json else f"listening on {url}", flush=True)
        await stop.wait()
    finally:
        await host.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _cmd_acquirer(args: argparse.Namespace) -> int:
    if args.print_issuers_schema:
        print(json.dumps(issuers_schema(), indent=2, sort_keys=True))
        return EXIT_OK
    if not 0 <= args.port <= 65535:
        print("error: --port must be 0..65535", file=sys.stderr)
        return EXIT_BAD_INPUT
    if min(args.delay, args.issuer_delay, args.slow_seconds) < 0 or min(
        args.server_errors, args.drop_after_processing
    ) < 0:
        print("error: delays and counts must not be negative", file=sys.stderr)
        return EXIT_BAD_INPUT
    faults = HostFaults(
        delay_s=args.delay,
        issuer_delay_s=args.issuer_delay,
        drop_after_processing=args.drop_after_processing,
        server_errors=args.server_errors,
        always_server_error=args.always_5xx,
        decline_all=args.decline_all,
        response_code=args.response_code,
        test_rules=not args.no_test_rules,
        slow_s=args.slow_seconds,
    )
    issuer = None
    if args.issuers:
        try:
            issuer = IssuerHost(issuers=tuple(load_issuers(args.issuers).issuers))
        except IssuerFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        asyncio.run(serve(args.bind, args.port, faults, issuer, as_json=args.json))
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
