"""PIN pads a lane can use: ``none``, ``reader`` and ``virtual:PINS`` (tests and the demo).

The kernel's PIN pad port (:class:`terminal.pinpad.PinPad`, EMV 4.4 Book 3, 10.5) never gives
the gateway a clear PIN. ``virtual:1111,1234`` is the one exception, by design a test device:
it "types" the PINs given, one per PIN entry (the last one again once they are used up), so a
wrong PIN then the right one can be shown:

* offline PIN (Book 3, 10.5.1): the VERIFY command built with the kernel's helpers (plaintext
  PIN block, Book 3, 6.5.12.2; enciphered PIN data, Book 2, 7.2);
* online PIN (Book 3, 10.5.2): an ISO 9564-1 format 4 PIN block under the transaction's AES
  DUKPT key (ANSI X9.24-3-2017), loaded with the standard's test initial key, returned with
  its KSN (:class:`terminal.online_pin.DukptPinEncipherer`; docs/online-pin.md). The block goes
  to the acquirer request and nowhere else.

``reader``: secure PIN entry on the lane's PC/SC Part 10 reader (docs/pcsc.md). For an offline
plaintext PIN the reader takes the PIN on its keypad and sends the VERIFY itself
(FEATURE_VERIFY_PIN_DIRECT): the PIN never passes through the gateway. What a keypad reader
cannot do is "PIN pad not working" to the kernel (Book 3, 10.5), which then goes on with the
card's next CVM: offline enciphered PIN (the PIN would have to be RSA-enciphered by the pad),
online PIN (no PIN encryption key), a reader without the feature.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from terminal import OnlinePinBlock, PinEntry, PinPad, RsaPublicKey
from terminal.online_pin import DukptPinEncipherer
from terminal.pinpad import (
    PinError,
    PinSequence,
    PinStatus,
    enciphered_pin_data,
    entry_from_status_word,
    plaintext_pin_block,
    verify_command,
)

__all__ = ["ReaderPinPad", "VirtualPinPad", "parse_virtual_pins", "pin_pad_for"]

#: Status words of the reader itself to VERIFY_PIN_DIRECT (drivers.pcsc.pin_verify).
_SW_ENTRY_TIMEOUT = 0x6400
_SW_ENTRY_CANCELLED = 0x6401

Send = Callable[[bytes], Awaitable[bytes]]


def parse_virtual_pins(text: str) -> PinSequence:
    """``"1111,1234"`` -> the PINs, each validated (4-12 digits; the PIN is never quoted).

    Raises:
        PinError: an empty list or a PIN that is not 4-12 digits.
    """
    return PinSequence(text)


class VirtualPinPad:
    """A test PIN pad typing a sequence of PINs (see the module docstring; never logged)."""

    def __init__(
        self,
        pins: str,
        *,
        random_pad: Callable[[int], bytes] = os.urandom,
        encipherer: DukptPinEncipherer | None = None,
    ) -> None:
        self._pins = parse_virtual_pins(pins)
        self._random_pad = random_pad
        self._encipherer = encipherer or DukptPinEncipherer.for_testing()

    @property
    def entries(self) -> int:
        """PIN entries made so far."""
        return self._pins.entries

    @property
    def pins_left(self) -> int:
        """PINs of the sequence not typed yet."""
        return self._pins.left

    def _next_pin(self) -> str:
        return self._pins.next_pin()

    async def verify_offline(
        self,
        send: Send,
        *,
        enciphered: bool,
        icc_key: RsaPublicKey | None,
        challenge: bytes | None,
        tries_left: int | None,
    ) -> PinEntry:
        """Offline PIN (Book 3, 10.5.1): VERIFY with the plaintext or enciphered PIN."""
        try:
            if enciphered:
                if icc_key is None or challenge is None:
                    return PinEntry(PinStatus.NOT_WORKING)
                data = enciphered_pin_data(self._next_pin(), challenge, icc_key, self._random_pad)
            else:
                data = plaintext_pin_block(self._next_pin())
        except PinError:
            return PinEntry(PinStatus.NOT_WORKING)
        rapdu = await send(verify_command(data, enciphered=enciphered))
        if len(rapdu) < 2:
            return PinEntry(PinStatus.NOT_WORKING)
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """Online PIN (Book 3, 10.5.2): the next PIN as a format 4 block under AES DUKPT."""
        try:
            return self._encipherer.encipher(self._next_pin(), pan)
        except PinError:
            return PinEntry(PinStatus.NOT_WORKING)

    def __repr__(self) -> str:
        return f"VirtualPinPad({len(self._pins)} PIN(s) hidden)"

    __str__ = __repr__


class ReaderPinPad:
    """Secure PIN entry on the lane's reader (see the module docstring).

    Attributes:
        reader: The lane's reader for the payment in progress (set by the lane); anything with
            ``async verify_pin_direct() -> int`` and ``pin_pad.verify_pin_direct``.
    """

    def __init__(self) -> None:
        self.reader: Any = None

    async def verify_offline(
        self,
        send: Send,
        *,
        enciphered: bool,
        icc_key: RsaPublicKey | None,
        challenge: bytes | None,
        tries_left: int | None,
    ) -> PinEntry:
        """Offline plaintext PIN on the reader's keypad (PC/SC Part 10, VERIFY_PIN_DIRECT)."""
        reader = self.reader
        capable = getattr(getattr(reader, "pin_pad", None), "verify_pin_direct", False)
        if enciphered or not capable:
            return PinEntry(PinStatus.NOT_WORKING)
        sw = await reader.verify_pin_direct()
        if sw in (_SW_ENTRY_TIMEOUT, _SW_ENTRY_CANCELLED):
            return PinEntry(PinStatus.CANCELLED, sw)
        if sw & 0xFF00 in (0x6400, 0x6B00):  # other reader errors: parameters refused...
            return PinEntry(PinStatus.NOT_WORKING, sw)
        return entry_from_status_word(sw)

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """A keypad reader has no PIN encryption key: "PIN pad not working" (Book 3, 10.5.2)."""
        return PinEntry(PinStatus.NOT_WORKING)

    def __repr__(self) -> str:
        return "ReaderPinPad()"


def pin_pad_for(spec: str) -> PinPad | None:
    """The PIN pad of a lane's ``pin_pad`` setting (``none``: None)."""
    if spec.startswith("virtual:"):
        return VirtualPinPad(spec[len("virtual:") :])
    if spec == "reader":
        return ReaderPinPad()
    return None
