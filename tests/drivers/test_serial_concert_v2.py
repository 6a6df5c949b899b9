"""The serial:// driver against the virtual Concert V2 terminal over real pseudo-terminals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from drivers import Money, ProgressStage, TransactionKind, TransactionStatus
from drivers.errors import Timeout
from drivers.protocols.errors import ProtocolError
from drivers.registry import create_device
from drivers.serial import (
    RequestRejected,
    SerialTerminal,
    TerminalBusy,
    TerminalEvent,
    TerminalUnavailable,
    create,
)
from simulator.tpe import TEST_PAN, Faults, VirtualSerialTpe, parse_faults
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = [pytest.mark.serial, pytest.mark.usefixtures("no_leaks")]

EUR = "978"
FAST = ("ack_timeout=0.3&frame_timeout=0.3&eot_timeout=0.1&answer_timeout=2"
        "&cancel_grace=0.1&keepalive=0")


def url(tpe: VirtualSerialTpe, extra: str = "", protocol: str = "concert-v2") -> str:
    return f"serial://{tpe.path}?protocol={protocol}&{FAST}{extra}"


class Recorder:
    def __init__(self) -> None:
        self.events: list[TerminalEvent] = []
        self.got = asyncio.Event()

    def __call__(self, event: TerminalEvent) -> None:
        self.events.append(event)
        self.got.set()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    async def wait_for(self, kind: str) -> None:
        async with asyncio.timeout(5.0):
            while kind not in self.kinds():
                self.got.clear()
                await self.got.wait()


async def opened(tpe: VirtualSerialTpe, extra: str = "", **kw: Any) -> SerialTerminal:
    term = create(url(tpe, extra), **kw)
    await term.open()
    return term


async def test_payment_approved_masked_pan_and_progress(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    stages: list[ProgressStage] = []
    async with await opened(tpe) as term:
        result = await term.pay(Money(1250, EUR), reference="ORDER-42",
                                progress=lambda p: stages.append(p.stage))
    assert result.status is TransactionStatus.APPROVED
    assert result.kind is TransactionKind.PAYMENT
    assert result.amount == Money(1250, EUR)
    assert result.masked_pan == "497010******0014"
    assert result.reference == "ORDER-42"
    assert TEST_PAN not in repr(result)
    assert TEST_PAN not in result.message
    assert stages == [ProgressStage.SENT, ProgressStage.WAITING_CARD, ProgressStage.DONE]
    assert [(p.action, p.amount) for p in tpe.brain.processed] == [("payment", 1250)]


async def test_declined_refund_void_and_local_status(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    async with await opened(tpe) as term:
        declined = await term.pay(Money(1013, EUR))
        refund = await term.refund(Money(500, EUR))
        unmatched = await term.void(Money(1013, EUR), reference="X")  # the debit was declined
        sale = await term.pay(Money(500, EUR), reference="SALE000001")
        void = await term.void(Money(500, EUR), reference="SALE000001")
        status = await term.last_transaction_status()
        eod = await term.end_of_day()
    assert declined.status is TransactionStatus.DECLINED
    assert unmatched.status is TransactionStatus.DECLINED and sale.approved
    assert tpe.brain.net_charged == 0
    assert refund.approved
    assert refund.kind is TransactionKind.REFUND
    assert void.approved
    assert void.kind is TransactionKind.CANCELLATION
    assert void.extra["action"] == "cancellation"
    assert status is not None  # Concert V2 has no status request: the driver's record
    assert status.extra.pop("source") == "driver"
    assert status == void
    assert not eod.ok
    assert [p.action for p in tpe.brain.processed] == [
        "payment", "refund", "cancellation", "payment", "cancellation"]


async def test_registry_creates_serial_terminal(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    device = create_device(url(tpe, "&framing=8N1&baud=115200"))
    assert isinstance(device, SerialTerminal)
    assert not device.seven_e1
    assert device.baud == 115200
    async with device:
        assert (await device.pay(Money(100, "EUR"))).approved


async def test_cancel_then_late_answer(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(slow=0.6))
    rec = Recorder()
    async with await opened(tpe, on_event=rec) as term:
        task = asyncio.create_task(term.pay(Money(2000, EUR)))
        await asyncio.sleep(0.1)
        await term.cancel()
        result = await task
        assert result.status is TransactionStatus.CANCELLED
        assert result.extra["confirmed"] is False
        await rec.wait_for("late_answer")
        late = await term.last_transaction_status()
    assert late is not None
    assert late.approved
    assert late.extra["late"] is True
    assert rec.events[-1] == TerminalEvent("late_answer", "approved")
    assert term.diagnostics()["late_answers"] == 1


async def test_cancel_with_answer_in_grace_keeps_answer(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(slow=0.3))
    async with await opened(tpe, "&cancel_grace=2") as term:
        task = asyncio.create_task(term.pay(Money(2000, EUR)))
        await asyncio.sleep(0.1)
        await term.cancel()
        result = await task
    assert result.approved
    assert result.extra["cancel_requested"] is True


async def test_busy_terminal(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(busy=True))
    async with await opened(tpe) as term:
        with pytest.raises(TerminalBusy):
            await term.pay(Money(100, EUR))
    assert tpe.brain.processed == []


async def test_silent_terminal_is_unavailable_not_delivered(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(silent=True))
    rec = Recorder()
    async with await opened(tpe, on_event=rec) as term:
        with pytest.raises(TerminalUnavailable) as info:
            await term.pay(Money(100, EUR))
        assert info.value.delivered is False
        assert term.alive is False
        assert "link_down" in rec.kinds()


async def test_no_ack_to_request_frame(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(no_ack=True))
    async with await opened(tpe) as term:
        with pytest.raises(RequestRejected):
            await term.pay(Money(100, EUR))
    assert tpe.brain.processed == []


@pytest.mark.parametrize(("naks", "ok"), [(1, True), (2, True), (3, False)])
async def test_nak_retransmission(tpe_factory: Any, naks: int, ok: bool) -> None:
    tpe = await tpe_factory(faults=Faults(nak=naks))
    async with await opened(tpe) as term:
        if ok:
            assert (await term.pay(Money(100, EUR))).approved
        else:
            with pytest.raises(RequestRejected):
                await term.pay(Money(100, EUR))
    assert tpe.requests_refused == naks


@pytest.mark.parametrize("fault", ["bad_lrc", "noise", "drop"])
async def test_damaged_answer_recovered_by_nak(tpe_factory: Any, fault: str) -> None:
    tpe = await tpe_factory(faults=parse_faults([fault]))
    async with await opened(tpe) as term:
        result = await term.pay(Money(700, EUR))
        diag = term.diagnostics()
    assert result.approved
    assert diag["bad_frames"] + (fault == "drop") >= 1
    if fault == "noise":
        assert diag["noise_bytes"] >= 3


async def test_answer_damaged_every_try_is_protocol_error(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(bad_lrc=3))
    async with await opened(tpe) as term:
        with pytest.raises(ProtocolError) as info:
            await term.pay(Money(700, EUR))
        assert term.diagnostics()["unknown_outcomes"] == 1
    assert info.value.field == "lrc"
    assert info.value.offset is not None
    assert info.value.delivered


async def test_slow_answer_past_timeout(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(slow=1.5))
    async with await opened(tpe, "&answer_timeout=0.5") as term:
        with pytest.raises(Timeout) as info:
            await term.pay(Money(300, EUR))
    assert info.value.delivered


async def test_disconnect_mid_transaction(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(disconnect=True))
    term = await opened(tpe)
    try:
        with pytest.raises(TerminalUnavailable) as info:
            await term.pay(Money(300, EUR))
        assert info.value.delivered
        async with asyncio.timeout(2):
            reason = await term.wait_lost()
        assert isinstance(reason, TerminalUnavailable)
    finally:
        await term.close()
        await term.close()  # twice is harmless


async def test_duplicate_answer_is_dropped(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(duplicate=True))
    rec = Recorder()
    async with await opened(tpe, on_event=rec) as term:
        result = await term.pay(Money(800, EUR))
        await rec.wait_for("duplicate_answer")
        assert term.diagnostics()["duplicate_answers"] == 1
        assert (await term.pay(Money(900, EUR))).amount.minor_units == 900
    assert result.approved
    assert len(tpe.brain.processed) == 2


async def test_keepalive_probe_notices_terminal_gone_silent(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    rec = Recorder()
    async with await opened(tpe, "&keepalive=0.1", on_event=rec) as term:
        await rec.wait_for("link_up")  # the first probe was answered
        assert term.alive is True
        tpe.faults.silent = True
        await rec.wait_for("link_down")
        assert term.alive is False
        assert tpe.probes >= 1  # ENQ, ACK, EOT seen by the terminal
        rec.events.clear()
        tpe.faults.silent = False
        await rec.wait_for("link_up")
        assert term.alive is True


async def test_second_transaction_while_one_runs_is_busy(tpe_factory: Any) -> None:
    tpe = await tpe_factory(faults=Faults(slow=0.3))
    async with await opened(tpe) as term:
        first = asyncio.create_task(term.pay(Money(100, EUR)))
        await asyncio.sleep(0.05)
        with pytest.raises(TerminalBusy):
            await term.pay(Money(200, EUR))
        assert (await first).approved


async def test_seven_bit_line_and_missing_device(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    term = create(url(tpe, "&framing=7E1"))
    assert term.seven_e1
    async with term:
        assert (await term.pay(Money(4200, EUR))).approved
    with pytest.raises(TerminalUnavailable):
        await create(f"serial:///dev/does-not-exist?{FAST}").open()


async def test_line_unplugged_while_idle_marks_device_lost(tpe_factory: Any) -> None:
    tpe = await tpe_factory()
    rec = Recorder()
    async with await opened(tpe, on_event=rec) as term:
        assert (await term.pay(Money(100, EUR))).approved
        await tpe.hang_up()
        async with asyncio.timeout(3):
            reason = await term.wait_lost()
        assert isinstance(reason, TerminalUnavailable)
        assert "link_down" in rec.kinds()
        with pytest.raises(TerminalUnavailable):
            await term.pay(Money(100, EUR))
