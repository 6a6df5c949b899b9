"""Card data never leaves in clear (ARCHITECTURE.md, card data; issue 3).

Every virtual card profile, contact and contactless, is paid with ``posgw-sim pay`` in process
(``simulator.cli.main``), JSON and text output, with the issuer approving, declining or
unreachable and the cardholder entering or bypassing the PIN, the root logger at DEBUG. Neither
the profile's full PAN (hence no track 2, which starts with it) nor the PIN nor its plaintext
PIN block may appear in stdout, stderr or a log record. The same cards through the kernels
directly: nor in ``repr``/``str`` of the result objects, the trace entries and the authorisation
requests. A card answering garbage to GENERATE AC (with its PAN inside the garbage) exercises
the error paths: the "card data error" outcome and the "card session failed" exit.

Each profile is copied with a 12-digit PIN (``PIN`` below) so that no random hex in the output
(unpredictable numbers, cryptograms, signatures) can contain it by chance.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from simulator.acquirer_inprocess import InProcessAcquirer
from simulator.card import PROFILES_DIR, CardInField, VirtualCard, list_profiles, load_profile
from simulator.cli import main
from simulator.cli_pay import fixed_environment, format_summary, format_trace, kernel_config
from simulator.pinpad import VirtualPinPad
from terminal.config import TerminalConfig
from terminal.contact.flow import run_contact_transaction
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.contact.state import Transaction
from terminal.contactless import run_contactless_transaction
from terminal.environment import TransactionRequest
from terminal.masking import mask_pan
from terminal.result import Decision
from terminal.trace import Tracer

PIN = "918273645501"
#: The plaintext offline PIN block of PIN (Book 3, 6.5.12.2): 2, length C, digits, F filler.
PIN_BLOCK = f"2C{PIN}FF"

PROFILES = list_profiles()
CONTACT = [name for name in PROFILES if "contact" in load_profile(name).interfaces]
CONTACTLESS = [name for name in PROFILES if name not in CONTACT]


def _pans(name: str) -> list[str]:
    return sorted({app.pan for app in load_profile(name).applications})


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every profile copied with the 12-digit PIN (bases still found in PROFILES_DIR)."""
    where = tmp_path_factory.mktemp("profiles")
    out = {}
    for name in PROFILES:
        document = json.loads((PROFILES_DIR / f"{name}.json").read_text())
        document["pin"] = PIN
        path = where / f"{name}.json"
        path.write_text(json.dumps(document))
        out[name] = path
    return out


def _secrets(name: str) -> list[str]:
    pans = _pans(name)
    assert pans and all(re.fullmatch(r"[0-9]{12,19}", pan) for pan in pans)
    return [*pans, PIN, PIN_BLOCK]


def _assert_clean(name: str, *texts: str) -> None:
    for text in texts:
        for secret in _secrets(name):
            assert secret not in text.upper(), f"{name}: card data in the output"


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )


@pytest.fixture(autouse=True)
def debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


MATRIX = [
    (name, host, mode)
    for name in PROFILES
    for host in ("approve", "decline", "offline")
    for mode in ("enter", "bypass")
]


@pytest.mark.parametrize(("name", "host", "mode"), MATRIX)
def test_pay_output_and_logs_hold_no_pan_nor_pin(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    cards: dict[str, Path],
    name: str,
    host: str,
    mode: str,
) -> None:
    expected = load_profile(name).expected
    args = ["pay", "--card", str(cards[name]), "--amount", expected.get("amount", "12.50")]
    args += ["--pin", PIN, "--pin-mode", mode, "--host", host, "--random-draw", "99"]
    if name in CONTACTLESS:
        args += ["--interface", "contactless", "--latency-ms", "0"]
    assert main([*args, "--json"]) in (0, 1)
    as_json = capsys.readouterr()
    summary = json.loads(as_json.out)
    assert main(args) in (0, 1)
    as_text = capsys.readouterr()
    _assert_clean(name, as_json.out, as_json.err, as_text.out, as_text.err, _log_text(caplog))
    assert summary["trace"] and all(entry["ms"] >= 0 for entry in summary["trace"])
    masked = summary["masked_pan"]
    if masked is not None:
        # The PAN was read: what is printed is its masked form, in both outputs.
        assert masked == mask_pan(_pans(name)[0])
        assert masked in as_json.out and masked in as_text.out
        assert "GENERATE AC" in as_text.out or name in CONTACTLESS


class RecordingAcquirer(InProcessAcquirer):
    """The in-process issuer, keeping the repr/str of every authorisation request."""

    def __init__(self) -> None:
        super().__init__("approve")
        self.printed: list[str] = []

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        self.printed += [repr(request), str(request), repr(request.online_pin)]
        return await super().__call__(request)


class _Channel:
    def __init__(self, card: Any) -> None:
        self.card = card

    async def transceive(self, capdu: bytes) -> bytes:
        return bytes(self.card.process(capdu))


def _printed(result: Any) -> str:
    parts = [repr(result), str(result), json.dumps(result.to_json())]
    parts += [repr(entry) for entry in result.trace]
    parts += format_trace(result.trace)
    return "\n".join(parts)


@pytest.mark.parametrize("name", CONTACT)
async def test_contact_result_objects_hold_no_pan_nor_pin(
    caplog: pytest.LogCaptureFixture, cards: dict[str, Path], name: str
) -> None:
    acquirer = RecordingAcquirer()
    pinpad = VirtualPinPad(PIN)
    result = await run_contact_transaction(
        _Channel(VirtualCard.from_profile(cards[name])),
        config=kernel_config(),
        request=TransactionRequest(amount=6000),
        env=fixed_environment(),
        online=acquirer,
        pinpad=pinpad,
    )
    text = _printed(result) + "\n".join(acquirer.printed) + repr(pinpad) + str(pinpad)
    text += repr(result.online_pin) + "\n".join(format_summary(result.to_json()))
    _assert_clean(name, text, _log_text(caplog))
    assert result.decision is not Decision.TERMINATED, result.reason
    if result.masked_pan is not None:
        assert result.masked_pan in repr(result)


@pytest.mark.parametrize("name", CONTACTLESS)
async def test_contactless_result_objects_hold_no_pan_nor_pin(
    caplog: pytest.LogCaptureFixture, cards: dict[str, Path], name: str
) -> None:
    result = await run_contactless_transaction(
        CardInField(VirtualCard.from_profile(cards[name]), latency_s=0),
        config=kernel_config(),
        request=TransactionRequest(amount=6000),
        env=fixed_environment(),
    )
    _assert_clean(name, _printed(result), repr(result.parameters), _log_text(caplog))


class GarbageGenerateAc:
    """A virtual card whose GENERATE AC answer is ``garbage`` (the card's PAN inside)."""

    def __init__(self, card: VirtualCard, garbage: bytes) -> None:
        self.card = card
        self.garbage = garbage
        self.genac = 0

    def process(self, capdu: bytes) -> bytes:
        if len(capdu) > 1 and capdu[1] == 0xAE:
            self.genac += 1
            return self.garbage
        return self.card.process(capdu)


def _garbage(pan: str) -> bytes:
    """A GENERATE AC "response": a 77 template whose length runs past the end, the PAN and
    a track 2 inside, then 9000."""
    digits = bytes.fromhex(pan + "F" * (len(pan) % 2))
    track2 = bytes.fromhex(pan + "D49122010000000000000" + "F" * ((len(pan) + 1) % 2))
    return b"\x77\x7f\x5a" + bytes((len(digits),)) + digits + b"\x57\x13" + track2 + b"\x90\x00"


@pytest.mark.parametrize("name", ["visa_credit", "cda_card", "sda_legacy"])
async def test_garbage_generate_ac_ends_terminated_without_leaking(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    cards: dict[str, Path],
    name: str,
) -> None:
    pan = _pans(name)[0]
    card = GarbageGenerateAc(VirtualCard.from_profile(cards[name]), _garbage(pan))
    result = await run_contact_transaction(
        _Channel(card),
        config=kernel_config(),
        request=TransactionRequest(amount=1250),
        env=fixed_environment(),
        online=RecordingAcquirer(),
        pinpad=VirtualPinPad(PIN),
    )
    assert card.genac == 1
    assert result.decision is Decision.TERMINATED
    assert result.reason.startswith("card data error")
    print("\n".join(format_summary(result.to_json())))
    print("\n".join(format_trace(result.trace)))
    out = capsys.readouterr()
    assert "GENERATE AC" in out.out
    _assert_clean(name, out.out, out.err, _printed(result), _log_text(caplog))


async def test_contactless_garbage_generate_ac_is_an_outcome_without_leaking(
    caplog: pytest.LogCaptureFixture, cards: dict[str, Path]
) -> None:
    name = "ctls_mc_cda_online"
    card = GarbageGenerateAc(VirtualCard.from_profile(cards[name]), _garbage(_pans(name)[0]))
    result = await run_contactless_transaction(
        CardInField(card, latency_s=0),
        config=kernel_config(),
        request=TransactionRequest(amount=1250),
        env=fixed_environment(),
    )
    assert card.genac == 1
    assert result.outcome.value in ("END APPLICATION", "TRY AGAIN", "DECLINED")
    _assert_clean(name, _printed(result), repr(result.parameters), _log_text(caplog))


def test_card_session_failure_message_holds_no_pan(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    cards: dict[str, Path],
) -> None:
    # A GENERATE AC answer without a status word ends the session: exit 3, "card session
    # failed" on stderr. The broken answer is the PAN itself.
    import simulator.card.engine as engine

    name = "visa_credit"
    pan = _pans(name)[0]
    original = engine.VirtualCard.process

    def broken(self: VirtualCard, capdu: bytes) -> bytes:
        if len(capdu) > 1 and capdu[1] == 0xAE:
            return bytes.fromhex(pan)[:1]
        return original(self, capdu)

    monkeypatch.setattr(engine.VirtualCard, "process", broken)
    code = main(["pay", "--card", str(cards[name]), "--amount", "12.50", "--pin", PIN])
    out = capsys.readouterr()
    assert code == 3
    assert "card session failed" in out.err
    _assert_clean(name, out.out, out.err, _log_text(caplog))


def test_reprs_of_kernel_and_card_objects_show_no_card_data(cards: dict[str, Path]) -> None:
    from simulator.card.state import parse_command
    from terminal.commands import parse_genac, parse_gpo
    from terminal.tlv import encode

    pan = "4761739001010010"
    track2 = bytes.fromhex(pan + "D491220100000000000F")
    gpo = parse_gpo(
        encode(0x77, encode(0x82, b"\x20\x00") + encode(0x94, bytes.fromhex("08010100"))
               + encode(0x57, track2) + encode(0x5A, bytes.fromhex(pan)))
    )
    genac = parse_genac(
        encode(0x77, encode(0x9F27, b"\x80") + encode(0x9F36, b"\x00\x01")
               + encode(0x9F26, bytes(8)) + encode(0x5A, bytes.fromhex(pan)))
    )
    card = VirtualCard.from_profile(cards["visa_credit"])
    verify = parse_command(bytes.fromhex("0020008008" + PIN_BLOCK))
    txn = Transaction(
        io=None,  # type: ignore[arg-type]
        config=TerminalConfig.default(),
        request=TransactionRequest(amount=100),
        env=fixed_environment(),
        capk=None,  # type: ignore[arg-type]
        card={0x5A: bytes.fromhex(pan), 0x57: track2},
    )
    printed = [gpo, genac, txn, verify, card, card.profile, *card.profile.applications,
               *card.applications, card.context]
    text = "\n".join(repr(obj) + str(obj) for obj in printed).upper()
    assert pan not in text
    assert PIN not in text and PIN_BLOCK not in text
    assert "476173******0010" in repr(txn)


def test_pin_change_script_command_data_is_hidden_in_the_trace() -> None:
    # PIN CHANGE/UNBLOCK (Book 3, 6.5.10) carries an enciphered PIN block: never traced.
    tracer = Tracer()
    block = bytes.fromhex("1122334455667788" + "A1A2A3A4")
    tracer.hook(bytes.fromhex("84240002") + bytes((len(block),)) + block, b"\x90\x00", 0.001)
    entry = tracer.entries[0]
    assert entry.command == "PIN CHANGE/UNBLOCK"
    assert entry.capdu == "842400020C" + "*" * 24
    assert entry.ms == 1.0  # the exchange's duration, as the transport measured it


# --- online PIN blocks and their KSNs (issue 14) ----------------------------------------------


def _files(directory: Path, pattern: str) -> bytes:
    """The bytes of the files matching ``pattern`` (the journal's database and WAL)."""
    return b"".join(p.read_bytes() for p in sorted(directory.glob(pattern)))


async def test_online_pin_block_and_ksn_reach_the_acquirer_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the daemon: a wrong then a right online PIN (two PIN blocks, two KSNs) on a
    ``virtual:`` lane. The simulated acquirer records each block it was sent; none of them,
    nor its KSN, may be in the logs, the till's event stream, the till API, the status page,
    the journal files (payments, events, outbox) or an outbox record: the outbox record is
    the body the publisher sends to head office over MQTT (the broker itself is not run here;
    tests/gateway/sync cover the publishing)."""
    import aiohttp

    from gateway.daemon.daemon import Daemon
    from simulator.acquirer_host import AcquirerHost
    from simulator.pin_check import IssuerPinVerifier, PinVerdict
    from terminal.pinpad import OnlinePinBlock
    from tests.gateway.daemon_support import (
        Till,
        fixed_env,
        insert_card,
        make_config,
        running,
        till_token,
    )
    from tests.gateway.daemon_support import slot_name as new_slot
    from tests.gateway.till.test_events import _events_until, _final, _read_event

    received: list[OnlinePinBlock] = []

    class Recording(IssuerPinVerifier):
        def check(self, block: OnlinePinBlock, pan: str) -> PinVerdict:
            received.append(block)
            return super().check(block, pan)

    pins = Recording.from_profiles()
    assert isinstance(pins, Recording)
    host = AcquirerHost(pins=pins)
    await host.start()
    slot = new_slot()
    try:
        assert host.url is not None
        config = make_config(tmp_path, host.url, [slot], pin_pad="virtual:1111,1234")
        daemon = Daemon(config, env=fixed_env, environ={})
        headers = {"Authorization": f"Bearer {till_token(tmp_path)}"}
        async with aiohttp.ClientSession(headers=headers) as http, running(daemon):
            till = Till(http, daemon.http_port or 0)
            async with http.get(f"{till.base}/api/lanes/1/events") as stream:
                first = await _read_event(stream.content)
                assert first is not None
                _, body = await till.pay(1, 3000)
                await till.wait_prompt(1, "PRESENT CARD")
                insert_card(slot, "mastercard_debit")
                seen = await _events_until(stream.content, _final)
            result = await till.get(str(body["id"]), wait=15)
            async with http.get(f"{till.base}/") as page:
                html = await page.text()
            outbox = await daemon.journal.claim_batch(10)
    finally:
        await host.stop()
    assert result["outcome"] == "approved", result
    assert len(received) == 2 and received[0].ksn != received[1].ksn
    assert any(e.data.get("prompt") == "WRONG PIN, TRY AGAIN" for e in seen)
    journal = _files(tmp_path, "journal.db*")
    texts = [
        _log_text(caplog), "".join(e.raw for e in seen), json.dumps(result), html,
        repr(outbox), json.dumps([item.body for item in outbox], default=str),
    ]
    for block in received:
        for secret in (block.block, block.ksn):
            for text in texts:
                assert secret.hex().upper() not in text.upper()
            assert secret not in journal and secret.hex().upper().encode() not in journal.upper()
    assert outbox, "the approved sale has an outbox record (what head office gets over MQTT)"
