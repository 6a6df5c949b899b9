"""Virtual terminals: decisions, fault spelling, and the standalone ``posgw-sim tpe`` command."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from drivers import Money
from drivers.protocols import caisse_ap as cap
from drivers.protocols import concert_v2 as cv2
from drivers.protocols.errors import ProtocolError
from drivers.serial import TerminalEvent
from drivers.serial import create as create_serial
from drivers.tcp_backend import create as create_tcp
from simulator.cli import build_parser
from simulator.tpe import Decision, Faults, TerminalBrain, amount_rules, parse_faults

FAST = "ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=3&keepalive=0"


def test_amount_rules() -> None:
    assert amount_rules("payment", 1250, "978").approved
    assert not amount_rules("payment", 1013, "978").approved
    cancelled = amount_rules("payment", 499, "978")
    assert cancelled.cancelled
    assert not cancelled.approved
    assert not amount_rules("payment", 1_000_001, "978").approved


def test_brain_concert_answers_and_hook() -> None:
    calls: list[tuple[str, int, str]] = []

    def card(action: str, amount: int, currency: str) -> Decision:
        calls.append((action, amount, currency))
        return Decision(approved=False)

    brain = TerminalBrain(card=card)
    body = cv2.encode_request(cv2.PaymentRequest(amount=500, transaction_type=cv2.TYPE_CREDIT))
    answer = cv2.decode_answer(brain.answer(body))
    assert answer.status == cv2.STATUS_REFUSED
    assert answer.amount == 500
    assert calls == [("refund", 500, "978")]
    with pytest.raises(ProtocolError):
        brain.answer(b"garbage")


def test_brain_caisse_ap_duplicate_before_any_transaction() -> None:
    brain = TerminalBrain(protocol="caisse-ap")
    status = cap.decode_answer(brain.answer(cap.encode_request(cap.CaisseApRequest(action="3"))))
    assert status.status == cap.STATUS_NOT_DONE
    unknown = cap.decode_answer(brain.answer(cap.encode_request(cap.CaisseApRequest(
        action="Z", amount=100))))
    assert (unknown.status, unknown.get("AF")) == (cap.STATUS_NOT_DONE, cap.DETAIL_MALFORMED)
    assert brain.processed == []
    with pytest.raises(ValueError, match="protocol"):
        TerminalBrain(protocol="zvt")


def test_parse_faults() -> None:
    faults = parse_faults(["nak:2", "slow:1.5", "duplicate", "bad-lrc"])
    assert faults == Faults(nak=2, slow=1.5, duplicate=True, bad_lrc=1)
    for bad in (["bogus"], ["slow"], ["nak:x"]):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_fault_corruption_is_per_try() -> None:
    frame = b"\x02ABCDEFGH\x03\x40"
    faults = Faults(bad_lrc=1, drop=2)
    assert faults.corrupt(frame, 0) != frame
    assert faults.corrupt(frame, 1) != frame
    assert faults.corrupt(frame, 2) == frame
    assert len(faults.corrupt(frame, 1)) == len(frame) - 1


def test_cli_parser_has_tpe() -> None:
    args = build_parser().parse_args(["tpe", "--protocol", "caisse-ap", "--tcp", "0",
                                      "--fault", "slow:1"])
    assert args.func.__module__ == "simulator.cli_tpe"
    assert args.fault == ["slow:1"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tpe", "--pty", "--tcp", "1"])


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator.cli", "tpe", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.serial
async def test_standalone_pty_terminal() -> None:
    proc = await _spawn("--protocol", "concert-v2", "--pty", "--framing", "8N1",
                        "--transactions", "1", "--for", "20")
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(10):
            url = (await proc.stdout.readline()).decode().strip()
        assert url.startswith("serial:///dev/pts/")
        assert "framing=8N1" in url
        async with create_serial(f"{url}&{FAST}") as term:
            result = await term.pay(Money(1500, "978"))
        async with asyncio.timeout(10):
            line = (await proc.stdout.readline()).decode().strip()
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert result.approved
    assert line == "payment 1500 approved"


async def test_standalone_tcp_terminal_stops_on_sigterm() -> None:
    proc = await _spawn("--protocol", "caisse-ap", "--tcp", "0", "--fault", "duplicate")
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(10):
            url = (await proc.stdout.readline()).decode().strip()
        duplicate = asyncio.Event()

        def record(event: TerminalEvent) -> None:
            if event.kind == "duplicate_answer":
                duplicate.set()

        async with create_tcp(f"{url}&keepalive=0&answer_timeout=3", on_event=record) as term:
            result = await term.pay(Money(700, "978"))
            async with asyncio.timeout(3):
                await duplicate.wait()
            assert term.diagnostics()["duplicate_answers"] == 1
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert result.approved


async def test_bad_cli_arguments_exit_2() -> None:
    for argv in (("--pty", "--fault", "bogus"), ("--protocol", "concert-v2", "--tcp", "0")):
        proc = await _spawn(*argv)
        async with asyncio.timeout(10):
            assert await proc.wait() == 2


def test_decision_repr_hides_the_card_number() -> None:
    from simulator.tpe.rules import TEST_PAN, Decision

    assert TEST_PAN not in repr(Decision(approved=True))


def test_brain_refuses_zero_and_counts_charges() -> None:
    concert = TerminalBrain()
    zero = cv2.decode_answer(concert.answer(cv2.encode_request(cv2.PaymentRequest(amount=0))))
    assert zero.status == cv2.STATUS_REFUSED
    assert concert.processed == []
    caisse = TerminalBrain(protocol="caisse-ap")
    for amount in (1250, 1013, 499, 700):
        caisse.answer(cap.encode_request(cap.CaisseApRequest(action="0", amount=amount)))
    caisse.answer(cap.encode_request(cap.CaisseApRequest(action="1", amount=300)))
    assert [c.amount for c in caisse.charges] == [1250, 700]
    totals = cap.decode_answer(caisse.answer(cap.encode_request(cap.CaisseApRequest(
        action="B"))))
    assert totals.done
    assert totals.get("CF") == "3/1950/300"
