"""Human-readable renderings of TLV data with tag names, card data masked (for CLIs and traces)."""

from __future__ import annotations

from collections.abc import Iterable

from terminal import tags
from terminal.masking import masked_value
from terminal.tlv import Tlv

__all__ = ["describe_tlvs", "tlv_to_json"]

_TEXT_FORMATS = {tags.Format.AN, tags.Format.ANS, tags.Format.A}


def describe_tlvs(tlvs: Iterable[Tlv], indent: int = 0) -> list[str]:
    """One line per object: tag, name, length and the (masked) value; children indented."""
    lines: list[str] = []
    pad = "  " * indent
    for obj in tlvs:
        name = tags.name_of(obj.tag)
        if obj.children is not None:
            lines.append(f"{pad}{obj.tag:02X} {name} ({len(obj.value)} bytes)")
            lines.extend(describe_tlvs(obj.children, indent + 1))
            continue
        shown = masked_value(obj.tag, obj.value)
        info = tags.lookup(obj.tag)
        text = ""
        if info is not None and info.fmt in _TEXT_FORMATS and not info.sensitive:
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
