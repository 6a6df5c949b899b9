"""The write-path guard: no clear PAN or track 2 reaches the journal outside the vault.

ARCHITECTURE.md, card data: a full PAN or a track-2 equivalent never reaches the journal in
clear. Everything the callers hand the journal as text or JSON (reasons, actors, lanes, items,
masked PANs, AIDs, auth codes) passes :func:`check_value` before it is written; a hit raises
:class:`CardDataRejected` naming the field, never the value.

What counts as a PAN (ISO/IEC 7812-1): a run of 12 to 19 digits, optionally grouped by single
spaces or dashes, whose first digit is not 0 (major industry identifier 0 is not issued to
cards; this also keeps AIDs such as ``A0000000031010`` from tripping the guard) and that passes
the Luhn check. A longer run is checked on its 12..19-digit prefixes (a PAN with something
glued after it). A track 2 (ISO/IEC 7813, tag 57): 12-19 digits, a ``D`` or ``=`` separator,
then at least 4 digits (the expiry date), whatever the Luhn result. Bytes are checked as their
hex, so a BCD-packed PAN is caught too. False positives are possible (one 12-19 digit number in
ten passes Luhn): the guard prefers refusing a write to journaling card data.

PINs and PIN blocks cannot be recognised by shape; the journal keeps them out by construction
(no field takes one, and the vault blob is opaque and encrypted).

Both shapes need twelve digits in one run, so one search for such a run (in C) lets most texts
through before any of the per-run work in Python: the guard runs on every field of every write
on the journal's thread (docs/performance.md). An integer below 10^11 in size cannot hold twelve
digits and is not turned into text at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from gateway.card_data import luhn_ok
from gateway.journal.errors import CardDataRejected, InvalidRecord

__all__ = ["check_masked_pan", "check_value", "find_card_data", "luhn_ok"]

#: Twelve digits in one run (single spaces or dashes allowed between them): the least any PAN
#: (12-19 digits) or track 2 (12-19 digits before its separator) shows.
_TWELVE_DIGITS = re.compile(r"\d(?:[ -]?\d){11}")
#: An integer whose size is below this has at most 11 digits.
_ELEVEN_DIGITS_MAX = 10**11
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d)*")
_TRACK2 = re.compile(r"\d{12,19}[D=]\d{4}", re.IGNORECASE)
_MASKED = re.compile(r"\d{0,6}\*{4,15}\d{0,4}")


def _pan_in_run(run: str) -> bool:
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < 12 or digits[0] == "0":
        return False
    if len(digits) <= 19:
        return luhn_ok(digits)
    return any(luhn_ok(digits[:n]) for n in range(12, 20))


def find_card_data(text: str) -> str | None:
    """What kind of card data ``text`` seems to hold: ``"track 2"``, ``"PAN"`` or None."""
    if _TWELVE_DIGITS.search(text) is None:  # too few digits in any run for either
        return None
    if _TRACK2.search(text):
        return "track 2"
    for match in _DIGIT_RUN.finditer(text):
        if _pan_in_run(match.group()):
            return "PAN"
    return None


def check_value(field: str, value: object) -> None:
    """Raise if ``value`` (text, number, bytes, or JSON-like nesting) holds a PAN or track 2.

    Args:
        field: The field name used in the error (JSON paths are appended: ``items[2].sku``).
        value: What is about to be written.

    Raises:
        CardDataRejected: Naming the field and the kind of data, never the value.
        InvalidRecord: A value of a type the journal does not write.
    """
    found = _scan(value)
    if found is None:
        return
    path, kind, unsupported = found
    if unsupported:
        raise InvalidRecord(field + path, f"unsupported type {kind}")
    raise CardDataRejected(field + path, kind)


#: (JSON path below the field, what was found, True when it is an unsupported type's name)
_Found = tuple[str, str, bool]


def _scan(value: object) -> _Found | None:
    """The first card data (or unsupported type) in ``value``; the path is built only then."""
    if isinstance(value, str):
        if len(value) < 12:  # twelve digits need twelve characters
            return None
        kind = find_card_data(value)
    elif value is None or isinstance(value, bool | float):
        return None
    elif isinstance(value, int):
        if -_ELEVEN_DIGITS_MAX < value < _ELEVEN_DIGITS_MAX:
            return None
        kind = find_card_data(str(value))
    elif isinstance(value, bytes | bytearray | memoryview):
        kind = find_card_data(bytes(value).hex())
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found = _scan(key)
            if found is not None:
                return (".<key>" + found[0], found[1], found[2])
            found = _scan(item)
            if found is not None:
                where = f".{key}" if isinstance(key, str) else ""
                return (where + found[0], found[1], found[2])
        return None
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            found = _scan(item)
            if found is not None:
                return (f"[{index}]" + found[0], found[1], found[2])
        return None
    else:
        return ("", type(value).__name__, True)
    return None if kind is None else ("", kind, False)


def check_masked_pan(masked: str | None) -> None:
    """Accept a PAN masked as :func:`terminal.masking.mask_pan` does: 6 + 4 digits at most.

    Raises:
        InvalidRecord: When it shows more than 10 digits, hides fewer than 4, or is not a mask.
    """
    if masked is None:
        return
    if not _MASKED.fullmatch(masked):
        raise InvalidRecord("masked_pan", "expected at most 6 + 4 digits around at least 4 '*'")
