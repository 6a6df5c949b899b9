"""Concert V2 codec: frames (STX/ETX/LRC), request and answer bodies, fuzzing of the parsers."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocols import concert_v2 as cv2
from drivers.protocols.errors import ProtocolError
from drivers.protocols.link import (
    ACK,
    ENQ,
    ETX,
    STX,
    BadFrame,
    Control,
    Frame,
    FrameReader,
    decode_frame,
    encode_frame,
    lrc,
)

PAN = "4970101234567894"


def test_lrc_is_xor_after_stx_including_etx() -> None:
    frame = encode_frame(b"AB")
    assert frame == bytes([STX, 0x41, 0x42, ETX, 0x41 ^ 0x42 ^ ETX])
    assert lrc(b"") == 0
    assert decode_frame(frame) == b"AB"


def test_request_layout_every_field() -> None:
    req = cv2.PaymentRequest(amount=1250, pos_number=7, currency="840", mode="C",
                             transaction_type=cv2.TYPE_CREDIT, full_answer=False,
                             private="ref-000042", answer_at_end=False,
                             forced_authorisation=True)
    body = cv2.encode_request(req)
    assert body == b"07" b"00001250" b"0" b"C" b"1" b"840" b"ref-000042" b"A011" b"B011"
    assert len(body) == cv2.REQUEST_LENGTH
    assert cv2.decode_request(body) == req


def test_request_defaults() -> None:
    body = cv2.encode_request(cv2.PaymentRequest(amount=1))
    assert body == b"0100000001" b"1" b"1" b"0" b"978" + b" " * 10 + b"A010B010"


@pytest.mark.parametrize(("change", "field_name"), [
    ({"amount": 100_000_000}, "amount"), ({"amount": -1}, "amount"),
    ({"pos_number": 0}, "pos_number"), ({"pos_number": 100}, "pos_number"),
    ({"currency": "EUR"}, "currency"), ({"mode": "ab"}, "mode"),
    ({"transaction_type": "x"}, "transaction_type"), ({"private": "short"}, "private"),
    ({"private": "é" * 10}, "private"),
])
def test_request_fields_checked(change: dict[str, object], field_name: str) -> None:
    req = dataclasses.replace(cv2.PaymentRequest(amount=5), **change)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError) as info:
        cv2.encode_request(req)
    assert info.value.field == field_name


def test_full_answer_round_trip_and_masking() -> None:
    answer = cv2.PaymentAnswer(pos_number=1, status=0, amount=1250, mode="1", currency="978",
                               private="0000000042", card_report=f"{PAN} 1226")
    body = cv2.encode_answer(answer)
    assert len(body) == cv2.ANSWER_FULL_LENGTH
    assert body[12:28] == PAN.encode()  # a terminal may send the PAN in clear...
    decoded = cv2.decode_answer(body)
    assert decoded.approved
    assert decoded.amount == 1250
    assert decoded.private == "0000000042"
    assert decoded.card_report == "497010******7894 1226"  # ...it never leaves the codec
    assert PAN not in repr(decoded)


def test_short_answer_refused() -> None:
    answer = cv2.PaymentAnswer(pos_number=2, status=7, amount=99, mode="1", currency="978",
                               private=" " * 10)
    body = cv2.encode_answer(answer)
    assert body == b"02700000099" b"1" b"978" + b" " * 10
    decoded = cv2.decode_answer(body)
    assert decoded == answer
    assert not decoded.approved


@pytest.mark.parametrize(("body", "field_name", "offset"), [
    (b"01" + b"0" * 22, "length", 24),
    (b"0x" + b"0" * 23, "pos_number", 1),
    (b"01" + b"X" + b"0" * 22, "status", 2),
    (b"010" + b"0000A000" + b"1" + b"978" + b"0" * 10, "amount", 7),
    (b"0100000000" + b"1" + b"1" + b"97X" + b"0" * 10, "currency", 14),
    (b"0100000000" + b"1" + b"\x01" + b"978" + b"0" * 10, "body", 11),
])
def test_answer_errors_name_field_and_offset(body: bytes, field_name: str, offset: int) -> None:
    with pytest.raises(ProtocolError) as info:
        cv2.decode_answer(body)
    assert (info.value.field, info.value.offset) == (field_name, offset)


@pytest.mark.parametrize(("frame", "field_name"), [
    (b"", "length"), (b"\x02A", "length"), (b"A\x03\x42", "stx"), (b"\x02AB", "etx"),
    (b"\x02A\x03", "length"), (b"\x02A\x03\x00\x00", "length"), (b"\x02A\x03\x00", "lrc"),
    (b"\x02\x05\x03\x06", "body"),
])
def test_bad_and_truncated_frames(frame: bytes, field_name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame)
    assert info.value.field == field_name


def test_seven_bit_line_rejects_high_bytes() -> None:
    with pytest.raises(ProtocolError):
        encode_frame(b"\xc9", seven_bit=True)
    frame = encode_frame(b"\xc9")
    with pytest.raises(ProtocolError) as info:
        decode_frame(frame, seven_bit=True)
    assert info.value.offset == 1
    reader = FrameReader(seven_bit=True)
    assert isinstance(reader.feed(frame)[0], BadFrame)


def test_frame_reader_events_noise_and_resync() -> None:
    good = encode_frame(b"HELLO")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    reader = FrameReader()
    data = b"zz" + bytes([ENQ]) + bytes(bad) + good + bytes([ACK]) + b"\x02AB" + good
    events = reader.feed(data)
    assert events[0] == Control(ENQ)
    assert isinstance(events[1], BadFrame)
    assert events[1].error.field == "lrc"
    assert events[2] == Frame(b"HELLO")
    assert events[3] == Control(ACK)
    assert isinstance(events[4], BadFrame)  # interrupted by a new STX
    assert events[5] == Frame(b"HELLO")
    assert reader.noise == 2


def test_frame_reader_byte_by_byte_equals_bulk() -> None:
    data = encode_frame(b"X" * 80) + bytes([ENQ]) + encode_frame(b"Y")
    bulk = FrameReader().feed(data)
    reader = FrameReader()
    single = [ev for b in data for ev in reader.feed(bytes([b]))]
    assert bulk == single


def test_frame_reader_overflow_is_bad_frame() -> None:
    reader = FrameReader(max_body=10)
    events = reader.feed(b"\x02" + b"A" * 11)
    assert isinstance(events[0], BadFrame)
    assert events[0].error.field == "body"


@settings(max_examples=2500, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_frame_and_answer_parsers_raise_only_protocol_error(data: bytes) -> None:
    for parse in (decode_frame, cv2.decode_answer, cv2.decode_request):
        with contextlib.suppress(ProtocolError):
            parse(data)
    FrameReader(seven_bit=True).feed(data)


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 99_999_999), st.integers(1, 99), st.sampled_from("0127"),
       st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=10, max_size=10),
       st.booleans())
def test_round_trip_property(amount: int, pos: int, status: str, private: str,
                             full: bool) -> None:
    req = cv2.PaymentRequest(amount=amount, pos_number=pos, private=private, full_answer=full)
    assert cv2.decode_request(decode_frame(encode_frame(cv2.encode_request(req)))) == req
    answer = cv2.PaymentAnswer(pos_number=pos, status=int(status), amount=amount, mode="1",
                               currency="978", private=private,
                               card_report="CB 497010XXXXXX7894" if full else None)
    assert cv2.decode_answer(cv2.encode_answer(answer)) == answer
