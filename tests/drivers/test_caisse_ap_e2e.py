"""Caisse-AP end to end: over a real pseudo-terminal (Concert link) and over real TCP."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from drivers import Money, TransactionKind, TransactionStatus
from drivers.errors import ConfigurationError, Timeout
from drivers.protocols.errors import ProtocolError
from drivers.serial import TerminalEvent, TerminalUnavailable
from drivers.serial import create as create_serial
from drivers.tcp_backend import TcpTerminal
from drivers.tcp_backend import create as create_tcp
from simulator.tpe import Faults, VirtualTcpTpe
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = pytest.mark.usefixtures("no_leaks")

EUR = "978"
FAST = "answer_timeout=2&cancel_grace=0.1&keepalive=0"


def tcp_url(tpe: VirtualTcpTpe, extra: str = "") -> str:
    return f"tcp://127.0.0.1:{tpe.port}?protocol=caisse-ap&{FAST}{extra}"


async def opened(tpe: VirtualTcpTpe, extra: str = "", **kw: Any) -> TcpTerminal:
    term = create_tcp(tcp_url(tpe, extra), **kw)
    await term.open()
    return term


@pytest.mark.serial
async def test_caisse_ap_over_serial_payment_and_status(tpe_factory: Any) -> None:
    tpe = await tpe_factory(protocol="caisse-ap")
    term = create_serial(f"serial://{tpe.path}?protocol=caisse-ap&ack_timeout=0.3"
                         "&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=2&keepalive=0")
    async with term:
        paid = await term.pay(Money(2500, EUR), reference="T-1")
        status = await term.last_transaction_status()
        declined = await term.pay(Money(1013, EUR))
    assert paid.approved
    assert paid.masked_pan == "497010######0014"
    assert paid.auth_code
    assert paid.reference == "T-1"
    assert paid.extra["reading_mode"] == "1"
    assert status is not None
    assert status.approved
    assert status.amount == Money(2500, EUR)
    assert status.extra["action"] == "status"
    assert declined.status is TransactionStatus.DECLINED
    assert declined.extra["detail"] == "04"


async def test_tcp_payment_refund_void_status_end_of_day(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory()
    async with await opened(tpe) as term:
        paid = await term.pay(Money(1995, EUR))
        sale = await term.pay(Money(1000, EUR), reference="SALE000001")
        refund = await term.refund(Money(1000, EUR))
        unmatched = await term.void(Money(1000, EUR), reference="NOSUCHSALE")
        void = await term.void(Money(1000, EUR), reference="SALE000001")
        status = await term.last_transaction_status()
        eod = await term.end_of_day()
        abandoned = await term.pay(Money(499, EUR))
    assert paid.approved and sale.approved
    # CD 2 names the debit it cancels by its amount and reference (CF): none, refused
    assert unmatched.status is TransactionStatus.DECLINED
    assert tpe.brain.cancelled == [tpe.brain.charges[1]] and tpe.brain.net_charged == 1995
    assert paid.auth_code is not None
    assert refund.approved
    assert refund.kind is TransactionKind.REFUND
    assert void.approved
    assert void.kind is TransactionKind.CANCELLATION
    assert void.extra["action"] == "cancellation"
    assert status is not None
    assert status.approved
    assert status.kind is TransactionKind.CANCELLATION  # the duplicate echoes CD 2
    assert status.amount.minor_units == 1000
    assert eod.ok
    assert abandoned.status is TransactionStatus.CANCELLED  # red key at the terminal: AF 11
    assert [p.action for p in tpe.brain.processed] == [
        "payment", "payment", "refund", "cancellation", "cancellation", "payment"]


async def test_tcp_declined(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory()
    async with await opened(tpe) as term:
        result = await term.pay(Money(2_000_000, EUR))
    assert result.status is TransactionStatus.DECLINED


async def test_tcp_cancel_then_late_answer(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory(faults=Faults(slow=0.5))
    events: list[TerminalEvent] = []
    got = asyncio.Event()

    def record(event: TerminalEvent) -> None:
        events.append(event)
        got.set()

    async with await opened(tpe, on_event=record) as term:
        task = asyncio.create_task(term.pay(Money(3000, EUR)))
        await asyncio.sleep(0.1)
        await term.cancel()
        result = await task
        assert result.status is TransactionStatus.CANCELLED
        assert result.extra["confirmed"] is False
        async with asyncio.timeout(3):
            while "late_answer" not in [e.kind for e in events]:
                got.clear()
                await got.wait()
        late = term._last  # the driver's record (status over TCP asks the terminal)
        from_terminal = await term.last_transaction_status()
    assert late is not None
    assert late.approved
    assert late.extra["late"] is True
    assert from_terminal is not None
    assert from_terminal.amount.minor_units == 3000


async def test_tcp_cancel_while_answer_half_received_keeps_the_late_answer(
        tcp_tpe_factory: Any) -> None:
    # The answer's first half is in the driver's buffer when the till cancels; the rest comes
    # after the cancel grace. The bytes already read must not be lost with the cancelled read.
    tpe = await tcp_tpe_factory(faults=Faults(stall=0.4))
    events: list[TerminalEvent] = []
    got = asyncio.Event()

    def record(event: TerminalEvent) -> None:
        events.append(event)
        got.set()

    async with await opened(tpe, on_event=record) as term:
        task = asyncio.create_task(term.pay(Money(4200, EUR)))
        async with asyncio.timeout(3):
            while not term._rx:  # noqa: ASYNC110 - the first half has arrived
                await asyncio.sleep(0.005)
        await term.cancel()
        result = await task
        assert result.status is TransactionStatus.CANCELLED
        async with asyncio.timeout(3):
            while "late_answer" not in [e.kind for e in events]:
                got.clear()
                await got.wait()
        late = term._last
    assert "unexpected_answer" not in [e.kind for e in events]
    assert late is not None
    assert late.approved
    assert late.amount.minor_units == 4200
    assert late.extra["late"] is True
    assert term.counters["late_answers"] == 1


async def test_tcp_slow_and_silent_are_timeouts(tcp_tpe_factory: Any) -> None:
    for faults in (Faults(slow=1.0), Faults(silent=True)):
        tpe = await tcp_tpe_factory(faults=faults)
        async with await opened(tpe, "&answer_timeout=0.3") as term:
            with pytest.raises(Timeout) as info:
                await term.pay(Money(100, EUR))
            assert info.value.delivered


async def test_tcp_disconnect_mid_transaction(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory(faults=Faults(disconnect=True))
    async with await opened(tpe) as term:
        with pytest.raises(TerminalUnavailable) as info:
            await term.pay(Money(100, EUR))
    assert info.value.delivered


async def test_tcp_duplicate_answer(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory(faults=Faults(duplicate=True))
    duplicate = asyncio.Event()

    def record(event: TerminalEvent) -> None:
        if event.kind == "duplicate_answer":
            duplicate.set()

    async with await opened(tpe, on_event=record) as term:
        result = await term.pay(Money(100, EUR))
        async with asyncio.timeout(3):  # read after the answer, on the same connection
            await duplicate.wait()
        assert term.diagnostics()["duplicate_answers"] == 1
    assert result.approved
    assert len(tpe.brain.processed) == 1


async def test_tcp_line_noise_is_protocol_error(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory(faults=Faults(noise=1))
    async with await opened(tpe) as term:
        with pytest.raises(ProtocolError) as info:
            await term.pay(Money(100, EUR))
    assert info.value.field is not None
    assert info.value.offset is not None


async def test_tcp_dropped_byte_never_completes(tcp_tpe_factory: Any) -> None:
    tpe = await tcp_tpe_factory(faults=Faults(drop=1))
    async with await opened(tpe, "&answer_timeout=0.3") as term:
        with pytest.raises((Timeout, ProtocolError)):
            await term.pay(Money(100, EUR))


async def test_tcp_terminal_not_listening() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    term = create_tcp(f"tcp://127.0.0.1:{port}?connect_timeout=1")
    with pytest.raises(TerminalUnavailable):
        await term.open()


@pytest.mark.parametrize("bad", [
    "tcp://host", "tcp://:80", "tcp://h:99999", "tcp://h:80?protocol=concert-v2",
    "tcp://h:80?settle=x", "tcp://h:80?bogus=1", "tcp://h:80?answer_timeout=-1",
])
def test_tcp_bad_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        create_tcp(bad)


@pytest.mark.parametrize("bad", [
    "serial://dev/ttyACM0", "serial:///dev/x?framing=9N2", "serial:///dev/x?baud=fast",
    "serial:///dev/x?protocol=zvt", "serial://usb/12:34", "serial:///dev/x?tries=0",
    "serial:///dev/x?unknown=1", "pcsc:///dev/x",
])
def test_serial_bad_urls(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        create_serial(bad)


async def test_usb_device_not_plugged_in() -> None:
    term = create_serial("serial://usb/0B00:0080:NOPE?protocol=concert-v2&keepalive=0")
    assert term.device == "usb:0B00:0080:NOPE"
    with pytest.raises(TerminalUnavailable):
        await term.open()


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_cut_link_after_the_charge_is_resolved_by_the_duplicate(
        transport: str, tcp_tpe_factory: Any, tpe_factory: Any) -> None:
    faults = Faults(cut=1)
    if transport == "tcp":
        tpe: Any = await tcp_tpe_factory(faults=faults)
        url = tcp_url(tpe, "&answer_timeout=0.5")
    else:
        tpe = await tpe_factory(protocol="caisse-ap", faults=faults)
        url = (f"serial://{tpe.path}?protocol=caisse-ap&ack_timeout=0.3&frame_timeout=0.3"
               "&eot_timeout=0.1&answer_timeout=0.5&keepalive=0")
    term = create_tcp(url) if transport == "tcp" else create_serial(url)
    async with term:
        with pytest.raises((TerminalUnavailable, Timeout)) as info:
            await term.pay(Money(4200, EUR), reference="CUT-1")
        assert info.value.delivered  # in doubt: the terminal may have charged
        last = await term.last_transaction_status()
    assert [(c.amount, c.reference) for c in tpe.brain.charges] == [(4200, "CUT-1")]
    assert last is not None
    assert last.approved
    assert (last.amount, last.reference) == (Money(4200, EUR), "CUT-1")
