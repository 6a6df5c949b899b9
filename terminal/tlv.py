"""BER-TLV codec as EMV uses it (EMV 4.4 Book 3, Annex B; ISO/IEC 8825-1).

* Tags are one or more bytes: when the low five bits of the first byte are all set, further
  bytes follow while their top bit is set (B1). Tags are handled as integers (``0x9F02``).
* Lengths are short form (one byte, 0-127) or long form ``81``-``83`` followed by one to three
  length bytes (B2). The indefinite form ``80`` is not allowed in EMV and is rejected.
* Constructed objects (bit 6 of the first tag byte) are decoded recursively.
* ``00`` and ``FF`` bytes before, between and after objects carry no meaning and are skipped
  (Annex B, "padding").

Every malformed input raises :class:`~terminal.errors.TlvError` with the offset and, where known,
the tag; no other exception escapes :func:`decode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from terminal.errors import TlvError

__all__ = [
    "MAX_DEPTH",
    "Tlv",
    "TlvError",
    "decode",
    "encode",
    "encode_length",
    "encode_tlvs",
    "find",
    "find_all",
    "flatten",
    "from_mapping",
    "is_constructed",
    "iter_tlvs",
    "tag_bytes",
]

#: Deepest nesting of constructed objects accepted; EMV templates nest at most 3-4 levels.
MAX_DEPTH = 16
_MAX_TAG_BYTES = 4


@dataclass(slots=True)
class Tlv:
    """One decoded data object (treat as immutable; not frozen because frozen construction is
    twice as slow, and decoding is on the hot path of every card response).

    Attributes:
        tag: The tag as an integer (``0x9F26``).
        value: The raw value bytes (for a constructed object: its encoded children).
        children: Decoded children of a constructed object, ``None`` for a primitive one.
        offset: Where the value starts in the decoded input (-1 for a constructed-by-hand
            object); not part of equality.
    """

    tag: int
    value: bytes
    children: tuple[Tlv, ...] | None = None
    offset: int = field(default=-1, compare=False)

    @property
    def constructed(self) -> bool:
        """True for a constructed (template) object."""
        return self.children is not None

    def encode(self) -> bytes:
        """Encode this object (children re-encoded for a constructed one)."""
        if self.children is None:
            return encode(self.tag, self.value)
        return encode(self.tag, b"".join(child.encode() for child in self.children))

    def __repr__(self) -> str:
        # Values may be card data: repr shows tag and length only.
        kind = f", {len(self.children)} children" if self.children is not None else ""
        return f"Tlv({self.tag:02X}, {len(self.value)} bytes{kind})"


def is_constructed(tag: int) -> bool:
    """True when the tag's first byte has the constructed bit (b6) set."""
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


def tag_bytes(tag: int) -> bytes:
    """The encoded bytes of an integer tag."""
    if tag < 0:
        raise TlvError("negative tag")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    """Encode a length in the short or long form (Book 3, Annex B2)."""
    if length < 0x80:
        return bytes((length,))
    if length <= 0xFF:
        return bytes((0x81, length))
    if length <= 0xFFFF:
        return bytes((0x82, length >> 8, length & 0xFF))
    if length <= 0xFFFFFF:
        return bytes((0x83, length >> 16, (length >> 8) & 0xFF, length & 0xFF))
    raise TlvError(f"length {length} does not fit three length bytes")


def encode(tag: int, value: bytes) -> bytes:
    """Encode one data object from its tag and (already encoded) value."""
    return tag_bytes(tag) + encode_length(len(value)) + bytes(value)


def encode_tlvs(items: Iterable[Tlv | tuple[int, bytes]]) -> bytes:
    """Encode a sequence of objects, given as :class:`Tlv` or ``(tag, value)`` pairs."""
    out = bytearray()
    for item in items:
        out += item.encode() if isinstance(item, Tlv) else encode(item[0], item[1])
    return bytes(out)


def decode(data: bytes, *, _base: int = 0, _depth: int = 0) -> list[Tlv]:
    """Decode a sequence of BER-TLV objects.

    Args:
        data: The encoded bytes (for example the data field of an R-APDU).

    Returns:
        The top-level objects in order; constructed ones carry their decoded children.

    Raises:
        TlvError: on an indefinite length, a truncated tag, length or value, a length beyond the
            data, a tag longer than four bytes, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if _depth > MAX_DEPTH:
        raise TlvError(f"constructed objects nested deeper than {MAX_DEPTH}", offset=_base)
    if not isinstance(data, bytes):
        data = bytes(data)
    out: list[Tlv] = []
    end = len(data)
    i = 0
    while i < end:
        first = data[i]
        if first == 0x00 or first == 0xFF:  # Annex B: padding between objects
            i += 1
            continue
        start = i
        tag = first
        i += 1
        if first & 0x1F == 0x1F:
            while True:
                if i >= end:
                    raise TlvError("truncated tag", offset=_base + start, tag=tag)
                b = data[i]
                tag = (tag << 8) | b
                i += 1
                if not b & 0x80:
                    break
                if i - start >= _MAX_TAG_BYTES:
                    raise TlvError("tag longer than four bytes", offset=_base + start)
        if i >= end:
            raise TlvError("missing length", offset=_base + i, tag=tag)
        length = data[i]
        i += 1
        if length & 0x80:
            count = length & 0x7F
            if count == 0:
                raise TlvError("indefinite length is not allowed", offset=_base + i - 1, tag=tag)
            if count > 3:
                raise TlvError(f"{count} length bytes (at most 3)", offset=_base + i - 1, tag=tag)
            if i + count > end:
                raise TlvError("truncated length", offset=_base + i - 1, tag=tag)
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        stop = i + length
        if stop > end:
            raise TlvError(
                f"length {length} runs past the end of the data ({end - i} bytes left)",
                offset=_base + start,
                tag=tag,
            )
        value = data[i:stop]
        if first & 0x20:
            children = tuple(decode(value, _base=_base + i, _depth=_depth + 1))
            out.append(Tlv(tag, value, children, _base + i))
        else:
            out.append(Tlv(tag, value, None, _base + i))
        i = stop
    return out


def iter_tlvs(tlvs: Iterable[Tlv]) -> Iterator[Tlv]:
    """Walk objects depth-first, parents before their children."""
    for obj in tlvs:
        yield obj
        if obj.children is not None:
            yield from iter_tlvs(obj.children)


def find(tlvs: Iterable[Tlv], tag: int) -> Tlv | None:
    """The first object with ``tag`` at any depth, or ``None``."""
    for obj in iter_tlvs(tlvs):
        if obj.tag == tag:
            return obj
    return None


def find_all(tlvs: Iterable[Tlv], tag: int) -> list[Tlv]:
    """Every object with ``tag`` at any depth, in order."""
    return [obj for obj in iter_tlvs(tlvs) if obj.tag == tag]


def flatten(tlvs: Iterable[Tlv], into: dict[int, bytes] | None = None) -> dict[int, bytes]:
    """Map each primitive tag to its value (first occurrence wins), at any depth."""
    result: dict[int, bytes] = {} if into is None else into
    for obj in iter_tlvs(tlvs):
        if obj.children is None and obj.tag not in result:
            result[obj.tag] = obj.value
    return result


def from_mapping(values: Mapping[int, bytes]) -> bytes:
    """Encode a mapping of primitive tags to values, in the mapping's order."""
    return encode_tlvs(values.items())
