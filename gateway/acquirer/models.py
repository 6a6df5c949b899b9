"""The requests and answers of the online payment API (docs/acquirer-api.md), as typed values.

:class:`AuthorisationRequest` carries the PAN and the encrypted PIN block the acquirer needs;
its ``repr`` shows the masked PAN only and it never goes to a log. Answers are parsed strictly:
a missing or mistyped field is an :class:`~gateway.acquirer.errors.AcquirerProtocolError`
naming the field, never a KeyError. The issuer's response field 55 (8A, 89, 91, 71/72; EMV 4.4
Book 3, 10.9-10.10) is decoded for the kernel by :meth:`Authorisation.to_online_response`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from gateway.acquirer.errors import AcquirerProtocolError, AcquirerUsageError
from terminal import OnlinePinBlock, OnlineResponse, TlvError, decode, encode, mask_pan

__all__ = ["Authorisation", "AuthorisationRequest", "Outcome", "Refund", "Resolution"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AuthorisationRequest:
    """An authorisation to send (``POST /v1/authorisations``).

    Attributes:
        amount: Amount authorised, minor units (9F02).
        currency: ISO 4217 numeric (5F2A).
        transaction_type: Tag 9C (0x00 purchase, 0x09 cashback, 0x20 refund).
        icc_data: Field 55 TLVs (EMV 4.4 Book 4, 12.2).
        pan: The PAN digits (never logged; ``repr`` masks it).
        terminal_id: The terminal (lane) identifier, 1-16 characters.
        merchant_id: The merchant identifier, 1-16 characters.
        stan: System trace audit number, 1..999999.
        local_datetime: The terminal's local date and time.
        pin: The encrypted online PIN block and its KSN, if online PIN was the CVM.
    """

    amount: int
    currency: int
    transaction_type: int
    icc_data: bytes
    pan: str
    terminal_id: str
    merchant_id: str
    stan: int
    local_datetime: datetime
    pin: OnlinePinBlock | None = None

    def __post_init__(self) -> None:
        if not 0 < self.amount <= 999_999_999_999:
            raise AcquirerUsageError("amount must be 1..999999999999 minor units")
        if not 0 < self.currency <= 999:
            raise AcquirerUsageError("currency must be ISO 4217 numeric")
        if not 0 <= self.transaction_type <= 0x99:
            raise AcquirerUsageError("transaction_type must be tag 9C (one byte)")
        if not self.pan.isdigit() or not 12 <= len(self.pan) <= 19:
            raise AcquirerUsageError("pan must be 12 to 19 digits")
        if not 0 < self.stan <= 999_999:
            raise AcquirerUsageError("stan must be 1..999999")

    def to_json(self) -> dict[str, Any]:
        """The request body (docs/acquirer-api.md)."""
        body: dict[str, Any] = {
            "amount": self.amount,
            "currency": self.currency,
            "transaction_type": f"{self.transaction_type:02X}",
            "icc_data": self.icc_data.hex().upper(),
            "card": {"pan": self.pan},
            "terminal_id": self.terminal_id,
            "merchant_id": self.merchant_id,
            "stan": self.stan,
            "local_datetime": self.local_datetime.replace(microsecond=0, tzinfo=None).isoformat(),
        }
        if self.pin is not None:
            body["pin"] = {
                "block": self.pin.block.hex().upper(),
                "ksn": self.pin.ksn.hex().upper(),
                "format": self.pin.fmt,
            }
        return body

    def __repr__(self) -> str:
        return (
            f"AuthorisationRequest(amount={self.amount}, currency={self.currency}, "
            f"pan={mask_pan(self.pan)}, stan={self.stan}, pin={self.pin is not None})"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Authorisation:
    """The host's answer to an authorisation (also what a status query returns).

    Attributes:
        id: The host's id (``auth_...``), for reversal and refund.
        idempotency_key: The key of the request that made it.
        approved: ``status`` is ``approved``.
        response_code: Two characters (tag 8A).
        authorisation_code: Six characters (tag 89) when approved.
        issuer_response: The response field 55 (8A, 89, 91, 71/72).
        amount: Minor units.
        currency: ISO 4217 numeric.
        reversed: The host has reversed it.
        refunded_amount: Minor units refunded so far.
        replayed: The answer is a replay of a stored one (``Idempotent-Replayed``).
    """

    id: str
    idempotency_key: str
    approved: bool
    response_code: str
    authorisation_code: str | None
    issuer_response: bytes
    amount: int
    currency: int
    reversed: bool = False
    refunded_amount: int = 0
    replayed: bool = False

    @classmethod
    def from_json(cls, data: Any, *, replayed: bool = False) -> Authorisation:
        """Parse an authorisation object; AcquirerProtocolError names a bad field."""
        body = _object(data)
        status = _field(body, "status", str)
        if status not in ("approved", "declined"):
            raise AcquirerProtocolError("status is not approved/declined", field="status")
        code = _field(body, "response_code", str)
        if len(code) != 2:
            raise AcquirerProtocolError("response_code is not 2 characters", field="response_code")
        auth_code = body.get("authorisation_code")
        if auth_code is not None and not isinstance(auth_code, str):
            raise AcquirerProtocolError("not a string", field="authorisation_code")
        try:
            issuer_response = bytes.fromhex(_field(body, "issuer_response", str))
        except ValueError:
            raise AcquirerProtocolError("not hex", field="issuer_response") from None
        return cls(
            id=_field(body, "id", str),
            idempotency_key=_field(body, "idempotency_key", str),
            approved=status == "approved",
            response_code=code,
            authorisation_code=auth_code,
            issuer_response=issuer_response,
            amount=_field(body, "amount", int),
            currency=_field(body, "currency", int),
            reversed=_field(body, "reversed", bool),
            refunded_amount=_field(body, "refunded_amount", int),
            replayed=replayed,
        )

    def to_online_response(self) -> OnlineResponse:
        """The kernel's view (EMV 4.4 Book 3, 10.9): 8A, 91, 89 and the 71/72 templates.

        Raises:
            AcquirerProtocolError: ``issuer_response`` is not BER-TLV.
        """
        try:
            tlvs = decode(self.issuer_response)
        except TlvError as exc:
            raise AcquirerProtocolError(
                f"issuer_response is not BER-TLV at offset {exc.offset}", field="issuer_response"
            ) from exc
        values = {tlv.tag: tlv.value for tlv in tlvs}
        scripts = b"".join(encode(t.tag, t.value) for t in tlvs if t.tag in (0x71, 0x72))
        arc = values.get(0x8A) or self.response_code.encode("ascii", "replace")
        auth_code = values.get(0x89)
        if auth_code is None and self.authorisation_code:
            auth_code = self.authorisation_code.encode("ascii", "replace")
        return OnlineResponse(
            approved=self.approved,
            authorisation_response_code=arc,
            issuer_authentication_data=values.get(0x91),
            scripts=scripts or None,
            authorisation_code=auth_code,
        )


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund made by ``POST /v1/refunds``."""

    id: str
    authorisation_id: str
    amount: int
    currency: int
    replayed: bool = False

    @classmethod
    def from_json(cls, data: Any, *, replayed: bool = False) -> Refund:
        """Parse a refund object; AcquirerProtocolError names a bad field."""
        body = _object(data)
        return cls(
            id=_field(body, "id", str),
            authorisation_id=_field(body, "authorisation_id", str),
            amount=_field(body, "amount", int),
            currency=_field(body, "currency", int),
            replayed=replayed,
        )


class Outcome(enum.StrEnum):
    """What :meth:`~gateway.acquirer.client.AcquirerClient.resolve_unknown` found."""

    APPROVED = "approved"
    DECLINED = "declined"
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The resolution of an authorisation whose answer never came.

    Attributes:
        outcome: ``approved``/``declined`` as the host decided, or ``not_found``: the host
            never completed a request with that key (nothing was charged).
        authorisation: The host's authorisation when found (reverse it if the sale was
            abandoned).
    """

    outcome: Outcome
    authorisation: Authorisation | None = None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise AcquirerProtocolError("answer is not a JSON object", field="body")
    return data


def _field(body: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = body.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise AcquirerProtocolError(f"{name} missing or not {kind.__name__}", field=name)
    return value
