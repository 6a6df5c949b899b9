"""Static data to be authenticated (EMV 4.4 Book 3, 10.3) and the AFL parser (10.2)."""

from __future__ import annotations

import pytest

from terminal import tlv
from terminal.errors import CardDataError
from terminal.oda import (
    OdaCheck,
    OdaFailure,
    OdaMethod,
    StaticDataCollector,
    parse_afl,
    tvr_byte1_bits,
)

h = bytes.fromhex
AIP = {0x82: h("3900")}


def test_parse_afl() -> None:
    assert parse_afl(h("08010100" "10010301" "58010200")) == [
        (1, 1, 1, 0), (2, 1, 3, 1), (11, 1, 2, 0)
    ]


@pytest.mark.parametrize(
    "afl",
    ["", "080101", "00010100", "F8010100", "09010100", "08000100", "08030200", "08010203"],
)
def test_malformed_afl_raises_card_data_error(afl: str) -> None:
    with pytest.raises(CardDataError) as info:
        StaticDataCollector(h(afl))
    assert info.value.tag == 0x94


def test_records_in_afl_order_sfi_rules_and_aip() -> None:
    # SFI 1 records 1-2 (both ODA), SFI 12 record 1 (ODA), SFI 2 record 1 (not ODA).
    collector = StaticDataCollector(h("08010202" "60010101" "10010100"))
    rec_1_1 = tlv.encode(0x70, h("5A0841111111111111119F0702FF00"))
    rec_1_2 = tlv.encode(0x70, bytes(200))  # long-form length 81 C8
    rec_12_1 = tlv.encode(0x70, h("9F4A0182"))
    # Fed out of order and with a non-ODA record in between.
    collector.add_record(12, 1, rec_12_1)
    collector.add_record(2, 1, h("6A00"))  # not for ODA: ignored, even malformed
    collector.add_record(1, 2, rec_1_2)
    collector.add_record(1, 1, rec_1_1)
    assert collector.wants(1, 2)
    assert not collector.wants(2, 1)
    static = collector.finish(h("82"), AIP)
    assert static == rec_1_1[2:] + rec_1_2[3:] + rec_12_1 + h("3900")
    assert collector.finish(None, AIP) == rec_1_1[2:] + rec_1_2[3:] + rec_12_1


def test_non_template_record_in_sfi_1_to_10_fails_oda() -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, tlv.encode(0x71, b"\x00"))
    out = collector.finish(None, AIP)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.STATIC_DATA
    assert tvr_byte1_bits(OdaMethod.SDA, out) == 0x40


@pytest.mark.parametrize("record", ["7004010203", "70", "7081", "700201", "70020102FF"])
def test_broken_template_lengths_fail(record: str) -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, h(record))
    out = collector.finish(None, AIP)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.STATIC_DATA


def test_sfi_11_to_30_records_are_taken_whole_even_if_not_70() -> None:
    collector = StaticDataCollector(h("58010101"))
    collector.add_record(11, 1, h("710101"))
    assert collector.finish(None, AIP) == h("710101")


def test_unread_oda_record_is_missing_data() -> None:
    collector = StaticDataCollector(h("08010202"))
    collector.add_record(1, 1, h("7000"))
    out = collector.finish(None, AIP)
    assert isinstance(out, OdaFailure)
    assert out.icc_data_missing
    assert tvr_byte1_bits(OdaMethod.DDA, out) == 0x28


def test_tag_list_other_than_aip_fails() -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, h("7000"))
    bad = collector.finish(h("9F36"), {0x9F36: h("0001")})
    assert isinstance(bad, OdaFailure)
    assert bad.check is OdaCheck.STATIC_DATA
    no_aip = collector.finish(h("82"), {})
    assert isinstance(no_aip, OdaFailure)
    assert no_aip.check is OdaCheck.DATA_MISSING
    assert tvr_byte1_bits(OdaMethod.CDA, None) == 0


# --- 00 padding (EMV 4.4 Book 3, Annex B) -------------------------------------------------

PADDED_OBJECTS = h("5A0841111111111111119F0702FF00")


@pytest.mark.parametrize(
    ("record", "hashed"),
    [
        # After the template: not part of it, not hashed.
        (tlv.encode(0x70, PADDED_OBJECTS) + h("000000"), PADDED_OBJECTS),
        # Before the template: the same.
        (h("0000") + tlv.encode(0x70, PADDED_OBJECTS), PADDED_OBJECTS),
        # Between the objects, inside the template: the issuer signed it, hashed as it is.
        (tlv.encode(0x70, h("5A084111111111111111" "0000" "9F0702FF00" "00")),
         h("5A084111111111111111" "0000" "9F0702FF00" "00")),
        # Both, with a long-form length.
        (tlv.encode(0x70, bytes(130) + PADDED_OBJECTS) + h("00"), bytes(130) + PADDED_OBJECTS),
    ],
    ids=["after-template", "before-template", "between-objects", "both-long-form"],
)
def test_padded_oda_record_of_sfi_1_to_10(record: bytes, hashed: bytes) -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, record)
    assert collector.finish(None, AIP) == hashed


def test_padded_oda_record_of_sfi_11_to_30_keeps_tag_and_length_drops_outer_padding() -> None:
    template = tlv.encode(0x70, PADDED_OBJECTS + h("00"))
    collector = StaticDataCollector(h("58010101"))
    collector.add_record(11, 1, h("00") + template + h("0000"))
    assert collector.finish(None, AIP) == template


def test_padding_between_oda_records_is_left_out_in_afl_order() -> None:
    # Two ODA records each followed by padding, and a padded non-ODA record between them.
    collector = StaticDataCollector(h("08010202" "10010100"))
    first = tlv.encode(0x70, h("5F24034912315F25032001010000"))
    second = tlv.encode(0x70, h("8E0A00000000000000001F00"))
    collector.add_record(1, 1, first + bytes(4))
    collector.add_record(2, 1, tlv.encode(0x70, h("57021234")) + h("00"))  # not for ODA
    collector.add_record(1, 2, second + bytes(1))
    assert collector.finish(h("82"), AIP) == first[2:] + second[2:] + h("3900")


@pytest.mark.parametrize(
    "record",
    ["70035A0100" "01", "70035A0100" "0070020000", "FF70035A0100", "70035A0100" "00FF"],
    ids=["byte-after", "second-template", "ff-before", "ff-after"],
)
def test_anything_but_00_around_the_template_still_fails(record: str) -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, h(record))
    out = collector.finish(None, AIP)
    assert isinstance(out, OdaFailure)
    assert out.check is OdaCheck.STATIC_DATA


def test_all_padding_record_is_not_a_template() -> None:
    collector = StaticDataCollector(h("08010101"))
    collector.add_record(1, 1, bytes(8))
    assert isinstance(collector.finish(None, AIP), OdaFailure)
