"""Online PIN blocks under AES DUKPT: ISO 9564-1 format 4 (AES) or format 0 (TDEA), for PIN pads
and the host that deciphers them.

EMV 4.4 Book 3, 10.5.2: for online PIN the PIN pad enciphers the PIN "using the appropriate
algorithm and key" and the terminal sends it in the authorisation request. Here:

* the PIN field is an ISO 9564-1 PIN block: format 4 (16 bytes, AES-128, the PIN field
  enciphered, XORed with the PAN field and enciphered again) by default, or format 0 (8 bytes,
  the PIN field XOR the PAN field, under double-length TDEA). The block formats come from the
  ``psec`` package;
* the key is the transaction's PIN encryption key from AES DUKPT (ANSI X9.24-3-2017,
  :mod:`terminal.dukpt`): AES-128 for format 4, TDEA2 for format 0, both derived from an
  AES-128 initial key. The 12-byte KSN travels with the block;
* :class:`DukptPinEncipherer` is the PIN pad side (initial key, counter);
  :func:`decipher_pin_block` is the host side (BDK).

:data:`TEST_BDK` and :data:`TEST_INITIAL_KEY_ID` are the standard's published test values
(X9.24-3-2017 Annex B), used by the simulator and the ``virtual:`` PIN pads; never live keys.

Nothing here logs, and no repr or error message carries a PIN, a key or a PIN block.
"""

from __future__ import annotations

from typing import Literal

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from psec import pinblock

from terminal.dukpt import (
    DukptError,
    KeyType,
    KeyUsage,
    Ksn,
    derive_initial_key,
    derive_working_key,
    host_working_key,
    next_counter,
)
from terminal.pinpad import OnlinePinBlock, PinError

__all__ = [
    "TEST_BDK",
    "TEST_INITIAL_KEY_ID",
    "DukptPinEncipherer",
    "PinBlockFormat",
    "decipher_pin_block",
]

PinBlockFormat = Literal[0, 4]

#: X9.24-3-2017 Annex B test Base Derivation Key (AES-128) and initial key ID: test only.
TEST_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
TEST_INITIAL_KEY_ID = bytes.fromhex("1234567890123456")

_KEY_TYPE: dict[int, KeyType] = {4: KeyType.AES128, 0: KeyType.TDEA2}


def _tdes(key: bytes, block: bytes, *, decrypt: bool) -> bytes:
    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())  # noqa: S305 - one ISO 9564 block
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(block) + op.finalize()


def _pan_digits(pan: str) -> str:
    digits = pan.rstrip("Ff")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
        raise PinError("the PAN for a PIN block is 12 to 19 digits")
    return digits


def _encipher(pin: str, pan: str, key: bytes, fmt: PinBlockFormat) -> bytes:
    # psec's messages may quote PIN digits: its exception is dropped, not chained.
    block: bytes | None = None
    try:
        if fmt == 4:
            block = pinblock.encipher_pinblock_iso_4(key, pin, pan)
        else:
            block = _tdes(key, pinblock.encode_pinblock_iso_0(pin, pan), decrypt=False)
    except ValueError:
        block = None
    if block is None:
        raise PinError("cannot build the PIN block (a PIN is 4 to 12 digits)")
    return block


class DukptPinEncipherer:
    """A PIN pad's PIN encryption: AES DUKPT keys and ISO 9564 blocks (see the module doc).

    Args:
        initial_key: The AES-128 initial key loaded into the PIN pad.
        initial_key_id: Its 8-byte initial key ID (first 8 bytes of every KSN).
        fmt: ISO 9564-1 format of the blocks, 4 (AES) or 0 (TDEA).
        counter: The last transaction counter used (0 for a freshly loaded pad).

    Raises:
        PinError: a format other than 0 or 4.
        DukptError: an initial key that is not AES-128 or an ID that is not 8 bytes.
    """

    def __init__(
        self,
        initial_key: bytes,
        initial_key_id: bytes,
        *,
        fmt: PinBlockFormat = 4,
        counter: int = 0,
    ) -> None:
        if fmt not in (0, 4):
            raise PinError("online PIN block format is 0 or 4")
        if len(initial_key) != 16:
            raise DukptError("the PIN pad's initial key is AES-128 (16 bytes)")
        Ksn(initial_key_id, counter)  # validates the ID and the counter
        self.__initial_key = bytes(initial_key)
        self._initial_key_id = bytes(initial_key_id)
        self.fmt: PinBlockFormat = fmt
        self.counter = counter

    @classmethod
    def for_testing(cls, *, fmt: PinBlockFormat = 4, counter: int = 0) -> DukptPinEncipherer:
        """A pad loaded with the initial key of :data:`TEST_BDK` / :data:`TEST_INITIAL_KEY_ID`."""
        key = derive_initial_key(TEST_BDK, TEST_INITIAL_KEY_ID)
        return cls(key, TEST_INITIAL_KEY_ID, fmt=fmt, counter=counter)

    def encipher(self, pin: str, pan: str) -> OnlinePinBlock:
        """The next transaction's PIN block and KSN (the counter advances first).

        Raises:
            PinError: a PIN that is not 4-12 digits or a PAN that is not 12-19 digits.
            DukptError: the counter space is exhausted.
        """
        digits = _pan_digits(pan)
        counter = next_counter(self.counter)
        ksn = Ksn(self._initial_key_id, counter)
        key = derive_working_key(
            self.__initial_key, ksn, KeyUsage.PIN_ENCRYPTION, _KEY_TYPE[self.fmt]
        )
        self.counter = counter
        return OnlinePinBlock(_encipher(pin, digits, key, self.fmt), ksn.to_bytes(), self.fmt)

    def __repr__(self) -> str:
        return f"DukptPinEncipherer(format {self.fmt}, counter {self.counter}, keys hidden)"

    __str__ = __repr__


def decipher_pin_block(block: OnlinePinBlock, pan: str, bdk: bytes) -> str:
    """Host side: the PIN inside an online PIN block, from the BDK and the block's KSN.

    Raises:
        PinError: a block of the wrong size for its format, a PAN that is not 12-19 digits, or
            a block that does not decipher to a valid PIN field (wrong key, wrong PAN).
        DukptError: a malformed KSN or BDK, or an invalid counter.
    """
    digits = _pan_digits(pan)
    size = 16 if block.fmt == 4 else 8
    if block.fmt not in (0, 4) or len(block.block) != size:
        raise PinError(f"a format {block.fmt} PIN block is {size} bytes")
    key = host_working_key(bdk, block.ksn, KeyUsage.PIN_ENCRYPTION, _KEY_TYPE[block.fmt])
    pin: str | None = None
    try:  # psec's messages quote what it decoded: its exception is dropped, not chained
        if block.fmt == 4:
            pin = pinblock.decipher_pinblock_iso_4(key, block.block, digits)
        else:
            pin = pinblock.decode_pinblock_iso_0(_tdes(key, block.block, decrypt=True), digits)
    except ValueError:
        pin = None
    if pin is None:
        raise PinError("the PIN block does not decipher to a PIN field")
    return pin
