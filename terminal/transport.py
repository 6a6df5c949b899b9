"""Transport layer: the card channel and the APDU exchange procedure (EMV 4.4 Book 1, 9.3; 9.2.2).

Readers reach the kernel through one method, ``async transceive(capdu) -> rapdu`` (raw bytes, the
R-APDU including SW1 SW2). :func:`exchange` adds what the transport layer owes the application
layer whatever the reader's protocol:

* ``61xx``: the card has ``xx`` more bytes; fetch them with GET RESPONSE (``00 C0 00 00 xx``),
  concatenating repeated 61xx answers (Book 1, 9.3.1.3 and 9.2.2.3.1).
* ``6Cxx``: wrong Le; re-issue the same command with Le = ``xx`` (Book 1, 9.3.1.3 case 2).
* A warning (``62xx``/``63xx``) after data stays attached to the response.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from terminal.apdu import CommandApdu, ResponseApdu
from terminal.errors import ApduError, TransportError

__all__ = ["MAX_EXCHANGES", "CardChannel", "TraceHook", "exchange"]

#: Commands sent for one logical exchange before the card is declared faulty.
MAX_EXCHANGES = 16

TraceHook = Callable[[bytes, bytes, float], None]
"""Called with (C-APDU, R-APDU, seconds) after each physical exchange."""


@runtime_checkable
class CardChannel(Protocol):
    """The one thing the kernel needs from a reader."""

    async def transceive(self, capdu: bytes) -> bytes:
        """Send a C-APDU and return the R-APDU (data + SW1 SW2)."""
        ...


async def exchange(
    channel: CardChannel,
    command: CommandApdu | bytes,
    *,
    trace: TraceHook | None = None,
) -> ResponseApdu:
    """Send one command and complete the 61xx / 6Cxx procedure.

    Args:
        channel: The card channel.
        command: The command, as :class:`CommandApdu` or raw bytes.
        trace: Optional hook receiving each physical exchange with its duration.

    Returns:
        The complete response, data collected across GET RESPONSE calls.

    Raises:
        TransportError: when the channel fails, answers fewer than two bytes, or the procedure
            does not converge within :data:`MAX_EXCHANGES` commands.
    """
    cmd = command if isinstance(command, CommandApdu) else _parse(command)
    raw_cmd = cmd.encode()
    collected = bytearray()
    le_retried = False
    for _ in range(MAX_EXCHANGES):
        rapdu = await _send(channel, raw_cmd, trace)
        sw1, sw2 = rapdu.sw1, rapdu.sw2
        if sw1 == 0x61:
            collected += rapdu.data
            raw_cmd = bytes((0x00, 0xC0, 0x00, 0x00, sw2))
            continue
        if sw1 == 0x6C and not le_retried and not collected:
            le_retried = True
            raw_cmd = cmd.with_le(sw2 or 256).encode()
            continue
        if collected:
            return ResponseApdu(bytes(collected) + rapdu.data, sw1, sw2)
        return rapdu
    raise TransportError(f"no final status word after {MAX_EXCHANGES} exchanges")


def _parse(raw: bytes) -> CommandApdu:
    try:
        return CommandApdu.parse(raw)
    except ApduError as exc:
        raise TransportError(f"cannot send malformed C-APDU: {exc.message}") from exc


async def _send(channel: CardChannel, raw_cmd: bytes, trace: TraceHook | None) -> ResponseApdu:
    started = time.perf_counter()
    raw = await channel.transceive(raw_cmd)
    if trace is not None:
        trace(raw_cmd, raw, time.perf_counter() - started)
    if len(raw) < 2:
        raise TransportError(f"R-APDU of {len(raw)} bytes has no status word")
    return ResponseApdu(bytes(raw[:-2]), raw[-2], raw[-1])
