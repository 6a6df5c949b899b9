"""Data Object Lists: parsing and building (EMV 4.4 Book 3, 5.4).

A DOL (PDOL 9F38, CDOL1 8C, CDOL2 8D, DDOL 9F49, TDOL 97) is a list of tag + length pairs with no
values. The terminal answers with the concatenated values, each fitted to the requested length:

* a tag the terminal does not know, or a constructed tag, gives that many ``00`` bytes;
* a value longer than requested is truncated: format ``n`` keeps its rightmost bytes, every other
  format keeps its leftmost bytes;
* a value shorter than requested is padded: ``n`` with leading ``00``, ``cn`` with trailing
  ``FF``, every other format with trailing ``00``;
* a zero length gives nothing.

The format comes from the tag dictionary (:mod:`terminal.tags`); unknown tags are treated as ``b``.
"""

from __future__ import annotations

from collections.abc import Mapping

from terminal import tags
from terminal.errors import DolError
from terminal.tlv import is_constructed

__all__ = ["DolEntry", "build_dol", "dol_length", "fit_value", "parse_dol"]

DolEntry = tuple[int, int]
"""One DOL entry: (tag, length in bytes)."""


def parse_dol(data: bytes) -> list[DolEntry]:
    """Parse a DOL into ``(tag, length)`` pairs (Book 3, 5.4).

    Raises:
        DolError: on a truncated tag or length, or a length in the long form beyond one byte.
    """
    entries: list[DolEntry] = []
    end = len(data)
    i = 0
    while i < end:
        start = i
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            while True:
                if i >= end:
                    raise DolError("truncated tag in DOL", offset=start, tag=tag)
                b = data[i]
                tag = (tag << 8) | b
                i += 1
                if not b & 0x80:
                    break
                if i - start >= 4:
                    raise DolError("tag longer than four bytes in DOL", offset=start)
        if i >= end:
            raise DolError("DOL entry has no length", offset=start, tag=tag)
        length = data[i]
        i += 1
        if length & 0x80:
            # Long-form lengths are not used in DOLs; accept 81 xx, reject anything else.
            if length != 0x81 or i >= end:
                raise DolError("unsupported length form in DOL", offset=i - 1, tag=tag)
            length = data[i]
            i += 1
        entries.append((tag, length))
    return entries


def dol_length(entries: list[DolEntry]) -> int:
    """Total length of the data a DOL asks for."""
    return sum(length for _, length in entries)


def fit_value(tag: int, value: bytes, length: int) -> bytes:
    """Truncate or pad ``value`` to ``length`` by the format of ``tag`` (Book 3, 5.4)."""
    have = len(value)
    if have == length:
        return value
    info = tags.lookup(tag)
    fmt = info.fmt.value if info is not None else "b"
    if have > length:
        return value[have - length :] if fmt == "n" else value[:length]
    pad = length - have
    if fmt == "n":
        return bytes(pad) + value
    if fmt == "cn":
        return value + b"\xff" * pad
    return value + bytes(pad)


def build_dol(dol: bytes | list[DolEntry], *sources: Mapping[int, bytes]) -> bytes:
    """Build the data a DOL asks for from value sources, the first source holding a tag winning.

    Args:
        dol: The raw DOL or its parsed entries.
        *sources: Mappings of tag to value, in priority order.

    Returns:
        The concatenated, fitted values.
    """
    entries = parse_dol(dol) if isinstance(dol, bytes | bytearray) else dol
    out = bytearray()
    for tag, length in entries:
        if length == 0:
            continue
        value = None
        if not is_constructed(tag):
            for source in sources:
                value = source.get(tag)
                if value is not None:
                    break
        out += bytes(length) if value is None else fit_value(tag, value, length)
    return bytes(out)

