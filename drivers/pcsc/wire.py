"""pcsc-lite's client/daemon messages over ``pcscd.comm``: a pure codec, no I/O.

Facts from pcsc-lite's ``winscard_msg.h`` and ``eventhandler.h`` (IPC protocol 4.4 in
pcsc-lite 1.9.x, 4.5 in 2.x: 4.5 only adds ``CMD_GET_READER_EVENTS``, every structure below is
the same). Every request is a header ``(size, command)`` followed by the command's structure;
the daemon answers with the structure alone. Integers are native-endian 32-bit fields (this
codec assumes little-endian hosts: x86-64 and ARM as Linux runs them). TRANSMIT and CONTROL
carry their data after the structure; the daemon sends the answer data after its structure
only when ``rv`` is success. The reader-state table (``CMD_GET_READERS_STATE`` and the answer
to ``CMD_WAIT_READER_STATE_CHANGE``) is 16 entries of 184 bytes.
"""

from __future__ import annotations

import enum
import struct
import sys
from dataclasses import dataclass
from typing import Any

from drivers.errors import ProtocolError

__all__ = [
    "MAX_APDU",
    "READER_TABLE_SIZE",
    "SUPPORTED_VERSIONS",
    "Command",
    "ReaderState",
    "WireError",
    "connect_request",
    "control_request",
    "decode",
    "parse_reader_states",
    "request",
    "transmit_request",
]

if sys.byteorder != "little":  # pragma: no cover - no big-endian host in use
    raise ImportError("drivers.pcsc.wire assumes a little-endian host")

#: IPC protocol versions this codec speaks, preferred first.
SUPPORTED_VERSIONS = ((4, 4), (4, 5))

MAX_READERNAME = 128
MAX_ATR_SIZE = 33
READER_NOT_INITIALIZED = MAX_ATR_SIZE + 1
MAX_READERS = 16
#: pcsc-lite's MAX_BUFFER_SIZE_EXTENDED: the largest C-APDU or R-APDU the daemon carries.
MAX_APDU = 4 + 3 + (1 << 16) + 3 + 2
#: Room asked for a CONTROL answer (the daemon refuses more than MAX_BUFFER_SIZE_EXTENDED).
MAX_CONTROL_ANSWER = MAX_APDU

HEADER = struct.Struct("<II")


class Command(enum.IntEnum):
    """``enum pcsc_msg_commands`` (the subset posgw sends)."""

    ESTABLISH_CONTEXT = 0x01
    RELEASE_CONTEXT = 0x02
    CONNECT = 0x04
    DISCONNECT = 0x06
    BEGIN_TRANSACTION = 0x07
    END_TRANSACTION = 0x08
    TRANSMIT = 0x09
    CONTROL = 0x0A
    STATUS = 0x0B
    VERSION = 0x11
    GET_READERS_STATE = 0x12
    WAIT_READER_STATE_CHANGE = 0x13
    STOP_WAITING_READER_STATE_CHANGE = 0x14


#: Each command's structure (requests and answers share it).
STRUCTS: dict[Command, struct.Struct] = {
    Command.VERSION: struct.Struct("<iiI"),  # major, minor, rv
    Command.ESTABLISH_CONTEXT: struct.Struct("<III"),  # scope, context, rv
    Command.RELEASE_CONTEXT: struct.Struct("<II"),  # context, rv
    # context, reader name, share mode, preferred protocols, card, active protocol, rv
    Command.CONNECT: struct.Struct(f"<I{MAX_READERNAME}sIIiII"),
    Command.DISCONNECT: struct.Struct("<iII"),  # card, disposition, rv
    Command.BEGIN_TRANSACTION: struct.Struct("<iI"),  # card, rv
    Command.END_TRANSACTION: struct.Struct("<iII"),  # card, disposition, rv
    # card, send PCI protocol, send PCI length, send length,
    # receive PCI protocol, receive PCI length, receive length, rv
    Command.TRANSMIT: struct.Struct("<iIIIIIII"),
    # card, control code, send length, receive length, bytes returned, rv
    Command.CONTROL: struct.Struct("<iIIIII"),
    Command.STATUS: struct.Struct("<iI"),  # card, rv
    Command.WAIT_READER_STATE_CHANGE: struct.Struct("<II"),  # timeout, rv
    Command.STOP_WAITING_READER_STATE_CHANGE: struct.Struct("<II"),  # timeout, rv (answer only)
}

#: ``READER_STATE``: name, event counter, state, sharing, ATR (33 + 3 padding), ATR length,
#: protocol.
READER_STATE = struct.Struct(f"<{MAX_READERNAME}sIIi{MAX_ATR_SIZE}s3xII")
READER_TABLE_SIZE = READER_STATE.size * MAX_READERS
PCI_LENGTH = 8  # sizeof(SCARD_IO_REQUEST)
PROTOCOL_ANY = 0x0003
#: Header and TRANSMIT structure in one pack (the hot path).
TRANSMIT_MESSAGE = struct.Struct("<II" + STRUCTS[Command.TRANSMIT].format[1:])
#: (data length, rv) at the end of TRANSMIT's and CONTROL's answers.
LENGTH_AND_RV = struct.Struct("<II")


class WireError(ProtocolError):
    """A message from (or for) pcscd that does not fit the IPC structures."""


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One entry of the daemon's reader table (``READER_STATE``)."""

    name: str
    event_counter: int
    state: int
    sharing: int
    atr: bytes
    protocol: int
    initialised: bool

    def __repr__(self) -> str:
        return f"ReaderState({self.name!r}, state=0x{self.state:04X}, events={self.event_counter})"


def request(command: Command, *fields: object) -> bytes:
    """Header plus the command's structure packed from ``fields``.

    Raises:
        WireError: a field out of its C type's range.
    """
    if command in (Command.GET_READERS_STATE, Command.STOP_WAITING_READER_STATE_CHANGE):
        return HEADER.pack(0, command)
    if command is Command.WAIT_READER_STATE_CHANGE and not fields:
        return HEADER.pack(0, command)  # the registration carries no body
    layout = STRUCTS[command]
    try:
        return HEADER.pack(layout.size, command) + layout.pack(*fields)
    except struct.error as exc:
        raise WireError(f"{command.name}: {exc}") from None


def decode(command: Command, data: bytes) -> tuple[Any, ...]:
    """Unpack the daemon's answer structure for ``command`` (integers, CONNECT's name bytes).

    Raises:
        WireError: ``data`` is not exactly the structure's size, or ``command`` has none.
    """
    layout = STRUCTS.get(command)
    if layout is None:
        raise WireError(f"{command.name} has no answer structure")
    if len(data) != layout.size:
        raise WireError(f"{command.name} answer of {len(data)} bytes, expected {layout.size}")
    return layout.unpack(data)


def reply_size(command: Command) -> int:
    """Bytes of the answer structure the daemon sends for ``command``."""
    if command in (Command.GET_READERS_STATE, Command.WAIT_READER_STATE_CHANGE):
        return READER_TABLE_SIZE  # the registration is answered with the table
    return STRUCTS[command].size


def encode_reader_name(name: str) -> bytes:
    """The NUL-terminated reader name field.

    Raises:
        WireError: a name that contains NUL or does not fit in 127 bytes of UTF-8.
    """
    raw = name.encode("utf-8")
    if b"\0" in raw or len(raw) >= MAX_READERNAME:
        raise WireError(f"reader name not representable ({len(raw)} bytes)")
    return raw


def connect_request(context: int, reader: str, share: int, protocols: int) -> bytes:
    """SCARD_CONNECT request (PC/SC Part 5, SCardConnect)."""
    return request(Command.CONNECT, context, encode_reader_name(reader), share, protocols, 0, 0, 0)


def transmit_request(card: int, protocol: int, apdu: bytes) -> bytes:
    """SCARD_TRANSMIT request with the C-APDU after the structure (PC/SC Part 5, SCardTransmit).

    The receive PCI is left to the daemon (``SCARD_PROTOCOL_ANY``), the receive room is the
    largest extended R-APDU.

    Raises:
        WireError: an empty or too long C-APDU, or a field out of range.
    """
    size = len(apdu)
    if not size or size > MAX_APDU:
        raise WireError(f"C-APDU of {size} bytes cannot be sent")
    try:
        head = TRANSMIT_MESSAGE.pack(
            TRANSMIT_MESSAGE.size - HEADER.size, Command.TRANSMIT,
            card, protocol, PCI_LENGTH, size, PROTOCOL_ANY, PCI_LENGTH, MAX_APDU, 0,
        )  # fmt: skip
    except struct.error as exc:
        raise WireError(f"TRANSMIT: {exc}") from None
    return head + apdu


def control_request(card: int, code: int, data: bytes) -> bytes:
    """SCARD_CONTROL request with its input after the structure (PC/SC Part 10 escapes).

    Raises:
        WireError: input longer than the daemon accepts, or a field out of range.
    """
    if len(data) > MAX_APDU:
        raise WireError(f"control input of {len(data)} bytes cannot be sent")
    return request(Command.CONTROL, card, code, len(data), MAX_CONTROL_ANSWER, 0, 0) + data


def parse_reader_states(table: bytes) -> tuple[ReaderState, ...]:
    """The readers present in a reader-state table (empty name: free entry).

    Raises:
        WireError: a table of the wrong size, an unterminated name or an ATR length beyond
            the field.
    """
    if len(table) != READER_TABLE_SIZE:
        raise WireError(f"reader table of {len(table)} bytes, expected {READER_TABLE_SIZE}")
    readers = []
    for index in range(MAX_READERS):
        fields = READER_STATE.unpack_from(table, index * READER_STATE.size)
        raw_name, counter, state, sharing, atr, atr_length, protocol = fields
        if raw_name[0] == 0:
            continue
        end = raw_name.find(b"\0")
        if end < 0:
            raise WireError(f"reader table entry {index}: name not terminated")
        initialised = atr_length != READER_NOT_INITIALIZED
        if initialised and atr_length > MAX_ATR_SIZE:
            raise WireError(f"reader table entry {index}: ATR length {atr_length}")
        readers.append(
            ReaderState(
                name=raw_name[:end].decode("utf-8", "replace"),
                event_counter=counter,
                state=state,
                sharing=sharing,
                atr=bytes(atr[:atr_length]) if initialised else b"",
                protocol=protocol,
                initialised=initialised,
            )
        )
    return tuple(readers)
