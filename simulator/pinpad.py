"""The virtual PIN pad: the simulator's implementation of :class:`terminal.pinpad.PinPad`.

It plays the cardholder and the PIN pad together. The clear PIN lives only inside this object
(never in its ``repr``/``str``, never in an exception message) and leaves it only as:

* offline plaintext PIN: the VERIFY P2 ``80`` command it builds itself with the PIN block of
  EMV 4.4 Book 3, 6.5.12.2 (:func:`terminal.pinpad.plaintext_pin_block`);
* offline enciphered PIN: VERIFY P2 ``88`` with the data of Book 2, 7.2 (``7F | PIN block |
  ICC unpredictable number | random pad`` RSA-encrypted under the ICC PIN encipherment or
  ICC public key). The challenge is the kernel's GET CHALLENGE answer, or, when the kernel
  passes none, the PIN pad sends GET CHALLENGE itself;
* online PIN: an ISO 9564-1 format 4 (AES-128, the default) or format 0 (TDEA) PIN block
  enciphered under the transaction's key from AES DUKPT (ANSI X9.24-3-2017), returned with its
  12-byte key serial number (:class:`terminal.online_pin.DukptPinEncipherer`, loaded with the
  standard's test initial key unless given another). The issuer side deciphers it from the BDK
  (:mod:`simulator.pin_check`); :meth:`VirtualPinPad.decrypt_online` does the same for tests.

The cardholder types a *sequence* of PINs (``VirtualPinPad("1111,1234")``): each PIN entry
(an offline VERIFY or an online PIN block) takes the next one, and the last one is typed again
once the sequence is used up, so a wrong PIN then the right one can be played.

Behaviours for tests: ``mode`` ``"enter"`` (the PIN given), ``"bypass"`` (PIN bypass, Book
3, 10.5.1), ``"cancel"``, ``"not_working"`` (PIN pad out of order: TVR "PIN pad not present
or not working").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

from terminal import OnlinePinBlock, PinEntry, RsaPublicKey
from terminal.online_pin import TEST_BDK, DukptPinEncipherer, PinBlockFormat, decipher_pin_block
from terminal.pinpad import (
    PinError,
    PinSequence,
    PinStatus,
    Send,
    enciphered_pin_data,
    entry_from_status_word,
    plaintext_pin_block,
    verify_command,
)

__all__ = ["VirtualPinPad", "parse_pins"]

Mode = Literal["enter", "bypass", "cancel", "not_working"]


def parse_pins(pins: str | Sequence[str]) -> PinSequence:
    """The PINs the cardholder will type, from ``"1111,1234"`` or a list.

    Raises:
        PinError: an empty sequence, or a PIN that is not 4-12 digits (the PIN not quoted).
    """
    return PinSequence(pins)


class VirtualPinPad:
    """A PIN pad with a simulated cardholder (see the module docstring)."""

    def __init__(
        self,
        pins: str | Sequence[str] = "1234",
        *,
        mode: Mode = "enter",
        online_format: PinBlockFormat = 4,
        encipherer: DukptPinEncipherer | None = None,
        bdk: bytes = TEST_BDK,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """Create the PIN pad.

        Args:
            pins: The PIN or PINs the cardholder types, in order (4-12 digits each).
            mode: ``enter``, ``bypass``, ``cancel`` or ``not_working``.
            online_format: ISO 9564-1 format of online PIN blocks, 4 (AES) or 0 (TDEA).
            encipherer: The DUKPT PIN encryption (default: the X9.24-3 test initial key).
            bdk: The BDK :meth:`decrypt_online` derives from (test issuers' side).
            random_bytes: Random source for the enciphered PIN padding (injected).

        Raises:
            PinError: a PIN that is not 4-12 digits, or a format other than 0 or 4.
        """
        if online_format not in (0, 4):
            raise PinError("online PIN block format is 0 or 4")
        self._pins = parse_pins(pins)
        self.mode: Mode = mode
        self.online_format: PinBlockFormat = online_format
        self._encipherer = encipherer or DukptPinEncipherer.for_testing(fmt=online_format)
        self.__bdk = bdk
        self._random = random_bytes
        self.verify_count = 0

    def type_pin(self, pin: str) -> None:
        """The cardholder will type ``pin`` from now on (e.g. a wrong one)."""
        self._pins = parse_pins([pin])

    @property
    def entries(self) -> int:
        """PIN entries made since the PINs were given."""
        return self._pins.entries

    @property
    def pins_left(self) -> int:
        """PINs of the sequence not typed yet (the last one is typed again afterwards)."""
        return self._pins.left

    def _next_pin(self) -> str:
        return self._pins.next_pin()

    def _refusal(self) -> PinEntry | None:
        if self.mode == "bypass":
            return PinEntry(PinStatus.BYPASSED)
        if self.mode == "cancel":
            return PinEntry(PinStatus.CANCELLED)
        if self.mode == "not_working":
            return PinEntry(PinStatus.NOT_WORKING)
        return None

    async def verify_offline(
        self,
        send: Send,
        *,
        enciphered: bool,
        icc_key: RsaPublicKey | None,
        challenge: bytes | None,
        tries_left: int | None,
    ) -> PinEntry:
        """Build VERIFY and send it to the card (EMV 4.4 Book 3, 6.5.12; Book 2, 7.2).

        Raises:
            PinError: enciphered PIN without a key, or a GET CHALLENGE the card refused.
        """
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        if enciphered:
            if icc_key is None:
                raise PinError("enciphered PIN needs the ICC (PIN encipherment) public key")
            if challenge is None:
                rapdu = await send(bytes.fromhex("0084000000"))
                if len(rapdu) != 10 or rapdu[-2:] != b"\x90\x00":
                    raise PinError("GET CHALLENGE failed")
                challenge = rapdu[:8]
            data = enciphered_pin_data(self._next_pin(), challenge, icc_key, self._random)
        else:
            data = plaintext_pin_block(self._next_pin())
        rapdu = await send(verify_command(data, enciphered=enciphered))
        self.verify_count += 1
        if len(rapdu) < 2:
            return PinEntry(PinStatus.WRONG)
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """The next PIN as an enciphered online PIN block with its KSN (Book 3, 10.5.2).

        Raises:
            PinError: a PAN that is not 12-19 digits.
        """
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        return self._encipherer.encipher(self._next_pin(), pan)

    def decrypt_online(self, block: OnlinePinBlock, pan: str) -> str:
        """Host side (tests): the PIN inside an online PIN block, from the BDK and its KSN."""
        return decipher_pin_block(block, pan, self.__bdk)

    def __repr__(self) -> str:
        return (f"VirtualPinPad(mode={self.mode!r}, format={self.online_format}, "
                f"{len(self._pins)} PIN(s) hidden)")

    __str__ = __repr__
