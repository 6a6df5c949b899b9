"""Card side of SELECT and of reading the PSE directory (EMV 4.4 Book 1, 11.3 and 12.2-12.3).

* ``00 A4 04 00|02 Lc name``: select by DF name, P2 ``00`` first or only occurrence, ``02``
  next occurrence (Book 1, 11.3.2 Table 41). P1 other than ``04`` or P2 other than ``00``/``02``
  (the FCI must be returned) give ``6A86``; a CLA other than ``00`` gives ``6E00``.
* ``1PAY.SYS.DDF01`` (PSE, contact) answers an FCI with the SFI of the directory (88); its
  records are read with READ RECORD SFI 1 (Book 1, 12.2.3). ``2PAY.SYS.DDF01`` (PPSE,
  contactless, Book B 3.3) answers an FCI whose FCI Issuer Discretionary Data (BF0C) carries
  one Directory Entry (61) per application, kernel identifier 9F2A included.
  A card without that directory answers ``6A82``.
* An AID, full or partial (Book 1, 12.3.3): the applications whose DF name starts with the
  name given, in personalisation order; P2 ``02`` moves to the next one after the previous
  SELECT with the same name. No (further) match: ``6A82``.
* A blocked application answers its FCI with ``6283`` (Book 1, 12.3.2 "selected file
  invalidated"); a blocked card answers ``6A81`` to every SELECT (Book 3, 10.10 CARD BLOCK).

Every SELECT starts a new session: the previous selection, GPO, GENERATE AC and challenge are
forgotten (the persistent counters are not).
"""

from __future__ import annotations

from simulator.card.personalise import pse_directory_entry
from simulator.card.state import CardContext, Command, Session, SwError, respond
from terminal import encode

__all__ = ["PPSE", "PSE", "read_directory_record", "select"]

PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
_DIRECTORY_SFI = 1


def select(ctx: CardContext, cmd: Command) -> bytes:
    """Process SELECT (EMV 4.4 Book 1, 11.3; Book 3, 6.5.11)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    if cmd.p1 != 0x04 or cmd.p2 not in (0x00, 0x02):
        raise SwError(0x6A86)
    if not 1 <= len(cmd.data) <= 16:
        raise SwError(0x6700)
    previous = ctx.session
    ctx.session = Session()
    if ctx.card_blocked:
        raise SwError(0x6A81)
    name = cmd.data
    if name == PSE:
        if not ctx.profile.pse:
            raise SwError(0x6A82)
        ctx.session.directory = "pse"
        prop = encode(0x88, bytes((_DIRECTORY_SFI,))) + encode(0x5F2D, b"enfr")
        return respond(encode(0x6F, encode(0x84, PSE) + encode(0xA5, prop)))
    if name == PPSE:
        if not ctx.profile.ppse:
            raise SwError(0x6A82)
        ctx.session.directory = "ppse"
        entries = b"".join(
            pse_directory_entry(app.profile, contactless=True)
            for app in ctx.apps
            if app.profile.mode != "contact"
        )
        fci = encode(0x84, PPSE) + encode(0xA5, encode(0xBF0C, entries))
        return respond(encode(0x6F, fci))
    start = 0
    if cmd.p2 == 0x02 and previous.select_name == name:
        start = previous.select_pos + 1
    for index in range(start, len(ctx.apps)):
        if ctx.apps[index].profile.aid.startswith(name):
            ctx.session.selected = index
            ctx.session.select_name = name
            ctx.session.select_pos = index
            fci = ctx.apps[index].fci
            return respond(fci, 0x6283 if ctx.states[index].blocked else 0x9000)
    raise SwError(0x6A82)


def read_directory_record(ctx: CardContext, sfi: int, number: int) -> bytes:
    """A record of the PSE directory (EMV 4.4 Book 1, 12.2.3): all entries in record 1."""
    if sfi != _DIRECTORY_SFI or number != 1:
        raise SwError(0x6A83)
    entries = [
        pse_directory_entry(app.profile, contactless=False)
        for app in ctx.apps
        if app.profile.mode == "contact"
    ]
    if not entries:
        raise SwError(0x6A83)
    return respond(encode(0x70, b"".join(entries)))
