"""Tests of the EMV data dictionary (terminal.tags)."""

from __future__ import annotations

import json

import pytest

from terminal import tags, tlv
from terminal.dol import build_dol
from terminal.tags import TAGS, Format, Source, TagInfo, lookup, name_of
from tests.conftest import conformance_path, load_conformance

ALL_ENTRIES: tuple[TagInfo, ...] = tags._EMV + tags._CONTACTLESS + tags._KERNEL2


def _tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def _is_valid_ber_tag(tag: int) -> bool:
    """BER tag rules (ISO/IEC 8825-1, 8.1.2; EMV Book 3, Annex B1)."""
    raw = _tag_bytes(tag)
    if len(raw) == 1:
        return raw[0] & 0x1F != 0x1F
    if raw[0] & 0x1F != 0x1F or len(raw) > 4:
        return False
    if raw[1] == 0x80:  # leading zero bits in the tag number
        return False
    *middle, last = raw[1:]
    return all(b & 0x80 for b in middle) and not last & 0x80


def test_no_duplicate_tags() -> None:
    main = tags._EMV + tags._CONTACTLESS
    assert len({e.tag for e in main}) == len(main)
    assert len({e.tag for e in tags._KERNEL2}) == len(tags._KERNEL2)
    assert set(TAGS) == {e.tag for e in main}
    assert all(TAGS[t].tag == t for t in TAGS)


@pytest.mark.parametrize("info", ALL_ENTRIES, ids=lambda i: f"{i.tag:X}")
def test_entry_is_consistent(info: TagInfo) -> None:
    assert _is_valid_ber_tag(info.tag)
    assert info.constructed == bool(_tag_bytes(info.tag)[0] & 0x20)
    assert 0 <= info.min_len <= info.max_len
    assert isinstance(info.fmt, Format)
    assert isinstance(info.source, Source)
    assert info.name
    assert not info.name.startswith("Unknown")
    for template in info.template:
        assert template in TAGS, f"{template:X}"
        # '80' (format 1 response) is a template in EMV's words but a primitive BER object.
        assert TAGS[template].constructed or template == 0x80
    if info.digits is not None:
        assert info.fmt in (Format.N, Format.CN)
        assert info.max_len == (info.digits + 1) // 2


def test_kernel2_overrides_only_tags_of_the_main_table() -> None:
    for entry in tags._KERNEL2:
        assert entry.tag in TAGS
        assert TAGS[entry.tag].name != entry.name


@pytest.mark.parametrize(
    ("tag", "fmt", "lo", "hi", "digits", "source"),
    [
        (0x9F02, Format.N, 6, 6, 12, Source.TERMINAL),
        (0x9F03, Format.N, 6, 6, 12, Source.TERMINAL),
        (0x5A, Format.CN, 0, 10, 19, Source.ICC),
        (0x57, Format.B, 0, 19, None, Source.ICC),
        (0x9F37, Format.B, 4, 4, None, Source.TERMINAL),
        (0x95, Format.B, 5, 5, None, Source.TERMINAL),
        (0x9A, Format.N, 3, 3, 6, Source.TERMINAL),
        (0x9F1A, Format.N, 2, 2, 3, Source.TERMINAL),
        (0x5F2A, Format.N, 2, 2, 3, Source.TERMINAL),
        (0x9F19, Format.N, 6, 6, 11, Source.ICC),
        (0x9C, Format.N, 1, 1, 2, Source.TERMINAL),
        (0x9F21, Format.N, 3, 3, 6, Source.TERMINAL),
        (0x9F26, Format.B, 8, 8, None, Source.ICC),
        (0x9F27, Format.B, 1, 1, None, Source.ICC),
        (0x9F36, Format.B, 2, 2, None, Source.ICC),
        (0x82, Format.B, 2, 2, None, Source.ICC),
        (0x8E, Format.B, 10, 252, None, Source.ICC),
        (0x9F10, Format.B, 0, 32, None, Source.ICC),
        (0x9F33, Format.B, 3, 3, None, Source.TERMINAL),
        (0x9F40, Format.B, 5, 5, None, Source.TERMINAL),
        (0x9F35, Format.N, 1, 1, 2, Source.TERMINAL),
        (0x5F24, Format.N, 3, 3, 6, Source.ICC),
        (0x5F34, Format.N, 1, 1, 2, Source.ICC),
        (0x50, Format.ANS, 1, 16, None, Source.ICC),
        (0x4F, Format.B, 5, 16, None, Source.ICC),
        (0x9F1C, Format.AN, 8, 8, None, Source.TERMINAL),
        (0x8A, Format.AN, 2, 2, None, Source.ISSUER),
        (0x91, Format.B, 8, 16, None, Source.ISSUER),
        (0x5F20, Format.ANS, 2, 26, None, Source.ICC),
        (0x9F20, Format.CN, 0, 16, None, Source.ICC),
        (0x9F15, Format.N, 2, 2, 4, Source.TERMINAL),
        (0x9F66, Format.B, 4, 4, None, Source.TERMINAL),
        (0x9F6C, Format.B, 2, 2, None, Source.ICC),
        (0x9F6E, Format.B, 4, 4, None, Source.ICC),
        (0x9F2A, Format.B, 1, 8, None, Source.ICC),
        (0xDF8104, Format.N, 6, 6, 12, Source.TERMINAL),
        (0xDF8124, Format.N, 6, 6, 12, Source.TERMINAL),
        (0xDF8129, Format.B, 8, 8, None, Source.TERMINAL),
        (0x9F24, Format.AN, 29, 29, None, Source.ICC),
        (0x5F55, Format.A, 2, 2, None, Source.ICC),
    ],
)
def test_well_known_entries(
    tag: int, fmt: Format, lo: int, hi: int, digits: int | None, source: Source
) -> None:
    info = lookup(tag)
    assert info is not None
    assert (info.fmt, info.min_len, info.max_len, info.digits, info.source) == (
        fmt, lo, hi, digits, source
    )


def test_templates_and_names() -> None:
    assert TAGS[0x9F26].template == (0x77, 0x80)
    assert TAGS[0x5A].template == (0x70, 0x77)
    assert TAGS[0x4F].template == (0x61,)
    assert TAGS[0xBF0C].constructed
    assert TAGS[0xBF0C].template == (0xA5,)
    assert all(TAGS[t].constructed for t in (0x61, 0x6F, 0x70, 0x71, 0x72, 0x73, 0x77, 0xA5))
    assert not TAGS[0x80].constructed  # format 1 response is a primitive object
    assert TAGS[0xFF8105].constructed
    assert name_of(0x9F02) == "Amount, Authorised (Numeric)"
    assert name_of(0x9F2A) == "Kernel Identifier"


def test_sensitive_tags_are_exactly_the_card_data() -> None:
    expected = {
        0x56, 0x57, 0x5A, 0x5F20, 0x5F53, 0x99, 0x9F0B, 0x9F1F, 0x9F20, 0x9F6B,
        0xDF812A, 0xDF812B,
    }
    assert expected == tags.SENSITIVE_TAGS
    # Bit maps and counters of the mag-stripe mode are not card data.
    for tag in (0x9F62, 0x9F63, 0x9F64, 0x9F65, 0x9F66, 0x9F67, 0x9F26, 0x5F34, 0x9F24):
        assert not tags.is_sensitive(tag)
        assert not tags.is_sensitive(tag, kernel=2)
    assert tags.is_sensitive(0x5A)
    assert not tags.is_sensitive(0x9F7F00)


def test_unknown_tags() -> None:
    assert lookup(0x9F7F00) is None
    assert lookup(0x01) is None
    assert name_of(0xDF8199) == "Unknown tag DF8199"
    assert name_of(0x01) == "Unknown tag 01"
    assert name_of(0x9F9F) == "Unknown tag 9F9F"


def test_kernel_specific_meanings() -> None:
    assert name_of(0x9F66) == "Terminal Transaction Qualifiers (TTQ)"
    assert name_of(0x9F66, kernel=2) == "PUNATC (Track2)"
    assert name_of(0x9F69, kernel=2) == "UDOL"
    k2 = lookup(0x9F5D, kernel=2)
    assert k2 is not None
    assert (k2.fmt, k2.max_len) == (Format.B, 3)
    assert lookup(0x9F5D, kernel=3) is TAGS[0x9F5D]
    assert lookup(0x9F02, kernel=2) is TAGS[0x9F02]  # falls back to the common table


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        TAGS[0x9F02] = TAGS[0x9F03]  # type: ignore[index]


def test_dol_vectors_use_the_dictionary_formats() -> None:
    """The DOL padding rules of Book 3, 5.4 depend on the formats in this table."""
    for vector in load_conformance("emv", "dol_cvm_vectors.json"):
        if "dol" not in vector:
            continue
        sources = [
            {int(k, 16): bytes.fromhex(v) for k, v in src.items()}
            for src in vector["sources_in_priority_order"]
        ]
        got = build_dol(bytes.fromhex(vector["dol"]), *sources)
        assert got.hex().upper() == vector["expected_data"], vector["id"]


def _walk(objects: list[tlv.Tlv] | tuple[tlv.Tlv, ...]) -> list[tlv.Tlv]:
    out: list[tlv.Tlv] = []
    for obj in objects:
        out.append(obj)
        if obj.children:
            out.extend(_walk(obj.children))
    return out


def test_every_tag_of_the_contactless_traces_is_known() -> None:
    """Every object in six real-card transcripts is in the table with a valid length."""
    folder = conformance_path("emv", "contactless_traces")
    files = sorted(folder.glob("*.json"))
    assert len(files) >= 6
    checked = 0
    for path in files:
        kernel = 2 if "msc" in path.name else 3
        for exchange in json.loads(path.read_text())["apdus"]:
            body = bytes.fromhex(exchange["resp"])[:-2]
            if not body:
                continue
            for obj in _walk(tlv.decode(body)):
                info = lookup(obj.tag, kernel)
                assert info is not None, f"{path.name}: {obj.tag:X}"
                assert info.constructed == obj.constructed
                if not info.constructed:
                    assert info.min_len <= len(obj.value) <= info.max_len, (
                        f"{path.name}: {obj.tag:X} length {len(obj.value)}"
                    )
                checked += 1
    assert checked > 200
