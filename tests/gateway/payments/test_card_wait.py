"""The lane's wait for a card (gateway/payments/reader.py ``ReaderAdapter._wait_for_card``).

A card already in the slot when the payment starts is powered on at once, without the race of a
card task against a cancel task; the outcomes must be those of the race: a cancel that comes
while it is powered on still wins (the card is powered off), a power-on that outlasts
``timeouts.card`` is "no card presented in time", a card gone meanwhile is waited for, and a
reader failure raises. Real ``sim://`` readers (drivers/sim.py); the held power-on is a
subclass whose ``_connect`` waits for the test (a real slot behind it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers import DeviceUnavailable, NoCard
from drivers.sim import SimReader
from gateway.daemon.config import TimeoutsConfig
from gateway.payments.reader import ReaderAdapter
from gateway.payments.session import LaneView, PaymentContext, Prompt
from gateway.payments.settle import Verdict
from tests.gateway.daemon_support import insert_card, slot_name


class HeldReader(SimReader):
    """A sim reader whose power-on waits until the test lets it go (or fails once on demand)."""

    def __init__(self, slot: str) -> None:
        super().__init__(url=f"sim://{slot}?inline=1", slot_name=slot, inline=True)
        self.connecting = asyncio.Event()
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.held = False

    async def _connect(self) -> bytes:
        if self.held:
            self.connecting.set()
            await self.release.wait()
        if self.fail is not None:  # once
            failure, self.fail = self.fail, None
            raise failure
        return await super()._connect()


def _context(view: LaneView, card_timeout: float = 10.0) -> PaymentContext:
    """What ``_wait_for_card`` reads: the view and the card timeout (the rest is unused)."""
    shown: list[Prompt] = []
    return PaymentContext(
        view, None, None, shown.append, TimeoutsConfig(card=card_timeout),  # type: ignore[arg-type]
    )  # fmt: skip


def _view() -> LaneView:
    return LaneView(id="pay_test", lane=1, amount=100, currency="EUR", reference=None,
                    started_at=0.0)  # fmt: skip


@pytest_asyncio.fixture(name="reader")
async def reader_fixture() -> AsyncIterator[HeldReader]:
    slot = slot_name()
    insert_card(slot)  # in the slot before the payment starts
    reader = HeldReader(slot)
    await reader.open()
    try:
        yield reader
    finally:
        await reader.close()


def _adapter(reader: HeldReader) -> ReaderAdapter:
    return ReaderAdapter(reader, kernel=None)  # type: ignore[arg-type] # the kernel is not run


async def test_a_card_already_in_the_slot_is_powered_on_and_the_payment_goes_on(
    reader: HeldReader,
) -> None:
    view = _view()
    assert reader.card_present
    assert await _adapter(reader)._wait_for_card(_context(view)) is None
    assert reader.atr is not None and view.cancellable is False


async def test_a_cancel_while_the_present_card_powers_on_still_wins(reader: HeldReader) -> None:
    view = _view()
    reader.held = True
    waiting = asyncio.ensure_future(_adapter(reader)._wait_for_card(_context(view)))
    async with asyncio.timeout(5):
        await reader.connecting.wait()
    view.cancelled_by = "till:front"
    view.cancel_requested.set()
    reader.release.set()
    async with asyncio.timeout(5):
        result = await waiting
    assert result is not None
    assert (result.verdict, result.reason) == (Verdict.STOPPED, "cancelled by till:front")
    assert reader.atr is None  # the card that came with the cancel is powered off


async def test_a_power_on_that_outlasts_the_card_timeout_is_no_card_in_time(
    reader: HeldReader,
) -> None:
    view = _view()
    reader.held = True  # never released: the lane's card timeout bounds it
    result = await _adapter(reader)._wait_for_card(_context(view, card_timeout=0.2))
    assert result is not None
    assert (result.verdict, result.reason) == (Verdict.STOPPED, "no card presented in time")
    assert view.cancellable is False


async def test_a_reader_failure_at_power_on_raises_and_ends_the_cancel_window(
    reader: HeldReader,
) -> None:
    view = _view()
    reader.fail = DeviceUnavailable("gone", device=reader.name)
    with pytest.raises(DeviceUnavailable):
        await _adapter(reader)._wait_for_card(_context(view))
    assert view.cancellable is False


async def test_a_card_gone_before_it_powers_on_is_waited_for(reader: HeldReader) -> None:
    view = _view()
    reader.fail = NoCard("no card in the slot", device=reader.name)  # it left meanwhile
    assert reader.card_present
    # the quick power-on finds no card: the lane waits as for any card (here the slot's
    # card, seen present again, is powered on by that wait)
    assert await _adapter(reader)._wait_for_card(_context(view)) is None
    assert reader.fail is None and reader.atr is not None and view.cancellable is False
