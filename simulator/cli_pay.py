"""``posgw-sim pay`` and ``posgw-sim replay``: run the EMV kernel against a card and print it all.

``pay`` runs one transaction against a virtual card in process (``--card PROFILE``, on the
profile's own interface unless ``--interface`` says otherwise), a card object of one's own
(``--card-module module:factory``, :mod:`simulator.card_module`) or whatever card is in a reader
(``--reader pcsc://NAME``: a scheme test card, or a virtual card attached through vpcd), with
the simulated issuer answering in process (``--host``) or a running acquirer host
(``--acquirer URL``, :mod:`simulator.acquirer_http`). ``replay`` runs the
kernel against a recorded transcript: a contactless one (conformance/emv/contactless_traces) or
a contact one written by ``pay --record`` (see :mod:`simulator.contact_recording`).

:func:`pay_virtual_card`, :func:`kernel_config` and :func:`fixed_environment` are reused by
``posgw-sim cards --check``, which runs every profile through the real kernel.

Exit status: 0 approved, 1 not approved (declined, terminated, another interface...), 2 bad
input, 3 the card or reader failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal import (
    EmvError,
    Environment,
    OnlineAuthoriser,
    PinPad,
    TerminalConfig,
    TraceEntry,
    TransactionRequest,
    TransactionType,
    decode,
)
from terminal.currency import CurrencyError, currency, to_minor_units
from terminal.describe import describe_tlvs

EXIT_APPROVED, EXIT_NOT_APPROVED, EXIT_BAD_INPUT, EXIT_CARD_FAILED = 0, 1, 2, 3

#: The moment of reproducible runs (``posgw-sim cards --check``): within every test
#: certificate's validity except the one profile whose issuer certificate is meant to be expired.
FIXED_TIME = datetime(2026, 11, 25, 12, 0, 0)

_TYPES = {
    "purchase": TransactionType.PURCHASE,
    "cashback": TransactionType.CASHBACK,
    "refund": TransactionType.REFUND,
}


def register(sub: Any) -> None:
    """Add ``pay`` and ``replay`` to the ``posgw-sim`` subcommands."""
    pay = sub.add_parser("pay", help="run one transaction: virtual card in process, or a reader")
    where = pay.add_mutually_exclusive_group()
    where.add_argument(
        "--card", default="visa_credit", help="virtual card profile (posgw-sim cards)"
    )
    where.add_argument("--reader", help="a reader URL, e.g. pcsc://'Virtual PCD*'")
    where.add_argument(
        "--card-module",
        metavar="MODULE:FACTORY",
        help="a card object of your own: FACTORY() returns anything with async "
        "transceive(capdu) or process(capdu) (MODULE may be a path to a .py file)",
    )
    pay.add_argument(
        "--interface",
        choices=("contact", "contactless"),
        help="default: the card profile's first interface (contact for a reader)",
    )
    pay.add_argument("--amount", required=True, help="decimal amount, e.g. 12.50")
    pay.add_argument("--currency", default="EUR", help="ISO 4217 code, alphabetic or numeric")
    pay.add_argument("--type", choices=sorted(_TYPES), default="purchase")
    pay.add_argument("--cashback", help="cashback amount (implies --type cashback)")
    pay.add_argument(
        "--pin", default="1234",
        help="the PIN the virtual cardholder types, or PINs in order (1111,1234): after a "
        "wrong online PIN (55) the same payment is tried again with the next one",
    )
    pay.add_argument(
        "--pin-mode", choices=("enter", "bypass", "cancel", "not_working"), default="enter"
    )
    pay.add_argument("--host", choices=("approve", "decline", "offline"), default="approve")
    pay.add_argument(
        "--acquirer",
        metavar="URL",
        help="authorise through a running acquirer host (posgw-sim acquirer) instead of "
        "the in-process issuer (--host is then ignored)",
    )
    pay.add_argument("--config", "--terminal-config", dest="terminal_config", type=Path,
                     help="kernel configuration file (JSON; default the shipped one)")  # fmt: skip
    pay.add_argument("--brand", help="AID the cardholder picks on a co-badged card")
    pay.add_argument(
        "--latency-ms",
        type=float,
        default=15.0,
        help="per-APDU latency of a virtual contactless card",
    )
    pay.add_argument(
        "--random-draw",
        type=int,
        choices=range(1, 100),
        metavar="1..99",
        help="fix the random transaction selection draw (reproducible runs)",
    )
    pay.add_argument(
        "--record",
        type=Path,
        help="write the contact exchange to FILE for `posgw-sim replay` (virtual cards only)",
    )
    pay.add_argument("--json", action="store_true", help="JSON output")
    pay.set_defaults(func=_cmd_pay)

    replay = sub.add_parser("replay", help="run the kernel against a recorded transcript")
    replay.add_argument("file", type=Path)
    replay.add_argument("--config", "--terminal-config", dest="terminal_config", type=Path,
                        help="kernel configuration for a contact recording")  # fmt: skip
    replay.add_argument("--json", action="store_true", help="JSON output")
    replay.set_defaults(func=_cmd_replay)


# --- pay -------------------------------------------------------------------------------------


def _request(args: argparse.Namespace) -> TransactionRequest:
    cur = currency(args.currency)
    kind = _TYPES["cashback" if args.cashback else args.type]
    cashback = to_minor_units(args.cashback, cur) if args.cashback else 0
    amount = to_minor_units(args.amount, cur) + cashback
    choose = None
    if args.brand:
        wanted = bytes.fromhex(args.brand)

        async def choose(candidates: Sequence[Any]) -> Any:
            for candidate in candidates:
                if bytes(getattr(candidate, "aid", b"")) == wanted:
                    return candidate
            return None

    return TransactionRequest(
        amount=amount,
        amount_other=cashback,
        currency_code=cur.numeric,
        currency_exponent=cur.exponent,
        transaction_type=kind,
        choose_application=choose,
    )


def kernel_config(
    path: Path | None = None, aid_overrides: dict[str, Any] | None = None
) -> TerminalConfig:
    """The kernel configuration, trusting the simulator's own test CA keys as well.

    Args:
        path: A terminal configuration file (default: the shipped one).
        aid_overrides: Fields to set on every supported AID (e.g. a profile's
            ``reader_ctls_floor_limit``).
    """
    from simulator.keys import DEFAULT_KEYS_DIR
    from terminal import DEFAULT_CONFIG_FILE, TerminalConfig

    config = TerminalConfig.load(path) if path else TerminalConfig.default()
    sim_keys = str(DEFAULT_KEYS_DIR / "capk_sim.json")
    keys = list(config.ca_keys or [str(DEFAULT_CONFIG_FILE.parent / "capk_test.json")])
    if sim_keys not in keys:
        keys.append(sim_keys)
    update: dict[str, Any] = {"ca_keys": keys}
    if aid_overrides:
        update["aids"] = [aid.model_copy(update=aid_overrides) for aid in config.aids]
    return config.model_copy(update=update)


#: Response code of a wrong online PIN (ISO 8583) and what the till hears then.
WRONG_PIN_CODE = "55"
WRONG_PIN_MESSAGE = "wrong PIN, try again"


def fixed_environment(draw: int = 99) -> Environment:
    """A reproducible environment: :data:`FIXED_TIME`, UN 12345678, selection draw ``draw``."""
    return Environment.fixed(FIXED_TIME, bytes.fromhex("12345678"), draw)


async def _pay(args: argparse.Namespace) -> tuple[dict[str, Any], list[TraceEntry], bool]:
    from simulator.acquirer_inprocess import InProcessAcquirer
    from simulator.pinpad import VirtualPinPad

    request = _request(args)
    try:
        config = kernel_config(args.terminal_config)
    except EmvError as exc:  # a configuration problem is bad input, not a card failure
        raise ValueError(f"--config: {exc}") from exc
    env = Environment.system()
    if args.random_draw is not None:
        draw = args.random_draw
        env = Environment(env.clock, env.unpredictable_number, lambda: draw)
    acquirer: OnlineAuthoriser = InProcessAcquirer(args.host)
    if args.acquirer:
        from simulator.acquirer_http import HttpAcquirer

        acquirer = HttpAcquirer(args.acquirer)
    pinpad = VirtualPinPad(args.pin, mode=args.pin_mode)
    if args.reader:
        from drivers.registry import open_device

        if args.record is not None:
            raise ValueError("--record is for virtual cards: a real card's PAN would be written")
        reader: Any = await open_device(args.reader)
        try:
            await reader.wait_for_card()
            await reader.power_on()
            interface = args.interface or "contact"
            return await _run(interface, reader, config, request, env, acquirer, pinpad)
        finally:
            await reader.close()
    card: Any
    if args.card_module:
        from simulator.card_module import as_channel, card_interface, load_card

        card = load_card(args.card_module)
        interface = card_interface(card, args.interface)
        if args.record is not None:
            raise ValueError("--record records the simulator's own virtual cards only")
        channel = as_channel(card)
        if interface == "contactless" and args.latency_ms and channel is not card:
            from simulator.card import CardInField

            channel = CardInField(card, latency_s=args.latency_ms / 1000)
        return await _run(interface, channel, config, request, env, acquirer, pinpad)
    from simulator.card import VirtualCard
    from simulator.card_module import card_interface

    card = VirtualCard.from_profile(args.card)
    interface = card_interface(card, args.interface)
    if args.record is not None:
        return await _pay_recorded(args, card, config, request, env, acquirer, pinpad)
    attempts: list[dict[str, Any]] = []
    while True:
        summary, trace, approved = await pay_virtual_card(
            card,
            interface=interface,
            config=config,
            request=request,
            env=env,
            acquirer=acquirer,
            pinpad=pinpad,
            latency_s=args.latency_ms / 1000,
        )
        code = summary.get("authorisation_response_code")
        if code != WRONG_PIN_CODE or pinpad.pins_left == 0:
            break
        # Wrong online PIN: the same payment again, a new ARQC with the next PIN typed.
        attempts.append({"authorisation_response_code": code, "message": WRONG_PIN_MESSAGE})
    if attempts:
        summary["attempts"] = attempts
    return summary, trace, approved


async def _pay_recorded(
    args: argparse.Namespace,
    card: Any,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    acquirer: OnlineAuthoriser,
    pinpad: PinPad | None,
) -> tuple[dict[str, Any], list[TraceEntry], bool]:
    """A contact payment recorded for ``replay`` (one UN for the whole transaction)."""
    import os

    from simulator.contact_recording import Recorder

    if (args.interface or card.profile.interfaces[0]) != "contact":
        raise ValueError("--record records contact transactions only")
    now, un, draw = env.clock(), os.urandom(4), env.random_percent()
    fixed = Environment(lambda: now, lambda: un, lambda: draw)
    recorder = Recorder(_SyncChannel(card), acquirer, fixed, request)
    outcome = await _run("contact", recorder, config, request, fixed, recorder.authorise, pinpad)
    recorder.write(args.record)
    return outcome


async def pay_virtual_card(
    card: Any,
    *,
    interface: str,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    acquirer: OnlineAuthoriser,
    pinpad: PinPad | None,
    latency_s: float = 0.0,
) -> tuple[dict[str, Any], list[TraceEntry], bool]:
    """One transaction with a virtual card in process, through the real kernel.

    Contact: :func:`terminal.contact.flow.run_contact_transaction` with the card inserted;
    contactless: :func:`simulator.contactless_pay.pay_contactless` with the card in the field
    (``latency_s`` per exchange).

    Returns:
        The masked summary (``interface`` added, no trace), the masked trace, and whether the
        payment was approved.
    """
    from simulator.card import CardInField

    channel: Any
    if interface == "contactless":
        channel = CardInField(card, latency_s=latency_s)
    else:
        channel = _SyncChannel(card)
    return await _run(interface, channel, config, request, env, acquirer, pinpad)


class _SyncChannel:
    """A virtual card inserted in process: ``transceive`` calls its synchronous ``process``."""

    def __init__(self, card: Any) -> None:
        self._card = card

    async def transceive(self, capdu: bytes) -> bytes:
        return bytes(self._card.process(capdu))


async def _run(
    interface: str,
    channel: Any,
    config: TerminalConfig,
    request: TransactionRequest,
    env: Environment,
    acquirer: OnlineAuthoriser,
    pinpad: PinPad | None,
) -> tuple[dict[str, Any], list[TraceEntry], bool]:
    if interface == "contact":
        from terminal import run_contact_transaction

        result = await run_contact_transaction(
            channel, config=config, request=request, env=env, online=acquirer, pinpad=pinpad
        )
        summary = result.to_json()
        summary.pop("trace", None)
        summary["interface"] = "contact"
        return summary, result.trace, result.approved
    from simulator.contactless_pay import pay_contactless

    return await pay_contactless(
        channel, config=config, request=request, env=env, acquirer=acquirer, pinpad=pinpad
    )


def _cmd_pay(args: argparse.Namespace) -> int:
    try:
        summary, trace, approved = asyncio.run(_pay(args))
    except (CurrencyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except EmvError as exc:
        print(f"error: card session failed: {exc}", file=sys.stderr)
        return EXIT_CARD_FAILED
    except Exception as exc:
        if type(exc).__module__.startswith(("drivers", "simulator")):
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_CARD_FAILED
        raise
    if args.json:
        summary["trace"] = [entry.to_json() for entry in trace]
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(format_summary(summary)))
        print("\n".join(format_trace(trace)))
    return EXIT_APPROVED if approved else EXIT_NOT_APPROVED


# --- replay ----------------------------------------------------------------------------------


def _cmd_replay(args: argparse.Namespace) -> int:
    from simulator.contact_recording import RecordingError, is_contact_recording, replay_contact
    from terminal.contactless.replay import replay_transcript

    try:
        document = json.loads(args.file.read_text())
        if isinstance(document, dict) and is_contact_recording(document):
            summary = asyncio.run(replay_contact(document, kernel_config(args.terminal_config)))
            trace = summary.pop("_trace")
            _print_replay(summary, trace, args.json)
            return EXIT_APPROVED
        result = replay_transcript(document)
    except json.JSONDecodeError as exc:
        print(f"error: {args.file} is not JSON (line {exc.lineno})", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RecordingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except EmvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CARD_FAILED
    _print_replay(replay_summary(result), result.trace, args.json)
    return EXIT_APPROVED


def _print_replay(summary: dict[str, Any], trace: list[TraceEntry], as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(format_summary(summary)))
        print("\n".join(format_trace(trace)))


def replay_summary(result: Any) -> dict[str, Any]:
    """The JSON the issue asks of ``replay``: outcome, kernel, AID, ODA, CID, TVR, matches."""
    stats = result.replay
    return {
        "outcome": result.outcome.value,
        "kernel": result.kernel_id,
        "aid": result.aid.hex().upper() if result.aid else None,
        "label": result.label,
        "masked_pan": result.masked_pan,
        "oda_method": result.oda_method,
        "oda_verified": result.oda_verified,
        "cid": result.cid.hex().upper() if result.cid else None,
        "tvr": result.tvr.hex().upper() if result.tvr else None,
        "commands_sent": stats.sent if stats else None,
        "commands_recorded": stats.recorded if stats else None,
        "commands_matching": stats.matched if stats else None,
        "commands_unconsumed": stats.unconsumed if stats else None,
    }


# --- printing --------------------------------------------------------------------------------


def format_summary(summary: dict[str, Any]) -> list[str]:
    """``key: value`` lines of a (masked) result summary, the long ICC data left out."""
    lines = []
    for key, value in summary.items():
        if key in ("icc_data", "trace") or value in (None, "", [], {}):
            continue
        lines.append(f"{key}: {value}")
    return lines


def format_trace(trace: list[TraceEntry]) -> list[str]:
    """The masked APDU trace, each response's TLV data decoded with tag names."""
    lines = ["trace:"]
    for entry in trace:
        lines.append(f"  > {entry.command:<20} {entry.capdu}")
        lines.append(f"  < {entry.sw:04X} {entry.ms:7.2f} ms  {entry.rapdu}")
        lines.extend("      " + line for line in decode_masked(entry.rapdu))
    return lines


def decode_masked(rapdu_hex: str) -> list[str]:
    """Decode the data of a masked R-APDU hex (masked digits stand in as zeros; lengths kept)."""
    text = rapdu_hex.replace("*", "0")
    if len(text) <= 4 or len(text) % 2:
        return []
    try:
        return describe_tlvs(decode(bytes.fromhex(text[:-4])), masked_hex=rapdu_hex[:-4])
    except (EmvError, ValueError):
        return []
