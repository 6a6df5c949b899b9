"""Caisse-AP message boundaries: a message is complete by its mandatory fields, never by time.

Every request and answer is split at every byte boundary: as a pure function, over real TCP
(the virtual terminal waits for the second part: the test sends it only once the terminal has
read the first, so a terminal that answered a prefix would be caught), over a real
pseudo-terminal inside a Concert frame, and on the driver's side of a real socket. The request
checks a terminal makes before acting (format error for a missing or malformed mandatory
field, zero amount refused, answer-at-once, cheque) are shown over both transports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import Money
from drivers.protocols import caisse_ap as cap
from drivers.protocols.errors import ProtocolError
from drivers.protocols.link import ACK, ENQ, EOT, Control, Frame, encode_frame
from drivers.serial.channel import FdChannel
from drivers.serial.link_io import LinkIO
from drivers.tcp_backend import create as create_tcp
from simulator.tpe import TerminalBrain, VirtualSerialTpe, VirtualTcpTpe
from tests.fixtures.serial import FAST_LINK

EUR = "978"
_printable = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                     max_size=20)
requests = st.builds(
    cap.CaisseApRequest,
    action=st.sampled_from([cap.ACTION_DEBIT, cap.ACTION_REFUND]),
    amount=st.integers(min_value=1, max_value=99_999_999),
    pos_number=st.integers(min_value=0, max_value=99),
    private=st.none() | _printable,
)


def _prefixes_incomplete(body: bytes, *, answer: bool) -> None:
    for cut in range(len(body)):
        assert cap.first_message(body[:cut], answer=answer) is None, cut
    found = cap.first_message(body, answer=answer)
    assert found is not None
    assert found[1] == len(body)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_no_prefix_of_a_request_is_a_request(req: cap.CaisseApRequest) -> None:
    body = cap.encode_request(req)
    _prefixes_incomplete(body, answer=False)
    assert cap.decode_request(body) == req


@settings(max_examples=200, deadline=None)
@given(requests, st.booleans())
def test_no_prefix_of_an_answer_is_an_answer(req: cap.CaisseApRequest, declined: bool) -> None:
    brain = TerminalBrain(protocol="caisse-ap")
    amount = req.amount - req.amount % 100 + (13 if declined else 0) or 100
    body = brain.answer(cap.encode_request(cap.CaisseApRequest(action="0", amount=amount)))
    _prefixes_incomplete(body, answer=True)


def test_a_second_message_before_the_first_is_complete_is_an_error() -> None:
    with pytest.raises(ProtocolError) as info:
        cap.first_message(b"CZ0040320CB0042500CZ0040320", answer=False)
    assert info.value.field == "CZ"
    assert info.value.offset == 18


@pytest.mark.parametrize(("body", "tag"), [
    (b"CZ0040320CJ012000000000000CA00201CD0010CE003978", "CB"),          # no amount
    (b"CZ0040320CJ012000000000000CA00201CB0042500CD00200CE003978", "CD"),  # CD of 2
    (b"CZ0040320CJ012000000000000CA00201CB0015CD0010CE003978", "CB"),      # CB of 1 digit
    (b"CZ0040320CJ012000000000000CA00201CB002x5CD0010CE003978", "CB"),     # not digits
])
def test_decode_request_refuses_what_a_terminal_refuses(body: bytes, tag: str) -> None:
    with pytest.raises(ProtocolError) as info:
        cap.decode_request(body)
    assert info.value.field == tag


# -- over real TCP: the virtual terminal ----------------------------------------------------


async def _answer_of(reader: asyncio.StreamReader) -> cap.CaisseApAnswer:
    buf = b""
    while (found := cap.first_message(buf, answer=True)) is None:
        more = await reader.read(4096)
        assert more, f"terminal closed without a complete answer after {buf!r}"
        buf += more
    return cap.decode_answer(cap.encode_fields(found[0]))


async def _exchange_split(tpe: VirtualTcpTpe, body: bytes, cut: int) -> cap.CaisseApAnswer:
    reader, writer = await asyncio.open_connection("127.0.0.1", tpe.port)
    try:
        start = tpe.bytes_received
        writer.write(body[:cut])
        await writer.drain()
        if cut:
            async with tpe.received:  # the terminal has read the first part: now the rest
                await asyncio.wait_for(tpe.received.wait_for(
                    lambda: tpe.bytes_received >= start + cut), 5)
        writer.write(body[cut:])
        await writer.drain()
        async with asyncio.timeout(5):
            return await _answer_of(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests)
def test_tcp_terminal_split_at_every_byte_never_reads_a_shorter_request(
        req: cap.CaisseApRequest) -> None:
    body = cap.encode_request(req)

    async def run() -> None:
        async with VirtualTcpTpe() as tpe:
            for cut in range(len(body)):
                answer = await _exchange_split(tpe, body, cut)
                assert answer.amount == req.amount, cut
                assert tpe.brain.processed[-1].amount == req.amount
            assert len(tpe.brain.processed) == len(body)
            assert tpe.brain.format_errors == 0

    asyncio.run(run())


async def _raw_tcp(tpe: VirtualTcpTpe, body: bytes, *, half_close: bool = True,
                   ) -> cap.CaisseApAnswer:
    reader, writer = await asyncio.open_connection("127.0.0.1", tpe.port)
    try:
        writer.write(body)
        await writer.drain()
        if half_close:
            writer.write_eof()
        async with asyncio.timeout(5):
            return await _answer_of(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


NO_AMOUNT = b"CZ0040320CJ012000000000000CA00201CD0010CE003978"


async def test_tcp_request_without_amount_is_a_format_error_not_a_payment() -> None:
    async with VirtualTcpTpe() as tpe:
        answer = await _raw_tcp(tpe, NO_AMOUNT)
    assert (answer.status, answer.get("AF")) == (cap.STATUS_NOT_DONE, cap.DETAIL_MALFORMED)
    assert tpe.brain.processed == []
    assert tpe.brain.format_errors == 1


async def test_tcp_incomplete_request_times_out_into_a_format_error() -> None:
    async with VirtualTcpTpe(request_timeout=0.2) as tpe:  # the till never half-closes
        answer = await _raw_tcp(tpe, NO_AMOUNT, half_close=False)
    assert answer.status == cap.STATUS_NOT_DONE
    assert answer.get("AF") == cap.DETAIL_MALFORMED
    assert tpe.brain.processed == []


async def test_tcp_zero_amount_refused_and_answer_at_once_and_cheque() -> None:
    async with VirtualTcpTpe() as tpe:
        zero = await _raw_tcp(tpe, cap.encode_request(cap.CaisseApRequest(action="0")))
        at_once = await _raw_tcp(tpe, cap.encode_request(cap.CaisseApRequest(
            action="0", amount=4200, immediate=True)))
        outcome = await _raw_tcp(tpe, cap.encode_request(cap.CaisseApRequest(action="3")))
        cheque = await _raw_tcp(tpe, cap.encode_request(cap.CaisseApRequest(
            action="0", amount=3000, extra=(("CC", cap.MEANS_CHEQUE),))))
    assert (zero.status, zero.get("AF")) == (cap.STATUS_NOT_DONE, cap.DETAIL_MALFORMED)
    assert at_once.status == cap.STATUS_ACCEPTED_IMMEDIATE
    assert at_once.amount is None  # not an outcome
    assert outcome.done
    assert outcome.amount == 4200
    assert cheque.done
    assert cheque.get("CC") == cap.MEANS_CHEQUE
    for tag in ("AA", "AB", "AI", "CI"):
        assert cheque.get(tag) is None, tag
    assert [(p.amount, p.outcome) for p in tpe.brain.processed] == [
        (4200, "approved"), (3000, "approved")]


# -- over a real pseudo-terminal: inside a Concert frame -------------------------------------


async def _serial_exchange(link: LinkIO, body: bytes, cut: int) -> bytes:
    """The till's side of one exchange, the request frame written in two parts."""
    await link.channel.write(bytes([ENQ]))
    assert await link.next_event(2) == Control(ACK)
    frame = encode_frame(body, seven_bit=True)
    await link.channel.write(frame[:cut])
    await link.channel.write(frame[cut:])
    assert await link.next_event(2) == Control(ACK)
    await link.channel.write(bytes([EOT]))
    assert await link.next_event(2) == Control(ENQ)
    await link.channel.write(bytes([ACK]))
    answer = await link.next_event(2)
    assert isinstance(answer, Frame)
    await link.channel.write(bytes([ACK]))
    assert await link.next_event(2) == Control(EOT)
    return answer.body


async def _serial_till(tpe: VirtualSerialTpe) -> LinkIO:
    assert tpe.path is not None
    fd = os.open(tpe.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return LinkIO(FdChannel(fd, name="till"), seven_bit=True)


async def test_pty_request_split_at_every_byte_and_format_errors() -> None:
    body = cap.encode_request(cap.CaisseApRequest(action="0", amount=123456, private="R-9"))
    async with VirtualSerialTpe(TerminalBrain(protocol="caisse-ap"),
                                timeouts=FAST_LINK) as tpe:
        link = await _serial_till(tpe)
        try:
            frame_length = len(encode_frame(body, seven_bit=True))
            for cut in range(frame_length):
                answer = cap.decode_answer(await _serial_exchange(link, body, cut))
                assert answer.amount == 123456, cut
            missing = cap.decode_answer(await _serial_exchange(link, NO_AMOUNT, 3))
            zero = cap.decode_answer(await _serial_exchange(
                link, cap.encode_request(cap.CaisseApRequest(action="1")), 3))
        finally:
            await link.channel.aclose()
    assert len(tpe.brain.processed) == frame_length
    for refused in (missing, zero):
        assert (refused.status, refused.get("AF")) == (cap.STATUS_NOT_DONE,
                                                       cap.DETAIL_MALFORMED)
    assert tpe.brain.format_errors == 2


# -- the driver's side: an answer split at every byte over a real socket --------------------


async def test_driver_reads_an_answer_split_at_every_byte() -> None:
    brain = TerminalBrain(protocol="caisse-ap")
    cuts: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while (found := cap.first_message(buf, answer=False)) is None:
            more = await reader.read(4096)
            if not more:  # the driver's connect probe
                writer.close()
                return
            buf += more
        answer = brain.answer(buf[: found[1]])
        cut = cuts.pop(0) % len(answer)
        writer.write(answer[:cut])
        await writer.drain()
        writer.write(answer[cut:])
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    results: list[Any] = []
    try:
        async with create_tcp(f"tcp://127.0.0.1:{port}?keepalive=0&answer_timeout=3") as term:
            length = len(brain.answer(cap.encode_request(cap.CaisseApRequest(
                action="0", amount=2500))))
            for cut in range(length):
                cuts.append(cut)
                results.append(await term.pay(Money(2500, EUR), reference=f"S{cut}"))
    finally:
        server.close()
        await server.wait_closed()
    assert all(r.approved and r.amount == Money(2500, EUR) for r in results)
    assert [r.reference for r in results] == [f"S{cut}" for cut in range(length)]
    assert all(r.auth_code and r.extra["aid"] == "A0000000421010" for r in results)


async def test_driver_refuses_a_zero_amount_before_sending() -> None:
    async with VirtualTcpTpe() as tpe, create_tcp(
            f"tcp://127.0.0.1:{tpe.port}?keepalive=0&answer_timeout=3") as term:
        with pytest.raises(ProtocolError) as info:
            await term.pay(Money(0, EUR))
    assert info.value.field == "amount"
    assert not info.value.delivered
    assert tpe.connections == 1  # the probe of open(): no request was sent
    assert tpe.bytes_received == 0
