"""AES DUKPT key derivation (ANSI X9.24-3-2017, section 6), for online PIN blocks.

Derived Unique Key Per Transaction: every PIN block is enciphered under its own key. A family
of PIN pads shares a Base Derivation Key (BDK) that only the host (the acquirer's or issuer's
HSM) holds; each PIN pad is loaded with its *initial key*, derived from the BDK and the pad's
8-byte *initial key ID*. The pad sends its 12-byte *key serial number* (KSN = initial key ID |
32-bit transaction counter) with each PIN block; from the BDK and the KSN the host derives the
same working key.

Derivation (X9.24-3-2017, 6.3): one AES-ECB encryption per 16-byte block of *derivation data*
under the derivation key::

    version 01 | block counter | key usage (2) | algorithm (2) | length in bits (2) | context (8)

the context being the initial key ID for the initial key, else the last four bytes of the
initial key ID followed by the transaction counter. From the initial key, one intermediate
derivation key per set bit of the counter, most significant first (usage ``8000``), then the
working key with the usage wanted (``1000`` PIN encryption) and its algorithm (AES-128 for ISO
9564 format 4; double-length TDEA for format 0).

Counters with more than 16 bits set are not used (6.1); :func:`next_counter` skips them.

This module is the host algorithm. A hardware PIN pad keeps intermediate derivation keys in
registers and erases its initial key (forward secrecy); the simulator's virtual PIN pads
derive from the initial key with the same algorithm, which gives the same keys.

Key material never appears in a repr or an error message.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from terminal.errors import EmvError

__all__ = [
    "KSN_LENGTH",
    "MAX_COUNTER_BITS",
    "DukptError",
    "KeyType",
    "KeyUsage",
    "Ksn",
    "derivation_data",
    "derive_initial_key",
    "derive_working_key",
    "host_working_key",
    "intermediate_derivation_key",
    "next_counter",
]

KSN_LENGTH = 12
MAX_COUNTER_BITS = 16


class DukptError(EmvError):
    """A key, KSN or counter that AES DUKPT cannot use (no key material in the message)."""


class KeyUsage(enum.IntEnum):
    """Key usage indicators of the derivation data (X9.24-3-2017, Table 2)."""

    KEY_ENCRYPTION = 0x0002
    PIN_ENCRYPTION = 0x1000
    MAC_GENERATION = 0x2000
    MAC_VERIFICATION = 0x2001
    MAC_BOTH = 0x2002
    DATA_ENCRYPT = 0x3000
    DATA_DECRYPT = 0x3001
    DATA_BOTH = 0x3002
    KEY_DERIVATION = 0x8000
    KEY_DERIVATION_INITIAL = 0x8001


class KeyType(enum.Enum):
    """Algorithm indicator and key length of a derived key (X9.24-3-2017, Table 3)."""

    TDEA2 = (0x0000, 128)
    TDEA3 = (0x0001, 192)
    AES128 = (0x0002, 128)
    AES192 = (0x0003, 192)
    AES256 = (0x0004, 256)

    @property
    def indicator(self) -> int:
        """The 2-byte algorithm indicator."""
        return self.value[0]

    @property
    def bits(self) -> int:
        """The key length in bits."""
        return self.value[1]


_AES_TYPES = {16: KeyType.AES128, 24: KeyType.AES192, 32: KeyType.AES256}


@dataclass(frozen=True, slots=True)
class Ksn:
    """An AES DUKPT key serial number: 8-byte initial key ID and 32-bit transaction counter."""

    initial_key_id: bytes
    counter: int

    def __post_init__(self) -> None:
        if len(self.initial_key_id) != 8:
            raise DukptError("the initial key ID is 8 bytes")
        if not 0 <= self.counter <= 0xFFFFFFFF:
            raise DukptError("the transaction counter is 32 bits")

    @classmethod
    def parse(cls, ksn: bytes) -> Ksn:
        """Split a 12-byte KSN (raises DukptError for another length)."""
        if len(ksn) != KSN_LENGTH:
            raise DukptError(f"an AES DUKPT KSN is {KSN_LENGTH} bytes, not {len(ksn)}")
        return cls(bytes(ksn[:8]), int.from_bytes(ksn[8:], "big"))

    def to_bytes(self) -> bytes:
        """The 12 bytes sent with a PIN block."""
        return self.initial_key_id + self.counter.to_bytes(4, "big")


def _aes_type(key: bytes) -> KeyType:
    try:
        return _AES_TYPES[len(key)]
    except KeyError:
        raise DukptError("an AES DUKPT derivation key is 16, 24 or 32 bytes") from None


def derivation_data(
    usage: KeyUsage, key_type: KeyType, initial_key_id: bytes, counter: int, block: int = 1
) -> bytes:
    """The 16 bytes of derivation data (X9.24-3-2017, 6.3.2, Table 1).

    For :attr:`KeyUsage.KEY_DERIVATION_INITIAL` the context is the whole initial key ID, else
    its last four bytes and the transaction counter.
    """
    head = bytes((0x01, block)) + usage.to_bytes(2, "big")
    head += key_type.indicator.to_bytes(2, "big") + key_type.bits.to_bytes(2, "big")
    if usage is KeyUsage.KEY_DERIVATION_INITIAL:
        return head + initial_key_id
    return head + initial_key_id[4:8] + counter.to_bytes(4, "big")


def _derive(
    key: bytes, usage: KeyUsage, key_type: KeyType, initial_key_id: bytes, counter: int
) -> bytes:
    """Encrypt as many derivation data blocks as the derived key needs (6.3.1)."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - X9.24-3
    blocks = (key_type.bits + 127) // 128
    out = b"".join(
        encryptor.update(derivation_data(usage, key_type, initial_key_id, counter, n))
        for n in range(1, blocks + 1)
    )
    return out[: key_type.bits // 8]


def derive_initial_key(bdk: bytes, initial_key_id: bytes) -> bytes:
    """The initial key of a PIN pad from the BDK and its initial key ID (6.3.3).

    Raises:
        DukptError: a BDK that is not an AES key, or an initial key ID not 8 bytes.
    """
    key_type = _aes_type(bdk)
    if len(initial_key_id) != 8:
        raise DukptError("the initial key ID is 8 bytes")
    return _derive(bdk, KeyUsage.KEY_DERIVATION_INITIAL, key_type, initial_key_id, 0)


def intermediate_derivation_key(initial_key: bytes, ksn: Ksn) -> bytes:
    """The derivation key for the KSN's counter: one step per set bit, high bit first (6.4).

    Raises:
        DukptError: a counter of 0 or with more than 16 bits set, or a key that is not AES.
    """
    key_type = _aes_type(initial_key)
    counter = ksn.counter
    if counter == 0 or counter.bit_count() > MAX_COUNTER_BITS:
        raise DukptError("transaction counter not valid (0, or more than 16 bits set)")
    key = initial_key
    reached = 0
    for bit in range(31, -1, -1):
        mask = 1 << bit
        if counter & mask:
            reached |= mask
            key = _derive(key, KeyUsage.KEY_DERIVATION, key_type, ksn.initial_key_id, reached)
    return key


def derive_working_key(
    initial_key: bytes, ksn: Ksn, usage: KeyUsage, key_type: KeyType = KeyType.AES128
) -> bytes:
    """A working key for one transaction from the initial key (6.4, 6.5).

    Args:
        initial_key: The PIN pad's initial key.
        ksn: The key serial number of the transaction.
        usage: :attr:`KeyUsage.PIN_ENCRYPTION` for PIN blocks.
        key_type: AES-128 for ISO 9564 format 4, TDEA2 for format 0.

    Raises:
        DukptError: see :func:`intermediate_derivation_key`; a working key longer than the
            derivation key.
    """
    if key_type.bits > len(initial_key) * 8:
        raise DukptError("a working key cannot be longer than its derivation key")
    derivation_key = intermediate_derivation_key(initial_key, ksn)
    return _derive(derivation_key, usage, key_type, ksn.initial_key_id, ksn.counter)


def host_working_key(
    bdk: bytes, ksn: bytes, usage: KeyUsage, key_type: KeyType = KeyType.AES128
) -> bytes:
    """Host side: the working key of a transaction from the BDK and the 12-byte KSN.

    Raises:
        DukptError: a malformed KSN or BDK, an invalid counter.
    """
    parsed = Ksn.parse(ksn)
    return derive_working_key(
        derive_initial_key(bdk, parsed.initial_key_id), parsed, usage, key_type
    )


def next_counter(counter: int) -> int:
    """The next usable transaction counter after ``counter`` (at most 16 bits set, 6.1).

    Raises:
        DukptError: the counter space is exhausted (the PIN pad must be reloaded).
    """
    candidate = counter + 1
    while candidate <= 0xFFFFFFFF and candidate.bit_count() > MAX_COUNTER_BITS:
        # Adding the lowest set bit clears the run of ones it starts.
        candidate += candidate & -candidate
    if candidate > 0xFFFFFFFF:
        raise DukptError("transaction counter exhausted: the PIN pad needs a new initial key")
    return candidate
