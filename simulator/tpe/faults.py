"""Faults a virtual terminal can inject, and their ``--fault name[:value]`` spelling.

=================  ==================================================================
fault              behaviour
=================  ==================================================================
``silent``         answers nothing at all (no ACK to ENQ, no answer): a dead terminal
``busy``           NAKs every ENQ
``nak[:n]``        NAKs the request frame n times (default 1; 3 or more: refused)
``no_ack``         ACKs the ENQ but never the request frame
``bad_lrc[:n]``    the first n tries of each answer frame carry a wrong LRC (default 1)
``noise[:n]``      line noise: stray bytes before each answer and one flipped byte in
                   the first n tries of the answer frame (default 1)
``drop[:n]``       one byte missing from the first n tries of the answer frame
``slow:s``         the card comes s seconds after the request: the terminal decides and
                   answers then (a late answer when the till cancels meanwhile)
``stall:s``        TCP: the first half of the answer goes out at once, the rest s seconds
                   later (an answer half-received when the till cancels)
``disconnect``     hangs up (closes the line or socket) right after the request
``duplicate``      sends its answer twice
``cut[:n]``        the link is cut after the terminal decided: the card is charged (or
                   declined) but the next n answers never reach the till (TCP: the
                   connection closes; serial: the answer is not sent), default 1; the
                   outcome stays the terminal's last transaction (a Caisse-AP duplicate)
=================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["FAULT_NAMES", "Faults", "parse_faults"]


@dataclass
class Faults:
    """The faults of one virtual terminal (mutable: a test may change them between runs)."""

    silent: bool = False
    busy: bool = False
    nak: int = 0
    no_ack: bool = False
    bad_lrc: int = 0
    noise: int = 0
    drop: int = 0
    slow: float = 0.0
    stall: float = 0.0
    disconnect: bool = False
    duplicate: bool = False
    cut: int = 0

    def take_cut(self) -> bool:
        """True (and one fewer left) when this answer is to be lost on a cut link."""
        if self.cut <= 0:
            return False
        self.cut -= 1
        return True

    def corrupt(self, frame: bytes, attempt: int) -> bytes:
        """The frame as the line delivers it on try ``attempt`` (0-based)."""
        out = bytearray(frame)
        if attempt < self.bad_lrc:
            out[-1] ^= 0x01
        if attempt < self.noise and len(out) > 4:
            out[len(out) // 2] ^= 0x01
        if attempt < self.drop and len(out) > 4:
            del out[len(out) // 3]
        return bytes(out)


FAULT_NAMES = tuple(f.name for f in fields(Faults))


def parse_faults(specs: list[str]) -> Faults:
    """Build :class:`Faults` from ``name[:value]`` strings.

    Raises:
        ValueError: Unknown fault or a bad value.
    """
    faults = Faults()
    for spec in specs:
        name, _, value = spec.replace("-", "_").partition(":")
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
        current = getattr(faults, name)
        if isinstance(current, bool):
            setattr(faults, name, True)
        elif isinstance(current, int):
            setattr(faults, name, int(value) if value else 1)
        else:
            if not value:
                raise ValueError(f"fault {name} needs a value in seconds ({name}:2.5)")
            setattr(faults, name, float(value))
    return faults
