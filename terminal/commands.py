"""Card commands and their responses: the EMV application layer (EMV 4.4 Book 3, 6.5; Book 1, 11).

Builders return :class:`~terminal.apdu.CommandApdu`; parsers take the R-APDU data field and
return typed values, raising :class:`~terminal.errors.CardDataError` (with the tag) or
:class:`~terminal.errors.TlvError` on malformed data, never IndexError/KeyError/ValueError.
:class:`CardIo` sends commands over a :class:`~terminal.transport.CardChannel` with the
61xx/6Cxx procedure and a masked trace; it is shared by the contact and contactless kernels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from terminal.apdu import CommandApdu, ResponseApdu
from terminal.bits import CryptogramType
from terminal.dol import DolEntry
from terminal.errors import CardDataError
from terminal.tlv import Tlv, decode, encode, flatten
from terminal.trace import Tracer
from terminal.transport import CardChannel, exchange

__all__ = [
    "PSE_NAME",
    "CardIo",
    "DirectoryEntry",
    "Fci",
    "GenAcResponse",
    "GpoResponse",
    "external_authenticate",
    "generate_ac",
    "get_challenge",
    "get_data",
    "get_processing_options",
    "internal_authenticate",
    "parse_directory_record",
    "parse_fci",
    "parse_genac",
    "parse_get_data",
    "parse_gpo",
    "parse_internal_authenticate",
    "parse_record",
    "read_record",
    "select",
]

PSE_NAME = b"1PAY.SYS.DDF01"
_CDA_REQUESTED = 0x10


def select(name: bytes, *, next_occurrence: bool = False) -> CommandApdu:
    """SELECT by name (Book 1, 11.3): ``00 A4 04 00|02 Lc name 00``."""
    return CommandApdu(0x00, 0xA4, 0x04, 0x02 if next_occurrence else 0x00, name, 256)


def read_record(sfi: int, record: int) -> CommandApdu:
    """READ RECORD (Book 1, 11.2): ``00 B2 record (SFI<<3 | 4) 00``."""
    return CommandApdu(0x00, 0xB2, record, (sfi << 3) | 0x04, b"", 256)


def get_processing_options(pdol_data: bytes) -> CommandApdu:
    """GET PROCESSING OPTIONS (Book 3, 6.5.8): data ``83 L pdol-data`` (``83 00`` if no PDOL)."""
    return CommandApdu(0x80, 0xA8, 0x00, 0x00, encode(0x83, pdol_data), 256)


def generate_ac(kind: CryptogramType, cdol_data: bytes, *, cda: bool = False) -> CommandApdu:
    """GENERATE AC (Book 3, 6.5.5): P1 = reference control (AAC 00, TC 40, ARQC 80) | CDA 10."""
    return CommandApdu(0x80, 0xAE, int(kind) | (_CDA_REQUESTED if cda else 0), 0x00, cdol_data, 256)


def get_data(tag: int) -> CommandApdu:
    """GET DATA (Book 3, 6.5.7): ``80 CA P1 P2 00`` for 9F36, 9F13, 9F17, 9F4F."""
    return CommandApdu(0x80, 0xCA, (tag >> 8) & 0xFF, tag & 0xFF, b"", 256)


def internal_authenticate(ddol_data: bytes) -> CommandApdu:
    """INTERNAL AUTHENTICATE (Book 3, 6.5.9): ``00 88 00 00 Lc DDOL-data 00``."""
    return CommandApdu(0x00, 0x88, 0x00, 0x00, ddol_data, 256)


def external_authenticate(issuer_authentication_data: bytes) -> CommandApdu:
    """EXTERNAL AUTHENTICATE (Book 3, 6.5.4): ``00 82 00 00 Lc data`` (8-16 bytes, no Le)."""
    return CommandApdu(0x00, 0x82, 0x00, 0x00, issuer_authentication_data)


def get_challenge() -> CommandApdu:
    """GET CHALLENGE (Book 3, 6.5.6): ``00 84 00 00 00`` (8 bytes expected)."""
    return CommandApdu(0x00, 0x84, 0x00, 0x00, b"", 256)


def _single_template(data: bytes, allowed: Iterable[int], what: str) -> Tlv:
    objects = decode(data)
    if len(objects) != 1 or objects[0].tag not in allowed:
        raise CardDataError(
            f"{what} is not one expected template", tag=objects[0].tag if objects else None
        )
    return objects[0]


@dataclass(frozen=True, slots=True)
class Fci:
    """File Control Information of an ADF or DDF (Book 1, 11.3.4, Tables 43-45)."""

    df_name: bytes
    label: str | None = None
    preferred_name: str | None = None
    priority: int | None = None
    confirmation_required: bool = False
    pdol: bytes | None = None
    language: str | None = None
    issuer_code_table: int | None = None
    sfi: int | None = None
    data: dict[int, bytes] = field(default_factory=dict, repr=False)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1").strip()


def parse_fci(data: bytes) -> Fci:
    """Parse a SELECT response: ``6F { 84, A5 { 50, 87, 9F38, 5F2D, 9F11, 9F12, 88, BF0C } }``.

    Raises:
        CardDataError: when 6F, 84 or A5 is missing (Book 1, 11.3.4; Book 3, 6.5.11.4).
        TlvError: when the data is not BER-TLV.
    """
    fci = _single_template(data, (0x6F,), "FCI")
    children = fci.children or ()
    df = next((c for c in children if c.tag == 0x84), None)
    prop = next((c for c in children if c.tag == 0xA5), None)
    if df is None or prop is None:
        raise CardDataError("FCI lacks the DF name (84) or proprietary template (A5)", tag=0x6F)
    values = flatten(prop.children or ())
    values[0x84] = df.value
    api = values.get(0x87)
    sfi = values.get(0x88)
    code_table = values.get(0x9F11)
    return Fci(
        df_name=df.value,
        label=_text(values.get(0x50)),
        preferred_name=_text(values.get(0x9F12)),
        priority=api[0] & 0x0F if api else None,
        confirmation_required=bool(api[0] & 0x80) if api else False,
        pdol=values.get(0x9F38),
        language=_text(values.get(0x5F2D)),
        issuer_code_table=code_table[0] if code_table else None,
        sfi=sfi[0] if sfi else None,
        data=values,
    )


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One ADF entry (tag 61) of a PSE directory record (Book 1, 12.2.3, Table 47)."""

    aid: bytes
    label: str | None
    preferred_name: str | None
    priority: int | None
    confirmation_required: bool


def parse_directory_record(data: bytes) -> list[DirectoryEntry]:
    """Parse a PSE directory record: ``70 { 61 { 4F, 50, 9F12, 87 }... }`` (Book 1, 12.2.3).

    Entries without a 4F (DDF entries with 9D) are skipped, as Book 1, 12.3.2 step 3 allows.
    """
    record = _single_template(data, (0x70,), "directory record")
    out: list[DirectoryEntry] = []
    for entry in record.children or ():
        if entry.tag != 0x61 or entry.children is None:
            continue
        values = flatten(entry.children)
        aid = values.get(0x4F)
        if aid is None or not 5 <= len(aid) <= 16:
            continue
        api = values.get(0x87)
        out.append(
            DirectoryEntry(
                aid,
                _text(values.get(0x50)),
                _text(values.get(0x9F12)),
                api[0] & 0x0F if api else None,
                bool(api[0] & 0x80) if api else False,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class GpoResponse:
    """GPO response (Book 3, 6.5.8.4): AIP and AFL, plus any other objects of format 2."""

    aip: bytes
    afl: bytes
    data: dict[int, bytes] = field(repr=False)  # format 2 may carry 57/5A (card data)


def parse_gpo(data: bytes) -> GpoResponse:
    """Parse a GPO response, format 1 (``80``: AIP || AFL) or format 2 (``77`` with 82, 94).

    Raises:
        CardDataError: when the template is wrong or the AIP/AFL are absent or of bad length.
    """
    obj = _single_template(data, (0x80, 0x77), "GPO response")
    if obj.tag == 0x80:
        if len(obj.value) < 2 or (len(obj.value) - 2) % 4:
            raise CardDataError("GPO format 1 has a bad length", tag=0x80)
        aip, afl = obj.value[:2], obj.value[2:]
        values = {0x82: aip, 0x94: afl}
    else:
        values = flatten(obj.children or ())
        aip_v, afl_v = values.get(0x82), values.get(0x94)
        if aip_v is None or afl_v is None:
            raise CardDataError("GPO format 2 lacks AIP (82) or AFL (94)", tag=0x77)
        aip, afl = aip_v, afl_v
    if len(aip) != 2:
        raise CardDataError("AIP is not 2 bytes", tag=0x82)
    if not afl or len(afl) % 4:
        raise CardDataError("AFL is not a non-empty multiple of 4 bytes", tag=0x94)
    return GpoResponse(aip, afl, values)


def parse_record(data: bytes) -> list[Tlv]:
    """Parse a READ RECORD response of an AEF: one ``70`` template (Book 3, 6.5.11.4; 10.2)."""
    record = _single_template(data, (0x70,), "record")
    return list(record.children or ())


@dataclass(frozen=True, slots=True)
class GenAcResponse:
    """GENERATE AC response (Book 3, 6.5.5.4): CID, ATC, AC, IAD; SDAD with CDA.

    Attributes:
        objects: The template 77 children in order (for the CDA transaction data hash).
    """

    cid: bytes
    atc: bytes
    cryptogram: bytes
    iad: bytes | None
    sdad: bytes | None
    data: dict[int, bytes] = field(repr=False)  # may carry card data: never in a repr
    objects: tuple[Tlv, ...] = field(repr=False)
    format2: bool

    @property
    def cryptogram_type(self) -> CryptogramType:
        """Bits 8-7 of the CID."""
        return CryptogramType(self.cid[0] & 0xC0)


def parse_genac(data: bytes) -> GenAcResponse:
    """Parse a GENERATE AC response, format 1 (``80``) or format 2 (``77``) (Book 3, 6.5.5.4).

    Raises:
        CardDataError: when CID (1 byte), ATC (2 bytes) or AC (8 bytes) is absent or malformed.
    """
    obj = _single_template(data, (0x80, 0x77), "GENERATE AC response")
    if obj.tag == 0x80:
        value = obj.value
        if not 11 <= len(value) <= 43:
            raise CardDataError("GENERATE AC format 1 has a bad length", tag=0x80)
        values = {0x9F27: value[0:1], 0x9F36: value[1:3], 0x9F26: value[3:11]}
        if len(value) > 11:
            values[0x9F10] = value[11:]
        objects: tuple[Tlv, ...] = ()
    else:
        objects = obj.children or ()
        values = flatten(objects)
    cid, atc, ac = values.get(0x9F27), values.get(0x9F36), values.get(0x9F26)
    if cid is None or len(cid) != 1:
        raise CardDataError("CID absent or not 1 byte", tag=0x9F27)
    if atc is None or len(atc) != 2:
        raise CardDataError("ATC absent or not 2 bytes", tag=0x9F36)
    sdad = values.get(0x9F4B)
    if (ac is None or len(ac) != 8) and sdad is None:
        raise CardDataError("application cryptogram absent or not 8 bytes", tag=0x9F26)
    return GenAcResponse(
        cid, atc, ac or b"", values.get(0x9F10), sdad, values, objects, obj.tag == 0x77
    )


def parse_internal_authenticate(data: bytes) -> bytes:
    """The SDAD from an INTERNAL AUTHENTICATE response (Book 3, 6.5.9.4): ``80`` or ``77``/9F4B."""
    obj = _single_template(data, (0x80, 0x77), "INTERNAL AUTHENTICATE response")
    if obj.tag == 0x80:
        return obj.value
    sdad = flatten(obj.children or ()).get(0x9F4B)
    if sdad is None:
        raise CardDataError("INTERNAL AUTHENTICATE response lacks 9F4B", tag=0x77)
    return sdad


def parse_get_data(data: bytes, tag: int) -> bytes:
    """The value of ``tag`` from a GET DATA response (Book 3, 6.5.7.4)."""
    objects = decode(data)
    if len(objects) != 1 or objects[0].tag != tag:
        raise CardDataError("GET DATA returned another object", tag=tag)
    return objects[0].value


class CardIo:
    """Sends commands to the card with the 61xx/6Cxx procedure and records a masked trace."""

    def __init__(self, channel: CardChannel, tracer: Tracer | None = None) -> None:
        self.channel = channel
        self.tracer = tracer if tracer is not None else Tracer()

    async def send(
        self, command: CommandApdu, *, dol: list[DolEntry] | None = None
    ) -> ResponseApdu:
        """Send one command; ``dol`` masks DOL-built command data in the trace.

        Raises:
            TransportError: when the channel fails or the procedure does not converge.
        """
        self.tracer.expect_dol(dol)
        return await exchange(self.channel, command, trace=self.tracer.hook)

    async def send_raw(self, capdu: bytes) -> bytes:
        """Send raw C-APDU bytes (for the PIN pad); returns data + SW1 SW2."""
        response = await exchange(self.channel, capdu, trace=self.tracer.hook)
        return response.encode()
