"""Card side of INTERNAL AUTHENTICATE and EXTERNAL AUTHENTICATE (EMV 4.4 Book 3, 6.5.9, 6.5.4).

INTERNAL AUTHENTICATE ``00 88 00 00 Lc DDOL-data``: dynamic data authentication (Book 2,
6.5.1): the card signs ``IDN length | IDN`` (a fresh 8-byte ICC Dynamic Number) with the DDOL
data as terminal dynamic data and answers format 2 (``77 9F4B``), or format 1 (``80``) when
the profile's ``genac_format`` is 1. A card without DDA answers ``6D00``.

EXTERNAL AUTHENTICATE ``00 82 00 00 Lc issuer-authentication-data`` (8-16 bytes) after a
first GENERATE AC that returned an ARQC, once per transaction (else ``6985``). The data is
checked against the ARQC (Book 2, 8.2): ARPC method 1 ``ARPC (8) | ARC (2)`` for CVN 10/16/17,
method 2 ``ARPC (4) | CSU (4) | proprietary data`` for Visa CVN 18/22. A mismatch answers
``6300`` and marks issuer authentication failed in the CVR.
"""

from __future__ import annotations

from simulator.card.iad import AC_ARQC
from simulator.card.profile import cryptogram_spec
from simulator.card.state import CardContext, Command, SwError, respond
from simulator.cryptogram_spec import check_issuer_auth
from simulator.keys import sign_dda
from terminal import encode

__all__ = ["check_arpc", "external_authenticate", "internal_authenticate"]


def check_arpc(ctx: CardContext, data: bytes) -> bool:
    """Verify issuer authentication data (91) against the session's ARQC (Book 2, 8.2).

    Method 1 ``ARPC (8) | ARC (2)`` or method 2 ``ARPC (4) | CSU (4) | proprietary data``, as
    the application's cryptogram spec says.
    """
    session = ctx.session
    app = ctx.app
    if session.arqc is None or not 8 <= len(data) <= 16:
        return False
    un = session.terminal.get(0x9F37, bytes(4))
    spec = cryptogram_spec(app.profile)
    return check_issuer_auth(spec, app.mk_ac, session.arqc, session.atc, un, data)


def external_authenticate(ctx: CardContext, cmd: Command) -> bytes:
    """Process EXTERNAL AUTHENTICATE (EMV 4.4 Book 3, 6.5.4)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    if cmd.p1 or cmd.p2:
        raise SwError(0x6A86)
    session = ctx.session
    if (
        session.genac_count != 1
        or session.last_ac_type != AC_ARQC
        or session.issuer_auth is not None
    ):
        raise SwError(0x6985)
    if not 8 <= len(cmd.data) <= 16:
        raise SwError(0x6700)
    ok = check_arpc(ctx, cmd.data)
    session.issuer_auth = ok
    session.cvr.issuer_auth_failed = not ok
    if not ok:
        raise SwError(0x6300)
    return respond()


def internal_authenticate(ctx: CardContext, cmd: Command) -> bytes:
    """Process INTERNAL AUTHENTICATE (EMV 4.4 Book 3, 6.5.9; Book 2, 6.5.1)."""
    if cmd.cla != 0x00:
        raise SwError(0x6E00)
    app = ctx.app
    if "DDA" not in app.profile.oda or app.icc_key is None:
        raise SwError(0x6D00)
    if cmd.p1 or cmd.p2:
        raise SwError(0x6A86)
    if not cmd.data:
        raise SwError(0x6700)
    sdad = sign_dda(app.icc_key, ctx.rng(8), cmd.data)
    ctx.session.cvr.dda_performed = True
    if app.profile.genac_format == 1:
        return respond(encode(0x80, sdad))
    return respond(encode(0x77, encode(0x9F4B, sdad)))
