"""Card side of READ RECORD and GET DATA (EMV 4.4 Book 3, 6.5.11 and 6.5.7).

READ RECORD ``00 B2 record (SFI << 3 | 4) 00``:

* P2 must reference an SFI with bits 3-1 = ``100`` (Book 3, Table 18), else ``6A86``; record
  number 0 is ``6A86`` too;
* with the PSE selected it reads the directory; with an application selected, its records
  (readable before GPO as on most cards); nothing selected: ``6985``;
* an absent record or SFI: ``6A83``.

GET DATA ``80 CA P1 P2`` (Book 3, 6.5.7): P1 P2 is the tag of a primitive data object -
9F36 ATC, 9F13 last online ATC, 9F17 PIN try counter, 9F4F log format, 9F14/9F23 offline
limits and anything PUT DATA wrote; an unknown tag is ``6A88``. CLA other than ``80``:
``6E00``.
"""

from __future__ import annotations

from simulator.card.selection import read_directory_record
from simulator.card.state import CardContext, Command, SwError, respond
from terminal import encode

__all__ = ["LOG_FORMAT", "get_data", "read_record"]

#: Log Format (9F4F) of the transaction log the FCI's 9F4D points at.
LOG_FORMAT = bytes.fromhex("9F27019F02065F2A029A039F36029C01")


def read_record(ctx: CardContext, cmd: Command) -> bytes:
    """Process READ RECORD (EMV 4.4 Book 3, 6.5.11)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    if cmd.p2 & 0x07 != 0x04 or cmd.p1 == 0 or cmd.data:
        raise SwError(0x6A86)
    sfi = cmd.p2 >> 3
    if ctx.session.directory == "pse":
        return read_directory_record(ctx, sfi, cmd.p1)
    record = ctx.app.records.get((sfi, cmd.p1))
    if record is None:
        raise SwError(0x6A83)
    return respond(record)


def get_data(ctx: CardContext, cmd: Command) -> bytes:
    """Process GET DATA (EMV 4.4 Book 3, 6.5.7)."""
    if cmd.cla != 0x80:
        raise SwError(0x6E00)
    if cmd.data:
        raise SwError(0x6700)
    tag = cmd.p1 << 8 | cmd.p2
    if ctx.session.selected is None:
        raise SwError(0x6985)
    state = ctx.state
    if tag == 0x9F36:
        value = state.atc.to_bytes(2, "big")
    elif tag == 0x9F13:
        value = state.last_online_atc.to_bytes(2, "big")
    elif tag == 0x9F17:
        value = bytes((ctx.pin_tries,))
    elif tag == 0x9F4F:
        value = LOG_FORMAT
    else:
        found = ctx.value(tag) if tag in ctx.app.profile.put_data_tags else None
        if found is None:
            raise SwError(0x6A88)
        value = found
    return respond(encode(tag, value))
