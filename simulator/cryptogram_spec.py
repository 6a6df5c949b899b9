"""Cryptogram versions as data: what a card MACs, with which key, and how the issuer answers.

One :class:`CryptogramSpec` says everything the card and the issuer must agree on (EMV 4.4
Book 2, 8.1-8.2 and Annex A1):

* ``master_key_option``: ICC master key derivation, option A or B (A1.4.1, A1.4.2);
* ``session_key``: ``none`` (the ICC master key MACs directly, Visa CVN 10), ``atc``
  (A1.3 common session key, R = ATC || 00*6: the EMV generic derivation) or ``atc-un``
  (R = ATC || 00 00 || UN, Mastercard CVN 16/17);
* ``padding``: ISO/IEC 9797-1 padding method 1 or 2 of the MAC (A1.2.1);
* ``arpc_method``: 1 (8-byte ARPC over ARQC xor ARC, 8.2.1) or 2 (4-byte MAC of
  ARQC || CSU || proprietary data, 8.2.2), with ``arpc_key`` ``master`` (ICC MK) or
  ``session`` (the AC session key);
* ``terminal_tags``: the data objects the cryptogram covers, in order (default the minimum
  set of Book 2, 8.1.1 Table 26 including AIP 82 and ATC 9F36), taken from field 55 by the
  issuer and from CDOL1 data plus its own 82/9F36 by the card;
* ``card_data``: the card part appended: ``none``, ``iad`` (the whole 9F10), or a scheme
  layout (``visa-cvr``, ``mchip-cvr``, ``mchip-cvr-counters``, see :mod:`simulator.card.iad`).

The schemes' versions the simulator implements (:class:`~simulator.cryptogram.Cvn`) are
specs too (:func:`spec_for_cvn`), so a card or an issuer profile can name one or spell out
its own (``version = "emv-csk"``: the EMV common session key with ARPC method 1 or 2).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from simulator.cryptogram import (
    Cvn,
    arpc_method1,
    arpc_method2,
    common_session_key,
    derive_icc_master_key,
    mac_iso9797_3,
)

__all__ = [
    "CARD_DATA",
    "DEFAULT_AC_TAGS",
    "CryptogramSpec",
    "card_part",
    "check_issuer_auth",
    "issuer_auth_data",
    "spec_for_cvn",
]

#: Book 2, 8.1.1 Table 26: amount, other amount, country, TVR, currency, date, type, UN,
#: AIP, ATC.
DEFAULT_AC_TAGS = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x82, 0x9F36)
CARD_DATA = ("none", "iad", "visa-cvr", "mchip-cvr", "mchip-cvr-counters")
_SIZES = {0x9F02: 6, 0x9F03: 6, 0x9F1A: 2, 0x95: 5, 0x5F2A: 2, 0x9A: 3, 0x9C: 1, 0x9F37: 4,
          0x82: 2, 0x9F36: 2}  # fmt: skip

CardData = Literal["none", "iad", "visa-cvr", "mchip-cvr", "mchip-cvr-counters"]


@dataclass(frozen=True, slots=True)
class CryptogramSpec:
    """One cryptogram version (see the module docstring for each field)."""

    version: str
    master_key_option: Literal["A", "B"] = "A"
    session_key: Literal["none", "atc", "atc-un"] = "atc"
    padding: Literal[1, 2] = 2
    arpc_method: Literal[1, 2] = 1
    arpc_key: Literal["master", "session"] = "session"
    terminal_tags: tuple[int, ...] = DEFAULT_AC_TAGS
    card_data: CardData = "iad"

    def icc_master_key(self, issuer_mk: bytes, pan: str, psn: str) -> bytes:
        """The card's ICC master key for AC (Book 2, A1.4)."""
        return derive_icc_master_key(issuer_mk, pan, psn, self.master_key_option)

    def session(self, icc_mk: bytes, atc: bytes, un: bytes) -> bytes:
        """The AC session key (Book 2, A1.3.1) or the ICC MK itself (``none``)."""
        if self.session_key == "none":
            return icc_mk
        if self.session_key == "atc-un":
            return common_session_key(icc_mk, atc + b"\x00\x00" + un)
        return common_session_key(icc_mk, atc + bytes(6))

    def mac_input(self, data: Mapping[int, bytes], iad: bytes) -> bytes:
        """The data MACed: each covered tag's value (fixed-size ones padded/cut) then card data."""
        out = b""
        for tag in self.terminal_tags:
            value = data.get(tag, b"")
            size = _SIZES.get(tag)
            if size is not None and len(value) != size:
                value = value[:size].rjust(size, b"\x00")
            out += value
        return out + card_part(self.card_data, iad)

    def cryptogram(self, icc_mk: bytes, data: Mapping[int, bytes], iad: bytes) -> bytes:
        """The 8-byte AC over ``data`` (field-55 tags or the card's CDOL1 data, plus 82/9F36)."""
        atc, un = data.get(0x9F36, bytes(2)), data.get(0x9F37, bytes(4))
        key = self.session(icc_mk, atc, un)
        return mac_iso9797_3(key, self.mac_input(data, iad), padding=self.padding)

    def arpc(self, icc_mk: bytes, arqc: bytes, atc: bytes, un: bytes, response: bytes) -> bytes:
        """The ARPC: method 1 with the 2-byte ARC, method 2 with the 4-byte CSU (Book 2, 8.2)."""
        key = icc_mk if self.arpc_key == "master" else self.session(icc_mk, atc, un)
        if self.arpc_method == 1:
            return arpc_method1(key, arqc, response)
        return arpc_method2(key, arqc, response)


def card_part(card_data: str, iad: bytes) -> bytes:
    """The card data appended to the MAC input, cut out of the IAD (empty when too short)."""
    if card_data == "iad":
        return iad
    if card_data == "visa-cvr":
        return iad[3:7] if len(iad) >= 7 else b""
    if card_data in ("mchip-cvr", "mchip-cvr-counters"):
        if len(iad) < 18:
            return b""
        return iad[2:8] if card_data == "mchip-cvr" else iad[2:8] + iad[10:18]
    return b""


def spec_for_cvn(cvn: Cvn) -> CryptogramSpec:
    """The spec of a scheme CVN (the table of :mod:`simulator.cryptogram`)."""
    if cvn is Cvn.VISA_10:
        return CryptogramSpec(cvn.value, "A", "none", 1, 1, "master", card_data="visa-cvr")
    if cvn in (Cvn.VISA_18, Cvn.VISA_22):
        return CryptogramSpec(cvn.value, "B", "atc", 2, 2, "session", card_data="iad")
    layout: CardData = "mchip-cvr" if cvn is Cvn.MASTERCARD_16 else "mchip-cvr-counters"
    return CryptogramSpec(cvn.value, "A", "atc-un", 2, 1, "master", card_data=layout)


def issuer_auth_data(
    spec: CryptogramSpec, icc_mk: bytes, arqc: bytes, atc: bytes, un: bytes, arc: bytes
) -> bytes:
    """Tag 91 for an answer with ``arc``: ``ARPC | ARC`` (method 1) or ``ARPC | CSU`` (2).

    The method 2 CSU is ``00800000`` when approved (``00``), ``00000000`` otherwise: the
    "approved" bit, a documented simplification of Book 2, 8.2.2.
    """
    if spec.arpc_method == 1:
        return spec.arpc(icc_mk, arqc, atc, un, arc) + arc
    csu = bytes.fromhex("00800000" if arc == b"00" else "00000000")
    return spec.arpc(icc_mk, arqc, atc, un, csu) + csu


def check_issuer_auth(
    spec: CryptogramSpec, icc_mk: bytes, arqc: bytes, atc: bytes, un: bytes, data: bytes
) -> bool:
    """Card side: does tag 91 verify against the ARQC (Book 2, 8.2)?"""
    try:
        if spec.arpc_method == 2:
            if not 8 <= len(data) <= 16:
                return False
            expected = spec.arpc(icc_mk, arqc, atc, un, data[4:8])
            return hmac.compare_digest(expected, data[:4])
        if not 10 <= len(data) <= 16:
            return False
        return hmac.compare_digest(spec.arpc(icc_mk, arqc, atc, un, data[8:10]), data[:8])
    except ValueError:
        return False
