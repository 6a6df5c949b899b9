"""BER-TLV codec (EMV 4.4 Book 3, Annex B)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.errors import EmvError
from terminal.tlv import (
    MAX_DEPTH,
    Tlv,
    TlvError,
    decode,
    encode,
    encode_length,
    encode_tlvs,
    find,
    find_all,
    flatten,
    is_constructed,
    tag_bytes,
)

# Hypothesis example counts demanded by the foundation issue (run in CI).
ROUNDTRIP_EXAMPLES = 10_000
FUZZ_EXAMPLES = 10_000


def test_annex_b1_multi_byte_tags() -> None:
    objs = decode(bytes.fromhex("9F02060000000010005F2A020978DF810C0102"))
    assert [o.tag for o in objs] == [0x9F02, 0x5F2A, 0xDF810C]
    assert objs[0].value == bytes.fromhex("000000001000")
    assert objs[2].value == b"\x02"


def test_annex_b2_long_form_lengths_one_to_three_bytes() -> None:
    for n in (0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000):
        raw = encode(0x70, bytes(n)) if n < 0x10000 else encode(0xC1, bytes(n))
        (obj,) = decode(raw)
        assert len(obj.value) == n
    assert encode_length(0x80) == b"\x81\x80"
    assert encode_length(0x1234) == b"\x82\x12\x34"
    assert encode_length(0x123456) == b"\x83\x12\x34\x56"


def test_annex_b_constructed_templates_decode_recursively() -> None:
    fci = bytes.fromhex(
        "6F2D840E325041592E5359532E4444463031A51BBF0C1861164F07A0000000031010"
        "500B56495341204352454449549000"[:-4]
    )
    (obj,) = decode(fci)
    assert obj.tag == 0x6F and obj.constructed
    aid = find(decode(fci), 0x4F)
    assert aid is not None and aid.value == bytes.fromhex("A0000000031010")
    label = find(decode(fci), 0x50)
    assert label is not None and label.value == b"VISA CREDIT"
    assert flatten(decode(fci))[0x84] == b"2PAY.SYS.DDF01"


def test_annex_b_padding_00_and_ff_between_objects_is_skipped() -> None:
    raw = bytes.fromhex("00005F2A020978FFFF9A03240217FF00")
    assert [(o.tag, o.value.hex()) for o in decode(raw)] == [(0x5F2A, "0978"), (0x9A, "240217")]
    # Padding inside a template too (records are often padded).
    (rec,) = decode(bytes.fromhex("70085F2A020978000000"))
    assert rec.children is not None and [c.tag for c in rec.children] == [0x5F2A]


def test_roundtrip_of_a_record_template() -> None:
    rec = Tlv(0x70, b"", (Tlv(0x5F24, b"\x30\x12\x31"), Tlv(0x8C, bytes(21))))
    (back,) = decode(rec.encode())
    assert back.encode() == rec.encode()
    assert [c.tag for c in back.children or ()] == [0x5F24, 0x8C]


@pytest.mark.parametrize(
    ("hexdata", "offset", "tag", "words"),
    [
        ("9F", 0, 0x9F, "truncated tag"),
        ("9F02", 2, 0x9F02, "missing length"),
        ("5A80", 1, 0x5A, "indefinite"),
        ("5A84000000010000", 1, 0x5A, "length bytes"),
        ("5A82", 1, 0x5A, "truncated length"),
        ("5A0511223344", 0, 0x5A, "runs past the end"),
        ("70035A0211", 2, 0x5A, "runs past the end"),
        ("9F8181818101", 0, None, "longer than four"),
    ],
)
def test_malformed_input_raises_typed_error_with_offset_and_tag(
    hexdata: str, offset: int, tag: int | None, words: str
) -> None:
    with pytest.raises(TlvError) as info:
        decode(bytes.fromhex(hexdata))
    assert info.value.offset == offset
    assert info.value.tag == tag
    assert words in str(info.value)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    raw = b""
    for _ in range(MAX_DEPTH + 5):
        raw = encode(0x70, raw)
    with pytest.raises(TlvError, match="nested deeper"):
        decode(raw)
    # Thousands of levels (lengths in long form) still end in the typed error.
    raw = b"\x01"
    for _ in range(3000):
        raw = b"\x70" + encode_length(len(raw)) + raw
    with pytest.raises(TlvError):
        decode(raw)


def test_helpers() -> None:
    assert tag_bytes(0x9F02) == b"\x9f\x02" and tag_bytes(0x5A) == b"\x5a"
    assert is_constructed(0x70) and is_constructed(0xBF0C) and not is_constructed(0x9F02)
    objs = decode(encode_tlvs([(0x70, encode(0x5A, b"\x01")), (0x5A, b"\x02")]))
    assert [o.value for o in find_all(objs, 0x5A)] == [b"\x01", b"\x02"]
    assert "01" not in repr(objs[1]) and "1 bytes" in repr(objs[1])


# --- properties ---------------------------------------------------------------------------


def _tag_strategy(constructed: bool) -> st.SearchStrategy[int]:
    cbit = 0x20 if constructed else 0x00

    def one_byte(first: int) -> int:
        return (first & 0xC0) | cbit | (first & 0x1F if first & 0x1F not in (0x1F,) else 0x1E)

    single = st.integers(0, 255).map(one_byte).filter(lambda t: t not in (0x00, 0xFF))
    multi = st.tuples(
        st.integers(0, 255),
        st.lists(st.integers(0x80, 0xFF), max_size=2),
        st.integers(0x01, 0x7F),
    ).map(lambda p: int.from_bytes(bytes(((p[0] & 0xC0) | cbit | 0x1F, *p[1], p[2])), "big"))
    return st.one_of(single, multi).filter(lambda t: tag_bytes(t)[0] not in (0x00, 0xFF))


_primitive = st.builds(
    Tlv,
    _tag_strategy(False),
    st.binary(max_size=24) | st.binary(min_size=126, max_size=130).map(lambda b: b * 2),
)


def _template(children: st.SearchStrategy[Tlv]) -> st.SearchStrategy[Tlv]:
    return st.builds(
        lambda tag, kids: Tlv(tag, b"".join(k.encode() for k in kids), tuple(kids)),
        _tag_strategy(True),
        st.lists(children, max_size=4),
    )


# Three levels, as EMV responses have (77 > 70 > primitives); explicit levels generate faster
# than st.recursive.
_tlv_tree = st.one_of(
    _primitive, _template(_primitive), _template(_primitive | _template(_primitive))
)


@settings(
    max_examples=ROUNDTRIP_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(_tlv_tree, max_size=5))
def test_property_encode_decode_roundtrip(objs: list[Tlv]) -> None:
    raw = encode_tlvs(objs)
    back = decode(raw)
    assert back == objs
    assert encode_tlvs(back) == raw


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(st.binary(max_size=200))
def test_property_arbitrary_bytes_raise_only_the_typed_error(data: bytes) -> None:
    try:
        objs = decode(data)
    except TlvError as exc:
        assert isinstance(exc, EmvError)
        assert exc.offset is not None and 0 <= exc.offset <= len(data)
        return
    # Whatever decodes re-encodes to the same objects once padding is taken out.
    assert _shape(decode(encode_tlvs(objs))) == _shape(objs)


def _shape(objs: tuple[Tlv, ...] | list[Tlv]) -> list[object]:
    return [(o.tag, o.value if o.children is None else _shape(o.children)) for o in objs]
