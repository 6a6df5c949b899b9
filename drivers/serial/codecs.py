"""The two message sets behind one interface: build a request, check and read an answer.

:class:`ConcertV2Codec` and :class:`CaisseApCodec` adapt :mod:`drivers.protocols.concert_v2`
and :mod:`drivers.protocols.caisse_ap` to what the terminal drivers need: a request body for an
action, a structural check for the link layer (a frame that fails it is NAKed and repeated), and
the mapping of an answer to a :class:`~drivers.smart_terminal.TransactionResult`.

Actions: ``payment``, ``refund``, ``cancellation`` (void of an earlier transaction), ``status``
(the last transaction again: Caisse-AP "duplicata", CD 3) and ``end_of_day`` (Caisse-AP CD "B",
remittance, as listed by PayXpert's Concert V3 page). Concert V2 has only the first three.

A payment, refund or void of zero is refused here, before anything is sent (a terminal refuses
it too): :class:`~drivers.protocols.errors.ProtocolError` on field ``amount``, not delivered.
"""

from __future__ import annotations

import re
from typing import ClassVar, Protocol

from drivers.protocols import caisse_ap as cap
from drivers.protocols import concert_v2 as cv2
from drivers.protocols.errors import ProtocolError
from drivers.protocols.masking import mask_digits
from drivers.smart_terminal import Money, TransactionKind, TransactionResult, TransactionStatus

__all__ = ["CaisseApCodec", "Codec", "ConcertV2Codec", "codec_for", "kind_of"]

_PAN_FRAGMENT = re.compile(r"[0-9]{0,6}[*Xx#]+[0-9]{0,4}")


def kind_of(action: str) -> TransactionKind:
    """The result kind of an action: REFUND, CANCELLATION (a void), else PAYMENT.

    ``status`` and ``end_of_day`` are reported as PAYMENT unless the answer names its action
    (Caisse-AP CD in a duplicate answer, see :meth:`CaisseApCodec.result`).
    """
    if action == "refund":
        return TransactionKind.REFUND
    if action == "cancellation":
        return TransactionKind.CANCELLATION
    return TransactionKind.PAYMENT


def _pan_fragment(text: str | None) -> str | None:
    """A masked PAN fit for ``TransactionResult.masked_pan`` (6+4 at most), else None."""
    if not text:
        return None
    for token in mask_digits(text).split():
        if _PAN_FRAGMENT.fullmatch(token) and sum(c.isdigit() for c in token) <= 10:
            return token
    return None


class Codec(Protocol):
    """A terminal message set."""

    name: str
    actions: frozenset[str]

    def request(self, action: str, amount: Money, reference: str | None) -> bytes:
        """The request body for an action."""
        ...

    def validate(self, body: bytes) -> object:
        """Raise :class:`ProtocolError` if ``body`` is not a well-formed answer."""
        ...

    def result(self, body: bytes, action: str, amount: Money) -> TransactionResult:
        """Map a well-formed answer to a result (raises :class:`ProtocolError` if not ours)."""
        ...


_MONEY_ACTIONS = frozenset({"payment", "refund", "cancellation"})


def _check_amount(action: str, amount: Money) -> None:
    if action in _MONEY_ACTIONS and amount.minor_units == 0:
        raise ProtocolError(f"a {action} of zero is refused", field="amount")


def _numeric(amount: Money) -> str:
    code = amount.numeric
    if code is None:
        raise ProtocolError("currency has no known ISO 4217 numeric code", field="currency")
    return code


class ConcertV2Codec:
    """Concert V2: 34-character request, 80/25-character answer; no status message."""

    name = "concert-v2"
    actions = frozenset({"payment", "refund", "cancellation"})
    _types: ClassVar[dict[str, str]] = {
        "payment": cv2.TYPE_DEBIT, "refund": cv2.TYPE_CREDIT, "cancellation": cv2.TYPE_CANCEL}

    def __init__(self, *, pos_number: int = 1, forced_authorisation: bool = False) -> None:
        self.pos_number = pos_number
        self.forced_authorisation = forced_authorisation

    def request(self, action: str, amount: Money, reference: str | None) -> bytes:
        """Build the request (private data = the reference, 10 characters)."""
        if action not in self._types:
            raise ProtocolError(f"Concert V2 has no {action} request", field="transaction_type")
        _check_amount(action, amount)
        return cv2.encode_request(cv2.PaymentRequest(
            amount=amount.minor_units, pos_number=self.pos_number, currency=_numeric(amount),
            transaction_type=self._types[action], private=(reference or "").ljust(10)[:10],
            forced_authorisation=self.forced_authorisation))

    def validate(self, body: bytes) -> object:
        """Structural check of an answer body."""
        return cv2.decode_answer(body)

    def result(self, body: bytes, action: str, amount: Money) -> TransactionResult:
        """Status 0 approved, 7 declined, any other digit an error status."""
        answer = cv2.decode_answer(body)
        if answer.pos_number != self.pos_number:
            raise ProtocolError("answer for another POS number", field="pos_number", offset=0)
        status = {cv2.STATUS_ACCEPTED: TransactionStatus.APPROVED,
                  cv2.STATUS_REFUSED: TransactionStatus.DECLINED}.get(
                      answer.status, TransactionStatus.ERROR)
        return TransactionResult(
            status=status, kind=kind_of(action),
            amount=Money(answer.amount, answer.currency),
            masked_pan=_pan_fragment(answer.card_report),
            reference=answer.private.strip() or None,
            message=f"status={answer.status}",  # the card report (expiry...) stays out
            extra={"action": action, "terminal_status": str(answer.status)})


class CaisseApCodec:
    """Caisse-AP / Concert V3 tag messages."""

    name = "caisse-ap"
    actions = frozenset({"payment", "refund", "cancellation", "status", "end_of_day"})
    _codes: ClassVar[dict[str, str]] = {
        "payment": cap.ACTION_DEBIT, "refund": cap.ACTION_REFUND,
        "cancellation": cap.ACTION_CANCEL, "status": cap.ACTION_DUPLICATE, "end_of_day": "B"}

    def __init__(self, *, pos_number: int = 1, protocol_id: str = "0" * 12,
                 version: str = "0320") -> None:
        self.pos_number = pos_number
        self.protocol_id = protocol_id
        self.version = version

    def request(self, action: str, amount: Money, reference: str | None) -> bytes:
        """Build the request for an action (CD 0/1/2/3/B)."""
        if action not in self._codes:
            raise ProtocolError(f"unknown action {action}", field="CD")
        _check_amount(action, amount)
        return cap.encode_request(cap.CaisseApRequest(
            action=self._codes[action], amount=amount.minor_units, pos_number=self.pos_number,
            currency=_numeric(amount), version=self.version, protocol_id=self.protocol_id,
            private=reference or None))

    def validate(self, body: bytes) -> object:
        """Structural check of an answer body."""
        return cap.decode_answer(body)

    def result(self, body: bytes, action: str, amount: Money) -> TransactionResult:
        """AE 10 approved; AE 01 declined, or cancelled when AF says abandoned (11).

        AE 11 (taken into account: an answer-at-once request) is not an outcome: ERROR with
        ``extra["accepted"] = True``; the outcome is read with a duplicate. ``extra`` carries
        the AID (AI), the means (CC) and the reading mode (CI) where the terminal gives them.
        """
        answer = cap.decode_answer(body)
        pos = answer.get("CA")
        if pos is not None and (not pos.isdigit() or int(pos) != self.pos_number):
            raise ProtocolError("answer for another POS number", field="CA")
        detail = answer.get("AF")
        if answer.status == cap.STATUS_DONE:
            status = TransactionStatus.APPROVED
        elif answer.status == cap.STATUS_NOT_DONE:
            status = TransactionStatus.CANCELLED if detail == "11" else \
                TransactionStatus.DECLINED
        else:
            status = TransactionStatus.ERROR
        currency = answer.get("CE") or amount.currency
        if not (len(currency) == 3 and currency.isdigit()):
            raise ProtocolError("currency must be 3 digits", field="CE")
        minor = answer.amount if answer.amount is not None else amount.minor_units
        kind = kind_of(action)
        if action == "status":  # a duplicate describes the last transaction, whatever it was
            kind = kind_of({v: k for k, v in self._codes.items()}.get(answer.get("CD") or "",
                                                                      "payment"))
        return TransactionResult(
            status=status, kind=kind, amount=Money(minor, currency),
            masked_pan=_pan_fragment(answer.get("AA")), auth_code=answer.get("AC"),
            reference=answer.get("CF"), message=f"AE={answer.status}" + (
                f" AF={detail}" if detail else ""),
            extra={"action": action, "terminal_status": answer.status,
                   "detail": detail, "reading_mode": answer.get("CI"), "aid": answer.get("AI"),
                   "means": answer.get("CC"),
                   "accepted": answer.status == cap.STATUS_ACCEPTED_IMMEDIATE})


def codec_for(protocol: str, *, pos_number: int = 1) -> ConcertV2Codec | CaisseApCodec:
    """The codec for a URL's ``protocol=`` value.

    Raises:
        ValueError: Unknown protocol name (a configuration error).
    """
    name = protocol.lower().replace("_", "-")
    if name in ("concert-v2", "concert", "e+"):
        return ConcertV2Codec(pos_number=pos_number)
    if name in ("caisse-ap", "concert-v3"):
        return CaisseApCodec(pos_number=pos_number)
    raise ValueError(f"unknown terminal protocol {protocol!r} (concert-v2, caisse-ap)")
