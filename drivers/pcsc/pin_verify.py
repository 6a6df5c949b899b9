"""Secure PIN entry on a PC/SC Part 10 PIN pad reader: FEATURE_VERIFY_PIN_DIRECT.

With a reader that has its own keypad, the PIN of an EMV offline plaintext PIN verification
(EMV 4.4 Book 3, 6.5.12: ``VERIFY 00 20 00 80 08`` with the PIN block ``2N PP PP ... FF``)
never passes through the host: the host sends the reader a *template* of the VERIFY command
and a PIN_VERIFY_STRUCTURE saying where and how to put the digits; the reader collects the PIN
on its keypad, fills the template, sends it to the card and returns the card's status word.

PC/SC Part 10 v2.02.09, 2.5.2 (``PIN_VERIFY_STRUCTURE``, packed, multi-byte fields little
endian, as the CCID ``PC_to_RDR_Secure`` PIN verification data):

=====  ===========================  =====================================================
byte   field                        for the EMV plaintext PIN block
=====  ===========================  =====================================================
0      bTimerOut                    seconds to wait for the PIN (0: the reader's default)
1      bTimerOut2                   seconds after the first key
2      bmFormatString               ``89``: units are bytes, PIN at offset 1, left
                                    justified, BCD
3      bmPINBlockString             ``48``: the PIN length takes 4 bits; the block is 8 bytes
4      bmPINLengthFormat            ``04``: the length goes at bit 4 of the block (the ``N``
                                    nibble after the control nibble ``2``)
5-6    wPINMaxExtraDigit            ``XXYY``: minimum and maximum digits (4 and 12)
7      bEntryValidationCondition    ``02``: the validation key
8      bNumberMessage               ``01``: one message ("enter PIN")
9-10   wLangId                      ``0409`` by default
11     bMsgIndex                    ``00``
12-14  bTeoPrologue                 ``00 00 00`` (T=1 prologue, filled by the reader)
15-18  ulDataLength                 length of the APDU template
19-    abData                       ``00 20 00 80 08 20 FF FF FF FF FF FF FF``
=====  ===========================  =====================================================

The answer is the card's SW1 SW2, or the reader's own: ``6400`` no PIN entered in time,
``6401`` cancelled on the keypad, ``6B80`` parameters the reader refuses.

FEATURE_MODIFY_PIN_DIRECT (0x07, a PIN change on the keypad) is detected
(:class:`drivers.base.PinPadCapabilities`) but not used: EMV payment has no PIN change.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.errors import ConfigurationError, ProtocolError, Timeout
from drivers.events import PinPadCapabilities
from drivers.pcsc.features import FEATURE_VERIFY_PIN_DIRECT

__all__ = [
    "EMV_PLAINTEXT_VERIFY_TEMPLATE",
    "SW_PIN_CANCELLED",
    "SW_PIN_PARAMETERS_REFUSED",
    "SW_PIN_TIMEOUT",
    "PinVerifyParameters",
    "parse_verify_answer",
    "verify_pin_direct",
    "verify_pin_structure",
]

#: Seconds allowed beyond the PIN entry timeout for the reader and the card to answer.
ANSWER_MARGIN_S = 10.0
#: The wait when the reader's own default timeout applies (bTimerOut 0).
DEFAULT_ENTRY_WAIT_S = 120.0

#: VERIFY with P2 80 (plaintext PIN) and the empty EMV PIN block: control 2, length 0, filler.
EMV_PLAINTEXT_VERIFY_TEMPLATE = bytes.fromhex("0020008008" "20FFFFFFFFFFFFFF")

SW_PIN_TIMEOUT = 0x6400
SW_PIN_CANCELLED = 0x6401
SW_PIN_PARAMETERS_REFUSED = 0x6B80

_HEADER = struct.Struct("<BBBBBHBBHB3sI")

FORMAT_BYTES_OFFSET_1_BCD = 0x89  # bit 7 bytes, bits 6-3 position 1, bit 2 left, bits 1-0 BCD
BLOCK_LENGTH_4_BITS_SIZE_8 = 0x48
LENGTH_AT_BIT_4 = 0x04
VALIDATION_KEY = 0x02


@dataclass(frozen=True, slots=True)
class PinVerifyParameters:
    """What the reader is told about the PIN entry.

    Attributes:
        timeout_s: Seconds to wait for the PIN (0: the reader's default; at most 255).
        first_key_timeout_s: Seconds after the first key (0: the reader's default).
        min_digits: Fewest PIN digits the keypad accepts (EMV: 4).
        max_digits: Most PIN digits (EMV: 12).
        lang_id: The language of the reader's prompt (Windows LANGID, 0x0409 English).
    """

    timeout_s: int = 30
    first_key_timeout_s: int = 15
    min_digits: int = 4
    max_digits: int = 12
    lang_id: int = 0x0409

    def __post_init__(self) -> None:
        if not (0 <= self.timeout_s <= 255 and 0 <= self.first_key_timeout_s <= 255):
            raise ValueError("PIN entry timeouts are 0-255 seconds")
        if not 4 <= self.min_digits <= self.max_digits <= 12:
            raise ValueError("EMV PINs have 4 to 12 digits")
        if not 0 <= self.lang_id <= 0xFFFF:
            raise ValueError("lang_id is a 16-bit LANGID")


def verify_pin_structure(
    params: PinVerifyParameters | None = None,
    template: bytes = EMV_PLAINTEXT_VERIFY_TEMPLATE,
) -> bytes:
    """The PIN_VERIFY_STRUCTURE for an EMV offline plaintext PIN (see the module docstring)."""
    p = params or PinVerifyParameters()
    header = _HEADER.pack(
        p.timeout_s, p.first_key_timeout_s, FORMAT_BYTES_OFFSET_1_BCD,
        BLOCK_LENGTH_4_BITS_SIZE_8, LENGTH_AT_BIT_4, p.min_digits << 8 | p.max_digits,
        VALIDATION_KEY, 1, p.lang_id, 0, bytes(3), len(template),
    )  # fmt: skip
    return header + template


def parse_verify_answer(answer: bytes) -> int:
    """The status word a VERIFY_PIN_DIRECT control answered (card or reader).

    Raises:
        ProtocolError: an answer that is not two bytes (its content is not quoted).
    """
    if len(answer) != 2:
        raise ProtocolError(f"VERIFY_PIN_DIRECT answered {len(answer)} bytes, expected 2")
    return int.from_bytes(answer, "big")


async def verify_pin_direct(
    control: Callable[[int, bytes], Awaitable[bytes]],
    capabilities: PinPadCapabilities,
    params: PinVerifyParameters | None = None,
    *,
    device: str | None = None,
) -> int:
    """Have the reader take the PIN on its keypad and VERIFY it with the card.

    Args:
        control: ``SCardControl`` on the connected card: (control code, input) -> output.
        capabilities: The reader's features (GET_FEATURE_REQUEST, read at power on).
        params: Timeouts and PIN lengths (default :class:`PinVerifyParameters`).
        device: The reader's name, for errors.

    Returns:
        The card's status word (``9000``, ``63Cx``...) or the reader's (:data:`SW_PIN_TIMEOUT`,
        :data:`SW_PIN_CANCELLED`, :data:`SW_PIN_PARAMETERS_REFUSED`).

    Raises:
        ConfigurationError: the reader does not offer FEATURE_VERIFY_PIN_DIRECT.
        Timeout: no answer within the entry timeout and :data:`ANSWER_MARGIN_S`.
        ProtocolError: an answer that is not a status word.
    """
    code = capabilities.features.get(FEATURE_VERIFY_PIN_DIRECT)
    if code is None:
        raise ConfigurationError("reader has no FEATURE_VERIFY_PIN_DIRECT", device=device)
    p = params or PinVerifyParameters()
    patience = (p.timeout_s or DEFAULT_ENTRY_WAIT_S) + ANSWER_MARGIN_S
    try:
        async with asyncio.timeout(patience):
            answer = await control(code, verify_pin_structure(p))
    except TimeoutError:
        raise Timeout(f"VERIFY_PIN_DIRECT: no answer in {patience:.0f} s", device=device) from None
    return parse_verify_answer(answer)
