"""Data Object Lists (EMV 4.4 Book 3, 5.4) against the public emv-utils vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.dol import build_dol, dol_length, fit_value, parse_dol
from terminal.errors import DolError
from tests.conftest import load_conformance


def _dol_vectors() -> list[dict[str, object]]:
    return [v for v in load_conformance("emv", "dol_cvm_vectors.json") if "dol" in v]


def test_conformance_vectors_present() -> None:
    assert len(_dol_vectors()) >= 2


@pytest.mark.parametrize("index", range(2))
def test_book3_5_4_conformance_vector(index: int) -> None:
    vector = _dol_vectors()[index]
    sources = [
        {int(tag, 16): bytes.fromhex(value) for tag, value in source.items()}
        for source in vector["sources_in_priority_order"]  # type: ignore[attr-defined]
    ]
    got = build_dol(bytes.fromhex(str(vector["dol"])), *sources)
    assert got.hex().upper() == vector["expected_data"]


def test_book3_5_4_numeric_truncates_left_and_pads_left() -> None:
    assert fit_value(0x9F02, bytes.fromhex("000123456789"), 3) == bytes.fromhex("456789")
    assert fit_value(0x9F02, bytes.fromhex("1000"), 6) == bytes.fromhex("000000001000")


def test_book3_5_4_compressed_numeric_pads_right_with_ff() -> None:
    assert fit_value(0x5A, bytes.fromhex("4761739001010010"), 10) == bytes.fromhex(
        "4761739001010010FFFF"
    )
    assert fit_value(0x5A, bytes.fromhex("4761739001010010"), 4) == bytes.fromhex("47617390")


def test_book3_5_4_binary_truncates_right_and_pads_right_with_zeros() -> None:
    assert fit_value(0x9F37, bytes.fromhex("DEADBEEF"), 2) == bytes.fromhex("DEAD")
    assert fit_value(0x95, bytes.fromhex("8000"), 5) == bytes.fromhex("8000000000")


def test_book3_5_4_absent_or_constructed_tag_gives_zeros() -> None:
    dol = bytes.fromhex("9F7F0470039F3704")
    assert build_dol(dol, {0x70: b"\x01\x02\x03", 0x9F37: b"\x11\x22\x33\x44"}) == bytes.fromhex(
        "0000000000000011223344"
    )


def test_parse_dol_entries_and_length() -> None:
    pdol = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
    entries = parse_dol(pdol)
    assert entries[0] == (0x9F66, 4) and entries[-1] == (0x9F37, 4)
    assert dol_length(entries) == 33


@pytest.mark.parametrize(("hexdol", "offset"), [("9F", 0), ("9F02", 0), ("9F0280", 2)])
def test_malformed_dol_raises_typed_error(hexdol: str, offset: int) -> None:
    with pytest.raises(DolError) as info:
        parse_dol(bytes.fromhex(hexdol))
    assert info.value.offset == offset


@settings(max_examples=2_000, deadline=None)
@given(
    st.binary(max_size=64),
    st.dictionaries(st.sampled_from([0x9F02, 0x5A, 0x95, 0x9F37]), st.binary(max_size=12)),
)
def test_property_dol_builds_exact_length_or_typed_error(
    dol: bytes, source: dict[int, bytes]
) -> None:
    try:
        entries = parse_dol(dol)
    except DolError:
        return
    assert len(build_dol(entries, source)) == dol_length(entries)
