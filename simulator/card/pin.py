"""Card side of VERIFY and GET CHALLENGE (EMV 4.4 Book 3, 6.5.12 and 6.5.6; Book 2, 7).

VERIFY ``00 20 00 P2 Lc data``:

* P2 ``80``: plaintext PIN block of 8 bytes (Book 3, 6.5.12.2: ``2 N P..P F..F``); a block
  that does not have that shape is ``6A80``, another length ``6700``;
* P2 ``88``: enciphered PIN data (Book 2, 7.2), exactly the modulus length of the ICC PIN
  encipherment key (or of the ICC key when the card has no PIN key; neither: ``6A88``). The
  card decrypts it and checks the header ``7F`` and that bytes 10-17 are the challenge of the
  last GET CHALLENGE, which is used up by the attempt (no challenge: ``6985``). A block that
  fails those checks counts as a failed PIN attempt, so a replayed block only burns a try;
* any other P1/P2: ``6A86``.

The PIN try counter (9F17) lives in the card object: ``9000`` resets it to the limit; a wrong
PIN decrements it and answers ``63Cx`` with x tries left (``63C0`` when it just ran out); once
it is zero every VERIFY answers ``6983`` (authentication method blocked).

GET CHALLENGE ``00 84 00 00 00``: 8 bytes from the injected random source.
"""

from __future__ import annotations

import hmac

from simulator.card.state import CardContext, Command, SwError, respond

__all__ = ["get_challenge", "parse_pin_block", "verify"]


def parse_pin_block(block: bytes) -> str | None:
    """The PIN digits of a plaintext PIN block (Book 3, 6.5.12.2), or None if malformed."""
    if len(block) != 8:
        return None
    nibbles = block.hex().upper()
    if nibbles[0] != "2":
        return None
    count = int(nibbles[1], 16)
    digits = nibbles[2 : 2 + count]
    filler = nibbles[2 + count :]
    if not 4 <= count <= 12 or not digits.isdigit() or filler != "F" * len(filler):
        return None
    return digits


def get_challenge(ctx: CardContext, cmd: Command) -> bytes:
    """Process GET CHALLENGE (EMV 4.4 Book 3, 6.5.6)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    if cmd.p1 or cmd.p2:
        raise SwError(0x6A86)
    if cmd.data:
        raise SwError(0x6700)
    ctx.session.challenge = ctx.rng(8)
    return respond(ctx.session.challenge)


def _decipher(ctx: CardContext, data: bytes) -> str | None:
    app = ctx.app
    key = app.pin_key or app.icc_key
    if key is None:
        raise SwError(0x6A88)
    challenge = ctx.session.challenge
    if challenge is None:
        raise SwError(0x6985)
    if len(data) != key.size:
        raise SwError(0x6700)
    ctx.session.challenge = None
    try:
        message = key.private_op(data)
    except ValueError:
        return None
    if message[0] != 0x7F or not hmac.compare_digest(message[9:17], challenge):
        return None
    return parse_pin_block(message[1:9]) or ""


def verify(ctx: CardContext, cmd: Command) -> bytes:
    """Process VERIFY (EMV 4.4 Book 3, 6.5.12)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    if cmd.p1 != 0x00 or cmd.p2 not in (0x80, 0x88):
        raise SwError(0x6A86)
    if ctx.session.selected is None:
        raise SwError(0x6985)
    if ctx.pin_tries == 0:
        raise SwError(0x6983)
    if cmd.p2 == 0x80:
        if len(cmd.data) != 8:
            raise SwError(0x6700)
        pin = parse_pin_block(cmd.data)
        if pin is None:
            raise SwError(0x6A80)
    else:
        pin = _decipher(ctx, cmd.data)
    cvr = ctx.session.cvr
    cvr.offline_pin_performed = True
    if pin is not None and hmac.compare_digest(pin.encode(), ctx.pin.encode()):
        ctx.pin_tries = ctx.profile.pin_try_limit
        cvr.offline_pin_failed = False
        ctx.session.offline_pin_ok = True
        return respond()
    ctx.pin_tries -= 1
    cvr.offline_pin_failed = True
    cvr.pin_try_limit_exceeded = ctx.pin_tries == 0
    raise SwError(0x63C0 | ctx.pin_tries)
