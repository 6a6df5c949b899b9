"""Test parts for the contact kernel: a replay card channel, a PIN pad and an authoriser.

:class:`ReplayChannel` answers from an annotated C-APDU/R-APDU transcript and fails on the
first unexpected command and (via :meth:`ReplayChannel.assert_consumed`) on an unconsumed
transcript. :class:`HeaderCard` answers by command header (CLA INS P1 P2) whatever the data,
for fuzzing. :class:`TestPinPad` implements the PIN pad port the way a real one does: it builds
VERIFY itself (the clear PIN stays inside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from terminal.commands import CardIo
from terminal.config import TerminalConfig
from terminal.contact.online import OnlineRequest, OnlineResponse
from terminal.contact.state import Transaction
from terminal.environment import Environment, TransactionRequest
from terminal.oda.results import RsaPublicKey
from terminal.pinpad import (
    OnlinePinBlock,
    PinEntry,
    PinStatus,
    enciphered_pin_data,
    entry_from_status_word,
    plaintext_pin_block,
    verify_command,
)


def h(text: str) -> bytes:
    """Hex with spaces allowed."""
    return bytes.fromhex(text.replace(" ", ""))


class TranscriptMismatch(AssertionError):
    """The kernel sent a command the transcript did not expect."""


@dataclass
class Step:
    """One annotated exchange: expected C-APDU, the R-APDU to answer, and a note."""

    capdu: bytes
    rapdu: bytes
    note: str = ""


def steps(*items: tuple[str, str] | tuple[str, str, str]) -> list[Step]:
    """Build steps from (capdu hex, rapdu hex[, note]) tuples."""
    return [Step(h(item[0]), h(item[1]), item[2] if len(item) > 2 else "") for item in items]


class ReplayChannel:
    """A card channel replaying a transcript, byte for byte."""

    def __init__(self, transcript: Iterable[Step]) -> None:
        self.transcript = list(transcript)
        self.position = 0
        self.sent: list[bytes] = []

    async def transceive(self, capdu: bytes) -> bytes:
        self.sent.append(bytes(capdu))
        if self.position >= len(self.transcript):
            raise TranscriptMismatch(f"unexpected extra command {capdu.hex().upper()}")
        step = self.transcript[self.position]
        if capdu != step.capdu:
            raise TranscriptMismatch(
                f"step {self.position} ({step.note}): expected {step.capdu.hex().upper()}, "
                f"got {capdu.hex().upper()}"
            )
        self.position += 1
        return step.rapdu

    def assert_consumed(self) -> None:
        left = self.transcript[self.position :]
        if left:
            raise TranscriptMismatch(
                f"{len(left)} exchanges not used, next: {left[0].note or left[0].capdu.hex()}"
            )


class HeaderCard:
    """Answers by (CLA, INS, P1, P2) from a table; unknown commands get 6D00."""

    def __init__(self, table: dict[bytes, bytes]) -> None:
        self.table = table
        self.sent = 0

    async def transceive(self, capdu: bytes) -> bytes:
        self.sent += 1
        if self.sent > 200:
            raise AssertionError("kernel loops")
        if capdu[1] == 0xA4 and len(capdu) > 5:  # SELECT: keyed by name too
            key = capdu[:4] + capdu[5 : 5 + capdu[4]]
            return self.table.get(key, h("6A82"))
        return self.table.get(capdu[:4], h("6D00"))


@dataclass
class TestPinPad:
    """A PIN pad holding the cardholder's PIN; builds VERIFY itself (Book 3, 6.5.12)."""

    __test__ = False
    pin: str = "1234"
    bypass: bool = False
    online_block: bytes = b"\x11" * 8
    calls: list[str] = field(default_factory=list)

    async def verify_offline(
        self,
        send,
        *,
        enciphered: bool,
        icc_key: RsaPublicKey | None,
        challenge: bytes | None,
        tries_left: int | None,
    ) -> PinEntry:
        self.calls.append("enciphered" if enciphered else "plaintext")
        if self.bypass:
            return PinEntry(PinStatus.BYPASSED)
        if enciphered:
            assert icc_key is not None
            assert challenge is not None
            data = enciphered_pin_data(self.pin, challenge, icc_key, lambda n: b"\x55" * n)
        else:
            data = plaintext_pin_block(self.pin)
        rapdu = await send(verify_command(data, enciphered=enciphered))
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        self.calls.append("online")
        if self.bypass:
            return PinEntry(PinStatus.BYPASSED)
        return OnlinePinBlock(self.online_block, b"\xff\xff\x98\x76\x54\x32\x10\xe0\x00\x01", 0)


@dataclass
class Authoriser:
    """An acquirer stand-in: returns a fixed answer (``None``: unreachable), keeps requests."""

    answer: OnlineResponse | None = field(
        default_factory=lambda: OnlineResponse(approved=True, authorisation_response_code=b"00")
    )
    requests: list[OnlineRequest] = field(default_factory=list)

    async def __call__(self, request: OnlineRequest) -> OnlineResponse | None:
        self.requests.append(request)
        return self.answer


WHEN = datetime(2011, 6, 1, 12, 30, 45)
UN = h("11223344")


def env(percent: int = 99) -> Environment:
    return Environment.fixed(WHEN, UN, percent)


def make_txn(
    card: dict[int, bytes] | None = None,
    *,
    transcript: Sequence[Step] = (),
    request: TransactionRequest | None = None,
    config: TerminalConfig | None = None,
    pinpad: TestPinPad | None = None,
    aip: bytes = h("5C00"),
    percent: int = 99,
) -> tuple[Transaction, ReplayChannel]:
    """A Transaction past selection and GPO, for testing one step on its own."""
    from terminal.bits import Aip
    from terminal.commands import Fci

    config = config or TerminalConfig.default()
    request = request or TransactionRequest(amount=1000)
    channel = ReplayChannel(transcript)
    aid = config.aids[0]
    txn = Transaction(
        io=CardIo(channel),
        config=config,
        request=request,
        env=env(percent),
        capk=config.capk_store(),
        pinpad=pinpad,
        terminal=config.terminal_data(request, env(percent), aid),
    )
    txn.aid_config = aid
    txn.fci = Fci(df_name=aid.aid_bytes)
    txn.aip = Aip(aip)
    txn.card = dict(card or {})
    txn.card.setdefault(0x82, aip)
    return txn, channel
