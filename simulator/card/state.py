"""The virtual card's state, the parsed command, and the status words it answers with.

Two lifetimes (ISO/IEC 7816-4, 5; EMV 4.4 Book 1, 11-12; Book 3, 6.5):

* persistent, for the life of the card object: ATC, last online ATC, consecutive offline
  count, application blocked, card blocked, PIN try counter, data changed by PUT DATA, and the
  phone wallet's "holder verified on the device" flag;
* per session (reset by every SELECT, as a card reset would): the selected file, the GPO and
  GENERATE AC progress, the terminal data received in PDOL/CDOL data, the last ARQC, the
  challenge of GET CHALLENGE and the CVR being built.

Handlers raise :class:`SwError` to answer with a bare status word; the engine turns it into
the R-APDU. No exception other than SwError leaves a handler for well-formed APDUs; the engine
maps anything else to ``6F00``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.card.iad import CvrState
from simulator.card.personalise import Application
from simulator.card.profile import CardProfile
from terminal.dol import DolEntry

__all__ = [
    "SW_OK",
    "AppState",
    "CardContext",
    "Command",
    "Session",
    "SwError",
    "parse_command",
    "respond",
]

SW_OK = 0x9000


class SwError(Exception):
    """Answer the command with this status word (and optional data)."""

    def __init__(self, sw: int, data: bytes = b"") -> None:
        """Status word ``sw`` (e.g. ``0x6A82``) with optional response data."""
        super().__init__(f"SW {sw:04X}")
        self.sw = sw
        self.data = data


@dataclass(frozen=True, slots=True)
class Command:
    """A short C-APDU split into its fields (EMV 4.4 Book 1, 9.4.1)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    raw: bytes

    def __repr__(self) -> str:
        # The data may be a PIN block (VERIFY, PIN CHANGE) or card data: lengths only.
        return (
            f"Command({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
            f"{len(self.data)} data bytes, le={self.le})"
        )


def parse_command(raw: bytes) -> Command:
    """Split a C-APDU into header, data and Le (cases 1-4, short form).

    Raises:
        SwError: ``6700`` when Lc does not match the length of the APDU.
    """
    if len(raw) < 4:
        raise SwError(0x6700)
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    if len(raw) == 4:
        return Command(cla, ins, p1, p2, b"", None, raw)
    if len(raw) == 5:
        return Command(cla, ins, p1, p2, b"", raw[4] or 256, raw)
    lc = raw[4]
    if lc == 0 or len(raw) not in (5 + lc, 6 + lc):
        raise SwError(0x6700)
    le = (raw[5 + lc] or 256) if len(raw) == 6 + lc else None
    return Command(cla, ins, p1, p2, raw[5 : 5 + lc], le, raw)


def respond(data: bytes = b"", sw: int = SW_OK) -> bytes:
    """An R-APDU: data then SW1 SW2."""
    return data + sw.to_bytes(2, "big")


@dataclass(slots=True)
class AppState:
    """Persistent state of one application."""

    atc: int
    last_online_atc: int
    blocked: bool
    cdcvm_ready: bool
    offline_count: int = 0
    updated: dict[int, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class Session:
    """State of the current card session (reset by SELECT)."""

    selected: int | None = None
    directory: str | None = None  # "pse" or "ppse" while a directory is selected
    select_name: bytes = b""
    select_pos: int = -1
    gpo_done: bool = False
    pdol_data: bytes = b""
    cdol1_data: bytes = b""
    terminal: dict[int, bytes] = field(default_factory=dict)
    genac_count: int = 0
    atc: bytes = b""
    arqc: bytes | None = None
    last_ac_type: int | None = None
    issuer_auth: bool | None = None
    offline_pin_ok: bool = False
    challenge: bytes | None = None
    cvr: CvrState = field(default_factory=CvrState)


@dataclass(slots=True)
class CardContext:
    """Everything the command handlers read and write."""

    profile: CardProfile
    apps: list[Application]
    states: list[AppState]
    rng: Callable[[int], bytes]
    pin: str
    pin_tries: int
    card_blocked: bool
    session: Session = field(default_factory=Session)

    @property
    def app(self) -> Application:
        """The selected application (raises ``6985`` when none is)."""
        if self.session.selected is None:
            raise SwError(0x6985)
        return self.apps[self.session.selected]

    @property
    def state(self) -> AppState:
        """The persistent state of the selected application."""
        if self.session.selected is None:
            raise SwError(0x6985)
        return self.states[self.session.selected]

    def value(self, tag: int) -> bytes | None:
        """A card data object of the selected application, PUT DATA updates first."""
        if tag in self.state.updated:
            return self.state.updated[tag]
        return self.app.data.get(tag)

    def __repr__(self) -> str:
        return f"CardContext({self.profile.name!r})"


def split_dol_data(dol: list[DolEntry], data: bytes) -> dict[int, bytes]:
    """Map DOL-related data back to tag values (EMV 4.4 Book 3, 5.4), lengths pre-checked."""
    out: dict[int, bytes] = {}
    pos = 0
    for tag, length in dol:
        out[tag] = data[pos : pos + length]
        pos += length
    return out


def dol_length(dol: list[DolEntry]) -> int:
    """Total length of the data a DOL asks for."""
    return sum(length for _, length in dol)
