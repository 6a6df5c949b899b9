"""PIN pads a lane can use: ``none``, ``reader`` and ``virtual:PIN`` (tests and the demo).

The kernel's PIN pad port (:class:`terminal.pinpad.PinPad`, EMV 4.4 Book 3, 10.5) never gives
the gateway a clear PIN. ``virtual:PIN`` is the one exception, by design a test device: it
"types" a fixed PIN for offline PIN only, building the VERIFY command with the kernel's helpers
(plaintext PIN block, Book 3, 6.5.12.2; enciphered PIN data, Book 2, 7.2). It has no PIN
encryption key, so it answers online PIN with "PIN pad not working" and the kernel's CVM
processing carries on (Book 3, 10.5.2). ``reader`` (secure PIN entry on the reader) is not
driven by the drivers yet: it behaves as ``none``, the kernel's "PIN pad not present" path.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from terminal import OnlinePinBlock, PinEntry, PinPad, RsaPublicKey
from terminal.pinpad import (
    PinError,
    PinStatus,
    enciphered_pin_data,
    entry_from_status_word,
    plaintext_pin_block,
    verify_command,
)

__all__ = ["VirtualPinPad", "pin_pad_for"]

Send = Callable[[bytes], Awaitable[bytes]]


class VirtualPinPad:
    """A PIN pad that always types the configured PIN (offline PIN only; never logged)."""

    def __init__(self, pin: str, *, random_pad: Callable[[int], bytes] = os.urandom) -> None:
        plaintext_pin_block(pin)  # validates: 4-12 digits
        self.__pin = pin
        self._random_pad = random_pad

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
                data = enciphered_pin_data(self.__pin, challenge, icc_key, self._random_pad)
            else:
                data = plaintext_pin_block(self.__pin)
        except PinError:
            return PinEntry(PinStatus.NOT_WORKING)
        rapdu = await send(verify_command(data, enciphered=enciphered))
        if len(rapdu) < 2:
            return PinEntry(PinStatus.NOT_WORKING)
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """No PIN encryption key here: online PIN is "PIN pad not working" (Book 3, 10.5.2)."""
        return PinEntry(PinStatus.NOT_WORKING)

    def __repr__(self) -> str:
        return "VirtualPinPad(pin=<hidden>)"


def pin_pad_for(spec: str) -> PinPad | None:
    """The PIN pad of a lane's ``pin_pad`` setting (``none`` and ``reader``: None)."""
    if spec.startswith("virtual:"):
        return VirtualPinPad(spec[len("virtual:") :])
    return None
