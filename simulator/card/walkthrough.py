"""A scripted happy path through a virtual card: the self-check of every profile.

Not a kernel (that is :mod:`terminal.contact` and :mod:`terminal.contactless`): a straight
sequence of the commands a terminal sends, using the terminal's codecs (DOL building, static
data, ODA verification) and the simulator's issuer host, so that every profile can be shown
to answer consistently - certificates that verify, cryptograms the issuer accepts, ARPCs the
card accepts - and to reach the outcome its ``expected`` field states. Simplifications: the
first applicable CVM rule of the card's list is used (conditions 00, 03, 06-09 understood),
the terminal asks for an ARQC above ``floor_limit`` or when ODA failed, else a TC.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from simulator.card.engine import VirtualCard
from simulator.issuer import IssuerHost
from terminal.capk import CapkStore
from terminal.dol import build_dol
from terminal.oda import (
    OdaFailure,
    StaticDataCollector,
    perform_sda,
    recover_icc_public_key,
    recover_pin_public_key,
    verify_cda_response,
    verify_dda,
    verify_fdda,
)
from terminal.pinpad import enciphered_pin_data, plaintext_pin_block, verify_command
from terminal.tlv import decode, encode, flatten

__all__ = ["Walk", "run_contact", "run_contactless"]

TODAY = datetime.date(2026, 11, 25)
_FIELD55 = (0x4F, 0x5A, 0x57, 0x5F34, 0x82, 0x95, 0x9A, 0x9C, 0x5F2A, 0x9F02, 0x9F03,
            0x9F10, 0x9F1A, 0x9F26, 0x9F27, 0x9F36, 0x9F37)


@dataclass(slots=True)
class Walk:
    """What happened (outcome names as in the profiles' ``expected``)."""

    outcome: str = "TERMINATED"
    online: bool = False
    aid: str = ""
    oda: str | None = None
    oda_ok: bool | None = None
    cvm: str = "NO_CVM"
    cid: int | None = None
    sws: list[int] = field(default_factory=list)
    data: dict[int, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Walk({self.outcome}, online={self.online}, oda={self.oda}:{self.oda_ok})"


class _Session:
    def __init__(self, card: VirtualCard, walk: Walk) -> None:
        self.card, self.walk = card, walk

    def send(self, capdu: bytes) -> tuple[bytes, int]:
        rapdu = self.card.process(capdu)
        sw = int.from_bytes(rapdu[-2:], "big")
        self.walk.sws.append(sw)
        return rapdu[:-2], sw


def _apdu(header: str, data: bytes = b"", le: bool = True) -> bytes:
    head = bytes.fromhex(header)
    return head + (bytes((len(data),)) + data if data else b"") + (b"\x00" if le else b"")


def _terminal_data(
    amount: int, un: bytes, extra: dict[int, bytes] | None = None
) -> dict[int, bytes]:
    data = {
        0x9F02: bytes.fromhex(f"{amount:012d}"), 0x9F03: bytes(6), 0x9F1A: b"\x02\x50",
        0x95: bytes(5), 0x5F2A: b"\x09\x78", 0x9A: bytes.fromhex(TODAY.strftime("%y%m%d")),
        0x9C: b"\x00", 0x9F37: un, 0x9F35: b"\x22", 0x9F33: bytes.fromhex("E0F8C8"),
        0x9F34: bytes.fromhex("3F0000"),
    }
    data.update(extra or {})
    return data


def _capk(card: VirtualCard) -> CapkStore:
    from simulator.card.engine import default_pki

    store = CapkStore()
    store.load_file(default_pki().capk_file)
    return store


def _select(s: _Session, contactless: bool) -> bytes | None:
    """Directory then final selection; returns the chosen AID or None."""
    name = b"2PAY.SYS.DDF01" if contactless else b"1PAY.SYS.DDF01"
    fci, sw = s.send(_apdu("00A40400", name))
    if sw != 0x9000:
        return None
    if contactless:
        entries = [t for t in _walk(decode(fci)) if t.tag == 0x61]
    else:
        sfi = flatten(decode(fci)).get(0x88, b"\x01")[0]
        record, sw = s.send(bytes((0, 0xB2, 1, sfi << 3 | 4, 0)))
        entries = [t for t in _walk(decode(record)) if t.tag == 0x61] if sw == 0x9000 else []
    ranked = sorted(
        (flatten(list(e.children or ())) for e in entries),
        key=lambda d: d.get(0x87, b"\x0f")[0] & 0x0F,
    )
    for entry in ranked:
        aid = entry[0x4F]
        fci, sw = s.send(_apdu("00A40400", aid))
        if sw == 0x9000:
            s.walk.data.update(flatten(decode(fci)))
            s.walk.aid = aid.hex().upper()
            return aid
    return None


def _walk(tlvs: list[Any]) -> list[Any]:
    out = []
    for t in tlvs:
        out.append(t)
        if t.children:
            out.extend(_walk(list(t.children)))
    return out


def _read_records(s: _Session, afl: bytes) -> StaticDataCollector:
    collector = StaticDataCollector(afl)
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        for number in range(first, last + 1):
            record, sw = s.send(bytes((0, 0xB2, number, sfi << 3 | 4, 0)))
            if sw != 0x9000:
                raise AssertionError(f"READ RECORD SFI {sfi} record {number}: {sw:04X}")
            collector.add_record(sfi, number, record)
            s.walk.data.update(flatten(decode(record)))
    return collector


def _gpo(s: _Session, terminal: dict[int, bytes]) -> tuple[bytes, bytes, int]:
    pdol_data = build_dol(s.walk.data.get(0x9F38, b""), terminal)
    resp, sw = s.send(_apdu("80A80000", encode(0x83, pdol_data)))
    if sw != 0x9000:
        return pdol_data, b"", sw
    top = decode(resp)[0]
    if top.tag == 0x80:
        s.walk.data[0x82], s.walk.data[0x94] = top.value[:2], top.value[2:]
    else:
        s.walk.data.update(flatten([top]))
    return pdol_data, resp, sw


def _cvm(s: _Session, amount: int, pin: str, rid: bytes, static: Any) -> None:
    cvm_list = s.walk.data.get(0x8E, b"")
    x, y = int.from_bytes(cvm_list[0:4], "big"), int.from_bytes(cvm_list[4:8], "big")
    for i in range(8, len(cvm_list) - 1, 2):
        method, condition = cvm_list[i] & 0x3F, cvm_list[i + 1]
        applies = {0: True, 3: True, 6: amount < x, 7: amount > x, 8: amount < y,
                   9: amount > y}.get(condition, False)
        if not applies:
            continue
        if method == 0x01:
            _, sw = s.send(verify_command(plaintext_pin_block(pin), enciphered=False))
            s.walk.cvm = "OFFLINE_PLAINTEXT_PIN" if sw == 0x9000 else f"FAILED_{sw:04X}"
        elif method == 0x04:
            key = recover_pin_public_key(_capk(s.card), rid, s.walk.data, static, TODAY)
            challenge, _ = s.send(bytes.fromhex("0084000000"))
            if isinstance(key, OdaFailure):
                s.walk.cvm = "FAILED_KEY"
                return
            block = enciphered_pin_data(pin, challenge, key.key, lambda n: b"\x55" * n)
            _, sw = s.send(verify_command(block, enciphered=True))
            s.walk.cvm = "OFFLINE_ENCIPHERED_PIN" if sw == 0x9000 else f"FAILED_{sw:04X}"
        else:
            s.walk.cvm = {0x02: "ONLINE_PIN", 0x1E: "SIGNATURE"}.get(method, "NO_CVM")
        return


def run_contact(
    card: VirtualCard,
    *,
    amount: int = 1250,
    pin: str = "1234",
    issuer: IssuerHost | None = None,
    floor_limit: int = 5000,
    un: bytes = b"\x12\x34\x56\x78",
) -> Walk:
    """Run one contact transaction through ``card`` (see the module docstring)."""
    walk = Walk()
    s = _Session(card, walk)
    aid = _select(s, contactless=False)
    if aid is None:
        walk.outcome = "NOT_ACCEPTED"
        return walk
    terminal = _terminal_data(amount, un)
    pdol_data, _, sw = _gpo(s, terminal)
    if sw != 0x9000:
        walk.outcome = "NOT_ACCEPTED"
        return walk
    aip = walk.data[0x82]
    collector = _read_records(s, walk.data[0x94])
    static = collector.finish(walk.data.get(0x9F4A), {0x82: aip})
    store = _capk(card)
    rid = aid[:5]
    tvr = bytearray(5)
    cda = False
    if aip[0] & 0x01:
        walk.oda, cda = "CDA", True
        icc = recover_icc_public_key(store, rid, walk.data, static, TODAY)
        walk.oda_ok = not isinstance(icc, OdaFailure)
    elif aip[0] & 0x20:
        walk.oda = "DDA"
        icc = recover_icc_public_key(store, rid, walk.data, static, TODAY)
        ok = False
        if not isinstance(icc, OdaFailure):
            ddol_data = build_dol(walk.data.get(0x9F49, b"\x9f\x37\x04"), terminal)
            resp, sw = s.send(_apdu("00880000", ddol_data))
            found = flatten(decode(resp)) if sw == 0x9000 else {}
            sdad = found.get(0x9F4B) or found.get(0x80)
            ok = not isinstance(verify_dda(icc, sdad, ddol_data), OdaFailure)
        walk.oda_ok = ok
        tvr[0] |= 0 if ok else 0x08
    elif aip[0] & 0x40:
        walk.oda = "SDA"
        walk.oda_ok = not isinstance(perform_sda(store, rid, walk.data, static, TODAY), OdaFailure)
        tvr[0] |= 0 if walk.oda_ok else 0x40
    if cda and not walk.oda_ok:
        tvr[0] |= 0x04
        cda = False
    _cvm(s, amount, pin, rid, static)
    if walk.cvm.startswith("FAILED"):
        tvr[2] |= 0x80
    if card.pin_tries == 0:
        tvr[2] |= 0x20
    terminal[0x95] = bytes(tvr)
    denial = walk.data.get(0x9F0E, bytes(5))
    if any(a & b for a, b in zip(tvr, denial, strict=False)):
        p1 = 0x00
    else:
        p1 = 0x80 if amount > floor_limit or tvr[0] else 0x40
    p1 |= 0x10 if cda and p1 else 0
    cdol1_data = build_dol(walk.data[0x8C], terminal)
    resp, sw = s.send(_apdu(f"80AE{p1:02X}00", cdol1_data))
    if sw != 0x9000:
        return walk
    values = _genac_values(resp)
    walk.data.update(values)
    walk.cid = values[0x9F27][0]
    if cda and values.get(0x9F4B) and not isinstance(icc, OdaFailure):
        walk.oda_ok = not isinstance(verify_cda_response(
            icc, resp, unpredictable_number=un, pdol_data=pdol_data, cdol1_data=cdol1_data,
        ), OdaFailure)
    if walk.cid & 0xC0 != 0x80:
        walk.outcome = "APPROVED" if walk.cid & 0xC0 == 0x40 else "DECLINED"
        return walk
    walk.online = True
    host = issuer or IssuerHost()
    answer = host.authorise({t: walk.data[t] for t in _FIELD55 if t in walk.data}
                            | {0x9F02: terminal[0x9F02], 0x95: terminal[0x95],
                               0x9F37: un, 0x9A: terminal[0x9A], 0x9C: b"\x00",
                               0x5F2A: terminal[0x5F2A], 0x9F1A: terminal[0x9F1A],
                               0x9F03: terminal[0x9F03], 0x4F: aid})
    assert answer is not None
    terminal[0x8A] = answer.arc
    terminal[0x91] = answer.issuer_auth_data
    if aip[0] & 0x04 and answer.issuer_auth_data:
        s.send(_apdu("00820000", answer.issuer_auth_data, le=False))
    _scripts(s, answer.scripts, 0x71)
    p1 = 0x40 if answer.approved else 0x00
    resp, sw = s.send(_apdu(f"80AE{p1:02X}00", build_dol(walk.data[0x8D], terminal)))
    if sw != 0x9000:
        return walk
    walk.cid = _genac_values(resp)[0x9F27][0]
    walk.outcome = "APPROVED" if walk.cid & 0xC0 == 0x40 else "DECLINED"
    _scripts(s, answer.scripts, 0x72)
    return walk


def _scripts(s: _Session, scripts: bytes, template: int) -> None:
    for obj in decode(scripts) if scripts else []:
        if obj.tag == template:
            for cmd in obj.children or ():
                if cmd.tag == 0x86:
                    s.send(cmd.value)


def _genac_values(resp: bytes) -> dict[int, bytes]:
    top = decode(resp)[0]
    if top.tag == 0x80:
        v = top.value
        return {0x9F27: v[:1], 0x9F36: v[1:3], 0x9F26: v[3:11], 0x9F10: v[11:]}
    return flatten([top])


def run_contactless(
    card: VirtualCard,
    *,
    amount: int = 1250,
    ttq: bytes = bytes.fromhex("36000000"),
    floor_limit: int = 0,
    cvm_limit: int = 5000,
    issuer: IssuerHost | None = None,
    un: bytes = b"\xab\xab\xab\xab",
) -> Walk:
    """Run one tap (see the module docstring): qVSDC in GPO, or M/Chip with CDA GENERATE AC."""
    walk = Walk()
    s = _Session(card, walk)
    aid = _select(s, contactless=True)
    if aid is None:
        walk.outcome = "END_APPLICATION"
        return walk
    ttq_b = bytearray(ttq)
    if amount > floor_limit:
        ttq_b[1] |= 0x80
    if amount > cvm_limit:
        ttq_b[1] |= 0x40
    terminal = _terminal_data(amount, un, {0x9F66: bytes(ttq_b)})
    pdol_data, resp, sw = _gpo(s, terminal)
    if sw == 0x6986:
        walk.outcome = "TRY_AGAIN"
        return walk
    if sw == 0x6984:
        walk.outcome = "TRY_ANOTHER_INTERFACE"
        return walk
    if sw != 0x9000:
        walk.outcome = "END_APPLICATION"
        return walk
    static: Any = b""
    if 0x94 in walk.data:
        collector = _read_records(s, walk.data[0x94])
        static = collector.finish(walk.data.get(0x9F4A), {0x82: walk.data[0x82]})
    store = _capk(card)
    if 0x9F26 not in walk.data:  # M/Chip: GENERATE AC with CDA
        walk.oda = "CDA"
        p1 = (0x80 if amount > floor_limit else 0x40) | 0x10
        cdol1_data = build_dol(walk.data[0x8C], terminal)
        resp, sw = s.send(_apdu(f"80AE{p1:02X}00", cdol1_data))
        walk.data.update(_genac_values(resp))
        icc = recover_icc_public_key(store, aid[:5], walk.data, static, TODAY)
        walk.oda_ok = not isinstance(icc, OdaFailure) and not isinstance(verify_cda_response(
            icc, resp, unpredictable_number=un, pdol_data=pdol_data, cdol1_data=cdol1_data,
        ), OdaFailure)
        cvm_list = walk.data.get(0x8E, b"")
        if amount > cvm_limit and cvm_list[8:9] in (b"\x02", b"\x42"):
            walk.cvm = "ONLINE_PIN"
    else:
        ctq = walk.data.get(0x9F6C, b"\x00\x00")
        walk.cvm = ("ONLINE_PIN" if ctq[0] & 0x80 else "SIGNATURE" if ctq[0] & 0x40
                    else "CONFIRMATION_CODE_VERIFIED" if ctq[1] & 0x80 else "NO_CVM")
        if 0x9F4B in walk.data:
            walk.oda = "fDDA"
            icc = recover_icc_public_key(store, aid[:5], walk.data, static, TODAY)
            walk.oda_ok = not isinstance(icc, OdaFailure) and not isinstance(verify_fdda(
                icc, walk.data[0x9F4B], unpredictable_number=un,
                amount_authorised=terminal[0x9F02], currency_code=terminal[0x5F2A],
                card_auth_data=walk.data.get(0x9F69),
            ), OdaFailure)
    walk.cid = walk.data[0x9F27][0]
    if walk.cid & 0xC0 != 0x80:
        walk.outcome = "APPROVED" if walk.cid & 0xC0 == 0x40 else "DECLINED"
        return walk
    walk.online = True
    host = issuer or IssuerHost()
    request = {t: walk.data[t] for t in _FIELD55 if t in walk.data} | {
        t: terminal[t] for t in (0x9F02, 0x9F03, 0x95, 0x9F37, 0x9A, 0x9C, 0x5F2A, 0x9F1A)
    } | {0x4F: aid}
    answer = host.authorise(request)
    assert answer is not None
    walk.outcome = "APPROVED" if answer.approved else "DECLINED"
    return walk
