"""Concert V2 ("protocole E+") payment messages: the till's request and the terminal's answer.

Pure codec: message bodies (the text between STX and ETX, see :mod:`drivers.protocols.link` for
framing and the ENQ/ACK procedure). Sources: the public Ingenico "Caisse Concert" descriptions
as implemented by github.com/Ousret/pyTeliumManager (``telium/payment.py``,
``telium/constant.py``) and github.com/akretion/pypostelium; the Concert specification itself is
not freely published. All fields are ASCII; offsets below are 0-based in the body.

Request, till → terminal, 34 characters::

    off len field                 values
    0   2   POS number            "01".."99"
    2   8   amount                minor units (cents), zero-padded: "00001250" = 12.50
    10  1   answer indicator      "1" full answer (with the 55-char card report), "0" short
    11  1   mode (means)          "1" card, "C" cheque, "2" Amex, ... (one alphanumeric char)
    12  1   transaction type      "0" debit (purchase), "1" credit (refund), "2" cancellation;
                                  "4" is documented as "automatic" by pyTeliumManager and as
                                  "duplicate" elsewhere: accepted, not interpreted
    13  3   currency              ISO 4217 numeric, "978" = EUR
    16  10  private data          free, spaces by default; echoed in the answer
    26  4   delay                 "A010" answer at end of transaction, "A011" answer at once
    30  4   authorisation         "B010" terminal decides, "B011" forced online authorisation

Answer, terminal → till, 80 characters (full) or 25 (short)::

    off len field                 values
    0   2   POS number            echo of the request
    2   1   status                "0" accepted, "7" refused or not processed ("9" is seen
                                  from some terminals: not verified); any digit is accepted
    3   8   amount                minor units
    11  1   mode                  means actually used
    12  55  card report           full answer only: card number fragment, expiry, ... (free)
    67  3   currency              (short answer: offset 12)
    70  10  private data          (short answer: offset 15)

The card report is masked on decode (:func:`~drivers.protocols.masking.mask_digits`): a full PAN
never leaves this module. Every malformed body raises :class:`ProtocolError` with the field name
and offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.protocols.errors import ProtocolError
from drivers.protocols.masking import mask_digits

__all__ = [
    "ANSWER_FULL_LENGTH",
    "ANSWER_SHORT_LENGTH",
    "REQUEST_LENGTH",
    "STATUS_ACCEPTED",
    "STATUS_REFUSED",
    "TYPE_CANCEL",
    "TYPE_CREDIT",
    "TYPE_DEBIT",
    "PaymentAnswer",
    "PaymentRequest",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_request",
]

REQUEST_LENGTH = 34
ANSWER_FULL_LENGTH = 80
ANSWER_SHORT_LENGTH = 25
REPORT_LENGTH = 55
STATUS_ACCEPTED = 0
STATUS_REFUSED = 7
TYPE_DEBIT = "0"
TYPE_CREDIT = "1"
TYPE_CANCEL = "2"
MAX_AMOUNT = 99_999_999


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A Concert V2 payment request (see the module docstring for the layout).

    Attributes:
        amount: Minor units (cents), 0 to 99,999,999.
        pos_number: The till number, 1-99.
        currency: ISO 4217 numeric code, three digits.
        mode: Means of payment, one alphanumeric character ("1" card).
        transaction_type: "0" debit, "1" credit (refund), "2" cancellation, or another digit.
        full_answer: Ask for the 80-character answer with the card report.
        private: Ten printable characters echoed in the answer.
        answer_at_end: Answer when the transaction ends (A010) rather than at once (A011).
        forced_authorisation: Force an online authorisation (B011).
    """

    amount: int
    pos_number: int = 1
    currency: str = "978"
    mode: str = "1"
    transaction_type: str = TYPE_DEBIT
    full_answer: bool = True
    private: str = " " * 10
    answer_at_end: bool = True
    forced_authorisation: bool = False


@dataclass(frozen=True, slots=True)
class PaymentAnswer:
    """A Concert V2 answer; :attr:`card_report` is already masked (``None`` if short answer)."""

    pos_number: int
    status: int
    amount: int
    mode: str
    currency: str
    private: str
    card_report: str | None = None

    @property
    def approved(self) -> bool:
        """True when the terminal accepted the transaction (status 0)."""
        return self.status == STATUS_ACCEPTED


def _printable(text: str, field: str, offset: int = 0) -> None:
    for i, ch in enumerate(text):
        if not " " <= ch <= "~":
            raise ProtocolError("character outside printable ASCII", field=field,
                                offset=offset + i)


def _digits(body: str, start: int, length: int, field: str) -> int:
    part = body[start : start + length]
    for i, ch in enumerate(part):
        if not "0" <= ch <= "9":
            raise ProtocolError("digit expected", field=field, offset=start + i)
    return int(part)


def _check_request(req: PaymentRequest) -> None:
    if not 0 <= req.amount <= MAX_AMOUNT:
        raise ProtocolError("amount out of range (8 digits)", field="amount", offset=2)
    if not 1 <= req.pos_number <= 99:
        raise ProtocolError("POS number out of range 1-99", field="pos_number", offset=0)
    if len(req.currency) != 3 or not req.currency.isascii() or not req.currency.isdigit():
        raise ProtocolError("currency must be 3 digits", field="currency", offset=13)
    if len(req.mode) != 1 or not req.mode.isascii() or not req.mode.isalnum():
        raise ProtocolError("mode must be one alphanumeric character", field="mode", offset=11)
    if len(req.transaction_type) != 1 or not "0" <= req.transaction_type <= "9":
        raise ProtocolError("transaction type must be one digit", field="transaction_type",
                            offset=12)
    if len(req.private) != 10:
        raise ProtocolError("private data must be 10 characters", field="private", offset=16)
    _printable(req.private, "private", 16)


def encode_request(req: PaymentRequest) -> bytes:
    """Encode a request body (34 ASCII bytes, no framing).

    Raises:
        ProtocolError: A field does not fit the layout (name and offset of the field).
    """
    _check_request(req)
    text = (
        f"{req.pos_number:02d}{req.amount:08d}{'1' if req.full_answer else '0'}"
        f"{req.mode}{req.transaction_type}{req.currency}{req.private}"
        f"{'A010' if req.answer_at_end else 'A011'}"
        f"{'B011' if req.forced_authorisation else 'B010'}"
    )
    return text.encode("ascii")


def _text(body: bytes) -> str:
    for i, b in enumerate(body):
        if not 0x20 <= b <= 0x7E:
            raise ProtocolError("byte outside printable ASCII", field="body", offset=i)
    return body.decode("ascii")


def decode_request(body: bytes) -> PaymentRequest:
    """Decode a request body (the virtual terminal's side).

    Raises:
        ProtocolError: Wrong length or a malformed field.
    """
    if len(body) != REQUEST_LENGTH:
        raise ProtocolError(f"request must be {REQUEST_LENGTH} bytes", field="length",
                            offset=min(len(body), REQUEST_LENGTH))
    text = _text(body)
    pos = _digits(text, 0, 2, "pos_number")
    amount = _digits(text, 2, 8, "amount")
    if text[10] not in "01":
        raise ProtocolError("answer indicator must be 0 or 1", field="answer_indicator",
                            offset=10)
    if not text[11].isalnum():
        raise ProtocolError("mode must be alphanumeric", field="mode", offset=11)
    _digits(text, 12, 1, "transaction_type")
    _digits(text, 13, 3, "currency")
    delay, auth = text[26:30], text[30:34]
    if delay not in ("A010", "A011"):
        raise ProtocolError("delay must be A010 or A011", field="delay", offset=26)
    if auth not in ("B010", "B011"):
        raise ProtocolError("authorisation must be B010 or B011", field="authorisation",
                            offset=30)
    if pos == 0:
        raise ProtocolError("POS number out of range 1-99", field="pos_number", offset=0)
    return PaymentRequest(
        amount=amount, pos_number=pos, currency=text[13:16], mode=text[11],
        transaction_type=text[12], full_answer=text[10] == "1", private=text[16:26],
        answer_at_end=delay == "A010", forced_authorisation=auth == "B011",
    )


def encode_answer(answer: PaymentAnswer) -> bytes:
    """Encode an answer body: 80 bytes with a card report, 25 without (terminal side).

    Raises:
        ProtocolError: A field does not fit the layout.
    """
    if not 0 <= answer.pos_number <= 99:
        raise ProtocolError("POS number out of range", field="pos_number", offset=0)
    if not 0 <= answer.status <= 9:
        raise ProtocolError("status must be one digit", field="status", offset=2)
    if not 0 <= answer.amount <= MAX_AMOUNT:
        raise ProtocolError("amount out of range", field="amount", offset=3)
    if len(answer.mode) != 1 or not answer.mode.isascii() or not answer.mode.isalnum():
        raise ProtocolError("mode must be one alphanumeric character", field="mode", offset=11)
    tail_offset = 12
    report = ""
    if answer.card_report is not None:
        if len(answer.card_report) > REPORT_LENGTH:
            raise ProtocolError("card report longer than 55", field="card_report", offset=12)
        _printable(answer.card_report, "card_report", 12)
        report = answer.card_report.ljust(REPORT_LENGTH)
        tail_offset = 67
    if len(answer.currency) != 3 or not answer.currency.isascii() or \
            not answer.currency.isdigit():
        raise ProtocolError("currency must be 3 digits", field="currency", offset=tail_offset)
    if len(answer.private) != 10:
        raise ProtocolError("private data must be 10 characters", field="private",
                            offset=tail_offset + 3)
    _printable(answer.private, "private", tail_offset + 3)
    text = (f"{answer.pos_number:02d}{answer.status}{answer.amount:08d}{answer.mode}"
            f"{report}{answer.currency}{answer.private}")
    return text.encode("ascii")


def decode_answer(body: bytes) -> PaymentAnswer:
    """Decode an answer body (80 or 25 bytes); the card report comes back masked.

    Raises:
        ProtocolError: Wrong length or a malformed field (name and offset).
    """
    if len(body) not in (ANSWER_FULL_LENGTH, ANSWER_SHORT_LENGTH):
        raise ProtocolError(
            f"answer must be {ANSWER_FULL_LENGTH} or {ANSWER_SHORT_LENGTH} bytes",
            field="length", offset=min(len(body), ANSWER_FULL_LENGTH))
    text = _text(body)
    pos = _digits(text, 0, 2, "pos_number")
    status = _digits(text, 2, 1, "status")
    amount = _digits(text, 3, 8, "amount")
    mode = text[11]
    if not mode.isalnum():
        raise ProtocolError("mode must be alphanumeric", field="mode", offset=11)
    report: str | None = None
    tail = 12
    if len(body) == ANSWER_FULL_LENGTH:
        report = mask_digits(text[12:67]).rstrip()
        tail = 67
    _digits(text, tail, 3, "currency")
    return PaymentAnswer(pos_number=pos, status=status, amount=amount, mode=mode,
                         currency=text[tail : tail + 3], private=text[tail + 3 : tail + 13],
                         card_report=report)
