"""A card that answers from a recorded exchange (the transcript tests of ARCHITECTURE.md).

The recording is the JSON shape of ``conformance/emv/contactless_traces/*.json``: an object
with ``apdus: [{"cmd": hex, "resp": hex}, ...]`` (other keys - date, randoms, provenance - are
kept in :attr:`TranscriptCard.meta`). Each C-APDU received must be the next recorded command:

* ``match="exact"``: byte for byte;
* ``match="header"``: only CLA INS P1 P2 (for kernels whose terminal data differ from the
  recording's, e.g. another unpredictable number).

A different command raises :class:`UnexpectedCommand`, a command after the end
:class:`TranscriptExhausted`; both carry the position and masked hex of what was expected and
received (PAN and track 2 hidden by :func:`terminal.masking.mask_apdu_hex`). :meth:`finish`
(or :attr:`used_up`) says whether every recorded exchange was played; :meth:`finish` raises
:class:`TranscriptNotUsedUp` when not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from terminal import EmvError
from terminal.masking import mask_apdu_hex

__all__ = [
    "Exchange",
    "TranscriptCard",
    "TranscriptError",
    "TranscriptExhausted",
    "TranscriptNotUsedUp",
    "UnexpectedCommand",
]

Match = Literal["exact", "header"]


class TranscriptError(EmvError):
    """The exchange left the recording (base class)."""


class UnexpectedCommand(TranscriptError):
    """The command received is not the one recorded at this position."""


class TranscriptExhausted(TranscriptError):
    """A command arrived after the last recorded exchange."""


class TranscriptNotUsedUp(TranscriptError):
    """The session ended with recorded exchanges left."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One recorded C-APDU and its R-APDU."""

    cmd: bytes
    resp: bytes

    def __repr__(self) -> str:
        return f"Exchange({mask_apdu_hex(self.cmd)} -> {len(self.resp)} bytes)"


def _parse(apdus: Any, source: str) -> list[Exchange]:
    if not isinstance(apdus, list) or not apdus:
        raise TranscriptError(f"{source}: 'apdus' must be a non-empty list")
    out = []
    for i, item in enumerate(apdus):
        try:
            cmd, resp = bytes.fromhex(item["cmd"]), bytes.fromhex(item["resp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TranscriptError(f"{source}: apdus[{i}] needs hex 'cmd' and 'resp'") from exc
        if len(cmd) < 4 or len(resp) < 2:
            raise TranscriptError(f"{source}: apdus[{i}] too short for an APDU")
        out.append(Exchange(cmd, resp))
    return out


class TranscriptCard:
    """Plays a recorded exchange back (see the module docstring)."""

    def __init__(
        self,
        exchanges: Sequence[Exchange],
        *,
        match: Match = "exact",
        meta: Mapping[str, Any] | None = None,
        name: str = "transcript",
    ) -> None:
        """Create the card from recorded exchanges; ``match`` is ``exact`` or ``header``."""
        if match not in ("exact", "header"):
            raise TranscriptError(f"match must be 'exact' or 'header', not {match!r}")
        self._exchanges = list(exchanges)
        self._match = match
        self._position = 0
        self.exact_matches = 0
        self.meta = dict(meta or {})
        self.name = name

    @classmethod
    def from_json(cls, document: Mapping[str, Any], *, match: Match = "exact",
                  name: str = "transcript") -> TranscriptCard:
        """From a decoded recording (``{"apdus": [...], ...}``)."""
        if not isinstance(document, Mapping):
            raise TranscriptError(f"{name}: not a JSON object")
        meta = {k: v for k, v in document.items() if k != "apdus"}
        return cls(_parse(document.get("apdus"), name), match=match, meta=meta, name=name)

    @classmethod
    def from_file(cls, path: str | Path, *, match: Match = "exact") -> TranscriptCard:
        """From a recording file."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TranscriptError(f"{path.name}: cannot read the recording: {exc}") from exc
        return cls.from_json(document, match=match, name=path.name)

    @property
    def position(self) -> int:
        """Number of exchanges played so far."""
        return self._position

    @property
    def remaining(self) -> int:
        """Number of recorded exchanges not yet played."""
        return len(self._exchanges) - self._position

    @property
    def used_up(self) -> bool:
        """True when every recorded exchange was played."""
        return self._position == len(self._exchanges)

    @property
    def exchanges(self) -> list[Exchange]:
        """The recording (a copy)."""
        return list(self._exchanges)

    def process(self, capdu: bytes) -> bytes:
        """Answer ``capdu`` with the recorded R-APDU, or raise (see the module docstring)."""
        capdu = bytes(capdu)
        if self._position >= len(self._exchanges):
            raise TranscriptExhausted(
                f"{self.name}: command {self._position + 1} ({mask_apdu_hex(capdu)}) after the "
                f"{len(self._exchanges)} recorded exchanges",
                offset=self._position,
            )
        expected = self._exchanges[self._position]
        exact = capdu == expected.cmd
        if not exact and (self._match == "exact" or capdu[:4] != expected.cmd[:4]):
            raise UnexpectedCommand(
                f"{self.name}: command {self._position + 1} expected "
                f"{mask_apdu_hex(expected.cmd)}, got {mask_apdu_hex(capdu)}",
                offset=self._position,
            )
        self._position += 1
        self.exact_matches += exact
        return expected.resp

    async def transceive(self, capdu: bytes) -> bytes:
        """The kernel's card channel: same as :meth:`process`."""
        return self.process(capdu)

    def finish(self) -> None:
        """Check the recording was used up.

        Raises:
            TranscriptNotUsedUp: with the number left and the next expected command (masked).
        """
        if not self.used_up:
            nxt = self._exchanges[self._position]
            raise TranscriptNotUsedUp(
                f"{self.name}: {self.remaining} recorded exchanges not played, next "
                f"{mask_apdu_hex(nxt.cmd)}",
                offset=self._position,
            )

    def rewind(self) -> None:
        """Start the recording again."""
        self._position = 0
        self.exact_matches = 0

    def __repr__(self) -> str:
        return f"TranscriptCard({self.name!r}, {self._position}/{len(self._exchanges)})"
