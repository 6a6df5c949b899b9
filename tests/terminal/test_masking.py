"""Card data masking (ARCHITECTURE.md, card data rules; PCI DSS 3.4 first 6 / last 4)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.masking import mask_apdu_hex, mask_pan, mask_track2, masked_value

PAN = "4761739001010010"


def test_pan_shows_first_six_and_last_four_only() -> None:
    assert mask_pan(PAN) == "476173******0010"
    assert mask_pan("5413330089020011F") == "541333******0011"
    assert mask_pan("123456789012") == "********9012"


def test_track2_hides_pan_middle_and_everything_after_separator() -> None:
    masked = mask_track2("4761739001010010D22122011143844489")
    assert masked == "476173******0010D****"


def test_sensitive_tags_never_render_in_clear() -> None:
    assert masked_value(0x5F20, b"VISA CARDHOLDER") == "<15 bytes hidden>"
    assert masked_value(0x5A, bytes.fromhex(PAN)) == "476173******0010"
    assert masked_value(0x9F02, bytes.fromhex("000000001000")) == "000000001000"


def test_raw_apdu_trace_masks_pan_and_track2_anywhere() -> None:
    rapdu = bytes.fromhex("7057820220005F34010157114761739001010010D221220111438444895F2016")
    text = mask_apdu_hex(rapdu)
    assert PAN not in text and "2212201114384448" not in text
    assert text.startswith("7057820220005F3401015711476173")


@settings(max_examples=1_000, deadline=None)
@given(st.binary(max_size=20), st.from_regex(r"[0-9]{16}", fullmatch=True), st.binary(max_size=20))
def test_property_pan_in_any_apdu_is_masked(before: bytes, pan: str, after: bytes) -> None:
    apdu = before + bytes.fromhex("5A08" + pan) + after
    assert pan not in mask_apdu_hex(apdu)
