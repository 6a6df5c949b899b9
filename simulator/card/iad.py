"""Issuer Application Data (9F10) and Card Verification Results of the virtual cards.

Shared by the card (which builds 9F10 in GENERATE AC and qVSDC GPO) and the issuer host
(which takes the CVN and the MACed card data back out of it), so both sides agree:

* Visa-style (Visa CVN 10/18/22; also used by the simulator's Amex and CB applications): length
  ``06`` | derivation key index | CVN (``0A``, ``12``, ``16``) | CVR (4 bytes, its first byte
  the CVR length ``03``); CVN 18/22 append an Issuer Discretionary Data block ``0F`` + 15 zero
  bytes (the "format 2" layout is not modelled).
* Mastercard M/Chip-style (CVN 16/17): derivation key index | CVN (``10``, ``11``) | CVR
  (6 bytes) | DAC/IDN (2 bytes) | counters (8 bytes) - 18 bytes.

The CVR bit layout follows the Visa VIS CVR for the Visa style (byte 2: AC type of the second
and first GENERATE AC, issuer authentication failed, offline PIN performed/failed, unable to
go online; byte 3: PIN try limit exceeded, last online transaction not completed...). The
M/Chip CVR keeps only its byte 1 (AC types, offline PIN performed/successful) and byte 4 bit
"issuer authentication failed"; the other bytes are zero. Documented simplification.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.cryptogram import Cvn

__all__ = ["CvrState", "build_iad", "card_data_for_mac", "cvn_from_iad"]

AC_AAC, AC_TC, AC_ARQC = 0x00, 0x40, 0x80
_VISA_CVN_BYTE = {Cvn.VISA_10: 0x0A, Cvn.VISA_18: 0x12, Cvn.VISA_22: 0x16}
_MC_CVN_BYTE = {Cvn.MASTERCARD_16: 0x10, Cvn.MASTERCARD_17: 0x11}
_AC_BITS = {AC_AAC: 0b00, AC_TC: 0b01, AC_ARQC: 0b10}


@dataclass(slots=True)
class CvrState:
    """What the card remembers of the current transaction for its CVR.

    Attributes:
        first_ac: AC type of the first GENERATE AC (``00``/``40``/``80``), None before it.
        second_ac: AC type of the second GENERATE AC, None when not (yet) requested.
        offline_pin_performed: VERIFY was processed in this transaction.
        offline_pin_failed: The last VERIFY failed.
        pin_try_limit_exceeded: The PIN try counter is zero.
        issuer_auth_failed: EXTERNAL AUTHENTICATE (or ARPC in CDOL2) failed.
        unable_to_go_online: The terminal asked for a TC or AAC in the second GENERATE AC
            without an authorisation response code from the issuer (Z3/Y3 ARC).
        dda_performed: INTERNAL AUTHENTICATE was answered.
        script_commands: Number of issuer script commands processed.
    """

    first_ac: int | None = None
    second_ac: int | None = None
    offline_pin_performed: bool = False
    offline_pin_failed: bool = False
    pin_try_limit_exceeded: bool = False
    issuer_auth_failed: bool = False
    unable_to_go_online: bool = False
    dda_performed: bool = False
    script_commands: int = 0

    def visa_cvr(self) -> bytes:
        """The 4-byte Visa-style CVR (length byte ``03`` first)."""
        second = 0b10 if self.second_ac is None else _AC_BITS[self.second_ac]
        first = 0b00 if self.first_ac is None else _AC_BITS[self.first_ac]
        b2 = (second << 6) | (first << 4)
        b2 |= 0x08 if self.issuer_auth_failed else 0
        b2 |= 0x04 if self.offline_pin_performed else 0
        b2 |= 0x02 if self.offline_pin_failed else 0
        b2 |= 0x01 if self.unable_to_go_online else 0
        b3 = 0x40 if self.pin_try_limit_exceeded else 0
        b4 = (min(self.script_commands, 15) << 4) | (0x02 if self.dda_performed else 0)
        return bytes((0x03, b2, b3, b4))

    def mchip_cvr(self) -> bytes:
        """The 6-byte M/Chip-style CVR (simplified, see the module docstring)."""
        second = 0b10 if self.second_ac is None else _AC_BITS[self.second_ac]
        first = 0b00 if self.first_ac is None else _AC_BITS[self.first_ac]
        b1 = (second << 6) | (first << 4)
        b1 |= 0x04 if self.offline_pin_performed else 0
        b1 |= 0x01 if self.offline_pin_performed and not self.offline_pin_failed else 0
        b4 = 0x04 if self.issuer_auth_failed else 0
        return bytes((b1, 0, 0, b4, 0, 0))


def build_iad(cvn: Cvn, cvr: CvrState, dki: int = 0x01) -> bytes:
    """The Issuer Application Data (9F10) for this CVN and transaction state."""
    if cvn in _MC_CVN_BYTE:
        return bytes((dki, _MC_CVN_BYTE[cvn])) + cvr.mchip_cvr() + bytes(2) + bytes(8)
    iad = bytes((0x06, dki, _VISA_CVN_BYTE[cvn])) + cvr.visa_cvr()
    if cvn is not Cvn.VISA_10:
        iad += b"\x0f" + bytes(15)
    return iad


def card_data_for_mac(cvn: Cvn, iad: bytes) -> bytes:
    """The card part of the data an AC covers, taken from the IAD (see simulator.cryptogram).

    Returns ``b""`` when the IAD is too short for the CVN (the MAC then fails to verify).
    """
    if cvn is Cvn.VISA_10:
        return iad[3:7] if len(iad) >= 7 else b""
    if cvn in (Cvn.VISA_18, Cvn.VISA_22):
        return iad
    if len(iad) < 18:
        return b""
    if cvn is Cvn.MASTERCARD_16:
        return iad[2:8]
    return iad[2:8] + iad[10:18]


def cvn_from_iad(iad: bytes, aid: bytes | None = None) -> Cvn | None:
    """The CVN a 9F10 announces (Visa style: byte 3; M/Chip style: byte 2), or None."""
    mastercard = aid is not None and aid[:5] == bytes.fromhex("A000000004")
    if len(iad) >= 7 and iad[0] == 0x06 and not mastercard:
        for cvn, byte in _VISA_CVN_BYTE.items():
            if iad[2] == byte:
                return cvn
    if len(iad) >= 18:
        for cvn, byte in _MC_CVN_BYTE.items():
            if iad[1] == byte:
                return cvn
    return None
