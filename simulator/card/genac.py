"""Card side of GENERATE AC: card risk management, cryptogram, CDA (EMV 4.4 Book 3, 6.5.5, 9.3).

``80 AE P1 00 Lc CDOL-data``. P1 bits 8-7 ask for an AAC (``00``), a TC (``40``) or an ARQC
(``80``); ``C0`` is RFU (``6A86``); bit 5 (``10``) asks for a CDA signature; other bits must be
zero (``6A86``). The first GENERATE AC needs a completed GPO and data of exactly the CDOL1
length; the second needs a first one that returned an ARQC and the CDOL2 length; a third is
refused. Length mismatches are ``6700``, sequence errors ``6985``.

Card action analysis (Book 3, 9.3 "the card may return a cryptogram of a lower type"): the
card never answers a type higher than asked (AAC < ARQC < TC). On the first command it
declines (AAC) when the application is blocked, the profile says ``decline_always`` or the TVR
(95) hits the profile's ``denial_mask``; it turns a TC request into an ARQC when the profile
says ``always_online``, the amount is above ``offline_amount_limit``, the consecutive offline
count reached ``consecutive_offline_limit``, the PIN try limit is exceeded or the TVR hits the
``online_mask``. On the second command it turns a TC request into an AAC when issuer
authentication failed, or was required (``issuer_auth_required``) and did not succeed.
Issuer authentication data in CDOL2 (tag 91) is checked like EXTERNAL AUTHENTICATE.

The ATC increments once per transaction, at the first GENERATE AC. A TC after an online
authorisation sets the last online ATC (9F13) and clears the consecutive offline count.
"""

from __future__ import annotations

from simulator.card.auth import check_arpc
from simulator.card.iad import AC_AAC, AC_ARQC, AC_TC, build_iad
from simulator.card.profile import cryptogram_spec
from simulator.card.state import CardContext, Command, SwError, dol_length, respond, split_dol_data
from simulator.keys import sign_cda
from terminal import encode, encode_tlvs

__all__ = ["compute_ac", "generate_ac_command"]

_ARC_UNABLE_ONLINE = (b"Y3", b"Z3")


def _field(values: dict[int, bytes], tag: int, size: int) -> bytes:
    value = values.get(tag, b"")
    return value[:size].rjust(size, b"\x00") if len(value) != size else value


def compute_ac(ctx: CardContext, terminal: dict[int, bytes]) -> tuple[bytes, bytes]:
    """The cryptogram and 9F10 for the current CVR over the terminal data (Book 2, 8.1.1).

    The application's cryptogram spec (:func:`simulator.card.profile.cryptogram_spec`) says
    which data is covered and how the key is derived.

    Returns:
        (AC 9F26, IAD 9F10).
    """
    app = ctx.app
    iad = build_iad(app.profile.cvn, ctx.session.cvr)
    data = {**terminal, 0x82: app.aip, 0x9F36: ctx.session.atc}
    return cryptogram_spec(app.profile).cryptogram(app.mk_ac, data, iad), iad


def _amount(terminal: dict[int, bytes]) -> int:
    raw = terminal.get(0x9F02, b"").hex()
    return int(raw) if raw.isdigit() else 0


def _hits(tvr: bytes, mask: bytes) -> bool:
    return any(a & b for a, b in zip(tvr, mask, strict=False))


def _first_decision(ctx: CardContext, requested: int) -> int:
    risk = ctx.app.profile.risk
    state = ctx.state
    tvr = ctx.session.terminal.get(0x95, bytes(5))
    if state.blocked or risk.decline_always or requested == AC_AAC:
        return AC_AAC
    if _hits(tvr, risk.denial_mask):
        return AC_AAC
    if requested == AC_ARQC:
        return AC_ARQC
    limit = risk.offline_amount_limit
    count = risk.consecutive_offline_limit
    if (
        risk.always_online
        or (limit is not None and _amount(ctx.session.terminal) > limit)
        or (count is not None and state.offline_count >= count)
        or ctx.pin_tries == 0
        or _hits(tvr, risk.online_mask)
    ):
        return AC_ARQC
    return AC_TC


def _second_decision(ctx: CardContext, requested: int) -> int:
    session = ctx.session
    if requested == AC_AAC or ctx.state.blocked:
        return AC_AAC
    if session.issuer_auth is False:
        return AC_AAC
    if ctx.app.profile.risk.issuer_auth_required and session.issuer_auth is not True:
        return AC_AAC
    return AC_TC


def generate_ac_command(ctx: CardContext, cmd: Command) -> bytes:
    """Process GENERATE AC, first or second (EMV 4.4 Book 3, 6.5.5; Book 2, 6.6.1 for CDA)."""
    if cmd.cla != 0x80:
        raise SwError(0x6E00)
    requested = cmd.p1 & 0xC0
    if cmd.p2 != 0 or requested == 0xC0 or cmd.p1 & 0x2F:
        raise SwError(0x6A86)
    session = ctx.session
    app = ctx.app
    if not session.gpo_done or app.profile.mode == "qvsdc" or session.genac_count >= 2:
        raise SwError(0x6985)
    first = session.genac_count == 0
    if not first and session.last_ac_type != AC_ARQC:
        raise SwError(0x6985)
    if not first and requested == AC_ARQC:
        raise SwError(0x6985)
    dol = app.cdol1 if first else app.cdol2
    if len(cmd.data) != dol_length(dol):
        raise SwError(0x6700)
    values = split_dol_data(dol, cmd.data)
    session.terminal.update(values)
    cvr = session.cvr
    if first:
        session.cdol1_data = cmd.data
        state = ctx.state
        state.atc = (state.atc + 1) & 0xFFFF
        session.atc = state.atc.to_bytes(2, "big")
        decision = _first_decision(ctx, requested)
        cvr.first_ac = decision
        cvr.pin_try_limit_exceeded = ctx.pin_tries == 0
    else:
        if 0x91 in values:
            ok = check_arpc(ctx, values[0x91])
            session.issuer_auth = ok
            cvr.issuer_auth_failed = not ok
        if values.get(0x8A) in _ARC_UNABLE_ONLINE:
            cvr.unable_to_go_online = True
        decision = _second_decision(ctx, requested)
        cvr.second_ac = decision
    session.genac_count += 1
    ac, iad = compute_ac(ctx, session.terminal)
    session.last_ac_type = decision
    if decision == AC_ARQC:
        session.arqc = ac
    if decision == AC_TC:
        _after_tc(ctx, first)
    cid = bytes((decision,))
    if app.profile.genac_format == 1 and not cmd.p1 & 0x10:
        return respond(encode(0x80, cid + session.atc + ac + iad))
    objects = [(0x9F27, cid), (0x9F36, session.atc), (0x9F26, ac), (0x9F10, iad)]
    body = encode_tlvs(objects)
    wants_cda = bool(cmd.p1 & 0x10) and "CDA" in app.profile.oda and app.icc_key is not None
    if wants_cda and decision != AC_AAC:
        assert app.icc_key is not None
        cdol2_data = b"" if first else cmd.data
        sdad = sign_cda(
            app.icc_key,
            idn=ctx.rng(8),
            cid=cid,
            cryptogram=ac,
            unpredictable_number=_field(session.terminal, 0x9F37, 4),
            transaction_data=session.pdol_data + session.cdol1_data + cdol2_data + body,
        )
        body += encode(0x9F4B, sdad)
    return respond(encode(0x77, body))


def _after_tc(ctx: CardContext, first: bool) -> None:
    state = ctx.state
    session = ctx.session
    online = not first and (session.issuer_auth is True or (
        session.terminal.get(0x8A, b"") not in _ARC_UNABLE_ONLINE
        and session.terminal.get(0x8A, b"")[:2] in (b"00", b"10", b"11")
    ))
    if online:
        state.last_online_atc = state.atc
        state.offline_count = 0
    elif first:
        state.offline_count += 1
