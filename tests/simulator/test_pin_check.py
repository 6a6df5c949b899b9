"""The simulated issuer checks online PIN blocks (simulator/pin_check.py, issue 14): deciphered
with AES DUKPT from the BDK, compared with the card profile's PIN; wrong PIN 55, the third wrong
PIN in a row 75; through the verifier, the in-process acquirer of ``posgw-sim pay`` (with a
sequence of PINs retried on the same payment) and the HTTP acquirer host."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from simulator.acquirer_host import AcquirerHost
from simulator.cli import main
from simulator.pin_check import IssuerPinVerifier, PinVerdict
from terminal.online_pin import DukptPinEncipherer
from terminal.pinpad import OnlinePinBlock
from tests.simulator.test_acquirer_host import _PAN, _body

PAN = "5413339000001513"  # mastercard_debit, PIN 1234


def _block(pin: str, pad: DukptPinEncipherer | None = None, pan: str = PAN) -> OnlinePinBlock:
    return (pad or DukptPinEncipherer.for_testing()).encipher(pin, pan)


def test_right_wrong_and_too_many() -> None:
    verifier = IssuerPinVerifier({PAN: "1234"})
    pad = DukptPinEncipherer.for_testing()
    assert verifier.check(_block("1234", pad), PAN) is PinVerdict.VERIFIED
    verdicts = [verifier.check(_block("9999", pad), PAN) for _ in range(4)]
    assert verdicts == [PinVerdict.WRONG, PinVerdict.WRONG, PinVerdict.TRIES_EXCEEDED,
                        PinVerdict.TRIES_EXCEEDED]
    # Blocked: even the right PIN is answered 75 now.
    assert verifier.check(_block("1234", pad), PAN) is PinVerdict.TRIES_EXCEEDED
    assert [v.response_code for v in PinVerdict] == [None, b"55", b"75", None]


def test_a_right_pin_resets_the_count_and_format_0_is_checked_too() -> None:
    verifier = IssuerPinVerifier({PAN: "1234"})
    pad = DukptPinEncipherer.for_testing(fmt=0)
    assert verifier.check(_block("4321", pad), PAN) is PinVerdict.WRONG
    assert verifier.check(_block("1234", pad), PAN) is PinVerdict.VERIFIED
    assert verifier.wrong_count(PAN) == 0
    assert verifier.check(_block("4321", pad), PAN) is PinVerdict.WRONG
    assert verifier.wrong_count(PAN) == 1


def test_undecipherable_block_counts_as_wrong_and_unknown_card_is_left_to_the_issuer() -> None:
    verifier = IssuerPinVerifier({PAN: "1234"})
    other_key = DukptPinEncipherer(bytes(16), bytes(8))
    assert verifier.check(_block("1234", other_key), PAN) is PinVerdict.WRONG
    bound_elsewhere = _block("1234", pan="5413339000001521")
    assert verifier.check(bound_elsewhere, PAN) is PinVerdict.WRONG
    short_ksn = OnlinePinBlock(bytes(16), bytes(10), 4)
    assert verifier.check(short_ksn, PAN) is PinVerdict.TRIES_EXCEEDED
    assert verifier.check(_block("1234"), "4761739001010010") is PinVerdict.NO_REFERENCE


def test_profiles_give_the_reference_pins() -> None:
    verifier = IssuerPinVerifier.from_profiles()
    assert verifier.check(_block("1234"), PAN) is PinVerdict.VERIFIED
    assert "1234" not in repr(verifier)


def _pay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["pay", "--json", "--card", "mastercard_debit", "--amount", "30.00", *args])
    return code, json.loads(capsys.readouterr().out)


def test_cli_wrong_online_pin_is_declined_55(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _pay(capsys, "--pin", "9999")
    assert (code, out["decision"], out["authorisation_response_code"]) == (1, "declined", "55")
    assert "attempts" not in out  # no other PIN to type


def test_cli_wrong_then_right_pin_on_the_same_payment(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _pay(capsys, "--pin", "1111,1234")
    assert (code, out["decision"], out["authorisation_response_code"]) == (0, "approved", "00")
    assert out["attempts"] == [{"authorisation_response_code": "55",
                                "message": "wrong PIN, try again"}]
    assert int(out["cvm_results"][:2], 16) & 0x3F == 0x02  # online PIN (Book 3, C3)
    assert out["online_pin"] is None  # dropped once sent to the acquirer
    # the wrong PIN nowhere in the output: not as digits of their own, nor in a clear PIN
    # block (ISO 9564 formats 0-4: control, length 4, the PIN); the card's cryptograms are
    # random hex that holds "1111" now and then, and its timings are floats
    texts = [text.replace("541333******1513", "") for text in _strings(out)]
    assert texts and not [text for text in texts if _PIN_DIGITS.search(text)]
    assert not [text for text in texts if _CLEAR_PIN_BLOCK.search(text)]


#: The wrong PIN as a run of digits not inside a longer hex or digit string.
_PIN_DIGITS = re.compile(r"(?<![0-9A-Fa-f])1111(?![0-9A-Fa-f])")
#: The wrong PIN at the head of a clear PIN block.
_CLEAR_PIN_BLOCK = re.compile(r"[0-4]41111F", re.IGNORECASE)


def _strings(value: Any) -> list[str]:
    """Every string and whole number in a JSON value, its keys included (not its floats)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_cli_three_wrong_pins_end_with_75(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _pay(capsys, "--pin", "1111,2222,3333,1234")
    assert (code, out["authorisation_response_code"]) == (1, "75")
    assert [a["authorisation_response_code"] for a in out["attempts"]] == ["55", "55"]


@pytest_asyncio.fixture(name="served")
async def served_fixture() -> AsyncIterator[tuple[AcquirerHost, aiohttp.ClientSession]]:
    host = AcquirerHost()
    url = await host.start()
    try:
        async with aiohttp.ClientSession(base_url=url) as session:
            yield host, session
    finally:
        await host.stop()


async def test_http_host_checks_the_pin_block(
    served: tuple[AcquirerHost, aiohttp.ClientSession], caplog: pytest.LogCaptureFixture
) -> None:
    host, session = served
    caplog.set_level(logging.DEBUG)
    body = await _body()
    pan = _PAN[0]  # visa_credit, PIN 1234
    pad = DukptPinEncipherer.for_testing()
    codes: list[str] = []
    blocks: list[OnlinePinBlock] = []
    for n, pin in enumerate(["1234", "0000", "0000", "0000", "1234"]):
        block = pad.encipher(pin, pan)
        blocks.append(block)
        pin_json = {"block": block.block.hex().upper(), "ksn": block.ksn.hex().upper(),
                    "format": 4}
        async with session.post("/v1/authorisations", json=body | {"pin": pin_json},
                                headers={"Idempotency-Key": f"pin-{n}"}) as response:
            assert response.status == 201
            codes.append((await response.json())["response_code"])
    assert codes == ["00", "55", "55", "75", "75"]
    kept = caplog.text + repr(host.ledger) + repr(host._stored)
    for block in blocks:
        assert block.block.hex().upper() not in kept.upper()
        assert block.ksn.hex().upper() not in kept.upper()
