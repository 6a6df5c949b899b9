"""Masking of card data for anything printable: traces, logs, pages, exceptions.

ARCHITECTURE.md, card data: a full PAN, track-2 equivalent, CVV, PIN or PIN block never appears
in clear. A displayed PAN shows at most its first 6 and last 4 digits (PCI DSS 3.4).
"""

from __future__ import annotations

from terminal import tags

__all__ = ["mask_apdu_hex", "mask_pan", "mask_track2", "masked_value"]


def mask_pan(pan: str) -> str:
    """Keep the first 6 and last 4 digits of a PAN, ``*`` for the rest (at least 4 hidden)."""
    digits = pan.rstrip("Ff")
    if len(digits) < 14:
        # Too short to show 10 digits and still hide enough: show the last 4 only.
        return "*" * max(0, len(digits) - 4) + digits[-4:]
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_track2(track2_hex: str) -> str:
    """Mask a track-2 equivalent (tag 57): masked PAN, then the separator; the rest hidden."""
    text = track2_hex.upper()
    pan, sep, _rest = text.partition("D")
    return mask_pan(pan) + (sep + "****" if sep else "")


def masked_value(tag: int, value: bytes) -> str:
    """A printable rendering of a value, masked when the tag carries card data.

    Args:
        tag: The tag of the value.
        value: The raw value.

    Returns:
        Hex for ordinary data; a masked PAN for ``5A``; a masked track 2 for ``57``/``9F6B``;
        ``<N bytes hidden>`` for any other sensitive tag.
    """
    if tag == 0x5A:
        return mask_pan(value.hex().upper())
    if tag in (0x57, 0x9F6B):
        return mask_track2(value.hex())
    if tags.is_sensitive(tag):
        return f"<{len(value)} bytes hidden>"
    return value.hex().upper()


def mask_apdu_hex(apdu: bytes) -> str:
    """Hex of an APDU for a trace, with every byte run shaped like a PAN or track 2 hidden.

    Scans at every byte offset for ``5A`` + length 6..10 + BCD digits (optionally F-padded) and
    for ``57``/``9F6B`` + length 8..19 + BCD digits with a ``D`` separator, so it is safe even when
    the APDU's structure is unknown. Hidden digits become ``*``; lengths and tags stay visible.
    """
    hexed = list(apdu.hex().upper())
    n = len(apdu)
    for i in range(n - 2):
        tag = apdu[i]
        if tag == 0x5A:
            length = apdu[i + 1]
            if 6 <= length <= 10 and i + 2 + length <= n:
                digits = apdu[i + 2 : i + 2 + length].hex().upper().rstrip("F")
                if digits.isdigit():
                    _hide(hexed, i + 2, length, keep_first=6, keep_last=4, digits=len(digits))
        elif tag == 0x57:
            length = apdu[i + 1]
            if 8 <= length <= 19 and i + 2 + length <= n:
                body = apdu[i + 2 : i + 2 + length].hex().upper()
                pan, sep, _ = body.partition("D")
                if sep and pan.isdigit() and len(pan) >= 12:
                    _hide(hexed, i + 2, length, keep_first=6, keep_last=0, digits=len(pan))
    return "".join(hexed)


def _hide(
    hexed: list[str], start: int, length: int, *, keep_first: int, keep_last: int, digits: int
) -> None:
    """Replace nibbles of ``length`` bytes from byte ``start``, keeping a PAN's edges."""
    first = start * 2
    for k in range(length * 2):
        keep = k < keep_first or (keep_last and digits - keep_last <= k < digits)
        if not keep and hexed[first + k] != "D":
            hexed[first + k] = "*"
