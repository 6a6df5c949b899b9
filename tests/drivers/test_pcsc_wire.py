"""The pcsc-lite IPC codec (drivers/pcsc/wire.py) against pcsc-lite's own C layout.

The reference layouts are written here a second time, as :mod:`ctypes` structures copied field
by field from the C declarations, so the compiler's alignment rules (not the codec's format
strings) decide sizes and offsets:

* ``winscard_msg.h`` (pcsc-lite 1.9.9, IPC 4.4; unchanged in 2.3.3, IPC 4.5):
  ``struct rxHeader``, ``version_struct``, ``establish_struct``, ``release_struct``,
  ``connect_struct``, ``disconnect_struct``, ``begin_struct``, ``end_struct``,
  ``status_struct``, ``transmit_struct``, ``control_struct``, ``wait_reader_state_change``;
* ``eventhandler.h``: ``READER_STATE`` and ``READER_NOT_INITIALIZED`` (``MAX_ATR_SIZE + 1``);
* ``PCSC/pcsclite.h.in``: ``MAX_READERNAME`` 128, ``MAX_ATR_SIZE`` 33,
  ``PCSCLITE_MAX_READERS_CONTEXTS`` 16, ``MAX_BUFFER_SIZE_EXTENDED`` 4+3+65536+3+2.

Pure: no daemon, no socket.
"""

from __future__ import annotations

import ctypes
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import ProtocolError
from drivers.pcsc import wire
from drivers.pcsc.wire import Command, ReaderState, WireError

I32, U32 = ctypes.c_int32, ctypes.c_uint32
# Example counts sized so that the whole fuzz part stays under ~5 s on one core.


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


def _c_struct(name: str, fields: list[tuple[str, type]]) -> type[ctypes.Structure]:
    return type(name, (ctypes.Structure,), {"_fields_": fields})


# winscard_msg.h, field by field (int32_t -> I32, uint32_t -> U32).
C_STRUCTS: dict[Command, type[ctypes.Structure]] = {
    Command.VERSION: _c_struct("version_struct", [("major", I32), ("minor", I32), ("rv", U32)]),
    Command.ESTABLISH_CONTEXT: _c_struct(
        "establish_struct", [("dwScope", U32), ("hContext", U32), ("rv", U32)]
    ),
    Command.RELEASE_CONTEXT: _c_struct("release_struct", [("hContext", U32), ("rv", U32)]),
    Command.CONNECT: _c_struct(
        "connect_struct",
        [
            ("hContext", U32),
            ("szReader", ctypes.c_char * 128),
            ("dwShareMode", U32),
            ("dwPreferredProtocols", U32),
            ("hCard", I32),
            ("dwActiveProtocol", U32),
            ("rv", U32),
        ],
    ),
    Command.DISCONNECT: _c_struct(
        "disconnect_struct", [("hCard", I32), ("dwDisposition", U32), ("rv", U32)]
    ),
    Command.BEGIN_TRANSACTION: _c_struct("begin_struct", [("hCard", I32), ("rv", U32)]),
    Command.END_TRANSACTION: _c_struct(
        "end_struct", [("hCard", I32), ("dwDisposition", U32), ("rv", U32)]
    ),
    Command.TRANSMIT: _c_struct(
        "transmit_struct",
        [
            ("hCard", I32),
            ("ioSendPciProtocol", U32),
            ("ioSendPciLength", U32),
            ("cbSendLength", U32),
            ("ioRecvPciProtocol", U32),
            ("ioRecvPciLength", U32),
            ("pcbRecvLength", U32),
            ("rv", U32),
        ],
    ),
    Command.CONTROL: _c_struct(
        "control_struct",
        [
            ("hCard", I32),
            ("dwControlCode", U32),
            ("cbSendLength", U32),
            ("cbRecvLength", U32),
            ("dwBytesReturned", U32),
            ("rv", U32),
        ],
    ),
    Command.STATUS: _c_struct("status_struct", [("hCard", I32), ("rv", U32)]),
    Command.WAIT_READER_STATE_CHANGE: _c_struct(
        "wait_reader_state_change", [("timeOut", U32), ("rv", U32)]
    ),
}

# eventhandler.h: READER_STATE (the C compiler pads cardAtr[33] to the next uint32_t).
C_READER_STATE = _c_struct(
    "READER_STATE",
    [
        ("readerName", ctypes.c_char * 128),
        ("eventCounter", U32),
        ("readerState", U32),
        ("readerSharing", I32),
        ("cardAtr", ctypes.c_ubyte * 33),
        ("cardAtrLength", U32),
        ("cardProtocol", U32),
    ],
)
C_READER_TABLE = C_READER_STATE * 16

# The sizes pcsc-lite's C layout gives, written out (what a byte-level capture shows).
C_SIZES = {
    Command.VERSION: 12,  # winscard_msg.h version_struct
    Command.ESTABLISH_CONTEXT: 12,  # establish_struct
    Command.RELEASE_CONTEXT: 8,  # release_struct
    Command.CONNECT: 152,  # connect_struct: 4 + MAX_READERNAME 128 + 5 * 4
    Command.DISCONNECT: 12,  # disconnect_struct
    Command.BEGIN_TRANSACTION: 8,  # begin_struct
    Command.END_TRANSACTION: 12,  # end_struct
    Command.TRANSMIT: 32,  # transmit_struct
    Command.CONTROL: 24,  # control_struct
    Command.STATUS: 8,  # status_struct
    Command.WAIT_READER_STATE_CHANGE: 8,  # wait_reader_state_change
}

ATR = bytes.fromhex("3BDA18FF81B1FE751F030031F573C78A40009000B0")  # a T=1 contact ATR


def _name_field(fields: tuple[object, ...]) -> bytes:
    """The ``szReader`` field of a decoded CONNECT structure (raw 128 bytes)."""
    name = fields[1]
    assert isinstance(name, bytes)
    return name


# -- layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(C_SIZES), ids=lambda c: c.name)
def test_struct_sizes_match_pcsc_lite(command: Command) -> None:
    assert wire.STRUCTS[command].size == C_SIZES[command]
    assert ctypes.sizeof(C_STRUCTS[command]) == C_SIZES[command]


def test_constants_and_table_size() -> None:
    assert wire.HEADER.size == 8  # winscard_msg.h struct rxHeader: uint32_t size, command
    assert wire.MAX_READERNAME == 128  # pcsclite.h.in
    assert wire.MAX_ATR_SIZE == 33  # pcsclite.h.in
    assert wire.READER_NOT_INITIALIZED == 34  # eventhandler.h: MAX_ATR_SIZE + 1
    assert wire.MAX_READERS == 16  # pcsclite.h.in: PCSCLITE_MAX_READERS_CONTEXTS
    assert wire.MAX_APDU == 65548  # pcsclite.h.in: MAX_BUFFER_SIZE_EXTENDED
    assert wire.READER_STATE.size == ctypes.sizeof(C_READER_STATE) == 184
    assert wire.READER_TABLE_SIZE == ctypes.sizeof(C_READER_TABLE) == 2944
    assert wire.reply_size(Command.GET_READERS_STATE) == 2944
    assert wire.reply_size(Command.TRANSMIT) == 32
    # pcsc_msg_commands (winscard_msg.h)
    assert [c.value for c in (Command.TRANSMIT, Command.CONTROL, Command.VERSION)] == [9, 10, 17]
    assert Command.GET_READERS_STATE.value == 0x12
    assert Command.WAIT_READER_STATE_CHANGE.value == 0x13


def test_requests_have_header_then_body() -> None:
    message = wire.request(Command.VERSION, 4, 4, 0)
    assert message == struct.pack("<IIiiI", 12, 0x11, 4, 4, 0)
    # CMD_GET_READERS_STATE and the event registration carry no body (winscard_svc.c)
    assert wire.request(Command.GET_READERS_STATE) == struct.pack("<II", 0, 0x12)
    assert wire.request(Command.WAIT_READER_STATE_CHANGE) == struct.pack("<II", 0, 0x13)
    assert wire.request(Command.STOP_WAITING_READER_STATE_CHANGE) == struct.pack("<II", 0, 0x14)


def test_connect_request_matches_c_layout() -> None:
    message = wire.connect_request(0x1234_5678, "posgw Lane 00 00", 1, 3)
    size, command = struct.unpack_from("<II", message)
    assert (size, command) == (152, 0x04)
    expected = C_STRUCTS[Command.CONNECT](
        hContext=0x1234_5678,
        szReader=b"posgw Lane 00 00",
        dwShareMode=1,
        dwPreferredProtocols=3,
    )
    assert message[8:] == bytes(expected)
    fields = wire.decode(Command.CONNECT, message[8:])
    assert fields[0] == 0x1234_5678
    assert _name_field(fields).rstrip(b"\0") == b"posgw Lane 00 00"
    assert fields[2:] == (1, 3, 0, 0, 0)


def test_transmit_and_control_requests_carry_data_after_the_struct() -> None:
    apdu = bytes.fromhex("00A404000E315041592E5359532E444446303100")
    message = wire.transmit_request(-5, 2, apdu)
    assert struct.unpack_from("<II", message) == (32, 0x09)
    assert message[40:] == apdu
    card, send_proto, send_pci, send_len, recv_proto, recv_pci, room, rv = wire.decode(
        Command.TRANSMIT, message[8:40]
    )
    assert (card, send_proto, send_len, rv) == (-5, 2, len(apdu), 0)
    assert send_pci == recv_pci == 8  # sizeof(SCARD_IO_REQUEST)
    assert recv_proto == 3  # SCARD_PROTOCOL_ANY: the daemon fills in the receive PCI
    assert room == wire.MAX_APDU
    control = wire.control_request(7, 0x42000D48, b"\x01\x02")
    assert struct.unpack_from("<II", control) == (24, 0x0A)
    assert wire.decode(Command.CONTROL, control[8:32]) == (7, 0x42000D48, 2, wire.MAX_APDU, 0, 0)
    assert control[32:] == b"\x01\x02"


# -- the reader table -----------------------------------------------------------------------


def _set_name(entry: ctypes.Structure, name: bytes) -> None:
    # raw copy: assigning to a ``c_char`` array field would stop at the first NUL
    offset = C_READER_STATE.readerName.offset
    ctypes.memmove(ctypes.addressof(entry) + offset, name, len(name))


def _entry(
    table: ctypes.Array[ctypes.Structure],
    index: int,
    name: bytes,
    *,
    counter: int = 0,
    state: int = 0,
    sharing: int = 0,
    atr: bytes = b"",
    atr_length: int | None = None,
    protocol: int = 0,
) -> None:
    entry = table[index]
    _set_name(entry, name)
    entry.eventCounter, entry.readerState, entry.readerSharing = counter, state, sharing
    ctypes.memmove(entry.cardAtr, atr, len(atr))
    entry.cardAtrLength = len(atr) if atr_length is None else atr_length
    entry.cardProtocol = protocol


def test_hand_built_table_parses() -> None:
    table = C_READER_TABLE()
    # SCARD_PRESENT|SCARD_POWERED|SCARD_NEGOTIABLE = 0x34; PCSCLITE_SHARING_EXCLUSIVE_CONTEXT -1
    _entry(table, 0, b"posgw Lane 00 00", counter=3, state=0x34, sharing=-1, atr=ATR, protocol=2)
    _entry(table, 1, b"posgw Lane 00 01", counter=0, state=0x02)  # SCARD_ABSENT
    # entries 2..4 free (empty name); a not-yet-initialised reader further down the table
    _entry(
        table, 5, b"Reader \xc3\xa9 starting", counter=1, state=0, atr=b"\xff" * 33, atr_length=34
    )
    readers = wire.parse_reader_states(bytes(table))
    assert readers == (
        ReaderState("posgw Lane 00 00", 3, 0x34, -1, ATR, 2, True),
        ReaderState("posgw Lane 00 01", 0, 0x02, 0, b"", 0, True),
        ReaderState("Reader é starting", 1, 0, 0, b"", 0, False),
    )
    assert readers[0].atr == ATR  # the ATR bytes past cardAtrLength are not included


def test_reader_state_repr_has_no_atr() -> None:
    state = ReaderState("posgw Lane 00 00", 3, 0x34, -1, ATR, 2, True)
    assert ATR.hex() not in repr(state).lower()
    assert "posgw Lane 00 00" in repr(state)


def test_empty_table_and_full_atr() -> None:
    assert wire.parse_reader_states(bytes(wire.READER_TABLE_SIZE)) == ()
    table = C_READER_TABLE()
    _entry(table, 15, b"last", atr=bytes(range(33)))  # MAX_ATR_SIZE exactly
    (last,) = wire.parse_reader_states(bytes(table))
    assert last.atr == bytes(range(33))
    assert last.initialised


@pytest.mark.parametrize("size", [0, 1, 183, 184, 2943, 2945, 2 * 2944])
def test_table_of_wrong_size(size: int) -> None:
    with pytest.raises(WireError, match="reader table"):
        wire.parse_reader_states(bytes(size))


def test_unterminated_name() -> None:
    table = C_READER_TABLE()
    _entry(table, 4, b"n" * 128)
    with pytest.raises(WireError, match="entry 4: name not terminated"):
        wire.parse_reader_states(bytes(table))


@pytest.mark.parametrize("atr_length", [35, 40, 0xFFFFFFFF])
def test_atr_length_beyond_field(atr_length: int) -> None:
    table = C_READER_TABLE()
    _entry(table, 1, b"posgw Lane 00 01", atr=ATR, atr_length=atr_length)
    with pytest.raises(WireError, match=f"ATR length {atr_length}"):
        wire.parse_reader_states(bytes(table))


def test_wire_error_is_a_protocol_error() -> None:
    assert issubclass(WireError, ProtocolError)


# -- typed errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(C_SIZES), ids=lambda c: c.name)
def test_decode_of_wrong_sizes(command: Command) -> None:
    size = C_SIZES[command]
    for wrong in (0, 1, size - 1, size + 1, 2 * size):
        with pytest.raises(WireError, match=f"{command.name} answer of {wrong} bytes"):
            wire.decode(command, bytes(wrong))


@pytest.mark.parametrize(
    "command",
    [Command.GET_READERS_STATE, Command.STOP_WAITING_READER_STATE_CHANGE],
    ids=lambda c: c.name,
)
def test_decode_of_commands_without_a_struct(command: Command) -> None:
    # winscard_svc.c answers CMD_STOP_WAITING_READER_STATE_CHANGE with a
    # wait_reader_state_change (8 bytes); the reader table has parse_reader_states.
    try:
        wire.decode(command, bytes(8))
    except WireError:
        pass
    except Exception as exc:  # the point: nothing but WireError escapes
        raise AssertionError(
            f"wire.decode({command.name}, ...) raised {type(exc).__name__}, not WireError: "
            "decode() looks the command up in STRUCTS, which has no entry for it"
        ) from exc


@pytest.mark.parametrize(
    "name",
    ["bad\0name", "\0", "n" * 128, "n" * 500, "é" * 64],  # "é" is 2 bytes: 128 in all
    ids=["nul", "only-nul", "128", "500", "utf8-128"],
)
def test_reader_name_not_representable(name: str) -> None:
    with pytest.raises(WireError, match="reader name not representable"):
        wire.connect_request(1, name, 1, 3)


def test_longest_reader_name() -> None:
    for name in ("n" * 127, "é" * 63 + "n"):  # 127 bytes + the NUL
        fields = wire.decode(Command.CONNECT, wire.connect_request(1, name, 1, 3)[8:])
        assert _name_field(fields) == name.encode().ljust(128, b"\0")


def test_apdu_length_limits() -> None:
    with pytest.raises(WireError, match="C-APDU of 0 bytes"):
        wire.transmit_request(1, 2, b"")
    with pytest.raises(WireError, match=f"C-APDU of {wire.MAX_APDU + 1} bytes"):
        wire.transmit_request(1, 2, bytes(wire.MAX_APDU + 1))
    assert len(wire.transmit_request(1, 2, bytes(wire.MAX_APDU))) == 40 + wire.MAX_APDU
    with pytest.raises(WireError, match="control input"):
        wire.control_request(1, 0x42000D48, bytes(wire.MAX_APDU + 1))
    assert len(wire.control_request(1, 0x42000D48, b"")) == 32


@pytest.mark.parametrize(
    "make",
    [
        lambda: wire.transmit_request(1, -1, b"\x00\xa4\x04\x00"),  # uint32 protocol
        lambda: wire.transmit_request(2**31, 2, b"\x00\xa4\x04\x00"),  # int32 hCard
        lambda: wire.transmit_request(-(2**31) - 1, 2, b"\x00\xa4\x04\x00"),
        lambda: wire.connect_request(-1, "posgw Lane 00 00", 1, 3),  # uint32 hContext
        lambda: wire.connect_request(1, "posgw Lane 00 00", 2**32, 3),
        lambda: wire.control_request(1, -1, b""),  # uint32 control code
        lambda: wire.control_request(1, 2**32, b""),
        lambda: wire.request(Command.ESTABLISH_CONTEXT, -1, 0, 0),
        lambda: wire.request(Command.VERSION, 2**31, 4, 0),  # int32 major
        lambda: wire.request(Command.STATUS, 1),  # too few fields
        lambda: wire.request(Command.STATUS, 1, 0, 0),  # too many
        lambda: wire.request(Command.DISCONNECT, "1", 2, 0),  # not an integer
        lambda: wire.request(Command.RELEASE_CONTEXT, 1.5, 0),
    ],
)
def test_fields_out_of_range(make: object) -> None:
    assert callable(make)
    with pytest.raises(WireError):
        make()


# -- fuzz -----------------------------------------------------------------------------------

ANSWER_COMMANDS = sorted(C_SIZES)


@_fuzz(3000)
@given(data=st.binary(max_size=3 * 2944))
def test_fuzz_any_bytes_only_wire_error(data: bytes) -> None:
    try:
        readers = wire.parse_reader_states(data)
    except WireError:
        pass
    else:
        assert len(data) == wire.READER_TABLE_SIZE
        assert len(readers) <= 16
    for command in ANSWER_COMMANDS:
        try:
            fields = wire.decode(command, data)
        except WireError:
            continue
        assert len(data) == C_SIZES[command]
        assert len(fields) == len(C_STRUCTS[command]._fields_)


@_fuzz(400)
@given(data=st.binary(min_size=2944, max_size=2944))
def test_fuzz_full_size_tables(data: bytes) -> None:
    try:
        readers = wire.parse_reader_states(data)
    except WireError:
        return
    for reader in readers:
        assert reader.name
        assert len(reader.atr) <= 33
        assert reader.initialised or reader.atr == b""


_names = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=128),  # may be unterminated or NUL-led
    st.text(min_size=1, max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")[:127]),
)
_entries = st.tuples(
    _names,
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.binary(max_size=33),
    st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)),
    st.integers(0, 2**32 - 1),
)


Entry = tuple[bytes, int, int, int, bytes, int, int]


def _oracle(entries: list[Entry]) -> tuple[ReaderState, ...] | None:
    """What the table must parse to, from the C semantics (None: it must be refused)."""
    readers = []
    for name, counter, state, sharing, atr, atr_length, protocol in entries:
        field = name.ljust(128, b"\0")
        if field[0] == 0:
            continue  # a free entry
        if b"\0" not in field or (atr_length > 33 and atr_length != 34):
            return None
        initialised = atr_length != 34
        readers.append(
            ReaderState(
                name=field.split(b"\0")[0].decode("utf-8", "replace"),
                event_counter=counter,
                state=state,
                sharing=sharing,
                protocol=protocol,
                initialised=initialised,
                atr=atr.ljust(33, b"\0")[:atr_length] if initialised else b"",
            )
        )
    return tuple(readers)


@_fuzz(600)
@given(entries=st.lists(_entries, min_size=1, max_size=16))
def test_fuzz_structured_tables(entries: list[Entry]) -> None:
    table = C_READER_TABLE()  # entries past the drawn ones stay free (all zero)
    for index, (name, counter, state, sharing, atr, atr_length, protocol) in enumerate(entries):
        entry = table[index]
        _set_name(entry, name)
        entry.eventCounter, entry.readerState, entry.readerSharing = counter, state, sharing
        ctypes.memmove(entry.cardAtr, atr, len(atr))
        entry.cardAtrLength, entry.cardProtocol = atr_length, protocol
    expected = _oracle(entries)
    try:
        readers = wire.parse_reader_states(bytes(table))
    except WireError:
        assert expected is None, "WireError for a table whose every live entry is valid"
        return
    assert readers == expected


_i32 = st.integers(-(2**31), 2**31 - 1)
_u32 = st.integers(0, 2**32 - 1)


def _values(command: Command) -> st.SearchStrategy[tuple[object, ...]]:
    kinds: list[st.SearchStrategy[object]] = []
    for field in C_STRUCTS[command]._fields_:
        ctype = field[1]
        if ctype is I32:
            kinds.append(_i32)
        elif ctype is U32:
            kinds.append(_u32)
        else:
            kinds.append(st.binary(max_size=127).map(lambda b: b.ljust(128, b"\0")))
    return st.tuples(*kinds)


def _c_field(value: ctypes.Structure, name: str) -> object:
    """A field as C reads it (a ``char[]`` raw, not cut at its first NUL as ctypes does)."""
    if name == "szReader":
        offset = type(value).szReader.offset
        return ctypes.string_at(ctypes.addressof(value) + offset, 128)
    return getattr(value, name)


@_fuzz(1000)
@given(data=st.data())
def test_fuzz_request_decode_round_trip_matches_c(data: st.DataObject) -> None:
    command = data.draw(st.sampled_from(ANSWER_COMMANDS))
    values = data.draw(_values(command))
    message = wire.request(command, *values)
    assert struct.unpack_from("<II", message) == (C_SIZES[command], command)
    body = message[8:]
    c_value = C_STRUCTS[command].from_buffer_copy(body)
    c_fields = tuple(_c_field(c_value, field[0]) for field in C_STRUCTS[command]._fields_)
    assert c_fields == values  # the C compiler reads the fields the codec wrote
    assert wire.decode(command, body) == values


@_fuzz(800)
@given(card=_i32, protocol=_u32, apdu=st.binary(min_size=1, max_size=300))
def test_fuzz_transmit_round_trip(card: int, protocol: int, apdu: bytes) -> None:
    message = wire.transmit_request(card, protocol, apdu)
    fields = wire.decode(Command.TRANSMIT, message[8:40])
    assert fields == (card, protocol, 8, len(apdu), 3, 8, wire.MAX_APDU, 0)
    assert message[40:] == apdu


@_fuzz(600)
@given(
    context=_u32,
    name=st.text(
        st.characters(exclude_characters="\0", codec="utf-8"), min_size=1, max_size=60
    ).filter(lambda s: len(s.encode()) < 128),
    share=_u32,
    protocols=_u32,
)
def test_fuzz_connect_round_trip(context: int, name: str, share: int, protocols: int) -> None:
    message = wire.connect_request(context, name, share, protocols)
    decoded = wire.decode(Command.CONNECT, message[8:])
    assert decoded[0] == context
    assert _name_field(decoded).split(b"\0")[0].decode() == name
    assert decoded[2:] == (share, protocols, 0, 0, 0)


@_fuzz(800)
@given(card=_i32, code=_u32, data=st.binary(max_size=300))
def test_fuzz_control_round_trip(card: int, code: int, data: bytes) -> None:
    message = wire.control_request(card, code, data)
    assert wire.decode(Command.CONTROL, message[8:32]) == (
        card,
        code,
        len(data),
        wire.MAX_APDU,
        0,
        0,
    )
    assert message[32:] == data


@_fuzz(600)
@given(
    command=st.sampled_from(ANSWER_COMMANDS),
    values=st.lists(st.one_of(st.integers(-(2**40), 2**40), st.binary(max_size=200)), max_size=9),
)
def test_fuzz_request_only_wire_error(command: Command, values: list[object]) -> None:
    try:
        message = wire.request(command, *values)
    except WireError:
        return
    if command is Command.WAIT_READER_STATE_CHANGE and not values:
        assert len(message) == 8  # the event registration: header alone
    else:
        assert len(message) == 8 + C_SIZES[command]
