"""The virtual EMV card: command dispatch and the card object (ISO/IEC 7816-4, 5; EMV Book 1, 9).

:meth:`VirtualCard.process` takes one C-APDU and returns the R-APDU, synchronously and without
I/O, so it runs as well inside a test, the ``sim://`` reader slot and a vpcd virtual ICC.
Dispatch by instruction byte (EMV 4.4 Book 3, 6.5):

=====  =====================================  ==================================
INS    command                                module
=====  =====================================  ==================================
A4     SELECT                                 :mod:`simulator.card.selection`
B2     READ RECORD                            :mod:`simulator.card.records`
CA     GET DATA                               :mod:`simulator.card.records`
A8     GET PROCESSING OPTIONS                 :mod:`simulator.card.gpo`
20     VERIFY                                 :mod:`simulator.card.pin`
84     GET CHALLENGE                          :mod:`simulator.card.pin`
88     INTERNAL AUTHENTICATE                  :mod:`simulator.card.auth`
82     EXTERNAL AUTHENTICATE                  :mod:`simulator.card.auth`
AE     GENERATE AC                            :mod:`simulator.card.genac`
1E 18  APPLICATION BLOCK / UNBLOCK            :mod:`simulator.card.scripts`
16 24  CARD BLOCK, PIN CHANGE/UNBLOCK         :mod:`simulator.card.scripts`
DA     PUT DATA                               :mod:`simulator.card.scripts`
=====  =====================================  ==================================

A class byte this card never uses (anything but ``00``, ``80``, ``84``, ``04``) is ``6E00``;
an unknown instruction ``6D00``; a C-APDU whose Lc does not match its length ``6700``. When
``t0=True`` the card behaves like a T=0 card for outgoing data: it answers ``61xx`` and
hands the data out with GET RESPONSE (``00 C0``), so the terminal's transport procedure is
exercised (Book 1, 9.3.1.3).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

from simulator.card.auth import external_authenticate, internal_authenticate
from simulator.card.genac import generate_ac_command
from simulator.card.gpo import get_processing_options
from simulator.card.personalise import (
    Application,
    MasterKeyEntry,
    load_master_keys,
    personalise,
)
from simulator.card.pin import get_challenge, verify
from simulator.card.profile import PROFILES_DIR, CardProfile, load_profile
from simulator.card.records import get_data, read_record
from simulator.card.scripts import SCRIPT_INS, script_command
from simulator.card.selection import select
from simulator.card.state import AppState, CardContext, Command, SwError, parse_command, respond
from simulator.keys import TestPki, load_pki

__all__ = ["VirtualCard", "default_pki"]

Handler = Callable[[CardContext, Command], bytes]

_HANDLERS: dict[int, Handler] = {
    0xA4: select,
    0xB2: read_record,
    0xCA: get_data,
    0xA8: get_processing_options,
    0x20: verify,
    0x84: get_challenge,
    0x88: internal_authenticate,
    0x82: external_authenticate,
    0xAE: generate_ac_command,
    **dict.fromkeys(SCRIPT_INS, script_command),
}
_CLASSES = (0x00, 0x80, 0x84, 0x04)


@cache
def default_pki() -> TestPki:
    """The test PKI of ``simulator/data/keys`` (loaded once)."""
    return load_pki()


@cache
def _personalised(path: Path, mtime_ns: int) -> tuple[Application, ...]:
    profile = load_profile(path)
    keys = load_master_keys()
    return tuple(personalise(app, default_pki(), keys) for app in profile.applications)


class VirtualCard:
    """A virtual EMV card personalised from a profile.

    The personalised data are immutable and shared; the counters (ATC, PIN tries, blocked
    flags) belong to each card object. ``repr`` shows the profile name only.
    """

    def __init__(
        self,
        profile: CardProfile,
        apps: list[Application],
        *,
        rng: Callable[[int], bytes] | None = None,
        t0: bool = False,
    ) -> None:
        """Create a card from a loaded profile and its personalised applications."""
        self._ctx = CardContext(
            profile=profile,
            apps=apps,
            states=[
                AppState(
                    atc=app.profile.atc,
                    last_online_atc=app.profile.last_online_atc,
                    blocked=app.profile.blocked,
                    cdcvm_ready=app.profile.contactless.cdcvm_ready,
                )
                for app in apps
            ],
            rng=rng or os.urandom,
            pin=profile.pin,
            pin_tries=profile.pin_tries,
            card_blocked=profile.card_blocked,
        )
        self._t0 = t0
        self._pending = b""

    @classmethod
    def from_profile(
        cls,
        name_or_path: str | Path,
        *,
        keys: TestPki | None = None,
        rng: Callable[[int], bytes] | None = None,
        t0: bool = False,
        directory: Path = PROFILES_DIR,
        master_keys: Mapping[str, MasterKeyEntry] | None = None,
    ) -> VirtualCard:
        """Load and personalise a profile (cached per file for the default keys).

        Args:
            name_or_path: A profile name (``visa_credit``) or a JSON file.
            keys: The test PKI; default ``simulator/data/keys``.
            rng: Random bytes source (challenges, ICC dynamic numbers); default os.urandom.
            t0: Answer outgoing data with ``61xx`` + GET RESPONSE, as a T=0 card.
            directory: Where profile names are looked up.
            master_keys: Issuer master keys by name (default: the shipped test issuers); e.g.
                ``IssuerHost(issuers=load_issuers(FILE).issuers).keys`` for a card of an
                issuers file of one's own.

        Raises:
            ProfileError: the profile is missing or invalid.
        """
        profile = load_profile(name_or_path, directory)
        if keys is None and master_keys is None:
            assert profile.source is not None
            apps = _personalised(profile.source, profile.source.stat().st_mtime_ns)
            return cls(profile, list(apps), rng=rng, t0=t0)
        master = dict(master_keys) if master_keys is not None else load_master_keys()
        pki = keys if keys is not None else default_pki()
        return cls(profile, [personalise(a, pki, master) for a in profile.applications],
                   rng=rng, t0=t0)

    @property
    def profile(self) -> CardProfile:
        """The card's profile."""
        return self._ctx.profile

    @property
    def context(self) -> CardContext:
        """The card's state (for tests and the simulator's inspection commands)."""
        return self._ctx

    @property
    def applications(self) -> list[Application]:
        """The personalised applications."""
        return self._ctx.apps

    @property
    def pin_tries(self) -> int:
        """The PIN try counter (9F17)."""
        return self._ctx.pin_tries

    def atc(self, index: int = 0) -> int:
        """The ATC of application ``index``."""
        return self._ctx.states[index].atc

    def reset(self) -> bytes:
        """Card reset (power cycle or new tap): the session is forgotten; returns no ATR."""
        self._ctx.session = type(self._ctx.session)()
        self._pending = b""
        return b""

    def process(self, capdu: bytes) -> bytes:
        """Answer one C-APDU with the R-APDU (data + SW1 SW2)."""
        try:
            cmd = parse_command(bytes(capdu))
            if self._t0 and cmd.cla == 0x00 and cmd.ins == 0xC0:
                return self._get_response(cmd)
            self._pending = b""
            if cmd.cla not in _CLASSES:
                raise SwError(0x6E00)
            handler = _HANDLERS.get(cmd.ins)
            if handler is None:
                raise SwError(0x6D00)
            rapdu = handler(self._ctx, cmd)
        except SwError as exc:
            return respond(exc.data, exc.sw)
        except (ValueError, IndexError, KeyError, TypeError):
            # A card never crashes its reader: an internal fault is "no precise diagnosis".
            return respond(b"", 0x6F00)
        if self._t0 and len(rapdu) > 2 and rapdu[-2:] == b"\x90\x00":
            self._pending = rapdu[:-2]
            return bytes((0x61, len(self._pending) & 0xFF))
        return rapdu

    def _get_response(self, cmd: Command) -> bytes:
        if not self._pending:
            return respond(b"", 0x6985)
        size = cmd.le or 256
        if size < len(self._pending):
            chunk, self._pending = self._pending[:size], self._pending[size:]
            return chunk + bytes((0x61, len(self._pending) & 0xFF))
        chunk, self._pending = self._pending, b""
        return respond(chunk)

    def __repr__(self) -> str:
        return f"VirtualCard({self._ctx.profile.name!r})"
