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

Where a message ends (Concert V3 over IP has no length prefix and no end marker): a message
is complete when it holds its mandatory fields and the bytes end on a field boundary, never
after a quiet time. A request's mandatory fields are CZ, CJ, CA, CB, CD, CE (the set a
terminal checks before it acts: Akretion's simulator answers AE 01 / AF 09 without one of
them; PayXpert's examples always carry the six); an answer's are CZ and AE, plus CB and CE
when a debit, refund or cancellation was done (AE 10) and AF when it was not (AE 01).
Because a receiver stops at the mandatory set, :func:`encode_request` puts every optional
field before the last mandatory one (CE closes a request) and :func:`encode_answer` puts AE
last, so a message of ours split anywhere is never read as a shorter one.

Requests a terminal acts on must also make sense (:func:`request_problem`): a debit or refund
of zero is refused, and a cheque (CC "00C") is answered without card data.

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
    "ANSWER_MANDATORY",
    "DETAIL_ABANDONED",
    "DETAIL_MALFORMED",
    "DETAIL_REFUSED",
    "FIELD_LENGTHS",
    "MEANS_CHEQUE",
    "REQUEST_MANDATORY",
    "STATUS_ACCEPTED_IMMEDIATE",
    "STATUS_DONE",
    "STATUS_NOT_DONE",
    "CaisseApAnswer",
    "CaisseApRequest",
    "check_lengths",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_fields",
    "encode_request",
    "first_message",
    "missing_answer_fields",
    "missing_request_fields",
    "parse_fields",
    "request_problem",
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
DETAIL_REFUSED = "04"
DETAIL_MALFORMED = "09"
DETAIL_ABANDONED = "11"
MEANS_CHEQUE = "00C"
#: The fields without which a terminal does not act on a request (see the module docstring).
REQUEST_MANDATORY = ("CZ", "CJ", "CA", "CB", "CD", "CE")
#: The fields every answer holds; :func:`missing_answer_fields` adds those its status needs.
ANSWER_MANDATORY = ("CZ", "AE")
_MONEY_ACTIONS = frozenset({ACTION_DEBIT, ACTION_REFUND, ACTION_CANCEL})
#: Value lengths (min, max) from PayXpert's Concert V3 dictionary; CA is "fixed, 2" there but
#: its own example sends one digit, so 1-2. Other tags: any length up to 999.
FIELD_LENGTHS: dict[str, tuple[int, int]] = {
    "AA": (1, 64), "AB": (4, 4), "AC": (1, 10), "AE": (2, 2), "AF": (2, 50), "AI": (1, 32),
    "AL": (1, 1), "BA": (1, 1), "CA": (1, 2), "CB": (2, 12), "CC": (3, 3), "CD": (1, 1),
    "CE": (3, 3), "CF": (1, 99), "CI": (1, 1), "CJ": (12, 12), "CK": (3, 3), "CZ": (4, 4),
}
MAX_VALUE = 999
_TAG_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HIDDEN = frozenset({"AA", "AB"})

Fields = tuple[tuple[str, str], ...]


def _field_at(data: bytes, i: int, base: int) -> tuple[str, str, int] | None:
    """The field starting at ``data[i]``: ``(tag, value, end)``, None if it is not all there.

    Raises:
        ProtocolError: A bad tag, a non-digit length or a non-printable value (tag, offset).
    """
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
        return None
    start = i + 5
    end = start + int(head[2:5])
    if end > len(data):
        return None
    value = data[start:end]
    for j, b in enumerate(value):
        if not 0x20 <= b <= 0x7E:
            raise ProtocolError("value byte outside printable ASCII", field=tag,
                                offset=base + start + j)
    return tag, value.decode("ascii"), end


def scan_fields(data: bytes, *, base: int = 0) -> tuple[list[tuple[str, str]], int]:
    """Parse the complete fields at the start of ``data`` (a TCP stream may stop mid-field).

    Returns:
        The fields, and how many bytes they used; bytes past that are an incomplete field.

    Raises:
        ProtocolError: A bad tag, a non-digit length or a non-printable value (tag, offset).
    """
    fields: list[tuple[str, str]] = []
    i = 0
    while i < len(data):
        found = _field_at(data, i, base)
        if found is None:
            break
        tag, value, i = found
        fields.append((tag, value))
    return fields, i


def check_lengths(fields: Iterable[tuple[str, str]]) -> None:
    """Check each known tag's value length against :data:`FIELD_LENGTHS`.

    Raises:
        ProtocolError: A value too short or too long (field = tag).
    """
    for tag, value in fields:
        bounds = FIELD_LENGTHS.get(tag)
        if bounds is not None and not bounds[0] <= len(value) <= bounds[1]:
            raise ProtocolError(f"value length {len(value)} outside {bounds[0]}-{bounds[1]}",
                                field=tag)


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


def missing_request_fields(fields: Iterable[tuple[str, str]]) -> list[str]:
    """The mandatory request tags (:data:`REQUEST_MANDATORY`) not among ``fields``."""
    present = {tag for tag, _ in fields}
    return [tag for tag in REQUEST_MANDATORY if tag not in present]


def missing_answer_fields(fields: Iterable[tuple[str, str]]) -> list[str]:
    """The tags an answer still lacks to be complete (see the module docstring).

    CZ and AE always; with AE 10 to a debit, refund or cancellation also CB and CE (what was
    done, for how much); with AE 01 also AF (why not).
    """
    index = dict(fields)
    wanted = list(ANSWER_MANDATORY)
    status = index.get("AE")
    if status == STATUS_DONE and index.get("CD") in _MONEY_ACTIONS:
        wanted += ["CB", "CE"]
    elif status == STATUS_NOT_DONE:
        wanted.append("AF")
    return [tag for tag in wanted if tag not in index]


def first_message(data: bytes, *, answer: bool) -> tuple[list[tuple[str, str]], int] | None:
    """The first complete message at the start of a byte stream, by the protocol's rules.

    A message is complete at the first field boundary where its mandatory fields are all
    present (:func:`missing_request_fields`, :func:`missing_answer_fields`); a second CZ
    before that point starts another message, so the first one is incomplete for good.

    Args:
        data: The bytes received so far on one connection.
        answer: Judge as a terminal answer (True) or a till request (False).

    Returns:
        ``(fields, used)``: the message and the bytes it took; None while incomplete.

    Raises:
        ProtocolError: A malformed field (tag, offset), or a second message starting before
            the first was complete (field CZ).
    """
    missing = missing_answer_fields if answer else missing_request_fields
    fields: list[tuple[str, str]] = []
    i = 0
    while (found := _field_at(data, i, 0)) is not None:
        tag, value, end = found
        if tag == "CZ" and fields:
            raise ProtocolError("a new message starts before the last was complete",
                                field="CZ", offset=i)
        fields.append((tag, value))
        i = end
        if not missing(fields):
            return fields, i
    return None


@dataclass(frozen=True, slots=True)
class CaisseApRequest:
    """A till request. ``extra`` fields go as given (CK ticket, CC means, ...).

    ``immediate`` is BA "1" (réponse immédiate): the terminal answers AE 11 at once and the
    outcome is read later with a duplicate (CD 3).
    """

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
    """Encode a request: CZ, CJ, CA, BA, [CF], extra fields, then CB, CD, CE.

    The optional fields come before the last mandatory ones so that a terminal that takes
    the request as complete at its mandatory set (the module docstring) has them all.

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
              ("BA", "1" if req.immediate else "0")]
    if req.private is not None:
        fields.append(("CF", req.private))
    fields.extend(req.extra)
    fields += [("CB", f"{req.amount:02d}"), ("CD", req.action), ("CE", req.currency)]
    return encode_fields(fields)


def _number(value: str, tag: str) -> int:
    if not value or not value.isascii() or not value.isdigit():
        raise ProtocolError("digits expected", field=tag)
    return int(value)


def decode_request(data: bytes) -> CaisseApRequest:
    """Decode a till request (the terminal's side); every :data:`REQUEST_MANDATORY` tag.

    Raises:
        ProtocolError: Malformed field, a mandatory tag missing, CB not 2-12 digits, CA not
            digits, CD not one character, CE not three digits (field = tag).
    """
    parsed = parse_fields(data)
    fields = dict(parsed)
    check_lengths(parsed)
    missing = missing_request_fields(parsed)
    if missing:
        raise ProtocolError("mandatory tag missing", field=missing[0], offset=len(data))
    action = fields["CD"]
    if len(action) != 1:
        raise ProtocolError("action must be one character", field="CD")
    if not 2 <= len(fields["CB"]) <= 12:
        raise ProtocolError("amount must be 2 to 12 digits", field="CB")
    currency = fields["CE"]
    if not (len(currency) == 3 and currency.isdigit()):
        raise ProtocolError("currency must be three digits", field="CE")
    known = {"CZ", "CJ", "CA", "CB", "CD", "CE", "BA", "CF"}
    return CaisseApRequest(
        action=action, amount=_number(fields["CB"], "CB"),
        pos_number=_number(fields["CA"], "CA"), currency=currency,
        version=fields["CZ"], protocol_id=fields["CJ"],
        immediate=fields.get("BA") == "1", private=fields.get("CF"),
        extra=tuple((t, v) for t, v in parsed if t not in known),
    )


def request_problem(req: CaisseApRequest) -> str | None:
    """Why a well-formed request must still be refused (AE 01 / AF 09), or None.

    A debit or refund of zero is not a transaction; a cancellation names an amount too.
    """
    if req.action in _MONEY_ACTIONS and req.amount == 0:
        return "zero amount"
    return None


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
    check_lengths(fields)
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
    """Encode an answer (terminal side): CZ first as terminals send it, AE last.

    AE last makes the answer complete only when everything is there (the module docstring).

    Raises:
        ProtocolError: See :func:`encode_fields`.
    """
    items = list(fields)
    items.sort(key=lambda item: (item[0] != "CZ") + 2 * (item[0] == "AE"))
    return encode_fields(items)
