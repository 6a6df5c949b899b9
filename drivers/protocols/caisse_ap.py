"""Caisse-AP (Concert V3) messages: two-letter tag, three-digit length, value.

Pure codec. A message is a run of fields ``TAG LLL VALUE`` in ASCII: ``CZ0040320`` is tag CZ,
length 4, value ``0320``. Over a serial line the message is the body of a Concert frame
(:mod:`drivers.protocols.link`); over TCP it is sent bare on the socket. The specification
belongs to the Association du Paiement and is not freely published; the facts here come from
PayXpert's public "Concert V3" tag dictionary (payxpert-docs.atlassian.net, "Concert V3") and
Akretion's public Caisse-AP-over-IP simulator (github.com/akretion/caisse-ap-ip). Where those
are thin the codec stays general: :func:`parse_fields` accepts any tag of two characters
``[A-Z0-9]`` and keeps unknown tags untouched, in order.

Tags used here (A* terminal, B* till, C* both, Z* constructed)::

    CZ  4      protocol version, "0320"; always the first field of a message
    CJ  12     till protocol identifier (assigned by the AP; opaque here)
    CA  2      till (POS) number
    CB  2-12   amount in minor units
    CD  1      action: "0" debit, "1" refund (credit), "2" cancellation, "3" duplicate
               (the last transaction again: used here as the status query)
    CE  3      currency, ISO 4217 numeric
    BA  1      answer delay: "0" at end of transaction, "1" at once (AE "11" comes back)
    CF  1-99   private data, echoed
    AE  2      status: "10" done, "01" not done, "11" request taken into account
    AF  2-50   complement of a failed status: "04" refused, "05" forbidden, "08" timeout,
               "09" request malformed, "11" abandoned (from Akretion's simulator; not exhaustive)
    AC  <=10   authorisation number
    AA  <=64   card number: partial PAN or token (masked again on decode)
    AB  4      card expiry YYMM (kept out of reprs)
    AI  <=32   AID;   CI 1 reading mode ("1" contact, "2" contactless);  CC 3 means
    ZT  <=999  constructed: the ticket (its value is itself a run of fields, e.g. CK, AK)

Every malformed input raises :class:`ProtocolError` with the tag (as field) and offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from drivers.protocols.errors import ProtocolError
from drivers.protocols.masking import mask_digits

__all__ = [
    "ACTION_CANCEL",
    "ACTION_DEBIT",
    "ACTION_DUPLICATE",
    "ACTION_REFUND",
    "STATUS_ACCEPTED_IMMEDIATE",
    "STATUS_DONE",
    "STATUS_NOT_DONE",
    "CaisseApAnswer",
    "CaisseApRequest",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_fields",
    "encode_request",
    "parse_fields",
    "scan_fields",
    "split_messages",
]

ACTION_DEBIT = "0"
ACTION_REFUND = "1"
ACTION_CANCEL = "2"
ACTION_DUPLICATE = "3"
STATUS_DONE = "10"
STATUS_NOT_DONE = "01"
STATUS_ACCEPTED_IMMEDIATE = "11"
MAX_VALUE = 999
_TAG_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HIDDEN = frozenset({"AA", "AB"})

Fields = tuple[tuple[str, str], ...]


def scan_fields(data: bytes, *, base: int = 0) -> tuple[list[tuple[str, str]], int]:
    """Parse the complete fields at the start of ``data`` (a TCP stream may stop mid-field).

    Returns:
        The fields, and how many bytes they used; bytes past that are an incomplete field.

    Raises:
        ProtocolError: A bad tag, a non-digit length or a non-printable value (tag, offset).
    """
    fields: list[tuple[str, str]] = []
    i = 0
    n = len(data)
    while i < n:
        head = data[i : i + 5]
        for j, b in enumerate(head[:2]):
            if b not in _TAG_CHARS:
                raise ProtocolError("tag must be two characters A-Z/0-9", field="tag",
                                    offset=base + i + j)
        tag = head[:2].decode("ascii")
        for j, b in enumerate(head[2:5]):
            if not 0x30 <= b <= 0x39:
                raise ProtocolError("length must be three digits", field=tag,
                                    offset=base + i + 2 + j)
        if len(head) < 5:
            break
        length = int(head[2:5])
        start = i + 5
        if start + length > n:
            break
        value = data[start : start + length]
        for j, b in enumerate(value):
            if not 0x20 <= b <= 0x7E:
                raise ProtocolError("value byte outside printable ASCII", field=tag,
                                    offset=base + start + j)
        fields.append((tag, value.decode("ascii")))
        i = start + length
    return fields, i


def parse_fields(data: bytes, *, base: int = 0) -> list[tuple[str, str]]:
    """Parse a whole message (or a constructed value) into ``(tag, value)`` pairs, in order.

    Raises:
        ProtocolError: Malformed field, or the data ends inside a field (tag, offset).
    """
    fields, used = scan_fields(data, base=base)
    if used != len(data):
        head = data[used : used + 2]
        tag = head.decode("ascii") if len(head) == 2 else "tag"
        raise ProtocolError("message ends inside a field", field=tag, offset=base + len(data))
    return fields


def encode_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode ``(tag, value)`` pairs.

    Raises:
        ProtocolError: A tag not of two ``[A-Z0-9]`` characters, a value over 999 characters or
            outside printable ASCII.
    """
    out = bytearray()
    for tag, value in fields:
        raw_tag = tag.encode("ascii", "replace")
        if len(raw_tag) != 2 or any(b not in _TAG_CHARS for b in raw_tag):
            raise ProtocolError("tag must be two characters A-Z/0-9", field="tag",
                                offset=len(out))
        if not value.isascii() or any(not " " <= ch <= "~" for ch in value):
            raise ProtocolError("value outside printable ASCII", field=tag, offset=len(out) + 5)
        raw = value.encode("ascii")
        if len(raw) > MAX_VALUE:
            raise ProtocolError("value longer than 999", field=tag, offset=len(out) + 5)
        out += raw_tag + b"%03d" % len(raw) + raw
    return bytes(out)


def split_messages(fields: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split a run of fields into messages: each CZ (version, always first) starts one."""
    messages: list[list[tuple[str, str]]] = []
    for item in fields:
        if item[0] == "CZ" or not messages:
            messages.append([])
        messages[-1].append(item)
    return messages


@dataclass(frozen=True, slots=True)
class CaisseApRequest:
    """A till request. ``extra`` fields are appended as given (CK ticket, CC means, ...)."""

    action: str
    amount: int = 0
    pos_number: int = 1
    currency: str = "978"
    version: str = "0320"
    protocol_id: str = "0" * 12
    immediate: bool = False
    private: str | None = None
    extra: Fields = ()


def encode_request(req: CaisseApRequest) -> bytes:
    """Encode a request: CZ, CJ, CA, CB, CD, CE, BA, [CF], extra fields.

    Raises:
        ProtocolError: A field does not fit (field = tag).
    """
    checks = (
        ("CZ", len(req.version) == 4 and req.version.isascii() and req.version.isdigit()),
        ("CJ", len(req.protocol_id) == 12),
        ("CA", 0 <= req.pos_number <= 99),
        ("CB", 0 <= req.amount <= 999_999_999_999),
        ("CD", len(req.action) == 1 and req.action.isascii() and req.action.isalnum()),
        ("CE", len(req.currency) == 3 and req.currency.isascii() and req.currency.isdigit()),
        ("CF", req.private is None or 1 <= len(req.private) <= 99),
    )
    for tag, ok in checks:
        if not ok:
            raise ProtocolError("field does not fit", field=tag)
    fields = [("CZ", req.version), ("CJ", req.protocol_id), ("CA", f"{req.pos_number:02d}"),
              ("CB", f"{req.amount:02d}"), ("CD", req.action), ("CE", req.currency),
              ("BA", "1" if req.immediate else "0")]
    if req.private is not None:
        fields.append(("CF", req.private))
    fields.extend(req.extra)
    return encode_fields(fields)


def _number(value: str, tag: str) -> int:
    if not value or not value.isascii() or not value.isdigit():
        raise ProtocolError("digits expected", field=tag)
    return int(value)


def decode_request(data: bytes) -> CaisseApRequest:
    """Decode a till request (the virtual terminal's side); CZ, CA, CD are mandatory.

    Raises:
        ProtocolError: Malformed field or a mandatory tag missing (field = tag).
    """
    fields = dict(parse_fields(data))
    for tag in ("CZ", "CA", "CD"):
        if tag not in fields:
            raise ProtocolError("mandatory tag missing", field=tag, offset=len(data))
    action = fields["CD"]
    if len(action) != 1:
        raise ProtocolError("action must be one character", field="CD")
    known = {"CZ", "CJ", "CA", "CB", "CD", "CE", "BA", "CF"}
    return CaisseApRequest(
        action=action, amount=_number(fields.get("CB", "0"), "CB"),
        pos_number=_number(fields["CA"], "CA"), currency=fields.get("CE", "978"),
        version=fields["CZ"], protocol_id=fields.get("CJ", "0" * 12),
        immediate=fields.get("BA") == "1", private=fields.get("CF"),
        extra=tuple((t, v) for t, v in parse_fields(data) if t not in known),
    )


@dataclass(frozen=True)
class CaisseApAnswer:
    """A terminal answer: all its fields in order, the card number (AA) already masked.

    The repr shows the tags, the status and the amount; never AA or AB.
    """

    fields: Fields
    _index: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", dict(self.fields))

    def get(self, tag: str) -> str | None:
        """The value of the first field with this tag, or ``None``."""
        return self._index.get(tag)

    @property
    def status(self) -> str:
        """AE: "10" done, "01" not done, "11" taken into account."""
        return self._index.get("AE", "")

    @property
    def done(self) -> bool:
        """True when the operation was carried out (AE = "10")."""
        return self.status == STATUS_DONE

    @property
    def amount(self) -> int | None:
        """CB in minor units, if present."""
        value = self._index.get("CB")
        return None if value is None else int(value)

    def __repr__(self) -> str:
        tags = ",".join(t for t, _ in self.fields)
        return f"CaisseApAnswer(status={self.status!r}, amount={self.amount}, tags={tags})"


def decode_answer(data: bytes) -> CaisseApAnswer:
    """Decode a terminal answer; AE is mandatory, CB must be digits, AA is masked.

    Raises:
        ProtocolError: Malformed field, AE missing or not two digits (field = tag).
    """
    fields = parse_fields(data)
    index = dict(fields)
    status = index.get("AE")
    if status is None:
        raise ProtocolError("status tag missing", field="AE", offset=len(data))
    if len(status) != 2 or not status.isdigit():
        raise ProtocolError("status must be two digits", field="AE")
    if "CB" in index:
        _number(index["CB"], "CB")
    clean = tuple((t, mask_digits(v) if t in _HIDDEN else v) for t, v in fields)
    return CaisseApAnswer(clean)


def encode_answer(fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode an answer (terminal side): CZ is moved first, as terminals send it.

    Raises:
        ProtocolError: See :func:`encode_fields`.
    """
    items = list(fields)
    items.sort(key=lambda item: item[0] != "CZ")
    return encode_fields(items)
