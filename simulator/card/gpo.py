"""Card side of GET PROCESSING OPTIONS (EMV 4.4 Book 3, 6.5.8; EMV Contactless Book C-3).

``80 A8 00 00 Lc 83 L PDOL-data 00``. Checks, in order: CLA ``80`` (else ``6E00``), P1 P2
``00 00`` (``6A86``), an application selected, not blocked and not yet initiated (``6985``),
a data field that is one tag ``83`` (``6A80``) whose length is the PDOL's total length
(``6700``).

Contact and M/Chip applications answer AIP and AFL, in format 1 (``80 AIP AFL``) or format 2
(``77 82 94``) as the profile says (Book 3, 6.5.8.4).

A Visa qVSDC application (kernel 3) decides the whole transaction here, from the Terminal
Transaction Qualifiers (9F66) and the amount in the PDOL data:

* profile ``switch_interface``: ``6984`` (the reader's outcome is "try another interface");
* a phone wallet (``cdcvm``) whose holder has not yet been verified on the phone, when the
  reader says a CVM is required (TTQ byte 2 bit 7): ``6986`` "see phone"; the phone then
  verifies its holder, and the next tap's GPO reports it (CTQ byte 2 bit 8);
* a CVM required and no CDCVM: online PIN (CTQ byte 1 bit 8) when the reader supports it
  (TTQ byte 1 bit 3) and the profile wants it, else signature (CTQ byte 1 bit 7) if supported;
* online (ARQC, CID ``80``) when the reader asks for an online cryptogram (TTQ byte 2 bit 8),
  the profile is ``online_only``, online PIN was asked, or the amount exceeds the card's
  offline limit; an offline-only reader (TTQ byte 1 bit 4) then gets an AAC; otherwise offline
  approval (TC, CID ``40``) with the fDDA signature (9F4B) over UN | 9F02 | 5F2A | 9F69 when the
  application supports fDDA (9F69 version ``01``, a fresh card unpredictable number, the CTQ).

The ATC increments at every qVSDC GPO that returns a cryptogram (there is no GENERATE AC).
The response (template 77) carries 82, 94 (offline approvals only: the reader then reads the
certificates), 57, 5F34, 9F10, 9F26, 9F27, 9F36, 9F6C and, when signed, 9F69 and 9F4B.
"""

from __future__ import annotations

from simulator.card.genac import compute_ac
from simulator.card.iad import AC_AAC, AC_ARQC, AC_TC
from simulator.card.state import CardContext, Command, SwError, dol_length, respond, split_dol_data
from simulator.keys import sign_fdda
from terminal import encode, encode_tlvs

__all__ = ["get_processing_options"]


def get_processing_options(ctx: CardContext, cmd: Command) -> bytes:
    """Process GET PROCESSING OPTIONS (EMV 4.4 Book 3, 6.5.8)."""
    if cmd.cla != 0x80:
        raise SwError(0x6E00)
    if cmd.p1 or cmd.p2:
        raise SwError(0x6A86)
    session = ctx.session
    app = ctx.app
    if session.gpo_done or ctx.state.blocked:
        raise SwError(0x6985)
    data = cmd.data
    if len(data) < 2 or data[0] != 0x83:
        raise SwError(0x6A80)
    length, start = data[1], 2
    if length == 0x81 and len(data) >= 3:
        length, start = data[2], 3
    if start + length != len(data) or length != dol_length(app.pdol):
        raise SwError(0x6700)
    value = data[start:]
    session.pdol_data = value
    session.terminal = split_dol_data(app.pdol, value)
    if app.profile.mode == "qvsdc":
        return _qvsdc(ctx)
    session.gpo_done = True
    if app.profile.gpo_format == 1:
        return respond(encode(0x80, app.aip + app.afl))
    return respond(encode(0x77, encode(0x82, app.aip) + encode(0x94, app.afl)))


def _qvsdc(ctx: CardContext) -> bytes:
    app = ctx.app
    rules = app.profile.contactless
    session = ctx.session
    state = ctx.state
    terminal = session.terminal
    ttq = terminal.get(0x9F66, b"").ljust(4, b"\x00")
    if rules.switch_interface:
        raise SwError(0x6984)
    cvm_required = bool(ttq[1] & 0x40)
    ctq1 = ctq2 = 0
    if rules.cdcvm and cvm_required:
        if not state.cdcvm_ready:
            state.cdcvm_ready = True  # the holder now unlocks the phone
            raise SwError(0x6986)
        state.cdcvm_ready = False
        ctq2 |= 0x80
    elif cvm_required:
        if rules.online_pin_above_cvm_limit and ttq[0] & 0x04:
            ctq1 |= 0x80
        elif ttq[0] & 0x02:
            ctq1 |= 0x40
    raw_amount = terminal.get(0x9F02, b"").hex()
    amount = int(raw_amount) if raw_amount.isdigit() else 0
    online = (
        bool(ttq[1] & 0x80) or rules.online_only or bool(ctq1 & 0x80)
        or amount > rules.offline_limit
    )
    decision = (AC_AAC if ttq[0] & 0x08 else AC_ARQC) if online else AC_TC
    session.gpo_done = True
    state.atc = (state.atc + 1) & 0xFFFF
    session.atc = state.atc.to_bytes(2, "big")
    session.cvr.first_ac = decision
    ac, iad = compute_ac(ctx, terminal)
    session.genac_count = 1
    session.last_ac_type = decision
    if decision == AC_ARQC:
        session.arqc = ac
    else:
        state.offline_count += decision == AC_TC
    ctq = bytes((ctq1, ctq2))
    objects: list[tuple[int, bytes]] = [(0x82, app.aip)]
    if decision == AC_TC:
        objects.append((0x94, app.afl))
    objects += [(0x57, app.data[0x57])]
    if 0x5F34 in app.data:
        objects.append((0x5F34, app.data[0x5F34]))
    objects += [
        (0x9F10, iad), (0x9F26, ac), (0x9F27, bytes((decision,))),
        (0x9F36, session.atc), (0x9F6C, ctq),
    ]
    if decision == AC_TC and "fDDA" in app.profile.oda and app.icc_key is not None:
        card_auth = b"\x01" + ctx.rng(4) + ctq
        sdad = sign_fdda(
            app.icc_key,
            idn=session.atc,
            unpredictable_number=terminal.get(0x9F37, bytes(4)),
            amount_authorised=terminal.get(0x9F02, bytes(6)),
            currency_code=terminal.get(0x5F2A, bytes(2)),
            card_auth_data=card_auth,
        )
        objects += [(0x9F69, card_auth), (0x9F4B, sdad)]
    return respond(encode(0x77, encode_tlvs(objects)))
