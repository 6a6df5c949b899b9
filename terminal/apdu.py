"""Command and response APDUs and status words (EMV 4.4 Book 1, 9.4; ISO/IEC 7816-4, 5).

Only short APDUs are used in EMV: Lc and Le are one byte, Le ``00`` meaning 256.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.errors import ApduError

__all__ = [
    "SW_OK",
    "CommandApdu",
    "ResponseApdu",
    "sw_meaning",
]

SW_OK = 0x9000

_MEANINGS: dict[int, str] = {
    0x9000: "normal processing",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before reading Le bytes",
    0x6283: "warning: selected file invalidated (application blocked)",
    0x6284: "warning: FCI not formatted as expected",
    0x6300: "warning: authentication failed",
    0x6400: "error: state of non-volatile memory unchanged",
    0x6581: "error: memory failure",
    0x6700: "error: wrong length",
    0x6883: "error: last command of the chain expected",
    0x6884: "error: command chaining not supported",
    0x6981: "error: command incompatible with file structure",
    0x6982: "error: security status not satisfied",
    0x6983: "error: authentication method blocked",
    0x6984: "error: referenced data invalidated",
    0x6985: "error: conditions of use not satisfied",
    0x6986: "error: command not allowed (no current EF)",
    0x6A80: "error: incorrect parameters in the data field",
    0x6A81: "error: function not supported (card or application blocked)",
    0x6A82: "error: file or application not found",
    0x6A83: "error: record not found",
    0x6A84: "error: not enough memory space in the file",
    0x6A86: "error: incorrect parameters P1-P2",
    0x6A88: "error: referenced data not found",
    0x6B00: "error: wrong parameters P1-P2",
    0x6D00: "error: instruction code not supported",
    0x6E00: "error: class not supported",
    0x6F00: "error: no precise diagnosis",
}


def sw_meaning(sw: int) -> str:
    """A short English meaning of a status word (Book 1, 9.4.4 and ISO/IEC 7816-4)."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} response bytes still available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le: {sw2 or 256} bytes available"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"warning: counter, {sw2 & 0x0F} tries left"
    return "unknown status word"


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A short command APDU (Book 1, 9.4.1): CLA INS P1 P2 [Lc data] [Le]."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ApduError(f"{name} out of range")
        if len(self.data) > 255:
            raise ApduError(f"command data of {len(self.data)} bytes exceeds a short APDU")
        if self.le is not None and not 0 <= self.le <= 256:
            raise ApduError(f"Le {self.le} out of range")

    def encode(self) -> bytes:
        """Encode as bytes; Le 256 is sent as ``00``."""
        out = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out += bytes((len(self.data),)) + self.data
        if self.le is not None:
            out += bytes((self.le & 0xFF,))
        return out

    def __repr__(self) -> str:
        # The data field may be a PIN block or card data: header and lengths only.
        return (f"CommandApdu({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, "
                f"{len(self.data)} data bytes, le={self.le})")

    def with_le(self, le: int) -> CommandApdu:
        """The same command with another Le (for the 6Cxx procedure)."""
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le)

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Parse a short C-APDU (cases 1 to 4).

        Raises:
            ApduError: when the bytes are not a consistent short APDU.
        """
        if len(raw) < 4:
            raise ApduError(f"C-APDU of {len(raw)} bytes is shorter than a header", offset=0)
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        lc = body[0]
        if lc == 0:
            raise ApduError("extended-length APDUs are not used in EMV", offset=4)
        if len(body) == 1 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1:]))
        if len(body) == 2 + lc:
            return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or 256)
        raise ApduError(f"Lc {lc} does not match {len(body) - 1} body bytes", offset=4)


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data field and the status word SW1 SW2 (Book 1, 9.4.2)."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer (``0x9000``)."""
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        """True for 9000."""
        return self.sw == SW_OK

    @property
    def warning(self) -> bool:
        """True for the 62xx and 63xx warning processing statuses."""
        return self.sw1 in (0x62, 0x63)

    @property
    def meaning(self) -> str:
        """The status word's meaning."""
        return sw_meaning(self.sw)

    def encode(self) -> bytes:
        """Data followed by SW1 SW2."""
        return self.data + bytes((self.sw1, self.sw2))

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        """Split raw response bytes into data and status word.

        Raises:
            ApduError: when fewer than two bytes arrived.
        """
        if len(raw) < 2:
            raise ApduError(f"R-APDU of {len(raw)} bytes has no status word", offset=0)
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    def __repr__(self) -> str:
        return f"ResponseApdu({len(self.data)} bytes, SW={self.sw:04X})"
