"""Online PIN through the daemon (issue 14): a lane with ``pin_pad = "virtual:..."``, a contact
card whose CVM is online PIN (mastercard_debit), the real acquirer host deciphering the AES
DUKPT PIN block and checking the PIN (simulator/pin_check.py). A wrong PIN is declined 55, a
wrong then a right PIN is approved on the same payment (the till hears "wrong PIN, try again"),
three wrong PINs end with 75. The PIN block and its KSN reach the acquirer and nothing else:
not the journal file, the logs, the till API."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from gateway.daemon.daemon import Daemon
from gateway.journal import PaymentState
from gateway.payments.lane import Prompt
from simulator.acquirer_host import AcquirerHost
from terminal.online_pin import TEST_INITIAL_KEY_ID
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

S = PaymentState
PAN = "5413339000001513"  # mastercard_debit: online PIN, always online; its PIN is 1234


def _ksns(count: int) -> list[str]:
    """The KSNs the lane's virtual PIN pad sends: the X9.24-3 test key ID, counters 1..n."""
    return [(TEST_INITIAL_KEY_ID + n.to_bytes(4, "big")).hex().upper() for n in range(1, count + 1)]


async def _pay(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession, pins: str
) -> tuple[dict[str, object], list[S], list[Prompt], bytes]:
    assert acquirer.url is not None
    slot = slot_name()
    config = make_config(tmp_path, acquirer.url, [slot], pin_pad=f"virtual:{pins}")
    async with running(Daemon(config, env=fixed_env, environ={})) as daemon:
        assert daemon.http_port is not None
        till = Till(http, daemon.http_port)
        status, body = await till.pay(1, 3000)
        assert status == 202, body
        await till.wait_prompt(1, "PRESENT CARD")
        insert_card(slot, "mastercard_debit")
        result = await till.get(str(body["id"]), wait=15)
        events = [e.to_state for e in await daemon.journal.events(str(body["id"]))]
        lane = daemon.lane(1)
        assert lane is not None
        prompts = [prompt for _, prompt, _ in lane.prompt_history]
    return result, events, prompts, _journal_bytes(tmp_path)


def _journal_bytes(tmp_path: Path) -> bytes:
    """The journal's files (database, WAL) as they are on disk after the daemon stopped."""
    return b"".join(p.read_bytes() for p in sorted(tmp_path.glob("journal.db*")))


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def _no_pin_material(text: str, journal: bytes, ksns: list[str]) -> None:
    for ksn in ksns:
        assert ksn not in text.upper()
        assert bytes.fromhex(ksn) not in journal and ksn.encode() not in journal.upper()
    assert PAN not in text


async def test_right_online_pin_is_approved(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result, events, prompts, journal = await _pay(tmp_path, acquirer, http, "1234")
    assert (result["outcome"], result["response_code"]) == ("approved", "00"), result
    assert events == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.APPROVED, S.COMPLETED]
    assert Prompt.WRONG_PIN not in prompts
    assert len(acquirer.charges) == 1
    _no_pin_material(caplog.text + str(result), journal, _ksns(1))


async def test_wrong_online_pin_is_declined_55(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result, events, _, journal = await _pay(tmp_path, acquirer, http, "9999")
    assert (result["outcome"], result["response_code"]) == ("declined", "55"), result
    assert events == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.DECLINED]
    assert acquirer.charges == []
    assert acquirer.pins.wrong_count(PAN) == 1  # the block reached the issuer's check
    _no_pin_material(caplog.text + str(result), journal, _ksns(1))


async def test_wrong_then_right_pin_on_the_same_payment(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result, events, prompts, journal = await _pay(tmp_path, acquirer, http, "1111,1234")
    assert (result["outcome"], result["response_code"]) == ("approved", "00"), result
    assert events == [S.CREATED, S.CARD_READ, S.AUTH_REQUESTED, S.CARD_READ, S.AUTH_REQUESTED,
                      S.APPROVED, S.COMPLETED]
    # The till heard it between the two attempts.
    wrong = prompts.index(Prompt.WRONG_PIN)
    assert Prompt.PROCESSING in prompts[wrong + 1:]
    # One charge; the first (declined 55) request moved no money.
    assert len(acquirer.charges) == 1
    assert [entry.kind for entry in acquirer.ledger] == ["decline", "charge"]
    stans = acquirer.stans
    assert len(stans) == 2 and stans[0] != stans[1]  # each request message its own STAN
    _no_pin_material(caplog.text + str(result), journal, _ksns(2))


async def test_three_wrong_pins_end_with_75(
    tmp_path: Path, acquirer: AcquirerHost, http: aiohttp.ClientSession,
) -> None:
    result, events, prompts, _ = await _pay(tmp_path, acquirer, http, "1111,2222,3333,1234")
    assert (result["outcome"], result["response_code"]) == ("declined", "75"), result
    assert events.count(S.AUTH_REQUESTED) == 3 and events[-1] is S.DECLINED
    assert prompts.count(Prompt.WRONG_PIN) == 2
    assert acquirer.charges == []
