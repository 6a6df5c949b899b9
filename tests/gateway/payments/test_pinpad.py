"""The lane PIN pads: ``virtual:PIN`` verifies offline PIN through the real kernel (plaintext
and enciphered, EMV 4.4 Book 3, 10.5.1); ``none`` is the kernel's "PIN pad not present" path."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from gateway.payments.pinpad import ReaderPinPad, VirtualPinPad, pin_pad_for
from simulator.acquirer_host import AcquirerHost
from simulator.card import VirtualCard
from simulator.cli_pay import _SyncChannel, fixed_environment, kernel_config
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.environment import TransactionRequest
from terminal.online_pin import TEST_BDK, decipher_pin_block
from terminal.pinpad import OnlinePinBlock, PinStatus
from tests.gateway.daemon_support import (
    Till,
    acquirer_fixture,
    fixed_env,
    http_fixture,
    insert_card,
    make_config,
    running,
    slot_name,
)

__all__ = ["acquirer_fixture", "http_fixture"]


async def _offline(request: OnlineRequest) -> OnlineResponse | None:
    return None


@pytest.mark.parametrize(
    ("profile", "pin", "cvm_method"),
    [("cda_card", "1234", 0x41), ("amex", "1234", 0x44)],  # plaintext, enciphered (Book 3, C3)
)
async def test_virtual_pin_pad_verifies_offline_pin(
    profile: str, pin: str, cvm_method: int
) -> None:
    pinpad = VirtualPinPad(pin)
    result = await run_contact_transaction(
        _SyncChannel(VirtualCard.from_profile(profile)),
        config=kernel_config(),
        request=TransactionRequest(amount=500),
        env=fixed_environment(),
        online=_offline,
        pinpad=pinpad,
    )
    assert result.approved, result.reason
    assert result.cvm_results[0] == cvm_method and result.cvm_results[2] == 0x02  # successful
    assert pin not in repr(pinpad)


async def test_wrong_pin_is_not_verified() -> None:
    result = await run_contact_transaction(
        _SyncChannel(VirtualCard.from_profile("cda_card")),
        config=kernel_config(),
        request=TransactionRequest(amount=500),
        env=fixed_environment(),
        online=_offline,
        pinpad=VirtualPinPad("9999"),
    )
    assert not result.approved
    assert result.tvr[2] & 0x20  # TVR byte 3 b6: PIN try limit exceeded


async def test_online_pin_blocks_under_dukpt_and_specs() -> None:
    pad = VirtualPinPad("1111,1234")
    pan = "4761739001010010"
    first = await pad.online_pin(pan=pan, tries_left=None)
    second = await pad.online_pin(pan=pan, tries_left=None)
    assert isinstance(first, OnlinePinBlock) and isinstance(second, OnlinePinBlock)
    assert [decipher_pin_block(b, pan, TEST_BDK) for b in (first, second)] == ["1111", "1234"]
    assert (first.fmt, first.ksn[-4:], second.ksn[-4:]) == (4, b"\0\0\0\1", b"\0\0\0\2")
    assert pad.pins_left == 0 and "1111" not in repr(pad)
    bad = await pad.online_pin(pan="12", tries_left=None)
    assert getattr(bad, "status", None) is PinStatus.NOT_WORKING
    assert pin_pad_for("none") is None and isinstance(pin_pad_for("reader"), ReaderPinPad)
    assert isinstance(pin_pad_for("virtual:4321"), VirtualPinPad)
    assert isinstance(pin_pad_for("virtual:1111,4321"), VirtualPinPad)


async def test_daemon_lane_with_a_virtual_pin_pad(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession
) -> None:
    assert acquirer.url is not None
    slot = slot_name()
    config = make_config(tmp_path, acquirer.url, [slot], pin_pad="virtual:1234")
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        _, body = await till.pay(1, 500)
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot, "cda_card")
        result = await till.get(str(body["id"]), wait=10)
        assert result["outcome"] == "approved" and result["offline"] is True, result
        assert result["masked_pan"] == "541333******1521"
