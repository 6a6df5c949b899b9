"""``posgw-sim head-office``: run the simulated head office for one shop or a fleet (docs/sync.md).

Connects to ``--broker HOST:PORT``, publishes the ``--stock SKU=LEVEL`` levels given (retained,
QoS 1), prints ``listening for posgw/{shop}/sales`` (flushed), then one JSON line per distinct
sale received and one per status change, until SIGINT or SIGTERM.

Exit status: 0 after a signal, 2 for bad arguments or an unreachable broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import aiomqtt

from simulator.head_office import HeadOffice

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(sub: Any) -> None:
    """Add ``head-office`` to the ``posgw-sim`` subcommands."""
    parser = sub.add_parser("head-office", help="run the simulated head office (MQTT peer)")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    parser.add_argument("--shop", required=True, action="append",
                        help="shop id (topic level); repeat it for a fleet")  # fmt: skip
    parser.add_argument("--stock", action="append", default=[], metavar="SKU=LEVEL",
                        help="publish this stock level at start (repeatable)")  # fmt: skip
    parser.set_defaults(func=_cmd_head_office)


def _broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--broker: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _stock(values: list[str]) -> list[tuple[str, int]]:
    levels = []
    for value in values:
        sku, sep, level = value.partition("=")
        if not sep or not level.isdigit():
            raise ValueError("--stock: expected SKU=LEVEL with LEVEL a whole number")
        levels.append((sku, int(level)))
    return levels


async def serve(host: str, port: int, shops: list[str], stock: list[tuple[str, int]]) -> None:
    """Run the head office until SIGINT or SIGTERM, printing what it receives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with HeadOffice(host=host, port=port, shops=shops) as office:
            for shop in shops:
                for sku, level in stock:
                    version = await office.publish_stock(sku, level=level, shop=shop)
                    line = {"stock": sku, "level": level, "version": version}
                    if len(shops) > 1:
                        line["shop"] = shop
                    print(json.dumps(line), flush=True)
            for shop in shops:
                print(f"listening for posgw/{shop}/sales", flush=True)
            shown = [0, 0]  # sales, statuses printed so far

            def news() -> bool:
                return len(office.sales) > shown[0] or len(office.statuses) > shown[1]

            while not stop.is_set():
                waiter = asyncio.create_task(stop.wait())
                changed = asyncio.create_task(office.wait_for(news))
                await asyncio.wait({waiter, changed}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                changed.cancel()
                for sale in list(office.sales.values())[shown[0] :]:
                    print(json.dumps({"sale": sale}, sort_keys=True), flush=True)
                for status in office.statuses[shown[1] :]:
                    print(json.dumps({"status": status}, sort_keys=True), flush=True)
                shown[:] = [len(office.sales), len(office.statuses)]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _cmd_head_office(args: argparse.Namespace) -> int:
    try:
        host, port = _broker(args.broker)
        stock = _stock(args.stock)
        asyncio.run(serve(host, port, list(args.shop), stock))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except aiomqtt.MqttError as exc:
        print(f"error: MQTT broker {args.broker}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run ``head-office`` alone (``python -m simulator.cli_head_office``)."""
    parser = argparse.ArgumentParser(prog="posgw-sim")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["head-office", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
