"""Human-readable renderings of TLV data with tag names, card data masked (for CLIs and traces)."""

from __future__ import annotations

from collections.abc import Iterable

from terminal import tags
from terminal.masking import masked_value
from terminal.tlv import Tlv

__all__ = ["describe_tlvs", "tlv_to_json"]

_TEXT_FORMATS = {tags.Format.AN, tags.Format.ANS, tags.Format.A}


def describe_tlvs(
    tlvs: Iterable[Tlv], indent: int = 0, *, masked_hex: str | None = None
) -> list[str]:
    """One line per object: tag, name, length and the (masked) value; children indented.

    Args:
        tlvs: Decoded objects.
        indent: Starting indentation level.
        masked_hex: The hex the objects were decoded from, when it was masked before decoding
            (masked nibbles ``*`` decoded as zeros): values are then shown from it, so a masked
            nibble never shows as a made-up digit.
    """
    lines: list[str] = []
    pad = "  " * indent
    for obj in tlvs:
        name = tags.name_of(obj.tag)
        if obj.children is not None:
            lines.append(f"{pad}{obj.tag:02X} {name} ({len(obj.value)} bytes)")
            lines.extend(describe_tlvs(obj.children, indent + 1, masked_hex=masked_hex))
            continue
        shown = masked_value(obj.tag, obj.value)
        original = None
        if masked_hex is not None and obj.offset >= 0:
            original = masked_hex[2 * obj.offset : 2 * (obj.offset + len(obj.value))]
            if "*" in original and not tags.is_sensitive(obj.tag):
                shown = original
        info = tags.lookup(obj.tag)
        text = ""
        if (
            info is not None
            and info.fmt in _TEXT_FORMATS
            and not info.sensitive
            and (original is None or "*" not in original)
        ):
            printable = obj.value.decode("latin-1")
            if printable.isprintable():
                text = f' "{printable}"'
        lines.append(f"{pad}{obj.tag:02X} {name} [{len(obj.value)}]: {shown}{text}")
    return lines


def tlv_to_json(tlvs: Iterable[Tlv]) -> list[dict[str, object]]:
    """A JSON-safe tree: tag, name, value (masked where sensitive) or children."""
    out: list[dict[str, object]] = []
    for obj in tlvs:
        item: dict[str, object] = {"tag": f"{obj.tag:02X}", "name": tags.name_of(obj.tag)}
        if obj.children is not None:
            item["children"] = tlv_to_json(obj.children)
        else:
            item["value"] = masked_value(obj.tag, obj.value)
        out.append(item)
    return out
