"""PinSequence: the PINs a test cardholder types, one per entry, never shown."""

from __future__ import annotations

import pytest

from terminal.pinpad import PinError, PinSequence


def test_each_entry_takes_the_next_pin_then_the_last_again() -> None:
    pins = PinSequence("1111, 1234")
    assert (len(pins), pins.left, pins.entries) == (2, 2, 0)
    assert pins.next_pin() == "1111"
    assert pins.left == 1
    assert [pins.next_pin(), pins.next_pin()] == ["1234", "1234"]
    assert (pins.left, pins.entries) == (0, 3)


def test_a_list_is_accepted_like_the_text_form() -> None:
    assert PinSequence(["4321"]).next_pin() == "4321"


@pytest.mark.parametrize("bad", ["", "12", "1234,abcd", "1234567890123", []])
def test_a_bad_pin_is_refused_without_being_quoted(bad: str | list[str]) -> None:
    with pytest.raises(PinError) as caught:
        PinSequence(bad)
    assert "abcd" not in str(caught.value) and "1234567890123" not in str(caught.value)


def test_the_pins_are_not_in_repr_or_str() -> None:
    pins = PinSequence("9876,5432")
    shown = repr(pins) + str(pins)
    assert "9876" not in shown and "5432" not in shown and "2 PIN(s)" in shown
