"""``posgw-sim till``: a small till on the daemon's till API, for integrators and demos.

::

    posgw-sim till [--url URL] [--token T] [--json] lanes
    posgw-sim till pay --lane 1 --amount 12.50 [--currency EUR] [--reference R-1]
    posgw-sim till status PAYMENT [--wait S]
    posgw-sim till cancel PAYMENT
    posgw-sim till refund PAYMENT --amount 5.00 [--reference R-2]
    posgw-sim till void PAYMENT
    posgw-sim till close-day

``pay`` subscribes to the lane's events first (``GET /api/lanes/{id}/events``), starts the
payment, prints each prompt as the customer would read it on the lane's display ("Present
card", "Processing, please wait", "Remove card") and ends on the outcome, read back with
``GET /api/payments/{id}``. Ctrl-C while the card is awaited cancels the payment.
``--json`` prints one JSON object per line instead (each event, then ``{"result": ...}``).
``void`` and ``close-day`` call the day routes (docs/day.md); a daemon without them says so
(exit 4). Closing the day is a manager's action: as a till it is refused (403, exit 2).

``--ca-file`` (``$POSGW_CA_FILE``) is the daemon's certificate (its self-signed ``http.crt``) or
CA, for an ``https`` URL. ``--url`` defaults to ``$POSGW_URL`` or ``http://127.0.0.1:8000``;
``--token`` to
``$POSGW_TILL_TOKEN`` (sent as ``Authorization: Bearer``). Exit status (docs/cli.md): 0 done
(approved), 1 not approved (declined, cancelled, error, unknown), 2 refused as bad input
(400/409), 3 daemon unreachable or failing (5xx), 4 not offered by this daemon.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import uuid
from typing import Any

import aiohttp

from simulator.till_client import (
    RouteMissing,
    TillClient,
    TillHttpError,
    TillUnreachable,
)
from terminal.currency import CurrencyError, currency, to_minor_units

__all__ = ["register"]

EXIT_OK, EXIT_NOT_APPROVED, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_NOT_OFFERED = 0, 1, 2, 3, 4

#: What the lane's display says for each prompt (docs/till-events.md).
DISPLAY = {
    "PRESENT CARD": "Present card",
    "PROCESSING": "Processing, please wait",
    "REMOVE CARD": "Remove card",
    "IDLE": "",
}


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, text: str, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps(fields), flush=True)
        elif text:
            print(text, flush=True)

    def result(self, payload: dict[str, Any], label: str) -> None:
        if self.as_json:
            print(json.dumps({"result": payload}), flush=True)
            return
        print(label, flush=True)
        for key, value in payload.items():
            if value not in (None, "", [], {}):
                print(f"  {key}: {value}", flush=True)


def _outcome_label(payment: dict[str, Any]) -> str:
    outcome = str(payment.get("outcome") or payment.get("state") or "unknown").upper()
    reason = payment.get("reason")
    return f"{outcome}" + (f" ({reason})" if reason and outcome != "APPROVED" else "")


def _exit_for(payment: dict[str, Any]) -> int:
    return EXIT_OK if payment.get("outcome") == "approved" else EXIT_NOT_APPROVED


async def _pay(client: TillClient, args: argparse.Namespace, out: _Printer) -> int:
    cur = currency(args.currency)
    amount = to_minor_units(args.amount, cur)
    stream = client.events(args.lane)
    first = await anext(stream)  # the stream's opening "state": we are subscribed
    out.line("", event=first.event, prompt=first.data.get("prompt"))
    payment = await client.pay(args.lane, amount, cur.alpha, args.reference)
    payment_id = str(payment["id"])
    if payment.get("replayed"):
        out.line(f"payment {payment_id} already made with this reference (replayed)",
                 event="replayed", payment=payment_id)  # fmt: skip
        final = await client.payment(payment_id)
        out.result(final, _outcome_label(final))
        return _exit_for(final)
    out.line(f"payment {payment_id}: {args.amount} {cur.alpha} on lane {args.lane}",
             event="created", payment=payment_id, amount=amount, currency=cur.alpha)  # fmt: skip
    loop = asyncio.get_running_loop()
    cancelling: list[asyncio.Task[Any]] = []

    def on_interrupt() -> None:
        out.line("cancelling...", event="cancel", payment=payment_id)
        cancelling.append(loop.create_task(client.cancel(payment_id)))

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async with asyncio.timeout(args.timeout):
            async for event in stream:
                data = event.data
                if event.event == "prompt" and data.get("payment") in (payment_id, None):
                    prompt = str(data.get("prompt"))
                    out.line(DISPLAY.get(prompt, prompt), event="prompt", prompt=prompt,
                             display=DISPLAY.get(prompt, prompt))  # fmt: skip
                elif event.event == "payment":
                    current = data.get("payment") or {}
                    if current.get("id") == payment_id and (
                        current.get("done") or current.get("outcome")
                    ):
                        break
                elif event.event == "gap":
                    out.line("(events missed: the lane's state follows)", event="gap")
                elif event.event == "state":  # after a gap: the payment may have ended meanwhile
                    last = data.get("last") or {}
                    if last.get("id") == payment_id:
                        break
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(Exception):
            await stream.aclose()
    for task in cancelling:
        with contextlib.suppress(TillHttpError):
            await task
    final = await client.payment(payment_id, wait=30)
    out.result(final, _outcome_label(final))
    return _exit_for(final)


async def _run(args: argparse.Namespace) -> int:
    out = _Printer(args.json)
    # a daemon's self-signed certificate (or its CA) to trust: docs/security.md
    tls: ssl.SSLContext | bool = (
        True if args.ca_file is None else ssl.create_default_context(cafile=args.ca_file)
    )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        client = TillClient(session, args.url, args.token)
        command = args.till_command
        if command == "pay":
            return await _pay(client, args, out)
        if command == "lanes":
            lanes = await client.lanes()
            if args.json:
                print(json.dumps({"lanes": lanes}))
            for lane in [] if args.json else lanes:
                prompt = lane.get("prompt")
                print(f"lane {lane.get('id')}: {prompt} ({DISPLAY.get(str(prompt), '')})")
            return EXIT_OK
        if command == "status":
            payment = await client.payment(args.payment, wait=args.wait)
            out.result(payment, _outcome_label(payment))
            return EXIT_OK
        if command == "cancel":
            out.result(await client.cancel(args.payment), "cancel requested")
            return EXIT_OK
        if command == "refund":
            sale = await client.payment(args.payment)
            cur = currency(str(sale.get("currency") or args.currency))
            reference = args.reference or f"refund-{uuid.uuid4().hex[:12]}"
            refund = await client.refund(args.payment, to_minor_units(args.amount, cur),
                                         reference)  # fmt: skip
            out.result(refund, f"refund {refund.get('id')}: {refund.get('state')}")
            return EXIT_OK if refund.get("state") in ("COMPLETED", "UNKNOWN") else 1
        if command == "void":
            out.result(await client.void(args.payment), "voided")
            return EXIT_OK
        out.result(await client.close_day(), "day closed")
        return EXIT_OK


def _cmd_till(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except (CurrencyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RouteMissing as exc:
        print(f"not offered by this daemon: {exc}", file=sys.stderr)
        return EXIT_NOT_OFFERED
    except TillUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except TillHttpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE if exc.status >= 500 else EXIT_BAD_INPUT
    except TimeoutError:
        print("error: no outcome in time (see `posgw-sim till status`)", file=sys.stderr)
        return EXIT_UNREACHABLE


def register(sub: Any) -> None:
    """Add ``till`` to the ``posgw-sim`` subcommands."""
    till = sub.add_parser("till", help="a small till on the daemon's till API")
    till.add_argument("--url", default=os.environ.get("POSGW_URL", "http://127.0.0.1:8000"),
                      help="the daemon (default $POSGW_URL or http://127.0.0.1:8000)")  # fmt: skip
    till.add_argument("--token", default=os.environ.get("POSGW_TILL_TOKEN"),
                      help="bearer token of this till (default $POSGW_TILL_TOKEN)")  # fmt: skip
    till.add_argument("--ca-file", default=os.environ.get("POSGW_CA_FILE"),
                      help="the daemon's certificate or its CA, for https (default "
                           "$POSGW_CA_FILE; else the system's trust store)")  # fmt: skip
    till.add_argument("--json", action="store_true", help="JSON output (one object per line)")
    commands = till.add_subparsers(dest="till_command", required=True)
    commands.add_parser("lanes", help="the lanes and what their displays show")
    pay = commands.add_parser("pay", help="take a payment on a lane and follow it")
    pay.add_argument("--lane", type=int, required=True)
    pay.add_argument("--amount", required=True, help="decimal amount, e.g. 12.50")
    pay.add_argument("--currency", default="EUR", help="ISO 4217 code")
    pay.add_argument("--reference", help="the till's reference (a resend is never charged twice)")
    pay.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the end")
    status = commands.add_parser("status", help="a payment's state and outcome")
    status.add_argument("payment")
    status.add_argument("--wait", type=float, help="long-poll up to S seconds for its end")
    cancel = commands.add_parser("cancel", help="cancel a payment waiting for the card")
    cancel.add_argument("payment")
    refund = commands.add_parser("refund", help="refund part or all of a settled sale")
    refund.add_argument("payment")
    refund.add_argument("--amount", required=True, help="decimal amount")
    refund.add_argument("--currency", default="EUR", help="used if the sale does not say")
    refund.add_argument("--reference", help="the refund's reference (default: a new one)")
    void = commands.add_parser("void", help="void a sale of the day (when the daemon offers it)")
    void.add_argument("payment")
    commands.add_parser("close-day", help="close the shop day (when the daemon offers it)")
    till.set_defaults(func=_cmd_till)
