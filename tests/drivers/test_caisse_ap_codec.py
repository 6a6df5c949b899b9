"""Caisse-AP (Concert V3) codec: fields, requests, answers, stream scanning, fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocols import caisse_ap as cap
from drivers.protocols.errors import ProtocolError

PAN = "4970101234567894"


def test_field_format_version_example() -> None:
    assert cap.parse_fields(b"CZ0040320") == [("CZ", "0320")]
    assert cap.encode_fields([("CZ", "0320"), ("CB", "2500")]) == b"CZ0040320CB0042500"
    assert cap.parse_fields(b"") == []
    assert cap.parse_fields(b"XY000") == [("XY", "")]


def test_request_every_field() -> None:
    req = cap.CaisseApRequest(action=cap.ACTION_REFUND, amount=2500, pos_number=3,
                              currency="978", protocol_id="323540032810", immediate=True,
                              private="order-17", extra=(("CK", "100"),))
    body = cap.encode_request(req)
    # Optional fields before the last mandatory ones: CE closes the request.
    assert body == (b"CZ0040320CJ012323540032810CA00203BA0011CF008order-17CK003100"
                    b"CB0042500CD0011CE003978")
    assert cap.decode_request(body) == req


def test_small_amount_has_two_digits() -> None:
    assert b"CB00205" in cap.encode_request(cap.CaisseApRequest(action="0", amount=5))


@pytest.mark.parametrize(("change", "tag"), [
    ({"version": "32"}, "CZ"), ({"protocol_id": "1"}, "CJ"), ({"pos_number": 100}, "CA"),
    ({"amount": -1}, "CB"), ({"action": "00"}, "CD"), ({"currency": "EUR"}, "CE"),
    ({"private": ""}, "CF"),
])
def test_request_checks(change: dict[str, object], tag: str) -> None:
    fields: dict[str, object] = {"action": "0", **change}
    with pytest.raises(ProtocolError) as info:
        cap.encode_request(cap.CaisseApRequest(**fields))  # type: ignore[arg-type]
    assert info.value.field == tag


def test_answer_masks_pan_and_hides_expiry_in_repr() -> None:
    body = cap.encode_answer([("AE", "10"), ("CZ", "0320"), ("CB", "2500"), ("AA", PAN),
                              ("AB", "2612"), ("AC", "A00395"), ("CI", "2")])
    assert body.startswith(b"CZ0040320")
    assert body.endswith(b"AE00210")  # the status closes the answer
    answer = cap.decode_answer(body)
    assert answer.done
    assert answer.amount == 2500
    assert answer.get("AC") == "A00395"
    assert answer.get("AA") == "497010******7894"
    assert PAN not in repr(answer)
    assert "2612" not in repr(answer)


def test_answer_not_done() -> None:
    answer = cap.decode_answer(b"CZ0040320AE00201AF00204")
    assert not answer.done
    assert answer.status == cap.STATUS_NOT_DONE
    assert answer.get("AF") == "04"
    assert answer.amount is None


@pytest.mark.parametrize(("data", "tag", "offset"), [
    (b"CZ0040320", "AE", 9),            # no status
    (b"AE0021", "AE", 6),               # truncated value
    (b"AE00", "AE", 4),                 # truncated length
    (b"A", "tag", 1),                   # truncated tag
    (b"ae00210", "tag", 0),             # lower-case tag
    (b"AE0x210", "AE", 3),              # non-digit length
    (b"AE002\x0010", "AE", 5),          # control byte in value
    (b"AE00210CB003x12", "CB", None),   # non-digit amount
    (b"AE0021X", "AE", None),           # status not digits
])
def test_answer_errors(data: bytes, tag: str, offset: int | None) -> None:
    with pytest.raises(ProtocolError) as info:
        cap.decode_answer(data)
    assert info.value.field == tag
    assert info.value.offset == offset


def test_scan_stops_at_incomplete_field_and_split_messages() -> None:
    one = cap.encode_answer([("CZ", "0320"), ("AE", "10")])
    fields, used = cap.scan_fields(one + one + b"CZ00403")
    assert used == 2 * len(one)
    messages = cap.split_messages(fields)
    assert len(messages) == 2
    assert messages[0] == messages[1]


def test_request_missing_mandatory_tag() -> None:
    with pytest.raises(ProtocolError) as info:
        cap.decode_request(b"CZ0040320CA00201")
    assert info.value.field == "CJ"


@settings(max_examples=2500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parsers_raise_only_protocol_error(data: bytes) -> None:
    for parse in (cap.decode_answer, cap.decode_request, cap.parse_fields):
        with contextlib.suppress(ProtocolError):
            parse(data)


_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
_tags = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), min_size=2,
                max_size=2)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(_tags, _values), max_size=12))
def test_fields_round_trip(fields: list[tuple[str, str]]) -> None:
    assert cap.parse_fields(cap.encode_fields(fields)) == fields
