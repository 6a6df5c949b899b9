"""The card may leave the field before any online authorisation (issue 4; Book A, 7.1 and 9.4).

Each payment runs through :func:`simulator.contactless_pay.pay_contactless` (virtual card in the
field, the in-process issuer as the acquirer) with one event log shared by the card channel,
the UI callback and the acquirer, so the order of "card read OK, please remove card", the last
card exchange and the authorisation request can be checked on every online path: kernel 2,
kernel 3, online PIN and the phone wallet's second tap.
"""

from __future__ import annotations

from typing import Any

import pytest

from simulator.acquirer_inprocess import InProcessAcquirer
from simulator.card.engine import VirtualCard
from simulator.card.field import CardInField
from simulator.contactless_pay import pay_contactless
from simulator.pinpad import VirtualPinPad
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.contactless import Message, UiRequest, UiStatus
from terminal.environment import Environment, TransactionRequest
from tests.terminal.contactless.helpers import UN, WHEN, sim_config


class _Logged:
    """Card channel, UI callback and acquirer writing into one ordered log."""

    def __init__(self, card: VirtualCard) -> None:
        self.field = CardInField(card, 0)
        self.acquirer = InProcessAcquirer("approve")
        self.log: list[tuple[str, Any]] = []

    async def transceive(self, capdu: bytes) -> bytes:
        self.log.append(("apdu", capdu[:2].hex().upper()))
        return await self.field.transceive(capdu)

    def ui(self, request: UiRequest) -> None:
        self.log.append(("ui", request))

    async def authorise(self, request: OnlineRequest) -> OnlineResponse | None:
        self.log.append(("acquirer", None))
        return await self.acquirer(request)


PATHS = [
    # profile, amount, taps, CVM
    ("ctls_mc_cda_online", 1250, 1, "NO CVM"),
    ("ctls_visa_online", 1250, 1, "NO CVM"),
    ("ctls_visa_online_pin", 6000, 1, "ONLINE PIN"),
    ("ctls_phone_wallet", 6000, 2, "CONFIRMATION CODE VERIFIED"),
]


@pytest.mark.parametrize(("profile", "amount", "taps", "cvm"), PATHS, ids=[p[0] for p in PATHS])
async def test_book_a_7_1_card_read_ok_before_the_online_authorisation(
    profile: str, amount: int, taps: int, cvm: str
) -> None:
    logged = _Logged(VirtualCard.from_profile(profile))
    summary, trace, approved = await pay_contactless(
        logged, config=sim_config(), request=TransactionRequest(amount=amount),
        env=Environment.fixed(WHEN, UN), acquirer=logged.authorise,
        pinpad=VirtualPinPad("1234"), ui=logged.ui)
    assert approved, summary
    assert summary["cvm"] == cvm
    kinds = [kind for kind, _ in logged.log]
    assert kinds.count("acquirer") == 1
    online = kinds.index("acquirer")
    removal = [i for i, (kind, value) in enumerate(logged.log) if kind == "ui"
               and value.message is Message.CARD_READ_OK
               and value.status is UiStatus.CARD_READ_SUCCESSFULLY]
    assert len(removal) == 1  # on the tap that goes online, not on the see-phone tap
    assert removal[0] < online
    last_apdu = max(i for i, kind in enumerate(kinds) if kind == "apdu")
    assert last_apdu < removal[0]  # no card exchange after "remove card"
    authorising = [i for i, (kind, value) in enumerate(logged.log)
                   if kind == "ui" and value.message is Message.AUTHORISING]
    assert authorising and removal[0] < authorising[0] < online
    present = [value.message for kind, value in logged.log if kind == "ui"
               and value.status is UiStatus.READY_TO_READ]
    assert len(present) == taps  # "present card" (and "present card again")
    assert sum(1 for e in trace if e.command == "SELECT" and "325041592E" in e.capdu) == taps
