"""The kernel's APDU trace, masked as it is recorded (ARCHITECTURE.md, card data).

Every physical exchange (GET RESPONSE included) becomes a :class:`~terminal.result.TraceEntry`
with hex already masked, so no later printing can leak card data:

* VERIFY (INS 20) and PIN CHANGE/UNBLOCK (INS 24): the command's data field is always hidden
  (a PIN block, enciphered PIN data, or an enciphered new PIN block);
* an R-APDU whose data decodes as BER-TLV: every sensitive primitive (tags.is_sensitive: PAN,
  track 1/2 data, cardholder name...) is masked in place, the PAN keeping first 6 + last 4.
  A corrupted record can shift a PAN out of its object, so in the value of an unknown tag, or
  of a known tag with a length outside its range, every run of 12 or more decimal nibbles is
  hidden but its first 6 and last 4; in any other value, such a run is hidden when it holds a
  Luhn-valid 12-19 digit number (ISO/IEC 7812-1 check digit), as every PAN does, unless the
  tag's format is text and the value is printable ASCII (a BCD PAN is not). Tags and
  lengths stay readable, so the masked trace still decodes;
* anything else: :func:`terminal.masking.mask_apdu_hex`, which hides any byte run shaped like a
  PAN or track 2 wherever it sits, then every run of 12 or more decimal nibbles.

Command data built from a DOL carries values without tags; the kernel passes the DOL so that
sensitive entries are masked too (:meth:`Tracer.expect_dol`).

Masking every exchange as it happens costs 0.27-0.44 ms of CPU a transaction on this project's
machine (about 26 exchanges; a seventh of the kernel's and the virtual card's CPU together,
docs/performance.md, "Session 12"). A caller that never reads the trace runs the kernel with
``trace=False``: its :class:`NoTrace` counts the exchanges (the contactless "card removable"
index is one) and records nothing, so there is nothing to mask and no card data is kept.
"""

from __future__ import annotations

import re

from terminal import tags
from terminal.dol import DolEntry
from terminal.masking import mask_apdu_hex, mask_pan
from terminal.result import TraceEntry
from terminal.tlv import TlvError, decode, iter_tlvs

__all__ = [
    "COMMAND_NAMES",
    "Tracer",
    "mask_rapdu_hex",
    "mask_tlv_hex",
    "mask_unstructured_hex",
]

COMMAND_NAMES: dict[int, str] = {
    0xA4: "SELECT",
    0xB2: "READ RECORD",
    0xA8: "GET PROCESSING OPTIONS",
    0xCA: "GET DATA",
    0x20: "VERIFY",
    0x84: "GET CHALLENGE",
    0x88: "INTERNAL AUTHENTICATE",
    0xAE: "GENERATE AC",
    0x82: "EXTERNAL AUTHENTICATE",
    0xC0: "GET RESPONSE",
    0x1E: "APPLICATION BLOCK",
    0x18: "APPLICATION UNBLOCK",
    0x16: "CARD BLOCK",
    0x24: "PIN CHANGE/UNBLOCK",
    0xDA: "PUT DATA",
    0xDC: "UPDATE RECORD",
}


def _mask_value_hex(tag: int, value: bytes) -> str:
    text = value.hex().upper()
    if tag == 0x5A:
        masked = mask_pan(text)
        return masked + "F" * (len(text) - len(masked))
    if tag in (0x57, 0x9F6B):
        pan, sep, rest = text.partition("D")
        return mask_pan(pan) + sep + "*" * len(rest) if sep else "*" * len(text)
    return "*" * len(text)


def mask_tlv_hex(data: bytes) -> str | None:
    """Hex of BER-TLV data with sensitive primitives masked in place, or ``None`` if not TLV.

    Tags, lengths and padding keep their hex; each primitive value is replaced by its masked
    rendering at the offset :func:`terminal.tlv.decode` reports, so lengths are unchanged.
    """
    try:
        objects = decode(data)
    except TlvError:
        return None
    out = data.hex().upper()
    for obj in iter_tlvs(objects):
        if obj.children is None and obj.value:
            start = 2 * obj.offset
            stop = start + 2 * len(obj.value)
            out = out[:start] + _mask_primitive(obj.tag, obj.value) + out[stop:]
    return out


#: VERIFY (PIN block or enciphered PIN data) and the PIN CHANGE/UNBLOCK script command
#: (an enciphered new PIN block and its MAC, Book 3, 6.5.10): data never shown.
_PIN_COMMANDS = frozenset((0x20, 0x24))

_DIGIT_RUN = re.compile(r"[0-9]{12,}")
_TEXT_FORMATS = frozenset((tags.Format.A, tags.Format.AN, tags.Format.ANS))


def _mask_primitive(tag: int, value: bytes) -> str:
    """Masked hex of one primitive value (see the module docstring)."""
    if tags.is_sensitive(tag):
        return _mask_value_hex(tag, value)
    text = value.hex().upper()
    info = tags.lookup(tag)
    if info is None or not info.min_len <= len(value) <= info.max_len:
        return _hide_digit_runs(text)
    if info.fmt in _TEXT_FORMATS and all(0x20 <= b <= 0x7E for b in value):
        return text  # printable text: hex nibbles of ASCII are not digits of a number
    return _hide_digit_runs(text, luhn_only=True)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _holds_pan(run: str) -> bool:
    """True when some 12-19 digit window of ``run`` could be a PAN: it passes the Luhn check
    and does not start with 0 (ISO/IEC 7812-1: card PANs have a major industry identifier 1-9).
    """
    for size in range(12, min(19, len(run)) + 1):
        for start in range(len(run) - size + 1):
            if run[start] != "0" and _luhn_ok(run[start : start + size]):
                return True
    return False


def _hide_digit_runs(text: str, *, luhn_only: bool = False) -> str:
    """Hide every run of 12+ decimal nibbles (PAN-shaped) but its first 6 and last 4.

    With ``luhn_only``, only the runs that hold a Luhn-valid 12-19 digit number.
    """

    def hide(match: re.Match[str]) -> str:
        run = match.group(0)
        if luhn_only and not _holds_pan(run):
            return run
        return run[:6] + "*" * (len(run) - 10) + run[-4:]

    return _DIGIT_RUN.sub(hide, text)


def mask_unstructured_hex(data: bytes) -> str:
    """Masked hex of bytes whose structure is unknown (not BER-TLV, or a malformed APDU).

    :func:`terminal.masking.mask_apdu_hex` hides PAN/track-2 shaped objects; any remaining run
    of 12 or more decimal nibbles is hidden too, since a broken record may carry a PAN outside
    any recognisable object.
    """
    return _hide_digit_runs(mask_apdu_hex(data))


def mask_rapdu_hex(rapdu: bytes) -> str:
    """Masked hex of an R-APDU (data + SW1 SW2)."""
    if len(rapdu) < 2:
        return rapdu.hex().upper()
    body, sw = rapdu[:-2], rapdu[-2:].hex().upper()
    masked = mask_tlv_hex(body) if body else ""
    if masked is None:
        masked = mask_unstructured_hex(body)
    return masked + sw


class Tracer:
    """Collects masked :class:`TraceEntry` values; pass :meth:`hook` to ``exchange``."""

    def __init__(self) -> None:
        self.entries: list[TraceEntry] = []
        #: Physical exchanges seen so far (GET RESPONSE included), recorded or not.
        self.exchanges = 0
        self._dol: list[DolEntry] | None = None

    def expect_dol(self, dol: list[DolEntry] | None) -> None:
        """Mask the next command's data by this DOL (sensitive entries hidden)."""
        self._dol = dol

    def hook(self, capdu: bytes, rapdu: bytes, seconds: float) -> None:
        """Record one physical exchange (the transport's trace hook)."""
        self.exchanges += 1
        ins = capdu[1] if len(capdu) > 1 else -1
        name = COMMAND_NAMES.get(ins, f"INS {ins:02X}" if ins >= 0 else "?")
        sw = int.from_bytes(rapdu[-2:], "big") if len(rapdu) >= 2 else 0
        self.entries.append(
            TraceEntry(name, self._mask_capdu(capdu, ins), mask_rapdu_hex(rapdu), sw, seconds * 1e3)
        )
        self._dol = None

    def _mask_capdu(self, capdu: bytes, ins: int) -> str:
        if len(capdu) <= 5:
            return capdu.hex().upper()
        header = capdu[:5].hex().upper()
        lc = capdu[4]
        data = capdu[5 : 5 + lc]
        tail = capdu[5 + lc :].hex().upper()
        if ins in _PIN_COMMANDS:
            return header + "*" * (2 * len(data)) + tail
        if ins == 0xA4:  # SELECT carries a DF name (AID or PSE/PPSE name), never card data
            return capdu.hex().upper()
        if self._dol is not None:
            parts: list[str] = []
            pos = 0
            if ins == 0xA8 and len(data) >= 2 and data[0] == 0x83:
                skip = 3 if data[1] == 0x81 else 2
                parts.append(data[:skip].hex().upper())
                pos = skip
            for tag, length in self._dol:
                chunk = data[pos : pos + length]
                sensitive = tags.is_sensitive(tag)
                parts.append("*" * (2 * len(chunk)) if sensitive else chunk.hex().upper())
                pos += length
            parts.append(data[pos:].hex().upper())
            # GPO wraps its DOL data in tag 83: the wrapper stays visible, masked by DOL inside.
            return header + "".join(parts) + tail
        return mask_unstructured_hex(capdu)


class NoTrace(Tracer):
    """A tracer that counts the exchanges and records none (``trace=False``, module docstring):
    ``entries`` stays empty."""

    def expect_dol(self, dol: list[DolEntry] | None) -> None:
        """Nothing to mask: nothing is recorded."""

    def hook(self, capdu: bytes, rapdu: bytes, seconds: float) -> None:
        """Count one physical exchange."""
        self.exchanges += 1


def tracer(trace: bool) -> Tracer:
    """A :class:`Tracer` when ``trace``, else a :class:`NoTrace`."""
    return Tracer() if trace else NoTrace()
