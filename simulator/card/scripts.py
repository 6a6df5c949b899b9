"""Card side of issuer script commands with secure messaging (EMV 4.4 Book 3, 6.5.1-6.5.3,
6.5.10, 6.5.13; Book 2, 9).

Commands: APPLICATION BLOCK ``84 1E``, APPLICATION UNBLOCK ``84 18``, CARD BLOCK ``84 16``,
PIN CHANGE/UNBLOCK ``84 24`` and PUT DATA ``04 DA`` (or ``84 DA``), P1 P2 ``00 00`` except
PUT DATA (P1 P2 = the tag) and PIN CHANGE/UNBLOCK (P2 ``00`` unblock, ``01``/``02`` change).

What the card checks (a documented subset of Book 2, 9.2):

1. secure messaging is used: CLA ``84`` (``04`` also for PUT DATA); without it ``6982``;
2. an application cryptogram was generated in this session (the MAC and key derivation need
   it): else ``6985``;
3. the data field ends with an 8-byte MAC (shorter: ``6700``) computed with ISO/IEC 9797-1
   MAC algorithm 3, padding method 2, under the MAC session key
   ``SK = common session key (ICC MK-SMI, R = the last application cryptogram)`` (Book 2,
   A1.3) over ``CLA INS P1 P2 Lc | ATC | application cryptogram | data without the MAC``
   (Book 2, 9.2.1); a wrong MAC is ``6988`` (incorrect secure messaging data objects);
4. PIN CHANGE: the new PIN block (Book 3, 6.5.12.2 layout) enciphered with TDES-ECB under the
   confidentiality session key (ICC MK-SMC, same R), 8 bytes; a block that does not decipher
   to a PIN block is ``6A80``;
5. PUT DATA: the tag must be one the profile lets the issuer update (``put_data_tags``),
   else ``6A88``.

Every accepted command counts in the CVR's "issuer script commands" nibble.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from simulator.card.pin import parse_pin_block
from simulator.card.state import CardContext, Command, SwError, respond
from simulator.cryptogram import common_session_key, mac_iso9797_3

__all__ = ["MAC_LENGTH", "SCRIPT_INS", "script_command", "script_mac"]

MAC_LENGTH = 8
SCRIPT_INS = (0x1E, 0x18, 0x16, 0x24, 0xDA)


def script_mac(smi_session_key: bytes, header: bytes, atc: bytes, cryptogram: bytes,
               data: bytes) -> bytes:
    """The MAC of a script command (Book 2, 9.2.1); ``header`` is CLA INS P1 P2 Lc."""
    return mac_iso9797_3(smi_session_key, header + atc + cryptogram + data, padding=2)


def _tdes_decrypt(key: bytes, block: bytes) -> bytes:
    dec = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()  # noqa: S305 - EMV
    return dec.update(block) + dec.finalize()


def script_command(ctx: CardContext, cmd: Command) -> bytes:
    """Process one issuer script command (see the module docstring for the checks)."""
    allowed_cla = (0x84, 0x04) if cmd.ins == 0xDA else (0x84,)
    if cmd.cla not in allowed_cla:
        raise SwError(0x6982)
    session = ctx.session
    app = ctx.app
    cryptogram = session.arqc
    if session.genac_count == 0 or cryptogram is None:
        raise SwError(0x6985)
    if len(cmd.data) < MAC_LENGTH:
        raise SwError(0x6700)
    data, mac = cmd.data[:-MAC_LENGTH], cmd.data[-MAC_LENGTH:]
    key = common_session_key(app.mk_smi, cryptogram)
    header = bytes((cmd.cla, cmd.ins, cmd.p1, cmd.p2, len(cmd.data)))
    if not hmac.compare_digest(script_mac(key, header, session.atc, cryptogram, data), mac):
        raise SwError(0x6988)
    state = ctx.state
    if cmd.ins == 0xDA:
        tag = cmd.p1 << 8 | cmd.p2
        if tag not in app.profile.put_data_tags:
            raise SwError(0x6A88)
        state.updated[tag] = data
    elif cmd.ins == 0x24:
        if cmd.p1 != 0 or cmd.p2 not in (0, 1, 2):
            raise SwError(0x6A86)
        if cmd.p2:
            if len(data) != 8:
                raise SwError(0x6700)
            pin = parse_pin_block(_tdes_decrypt(common_session_key(app.mk_smc, cryptogram), data))
            if pin is None:
                raise SwError(0x6A80)
            ctx.pin = pin
        ctx.pin_tries = ctx.profile.pin_try_limit
    else:
        if cmd.p1 or cmd.p2 or data:
            raise SwError(0x6A86)
        if cmd.ins == 0x1E:
            state.blocked = True
        elif cmd.ins == 0x18:
            state.blocked = False
        else:
            ctx.card_blocked = True
    session.cvr.script_commands += 1
    return respond()
