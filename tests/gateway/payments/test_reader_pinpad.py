"""``pin_pad = "reader"``: the lane's PIN pad is the reader's keypad (PC/SC Part 10,
FEATURE_VERIFY_PIN_DIRECT), driven through the real contact kernel.

No reader with a keypad runs here (vsmartcard's vpcd has no Part 10). The reader below is a
stand-in holding what the PC/SC backends hold: the real native client
(drivers/pcsc/client.py) connected to the pcscd-protocol double of
tests/drivers/test_pcsc_pinpad.py, which answers SCardControl as a CCID PIN pad does and sends
the VERIFY to the same virtual card the kernel talks to; ``verify_pin_direct`` is the drivers'
own function. The PIN is typed on the double's keypad and never passes through the kernel, the
PIN pad port or the client."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from drivers.events import PinPadCapabilities
from drivers.pcsc.client import PcscClient
from drivers.pcsc.features import CM_IOCTL_GET_FEATURE_REQUEST, parse_features
from drivers.pcsc.pin_verify import verify_pin_direct
from gateway.payments.pinpad import ReaderPinPad
from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.environment import TransactionRequest
from terminal.result import Decision
from tests.drivers.test_pcsc_pinpad import CcidPinPad, pin_pad_reader
from tests.fixtures.leaks import no_leaks  # noqa: F401 - used by pytestmark

pytestmark = [pytest.mark.usefixtures("no_leaks")]


class KeypadReader:
    """The part of a PcscReader the PIN pad uses (see the module docstring)."""

    def __init__(self, client: PcscClient, pin_pad: PinPadCapabilities) -> None:
        self._client = client
        self.pin_pad = pin_pad

    async def verify_pin_direct(self) -> int:
        return await verify_pin_direct(functools.partial(self._client.control, 1), self.pin_pad)


async def _offline(_request: OnlineRequest) -> OnlineResponse | None:
    return None


async def _pay(keypad: list[str], features: bool = True) -> tuple[Any, CcidPinPad]:
    card = VirtualCard.from_profile("cda_card")  # offline plaintext PIN, then approves offline
    pad = CcidPinPad(card, keypad=keypad) if features else CcidPinPad(card, keypad, b"")
    pinpad = ReaderPinPad()
    async with pin_pad_reader(pad) as client:
        capabilities = parse_features(await client.control(1, CM_IOCTL_GET_FEATURE_REQUEST))
        pinpad.reader = KeypadReader(client, capabilities)
        result = await run_contact_transaction(
            _SyncChannel(card), config=kernel_config(), request=TransactionRequest(amount=500),
            env=fixed_environment(), online=_offline, pinpad=pinpad)
    return result, pad


async def test_pin_on_the_readers_keypad_is_verified_by_the_card() -> None:
    result, pad = await _pay(["1234"])
    assert result.decision is Decision.APPROVED, result.reason
    assert result.cvm_results[0] & 0x3F == 0x01 and result.cvm_results[2] == 0x02  # plaintext OK
    sent = b"".join(pad.received)
    assert b"\x12\x34" not in sent  # the PIN went keypad -> card, never through us
    # The kernel's trace has no VERIFY: the reader sent it.
    assert not any(entry.capdu.upper().startswith("00200080") for entry in result.trace)
    assert pad.card.pin_tries == 3


async def test_cancel_on_the_keypad_and_a_reader_without_keypad_skip_the_pin_cvm() -> None:
    # TVR byte 3 (Book 3, C5): b4 "PIN pad present, PIN not entered" for the cancel key, b5
    # "PIN pad not present or not working" for a reader without the feature.
    for keypad, features, tvr_bit in ((["cancel"], True, 0x08), ([], False, 0x10)):
        result, pad = await _pay(keypad, features)
        # cda_card's CVM list: plaintext PIN (apply next if unsuccessful), signature, no CVM.
        assert result.cvm_results[0] & 0x3F == 0x1E, result.cvm_results.hex()  # signature
        assert result.tvr[2] & 0x18 == tvr_bit
        assert pad.card.pin_tries == 3  # nothing was verified
