"""``posgw-sim serve | tap | insert | remove``: virtual readers and cards through the real pcscd.

* ``posgw-sim serve --config FILE [--control PATH]``: start the lanes' virtual readers in a
  private pcscd (see :mod:`simulator.serve`), print where its socket is, and serve the control
  socket until interrupted.
* ``posgw-sim insert --lane N [--card PROFILE] [--pin 1234]``: a card in the lane's contact slot.
* ``posgw-sim tap --lane N [--card PROFILE] [--pin 1234]``: a card in the lane's contactless field.
* ``posgw-sim remove --lane N``: take it out.

Exit status: 0 done, 1 the simulator refused or is not running, 2 bad usage/config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from simulator.control import ControlError, default_socket_path, remove_socket, request
from simulator.pcscd import PcscdError
from simulator.serve import DeviceServer, ServeConfigError, load_config

__all__ = ["register"]


async def _serve(config: Path, control: Path, as_json: bool = False) -> int:
    server = DeviceServer(load_config(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start(control)
        status = server.status()
        if as_json:
            print(json.dumps({**status, "control": str(control)}), flush=True)
            await stop.wait()
            return 0
        print(f"export PCSCLITE_CSOCK_NAME={status['pcscd_socket']}")
        for lane in status["lanes"]:
            print(f"lane {lane['lane']}: contact '{lane['contact_reader']}', "
                  f"contactless '{lane['contactless_reader']}', card {lane['card']}")  # fmt: skip
        print(f"control socket: {control}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        remove_socket(control)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_serve(Path(args.config), Path(args.control), args.json))
    except ServeConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PcscdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _cmd_card(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"cmd": args.command, "lane": args.lane}
    if args.command in ("insert", "tap"):
        payload["card"] = args.card
        if args.pin is not None:
            payload["pin"] = args.pin
    try:
        answer = request(Path(args.control), payload)
    except ControlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0 if answer.get("ok") else 1


def register(subparsers: Any) -> None:
    """Add ``serve``, ``insert``, ``tap`` and ``remove`` to ``posgw-sim``."""
    control_help = f"control socket (default {default_socket_path()})"
    serve = subparsers.add_parser("serve", help="virtual readers + cards through a real pcscd")
    serve.add_argument("--config", required=True, help="lanes config (JSON or TOML)")
    serve.add_argument("--control", default=str(default_socket_path()), help=control_help)
    serve.add_argument("--json", action="store_true", help="print the lanes as one JSON object")
    serve.set_defaults(func=_cmd_serve)
    for name, text in (("insert", "insert a card in a lane's contact slot"),
                       ("tap", "tap a card on a lane's contactless reader"),
                       ("remove", "remove the lane's card")):  # fmt: skip
        sub = subparsers.add_parser(name, help=text)
        sub.add_argument("--lane", type=int, required=True, help="lane id")
        if name != "remove":
            sub.add_argument("--card", default="visa_credit", help="card profile name")
            sub.add_argument("--pin", help="the PIN the virtual cardholder will type")
        sub.add_argument("--control", default=str(default_socket_path()), help=control_help)
        sub.add_argument("--json", action="store_true", help="JSON output (always JSON)")
        sub.set_defaults(func=_cmd_card)
