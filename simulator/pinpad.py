"""The virtual PIN pad: the simulator's implementation of :class:`terminal.pinpad.PinPad`.

It plays the cardholder and the PIN pad together. The clear PIN lives only inside this object
(never in its ``repr``/``str``, never in an exception message) and leaves it only as:

* offline plaintext PIN: the VERIFY P2 ``80`` command it builds itself with the PIN block of
  EMV 4.4 Book 3, 6.5.12.2 (:func:`terminal.pinpad.plaintext_pin_block`);
* offline enciphered PIN: VERIFY P2 ``88`` with the data of Book 2, 7.2 (``7F | PIN block |
  ICC unpredictable number | random pad`` RSA-encrypted under the ICC PIN encipherment or
  ICC public key). The challenge is the kernel's GET CHALLENGE answer, or, when the kernel
  passes none, the PIN pad sends GET CHALLENGE itself;
* online PIN: an ISO 9564-1 format 0 (TDES, PAN-bound) or format 4 (AES-128) PIN block
  encrypted under the PIN pad's test key, returned with a key serial number (a fixed key
  identifier: no DUKPT). Built and checked with psec. :meth:`VirtualPinPad.decrypt_online`
  is the acquirer-side check used by tests and the simulated host.

Behaviours for tests: ``mode`` ``"enter"`` (the PIN given), ``"bypass"`` (PIN bypass, Book
3, 10.5.1), ``"cancel"``, ``"not_working"`` (PIN pad out of order: TVR "PIN pad not present
or not working").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from psec import pinblock

from terminal import OnlinePinBlock, PinEntry, RsaPublicKey
from terminal.pinpad import (
    PinError,
    PinStatus,
    Send,
    enciphered_pin_data,
    entry_from_status_word,
    plaintext_pin_block,
    verify_command,
)

__all__ = ["DEFAULT_KSN", "TEST_AES_KEY", "TEST_TDES_KEY", "VirtualPinPad"]

#: The PIN pad's test PIN encryption keys (never live) and the key identifier it reports.
TEST_TDES_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TEST_AES_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
DEFAULT_KSN = bytes.fromhex("FFFF9876543210E00000")

Mode = Literal["enter", "bypass", "cancel", "not_working"]


def _tdes(key: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())  # noqa: S305 - one ISO 9564 block
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


class VirtualPinPad:
    """A PIN pad with a simulated cardholder (see the module docstring)."""

    def __init__(
        self,
        pin: str = "1234",
        *,
        mode: Mode = "enter",
        online_format: Literal[0, 4] = 0,
        tdes_key: bytes = TEST_TDES_KEY,
        aes_key: bytes = TEST_AES_KEY,
        ksn: bytes = DEFAULT_KSN,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """Create the PIN pad.

        Args:
            pin: The PIN the cardholder types (4-12 digits).
            mode: ``enter``, ``bypass``, ``cancel`` or ``not_working``.
            online_format: ISO 9564-1 format of online PIN blocks, 0 or 4.
            tdes_key: Double-length TDES key for format 0.
            aes_key: AES-128 key for format 4.
            ksn: Key serial number / key identifier reported with online PIN blocks.
            random_bytes: Random source for the enciphered PIN padding (injected).

        Raises:
            PinError: the PIN is not 4-12 digits, or the format is not 0 or 4.
        """
        plaintext_pin_block(pin)  # validates without echoing the PIN
        if online_format not in (0, 4):
            raise PinError("online PIN block format is 0 or 4")
        self.__pin = pin
        self.mode: Mode = mode
        self.online_format: Literal[0, 4] = online_format
        self.__tdes_key = tdes_key
        self.__aes_key = aes_key
        self.ksn = ksn
        self._random = random_bytes
        self.verify_count = 0

    def type_pin(self, pin: str) -> None:
        """The cardholder will type ``pin`` from now on (e.g. a wrong one)."""
        plaintext_pin_block(pin)
        self.__pin = pin

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
            data = enciphered_pin_data(self.__pin, challenge, icc_key, self._random)
        else:
            data = plaintext_pin_block(self.__pin)
        rapdu = await send(verify_command(data, enciphered=enciphered))
        self.verify_count += 1
        if len(rapdu) < 2:
            return PinEntry(PinStatus.WRONG)
        return entry_from_status_word(int.from_bytes(rapdu[-2:], "big"))

    async def online_pin(self, *, pan: str, tries_left: int | None) -> OnlinePinBlock | PinEntry:
        """An encrypted online PIN block, ISO 9564-1 format 0 or 4 (Book 3, 10.5.2)."""
        refusal = self._refusal()
        if refusal is not None:
            return refusal
        digits = pan.rstrip("Ff")
        try:
            if self.online_format == 0:
                clear = pinblock.encode_pinblock_iso_0(self.__pin, digits)
                block = _tdes(self.__tdes_key, clear)
            else:
                block = pinblock.encipher_pinblock_iso_4(self.__aes_key, self.__pin, digits)
        except ValueError as exc:
            raise PinError("cannot build the online PIN block (PAN length?)") from exc
        return OnlinePinBlock(block, self.ksn, self.online_format)

    def decrypt_online(self, block: OnlinePinBlock, pan: str) -> str:
        """Host side (tests, simulated acquirer): the PIN inside an online PIN block."""
        digits = pan.rstrip("Ff")
        try:
            if block.fmt == 0:
                return pinblock.decode_pinblock_iso_0(_tdes(self.__tdes_key, block.block,
                                                            decrypt=True), digits)
            return pinblock.decipher_pinblock_iso_4(self.__aes_key, block.block, digits)
        except ValueError as exc:
            raise PinError("PIN block does not decode") from exc

    def __repr__(self) -> str:
        return f"VirtualPinPad(mode={self.mode!r}, format={self.online_format}, pin=<hidden>)"

    __str__ = __repr__
